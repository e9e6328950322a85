/* train/trainer.c: the training loop (tnrec_train_run).
 *
 * The run directory (run_dir.c) holds last.tnck (the latest position,
 * also written mid-epoch with checkpoint_every), epoch-NNNN.tnck, best.tnck
 * and metrics.jsonl. Resuming reads last.tnck and continues with the same
 * batches, dropout masks and optimiser state, so the weights equal those
 * of an uninterrupted run.
 *
 * With several ranks (MPI), each rank trains on its part of every global
 * batch, gradients and BN statistics are summed, and rank 0 alone writes
 * files and validates; the validation result reaches the other ranks
 * through the same sum (they contribute zeros). Early stopping follows
 * Keras (patience epochs without improvement; restore_best_weights: the
 * best epoch's weights end up in the model and in best.tnck).
 *
 * The steps run in a step backend (backend.h), the CPU's or a GPU's, and
 * this file never asks which: a device backend keeps the weights and
 * optimiser moments and brings them back (trn_backend_sync, BN statistics
 * averaged over ranks) before each validation and checkpoint. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allreduce.h"
#include "backend.h"
#include "checkpoint.h"
#include "common.h"
#include "splitmix64.h"
#include "data_schema.h"
#include "evaluate.h"
#include "nn.h"
#include "optim.h"
#include "run_config.h"
#include "run_dir.h"
#include "tnrec/tnrec.h"

typedef struct run {
    tnrec_train_config c;
    trn_allreduce *ar;
    int rank, world;
    int local_batch;        /* this rank's largest part of a global batch */
    tnrec_dataset *train_ds, *val_ds;
    tnrec_loader *train_ld, *val_ld;
    tnrec_model *model;
    const trn_backend_ops *device;
    trn_backend be;         /* where the steps run */
    tnrec_optim *opt;
    trn_train_state st;
    char *config_text;
    json_t *resume_cfg;
    trn_run_dir dir;
    float *best_params, *best_state;
    float *val_prob;
    int32_t *val_label, *val_cat;
    float *logits;          /* the step's, local_batch of them */
    float cw[2];
    float nodata_value;
    const float *nodata;    /* the input's no-data value (&nodata_value), NULL: the dataset's */
    trn_schedule sched;
    double data_wait;       /* seconds this epoch spent waiting for batches */
    uint64_t staged_steps;  /* this epoch's steps whose batch was copied during the step before */
} run;

