/* train/evaluate.c: scoring a checkpoint on a dataset: tnrec_eval_run_opts
 * (metrics; the per-sample CSV of `tnrec predict`, the curves of `tnrec
 * eval --curves`, the scores in memory for `tnrec report`), and the pass
 * over a dataset that validation during training shares. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "backend.h"
#include "checkpoint.h"
#include "common.h"
#include "json_util.h"
#include "data_schema.h"
#include "evaluate.h"
#include "nn.h"
#include "run_config.h"
#include "tnrec/report.h"
#include "tnrec/tnrec.h"

tnrec_err trn_predict_all(trn_backend *be, tnrec_loader *ld, int cap, const trn_scores_out *out, double *out_bce,
                          tnrec_step_report *rep, tnrec_step_cb on_step, void *step_ctx,
                          const volatile sig_atomic_t *stop)
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
        if (stop && *stop) {
            err = tnrec__fail(TNREC_ECANCELED, "stopped after batch %llu of %llu", (unsigned long long)rep->step,
                              (unsigned long long)rep->steps);
            break;
        }
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
        /* A device copies from the loader's batch buffers, which outlive
         * the backend, the next batch while this one runs. */
        err = trn_backend_stage(be, ld, b, cap);
        if (!err)
            err = trn_backend_predict(be, b, logits);
        if (err)
            break;
        for (int i = 0; i < b->n; i++, k++) {
            double z = logits[i], y = b->label[i];
            bce += (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
            if (out->prob) out->prob[k] = (float)trn_sigmoid(z);
            if (out->label) out->label[k] = (int32_t)y;
            if (out->category) out->category[k] = b->category[i];
            if (out->index) out->index[k] = b->index[i];
        }
        rep->step++;
        rep->samples += (uint64_t)b->n;
        rep->seconds = tnrec__now_seconds() - t0;
        if (on_step)
            on_step(step_ctx, rep);
    }
    free(logits);
    /* A staged batch whose step did not run (an error) must be copied
     * before the loader restarts or goes. */
    tnrec_err e = trn_backend_unstage(be);
    if (!err)
        err = e;
    if (out_bce)
        *out_bce = k ? bce / (double)k : NAN;
    return err;
}

/* A dataset with no records cannot be trained on or scored. */
tnrec_err trn_check_not_empty(const tnrec_dataset *ds, const char *what, const char *path)
{
    if (tnrec_dataset_count(ds) > 0)
        return TNREC_OK;
    return tnrec__fail(TNREC_EINVAL, "%s '%s' has no records\nhint: 'tnrec dump %s' shows the inputs its build skipped; "
                       "rebuild it from a source that holds samples", what, path, path);
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
    const tnrec_eval_options opt = { .csv_path = csv_path, .batch = batch, .threads = threads, .device = device,
                                     .precision = precision, .on_step = on_step, .step_ctx = step_ctx };
    return tnrec_eval_run_opts(out, checkpoint, dataset, &opt);
}

/* The shard index entry of dataset record `index`. */
static tnrec_err record_info(const tnrec_record_info **out, const tnrec_dataset *ds, uint64_t index)
{
    size_t si;
    uint64_t local;
    tnrec_err err = tnrec_dataset_locate(ds, index, &si, &local);
    if (err)
        return err;
    *out = tnrec_shard_info(tnrec_dataset_shard(ds, si), local);
    if (!*out)
        return tnrec__fail(TNREC_EINTERNAL, "record %llu missing from its shard index", (unsigned long long)index);
    return TNREC_OK;
}

/* One CSV row of sample i of the scores. */
static tnrec_err csv_row(FILE *f, const tnrec_dataset *ds, const trn_scores_out *so, size_t i)
{
    const tnrec_record_info *info;
    tnrec_err err = record_info(&info, ds, so->index[i]);
    if (err)
        return err;
    char tbuf[32];
    time_t t = (time_t)info->meta.time;
    struct tm tmv;
    if (gmtime_r(&t, &tmv))
        strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    else
        snprintf(tbuf, sizeof tbuf, "%lld", (long long)info->meta.time);
    csv_field(f, info->meta.key);
    fprintf(f, ",%lld,%s,%s,%d,%.6f\n", (long long)info->meta.event_id, tbuf, tnrec_category_name(info->meta.category),
            (int)so->label[i], so->prob[i]);
    return TNREC_OK;
}

/* The predict CSV of n scores as text (*out malloc'd). */
static tnrec_err csv_text(char **out, size_t *len, const tnrec_dataset *ds, const trn_scores_out *so, size_t n)
{
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(out, len);
    if (!f)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    tnrec_err err = TNREC_OK;
    fputs("key,event_id,time,category,label,probability\n", f);
    for (size_t i = 0; i < n && !err; i++)
        err = csv_row(f, ds, so, i);
    /* fclose sets *out even when writing ran out of memory. */
    if (fclose(f) != 0 && !err)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory writing the scores");
    if (err) {
        free(*out);
        *out = NULL;
    }
    return err;
}

/* The curves JSON of n scores as text (*out malloc'd). */
static tnrec_err curves_text(char **out, const trn_scores_out *so, size_t n)
{
    tnrec_curves c;
    tnrec_err err = tnrec_curves_compute(&c, so->prob, so->label, n);
    if (!err)
        err = tnrec_curves_json(&c, out);
    tnrec_curves_free(&c);
    return err;
}

/* Writes len bytes to path atomically unless *stop (stop may be NULL) is
 * set once they are under the temporary name: then that file is removed
 * and path is left as it was. */
