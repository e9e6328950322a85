/* train/loader.c: turns a dataset into ready batches on a pool of threads.
 *
 * Each epoch visits the records in a permutation drawn from (seed, epoch)
 * (or in order without shuffling). Batch s of the epoch holds permutation
 * positions [s*B, min(N, (s+1)*B)); with several ranks, rank r takes the
 * r-th of `world` near-equal contiguous parts of it. A batch is NDHWC
 * float32: the last `frames` frames, channels = variables x sweeps (then
 * range_folded_mask per sweep if asked).
 *
 * Threads decode single samples into a ring of `prefetch` batch slots
 * ahead of the consumer; the consumer gets batches strictly in order, and
 * may look at the following batch once it is complete (peek, so a GPU
 * can start copying it early); a slot is refilled only after the
 * consumer moved past its batch. Each slot's input array starts on a
 * page and has its pages to itself, so it can be page-locked for the GPU
 * (cudaHostRegister) without touching other memory.
 * (epoch, step) is the whole position: starting at any step of an epoch
 * gives exactly the batches an uninterrupted epoch would have given there.
 * A decode error is kept with its batch and returned, with the shard and
 * record named, when the consumer reaches that batch. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "splitmix64.h"
#include "tnrec/train.h"

#define LOADER_MAX_VARS TNREC_MAX_FIELDS
#define STEP_NONE UINT64_MAX

typedef struct slot {
    tnrec_batch b;
    int x_caller;           /* b.x came from tnrec_loader_swap: the caller's memory, not freed here */
    uint64_t step;          /* STEP_NONE: free */
    int count, done;
    tnrec_err err;
    char msg[1024];
} slot;

typedef struct worker_ctx {
    tnrec_loader *l;
    tnrec_decoder *dec;
} worker_ctx;

struct tnrec_loader {
    worker_ctx *ctxs;
    const tnrec_dataset *ds;
    tnrec_loader_config cfg;
    int nvars, var_field[LOADER_MAX_VARS], mask_field, range_field;
    uint32_t in_field[LOADER_MAX_VARS + 1]; /* the input's fields in channel order: variables, then the mask */
    int n_in;
    int T, A, R, S, frames, channels;
    size_t sample_elems, field_elems;
    uint64_t n_records, steps;
    int local_max;
    uint64_t *order;

    int nslots;
    slot *slots;
    int nthreads, started_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    uint64_t next_out;      /* next step handed to the consumer */
    uint64_t task_step;     /* next step whose items are handed to workers */
    int task_item;
    int active, stop, holding;
    int draining;           /* tnrec_loader_start is waiting for active to reach 0 */
};

/* Whole pages for a batch's input (see the top of the file); free(). */
static float *alloc_pages(size_t bytes)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t len = (bytes + page - 1) / page * page;
    void *p = NULL;
    if (posix_memalign(&p, page, len ? len : page) != 0)
        return NULL;
    return p;
}

/* Rank part of step s: [*lo, *hi) of the global batch of *gn samples. */
static void step_part(const tnrec_loader *l, uint64_t s, int *gn, int *lo, int *hi)
{
    uint64_t B = (uint64_t)l->cfg.batch, first = s * B;
    uint64_t end = first + B < l->n_records ? first + B : l->n_records;
    int g = (int)(end - first), W = l->cfg.world, r = l->cfg.rank;
    *gn = g;
    *lo = (int)((int64_t)g * r / W);
    *hi = (int)((int64_t)g * (r + 1) / W);
}

static tnrec_err decode_sample(worker_ctx *w, uint64_t rec, float *x, float *label, float *weight,
                               int32_t *category, uint64_t *index)
{
    tnrec_loader *l = w->l;
    size_t shard_i;
    uint64_t local;
    tnrec_err err = tnrec_dataset_locate(l->ds, rec, &shard_i, &local);
    if (err)
        return err;
    const tnrec_shard *sh = tnrec_dataset_shard(l->ds, shard_i);
    const tnrec_record_info *info = tnrec_shard_info(sh, local);
    if (!info)
        return tnrec__fail(TNREC_EINTERNAL, "shard '%s': record %llu missing from the index", tnrec_shard_path(sh),
                           (unsigned long long)local);
    if ((err = tnrec_decoder_load(w->dec, sh, local)))
        return err;
    /* Straight into the batch: the fields' (time, azimuth, range, sweep)
     * elements are converted and land in their NDHWC channels (all fields
     * in one pass, or a block of rows at a time for all fields). */
    size_t S = (size_t)l->S, AR = (size_t)l->A * (size_t)l->R;
    size_t rows = (size_t)l->frames * AR, first = (size_t)(l->T - l->frames) * AR * S;
    if ((err = tnrec_decoder_fields_rows(w->dec, l->in_field, (size_t)l->n_in, first, rows, S, x,
                                         (size_t)l->channels)))
        return err;
    int y = info->meta.label ? 1 : 0;
    *label = (float)y;
    *weight = l->cfg.class_weight[y];
    *category = info->meta.category;
    *index = rec;
    return TNREC_OK;
}