static tnrec_err write_ckpt(run *r, const char *path)
{
    double scale;
    uint64_t good;
    if (trn_backend_loss_scale(&r->be, &scale, &good)) {
        r->st.loss_scale = scale;
        r->st.loss_scale_good_steps = good;
    }
    if (r->rank != 0)
        return TNREC_OK;
    return trn_checkpoint_write(path, r->config_text, r->model, r->opt, &r->st);
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

/* Rank 0 validates; the sum hands the monitored value to every rank.
 * Fills rep's val metrics and monitor_value. */
static tnrec_err validate(run *r, int epoch, tnrec_epoch_report *rep)
{
    tnrec_err err;
    double val_loss = NAN;
    int ok;
    memset(&rep->val, 0, sizeof rep->val);
    rep->val.loss = NAN;
    if (!r->val_ld) {
        rep->monitor_value = trn_metric_value(r->c.monitor, rep->loss, &rep->train, NAN, &rep->val, &ok);
        return TNREC_OK;
    }
    double shared[4] = { 0, 0, 0, 0 };
    if (r->rank == 0) {
        double bce = 0;
        size_t nv = tnrec_dataset_count(r->val_ds);
        tnrec_step_report sr = { .phase = "val", .epoch = epoch + 1, .epochs = r->c.epochs };
        trn_scores_out so = { r->val_prob, r->val_label, r->val_cat, NULL };
        /* No stop inside validation: a request stops the run between
         * training steps, where last.tnck can resume it. */
        if ((err = trn_predict_all(&r->be, r->val_ld, r->local_batch, &so, &bce, &sr, r->c.on_step, r->c.step_ctx, NULL)))
            return err;
        if ((err = tnrec_metrics_compute(&rep->val, r->val_prob, r->val_label, r->val_cat, nv)))
            return err;
        val_loss = bce + trn_model_l2(r->model);
        rep->val.loss = val_loss;
        shared[0] = trn_metric_value(r->c.monitor, rep->loss, &rep->train, val_loss, &rep->val, &ok);
    }
    if ((err = trn_allreduce_sum_double(r->ar, shared, 1)))
        return err;
    rep->monitor_value = shared[0];
    return TNREC_OK;
}

/* Early stopping's and the plateau schedule's bookkeeping after an
 * epoch: the best weights so far, the epochs without improvement. */
static void track_best(run *r, int epoch, tnrec_epoch_report *rep)
{
    int lower = trn_metric_lower_is_better(r->c.monitor);
    double v = rep->monitor_value;
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
    rep->improved = improved;
    if (r->sched.kind == TRN_SCHEDULE_PLATEAU && r->st.plateau_wait >= (uint64_t)r->sched.patience) {
        double nlr = r->st.lr * r->sched.factor;
        r->st.lr = nlr < r->sched.min_lr ? r->sched.min_lr : nlr;
        r->st.plateau_wait = 0;
    }
    rep->stopped = r->c.patience > 0 && r->st.wait >= (uint64_t)r->c.patience;
}

/* Rank 0: the epoch's metrics line and checkpoints. */
static tnrec_err write_epoch(run *r, int epoch, const tnrec_epoch_report *rep)
{
    if (r->rank != 0)
        return TNREC_OK;
    tnrec_err err = trn_run_dir_append_epoch(&r->dir, rep, r->val_ld != NULL, trn_backend_is_device(r->device),
                                             r->st.best_epoch);
    if (err)
        return err;
    char *p_epoch = trn_run_dir_epoch_path(&r->dir, epoch + 1);
    if (!p_epoch)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    err = write_ckpt(r, p_epoch);
    free(p_epoch);
    if (!err)
        err = write_ckpt(r, r->dir.last);
    if (!err && rep->improved)
        err = write_ckpt(r, r->dir.best);
    return err;
}

static tnrec_err epoch_end(run *r, int epoch, double t_epoch, tnrec_train_progress_cb cb, void *ctx, int *stop)
{
    tnrec_err err;
    if ((err = trn_backend_sync(&r->be)))
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
    if ((err = validate(r, epoch, &rep)))
        return err;
    rep.monitor = r->c.monitor;
    track_best(r, epoch, &rep);
    *stop = rep.stopped;

    /* Position: the next epoch, from its start. */
    r->st.epoch = (uint64_t)epoch + 1;
    r->st.step = 0;
    r->st.loss_sum = 0;
    r->st.seconds = 0;
    r->st.samples = 0;
    r->st.npart = 0;
    if ((err = write_epoch(r, epoch, &rep)))
        return err;
    if (cb && r->rank == 0)
        cb(ctx, &rep);
    return TNREC_OK;
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
        tnrec_err err = trn_data_schema_check(rec, r->train_ds, r->nodata, "training dataset", r->c.train_path,
                                              "the training data of checkpoint", r->dir.last);
        if (!err && r->val_ds)
            err = trn_data_schema_check(rec, r->val_ds, r->nodata, "validation dataset", r->c.val_path,
                                        "the training data of checkpoint", r->dir.last);
        return err;
    }
    if (!r->val_ds)
        return TNREC_OK;
    json_t *ts = trn_data_schema_json(r->train_ds, vars, r->c.mask, r->nodata);
    if (!ts)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    tnrec_err err = trn_data_schema_check(ts, r->val_ds, r->nodata, "validation dataset", r->c.val_path,
                                          "training dataset", r->c.train_path);
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
    tnrec_err err = trn_allreduce_sum_double(r->ar, votes, 64);
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
    return trn_allreduce_sum_double(r->ar, &zero, 1);
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
    trn_backend_free(&r->be);
    tnrec_loader_free(r->train_ld);
    tnrec_loader_free(r->val_ld);
    tnrec_dataset_close(r->train_ds);
    tnrec_dataset_close(r->val_ds);
    tnrec_optim_free(r->opt);
    tnrec_model_free(r->model);
    trn_train_state_clear(&r->st);
    free(r->config_text);
    json_decref(r->resume_cfg);
    trn_run_dir_free(&r->dir);
    free(r->best_params);
    free(r->best_state);
    free(r->val_prob);
    free(r->val_label);
    free(r->val_cat);
    free(r->logits);
    trn_allreduce_free(r->ar);
}

