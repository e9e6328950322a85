/* train/trainer.c: training runs (tnrec_train_run) and evaluation
 * (tnrec_eval_run).
 *
 * A run directory holds last.tnck (the latest position, also written
 * mid-epoch with checkpoint_every), epoch-NNNN.tnck (end of each epoch),
 * best.tnck (weights of the best epoch by the monitored metric) and
 * metrics.jsonl (one JSON object per finished epoch). Resuming reads
 * last.tnck and continues with the same batches, dropout masks and
 * optimiser state, so the weights equal those of an uninterrupted run.
 *
 * With several ranks (MPI), each rank trains on its part of every global
 * batch, gradients and BN statistics are summed, and rank 0 alone writes
 * files and validates; the validation result reaches the other ranks
 * through the same sum (they contribute zeros). Early stopping follows
 * Keras (patience epochs without improvement; restore_best_weights: the
 * best epoch's weights end up in the model and in best.tnck).
 * With device "cuda" the steps run on the GPU (train/gpu/): weights and
 * Adam moments live there and are brought back (BN statistics averaged
 * over ranks) before each validation and checkpoint. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "checkpoint.h"
#include "common.h"
#include "data_schema.h"
#include "gpu/gpu_train.h"
#include "nn.h"
#include "tnrec/tnrec.h"
#include "optim.h"

json_t *tnrec__metrics_to_json(const tnrec_metrics *m);

void tnrec_train_config_default(tnrec_train_config *out)
{
    memset(out, 0, sizeof *out);
    out->model = "tiny";
    out->epochs = 10;
    out->batch = 32;
    out->seed = 1;
    out->lr = 1e-3;
    tnrec_optim_config_default(&out->optim, TNREC_OPT_ADAM);
    out->schedule = "constant";
    out->frames = 4;
    out->device = "cpu";
    out->gpu = -1;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Device names: NULL or "cpu", and "cuda". */
static int is_cuda(const char *device) { return device && strcmp(device, "cuda") == 0; }

static tnrec_err check_device(const char *device)
{
    if (device && strcmp(device, "cpu") != 0 && strcmp(device, "cuda") != 0)
        return tnrec__fail(TNREC_EINVAL, "unknown device '%s'\nhint: cpu or cuda", device);
    return is_cuda(device) ? tnrec_gpu_check() : TNREC_OK;
}

