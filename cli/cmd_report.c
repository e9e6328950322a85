/* cli/cmd_report.c: `tnrec report`: one HTML page about a training run. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_opt.h"
#include "cli_progress.h"

#define CMD "report"

static const char about[] =
    "Write one self-contained HTML page (no network, no other files) about a\n"
    "training run: loss, ROC-AUC, PR-AUC, CSI and learning rate per epoch from\n"
    "RUN_DIR/metrics.jsonl with the best checkpoint marked, and the run's\n"
    "configuration. With --eval, the run's checkpoint (best.tnck, else\n"
    "last.tnck) is evaluated on DATASET as `tnrec eval` does, and the page adds\n"
    "the ROC and PR curves (operating point at 0.5 marked), a reliability\n"
    "diagram, score histograms by class, category and EF number, confusion\n"
    "matrices at 0.5 and at the best-CSI threshold, the per-category metrics,\n"
    "the dataset's class counts and skipped inputs, and pictures of the\n"
    "highest-scoring false alarms, the missed tornadoes and the best detections.";

/* Returns -1 when opt is filled, else the exit code (0 after --help, 2
 * after a usage error). */
static int parse_args(tnrec_report_options *opt, cli_progress *progress, int argc, char **argv)
{
    const cli_opt opts[] = {
        { CLI_STRING, "eval", 0, NULL, "DATASET", .dst = &opt->eval_path,
          .help = "evaluate on DATASET (a dataset directory or shard)" },
        { CLI_STRING, "output", 'o', NULL, "FILE", .dst = &opt->output,
          .help = "the page to write (required; written atomically)" },
        { CLI_INT, "gallery", 0, NULL, "N", CLI_INT_DST(opt->gallery), .min = 1, .max = 4096, .def = "4",
          .help = "pictures per gallery row" },
        { CLI_INT, "batch", 0, NULL, "N", CLI_INT_DST(opt->batch), .min = 1, .max = 4096, .def = "32",
          .help = "inference batch" },
        { CLI_INT, "jobs", 'j', "threads", "N", CLI_INT_DST(opt->threads), .min = 1, .max = 4096, .def = "2",
          .help = "decode threads" },
        CLI_PROGRESS_OPTS(*progress),
        CLI_OPT_END
    };
    const cli_spec spec = { .cmd = CMD, .usage = "tnrec report RUN_DIR [--eval DATASET] -o FILE.html [options]",
                            .about = about, .opts = opts,
                            .epilog = "example: tnrec report runs/tiny --eval data/test -o runs/tiny/report.html\n" };
    int rc = cli_parse_one(&spec, argc, argv, "RUN_DIR", &opt->run_dir);
    if (rc >= 0)
        return rc;
    if (!opt->run_dir)
        return cli_usage_error(CMD, "missing RUN_DIR");
    if (!opt->output)
        return cli_usage_error(CMD, "missing -o FILE.html");
    return -1;
}

int cmd_report(int argc, char **argv)
{
    tnrec_report_options opt;
    tnrec_report_options_init(&opt);
    cli_progress progress;
    cli_progress_init(&progress, CMD);
    int rc = parse_args(&opt, &progress, argc, argv);
    if (rc >= 0)
        return rc;
    opt.on_step = cli_score_progress;
    opt.step_ctx = &progress;
    cli_progress_start(&progress);
    tnrec_err err = tnrec_report_write(&opt);
    cli_progress_clear(&progress);
    if (err)
        return cli_fail(CMD, err);
    printf("wrote %s\n", opt.output);
    return TNREC_EXIT_OK;
}
