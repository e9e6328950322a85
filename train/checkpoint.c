/* train/checkpoint.c: writing and reading checkpoint files (format in
 * checkpoint.h), and resolving a run directory to its checkpoint.
 *
 * A checkpoint is built in memory, checksummed and written atomically, so
 * a crash leaves the previous file. Reading checks magic, version, every
 * length against the file size, and the checksum before trusting a byte. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "checkpoint.h"
#include "common.h"
#include "json_util.h"

typedef struct wbuf { uint8_t *p; size_t len, cap; int oom; } wbuf;

static void put(wbuf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->len || tnrec__grow(&b->p, &b->cap, b->len + n, 1, "a checkpoint")) {
        b->oom = 1;
        return;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void put_u64(wbuf *b, uint64_t v) { uint8_t t[8]; tnrec__put_u64(t, v); put(b, t, 8); }
static void put_u32(wbuf *b, uint32_t v) { uint8_t t[4]; tnrec__put_u32(t, v); put(b, t, 4); }
static void put_f64(wbuf *b, double v) { uint64_t u; memcpy(&u, &v, 8); put_u64(b, u); }
static void put_f32s(wbuf *b, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t t[4];
        tnrec__put_f32(t, v[i]);
        put(b, t, 4);
    }
}
static void put_i32s(wbuf *b, const int32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_u32(b, (uint32_t)v[i]);
}

tnrec_err trn_checkpoint_write(const char *path, const char *config_json, const tnrec_model *m,
                                  const tnrec_optim *opt, const trn_train_state *st)
{
    wbuf b = { 0 };
    put(&b, TRN_CKPT_MAGIC, 8);
    put_u32(&b, TRN_CKPT_MAJOR);
    put_u32(&b, TRN_CKPT_MINOR);
    size_t cl = strlen(config_json);
    put_u64(&b, cl);
    put(&b, config_json, cl);
    put_u64(&b, m->nparams);
    put_f32s(&b, m->params, m->nparams);
    put_u64(&b, m->nstate);
    put_f32s(&b, m->state, m->nstate);
    put_u64(&b, opt ? opt->n : 0);
    if (opt) {
        put_f32s(&b, opt->m, opt->n);
        put_f32s(&b, opt->v, opt->n);
    }
    put_u64(&b, opt ? opt->t : 0);
    trn_train_state zero = { .best_epoch = -1 };
    if (!st)
        st = &zero;
    put_u64(&b, st->epoch);
    put_u64(&b, st->step);
    put_u64(&b, st->global_step);
    put_f64(&b, st->lr);
    put_f64(&b, st->best_value);
    put_u64(&b, (uint64_t)st->best_epoch);
    put_u64(&b, st->wait);
    put_u64(&b, st->plateau_wait);
    put_f64(&b, st->loss_sum);
    put_f64(&b, st->seconds);
    put_u64(&b, st->samples);
    put_u64(&b, st->npart);
    put_f32s(&b, st->part_prob, st->npart);
    put_i32s(&b, st->part_label, st->npart);
    put_i32s(&b, st->part_cat, st->npart);
    put_f64(&b, st->loss_scale);
    put_u64(&b, st->loss_scale_good_steps);
    if (!b.oom)
        put_u64(&b, XXH3_64bits(b.p, b.len));
    if (b.oom) {
        free(b.p);
        return tnrec__fail(TNREC_ENOMEM, "out of memory writing checkpoint '%s'", path);
    }
    tnrec_err err = tnrec__write_file_atomic(path, b.p, b.len);
    free(b.p);
    return err;
}

typedef struct rbuf { const uint8_t *p; size_t len, pos; int bad; } rbuf;

static const uint8_t *take(rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}
static uint64_t get_u64(rbuf *r) { const uint8_t *p = take(r, 8); return p ? tnrec__get_u64(p) : 0; }
static uint32_t get_u32(rbuf *r) { const uint8_t *p = take(r, 4); return p ? tnrec__get_u32(p) : 0; }
static double get_f64(rbuf *r) { uint64_t u = get_u64(r); double d; memcpy(&d, &u, 8); return d; }
static void get_f32s(rbuf *r, float *dst, size_t n)
{
    const uint8_t *p = take(r, n * 4);
    if (p && dst)
        for (size_t i = 0; i < n; i++)
            dst[i] = tnrec__get_f32(p + 4 * i);
}
static void get_i32s(rbuf *r, int32_t *dst, size_t n)
{
    const uint8_t *p = take(r, n * 4);
    if (p && dst)
        for (size_t i = 0; i < n; i++)
            dst[i] = (int32_t)tnrec__get_u32(p + 4 * i);
}

void trn_train_state_clear(trn_train_state *st)
{
    if (!st)
        return;
    free(st->part_prob);
    free(st->part_label);
    free(st->part_cat);
    memset(st, 0, sizeof *st);
    st->best_epoch = -1;
}

/* Model described by the checkpoint's config JSON. */
static tnrec_err model_from_config(tnrec_model **out, const char *json, const char *path)
{
    json_error_t jerr;
    json_t *cfg = json_loads(json, 0, &jerr);
    if (!cfg)
        return tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config is not JSON (%s)", path, jerr.text);
    const char *spec = tnrec__json_str(cfg, "model");
    tnrec_input_shape in = {
        (int)tnrec__json_int(cfg, "frames"),
        (int)tnrec__json_int(cfg, "height"),
        (int)tnrec__json_int(cfg, "width"),
        (int)tnrec__json_int(cfg, "channels"),
    };
    tnrec_err err;
    if (!spec)
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config has no model", path);
    else
        err = tnrec_model_create(out, spec, &in, 0);
    json_decref(cfg);
    return err;
}

