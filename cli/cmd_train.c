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
#include "cli_opt.h"
#include "cli_progress.h"

#define CMD "train"

/* What the progress callbacks share. */
typedef struct train_ui {
    cli_progress p;
    uint64_t steps_done;   /* training steps in this call (for --max-steps) */
    uint64_t first_samples; /* samples of the epoch when its first report came */
    double first_seconds;
    int epoch;              /* epoch of the reports above */
} train_ui;

/* One progress line inside an epoch: step, samples/s, running loss, ETA. */
static void on_step(void *ctx, const tnrec_step_report *r)
{
    train_ui *u = ctx;
    int train = strcmp(r->phase, "train") == 0;
    if (train)
        u->steps_done++;
    if (train && (r->epoch != u->epoch || u->steps_done == 1)) {
        u->epoch = r->epoch;
        u->first_samples = r->samples;
        u->first_seconds = r->seconds;
    }
    if (!cli_progress_due(&u->p))
        return;
    if (!train) {
        cli_progress_show(&u->p, "epoch %d/%d  validating %llu/%llu batches", r->epoch, r->epochs,
                          (unsigned long long)r->step, (unsigned long long)r->steps);
        return;
    }
    double dt = r->seconds - u->first_seconds;
    double rate = dt > 0 ? (double)(r->samples - u->first_samples) / dt : 0;
    double per_step = r->step ? r->seconds / (double)r->step : 0;
    char eta[24];
    cli_progress_eta(eta, sizeof eta, per_step * (double)(r->steps - r->step));
    cli_progress_show(&u->p, "epoch %d/%d  step %llu/%llu  %.1f samples/s  loss %.4f  ETA %s", r->epoch, r->epochs,
                      (unsigned long long)r->step, (unsigned long long)r->steps, rate, r->loss, eta);
}

