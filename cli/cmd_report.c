/* cli/cmd_report.c: `tnrec report`: one HTML page about a training run. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "report"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: tnrec report RUN_DIR [--eval DATASET] -o FILE.html [options]\n"
            "\n"
            "Write one self-contained HTML page (no network, no other files) about a\n"
            "training run: loss, ROC-AUC, PR-AUC, CSI and learning rate per epoch from\n"
            "RUN_DIR/metrics.jsonl with the best checkpoint marked, and the run's\n"
            "configuration. With --eval, the run's checkpoint (best.tnck, else\n"
            "last.tnck) is evaluated on DATASET as `tnrec eval` does, and the page adds\n"
            "the ROC and PR curves (operating point at 0.5 marked), a reliability\n"
            "diagram, score histograms by class, category and EF number, confusion\n"
            "matrices at 0.5 and at the best-CSI threshold, the per-category metrics,\n"
            "the dataset's class counts and skipped inputs, and pictures of the\n"
            "highest-scoring false alarms, the missed tornadoes and the best detections.\n"
            "\n"
            "options:\n"
            "  --eval DATASET  evaluate on DATASET (a dataset directory or shard)\n"
            "  -o FILE         the page to write (required; written atomically)\n"
            "  --gallery N     pictures per gallery row (default 4)\n"
            "  --batch N       inference batch (default 32)\n"
            "  --threads N     decode threads (default 2)\n"
            "  -h, --help      this text\n"
            "\n"
            "example: tnrec report runs/tiny --eval data/test -o runs/tiny/report.html\n");
}

/* The value of option argv[*i], moving *i past it; NULL (a usage error
 * printed) when it is missing. */
static const char *value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc || !argv[*i + 1][0]) {
        cli_usage_error(CMD, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_count(const char *opt, const char *s, int *out)
{
    unsigned long long v;
    if (cli_parse_u64(s, &v) != 0 || v < 1 || v > 4096)
        return cli_usage_error(CMD, "%s wants a whole number from 1 to 4096, not '%s'", opt, s);
    *out = (int)v;
    return -1;
}

/* Returns -1 when opt is filled, else the exit code of a usage error. */
static int parse_args(tnrec_report_options *opt, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int rc = -1;
        if (!strcmp(a, "--eval") || !strcmp(a, "-o") || !strcmp(a, "--gallery") || !strcmp(a, "--batch") ||
            !strcmp(a, "--threads")) {
            if (!(v = value(argc, argv, &i)))
                return TNREC_EXIT_USAGE;
        }
        if (!strcmp(a, "--eval"))
            opt->eval_path = v;
        else if (!strcmp(a, "-o"))
            opt->output = v;
        else if (!strcmp(a, "--gallery"))
            rc = parse_count(a, v, &opt->gallery);
        else if (!strcmp(a, "--batch"))
            rc = parse_count(a, v, &opt->batch);
        else if (!strcmp(a, "--threads"))
            rc = parse_count(a, v, &opt->threads);
        else if (a[0] == '-' && a[1])
            return cli_usage_error(CMD, "unknown option '%s'", a);
        else if (opt->run_dir)
            return cli_usage_error(CMD, "one run directory only ('%s' and '%s')", opt->run_dir, a);
        else
            opt->run_dir = a;
        if (rc >= 0)
            return rc;
    }
    if (!opt->run_dir)
        return cli_usage_error(CMD, "missing RUN_DIR");
    if (!opt->output)
        return cli_usage_error(CMD, "missing -o FILE.html");
    return -1;
}

int cmd_report(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        print_usage(stdout);
        return TNREC_EXIT_OK;
    }
    tnrec_report_options opt;
    tnrec_report_options_init(&opt);
    int rc = parse_args(&opt, argc, argv);
    if (rc >= 0)
        return rc;
    tnrec_err err = tnrec_report_write(&opt);
    if (err)
        return cli_fail(CMD, err);
    printf("wrote %s\n", opt.output);
    return TNREC_EXIT_OK;
}
