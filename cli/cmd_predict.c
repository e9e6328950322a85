/* cli/cmd_predict.c: `tnrec predict`: one probability per sample, as CSV.
 *
 * The library writes the CSV under OUTPUT.tmp.PID and renames it when
 * complete (docs/format.md, "Atomic output"). SIGINT and SIGTERM set the
 * shared stop flag (cli_stop.c): the evaluation stops before its next
 * batch, or before the rename, removes its temporary file and returns
 * TNREC_ECANCELED; the command then exits 130 or 143. */
#include <stdio.h>

#include "cli.h"

#define CMD "predict"

static const char about[] =
    "Write one row per sample of DATASET, in dataset order, with the columns\n"
    "key,event_id,time,category,label,probability (time in ISO 8601 UTC).\n"
    "CHECKPOINT is a .tnck file or a run directory (its best.tnck). The file\n"
    "is written atomically. A DATASET whose fields differ from the data the\n"
    "checkpoint was trained on (encoding, shape, normalisation, no-data value)\n"
    "is refused.";

int cmd_predict(int argc, char **argv)
{
    cli_score_args args;
    int rc = cli_parse_score_args(&args, CMD, about, "SIGINT or SIGTERM stops it before the next batch; it writes nothing and exits\n"
                                  "130 or 143.\nexample: tnrec predict runs/tiny data/test -o scores.csv\n", argc,
                                  argv, 1);
    if (rc >= 0)
        return rc;
    tnrec_metrics m;
    if ((rc = cli_score_run(&args, CMD, &m)) >= 0)
        return rc;
    fprintf(stderr, "wrote %llu rows to %s (roc_auc %.4f)\n", (unsigned long long)m.all.n, args.output, m.all.roc_auc);
    return TNREC_EXIT_OK;
}