/* The settings of the run: cfg's, or on resume last.tnck's (epochs may be
 * raised), checked before any data is read. */
static tnrec_err run_settings(run *r, const tnrec_train_config *cfg)
{
    tnrec_err err;
    if (cfg->resume) {
        char *text = NULL;
        tnrec_model *m = NULL;
        if ((err = trn_checkpoint_read(r->dir.last, &text, &m, NULL, NULL))) {
            if (err == TNREC_ENOTFOUND || err == TNREC_EIO)
                err = tnrec__fail(err, "cannot resume: '%s' not readable (%s)\nhint: is '%s' the -o directory of an earlier 'tnrec train'?",
                                  r->dir.last, tnrec_error_last(), cfg->run_dir);
            return err;
        }
        tnrec_model_free(m);
        json_error_t jerr;
        r->resume_cfg = json_loads(text, 0, &jerr);
        free(text);
        if (!r->resume_cfg)
            return tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config is not JSON", r->dir.last);
        r->c.epochs = cfg->epochs;
        if ((err = trn_config_from_json(&r->c, r->resume_cfg, r->cw, r->dir.last)))
            return err;
        r->nodata = trn_config_nodata(r->resume_cfg, &r->nodata_value);
    } else if ((err = trn_nodata_resolve(r->c.nodata, r->c.model, &r->nodata_value, &r->nodata))) {
        return err;
    }
    if (!r->c.train_path)
        return tnrec__fail(TNREC_EINVAL, "no training dataset given");
    if (!cfg->resume && r->c.batch == 0)
        r->c.batch = trn_model_defaults_of(r->c.model)->batch;
    if (!cfg->resume && r->c.epochs == 0)
        r->c.epochs = trn_model_defaults_of(r->c.model)->epochs;
    if (r->c.epochs < 1 || r->c.batch < 1)
        return tnrec__fail(TNREC_EINVAL, "epochs (%d) and batch (%d) must be at least 1", r->c.epochs, r->c.batch);
    if (!r->c.monitor)
        r->c.monitor = r->c.val_path ? "val_loss" : "loss";
    int ok;
    tnrec_metrics dummy;
    memset(&dummy, 0, sizeof dummy);
    trn_metric_value(r->c.monitor, 0, &dummy, 0, &dummy, &ok);
    if (!ok)
        return tnrec__fail(TNREC_EINVAL, "unknown metric to monitor '%s'\nhint: val_loss, val_roc_auc, val_pr_auc, val_csi, val_accuracy, loss, roc_auc ...", r->c.monitor);
    if (strncmp(r->c.monitor, "val_", 4) == 0 && !r->c.val_path)
        return tnrec__fail(TNREC_EINVAL, "monitor '%s' needs a validation set\nhint: add --val DATASET or monitor loss", r->c.monitor);
    if ((err = trn_schedule_parse(&r->sched, r->c.schedule)))
        return err;
    if (!(r->c.lr > 0))
        return tnrec__fail(TNREC_EINVAL, "learning rate must be > 0");
    return TNREC_OK;
}

