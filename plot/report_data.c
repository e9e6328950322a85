/* plot/report_data.c: what the report reads: metrics.jsonl and an
 * evaluation with its scores matched to the dataset's records. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json_util.h"
#include "report_internal.h"

static const char *const history_keys[H_NSERIES] = { "loss", "val_loss", "roc_auc", "val_roc_auc", "pr_auc",
                                                     "val_pr_auc", "csi", "val_csi", "lr" };

void report_history_free(report_history *h)
{
    free(h->epoch);
    for (int k = 0; k < H_NSERIES; k++)
        free(h->v[k]);
    memset(h, 0, sizeof *h);
}

static tnrec_err history_alloc(report_history *h, size_t cap)
{
    h->epoch = malloc(cap * sizeof *h->epoch);
    int ok = h->epoch != NULL;
    for (int k = 0; k < H_NSERIES; k++)
        ok &= (h->v[k] = malloc(cap * sizeof *h->v[k])) != NULL;
    if (!ok) {
        report_history_free(h);
        return tnrec__fail(TNREC_ENOMEM, "out of memory for %zu epochs", cap);
    }
    return TNREC_OK;
}

static double json_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* One line of metrics.jsonl into slot h->n. */
static tnrec_err history_line(report_history *h, const char *line, const char *path, size_t lineno)
{
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!json_is_object(o) || !json_is_integer(json_object_get(o, "epoch"))) {
        json_decref(o);
        return tnrec__fail(TNREC_ECORRUPT, "'%s' line %zu is not an epoch's JSON object%s%s", path, lineno,
                           o ? "" : ": ", o ? "" : je.text);
    }
    h->epoch[h->n] = (double)tnrec__json_int(o, "epoch");
    for (int k = 0; k < H_NSERIES; k++)
        h->v[k][h->n] = json_num(o, history_keys[k]);
    json_t *best = json_object_get(o, "best_epoch");
    if (json_is_integer(best))
        h->best_epoch = (int)json_integer_value(best);
    h->n++;
    json_decref(o);
    return TNREC_OK;
}

tnrec_err report_history_load(report_history *h, const char *run_dir)
{
    memset(h, 0, sizeof *h);
    char path[4200];
    if (snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir) >= (int)sizeof path)
        return tnrec__fail(TNREC_EINVAL, "run directory name '%.200s...' is too long", run_dir);
    uint8_t *data = NULL;
    size_t len = 0;
    tnrec_err err = tnrec__read_file(path, &data, &len);
    if (err)
        return tnrec__fail(err, "run directory '%s' has no readable metrics.jsonl\nhint: give the -o directory of a "
                           "`tnrec train` that finished at least one epoch", run_dir);
    char *text = realloc(data, len + 1);
    if (!text) {
        free(data);
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", path);
    }
    text[len] = '\0';
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if ((err = history_alloc(h, lines)) == TNREC_OK) {
        char *save = NULL;
        size_t lineno = 0;
        for (char *line = strtok_r(text, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save))
            err = history_line(h, line, path, ++lineno);
        if (!err && h->n == 0)
            err = tnrec__fail(TNREC_ECORRUPT, "'%s' holds no epochs\nhint: the run finished no epoch yet", path);
        if (err)
            report_history_free(h);
    }
    free(text);
    return err;
}

typedef struct keyed { const char *key; uint64_t index; int32_t ef; } keyed;

static int by_key(const void *a, const void *b) { return strcmp(((const keyed *)a)->key, ((const keyed *)b)->key); }

/* Every record's key, index and EF number, sorted by key. */
static tnrec_err dataset_keys(const tnrec_dataset *ds, const char *path, keyed **out, size_t *out_n)
{
    size_t n = (size_t)tnrec_dataset_count(ds), k = 0;
    keyed *a = malloc((n ? n : 1) * sizeof *a);
    if (!a)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the keys of '%s'", path);
    for (size_t s = 0; s < tnrec_dataset_shard_count(ds); s++) {
        const tnrec_shard *sh = tnrec_dataset_shard(ds, s);
        for (uint64_t i = 0; i < tnrec_shard_count(sh) && k < n; i++, k++) {
            const tnrec_record_info *info = tnrec_shard_info(sh, i);
            a[k] = (keyed){ info->meta.key, k, info->meta.ef };
        }
    }
    qsort(a, k, sizeof *a, by_key);
    *out = a;
    *out_n = k;
    return TNREC_OK;
}

static tnrec_err match_scores(report_eval *e)
{
    keyed *keys = NULL;
    size_t nk = 0;
    tnrec_err err = dataset_keys(e->ds, e->path, &keys, &nk);
    if (err)
        return err;
    size_t n = e->scores.n;
    e->ef = malloc((n ? n : 1) * sizeof *e->ef);
    e->index = malloc((n ? n : 1) * sizeof *e->index);
    if (!e->ef || !e->index)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for %zu scores", n);
    for (size_t i = 0; i < n && !err; i++) {
        keyed want = { e->scores.key[i], 0, 0 };
        const keyed *hit = bsearch(&want, keys, nk, sizeof *keys, by_key);
        if (!hit)
            err = tnrec__fail(TNREC_ECORRUPT, "dataset '%s' has no record '%s' that its evaluation scored", e->path,
                              e->scores.key[i]);
        else {
            e->ef[i] = hit->ef;
            e->index[i] = hit->index;
        }
    }
    free(keys);
    return err;
}

tnrec_err report_eval_load(report_eval *e, const tnrec_report_options *opt)
{
    memset(e, 0, sizeof *e);
    e->path = opt->eval_path;
    tnrec_err err = tnrec_eval_scores(&e->m, &e->scores, opt->run_dir, opt->eval_path, opt->batch, opt->threads, NULL,
                                      NULL, opt->on_step, opt->step_ctx);
    if (!err)
        err = tnrec_dataset_open(&e->ds, opt->eval_path);
    if (!err)
        err = tnrec_curves_compute(&e->curves, e->scores.prob, e->scores.label, e->scores.n);
    if (!err)
        err = match_scores(e);
    if (err)
        report_eval_free(e);
    return err;
}

void report_eval_free(report_eval *e)
{
    tnrec_dataset_close(e->ds);
    tnrec_scores_free(&e->scores);
    tnrec_curves_free(&e->curves);
    free(e->ef);
    free(e->index);
    memset(e, 0, sizeof *e);
}