/* The sample's range window [lower, upper] (metres) into the batch; the
 * decoder holds record rec, loaded by decode_sample. */
static tnrec_err decode_range_limits(worker_ctx *w, uint64_t rec, float *dst)
{
    tnrec_err err = tnrec_decoder_field(w->dec, (uint32_t)w->l->range_field, TNREC_DTYPE_F32, dst, 2 * sizeof *dst);
    if (err || (isfinite(dst[0]) && isfinite(dst[1]) && dst[0] >= 0 && dst[1] > dst[0]))
        return err;
    size_t shard_i = 0;
    uint64_t local = 0;
    if ((err = tnrec_dataset_locate(w->l->ds, rec, &shard_i, &local)))
        return err;
    return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu has range_limits [%g, %g] m, which are no range window\n"
                       "hint: the record is damaged; rebuild the dataset from its NetCDF files",
                       tnrec_shard_path(tnrec_dataset_shard(w->l->ds, shard_i)), (unsigned long long)local,
                       (double)dst[0], (double)dst[1]);
}

static void *worker_main(void *arg)
{
    worker_ctx *w = arg;
    tnrec_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->stop)
            break;
        if (l->task_step >= l->steps || l->task_step >= l->next_out + (uint64_t)l->nslots) {
            pthread_cond_wait(&l->cv_work, &l->mu);
            continue;
        }
        uint64_t s = l->task_step;
        slot *sl = &l->slots[s % (uint64_t)l->nslots];
        if (l->task_item == 0) {
            int gn, lo, hi;
            step_part(l, s, &gn, &lo, &hi);
            sl->step = s;
            sl->count = hi - lo;
            sl->done = 0;
            sl->err = TNREC_OK;
            sl->msg[0] = '\0';
            sl->b.n = hi - lo;
            sl->b.global_n = gn;
            sl->b.global_first = lo;
            sl->b.step = s;
            if (sl->count == 0) {
                l->task_step++;
                pthread_cond_broadcast(&l->cv_done);
                continue;
            }
        }
        int item = l->task_item;
        if (++l->task_item >= sl->count) {
            l->task_step++;
            l->task_item = 0;
        }
        uint64_t rec = l->order[s * (uint64_t)l->cfg.batch + (uint64_t)sl->b.global_first + (uint64_t)item];
        int skip = sl->err != TNREC_OK;
        l->active++;
        pthread_mutex_unlock(&l->mu);
        tnrec_err err = TNREC_OK;
        if (!skip)
            err = decode_sample(w, rec, sl->b.x + (size_t)item * l->sample_elems, &sl->b.label[item],
                                &sl->b.weight[item], &sl->b.category[item], &sl->b.index[item]);
        if (!skip && !err && sl->b.range_limits)
            err = decode_range_limits(w, rec, sl->b.range_limits + 2 * (size_t)item);
        const char *msg = err ? tnrec_error_last() : NULL;
        pthread_mutex_lock(&l->mu);
        l->active--;
        if (err && sl->err == TNREC_OK) {
            sl->err = err;
            snprintf(sl->msg, sizeof sl->msg, "%s", msg);
        }
        /* The consumer waits for whole batches; only a restart waits for
         * the workers to go idle, so the consumer is not woken after every
         * sample (about 1 % of a one-thread loader's CPU time). */
        if (++sl->done == sl->count || (l->active == 0 && l->draining))
            pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* "dataset has no field 'KDP' (it has DBZ, VEL)": the caller adds how to
 * choose (train: --variables; eval: the checkpoint's variables). */
static tnrec_err missing_field(const tnrec_schema *sc, const char *name)
{
    char have[512] = "";
    size_t k = 0;
    for (uint32_t f = 0; f < sc->nfields && k < sizeof have; f++) {
        if (sc->fields[f].encoding == TNREC_ENC_RAW || sc->fields[f].ndim != 4)
            continue;
        int n = snprintf(have + k, sizeof have - k, "%s%s", k ? ", " : "", sc->fields[f].name);
        if (n < 0)
            break;
        k += (size_t)n;
    }
    return tnrec__fail(TNREC_ESCHEMA, "dataset has no field '%s' (its radar fields: %s)", name, k ? have : "none");
}

static tnrec_err find_fields(tnrec_loader *l)
{
    const tnrec_schema *sc = tnrec_dataset_schema(l->ds);
    const char *vars = l->cfg.variables ? l->cfg.variables : "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", vars);
    char *save = NULL;
    const tnrec_field *first = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (l->nvars >= LOADER_MAX_VARS)
            return tnrec__fail(TNREC_EINVAL, "too many variables in '%s'", vars);
        int f = tnrec_schema_find(sc, tok);
        if (f < 0)
            return missing_field(sc, tok);
        const tnrec_field *fd = &sc->fields[f];
        if (fd->encoding == TNREC_ENC_RAW || fd->ndim != 4)
            return tnrec__fail(TNREC_ESCHEMA, "field '%s' is not a float-encoded (time, azimuth, range, sweep) array", tok);
        if (first && memcmp(first->shape, fd->shape, sizeof fd->shape) != 0)
            return tnrec__fail(TNREC_ESCHEMA, "field '%s' has a different shape from '%s'", tok, first->name);
        first = first ? first : fd;
        l->var_field[l->nvars++] = f;
    }
    if (!first)
        return tnrec__fail(TNREC_EINVAL, "no variables given");
    l->T = (int)first->shape[0];
    l->A = (int)first->shape[1];
    l->R = (int)first->shape[2];
    l->S = (int)first->shape[3];
    l->field_elems = tnrec_field_elems(first);
    l->mask_field = -1;
    if (l->cfg.mask) {
        int f = tnrec_schema_find(sc, "range_folded_mask");
        if (f < 0)
            return tnrec__fail(TNREC_ESCHEMA, "dataset has no field 'range_folded_mask'\nhint: train without --mask");
        const tnrec_field *fd = &sc->fields[f];
        if (fd->encoding != TNREC_ENC_RAW || fd->dtype != TNREC_DTYPE_U8 || memcmp(first->shape, fd->shape, sizeof fd->shape) != 0)
            return tnrec__fail(TNREC_ESCHEMA, "field 'range_folded_mask' is not raw uint8 of the variables' shape");
        l->mask_field = f;
    }
    l->range_field = -1;
    if (l->cfg.range_limits) {
        int f = tnrec_schema_find(sc, "range_limits");
        const tnrec_field *fd = f >= 0 ? &sc->fields[f] : NULL;
        if (!fd || fd->encoding != TNREC_ENC_RAW || fd->dtype != TNREC_DTYPE_F32 || tnrec_field_elems(fd) != 2)
            return tnrec__fail(TNREC_EUNSUPPORTED, "dataset has no float32[2] field 'range_limits', which the model's CoordConv "
                               "layers take their range coordinates from\nhint: build the dataset with 'tnrec build' from "
                               "TorNet NetCDF files, which carry range_limits");
        l->range_field = f;
    }
    l->frames = l->cfg.frames > 0 ? l->cfg.frames : l->T;
    if (l->frames > l->T)
        return tnrec__fail(TNREC_EINVAL, "%d frames asked but the dataset has %d\nhint: use --frames %d or fewer", l->frames, l->T, l->T);
    for (int v = 0; v < l->nvars; v++)
        l->in_field[l->n_in++] = (uint32_t)l->var_field[v];
    if (l->mask_field >= 0)
        l->in_field[l->n_in++] = (uint32_t)l->mask_field;
    l->channels = l->n_in * l->S;
    l->sample_elems = (size_t)l->frames * l->A * l->R * l->channels;
    return TNREC_OK;
}