/* The validation loader and the arrays for its scores. */
static tnrec_err open_val(run *r, const tnrec_loader_config *lc, int resume)
{
    tnrec_loader_config vc = *lc;
    vc.batch = r->local_batch; /* fits the workspace */
    vc.shuffle = 0;
    vc.rank = 0;
    vc.world = 1;
    vc.class_weight[0] = vc.class_weight[1] = 1.0f;
    tnrec_err err = tnrec_loader_create(&r->val_ld, r->val_ds, &vc);
    if (err)
        return err == TNREC_ESCHEMA ? train_fields_missing(r->c.val_path, resume) : err;
    tnrec_input_shape a = tnrec_loader_shape(r->train_ld), b = tnrec_loader_shape(r->val_ld);
    if (memcmp(&a, &b, sizeof a) != 0)
        return tnrec__fail(TNREC_ESCHEMA, "validation set '%s' has samples of %dx%dx%dx%d, training set %dx%dx%dx%d",
                           r->c.val_path, b.frames, b.height, b.width, b.channels, a.frames, a.height, a.width, a.channels);
    size_t nv = tnrec_dataset_count(r->val_ds);
    r->val_prob = malloc(nv * sizeof(float));
    r->val_label = malloc(nv * sizeof(int32_t));
    r->val_cat = malloc(nv * sizeof(int32_t));
    if (!r->val_prob || !r->val_label || !r->val_cat)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for %zu validation scores", nv);
    return TNREC_OK;
}

/* The datasets, checked against each other (or the checkpoint), and
 * their loaders. vars: the input fields. */
static tnrec_err open_data(run *r, const char *vars, int resume)
{
    tnrec_err err;
    if ((err = tnrec_dataset_open(&r->train_ds, r->c.train_path)))
        return err;
    if (r->c.val_path && (err = tnrec_dataset_open(&r->val_ds, r->c.val_path)))
        return err;
    if ((err = trn_check_not_empty(r->train_ds, "training dataset", r->c.train_path)))
        return err;
    if (r->val_ds && (err = trn_check_not_empty(r->val_ds, "validation dataset", r->c.val_path)))
        return err;
    if ((err = check_run_data(r, vars)))
        return err;
    if (!resume && (err = trn_class_weights(r->cw, r->c.class_weights, r->train_ds, r->c.train_path)))
        return err;
    tnrec_loader_config lc = { .variables = vars, .frames = r->c.frames, .mask = r->c.mask,
                               .has_nodata = r->nodata != NULL, .nodata = r->nodata ? *r->nodata : 0.0f,
                               .range_limits = trn_spec_has_coords(r->c.model), .batch = r->c.batch,
                               .threads = r->c.threads, .prefetch = trn_backend_is_device(r->device) ? 3 : 2,
                               .shuffle = 1, .seed = r->c.seed, .rank = r->rank, .world = r->world,
                               .class_weight = { r->cw[0], r->cw[1] } };
    if ((err = tnrec_loader_create(&r->train_ld, r->train_ds, &lc)))
        return err == TNREC_ESCHEMA ? train_fields_missing(r->c.train_path, resume) : err;
    return r->val_ds ? open_val(r, &lc, resume) : TNREC_OK;
}

/* The model with its initial weights, the optimiser, the arrays of the
 * epoch's scores and the best weights, and the config every checkpoint
 * carries. */
