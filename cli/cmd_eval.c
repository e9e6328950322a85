/* cli/cmd_eval.c: `tnrec eval`: metrics of a checkpoint on a dataset.
 * SIGINT and SIGTERM stop the evaluation before its next batch (cli_stop.c):
 * no metrics, no --curves file, exit 130 or 143. */
#include <stdlib.h>

#include "cli.h"

#define CMD "eval"

static const char about[] =
    "Run a trained model over DATASET and print its metrics: ROC-AUC, PR-AUC\n"
    "(average precision), and at probability 0.5 accuracy, precision, recall\n"
    "(POD), false-alarm ratio, F1, CSI; the best CSI over all thresholds; the\n"
    "same per category (TOR, NUL, WRN). CHECKPOINT is a .tnck file or a run\n"
    "directory (its best.tnck). A DATASET whose fields differ from the data the\n"
    "checkpoint was trained on (encoding, shape, normalisation, no-data value)\n"
    "is refused.";

static void row(const char *name, const tnrec_binary_metrics *b)
{
    printf("%-6s %7llu %6llu  %7.4f %7.4f  %7.4f %7.4f %7.4f %7.4f %7.4f %7.4f  %7.4f @ %.3f\n", name,
           (unsigned long long)b->n, (unsigned long long)b->positives, b->roc_auc, b->pr_auc, b->accuracy,
           b->precision, b->recall, b->far, b->f1, b->csi, b->csi_best, b->csi_best_threshold);
}

int cmd_eval(int argc, char **argv)
{
    cli_score_args args;
    int rc = cli_parse_score_args(&args, CMD, about, "SIGINT or SIGTERM stops it before the next batch; it writes nothing and exits\n"
                                  "130 or 143.\nexample: tnrec eval runs/tiny data/test\n", argc, argv, 0);
    if (rc >= 0)
        return rc;
    tnrec_metrics m;
    if ((rc = cli_score_run(&args, CMD, &m)) >= 0)
        return rc;
    if (args.json) {
        char *s = NULL;
        tnrec_err err = tnrec_metrics_json(&m, &s);
        if (err)
            return cli_fail_json(CMD, err);
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
