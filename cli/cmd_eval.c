/* cli/cmd_eval.c: `tnrec eval`: metrics of a checkpoint on a dataset. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "eval"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: tnrec eval [options] CHECKPOINT DATASET\n"
            "\n"
            "Run a trained model over DATASET and print its metrics: ROC-AUC, PR-AUC\n"
            "(average precision), and at probability 0.5 accuracy, precision, recall\n"
            "(POD), false-alarm ratio, F1, CSI; the best CSI over all thresholds; the\n"
            "same per category (TOR, NUL, WRN). CHECKPOINT is a .tnck file or a run\n"
            "directory (its best.tnck). A DATASET whose fields differ from the data the\n"
            "checkpoint was trained on (encoding, shape, normalisation, no-data value)\n"
            "is refused.\n"
            "\n"
            "options:\n"
            "  --json        one JSON object: roc_auc, pr_auc, accuracy, precision, recall,\n"
            "                far, f1, csi, csi_best, csi_best_threshold, n, positives, tp,\n"
            "                fp, fn, tn, loss, categories {TOR, NUL, WRN}\n"
            "  --curves FILE also write the ROC, PR and reliability points as JSON\n"
            "  --batch N     inference batch (default 32)\n"
            "  --threads N   decode threads (default 2)\n"
            "  --device D    cpu (default) or cuda\n"
            "  --precision P cuda: fp32 (default, TF32 off), fp16 or bf16 activations\n"
            "  -h, --help    this text\n"
            "\n"
            "example: tnrec eval runs/tiny data/test\n");
}

static void row(const char *name, const tnrec_binary_metrics *b)
{
    printf("%-6s %7llu %6llu  %7.4f %7.4f  %7.4f %7.4f %7.4f %7.4f %7.4f %7.4f  %7.4f @ %.3f\n", name,
           (unsigned long long)b->n, (unsigned long long)b->positives, b->roc_auc, b->pr_auc, b->accuracy,
           b->precision, b->recall, b->far, b->f1, b->csi, b->csi_best, b->csi_best_threshold);
}

/* Takes "--curves FILE" out of argv (shifting the rest down); *path is
 * NULL when absent. Returns -1, or the exit code of a usage error. */
static int take_curves(int *argc, char **argv, const char **path)
{
    *path = NULL;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--curves") != 0)
            continue;
        if (i + 1 >= *argc || !argv[i + 1][0])
            return cli_usage_error(CMD, "--curves needs a file name");
        *path = argv[i + 1];
        memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2 + 1) * sizeof *argv);
        *argc -= 2;
        break;
    }
    return -1;
}

int cmd_eval(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        print_usage(stdout);
        return TNREC_EXIT_OK;
    }
    const char *curves = NULL;
    int rc = take_curves(&argc, argv, &curves);
    if (rc >= 0)
        return rc;
    cli_score_args args;
    rc = cli_parse_score_args(&args, CMD, argc, argv, 0);
    if (rc >= 0)
        return rc;
    char what[64 + 4096];
    snprintf(what, sizeof what, "dataset '%.4096s'", args.dataset);
    cli_warn_unchecked_data(CMD, args.checkpoint, NULL, what);
    tnrec_metrics m;
    tnrec_err err = curves ? tnrec_eval_curves(&m, args.checkpoint, args.dataset, (int)args.batch, (int)args.threads,
                                               args.device, args.precision, curves)
                           : tnrec_eval_run_precision(&m, args.checkpoint, args.dataset, NULL, (int)args.batch,
                                                      (int)args.threads, args.device, args.precision);
    if (err)
        return cli_fail(CMD, err);
    if (args.json) {
        char *s = NULL;
        if ((err = tnrec_metrics_json(&m, &s)))
            return cli_fail(CMD, err);
        puts(s);
        free(s);
        return TNREC_EXIT_OK;
    }
    printf("checkpoint %s\ndataset    %s\nloss       %.4f\n\n", args.checkpoint, args.dataset, m.loss);
    printf("%-6s %7s %6s  %7s %7s  %7s %7s %7s %7s %7s %7s  %s\n", "", "n", "pos", "roc_auc", "pr_auc", "acc", "prec",
           "recall", "far", "f1", "csi", "csi_best @ threshold");
    row("all", &m.all);
    const char *names[3] = { "TOR", "NUL", "WRN" };
    for (int c = 0; c < 3; c++)
        if (m.category[c].n)
            row(names[c], &m.category[c]);
    printf("\nthreshold 0.5 (p > 0.5 is a detection); NaN where a category has one class\n");
    return TNREC_EXIT_OK;
}