tnrec_err tnrec_loader_create(tnrec_loader **out, const tnrec_dataset *ds, const tnrec_loader_config *cfg)
{
    *out = NULL;
    tnrec_err err = TNREC_OK;
    tnrec_loader *l = calloc(1, sizeof *l);
    if (!l)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the loader");
    l->ds = ds;
    l->cfg = *cfg;
    if (l->cfg.world <= 0)
        l->cfg.world = 1;
    if (l->cfg.threads <= 0)
        l->cfg.threads = 2;
    if (l->cfg.prefetch <= 0)
        l->cfg.prefetch = 2;
    if (l->cfg.class_weight[0] == 0 && l->cfg.class_weight[1] == 0)
        l->cfg.class_weight[0] = l->cfg.class_weight[1] = 1.0f;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    if (cfg->batch < 1 || cfg->rank < 0 || cfg->rank >= l->cfg.world) {
        err = tnrec__fail(TNREC_EINVAL, "loader: batch %d must be >= 1 and rank %d below world %d", cfg->batch, cfg->rank, l->cfg.world);
        goto fail;
    }
    if ((err = find_fields(l)))
        goto fail;
    l->n_records = tnrec_dataset_count(ds);
    if (l->n_records == 0) {
        err = tnrec__fail(TNREC_EINVAL, "dataset has no records\nhint: check the 'tnrec build' that made it");
        goto fail;
    }
    l->steps = (l->n_records + (uint64_t)cfg->batch - 1) / (uint64_t)cfg->batch;
    l->local_max = (cfg->batch + l->cfg.world - 1) / l->cfg.world;
    l->order = malloc(l->n_records * sizeof *l->order);
    l->nslots = l->cfg.prefetch;
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    if (!l->order || !l->slots)
        goto oom;
    for (int i = 0; i < l->nslots; i++) {
        slot *s = &l->slots[i];
        s->step = STEP_NONE;
        s->b.x = alloc_pages((size_t)l->local_max * l->sample_elems * sizeof(float));
        s->b.label = malloc((size_t)l->local_max * sizeof(float));
        s->b.weight = malloc((size_t)l->local_max * sizeof(float));
        s->b.category = malloc((size_t)l->local_max * sizeof(int32_t));
        s->b.index = malloc((size_t)l->local_max * sizeof(uint64_t));
        if (l->range_field >= 0 && !(s->b.range_limits = malloc((size_t)l->local_max * 2 * sizeof(float))))
            goto oom;
        if (!s->b.x || !s->b.label || !s->b.weight || !s->b.category || !s->b.index)
            goto oom;
    }
    l->task_step = l->steps; /* nothing to do until start */
    l->nthreads = l->cfg.threads;
    l->threads = calloc((size_t)l->nthreads, sizeof *l->threads);
    l->ctxs = calloc((size_t)l->nthreads, sizeof *l->ctxs);
    if (!l->threads || !l->ctxs)
        goto oom;
    for (int i = 0; i < l->nthreads; i++) {
        worker_ctx *w = &l->ctxs[i];
        w->l = l;
        if ((err = tnrec_decoder_create(&w->dec)))
            goto fail;
        tnrec_decoder_set_nodata(w->dec, l->cfg.has_nodata ? &l->cfg.nodata : NULL);
        tnrec_decoder_set_content_check(w->dec, 0); /* the frame's XXH3 is checked on every load */
        tnrec_decoder_set_stream(w->dec, 1);        /* a batch is read after it is complete, from memory */
    }
    for (int i = 0; i < l->nthreads; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, &l->ctxs[i]) != 0) {
            err = tnrec__fail(TNREC_ENOMEM, "cannot start loader thread %d of %d", i + 1, l->nthreads);
            goto fail;
        }
        l->started_threads++;
    }
    l->cfg.variables = NULL; /* the caller's string is not kept */
    *out = l;
    return TNREC_OK;