static tnrec_err build_model(run *r, const char *vars)
{
    tnrec_input_shape shape = tnrec_loader_shape(r->train_ld);
    tnrec_init init;
    tnrec_err err;
    if ((err = tnrec_init_parse(&init, r->c.init)) ||
        (err = tnrec_model_create(&r->model, r->c.model, &shape, r->c.seed)) ||
        (err = tnrec_model_init_weights(r->model, init, r->c.seed)))
        return err;
    if ((err = tnrec_optim_create(&r->opt, &r->c.optim, r->model)))
        return err;
    r->best_params = malloc(r->model->nparams * sizeof(float));
    r->best_state = malloc((r->model->nstate + 1) * sizeof(float));
    size_t ntrain = tnrec_dataset_count(r->train_ds);
    r->st.part_prob = malloc((ntrain + 1) * sizeof(float));
    r->st.part_label = malloc((ntrain + 1) * sizeof(int32_t));
    r->st.part_cat = malloc((ntrain + 1) * sizeof(int32_t));
    r->logits = malloc((size_t)r->local_batch * sizeof *r->logits);
    if (!r->best_params || !r->best_state || !r->st.part_prob || !r->st.part_label || !r->st.part_cat || !r->logits)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    r->st.lr = r->c.lr;
    json_t *cj = trn_config_json(&r->c, r->model, r->cw, vars, r->nodata,
                                 trn_data_schema_json(r->train_ds, vars, r->c.mask, r->nodata));
    r->config_text = cj ? json_dumps(cj, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(cj);
    if (!r->config_text)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    return TNREC_OK;
}

/* Resume: the weights, optimiser and position of last.tnck, and the best
 * weights so far (best.tnck) for restoring at the end. */
static tnrec_err restore(run *r)
{
    char *text = NULL;
    tnrec_model *m = NULL;
    trn_train_state st;
    memset(&st, 0, sizeof st);
    /* The model first: the optimiser state is read only into one that fits. */
    tnrec_err err = trn_checkpoint_read(r->dir.last, &text, &m, NULL, NULL);
    if (err)
        return err;
    if (strcmp(tnrec_model_spec(m), tnrec_model_spec(r->model)) != 0 || m->nparams != r->model->nparams) {
        err = tnrec__fail(TNREC_ESCHEMA, "checkpoint '%s' does not fit the data it was trained on", r->dir.last);
        goto done;
    }
    free(text);
    text = NULL;
    tnrec_model_free(m);
    m = NULL;
    if ((err = trn_checkpoint_read(r->dir.last, &text, &m, r->opt, &st)))
        goto done;
    if (st.npart > tnrec_dataset_count(r->train_ds)) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s' holds more scores than the training set has samples", r->dir.last);
        goto done;
    }
    memcpy(r->model->params, m->params, r->model->nparams * sizeof(float));
    memcpy(r->model->state, m->state, r->model->nstate * sizeof(float));
    /* The position and counters from the checkpoint, into the score
     * arrays sized for the whole training set. */
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
    memset(&st, 0, sizeof st);
    memcpy(r->best_params, r->model->params, r->model->nparams * sizeof(float));
    memcpy(r->best_state, r->model->state, r->model->nstate * sizeof(float));
    if (r->st.best_epoch >= 0) {
        free(text);
        text = NULL;
        tnrec_model_free(m);
        m = NULL;
        if ((err = trn_checkpoint_read(r->dir.best, &text, &m, NULL, NULL)))
            goto done;
        memcpy(r->best_params, m->params, r->model->nparams * sizeof(float));
        memcpy(r->best_state, m->state, r->model->nstate * sizeof(float));
    }
    if (r->rank == 0)
        err = trn_run_dir_trim_metrics(&r->dir, r->st.epoch);
done:
    free(text);
    tnrec_model_free(m);
    trn_train_state_clear(&st);
    return err;
}

/* One training step on batch b: the step, the update and the epoch's
 * running numbers. */
