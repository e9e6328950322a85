/* cli/cli_score_args.c: the arguments `tnrec eval` and `tnrec predict`
 * share: CHECKPOINT DATASET, --batch, -j/--jobs, --device, --precision,
 * progress, and per command --json (eval) or -o/--output (predict); and
 * the run both make of them, with what they print when a signal stopped it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_opt.h"

int cli_parse_score_args(cli_score_args *out, const char *cmd, const char *about, const char *example, int argc,
                         char **argv, int with_output)
{
    memset(out, 0, sizeof *out);
    out->batch = 32;
    out->threads = 2;
    out->device = "cpu";
    cli_progress_init(&out->progress, cmd);
    const cli_opt output_opt = { CLI_STRING, "output", 'o', NULL, "FILE", .dst = &out->output,
                                 .help = "the CSV file (required)" };
    const cli_opt json_opt = { CLI_FLAG, "json", 0, .dst = &out->json,
                               .help = "one JSON object: roc_auc, pr_auc, accuracy, precision, recall,\n"
                                       "far, f1, csi, csi_best, csi_best_threshold, n, positives, tp,\n"
                                       "fp, fn, tn, loss, categories {TOR, NUL, WRN}; on failure\n"
                                       "{\"error\": MESSAGE}" };
    const cli_opt curves_opt = { CLI_STRING, "curves", 0, NULL, "FILE", .dst = &out->curves,
                                 .help = "also write the ROC, PR and reliability points as JSON" };
    const cli_opt opts[] = {
        with_output ? output_opt : json_opt,
        { CLI_INT, "batch", 0, NULL, "N", CLI_INT_DST(out->batch), .min = 1, .max = 65536, .def = "32",
          .help = "inference batch" },
        { CLI_INT, "jobs", 'j', "threads", "N", CLI_INT_DST(out->threads), .min = 1, .max = 65536, .def = "2",
          .help = "decode threads" },
        { CLI_ENUM, "device", 0, NULL, "D", .dst = &out->device, .choices = "cpu,cuda", .help = "cpu (default) or cuda" },
        { CLI_ENUM, "precision", 0, NULL, "P", .dst = &out->precision, .choices = "fp32,fp16,bf16",
          .help = "fp32 (default); cuda: fp16 or bf16 activations;\ncpu: bf16 products, float32 sums where the CPU\nhas avx512_bf16 (TNREC_CPU_BF16=off: fp32)" },
        CLI_PROGRESS_OPTS(out->progress),
        /* eval only: for predict this slot ends the table early */
        with_output ? (cli_opt)CLI_OPT_END : curves_opt,
        CLI_OPT_END
    };
    char usage[128];
    snprintf(usage, sizeof usage, "tnrec %s [options] CHECKPOINT DATASET%s", cmd, with_output ? " -o SCORES.csv" : "");
    const cli_spec spec = { .cmd = cmd, .usage = usage, .about = about, .opts = opts, .epilog = example };
    const char *pos[2];
    size_t npos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, 2, &npos);
    if (rc >= 0)
        return rc;
    if (npos != 2)
        return cli_usage_error(cmd, "need CHECKPOINT and DATASET");
    out->checkpoint = pos[0];
    out->dataset = pos[1];
    if (with_output && !out->output)
        return cli_usage_error(cmd, "no output file given (-o SCORES.csv)");
    return -1;
}

void cli_score_progress(void *ctx, const tnrec_step_report *r)
{
    cli_progress *p = ctx;
    if (!cli_progress_due(p))
        return;
    double rate = r->seconds > 0 ? (double)r->samples / r->seconds : 0;
    double per_step = r->step ? r->seconds / (double)r->step : 0;
    char eta[24];
    cli_progress_eta(eta, sizeof eta, per_step * (double)(r->steps - r->step));
    cli_progress_show(p, "batch %llu/%llu  %llu samples  %.1f samples/s  ETA %s", (unsigned long long)r->step,
                      (unsigned long long)r->steps, (unsigned long long)r->samples, rate, eta);
}

/* When err is the evaluation's answer to a SIGINT or SIGTERM (cli_stop.c),
 * prints the one line saying so and that nothing was written (with json,
 * also the failure object on stdout, as cli_fail_json) and returns 1; else
 * prints nothing and returns 0. */
static int score_stopped(const char *cmd, tnrec_err err, int json)
{
    if (err != TNREC_ECANCELED || !cli_stop_signal())
        return 0;
    if (json)
        cli_json_failure(cmd, err);
    const char *msg = tnrec_error_last();
    fprintf(stderr, "tnrec %s: %s (%s); nothing written\n", cmd, msg && msg[0] ? msg : "stopped", cli_stop_name());
    return 1;
}

int cli_score_run(cli_score_args *args, const char *cmd, tnrec_metrics *m)
{
    char what[64 + 4096];
    snprintf(what, sizeof what, "dataset '%.4096s'", args->dataset);
    cli_warn_unchecked_data(cmd, args->checkpoint, NULL, what);
    if (cli_stop_install() != 0) {
        fprintf(stderr, "tnrec %s: cannot install the SIGINT/SIGTERM handlers: %s\n", cmd, strerror(errno));
        return TNREC_EXIT_FAIL;
    }
    const tnrec_eval_options opt = { .csv_path = args->output, .curves_path = args->curves, .batch = args->batch,
                                     .threads = args->threads, .device = args->device,
                                     .precision = args->precision, .on_step = cli_score_progress,
                                     .step_ctx = &args->progress, .stop = cli_stop_flag() };
    cli_progress_start(&args->progress);
    tnrec_err err = tnrec_eval_run_opts(m, args->checkpoint, args->dataset, &opt);
    cli_progress_clear(&args->progress);
    if (!err)
        return -1;
    if (score_stopped(cmd, err, args->json))
        return cli_stop_exit_code();
    return args->json ? cli_fail_json(cmd, err) : cli_fail(cmd, err);
}

void cli_warn_unchecked_data(const char *cmd, const char *checkpoint, const char *name, const char *what)
{
    char *path = NULL;
    if (name) {
        size_t n = strlen(checkpoint) + strlen(name) + 2;
        if (!(path = malloc(n)))
            return;
        snprintf(path, n, "%s/%s", checkpoint, name);
    }
    int has = 1;
    tnrec_err err = tnrec_checkpoint_has_data_schema(&has, path ? path : checkpoint);
    char *config = NULL;
    json_t *cj = NULL;
    const char *from = NULL;
    if (!err && !has && !tnrec_checkpoint_config(&config, path ? path : checkpoint) &&
        (cj = json_loads(config, 0, NULL)))
        from = json_string_value(json_object_get(json_object_get(cj, "imported"), "from"));
    if (from)
        fprintf(stderr, "tnrec %s: note: checkpoint '%s' was imported from '%s' and records no training data schema, "
                "so %s is not checked against it: the model expects a 'tnrec build' dataset with the default ranges "
                "(docs/train.md, \"MIT's published weights\")\n", cmd, path ? path : checkpoint, from, what);
    else if (!err && !has)
        fprintf(stderr, "tnrec %s: warning: checkpoint '%s' predates checkpoint format 1.2 and does not record the schema of "
                "its training data, so %s cannot be checked against it (a dataset built with other settings would be "
                "scored without an error)\n", cmd, path ? path : checkpoint, what);
    json_decref(cj);
    free(config);
    tnrec_error_clear();
    free(path);
}