oom:
    err = tnrec__fail(TNREC_ENOMEM, "out of memory for the loader (batch %d of %zu floats each)", cfg->batch, l->sample_elems);
fail:
    tnrec_loader_free(l);
    return err;
}

void tnrec_loader_free(tnrec_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->started_threads; i++)
        pthread_join(l->threads[i], NULL);
    if (l->ctxs)
        for (int i = 0; i < l->nthreads; i++) {
            tnrec_decoder_free(l->ctxs[i].dec);
        }
    if (l->slots)
        for (int i = 0; i < l->nslots; i++) {
            if (!l->slots[i].x_caller)
                free(l->slots[i].b.x);
            free(l->slots[i].b.label);
            free(l->slots[i].b.weight);
            free(l->slots[i].b.category);
            free(l->slots[i].b.index);
            free(l->slots[i].b.range_limits);
        }
    free(l->slots);
    free(l->ctxs);
    free(l->threads);
    free(l->order);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
    free(l);
}

tnrec_input_shape tnrec_loader_shape(const tnrec_loader *l)
{
    tnrec_input_shape s = { l->frames, l->A, l->R, l->channels };
    return s;
}

uint64_t tnrec_loader_steps(const tnrec_loader *l) { return l->steps; }

tnrec_err tnrec_loader_start(tnrec_loader *l, uint64_t epoch, uint64_t step)
{
    if (step > l->steps)
        return tnrec__fail(TNREC_ERANGE, "loader: step %llu past the end of the epoch (%llu steps)",
                           (unsigned long long)step, (unsigned long long)l->steps);
    pthread_mutex_lock(&l->mu);
    l->task_step = l->steps; /* hand out nothing more, then wait for work in flight */
    l->task_item = 0;
    l->draining++;
    while (l->active > 0)
        pthread_cond_wait(&l->cv_done, &l->mu);
    l->draining--;
    for (uint64_t i = 0; i < l->n_records; i++)
        l->order[i] = i;
    if (l->cfg.shuffle) {
        uint64_t st = tnrec__splitmix64(l->cfg.seed ^ tnrec__splitmix64(epoch + 0x5eed));
        for (uint64_t i = l->n_records - 1; i > 0; i--) {
            st = tnrec__splitmix64(st);
            uint64_t j = st % (i + 1);
            uint64_t t = l->order[i];
            l->order[i] = l->order[j];
            l->order[j] = t;
        }
    }
    for (int i = 0; i < l->nslots; i++)
        l->slots[i].step = STEP_NONE;
    l->next_out = step;
    l->task_step = step;
    l->holding = 0;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return TNREC_OK;
}