tnrec_err trn_checkpoint_read(const char *path, char **out_config, tnrec_model **out_model,
                                 tnrec_optim *opt, trn_train_state *st)
{
    *out_config = NULL;
    *out_model = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    char *config = NULL;
    tnrec_model *m = NULL;
    tnrec_err err = tnrec__read_file(path, &data, &len);
    if (err)
        return err;
    if (len < 8 + 8 + 8 || memcmp(data, TRN_CKPT_MAGIC, 8) != 0) {
        err = tnrec__fail(TNREC_EFORMAT, "'%s' is not a tnrec checkpoint\nhint: give a .tnck file or a run directory of 'tnrec train'", path);
        goto done;
    }
    uint64_t want = tnrec__get_u64(data + len - 8);
    if (XXH3_64bits(data, len - 8) != want) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s' is damaged (checksum mismatch)\n"
                          "hint: use another checkpoint of the run (epoch-NNNN.tnck) or retrain", path);
        goto done;
    }
    rbuf r = { data, len - 8, 8, 0 };
    uint32_t major = get_u32(&r), minor = get_u32(&r);
    if (major != TRN_CKPT_MAJOR) {
        err = tnrec__fail(TNREC_EFORMAT, "checkpoint '%s' has version %u, this tnrec reads version %d\nhint: use the tnrec that wrote it",
                          path, major, TRN_CKPT_MAJOR);
        goto done;
    }
    uint64_t cl = get_u64(&r);
    const uint8_t *cp = take(&r, cl);
    if (!cp || !(config = malloc(cl + 1))) {
        err = r.bad ? tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': truncated config", path)
                    : tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    memcpy(config, cp, cl);
    config[cl] = '\0';
    if ((err = model_from_config(&m, config, path)))
        goto done;
    uint64_t np = get_u64(&r);
    if (np != m->nparams) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': %llu parameters, its model has %zu", path, (unsigned long long)np, m->nparams);
        goto done;
    }
    get_f32s(&r, m->params, np);
    uint64_t ns = get_u64(&r);
    if (ns != m->nstate) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': %llu state values, its model has %zu", path, (unsigned long long)ns, m->nstate);
        goto done;
    }
    get_f32s(&r, m->state, ns);
    uint64_t no = get_u64(&r);
    if (opt && no == opt->n) {
        get_f32s(&r, opt->m, no);
        get_f32s(&r, opt->v, no);
    } else if (opt && no != opt->n) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s' has no optimiser state for this model\nhint: resume from a checkpoint written by 'tnrec train'", path);
        goto done;
    } else {
        get_f32s(&r, NULL, no);
        get_f32s(&r, NULL, no);
    }
    uint64_t t = get_u64(&r);
    if (opt)
        opt->t = t;
    if (st) {
        trn_train_state_clear(st);
        st->epoch = get_u64(&r);
        st->step = get_u64(&r);
        st->global_step = get_u64(&r);
        st->lr = get_f64(&r);
        st->best_value = get_f64(&r);
        st->best_epoch = (int64_t)get_u64(&r);
        st->wait = get_u64(&r);
        st->plateau_wait = get_u64(&r);
        st->loss_sum = get_f64(&r);
        st->seconds = get_f64(&r);
        st->samples = get_u64(&r);
        st->npart = get_u64(&r);
        if (!r.bad && st->npart > (r.len - r.pos) / 12) {
            r.bad = 1;
        } else if (!r.bad) {
            size_t k = st->npart ? st->npart : 1;
            st->part_prob = malloc(k * sizeof(float));
            st->part_label = malloc(k * sizeof(int32_t));
            st->part_cat = malloc(k * sizeof(int32_t));
            if (!st->part_prob || !st->part_label || !st->part_cat) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", path);
                goto done;
            }
            get_f32s(&r, st->part_prob, st->npart);
            get_i32s(&r, st->part_label, st->npart);
            get_i32s(&r, st->part_cat, st->npart);
        }
        if (minor >= 1) {
            st->loss_scale = get_f64(&r);
            st->loss_scale_good_steps = get_u64(&r);
            if (!r.bad && !(st->loss_scale == 0 || (st->loss_scale >= 1 && isfinite(st->loss_scale)))) {
                err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': loss scale %g is not 0 or a finite number >= 1", path,
                                  st->loss_scale);
                goto done;
            }
        }
    }
    if (r.bad) {
        err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s' is truncated inside its sections", path);
        goto done;
    }
    *out_config = config;
    *out_model = m;
    config = NULL;
    m = NULL;