static tnrec_err train_step(run *r, const tnrec_batch *b, uint64_t epoch)
{
    double lr = r->st.lr;
    if (r->sched.kind == TRN_SCHEDULE_EXP)
        lr = trn_schedule_exp_lr(&r->sched, r->c.lr, r->st.global_step);
    double loss = 0;
    uint64_t dseed = tnrec__splitmix64(r->c.seed ^ tnrec__splitmix64(r->st.global_step + 1));
    /* On a device, batch k+1 is copied while step k runs. */
    tnrec_err err = trn_backend_stage(&r->be, r->train_ld, b, r->local_batch);
    if (!err)
        err = trn_backend_train_step(&r->be, b, dseed, r->logits, &loss);
    if (err)
        return err;
    if (!isfinite(loss))
        return tnrec__fail(TNREC_ERANGE, "training loss is not finite at epoch %llu step %llu\nhint: lower --lr or add --clipvalue 1",
                           (unsigned long long)epoch + 1, (unsigned long long)r->st.step + 1);
    /* Not ready before the step: maybe now, to overlap the update. */
    if ((err = trn_backend_stage_next(&r->be, r->train_ld, r->local_batch)))
        return err;
    if ((err = trn_backend_optim_step(&r->be, r->opt, lr)))
        return err;
    if (r->sched.kind == TRN_SCHEDULE_EXP)
        r->st.lr = lr;
    for (int i = 0; i < b->n; i++) {
        r->st.part_prob[r->st.npart] = (float)trn_sigmoid(r->logits[i]);
        r->st.part_label[r->st.npart] = (int32_t)b->label[i];
        r->st.part_cat[r->st.npart] = b->category[i];
        r->st.npart++;
    }
    r->st.loss_sum += loss * b->global_n;
    r->st.samples += (uint64_t)b->global_n;
    r->st.step++;
    r->st.global_step++;
    return TNREC_OK;
}

/* The steps of one epoch from the current position. *interrupted: it
 * stopped early (a stop request or max_steps), last.tnck written.
 * done_steps counts the run's steps. */
static tnrec_err train_epoch(run *r, uint64_t epoch, uint64_t *done_steps, int *interrupted)
{
    const tnrec_train_config *cfg = &r->c;
    uint64_t steps = tnrec_loader_steps(r->train_ld);
    tnrec_err err = tnrec_loader_start(r->train_ld, epoch, r->st.step);
    if (err)
        return err;
    double t0 = tnrec__now_seconds(), seconds_before = r->st.seconds;
    *interrupted = 0;
    r->data_wait = 0;
    uint64_t staged0 = trn_backend_staged_steps(&r->be);
    for (;;) {
        const tnrec_batch *b = NULL;
        double tw = tnrec__now_seconds();
        err = tnrec_loader_next(r->train_ld, &b);
        r->data_wait += tnrec__now_seconds() - tw;
        if (err || !b)
            break;
        if ((err = train_step(r, b, epoch)))
            break;
        ++*done_steps;
        r->st.seconds = seconds_before + (tnrec__now_seconds() - t0);
        report_step(r, epoch, steps, tnrec__now_seconds() - t0);
        int last_of_epoch = r->st.step == steps, stop_for = 0;
        /* The end of an epoch writes its checkpoints anyway: a request
         * seen then is taken after them (run_epochs). */
        if (last_of_epoch)
            continue;
        if ((err = poll_stop(r, &stop_for)))
            break;
        int limit = cfg->max_steps && *done_steps >= cfg->max_steps;
        if (stop_for || limit || (cfg->checkpoint_every && r->st.global_step % cfg->checkpoint_every == 0)) {
            if ((err = trn_backend_sync(&r->be)) || (err = write_ckpt(r, r->dir.last)))
                break;
        }
        if (stop_for || limit) {
            if (stop_for && (err = stopped_for(r, stop_for)))
                break;
            *interrupted = 1;
            break;
        }
    }
    /* Stopped early: a staged next batch is not run; its copy must end
     * before the loader restarts or is freed. */
    tnrec_err e = trn_backend_unstage(&r->be);
    if (!err)
        err = e;
    r->staged_steps = trn_backend_staged_steps(&r->be) - staged0;
    return err;
}

