/* cli/cmd_train.c: `tnrec train`: train the detector on a dataset, or print
 * a model's summary (--summary, no dataset needed).
 *
 * Prints one progress line per epoch; everything else (checkpoints,
 * metrics.jsonl) goes to the run directory. Under mpirun only rank 0
 * prints. SIGINT and SIGTERM stop the run after the step under way, with
 * last.tnck written; the command then prints the resume command and exits
 * 128 + the signal number (130, 143). A second signal ends it at once. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "train"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: tnrec train DATASET --val DATASET -o RUN_DIR [options]\n"
            "       tnrec train --resume RUN_DIR [--epochs N]\n"
            "       tnrec train --model NAME|SPEC --summary [--channels N] [--frames N]\n"
            "\n"
            "Train the tornado detector on a dataset made by 'tnrec build'. Each epoch\n"
            "appends a line to RUN_DIR/metrics.jsonl and writes RUN_DIR/epoch-NNNN.tnck,\n"
            "RUN_DIR/last.tnck and, when the monitored metric improves, RUN_DIR/best.tnck.\n"
            "SIGINT or SIGTERM ends the step under way, writes RUN_DIR/last.tnck, prints\n"
            "the command that resumes the run and exits 130 or 143. --resume refuses\n"
            "datasets unlike the ones the checkpoint was trained on (docs/train.md).\n"
            "\n"
            "options:\n"
            "  --val DATASET        validation set, evaluated after every epoch\n"
            "  -o, --output DIR     run directory (created; must not hold a run yet)\n"
            "  --model NAME|SPEC    seed3d, tiny (default) or a spec such as\n"
            "                       'c16,p122,c32,p222,g,d32,o' (see docs/train.md)\n"
            "  --epochs N           epochs to run (default 10)\n"
            "  --batch N            global batch size (default 32)\n"
            "  --seed N             weights, shuffling and dropout (default 1)\n"
            "  --init NAME          weight initialiser: glorot (Keras, default), he\n"
            "                       (Kaiming normal) or torch (PyTorch's default)\n"
            "  --lr X               learning rate (default 1e-3)\n"
            "  --optimizer NAME     adam (default) or adamw\n"
            "  --weight-decay X     AdamW decay (default 0.004)\n"
            "  --clipvalue X        clip gradient elements to [-X, X]\n"
            "  --clipnorm X         clip each tensor's gradient norm to X\n"
            "  --schedule S         constant (default), exp:RATE:STEPS,\n"
            "                       plateau:FACTOR:PATIENCE[:MIN_LR]\n"
            "  --monitor M          val_loss (default with --val), val_roc_auc, val_pr_auc,\n"
            "                       val_csi, val_accuracy, loss, ...\n"
            "  --patience N         stop after N epochs without improvement and restore\n"
            "                       the best weights (default 0: off)\n"
            "  --class-weights W    balanced (default, N/(2 N_c) from the manifest), none,\n"
            "                       or W0,W1\n"
            "  --variables LIST     input fields (default DBZ,VEL,KDP,RHOHV,ZDR,WIDTH)\n"
            "  --frames N           last N frames (default 4)\n"
            "  --mask               add range_folded_mask as input channels\n"
            "  --threads N          loader decode threads (default 2)\n"
            "  --device D           cpu (default) or cuda (cuDNN; one GPU per process)\n"
            "  --precision P        cuda: fp32 (default, TF32 off), fp16 (mixed, loss\n"
            "                       scaling) or bf16\n"
            "  --deterministic      cuda: deterministic cuDNN algorithms only\n"
            "  --gpu N              cuda: device ordinal (default: the local rank)\n"
            "  --checkpoint-every N also write last.tnck every N steps\n"
            "  --max-steps N        stop after N steps (with a checkpoint to resume from)\n"
            "  --resume DIR         continue the run in DIR exactly where it stopped\n"
            "  --summary            print the model's layers and parameters, then exit\n"
            "  --channels N         input channels for --summary (default 12)\n"
            "  -h, --help           this text\n"
            "\n"
            "example: tnrec train data/train --val data/test -o runs/tiny --epochs 8\n");
}

static void progress(void *ctx, const tnrec_epoch_report *r)
{
    (void)ctx;
    printf("epoch %d/%d  loss %.4f  roc_auc %.4f", r->epoch, r->epochs, r->loss, r->train.all.roc_auc);
    if (!isnan(r->val.loss))
        printf("  val_loss %.4f  val_roc_auc %.4f  val_pr_auc %.4f  val_csi %.4f", r->val.loss, r->val.all.roc_auc,
               r->val.all.pr_auc, r->val.all.csi);
    printf("  lr %.3g  %.1f s (data wait %.1f s)  %.1f samples/s%s%s\n", r->lr, r->seconds, r->data_wait_s, r->samples_per_s,
           r->improved ? "  *" : "",
           r->stopped ? "  (early stop)" : "");
    fflush(stdout);
}

/* The one line a stopped run leaves on stderr: where it stopped and the
 * command that continues it (the settings not kept in the checkpoint:
 * device, threads, checkpoint interval). */
