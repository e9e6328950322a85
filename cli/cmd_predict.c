/* cli/cmd_predict.c: `tnrec predict`: one probability per sample, as CSV.
 *
 * The CSV is written under OUTPUT.tmp.PID and renamed when complete
 * (docs/format.md, "Atomic output"), so a signal never leaves a file with
 * the output's name that is not whole; SIGINT and SIGTERM also remove
 * the temporary file before the process ends as the signal says. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CMD "predict"

static const char about[] =
    "Write one row per sample of DATASET, in dataset order, with the columns\n"
    "key,event_id,time,category,label,probability (time in ISO 8601 UTC).\n"
    "CHECKPOINT is a .tnck file or a run directory (its best.tnck). The file\n"
    "is written atomically. A DATASET whose fields differ from the data the\n"
    "checkpoint was trained on (encoding, shape, normalisation, no-data value)\n"
    "is refused.";

static char tmp_path[4200];

/* Async-signal-safe: unlink, then the signal's default action. */
static void on_signal(int sig)
{
    if (tmp_path[0])
        unlink(tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Removes the temporary CSV on SIGINT and SIGTERM. Returns 0 or -1. */
static int install_cleanup(const char *output)
{
    int n = snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld", output, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp_path)
        tmp_path[0] = '\0'; /* too long to name: the signal's default action alone */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    return sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ? -1 : 0;
}

int cmd_predict(int argc, char **argv)
{
    cli_score_args args;
    int rc = cli_parse_score_args(&args, CMD, about, "example: tnrec predict runs/tiny data/test -o scores.csv\n", argc,
                                  argv, 1);
    if (rc >= 0)
        return rc;
    if (install_cleanup(args.output) != 0) {
        perror("tnrec " CMD ": cannot install the SIGINT/SIGTERM handlers");
        return TNREC_EXIT_FAIL;
    }
    char what[64 + 4096];
    snprintf(what, sizeof what, "dataset '%.4096s'", args.dataset);
    cli_warn_unchecked_data(CMD, args.checkpoint, NULL, what);
    tnrec_metrics m;
    cli_progress_start(&args.progress);
    tnrec_err err = tnrec_eval_run_progress(&m, args.checkpoint, args.dataset, args.output, args.batch, args.threads,
                                            args.device, args.precision, cli_score_progress, &args.progress);
    cli_progress_clear(&args.progress);
    if (err)
        return cli_fail(CMD, err);
    fprintf(stderr, "wrote %llu rows to %s (roc_auc %.4f)\n", (unsigned long long)m.all.n, args.output, m.all.roc_auc);
    return TNREC_EXIT_OK;
}