/* The epochs from the current position to the last, or to an early stop. */
static tnrec_err run_epochs(run *r, tnrec_train_progress_cb cb, void *ctx)
{
    const tnrec_train_config *cfg = &r->c;
    uint64_t done_steps = 0;
    int stop = 0;
    tnrec_err err = TNREC_OK;
    for (uint64_t epoch = r->st.epoch; epoch < (uint64_t)r->c.epochs && !stop; epoch++) {
        int interrupted = 0;
        err = train_epoch(r, epoch, &done_steps, &interrupted);
        if (err || interrupted)
            return err;
        if ((err = epoch_end(r, (int)epoch, r->st.seconds, cb, ctx, &stop)))
            return err;
        if (cfg->max_steps && done_steps >= cfg->max_steps)
            return TNREC_OK;
        if (!stop && epoch + 1 < (uint64_t)r->c.epochs) {
            /* Between epochs: last.tnck holds the next epoch's start. */
            int stop_for = 0;
            if ((err = poll_stop(r, &stop_for)))
                return err;
            if (stop_for)
                return stopped_for(r, stop_for);
        }
    }
    if (r->c.patience > 0 && r->st.best_epoch >= 0 && (stop || r->st.epoch >= (uint64_t)r->c.epochs)) {
        /* restore_best_weights */
        memcpy(r->model->params, r->best_params, r->model->nparams * sizeof(float));
        memcpy(r->model->state, r->best_state, r->model->nstate * sizeof(float));
    }
    return TNREC_OK;
}

static tnrec_err train_run(run *r, const tnrec_train_config *cfg, tnrec_train_progress_cb cb, void *ctx)
{
    tnrec_err err;
    if ((err = trn_run_dir_init(&r->dir, cfg->run_dir)) || (err = run_settings(r, cfg)))
        return err;
    const char *vars = r->c.variables ? r->c.variables : "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH";
    r->local_batch = (r->c.batch + r->world - 1) / r->world;
    if ((err = open_data(r, vars, cfg->resume)) || (err = build_model(r, vars)))
        return err;
    /* The precision is checked before a run directory is made. */
    trn_backend_config bc = { .device = r->c.gpu, .deterministic = r->c.deterministic };
    if ((err = tnrec_precision_parse(&bc.precision, r->c.precision ? r->c.precision : "fp32")))
        return err;
    if ((err = trn_backend_check_precision(r->device, bc.precision)))
        return err;
    if (cfg->resume)
        err = restore(r);
    else if (r->rank == 0)
        err = trn_run_dir_create(&r->dir);
    if (err)
        return err;
    if ((err = trn_backend_create(&r->be, r->device, r->model, r->local_batch, &bc, r->ar)))
        return err;
    if ((err = trn_backend_set_loss_scale(&r->be, r->st.loss_scale, r->st.loss_scale_good_steps)))
        return err;
    return run_epochs(r, cb, ctx);
}

tnrec_err tnrec_train_run(const tnrec_train_config *cfg, tnrec_train_progress_cb cb, void *ctx)
{
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->c = *cfg;
    r->st.best_epoch = -1;
    tnrec_err err = trn_backend_find(&r->device, cfg->device);
    if (err)
        return err;
    if (!cfg->run_dir)
        return tnrec__fail(TNREC_EINVAL, "no run directory given\nhint: tnrec train DATASET --val DATASET -o RUN_DIR");
    if ((err = trn_allreduce_init(&r->ar)))
        return err;
    r->rank = trn_allreduce_rank(r->ar);
    r->world = trn_allreduce_size(r->ar);
    if (r->c.stop) {
        r->c.stop->reason = 0;
        r->c.stop->rank = r->rank;
        r->c.stop->world = r->world;
    }
    err = train_run(r, cfg, cb, ctx);
    if (err) {
        /* A rank that failed before its backend's set-up (a dataset, the
         * run directory, a checkpoint) still joins the ranks' set-up
         * status check, so that the others stop too instead of waiting
         * for it (nothing when it joined already, or with one rank). */
        err = trn_backend_abandon(r->device, r->ar, err);
        trn_allreduce_fail(r->ar);
    }
    run_free(r);
    return err;
}