static void print_resume_line(void *ctx, const tnrec_train_stop *st)
{
    const tnrec_train_config *c = ctx;
    const char *name = st->reason == SIGINT ? "SIGINT" : st->reason == SIGTERM ? "SIGTERM" : "a stop request";
    if (st->step)
        fprintf(stderr, "tnrec " CMD ": stopped by %s after step %llu of epoch %llu, last.tnck written; resume with: ", name,
                (unsigned long long)st->step, (unsigned long long)st->epoch + 1);
    else
        fprintf(stderr, "tnrec " CMD ": stopped by %s after epoch %llu, last.tnck written; resume with: ", name,
                (unsigned long long)st->epoch);
    if (st->world > 1)
        fprintf(stderr, "mpirun -n %d ", st->world);
    fputs("tnrec train --resume ", stderr);
    cli_print_word(stderr, c->run_dir);
    if (c->epochs > 0)
        fprintf(stderr, " --epochs %d", c->epochs);
    if (c->checkpoint_every)
        fprintf(stderr, " --checkpoint-every %llu", (unsigned long long)c->checkpoint_every);
    if (c->threads)
        fprintf(stderr, " --threads %d", c->threads);
    if (c->device && strcmp(c->device, "cpu") != 0) {
        fputs(" --device ", stderr);
        cli_print_word(stderr, c->device);
    }
    if (c->precision) {
        fputs(" --precision ", stderr);
        cli_print_word(stderr, c->precision);
    }
    if (c->deterministic)
        fputs(" --deterministic", stderr);
    if (c->gpu >= 0)
        fprintf(stderr, " --gpu %d", c->gpu);
    fputc('\n', stderr);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    if (!s)
        return -1;
    *out = strtod(s, &end);
    return (end == s || *end || !isfinite(*out)) ? -1 : 0;
}

int cmd_train(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        print_usage(stdout);
        return TNREC_EXIT_OK;
    }
    tnrec_train_config c;
    tnrec_train_config_default(&c);
    int summary = 0, epochs_given = 0;
    unsigned long long channels = 12, u;
    const char *resume = NULL, *optimizer = "adam";
    double wd = -1, d;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_U64(dst)                                                                   \
    do {                                                                                \
        if (cli_parse_u64(v, &u))                                                       \
            return cli_usage_error(CMD, "%s needs a non-negative integer", a);          \
        dst = u;                                                                        \
        i++;                                                                            \
    } while (0)
#define NEED_DBL(dst)                                                                   \
    do {                                                                                \
        if (parse_double(v, &d))                                                        \
            return cli_usage_error(CMD, "%s needs a number", a);                        \
        dst = d;                                                                        \
        i++;                                                                            \
    } while (0)