tnrec_err tnrec_loader_next(tnrec_loader *l, const tnrec_batch **out)
{
    *out = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->holding) {
        l->next_out++;
        l->holding = 0;
        pthread_cond_broadcast(&l->cv_work);
    }
    if (l->next_out >= l->steps) {
        pthread_mutex_unlock(&l->mu);
        return TNREC_OK;
    }
    slot *sl = &l->slots[l->next_out % (uint64_t)l->nslots];
    while (!(sl->step == l->next_out && sl->done == sl->count && (l->task_step > l->next_out)))
        pthread_cond_wait(&l->cv_done, &l->mu);
    if (sl->err) {
        tnrec_err err = sl->err;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sl->msg);
        pthread_mutex_unlock(&l->mu);
        return tnrec__fail(err, "%s", msg);
    }
    l->holding = 1;
    *out = &sl->b;
    pthread_mutex_unlock(&l->mu);
    return TNREC_OK;
}

tnrec_err tnrec_loader_peek(tnrec_loader *l, const tnrec_batch **out)
{
    *out = NULL;
    pthread_mutex_lock(&l->mu);
    uint64_t s = l->holding ? l->next_out + 1 : l->next_out;
    if (s < l->steps) {
        /* Ready exactly when tnrec_loader_next would not wait for it; its
         * slot differs from the held batch's unless prefetch is 1, and
         * then it cannot be filled yet (workers stay within nslots). */
        slot *sl = &l->slots[s % (uint64_t)l->nslots];
        if (sl->step == s && sl->done == sl->count && l->task_step > s && sl->err == TNREC_OK)
            *out = &sl->b;
    }
    pthread_mutex_unlock(&l->mu);
    return TNREC_OK;
}

size_t tnrec_loader_batch_floats(const tnrec_loader *l)
{
    return (size_t)l->local_max * l->sample_elems;
}

tnrec_err tnrec_loader_swap(tnrec_loader *l, float *x, float **out_x)
{
    *out_x = NULL;
    if (!x)
        return tnrec__fail(TNREC_EINVAL, "tnrec_loader_swap: NULL array");
    pthread_mutex_lock(&l->mu);
    if (!l->holding) {
        pthread_mutex_unlock(&l->mu);
        return tnrec__fail(TNREC_EINVAL, "tnrec_loader_swap: no batch held (call tnrec_loader_next first)");
    }
    /* The held batch's slot is complete and no worker touches it until
     * the consumer moves past it (see the top of the file). */
    slot *sl = &l->slots[l->next_out % (uint64_t)l->nslots];
    *out_x = sl->b.x;
    sl->b.x = x;
    sl->x_caller = 1;
    pthread_mutex_unlock(&l->mu);
    return TNREC_OK;
}