static double sigmoid(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

/* Schedules: "constant", "exp:RATE:STEPS", "plateau:FACTOR:PATIENCE[:MIN_LR]". */
typedef struct schedule { int kind; double rate, steps, factor, min_lr; int patience; } schedule;

static tnrec_err parse_schedule(schedule *s, const char *text)
{
    memset(s, 0, sizeof *s);
    if (!text || !*text || strcmp(text, "constant") == 0)
        return TNREC_OK;
    if (sscanf(text, "exp:%lf:%lf", &s->rate, &s->steps) == 2 && s->rate > 0 && s->steps > 0) {
        s->kind = 1;
        return TNREC_OK;
    }
    int n = sscanf(text, "plateau:%lf:%d:%lf", &s->factor, &s->patience, &s->min_lr);
    if (n >= 2 && s->factor > 0 && s->factor < 1 && s->patience > 0) {
        s->kind = 2;
        return TNREC_OK;
    }
    return tnrec__fail(TNREC_EINVAL, "bad learning-rate schedule '%s'\nhint: constant, exp:RATE:STEPS (e.g. exp:0.9:1000) or plateau:FACTOR:PATIENCE[:MIN_LR] (e.g. plateau:0.5:2:1e-6)", text);
}

static tnrec_err class_weights(float w[2], const char *spec, const tnrec_dataset *ds, const char *path)
{
    if (!spec || strcmp(spec, "balanced") == 0) {
        w[0] = (float)tnrec_dataset_class_weight(ds, 0);
        w[1] = (float)tnrec_dataset_class_weight(ds, 1);
        if (w[0] <= 0 || w[1] <= 0)
            return tnrec__fail(TNREC_EINVAL, "dataset '%s' lacks one of the classes, so balanced class weights are undefined\n"
                               "hint: use --class-weights none or W0,W1", path);
        return TNREC_OK;
    }
    if (strcmp(spec, "none") == 0) {
        w[0] = w[1] = 1.0f;
        return TNREC_OK;
    }
    double a, b;
    char extra;
    if (sscanf(spec, "%lf,%lf%c", &a, &b, &extra) == 2 && a > 0 && b > 0 && isfinite(a) && isfinite(b)) {
        w[0] = (float)a;
        w[1] = (float)b;
        return TNREC_OK;
    }
    return tnrec__fail(TNREC_EINVAL, "bad class weights '%s'\nhint: balanced, none, or two positive numbers W0,W1", spec);
}

/* Metric value by name ("val_roc_auc", "loss", ...); NAN if unknown. */
static double metric_value(const char *name, double loss, const tnrec_metrics *tm, double val_loss,
                           const tnrec_metrics *vm, int *ok)
{
    *ok = 1;
    const tnrec_metrics *m = tm;
    double l = loss;
    if (strncmp(name, "val_", 4) == 0) {
        m = vm;
        l = val_loss;
        name += 4;
    }
    if (strcmp(name, "loss") == 0) return l;
    if (strcmp(name, "roc_auc") == 0) return m->all.roc_auc;
    if (strcmp(name, "pr_auc") == 0) return m->all.pr_auc;
    if (strcmp(name, "accuracy") == 0) return m->all.accuracy;
    if (strcmp(name, "precision") == 0) return m->all.precision;
    if (strcmp(name, "recall") == 0) return m->all.recall;
    if (strcmp(name, "f1") == 0) return m->all.f1;
    if (strcmp(name, "csi") == 0) return m->all.csi;
    if (strcmp(name, "csi_best") == 0) return m->all.csi_best;
    *ok = 0;
    return NAN;
}

static int lower_is_better(const char *name) { size_t n = strlen(name); return n >= 4 && strcmp(name + n - 4, "loss") == 0; }

/* GPU input pipeline: registers the loader's buffer of batch b (cap
 * samples: the loader's slot size, so one registration serves every
 * batch in that slot) with CUDA. */
static tnrec_err gpu_pin_batch(tnrec_gpu_net *gpu, const tnrec_loader *ld, const tnrec_batch *b, int cap)
{
    tnrec_input_shape sh = tnrec_loader_shape(ld);
    return tnrec__gpu_net_pin(gpu, b->x, (size_t)cap * sh.frames * sh.height * sh.width * sh.channels * sizeof(float));
}

/* Queues the copy to the GPU of the batch the loader hands out next, if
 * it is complete (never waits for it), so it crosses PCIe while the
 * current step computes. The loader keeps that batch's buffer until the
 * tnrec_loader_next after the one that returns it, by which time its
 * step has used the copy; tnrec__gpu_net_unstage covers batches whose
 * step never runs. A batch staged already is left as it is. */
static tnrec_err gpu_stage_next(tnrec_gpu_net *gpu, tnrec_loader *ld, int cap)
{
    const tnrec_batch *nb = NULL;
    tnrec_err err = tnrec_loader_peek(ld, &nb);
    if (err || !nb || nb->n == 0)
        return err;
    if ((err = gpu_pin_batch(gpu, ld, nb, cap)))
        return err;
    return tnrec__gpu_net_stage(gpu, nb->x, nb->label, nb->weight, nb->n);
}

/* Before the step of batch b: queues b's own copy first (a no-op when it
 * was staged during the step before; the copy stream runs in order, so
 * b's copy never waits behind the next one), then the next batch's. */
static tnrec_err gpu_stage(tnrec_gpu_net *gpu, tnrec_loader *ld, const tnrec_batch *b, int cap)
{
    tnrec_err err = gpu_pin_batch(gpu, ld, b, cap);
    if (!err)
        err = tnrec__gpu_net_stage(gpu, b->x, b->label, b->weight, b->n);
    if (!err)
        err = gpu_stage_next(gpu, ld, cap);
    return err;
}

/* Runs the model over a whole dataset in order: probabilities, labels,
 * categories, record indexes (any may be NULL) and the mean BCE. cap: the
 * loader's batch size. */
static tnrec_err predict_all(tnrec_net *net, tnrec_gpu_net *gpu, tnrec_loader *ld, int cap, float *prob,
                             int32_t *label, int32_t *cat, uint64_t *index, double *out_bce, tnrec_step_report *rep,
                             tnrec_step_cb on_step, void *step_ctx)
{
    tnrec_err err = tnrec_loader_start(ld, 0, 0);
    if (err)
        return err;
    double t0 = tnrec__now_seconds();
    rep->steps = tnrec_loader_steps(ld);
    rep->step = rep->samples = 0;
    rep->loss = NAN;
    size_t k = 0;
    double bce = 0;
    float *logits = NULL;
    for (;;) {
        const tnrec_batch *b = NULL;
        if ((err = tnrec_loader_next(ld, &b)))
            break;
        if (!b)
            break;
        float *nl = realloc(logits, (size_t)(b->n ? b->n : 1) * sizeof *nl);
        if (!nl) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory predicting");
            break;
        }
        logits = nl;
        if (gpu) {
            /* The loader's batch buffers outlive the GPU net: copy from
             * them directly, the next batch while this one runs. */
            err = gpu_stage(gpu, ld, b, cap);
            if (!err)
                err = tnrec_gpu_net_predict(gpu, b->x, b->n, logits);
        } else {
            err = tnrec_net_predict(net, b->x, b->n, logits);
        }
        if (err)
            break;
        for (int i = 0; i < b->n; i++, k++) {
            double z = logits[i], y = b->label[i];
            bce += (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
            if (prob) prob[k] = (float)sigmoid(z);
            if (label) label[k] = (int32_t)y;
            if (cat) cat[k] = b->category[i];
            if (index) index[k] = b->index[i];
        }
        rep->step++;
        rep->samples += (uint64_t)b->n;
        rep->seconds = tnrec__now_seconds() - t0;
        if (on_step)
            on_step(step_ctx, rep);
    }
    free(logits);
    if (gpu) {
        /* A staged batch whose step did not run (an error) must be copied
         * before the loader restarts or goes. */
        tnrec_err e = tnrec__gpu_net_unstage(gpu);
        if (!err)
            err = e;
    }
    if (out_bce)
        *out_bce = k ? bce / (double)k : NAN;
    return err;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* mkdir -p */
static tnrec_err ensure_dir(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return tnrec__fail(TNREC_EINVAL, "run directory name too long: '%s'", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return tnrec__fail_errno(TNREC_EIO, errno, "cannot create directory '%s' for run directory '%s'", buf, dir);
        *p = '/';
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot create run directory '%s'", dir);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tnrec__fail(TNREC_EIO, "'%s' exists and is not a directory\nhint: give -o a new or existing run directory", dir);
    return TNREC_OK;
}

/* metrics.jsonl keeps lines of epochs < keep_below (used on resume). */
static tnrec_err trim_metrics(const char *path, uint64_t keep_below)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return TNREC_OK;
    tnrec_err err = tnrec__read_file(path, &data, &len);
    if (err)
        return err;
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out) {
        free(data);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    char *save = NULL;
    for (char *line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        json_int_t ep = j ? json_integer_value(json_object_get(j, "epoch")) : 0;
        json_decref(j);
        if (j && ep >= 1 && (uint64_t)ep <= keep_below) {
            size_t l = strlen(line);
            memcpy(out + o, line, l);
            o += l;
            out[o++] = '\n';
        }
    }
    err = tnrec__write_file_atomic(path, out, o);
    free(out);
    free(data);
    return err;
}

static tnrec_err append_line(const char *path, const char *line)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot append to '%s'", path);
    int bad = fputs(line, f) < 0 || fputc('\n', f) == EOF;
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    return bad ? tnrec__fail_errno(TNREC_EIO, errno, "cannot write '%s'", path) : TNREC_OK;
}

/* The checkpoint's config; data_schema (reference taken) describes the
 * training data's input fields. */
static json_t *config_json(const tnrec_train_config *c, const tnrec_model *m, const float cw[2],
                           const char *variables, json_t *data_schema)
{
    json_t *j = json_object();
    if (!j) {
        json_decref(data_schema);
        return NULL;
    }
    const tnrec_input_shape *in = tnrec_model_input(m);
    json_object_set_new(j, "format", json_string("tnrec-checkpoint"));
    json_object_set_new(j, "tnrec_version", json_string(tnrec_version()));
    json_object_set_new(j, "model", json_string(tnrec_model_spec(m)));
    json_object_set_new(j, "frames", json_integer(in->frames));
    json_object_set_new(j, "height", json_integer(in->height));
    json_object_set_new(j, "width", json_integer(in->width));
    json_object_set_new(j, "channels", json_integer(in->channels));
    json_object_set_new(j, "variables", json_string(variables));
    json_object_set_new(j, "mask", json_boolean(c->mask));
    json_object_set_new(j, "train", json_string(c->train_path ? c->train_path : ""));
    json_object_set_new(j, "val", c->val_path ? json_string(c->val_path) : json_null());
    json_object_set_new(j, "epochs", json_integer(c->epochs));
    json_object_set_new(j, "batch", json_integer(c->batch));
    json_object_set_new(j, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(j, "init", json_string(c->init ? c->init : "glorot"));
    json_object_set_new(j, "lr", json_real(c->lr));
    json_object_set_new(j, "optimizer", json_string(c->optim.kind == TNREC_OPT_ADAMW ? "adamw" : "adam"));
    json_object_set_new(j, "beta1", json_real(c->optim.beta1));
    json_object_set_new(j, "beta2", json_real(c->optim.beta2));
    json_object_set_new(j, "epsilon", json_real(c->optim.epsilon));
    json_object_set_new(j, "weight_decay", json_real(c->optim.weight_decay));
    json_object_set_new(j, "clipvalue", json_real(c->optim.clipvalue));
    json_object_set_new(j, "clipnorm", json_real(c->optim.clipnorm));
    json_object_set_new(j, "schedule", json_string(c->schedule ? c->schedule : "constant"));
    json_object_set_new(j, "patience", json_integer(c->patience));
    json_object_set_new(j, "monitor", json_string(c->monitor ? c->monitor : "val_loss"));
    json_object_set_new(j, "class_weight_0", json_real(cw[0]));
    json_object_set_new(j, "class_weight_1", json_real(cw[1]));
    if (json_object_set_new(j, "data_schema", data_schema)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Restores the run settings of a checkpoint's config into c (strings
 * borrowed from j, which must outlive c's use). */
static tnrec_err config_from_json(tnrec_train_config *c, json_t *j, float cw[2], const char *path)
{
    const char *opt = json_string_value(json_object_get(j, "optimizer"));
    const char *model = json_string_value(json_object_get(j, "model"));
    const char *train = json_string_value(json_object_get(j, "train"));
    if (!opt || !model || !train)
        return tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': incomplete config", path);
    c->model = model;
    c->train_path = train;
    c->val_path = json_string_value(json_object_get(j, "val"));
    c->variables = json_string_value(json_object_get(j, "variables"));
    c->frames = (int)json_integer_value(json_object_get(j, "frames"));
    c->mask = json_is_true(json_object_get(j, "mask"));
    if (c->epochs <= 0)
        c->epochs = (int)json_integer_value(json_object_get(j, "epochs"));
    c->batch = (int)json_integer_value(json_object_get(j, "batch"));
    c->seed = (uint64_t)json_integer_value(json_object_get(j, "seed"));
    c->init = json_string_value(json_object_get(j, "init")); /* absent before --init: glorot */
    c->lr = json_real_value(json_object_get(j, "lr"));
    tnrec_optim_config_default(&c->optim, strcmp(opt, "adamw") == 0 ? TNREC_OPT_ADAMW : TNREC_OPT_ADAM);
    c->optim.beta1 = json_real_value(json_object_get(j, "beta1"));
    c->optim.beta2 = json_real_value(json_object_get(j, "beta2"));
    c->optim.epsilon = json_real_value(json_object_get(j, "epsilon"));
    c->optim.weight_decay = json_real_value(json_object_get(j, "weight_decay"));
    c->optim.clipvalue = json_real_value(json_object_get(j, "clipvalue"));
    c->optim.clipnorm = json_real_value(json_object_get(j, "clipnorm"));
    c->schedule = json_string_value(json_object_get(j, "schedule"));
    c->patience = (int)json_integer_value(json_object_get(j, "patience"));
    c->monitor = json_string_value(json_object_get(j, "monitor"));
    cw[0] = (float)json_real_value(json_object_get(j, "class_weight_0"));
    cw[1] = (float)json_real_value(json_object_get(j, "class_weight_1"));
    return TNREC_OK;
}

typedef struct run {
    tnrec_train_config c;
    tnrec__allreduce *ar;
    int rank, world;
    tnrec_dataset *train_ds, *val_ds;
    tnrec_loader *train_ld, *val_ld;
    tnrec_model *model;
    tnrec_net *net;
    tnrec_gpu_net *gpu;     /* device "cuda": the steps run here */
    int gpu_fp16;           /* gpu runs float16: its loss scale goes into checkpoints */
    tnrec_optim *opt;
    tnrec__train_state st;
    char *config_text;
    json_t *resume_cfg;
    char *p_last, *p_best, *p_metrics;
    float *best_params, *best_state;
    float *val_prob;
    int32_t *val_label, *val_cat;
    float cw[2];
    schedule sched;
    double data_wait;       /* seconds this epoch spent waiting for batches */
    uint64_t staged_steps;  /* this epoch's GPU steps whose batch was copied during the step before */
} run;

static tnrec_err write_ckpt(run *r, const char *path)
{
    if (r->gpu_fp16) {
        /* Every rank has the same scale (it follows the summed gradient). */
        double scale;
        int good;
        tnrec__gpu_net_loss_scale(r->gpu, &scale, &good);
        r->st.loss_scale = scale;
        r->st.loss_scale_good_steps = (uint64_t)good;
    }
    if (r->rank != 0)
        return TNREC_OK;
    return tnrec__checkpoint_write(path, r->config_text, r->model, r->opt, &r->st);
}

/* The training step just done, to the caller's on_step (rank 0). */
static void report_step(const run *r, uint64_t epoch, uint64_t steps, double seconds)
{
    if (!r->c.on_step || r->rank != 0)
        return;
    tnrec_step_report rep = { .phase = "train", .epoch = (int)epoch + 1, .epochs = r->c.epochs, .step = r->st.step,
                              .steps = steps, .samples = r->st.samples, .seconds = seconds,
                              .loss = r->st.samples ? r->st.loss_sum / (double)r->st.samples : NAN };
    r->c.on_step(r->c.step_ctx, &rep);
}

static tnrec_err epoch_end(run *r, int epoch, double t_epoch, tnrec_train_progress_cb cb, void *ctx, int *stop)
{
    tnrec_err err;
    if (r->gpu && (err = tnrec__gpu_net_sync(r->gpu)))
        return err;
    tnrec_epoch_report rep;
    memset(&rep, 0, sizeof rep);
    rep.epoch = epoch + 1;
    rep.epochs = r->c.epochs;
    rep.loss = r->st.samples ? r->st.loss_sum / (double)r->st.samples : NAN;
    rep.lr = r->st.lr;
    rep.seconds = t_epoch;
    rep.samples_per_s = t_epoch > 0 ? (double)r->st.samples / t_epoch : 0;
    rep.data_wait_s = r->data_wait;
    rep.gpu_staged_steps = r->staged_steps;
    if ((err = tnrec_metrics_compute(&rep.train, r->st.part_prob, r->st.part_label, r->st.part_cat, r->st.npart)))
        return err;
    rep.train.loss = rep.loss;
    double val_loss = NAN;
    memset(&rep.val, 0, sizeof rep.val);
    rep.val.loss = NAN;
    if (r->val_ld) {
        /* Rank 0 validates; the sum hands its numbers to every rank. */
        double shared[4] = { 0, 0, 0, 0 };
        if (r->rank == 0) {
            double bce = 0;
            size_t nv = tnrec_dataset_count(r->val_ds);
            int cap = (r->c.batch + r->world - 1) / r->world;
            tnrec_step_report sr = { .phase = "val", .epoch = epoch + 1, .epochs = r->c.epochs };
            if ((err = predict_all(r->net, r->gpu, r->val_ld, cap, r->val_prob, r->val_label, r->val_cat, NULL, &bce, &sr,
                                   r->c.on_step, r->c.step_ctx)))
                return err;
            if ((err = tnrec_metrics_compute(&rep.val, r->val_prob, r->val_label, r->val_cat, nv)))
                return err;
            val_loss = bce + tnrec__model_l2(r->model);
            rep.val.loss = val_loss;
        }
        int ok;
        shared[0] = r->rank == 0 ? metric_value(r->c.monitor, rep.loss, &rep.train, val_loss, &rep.val, &ok) : 0;
        if ((err = tnrec__allreduce_sum_double(r->ar, shared, 1)))
            return err;
        rep.monitor_value = shared[0];
    } else {
        int ok;
        rep.monitor_value = metric_value(r->c.monitor, rep.loss, &rep.train, NAN, &rep.val, &ok);
    }
    rep.monitor = r->c.monitor;
    int lower = lower_is_better(r->c.monitor);
    double v = rep.monitor_value;
    int improved = isfinite(v) && (r->st.best_epoch < 0 || !isfinite(r->st.best_value) ||
                                   (lower ? v < r->st.best_value : v > r->st.best_value));
    if (improved) {
        r->st.best_value = v;
        r->st.best_epoch = epoch;
        r->st.wait = 0;
        r->st.plateau_wait = 0;
        memcpy(r->best_params, r->model->params, r->model->nparams * sizeof(float));
        memcpy(r->best_state, r->model->state, r->model->nstate * sizeof(float));
    } else {
        r->st.wait++;
        r->st.plateau_wait++;
    }
    rep.improved = improved;
    if (r->sched.kind == 2 && r->st.plateau_wait >= (uint64_t)r->sched.patience) {
        double nlr = r->st.lr * r->sched.factor;
        r->st.lr = nlr < r->sched.min_lr ? r->sched.min_lr : nlr;
        r->st.plateau_wait = 0;
    }
    *stop = r->c.patience > 0 && r->st.wait >= (uint64_t)r->c.patience;
    rep.stopped = *stop;

    /* Position: the next epoch, from its start. */
    r->st.epoch = (uint64_t)epoch + 1;
    r->st.step = 0;
    r->st.loss_sum = 0;
    r->st.seconds = 0;
    r->st.samples = 0;
    r->st.npart = 0;
    if (r->rank == 0) {
        json_t *line = json_object();
        json_object_set_new(line, "epoch", json_integer(epoch + 1));
        json_object_set_new(line, "loss", isfinite(rep.loss) ? json_real(rep.loss) : json_null());
        json_object_set_new(line, "lr", json_real(rep.lr));
        json_object_set_new(line, "seconds", json_real(rep.seconds));
        json_object_set_new(line, "samples_per_s", json_real(rep.samples_per_s));
        json_object_set_new(line, "data_wait_s", json_real(rep.data_wait_s));
        if (r->gpu)
            json_object_set_new(line, "gpu_staged_steps", json_integer((json_int_t)rep.gpu_staged_steps));
        const char *keys[] = { "roc_auc", "pr_auc", "accuracy", "precision", "recall", "far", "f1", "csi", "csi_best", NULL };
        double vals[2][9] = {
            { rep.train.all.roc_auc, rep.train.all.pr_auc, rep.train.all.accuracy, rep.train.all.precision, rep.train.all.recall,
              rep.train.all.far, rep.train.all.f1, rep.train.all.csi, rep.train.all.csi_best },
            { rep.val.all.roc_auc, rep.val.all.pr_auc, rep.val.all.accuracy, rep.val.all.precision, rep.val.all.recall,
              rep.val.all.far, rep.val.all.f1, rep.val.all.csi, rep.val.all.csi_best } };
        for (int i = 0; keys[i]; i++)
            json_object_set_new(line, keys[i], isfinite(vals[0][i]) ? json_real(vals[0][i]) : json_null());
        if (r->val_ld) {
            json_object_set_new(line, "val_loss", isfinite(rep.val.loss) ? json_real(rep.val.loss) : json_null());
            for (int i = 0; keys[i]; i++) {
                char k[32];
                snprintf(k, sizeof k, "val_%s", keys[i]);
                json_object_set_new(line, k, isfinite(vals[1][i]) ? json_real(vals[1][i]) : json_null());
            }
            json_object_set_new(line, "val", tnrec__metrics_to_json(&rep.val));
        }
        json_object_set_new(line, "monitor", json_string(rep.monitor));
        json_object_set_new(line, "improved", json_boolean(improved));
        json_object_set_new(line, "best_epoch", json_integer(r->st.best_epoch + 1));
        json_object_set_new(line, "stopped", json_boolean(*stop));
        char *text = json_dumps(line, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        json_decref(line);
        if (!text)
            return tnrec__fail(TNREC_ENOMEM, "out of memory writing metrics");
        err = append_line(r->p_metrics, text);
        free(text);
        if (err)
            return err;
        char name[64];
        snprintf(name, sizeof name, "epoch-%04d.tnck", epoch + 1);
        char *p_epoch = join_path(r->c.run_dir, name);
        if (!p_epoch)
            return tnrec__fail(TNREC_ENOMEM, "out of memory");
        err = write_ckpt(r, p_epoch);
        free(p_epoch);
        if (!err)
            err = write_ckpt(r, r->p_last);
        if (!err && improved)
            err = write_ckpt(r, r->p_best);
        if (err)
            return err;
    }
    if (cb && r->rank == 0)
        cb(ctx, &rep);
    return TNREC_OK;
}

/* A dataset with no records cannot be trained on or scored. */
static tnrec_err check_not_empty(const tnrec_dataset *ds, const char *what, const char *path)
{
    if (tnrec_dataset_count(ds) > 0)
        return TNREC_OK;
    return tnrec__fail(TNREC_EINVAL, "%s '%s' has no records\nhint: 'tnrec dump %s' shows the inputs its build skipped; "
                       "rebuild it from a source that holds samples", what, path, path);
}

/* The datasets of a run against the data the model was trained on: on
 * resume, the checkpoint's data_schema (if it has one); on a new run,
 * the validation set against the training set. */
static tnrec_err check_run_data(run *r, const char *vars)
{
    if (r->c.resume) {
        const json_t *rec = json_object_get(r->resume_cfg, "data_schema");
        if (!rec)
            return TNREC_OK; /* checkpoint before 1.2: nothing to check against */
        tnrec_err err = tnrec__data_schema_check(rec, r->train_ds, "training dataset", r->c.train_path,
                                                 "the training data of checkpoint", r->p_last);
        if (!err && r->val_ds)
            err = tnrec__data_schema_check(rec, r->val_ds, "validation dataset", r->c.val_path,
                                           "the training data of checkpoint", r->p_last);
        return err;
    }
    if (!r->val_ds)
        return TNREC_OK;
    json_t *ts = tnrec__data_schema_json(r->train_ds, vars, r->c.mask);
    if (!ts)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    tnrec_err err = tnrec__data_schema_check(ts, r->val_ds, "validation dataset", r->c.val_path, "training dataset",
                                             r->c.train_path);
    json_decref(ts);
    return err;
}

/* A stop request, agreed by every rank (see tnrec_train_stop): *out is the
 * highest request of any rank, 0 for none. Collective with several ranks. */
static tnrec_err poll_stop(run *r, int *out)
{
    *out = 0;
    if (!r->c.stop || !r->c.stop->request)
        return TNREC_OK;
    int mine = (int)*r->c.stop->request;
    mine = mine < 0 ? 0 : mine > 63 ? 63 : mine;
    if (r->world == 1) {
        *out = mine;
        return TNREC_OK;
    }
    double votes[64] = { 0 };
    votes[mine] = mine ? 1 : 0;
    tnrec_err err = tnrec__allreduce_sum_double(r->ar, votes, 64);
    if (err)
        return err;
    for (int v = 63; v > 0 && !*out; v--)
        if (votes[v] > 0)
            *out = v;
    return TNREC_OK;
}

/* Returns on every rank once all have called it. */
static tnrec_err barrier(run *r)
{
    double zero = 0;
    return tnrec__allreduce_sum_double(r->ar, &zero, 1);
}

/* The run stops for `reason` at its current position, last.tnck written:
 * records it, tells rank 0's caller, and holds every rank until then, or
 * a launcher that ends the job when one rank exits could cut rank 0 short
 * in its write or its report. */
static tnrec_err stopped_for(run *r, int reason)
{
    tnrec_train_stop *st = r->c.stop;
    st->reason = reason;
    st->epoch = r->st.epoch;
    st->step = r->st.step;
    if (r->rank == 0 && st->notify)
        st->notify(st->ctx, st);
    return r->world > 1 ? barrier(r) : TNREC_OK;
}

/* The loader refused a training or validation set for the variables:
 * name the set and how to choose (a resumed run keeps its variables). */
static tnrec_err train_fields_missing(const char *path, int resume)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", tnrec_error_last());
    why[strcspn(why, "\n")] = '\0';
    return tnrec__fail(TNREC_ESCHEMA, "dataset '%s': %s\nhint: %s", path, why,
                       resume ? "a resumed run keeps the variables it was started with; give it datasets built with them"
                              : "choose --variables among the dataset's fields ('tnrec dump' lists them)");
}

static void run_free(run *r)
{
    tnrec_gpu_net_free(r->gpu);
    tnrec_loader_free(r->train_ld);
    tnrec_loader_free(r->val_ld);
    tnrec_dataset_close(r->train_ds);
    tnrec_dataset_close(r->val_ds);
    tnrec_net_free(r->net);
    tnrec_optim_free(r->opt);
    tnrec_model_free(r->model);
    tnrec__train_state_clear(&r->st);
    free(r->config_text);
    json_decref(r->resume_cfg);
    free(r->p_last);
    free(r->p_best);
    free(r->p_metrics);
    free(r->best_params);
    free(r->best_state);
    free(r->val_prob);
    free(r->val_label);
    free(r->val_cat);
    tnrec__allreduce_free(r->ar);
}

tnrec_err tnrec_train_run(const tnrec_train_config *cfg, tnrec_train_progress_cb cb, void *ctx)
{
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->c = *cfg;
    r->st.best_epoch = -1;
    tnrec_err err = TNREC_OK;
    char *resume_text = NULL;
    tnrec_model *resume_model = NULL;
    if ((err = check_device(cfg->device)))
        return err;
    if (!cfg->run_dir)
        return tnrec__fail(TNREC_EINVAL, "no run directory given\nhint: tnrec train DATASET --val DATASET -o RUN_DIR");
    if ((err = tnrec__allreduce_init(&r->ar)))
        return err;
    r->rank = tnrec__allreduce_rank(r->ar);
    r->world = tnrec__allreduce_size(r->ar);
    if (r->c.stop) {
        r->c.stop->reason = 0;
        r->c.stop->rank = r->rank;
        r->c.stop->world = r->world;
    }
    r->p_last = join_path(cfg->run_dir, "last.tnck");
    r->p_best = join_path(cfg->run_dir, "best.tnck");
    r->p_metrics = join_path(cfg->run_dir, "metrics.jsonl");
    if (!r->p_last || !r->p_best || !r->p_metrics) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    if (cfg->resume) {
        /* Settings come from the checkpoint; epochs may be raised. */
        if ((err = tnrec__checkpoint_read(r->p_last, &resume_text, &resume_model, NULL, NULL))) {
            if (err == TNREC_ENOTFOUND || err == TNREC_EIO)
                err = tnrec__fail(err, "cannot resume: '%s' not readable (%s)\nhint: is '%s' the -o directory of an earlier 'tnrec train'?",
                                  r->p_last, tnrec_error_last(), cfg->run_dir);
            goto done;
        }
        json_error_t jerr;
        r->resume_cfg = json_loads(resume_text, 0, &jerr);
        if (!r->resume_cfg) {
            err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config is not JSON", r->p_last);
            goto done;
        }
        r->c.epochs = cfg->epochs;
        if ((err = config_from_json(&r->c, r->resume_cfg, r->cw, r->p_last)))
            goto done;
    }
    if (!r->c.train_path) {
        err = tnrec__fail(TNREC_EINVAL, "no training dataset given");
        goto done;
    }
    if (r->c.epochs < 1 || r->c.batch < 1) {
        err = tnrec__fail(TNREC_EINVAL, "epochs (%d) and batch (%d) must be at least 1", r->c.epochs, r->c.batch);
        goto done;
    }
    if (!r->c.monitor)
        r->c.monitor = r->c.val_path ? "val_loss" : "loss";
    {
        int ok;
        tnrec_metrics dummy;
        memset(&dummy, 0, sizeof dummy);
        metric_value(r->c.monitor, 0, &dummy, 0, &dummy, &ok);
        if (!ok) {
            err = tnrec__fail(TNREC_EINVAL, "unknown metric to monitor '%s'\nhint: val_loss, val_roc_auc, val_pr_auc, val_csi, val_accuracy, loss, roc_auc ...", r->c.monitor);
            goto done;
        }
        if (strncmp(r->c.monitor, "val_", 4) == 0 && !r->c.val_path) {
            err = tnrec__fail(TNREC_EINVAL, "monitor '%s' needs a validation set\nhint: add --val DATASET or monitor loss", r->c.monitor);
            goto done;
        }
    }
    if ((err = parse_schedule(&r->sched, r->c.schedule)))
        goto done;
    if (!(r->c.lr > 0)) {
        err = tnrec__fail(TNREC_EINVAL, "learning rate must be > 0");
        goto done;
    }
    if ((err = tnrec_dataset_open(&r->train_ds, r->c.train_path)))
        goto done;
    if (r->c.val_path && (err = tnrec_dataset_open(&r->val_ds, r->c.val_path)))
        goto done;
    if ((err = check_not_empty(r->train_ds, "training dataset", r->c.train_path)))
        goto done;
    if (r->val_ds && (err = check_not_empty(r->val_ds, "validation dataset", r->c.val_path)))
        goto done;
    const char *vars = r->c.variables ? r->c.variables : "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH";
    if ((err = check_run_data(r, vars)))
        goto done;
    if (!cfg->resume && (err = class_weights(r->cw, r->c.class_weights, r->train_ds, r->c.train_path)))
        goto done;
    tnrec_loader_config lc = { .variables = vars, .frames = r->c.frames, .mask = r->c.mask, .batch = r->c.batch,
                               .threads = r->c.threads, .prefetch = is_cuda(r->c.device) ? 3 : 2, .shuffle = 1, .seed = r->c.seed,
                               .rank = r->rank, .world = r->world, .class_weight = { r->cw[0], r->cw[1] } };
    if ((err = tnrec_loader_create(&r->train_ld, r->train_ds, &lc))) {
        if (err == TNREC_ESCHEMA)
            err = train_fields_missing(r->c.train_path, cfg->resume);
        goto done;
    }
    if (r->val_ds) {
        tnrec_loader_config vc = lc;
        vc.batch = (r->c.batch + r->world - 1) / r->world; /* fits the workspace */
        vc.shuffle = 0;
        vc.rank = 0;
        vc.world = 1;
        vc.class_weight[0] = vc.class_weight[1] = 1.0f;
        if ((err = tnrec_loader_create(&r->val_ld, r->val_ds, &vc))) {
            if (err == TNREC_ESCHEMA)
                err = train_fields_missing(r->c.val_path, cfg->resume);
            goto done;
        }
        tnrec_input_shape a = tnrec_loader_shape(r->train_ld), b = tnrec_loader_shape(r->val_ld);
        if (memcmp(&a, &b, sizeof a) != 0) {
            err = tnrec__fail(TNREC_ESCHEMA, "validation set '%s' has samples of %dx%dx%dx%d, training set %dx%dx%dx%d",
                              r->c.val_path, b.frames, b.height, b.width, b.channels, a.frames, a.height, a.width, a.channels);
            goto done;
        }
        size_t nv = tnrec_dataset_count(r->val_ds);
        r->val_prob = malloc(nv * sizeof(float));
        r->val_label = malloc(nv * sizeof(int32_t));
        r->val_cat = malloc(nv * sizeof(int32_t));
        if (!r->val_prob || !r->val_label || !r->val_cat) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory for %zu validation scores", nv);
            goto done;
        }
    }
    tnrec_input_shape shape = tnrec_loader_shape(r->train_ld);
    tnrec_init init;
    if ((err = tnrec_init_parse(&init, r->c.init)) ||
        (err = tnrec_model_create(&r->model, r->c.model, &shape, r->c.seed)) ||
        (err = tnrec_model_init_weights(r->model, init, r->c.seed)))
        goto done;
    if ((err = tnrec_optim_create(&r->opt, &r->c.optim, r->model)))
        goto done;
    int local_max = (r->c.batch + r->world - 1) / r->world;
    /* The CPU workspace is not needed when the steps run on the GPU. */
    if (!is_cuda(r->c.device) && (err = tnrec_net_create(&r->net, r->model, local_max)))
        goto done;
    r->best_params = malloc(r->model->nparams * sizeof(float));
    r->best_state = malloc((r->model->nstate + 1) * sizeof(float));
    size_t ntrain = tnrec_dataset_count(r->train_ds);
    r->st.part_prob = malloc((ntrain + 1) * sizeof(float));
    r->st.part_label = malloc((ntrain + 1) * sizeof(int32_t));
    r->st.part_cat = malloc((ntrain + 1) * sizeof(int32_t));
    if (!r->best_params || !r->best_state || !r->st.part_prob || !r->st.part_label || !r->st.part_cat) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    r->st.lr = r->c.lr;
    json_t *cj = config_json(&r->c, r->model, r->cw, vars, tnrec__data_schema_json(r->train_ds, vars, r->c.mask));
    r->config_text = cj ? json_dumps(cj, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(cj);
    if (!r->config_text) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    if (cfg->resume) {
        if (strcmp(tnrec_model_spec(resume_model), tnrec_model_spec(r->model)) != 0 ||
            resume_model->nparams != r->model->nparams) {
            err = tnrec__fail(TNREC_ESCHEMA, "checkpoint '%s' does not fit the data it was trained on", r->p_last);
            goto done;
        }
        tnrec_model_free(resume_model);
        resume_model = NULL;
        free(resume_text);
        resume_text = NULL;
        tnrec__train_state st;
        memset(&st, 0, sizeof st);
        if ((err = tnrec__checkpoint_read(r->p_last, &resume_text, &resume_model, r->opt, &st)))
            goto done;
        memcpy(r->model->params, resume_model->params, r->model->nparams * sizeof(float));
        memcpy(r->model->state, resume_model->state, r->model->nstate * sizeof(float));
        if (st.npart > ntrain) {
            tnrec__train_state_clear(&st);
            err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s' holds more scores than the training set has samples", r->p_last);
            goto done;
        }
        memcpy(r->st.part_prob, st.part_prob, st.npart * sizeof(float));
        memcpy(r->st.part_label, st.part_label, st.npart * sizeof(int32_t));
        memcpy(r->st.part_cat, st.part_cat, st.npart * sizeof(int32_t));
        float *pp = r->st.part_prob;
        int32_t *pl = r->st.part_label, *pc = r->st.part_cat;
        free(st.part_prob);
        free(st.part_label);
        free(st.part_cat);
        r->st = st;
        r->st.part_prob = pp;
        r->st.part_label = pl;
        r->st.part_cat = pc;
        /* Best weights so far, for restoring at the end. */
        memcpy(r->best_params, r->model->params, r->model->nparams * sizeof(float));
        memcpy(r->best_state, r->model->state, r->model->nstate * sizeof(float));
        if (r->st.best_epoch >= 0) {
            char *bt = NULL;
            tnrec_model *bm = NULL;
            if ((err = tnrec__checkpoint_read(r->p_best, &bt, &bm, NULL, NULL)))
                goto done;
            memcpy(r->best_params, bm->params, r->model->nparams * sizeof(float));
            memcpy(r->best_state, bm->state, r->model->nstate * sizeof(float));
            free(bt);
            tnrec_model_free(bm);
        }
        if (r->rank == 0 && (err = trim_metrics(r->p_metrics, r->st.epoch)))
            goto done;
    } else if (r->rank == 0) {
        if ((err = ensure_dir(cfg->run_dir)))
            goto done;
        struct stat sb;
        if (stat(r->p_last, &sb) == 0) {
            err = tnrec__fail(TNREC_EINVAL, "run directory '%s' already holds a run (last.tnck)\nhint: add --resume %s to continue it, or choose another -o",
                              cfg->run_dir, cfg->run_dir);
            goto done;
        }
        remove(r->p_metrics);
    }

    if (is_cuda(r->c.device)) {
        tnrec_gpu_options go;
        tnrec_gpu_options_default(&go);
        go.device = r->c.gpu;
        go.deterministic = r->c.deterministic;
        if ((err = tnrec_precision_parse(&go.precision, r->c.precision ? r->c.precision : "fp32")))
            goto done;
        if ((err = tnrec__gpu_net_create_ranked(&r->gpu, r->model, local_max, &go, r->ar)))
            goto done;
        r->gpu_fp16 = go.precision == TNREC_PRECISION_FP16;
        /* A resumed float16 run goes on with the scale it had; runs and
         * checkpoints without one (0) start at the initial scale. */
        if (r->gpu_fp16 && r->st.loss_scale > 0) {
            uint64_t good = r->st.loss_scale_good_steps;
            if ((err = tnrec__gpu_net_set_loss_scale(r->gpu, r->st.loss_scale, good > INT_MAX ? 0 : (int)good)))
                goto done;
        }
    }
    uint64_t steps = tnrec_loader_steps(r->train_ld), done_steps = 0;
    int stop = 0;
    float *logits = malloc((size_t)local_max * sizeof *logits);
    if (!logits) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    for (uint64_t epoch = r->st.epoch; epoch < (uint64_t)r->c.epochs && !stop; epoch++) {
        if ((err = tnrec_loader_start(r->train_ld, epoch, r->st.step)))
            break;
        double t0 = tnrec__now_seconds(), seconds_before = r->st.seconds;
        int interrupted = 0;
        r->data_wait = 0;
        uint64_t staged0 = r->gpu ? tnrec__gpu_net_staged_steps(r->gpu) : 0;
        for (;;) {
            const tnrec_batch *b = NULL;
            double tw = tnrec__now_seconds();
            err = tnrec_loader_next(r->train_ld, &b);
            r->data_wait += tnrec__now_seconds() - tw;
            if (err || !b)
                break;
            double lr = r->st.lr;
            if (r->sched.kind == 1)
                lr = r->c.lr * pow(r->sched.rate, (double)r->st.global_step / r->sched.steps);
            double loss = 0;
            uint64_t dseed = mix64(r->c.seed ^ mix64(r->st.global_step + 1));
            if (r->gpu) {
                /* Batch k+1 is copied on the copy stream while step k runs. */
                err = gpu_stage(r->gpu, r->train_ld, b, local_max);
                if (!err)
                    err = tnrec__gpu_net_train_step(r->gpu, b->x, b->label, b->weight, b->n, b->global_n, b->global_first,
                                                    dseed, logits, &loss);
            } else {
                err = tnrec__net_train_step(r->net, b->x, b->label, b->weight, b->n, b->global_n, b->global_first,
                                            dseed, r->ar, logits, &loss);
            }
            if (err)
                break;
            if (!isfinite(loss)) {
                err = tnrec__fail(TNREC_ERANGE, "training loss is not finite at epoch %llu step %llu\nhint: lower --lr or add --clipvalue 1",
                                  (unsigned long long)epoch + 1, (unsigned long long)r->st.step + 1);
                break;
            }
            /* Not ready before the step: maybe now, to overlap the update. */
            if (r->gpu && (err = gpu_stage_next(r->gpu, r->train_ld, local_max)))
                break;
            if ((err = r->gpu ? tnrec_gpu_net_optim_step(r->gpu, r->opt, lr, NULL) : tnrec_optim_step(r->opt, r->model, lr)))
                break;
            if (r->sched.kind == 1)
                r->st.lr = lr;
            for (int i = 0; i < b->n; i++) {
                r->st.part_prob[r->st.npart] = (float)sigmoid(logits[i]);
                r->st.part_label[r->st.npart] = (int32_t)b->label[i];
                r->st.part_cat[r->st.npart] = b->category[i];
                r->st.npart++;
            }
            r->st.loss_sum += loss * b->global_n;
            r->st.samples += (uint64_t)b->global_n;
            r->st.step++;
            r->st.global_step++;
            done_steps++;
            r->st.seconds = seconds_before + (tnrec__now_seconds() - t0);
            report_step(r, epoch, steps, tnrec__now_seconds() - t0);
            int last_of_epoch = r->st.step == steps, stop_for = 0;
            /* The end of an epoch writes its checkpoints anyway: a request
             * seen then is taken after them (below). */
            if (!last_of_epoch && (err = poll_stop(r, &stop_for)))
                break;
            int limit = cfg->max_steps && done_steps >= cfg->max_steps;
            if (!last_of_epoch && (stop_for || limit || (cfg->checkpoint_every && r->st.global_step % cfg->checkpoint_every == 0))) {
                if (r->gpu && (err = tnrec__gpu_net_sync(r->gpu)))
                    break;
                if ((err = write_ckpt(r, r->p_last)))
                    break;
            }
            if (!last_of_epoch && (stop_for || limit)) {
                if (stop_for && (err = stopped_for(r, stop_for)))
                    break;
                interrupted = 1;
                break;
            }
        }
        if (r->gpu) {
            /* Stopped early: the staged next batch is not run; its copy
             * must end before the loader restarts or is freed. */
            tnrec_err e = tnrec__gpu_net_unstage(r->gpu);
            if (!err)
                err = e;
            r->staged_steps = tnrec__gpu_net_staged_steps(r->gpu) - staged0;
        }
        if (err || interrupted) {
            stop = 1;
            break;
        }
        if ((err = epoch_end(r, (int)epoch, r->st.seconds, cb, ctx, &stop)))
            break;
        if (cfg->max_steps && done_steps >= cfg->max_steps)
            break;
        if (!stop && epoch + 1 < (uint64_t)r->c.epochs) {
            /* Between epochs: last.tnck holds the next epoch's start. */
            int stop_for = 0;
            if ((err = poll_stop(r, &stop_for)))
                break;
            if (stop_for) {
                err = stopped_for(r, stop_for);
                break;
            }
        }
    }
    free(logits);
    if (!err && r->c.patience > 0 && r->st.best_epoch >= 0 && (stop || r->st.epoch >= (uint64_t)r->c.epochs)) {
        /* restore_best_weights */
        memcpy(r->model->params, r->best_params, r->model->nparams * sizeof(float));
        memcpy(r->model->state, r->best_state, r->model->nstate * sizeof(float));
    }
done:
    if (err) {
        /* A GPU rank that failed before its GPU set-up (a dataset, the
         * run directory, a checkpoint) still joins the ranks' set-up
         * status check, so that the others stop too instead of waiting
         * for it (nothing when it joined already, or with one rank). */
        if (is_cuda(r->c.device))
            err = tnrec__allreduce_attach_nccl(r->ar, -1, err);
        tnrec__allreduce_fail(r->ar);
    }
    free(resume_text);
    tnrec_model_free(resume_model);
    run_free(r);
    return err;
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

tnrec_err tnrec_eval_run(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                         const char *csv_path, int batch, int threads)
{
    return tnrec_eval_run_device(out, checkpoint, dataset, csv_path, batch, threads, NULL);
}

tnrec_err tnrec_eval_run_device(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                                const char *csv_path, int batch, int threads, const char *device)
{
    return tnrec_eval_run_precision(out, checkpoint, dataset, csv_path, batch, threads, device, NULL);
}

/* The loader refused dataset for the checkpoint's variables: say that the
 * checkpoint fixes them (eval has no --variables to choose others). */
static tnrec_err eval_fields_missing(const char *dataset, const char *checkpoint, const char *vars)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", tnrec_error_last());
    why[strcspn(why, "\n")] = '\0';
    if (!vars)
        vars = "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH";
    return tnrec__fail(TNREC_ESCHEMA, "dataset '%s': %s; checkpoint '%s' was trained on %s\n"
                       "hint: score a dataset built with those variables (tnrec build --variables %s)",
                       dataset, why, checkpoint, vars, vars);
}

tnrec_err tnrec_eval_run_precision(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                                   const char *csv_path, int batch, int threads, const char *device,
                                   const char *precision)
{
    return tnrec_eval_run_progress(out, checkpoint, dataset, csv_path, batch, threads, device, precision, NULL, NULL);
}

tnrec_err tnrec_eval_run_progress(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                                  const char *csv_path, int batch, int threads, const char *device,
                                  const char *precision, tnrec_step_cb on_step, void *step_ctx)
{
    char *resolved = NULL, *config = NULL, *csv = NULL;
    size_t csv_len = 0;
    tnrec_model *m = NULL;
    tnrec_dataset *ds = NULL;
    tnrec_loader *ld = NULL;
    tnrec_net *net = NULL;
    tnrec_gpu_net *gpu = NULL;
    json_t *cj = NULL;
    float *prob = NULL;
    int32_t *label = NULL, *cat = NULL;
    uint64_t *index = NULL;
    tnrec_precision prec = TNREC_PRECISION_FP32;
    tnrec_err err = tnrec_precision_parse(&prec, precision ? precision : "fp32");
    if (err)
        goto done;
    if (prec != TNREC_PRECISION_FP32 && !is_cuda(device)) {
        err = tnrec__fail(TNREC_EINVAL, "precision '%s' is for the GPU only\nhint: add --device cuda, or drop --precision "
                          "(the CPU computes in float32)", precision);
        goto done;
    }
    if ((err = check_device(device)))
        goto done;
    if ((err = tnrec_checkpoint_resolve(&resolved, checkpoint)))
        goto done;
    if ((err = tnrec__checkpoint_read(resolved, &config, &m, NULL, NULL)))
        goto done;
    if (!(cj = json_loads(config, 0, NULL))) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config is not JSON", resolved);
        goto done;
    }
    if ((err = tnrec_dataset_open(&ds, dataset)))
        goto done;
    if ((err = check_not_empty(ds, "dataset", dataset)))
        goto done;
    const json_t *recorded = json_object_get(cj, "data_schema");
    if (recorded && (err = tnrec__data_schema_check(recorded, ds, "dataset", dataset, "the training data of checkpoint", resolved)))
        goto done;
    tnrec_loader_config lc = { .variables = json_string_value(json_object_get(cj, "variables")),
                               .frames = (int)json_integer_value(json_object_get(cj, "frames")),
                               .mask = json_is_true(json_object_get(cj, "mask")), .batch = batch > 0 ? batch : 32,
                               .threads = threads, .prefetch = is_cuda(device) ? 3 : 2, .shuffle = 0, .world = 1 };
    if ((err = tnrec_loader_create(&ld, ds, &lc))) {
        if (err == TNREC_ESCHEMA)
            err = eval_fields_missing(dataset, resolved, lc.variables);
        goto done;
    }
    tnrec_input_shape a = tnrec_loader_shape(ld);
    const tnrec_input_shape *b = tnrec_model_input(m);
    if (memcmp(&a, b, sizeof a) != 0) {
        err = tnrec__fail(TNREC_ESCHEMA, "dataset '%s' gives samples of %dx%dx%dx%d but checkpoint '%s' expects %dx%dx%dx%d",
                          dataset, a.frames, a.height, a.width, a.channels, resolved, b->frames, b->height, b->width, b->channels);
        goto done;
    }
    if (is_cuda(device)) {
        tnrec_gpu_options go;
        tnrec_gpu_options_default(&go);
        go.precision = prec;
        if ((err = tnrec_gpu_net_create(&gpu, m, lc.batch, &go)))
            goto done;
    } else if ((err = tnrec_net_create(&net, m, lc.batch))) {
        goto done;
    }
    size_t n = tnrec_dataset_count(ds);
    prob = malloc((n + 1) * sizeof *prob);
    label = malloc((n + 1) * sizeof *label);
    cat = malloc((n + 1) * sizeof *cat);
    index = malloc((n + 1) * sizeof *index);
    if (!prob || !label || !cat || !index) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for %zu scores", n);
        goto done;
    }
    double bce = 0;
    tnrec_step_report sr = { .phase = "eval" };
    if ((err = predict_all(net, gpu, ld, lc.batch, prob, label, cat, index, &bce, &sr, on_step, step_ctx)))
        goto done;
    if ((err = tnrec_metrics_compute(out, prob, label, cat, n)))
        goto done;
    out->loss = bce + tnrec__model_l2(m);
    if (csv_path) {
        FILE *f = open_memstream(&csv, &csv_len);
        if (!f) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
        fputs("key,event_id,time,category,label,probability\n", f);
        for (size_t i = 0; i < n; i++) {
            size_t si;
            uint64_t local;
            if ((err = tnrec_dataset_locate(ds, index[i], &si, &local)))
                break;
            const tnrec_record_info *info = tnrec_shard_info(tnrec_dataset_shard(ds, si), local);
            if (!info) {
                err = tnrec__fail(TNREC_EINTERNAL, "record %llu missing from its shard index", (unsigned long long)index[i]);
                break;
            }
            char tbuf[32];
            time_t t = (time_t)info->meta.time;
            struct tm tmv;
            if (gmtime_r(&t, &tmv))
                strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
            else
                snprintf(tbuf, sizeof tbuf, "%lld", (long long)info->meta.time);
            csv_field(f, info->meta.key);
            fprintf(f, ",%lld,%s,%s,%d,%.6f\n", (long long)info->meta.event_id, tbuf, tnrec_category_name(info->meta.category),
                    (int)label[i], prob[i]);
        }
        fclose(f);
        if (!err)
            err = tnrec__write_file_atomic(csv_path, csv, csv_len);
    }
done:
    free(resolved);
    free(config);
    free(csv);
    json_decref(cj);
    tnrec_net_free(net);
    tnrec_gpu_net_free(gpu);
    tnrec_loader_free(ld);
    tnrec_dataset_close(ds);
    tnrec_model_free(m);
    free(prob);
    free(label);
    free(cat);
    free(index);
    return err;
}