done:
    if (err && st)
        trn_train_state_clear(st);
    free(config);
    tnrec_model_free(m);
    free(data);
    return err;
}

tnrec_err tnrec_checkpoint_resolve(char **out, const char *path)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return tnrec__fail_errno(TNREC_ENOTFOUND, errno, "cannot open checkpoint '%s'", path);
    size_t n = strlen(path) + 32;
    char *p = malloc(n);
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(p, n, "%s", path);
        *out = p;
        return TNREC_OK;
    }
    const char *names[] = { "best.tnck", "last.tnck" };
    for (int i = 0; i < 2; i++) {
        snprintf(p, n, "%s/%s", path, names[i]);
        if (stat(p, &sb) == 0) {
            *out = p;
            return TNREC_OK;
        }
    }
    free(p);
    return tnrec__fail(TNREC_ENOTFOUND, "run directory '%s' has no best.tnck or last.tnck\nhint: is it the -o directory of a 'tnrec train' that finished an epoch?", path);
}

tnrec_err tnrec_checkpoint_load_model(tnrec_model **out, const char *path)
{
    char *resolved = NULL, *config = NULL;
    tnrec_err err = tnrec_checkpoint_resolve(&resolved, path);
    if (!err)
        err = trn_checkpoint_read(resolved, &config, out, NULL, NULL);
    free(resolved);
    free(config);
    return err;
}

tnrec_err tnrec_checkpoint_config(char **out, const char *path)
{
    *out = NULL;
    char *resolved = NULL;
    tnrec_model *m = NULL;
    tnrec_err err = tnrec_checkpoint_resolve(&resolved, path);
    if (!err)
        err = trn_checkpoint_read(resolved, out, &m, NULL, NULL);
    tnrec_model_free(m);
    free(resolved);
    return err;
}

tnrec_err tnrec_checkpoint_has_data_schema(int *out, const char *path)
{
    *out = 0;
    char *config = NULL;
    tnrec_err err = tnrec_checkpoint_config(&config, path);
    if (!err) {
        json_t *cfg = json_loads(config, 0, NULL);
        if (!cfg)
            err = tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': config is not JSON", path);
        *out = json_is_object(json_object_get(cfg, "data_schema"));
        json_decref(cfg);
    }
    free(config);
    return err;
}

tnrec_err tnrec_checkpoint_write_model(const char *path, const char *config_json, const tnrec_model *m)
{
    if (!path || !config_json || !m)
        return tnrec__fail(TNREC_EINVAL, "tnrec_checkpoint_write_model: NULL argument");
    return trn_checkpoint_write(path, config_json, m, NULL, NULL);
}