static tnrec_err write_unless_stopped(const char *path, const char *buf, size_t len, const volatile sig_atomic_t *stop)
{
    tnrec_atomic_file f;
    tnrec_err err = tnrec__atomic_open(&f, path);
    if (err)
        return err;
    err = tnrec__atomic_write(&f, buf, len);
    if (!err && stop && *stop)
        err = tnrec__fail(TNREC_ECANCELED, "stopped before '%s' was complete", path);
    if (err) {
        tnrec__atomic_abort(&f);
        return err;
    }
    return tnrec__atomic_commit(&f);
}

/* Hands the arrays of so (n samples) to scores, with each record's key;
 * so's arrays become NULL. */
static tnrec_err keep_scores(tnrec_scores *scores, const tnrec_dataset *ds, trn_scores_out *so, size_t n)
{
    char (*key)[TNREC_KEY_MAX] = malloc((n + 1) * sizeof *key);
    if (!key)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for %zu keys", n);
    for (size_t i = 0; i < n; i++) {
        const tnrec_record_info *info;
        tnrec_err err = record_info(&info, ds, so->index[i]);
        if (err) {
            free(key);
            return err;
        }
        snprintf(key[i], TNREC_KEY_MAX, "%s", info->meta.key);
    }
    *scores = (tnrec_scores){ .n = n, .key = key, .prob = so->prob, .label = so->label, .category = so->category };
    so->prob = NULL;
    so->label = so->category = NULL;
    return TNREC_OK;
}

/* The outputs opt asks for, once the scores are known: the files first
 * (each may be refused by a stop), the scores handed over last, so that a
 * failure leaves none of them. */
static tnrec_err eval_outputs(const tnrec_eval_options *opt, const tnrec_dataset *ds, trn_scores_out *so, size_t n)
{
    char *csv = NULL, *curves = NULL;
    size_t csv_len = 0;
    tnrec_err err = TNREC_OK;
    if (opt->csv_path)
        err = csv_text(&csv, &csv_len, ds, so, n);
    if (!err && opt->curves_path)
        err = curves_text(&curves, so, n);
    if (!err && csv)
        err = write_unless_stopped(opt->csv_path, csv, csv_len, opt->stop);
    if (!err && curves)
        err = write_unless_stopped(opt->curves_path, curves, strlen(curves), opt->stop);
    if (!err && opt->scores)
        err = keep_scores(opt->scores, ds, so, n);
    free(csv);
    free(curves);
    return err;
}

tnrec_err tnrec_eval_run_opts(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                              const tnrec_eval_options *opt)
{
    static const tnrec_eval_options none = { 0 };
    if (!opt)
        opt = &none;
    if (opt->scores)
        memset(opt->scores, 0, sizeof *opt->scores);
    const char *device = opt->device, *precision = opt->precision;
    char *resolved = NULL, *config = NULL;
    tnrec_model *m = NULL;
    tnrec_dataset *ds = NULL;
    tnrec_loader *ld = NULL;
    trn_backend be = { 0 };
    const trn_backend_ops *ops = NULL;
    json_t *cj = NULL;
    float *prob = NULL;
    int32_t *label = NULL, *cat = NULL;
    uint64_t *index = NULL;
    tnrec_precision prec = TNREC_PRECISION_FP32;
    tnrec_err err = tnrec_precision_parse(&prec, precision ? precision : "fp32");
    if (err)
        goto done;
    if ((err = trn_backend_find(&ops, device)))
        goto done;
    if ((err = trn_backend_check_precision(ops, prec)))
        goto done;
    if ((err = tnrec_checkpoint_resolve(&resolved, checkpoint)))
        goto done;
    if ((err = trn_checkpoint_read(resolved, &config, &m, NULL, NULL)))
        goto done;
    if (!(cj = json_loads(config, 0, NULL))) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config is not JSON", resolved);
        goto done;
    }
    if ((err = tnrec_dataset_open(&ds, dataset)))
        goto done;
    if ((err = trn_check_not_empty(ds, "dataset", dataset)))
        goto done;
    float nodata_value;
    const float *nodata = trn_config_nodata(cj, &nodata_value);
    const json_t *recorded = json_object_get(cj, "data_schema");
    if (recorded && (err = trn_data_schema_check(recorded, ds, nodata, "dataset", dataset,
                                                 "the training data of checkpoint", resolved)))
        goto done;
    tnrec_loader_config lc = { .variables = tnrec__json_str(cj, "variables"),
                               .frames = (int)tnrec__json_int(cj, "frames"),
                               .mask = json_is_true(json_object_get(cj, "mask")),
                               .has_nodata = nodata != NULL, .nodata = nodata ? *nodata : 0.0f,
                               .range_limits = trn_spec_has_coords(tnrec_model_spec(m)), .batch = opt->batch > 0 ? opt->batch : 32,
                               .threads = opt->threads, .prefetch = trn_backend_is_device(ops) ? 3 : 2, .shuffle = 0, .world = 1 };
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
    trn_backend_config bc = { .precision = prec, .device = -1, .inference_only = 1 };
    if ((err = trn_backend_create(&be, ops, m, lc.batch, &bc, NULL)))
        goto done;
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
    trn_scores_out so = { prob, label, cat, index };
    if ((err = trn_predict_all(&be, ld, lc.batch, &so, &bce, &sr, opt->on_step, opt->step_ctx, opt->stop)))
        goto done;
    if ((err = tnrec_metrics_compute(out, prob, label, cat, n)))
        goto done;
    out->loss = bce + trn_model_l2(m);
    err = eval_outputs(opt, ds, &so, n);
    /* The arrays the scores took are theirs now. */
    prob = so.prob;
    label = so.label;
    cat = so.category;
done:
    free(resolved);
    free(config);
    json_decref(cj);
    trn_backend_free(&be);
    tnrec_loader_free(ld);
    tnrec_dataset_close(ds);
    tnrec_model_free(m);
    free(prob);
    free(label);
    free(cat);
    free(index);
    return err;
}