#define NEED_STR(dst)                                                                   \
    do {                                                                                \
        if (!v)                                                                         \
            return cli_usage_error(CMD, "%s needs a value", a);                         \
        dst = v;                                                                        \
        i++;                                                                            \
    } while (0)
        if (strcmp(a, "--val") == 0) NEED_STR(c.val_path);
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) NEED_STR(c.run_dir);
        else if (strcmp(a, "--model") == 0) NEED_STR(c.model);
        else if (strcmp(a, "--epochs") == 0) { NEED_U64(c.epochs); epochs_given = 1; }
        else if (strcmp(a, "--batch") == 0) NEED_U64(c.batch);
        else if (strcmp(a, "--seed") == 0) NEED_U64(c.seed);
        else if (strcmp(a, "--init") == 0) NEED_STR(c.init);
        else if (strcmp(a, "--lr") == 0) NEED_DBL(c.lr);
        else if (strcmp(a, "--optimizer") == 0) NEED_STR(optimizer);
        else if (strcmp(a, "--weight-decay") == 0) NEED_DBL(wd);
        else if (strcmp(a, "--clipvalue") == 0) NEED_DBL(c.optim.clipvalue);
        else if (strcmp(a, "--clipnorm") == 0) NEED_DBL(c.optim.clipnorm);
        else if (strcmp(a, "--schedule") == 0) NEED_STR(c.schedule);
        else if (strcmp(a, "--monitor") == 0) NEED_STR(c.monitor);
        else if (strcmp(a, "--patience") == 0) NEED_U64(c.patience);
        else if (strcmp(a, "--class-weights") == 0) NEED_STR(c.class_weights);
        else if (strcmp(a, "--variables") == 0) NEED_STR(c.variables);
        else if (strcmp(a, "--frames") == 0) NEED_U64(c.frames);
        else if (strcmp(a, "--mask") == 0) c.mask = 1;
        else if (strcmp(a, "--threads") == 0) NEED_U64(c.threads);
        else if (strcmp(a, "--device") == 0) NEED_STR(c.device);
        else if (strcmp(a, "--precision") == 0) NEED_STR(c.precision);
        else if (strcmp(a, "--deterministic") == 0) c.deterministic = 1;
        else if (strcmp(a, "--gpu") == 0) NEED_U64(c.gpu);
        else if (strcmp(a, "--checkpoint-every") == 0) NEED_U64(c.checkpoint_every);
        else if (strcmp(a, "--max-steps") == 0) NEED_U64(c.max_steps);
        else if (strcmp(a, "--resume") == 0) NEED_STR(resume);
        else if (strcmp(a, "--summary") == 0) summary = 1;
        else if (strcmp(a, "--channels") == 0) NEED_U64(channels);
        else if (a[0] == '-' && a[1])
            return cli_usage_error(CMD, "unknown option '%s'", a);
        else if (!c.train_path)
            c.train_path = a;
        else
            return cli_usage_error(CMD, "one training DATASET only (got '%s' and '%s')", c.train_path, a);
    }
#undef NEED_U64
#undef NEED_DBL
#undef NEED_STR
    if (strcmp(optimizer, "adam") == 0 || strcmp(optimizer, "adamw") == 0) {
        tnrec_optim_config o = c.optim;
        tnrec_optim_config_default(&c.optim, optimizer[4] == 'w' ? TNREC_OPT_ADAMW : TNREC_OPT_ADAM);
        c.optim.clipvalue = o.clipvalue;
        c.optim.clipnorm = o.clipnorm;
        if (wd >= 0)
            c.optim.weight_decay = wd;
    } else {
        return cli_usage_error(CMD, "unknown optimizer '%s' (adam or adamw)", optimizer);
    }
    tnrec_init init;
    if (tnrec_init_parse(&init, c.init) != TNREC_OK)
        return cli_usage_error(CMD, "--init takes glorot, he or torch, not '%s'", c.init);
    if (summary) {
        tnrec_input_shape in = { c.frames, 120, 240, (int)channels };
        if (c.frames < 1 || channels < 1 || channels > 4096)
            return cli_usage_error(CMD, "--frames and --channels must be positive");
        tnrec_model *m = NULL;
        char *text = NULL;
        tnrec_err err = tnrec_model_create(&m, c.model, &in, c.seed);
        if (!err)
            err = tnrec_model_summary(m, &text);
        tnrec_model_free(m);
        if (err)
            return cli_fail(CMD, err);
        fputs(text, stdout);
        free(text);
        return TNREC_EXIT_OK;
    }
    if (resume) {
        if (c.train_path)
            return cli_usage_error(CMD, "--resume takes its settings from the run; give no DATASET");
        c.run_dir = resume;
        c.resume = 1;
        if (!epochs_given)
            c.epochs = 0;
    } else {
        if (!c.train_path)
            return cli_usage_error(CMD, "no training DATASET given");
        if (!c.run_dir)
            return cli_usage_error(CMD, "no run directory given (-o RUN_DIR)");
    }
    if (resume)
        cli_warn_unchecked_data(CMD, resume, "last.tnck", "the datasets it names");
    if (cli_stop_install() != 0) {
        perror("tnrec " CMD ": cannot install the SIGINT/SIGTERM handlers");
        return TNREC_EXIT_FAIL;
    }
    tnrec_train_stop stop = { .request = cli_stop_flag(), .notify = print_resume_line, .ctx = &c };
    c.stop = &stop;
    tnrec_err err = tnrec_train_run(&c, progress, NULL);
    if (err)
        return cli_fail(CMD, err);
    return stop.reason ? 128 + stop.reason : TNREC_EXIT_OK;
}