static void progress(void *ctx, const tnrec_epoch_report *r)
{
    train_ui *u = ctx;
    cli_progress_clear(&u->p);
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
        fprintf(stderr, " -j %d", c->threads);
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

/* A run that --max-steps ended: where it stopped and how to go on. */
static void print_max_steps(const tnrec_train_config *c, uint64_t steps)
{
    fprintf(stderr, "tnrec " CMD ": stopped after %llu step%s (--max-steps), last.tnck written; continue with: "
            "tnrec train --resume ", (unsigned long long)steps, steps == 1 ? "" : "s");
    cli_print_word(stderr, c->run_dir);
    fputc('\n', stderr);
}

/* A preset made for one input (tornet-cnn: 1 frame, the variables' two
 * sweeps and the range-folded mask) trains on it when neither --frames
 * nor --mask is given; either one leaves the input to the options. */
static void preset_input(tnrec_train_config *c, int frames_given, int mask_given)
{
    tnrec_input_shape native;
    if (frames_given || mask_given || !tnrec_model_preset_input(&native, c->model))
        return;
    c->frames = native.frames;
    int nvars = 6;
    if (c->variables) {
        nvars = 1;
        for (const char *p = c->variables; *p; p++)
            nvars += *p == ',';
    }
    if (native.channels == 2 * nvars + 2)
        c->mask = 1;
}

int cmd_train(int argc, char **argv)
{
    tnrec_train_config c;
    tnrec_train_config_default(&c);
    train_ui ui = { .epoch = 0 };
    cli_progress_init(&ui.p, CMD);
    int summary = 0, epochs_given = 0, frames_given = 0, channels_given = 0, mask_given = 0;
    long long channels = 12;
    const char *resume = NULL, *optimizer = "adam";
    double wd = -1;
    const cli_opt opts[] = {
        { CLI_STRING, "val", 0, NULL, "DATASET", .dst = &c.val_path, .help = "validation set, evaluated after every epoch" },
        { CLI_STRING, "output", 'o', NULL, "DIR", .dst = &c.run_dir, .help = "run directory (created; must not hold a run yet)" },
        { CLI_CUSTOM, "model", 0, NULL, "NAME|SPEC", .dst = &c.model, .parse = cli_check_model,
          .rule = "seed3d, tiny, tornet-cnn or a layer spec such as 'c16,p122,c32,p222,g,d32,o'",
          .help = "seed3d, tiny (default), tornet-cnn (1 frame and --mask\nunless --frames or --mask are given) or a spec such as\n'c16,p122,c32,p222,g,d32,o' (see docs/train.md)" },
        { CLI_INT, "epochs", 0, NULL, "N", CLI_INT_DST(c.epochs), .min = 1, .max = CLI_NONE,
          .help = "epochs to run (default 20 for tiny, 10 for the other\nmodels)", .seen = &epochs_given },
        { CLI_INT, "batch", 0, NULL, "N", CLI_INT_DST(c.batch), .min = 1, .max = 65536,
          .help = "global batch size (default 8 for tiny, 32 for the other\nmodels)" },
        { CLI_INT, "seed", 0, NULL, "N", CLI_INT_DST(c.seed), .min = 0, .max = CLI_NONE, .def = "1",
          .help = "weights, shuffling and dropout" },
        { CLI_ENUM, "init", 0, NULL, "NAME", .dst = &c.init, .choices = "glorot,he,torch",
          .help = "weight initialiser: glorot (Keras, default), he (Kaiming\nnormal) or torch (PyTorch's default)" },
        { CLI_DOUBLE, "lr", 0, NULL, "X", .dst = &c.lr, .min = 0, .max = 1000, .above_min = 1, .def = "1e-3",
          .help = "learning rate" },
        { CLI_ENUM, "optimizer", 0, NULL, "NAME", .dst = &optimizer, .choices = "adam,adamw",
          .help = "adam (default) or adamw" },
        { CLI_DOUBLE, "weight-decay", 0, NULL, "X", .dst = &wd, .min = 0, .max = CLI_NONE, .def = "0.004",
          .help = "AdamW decay" },
        { CLI_DOUBLE, "clipvalue", 0, NULL, "X", .dst = &c.optim.clipvalue, .min = 0, .max = CLI_NONE, .above_min = 1,
          .help = "clip gradient elements to [-X, X]" },
        { CLI_DOUBLE, "clipnorm", 0, NULL, "X", .dst = &c.optim.clipnorm, .min = 0, .max = CLI_NONE, .above_min = 1,
          .help = "clip each tensor's gradient norm to X" },
        { CLI_STRING, "schedule", 0, NULL, "S", .dst = &c.schedule,
          .help = "constant (default), exp:RATE:STEPS,\nplateau:FACTOR:PATIENCE[:MIN_LR]" },
        { CLI_STRING, "monitor", 0, NULL, "M", .dst = &c.monitor,
          .help = "val_loss (default with --val), val_roc_auc, val_pr_auc,\nval_csi, val_accuracy, loss, ..." },
        { CLI_INT, "patience", 0, NULL, "N", CLI_INT_DST(c.patience), .min = 0, .max = CLI_NONE,
          .help = "stop after N epochs without improvement and restore\nthe best weights (default 0: off)" },
        { CLI_STRING, "class-weights", 0, NULL, "W", .dst = &c.class_weights,
          .help = "balanced (default, N/(2 N_c) from the manifest), none,\nor W0,W1" },
        { CLI_CUSTOM, "variables", 0, NULL, "LIST", .dst = &c.variables, .parse = cli_check_variables,
          .rule = "a comma-separated list of DBZ, VEL, KDP, RHOHV, ZDR, WIDTH, range_folded_mask",
          .help = "input fields (default DBZ,VEL,KDP,RHOHV,ZDR,WIDTH)" },
        { CLI_INT, "frames", 0, NULL, "N", CLI_INT_DST(c.frames), .min = 1, .max = 4, .def = "4",
          .help = "last N frames", .seen = &frames_given },
        { CLI_FLAG, "mask", 0, .dst = &c.mask, .help = "add range_folded_mask as input channels", .seen = &mask_given },
        { CLI_CUSTOM, "nodata", 0, NULL, "X|dataset", .dst = &c.nodata, .parse = cli_check_nodata,
          .rule = TNREC_TRAIN_NODATA_RULE,
          .help = "value of gates with no data in the model's input (default\n0, the fields' centre; tornet-cnn: dataset, the\ndataset's own, TorNet's -3; docs/train.md)" },
        { CLI_INT, "jobs", 'j', "threads", "N", CLI_INT_DST(c.threads), .min = 1, .max = 4096, .def = "2",
          .help = "loader decode threads" },
        { CLI_ENUM, "device", 0, NULL, "D", .dst = &c.device, .choices = "cpu,cuda",
          .help = "cpu (default) or cuda (cuDNN; one GPU per process)" },
        { CLI_ENUM, "precision", 0, NULL, "P", .dst = &c.precision, .choices = "fp32,fp16,bf16",
          .help = "cuda: fp32 (default, TF32 off), fp16 (mixed, loss\nscaling) or bf16; cpu: fp32 or bf16 (bf16 products,\nfloat32 sums, where the CPU has avx512_bf16)" },
        { CLI_FLAG, "deterministic", 0, .dst = &c.deterministic, .help = "cuda: deterministic cuDNN algorithms only" },
        { CLI_INT, "gpu", 0, NULL, "N", CLI_INT_DST(c.gpu), .min = 0, .max = 1024,
          .help = "cuda: device ordinal (default: the local rank)" },
        { CLI_INT, "checkpoint-every", 0, NULL, "N", CLI_INT_DST(c.checkpoint_every), .min = 0, .max = CLI_NONE,
          .help = "also write last.tnck every N steps" },
        { CLI_INT, "max-steps", 0, NULL, "N", CLI_INT_DST(c.max_steps), .min = 0, .max = CLI_NONE,
          .help = "stop after N steps (with a checkpoint to resume from)" },
        { CLI_STRING, "resume", 0, NULL, "DIR", .dst = &resume, .help = "continue the run in DIR exactly where it stopped" },
        { CLI_FLAG, "summary", 0, .dst = &summary, .help = "print the model's layers and parameters, then exit" },
        { CLI_INT, "channels", 0, NULL, "N", CLI_INT_DST(channels), .min = 1, .max = 4096, .def = "12",
          .help = "input channels for --summary (a preset made for one\ninput, such as tornet-cnn, takes that one)", .seen = &channels_given },
        CLI_PROGRESS_OPTS(ui.p),
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "tnrec train DATASET --val DATASET -o RUN_DIR [options]\n"
                 "       tnrec train --resume RUN_DIR [--epochs N]\n"
                 "       tnrec train --model NAME|SPEC --summary [--channels N] [--frames N]",
        .about = "Train the tornado detector on a dataset made by 'tnrec build'. Each epoch\n"
                 "appends a line to RUN_DIR/metrics.jsonl and writes RUN_DIR/epoch-NNNN.tnck,\n"
                 "RUN_DIR/last.tnck and, when the monitored metric improves, RUN_DIR/best.tnck.\n"
                 "Each epoch prints one line on stdout; inside an epoch the progress (step,\n"
                 "samples/s, running loss, ETA) goes to stderr. SIGINT or SIGTERM ends the\n"
                 "step under way, writes RUN_DIR/last.tnck, prints the command that resumes\n"
                 "the run and exits 130 or 143. --resume refuses datasets unlike the ones the\n"
                 "checkpoint was trained on (docs/train.md).",
        .opts = opts,
        .epilog = "example: tnrec train data/train --val data/test -o runs/tiny --epochs 8\n",
    };
    int rc = cli_parse_one(&spec, argc, argv, "training DATASET", &c.train_path);
    if (rc >= 0)
        return rc;
    tnrec_optim_config o = c.optim;
    tnrec_optim_config_default(&c.optim, strcmp(optimizer, "adamw") == 0 ? TNREC_OPT_ADAMW : TNREC_OPT_ADAM);
    c.optim.clipvalue = o.clipvalue;
    c.optim.clipnorm = o.clipnorm;
    if (wd >= 0)
        c.optim.weight_decay = wd;
    if (summary) {
        tnrec_input_shape in = { c.frames, 120, 240, (int)channels }, native;
        if (tnrec_model_preset_input(&native, c.model)) { /* the input the preset was made for */
            if (!frames_given)
                in.frames = native.frames;
            if (!channels_given)
                in.channels = native.channels;
        }
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
        preset_input(&c, frames_given, mask_given);
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
    c.on_step = on_step;
    c.step_ctx = &ui;
    cli_progress_start(&ui.p);
    tnrec_err err = tnrec_train_run(&c, progress, &ui);
    cli_progress_clear(&ui.p);
    if (err)
        return cli_fail(CMD, err);
    if (!stop.reason && c.max_steps && ui.steps_done >= c.max_steps)
        print_max_steps(&c, ui.steps_done);
    return stop.reason ? 128 + stop.reason : TNREC_EXIT_OK;
}
