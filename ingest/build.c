/* ingest/build.c: the `tnrec build` pipeline.
 *
 * Inputs are enumerated (sources.c), sorted by key, selected (split, years
 * known from the catalog, --holdout groups (holdout.c), part K/N as a
 * contiguous range) and processed in
 * batches: OpenMP threads read, check and encode the samples of a batch
 * (the NetCDF/HDF5 calls serialised by one lock inside nc_sample.c), then
 * the calling thread appends the records to the dataset writer in input
 * order. So the shards and the manifest are byte-identical for any thread
 * count. Tarball sources are read member by member in archive order.
 *
 * Resume: after each shard the writer closes, a progress file in the output
 * directory records how many shards and inputs are done and what was
 * skipped so far (written atomically). A rerun with the same build
 * parameters adopts the finished shards as they are (their index is
 * checked, nothing is rewritten, no NetCDF work) and carries on from the
 * first input of the unfinished shard. The manifest holds no
 * timestamps, so a resumed build equals an uninterrupted one.
 * A build that fails (a bad input under strict, a full disk, a write
 * error) or is asked to stop (opt->stop, checked between samples) keeps
 * its finished shards and progress file and removes only the shard it was
 * writing. Inputs that give no record at all are an error, not an empty
 * dataset.
 * Deliberately not here: printing (callbacks), merging parts (merge.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_internal.h"
#include "common.h"
#include "ingest_internal.h"
#include "json_util.h"
#include "tnrec/tnrec.h"

#if TNREC_HAVE_OPENMP
#include <omp.h>
#endif

static const float default_norm[TNREC_INGEST_NVARS][2] = {
    { -20.0f, 60.0f }, { -60.0f, 60.0f }, { -2.0f, 5.0f }, { 0.2f, 1.04f }, { -1.0f, 8.0f }, { 0.0f, 9.0f }
};

#define TN_NODATA (-3.0f)

tnrec_err tnrec_ingest_default_norm(tnrec_norm_range *out, const char *var)
{
    for (int i = 0; i < TNREC_INGEST_NVARS; i++) {
        if (strcmp(var, ing_moment_names[i]) == 0) {
            memset(out, 0, sizeof *out);
            snprintf(out->var, sizeof out->var, "%s", var);
            out->min = default_norm[i][0];
            out->max = default_norm[i][1];
            return TNREC_OK;
        }
    }
    return tnrec__fail(TNREC_ENOTFOUND, "'%s' is not a TorNet radar variable (DBZ VEL KDP RHOHV ZDR WIDTH)", var);
}

void tnrec_build_options_init(tnrec_build_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->frames = TNREC_INGEST_MAX_FRAMES;
    opt->encoding = TNREC_ENC_FLOAT16;
    opt->split = "all";
}

tnrec_err tnrec_build_parse_part(uint32_t *out_index, uint32_t *out_count, const char *text)
{
    char *end;
    errno = 0;
    unsigned long k = strtoul(text, &end, 10);
    if (end == text || *end != '/' || errno)
        return tnrec__fail(TNREC_EINVAL, "part '%s' is not K/N\nhint: e.g. --part 0/4 builds the first of four parts",
                           text);
    const char *p = end + 1;
    unsigned long n = strtoul(p, &end, 10);
    if (end == p || *end || errno || n == 0 || n > 1000000 || k >= n)
        return tnrec__fail(TNREC_EINVAL, "part '%s' must be K/N with 0 <= K < N", text);
    *out_index = (uint32_t)k;
    *out_count = (uint32_t)n;
    return TNREC_OK;
}

int tnrec_build_part_from_env(uint32_t *out_index, uint32_t *out_count)
{
    static const char *const pairs[][2] = {
        { "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" },
        { "PMI_RANK", "PMI_SIZE" },
        { "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT" },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *r = getenv(pairs[i][0]), *s = getenv(pairs[i][1]);
        if (!r || !s || !*r || !*s)
            continue;
        char text[64];
        snprintf(text, sizeof text, "%s/%s", r, s);
        uint32_t k, n;
        if (tnrec_build_parse_part(&k, &n, text) == TNREC_OK) {
            *out_index = k;
            *out_count = n;
            return 1;
        }
    }
    return 0;
}

/* ---- the plan: schema, spec and build parameters ---- */

typedef struct plan {
    ing_spec spec;
    tnrec_schema schema;
    int moment_field[TNREC_INGEST_NVARS]; /* field index by canonical moment, -1 if not kept */
    int rfm_field, f_time, f_labels, f_azlim, f_rglim, f_site, f_elev, f_nyq;
    char *params;                         /* build parameters, compact JSON with sorted keys */
} plan;

static void set_dims(tnrec_field *f, uint32_t ndim, const uint32_t *shape, const char *const *dims)
{
    f->ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++) {
        f->shape[i] = shape[i];
        snprintf(f->dims[i], sizeof f->dims[i], "%s", dims[i]);
    }
}

static int add_raw(tnrec_schema *s, const char *name, tnrec_dtype dt, uint32_t ndim, const uint32_t *shape,
                   const char *const *dims, int shuffle)
{
    tnrec_field *f = &s->fields[s->nfields];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->encoding = TNREC_ENC_RAW;
    f->dtype = dt;
    f->shuffle = (uint32_t)shuffle;
    f->scale = 1.0f;
    set_dims(f, ndim, shape, dims);
    return (int)s->nfields++;
}

static int zstd_level_of(const tnrec_build_options *opt)
{
    if (opt->zstd_level)
        return opt->zstd_level;
    return opt->encoding == TNREC_ENC_UINT8 ? TNREC_BUILD_DEFAULT_ZSTD_UINT8 : TNREC_BUILD_DEFAULT_ZSTD;
}

static const char *encoding_param(tnrec_encoding e)
{
    return e == TNREC_ENC_FLOAT32 ? "float32" : e == TNREC_ENC_UINT8 ? "uint8" : "float16";
}

static tnrec_err plan_make(plan *p, const tnrec_build_options *opt)
{
    memset(p, 0, sizeof *p);
    tnrec_err err = TNREC_OK;
    json_t *root = NULL;
    uint32_t frames = opt->frames ? opt->frames : TNREC_INGEST_MAX_FRAMES;
    if (frames < 1 || frames > TNREC_INGEST_MAX_FRAMES)
        return tnrec__fail(TNREC_EINVAL, "frames %u out of range\nhint: --frames takes 1..4 (the last N frames)", frames);
    if (opt->encoding != TNREC_ENC_FLOAT32 && opt->encoding != TNREC_ENC_FLOAT16 && opt->encoding != TNREC_ENC_UINT8)
        return tnrec__fail(TNREC_EINVAL, "encoding must be float32, float16 or uint8");
    if (!opt->out_dir || !*opt->out_dir)
        return tnrec__fail(TNREC_EINVAL, "no output directory\nhint: give one with -o DIR");
    if (!opt->nsources)
        return tnrec__fail(TNREC_EINVAL, "no sources\nhint: give a TORNET_ROOT, a directory, a list file or a tarball");
    if (opt->holdout != 0 && !(opt->holdout > 0 && opt->holdout < 1))
        return tnrec__fail(TNREC_EINVAL, "holdout fraction %g is not between 0 and 1\nhint: e.g. --holdout 0.2", opt->holdout);
    const char *split = opt->split ? opt->split : "all";
    if (strcmp(split, "all") && strcmp(split, "train") && strcmp(split, "test"))
        return tnrec__fail(TNREC_EINVAL, "split '%s' is not train, test or all", split);
    p->spec.frames = frames;
    for (int i = 0; i < TNREC_INGEST_NVARS; i++)
        p->moment_field[i] = -1;
    p->rfm_field = -1;

    /* variables, in the order given */
    const char *all[TNREC_INGEST_NVARS + 1];
    for (int i = 0; i < TNREC_INGEST_NVARS; i++)
        all[i] = ing_moment_names[i];
    all[TNREC_INGEST_NVARS] = TN_RFM_NAME;
    const char *const *vars = opt->nvariables ? opt->variables : all;
    size_t nvars = opt->nvariables ? opt->nvariables : TNREC_INGEST_NVARS + 1;
    static const char *const dims4[4] = { "time", "azimuth", "range", "sweep" };
    const uint32_t shape4[4] = { frames, TN_NAZ, TN_NR, TN_NS };
    root = json_object();
    json_t *jvars = json_array(), *jnorm = json_object();
    if (!root || !jvars || !jnorm) {
        json_decref(jvars);
        json_decref(jnorm);
        err = tnrec__fail(TNREC_ENOMEM, "out of memory planning the build");
        goto done;
    }
    json_object_set_new(root, "variables", jvars);
    json_object_set_new(root, "norm", jnorm);
    for (size_t v = 0; v < nvars; v++) {
        const char *name = vars[v];
        json_array_append_new(jvars, json_string(name));
        if (strcmp(name, TN_RFM_NAME) == 0) {
            if (p->rfm_field >= 0) {
                err = tnrec__fail(TNREC_EINVAL, "variable '%s' given twice", name);
                goto done;
            }
            p->spec.want_rfm = 1;
            p->rfm_field = add_raw(&p->schema, TN_RFM_NAME, TNREC_DTYPE_U8, 4, shape4, dims4, 0);
            continue;
        }
        int m = -1;
        for (int i = 0; i < TNREC_INGEST_NVARS; i++)
            if (strcmp(name, ing_moment_names[i]) == 0)
                m = i;
        if (m < 0) {
            err = tnrec__fail(TNREC_EINVAL, "unknown variable '%s'\nhint: choose from DBZ VEL KDP RHOHV ZDR WIDTH "
                              "range_folded_mask", name);
            goto done;
        }
        if (p->moment_field[m] >= 0) {
            err = tnrec__fail(TNREC_EINVAL, "variable '%s' given twice", name);
            goto done;
        }
        if (opt->has_nodata && !(isfinite(opt->nodata) && fabsf(opt->nodata) <= 1000.0f)) {
            err = tnrec__fail(TNREC_EINVAL, "no-data value %g: must be finite, within +-1000 (normalised units)",
                              (double)opt->nodata);
            goto done;
        }
        float lo = default_norm[m][0], hi = default_norm[m][1];
        for (size_t k = 0; k < opt->nnorms; k++) {
            if (strcmp(opt->norms[k].var, name) == 0) {
                lo = opt->norms[k].min;
                hi = opt->norms[k].max;
            }
        }
        if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
            err = tnrec__fail(TNREC_EINVAL, "normalisation range of '%s' [%g, %g] is empty", name, lo, hi);
            goto done;
        }
        json_t *pair = json_pack("[f,f]", (double)lo, (double)hi);
        json_object_set_new(jnorm, name, pair);
        tnrec_field *f = &p->schema.fields[p->schema.nfields];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", name);
        f->encoding = opt->encoding;
        f->dtype = TNREC_DTYPE_F32;
        /* No byte shuffle: quantised radar values repeat whole, and zstd
         * matches them better unshuffled (docs/benchmarks.md, Build:
         * float16 12 % and float32 40 % smaller, and faster). */
        f->shuffle = 0;
        f->offset = (float)(((double)lo + (double)hi) / 2.0);
        f->scale = (float)(((double)hi - (double)lo) / 2.0);
        f->nodata = opt->has_nodata ? opt->nodata : TN_NODATA;
        if (opt->encoding == TNREC_ENC_UINT8) {
            f->qmin = -1.0f;
            f->qmax = 1.0f;
        }
        set_dims(f, 4, shape4, dims4);
        p->moment_field[m] = (int)p->schema.nfields++;
        p->spec.moment[p->spec.nmoments++] = m;
    }
    for (size_t k = 0; k < opt->nnorms; k++) {
        int found = 0;
        for (int i = 0; i < TNREC_INGEST_NVARS; i++)
            if (strcmp(opt->norms[k].var, ing_moment_names[i]) == 0 && p->moment_field[i] >= 0)
                found = 1;
        if (!found) {
            err = tnrec__fail(TNREC_EINVAL, "--norm names '%s', which is not a selected radar variable",
                              opt->norms[k].var);
            goto done;
        }
    }
    if (!p->spec.nmoments && !p->spec.want_rfm) {
        err = tnrec__fail(TNREC_EINVAL, "no variables selected");
        goto done;
    }
    {
        static const char *const d_time[1] = { "time" };
        static const char *const d_lims[1] = { "lims" };
        static const char *const d_chars[1] = { "chars" };
        static const char *const d_sweep[1] = { "sweep" };
        static const char *const d_ts[2] = { "time", "sweep" };
        const uint32_t s_t[1] = { frames }, s_2[1] = { 2 }, s_4[1] = { 4 }, s_ts[2] = { frames, TN_NS };
        p->f_time = add_raw(&p->schema, "time", TNREC_DTYPE_I64, 1, s_t, d_time, 1);
        p->f_labels = add_raw(&p->schema, "frame_labels", TNREC_DTYPE_U8, 1, s_t, d_time, 0);
        p->f_azlim = add_raw(&p->schema, "azimuth_limits", TNREC_DTYPE_F32, 1, s_2, d_lims, 1);
        p->f_rglim = add_raw(&p->schema, "range_limits", TNREC_DTYPE_F32, 1, s_2, d_lims, 1);
        p->f_site = add_raw(&p->schema, "site", TNREC_DTYPE_U8, 1, s_4, d_chars, 0);
        p->f_elev = add_raw(&p->schema, "elevation", TNREC_DTYPE_F64, 1, s_2, d_sweep, 1);
        p->f_nyq = add_raw(&p->schema, "nyquist_velocity", TNREC_DTYPE_F32, 2, s_ts, d_ts, 1);
    }
    if ((err = tnrec_schema_check(&p->schema)) != TNREC_OK)
        goto done;

    json_t *jsrc = json_array(), *jyears = json_array();
    json_object_set_new(root, "sources", jsrc);
    json_object_set_new(root, "years", jyears);
    for (size_t i = 0; i < opt->nsources; i++)
        json_array_append_new(jsrc, json_string(opt->sources[i]));
    for (size_t i = 0; i < opt->nyears; i++)
        json_array_append_new(jyears, json_integer(opt->years[i]));
    json_object_set_new(root, "split", json_string(split));
    json_object_set_new(root, "frames", json_integer(frames));
    json_object_set_new(root, "dtype", json_string(encoding_param(opt->encoding)));
    json_object_set_new(root, "shard_bytes",
                        json_integer((json_int_t)(opt->shard_bytes ? opt->shard_bytes : TNREC_DEFAULT_SHARD_BYTES)));
    json_object_set_new(root, "shard_records", json_integer((json_int_t)opt->shard_records));
    json_object_set_new(root, "zstd_level", json_integer(zstd_level_of(opt)));
    if (opt->holdout > 0)
        json_object_set_new(root, "holdout", json_pack("{s:f,s:I,s:s}", "fraction", opt->holdout, "seed",
                                                       (json_int_t)opt->holdout_seed, "take",
                                                       opt->holdout_take ? "held" : "rest"));
    if (opt->has_nodata) /* absent for the default, so older builds resume */
        json_object_set_new(root, "nodata", json_real(opt->nodata));
    if (opt->part_count > 1)
        json_object_set_new(root, "part", json_pack("{s:i,s:i}", "index", (int)opt->part_index, "count",
                                                    (int)opt->part_count));
    p->params = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    if (!p->params)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory planning the build");
done:
    json_decref(root);
    return err;
}

/* ---- per-item work ---- */

enum { ST_OK = 0, ST_SKIP = 1, ST_FILTERED = 2, ST_STOPPED = 3 };

typedef struct item {
    const ing_input *in;        /* file input, or NULL for a tarball member */
    char *member_key;          /* tarball member name (owned) */
    uint8_t *data;             /* tarball member bytes (owned) */
    size_t size;
    int year_known;            /* year filter already applied */
    int status;
    tnrec_err err;
    char *reason;              /* first line of the error (owned) */
    tnrec_record_meta meta;
    tnrec_blob blob;
    uint64_t bytes_in;
} item;

typedef struct worker {
    double work_seconds;
    ing_sample sample;
    tnrec_encoder *enc;
    uint8_t *fbuf;
    size_t fcap;
} worker;

static const char *item_key(const item *it)
{
    return it->in ? it->in->key : it->member_key;
}

/* The reason of a skip: the first line of the error, without the
 * "'<input>': " the reader puts first (the manifest names the input). */
static void item_set_error(item *it, tnrec_err err)
{
    const char *msg = tnrec_error_last();
    const char *key = item_key(it);
    size_t kl = strlen(key);
    if (msg[0] == '\'' && strncmp(msg + 1, key, kl) == 0 && msg[kl + 1] == '\'' && msg[kl + 2] == ':' &&
        msg[kl + 3] == ' ')
        msg += kl + 4;
    size_t n = strcspn(msg, "\n");
    free(it->reason);
    it->reason = strndup(msg[0] ? msg : tnrec_err_name(err), msg[0] ? n : strlen(tnrec_err_name(err)));
    it->status = ST_SKIP;
    it->err = err;
}

static tnrec_err read_file(const char *path, uint8_t **buf, size_t *cap, size_t *out_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot open '%s'", path);
    struct stat st;
    tnrec_err err = TNREC_OK;
    if (fstat(fd, &st) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot stat '%s'", path);
        goto done;
    }
    if (st.st_size > ((off_t)1 << 32)) {
        err = tnrec__fail(TNREC_ESCHEMA, "'%s' is %lld bytes, too large for a TorNet sample", path,
                          (long long)st.st_size);
        goto done;
    }
    size_t n = (size_t)st.st_size;
    if ((err = tnrec__grow(buf, cap, n + 1, 1, path)) != TNREC_OK)
        goto done;
    err = tnrec__pread_full(fd, *buf, n, 0, path);
    *out_size = n;
done:
    close(fd);
    return err;
}

typedef struct job {
    const tnrec_build_options *opt;
    const plan *p;
} job;

static int year_selected(const tnrec_build_options *opt, int year)
{
    if (!opt->nyears)
        return 1;
    for (size_t i = 0; i < opt->nyears; i++)
        if (opt->years[i] == year)
            return 1;
    return 0;
}

static void process_item(const job *j, worker *w, item *it)
{
    const plan *p = j->p;
    const uint8_t *data = it->data;
    size_t size = it->size;
    const char *name = item_key(it);
    tnrec_err err;
    if (it->status == ST_SKIP)
        return; /* the feeder already found it bad */
    it->status = ST_OK;
    if (strlen(name) >= TNREC_KEY_MAX) {
        tnrec__fail(TNREC_EINVAL, "its path is longer than the %d bytes a record key holds", TNREC_KEY_MAX - 1);
        item_set_error(it, TNREC_EINVAL);
        return;
    }
    if (it->in) {
        if (!it->in->path) {
            tnrec__fail(TNREC_ENOTFOUND, "listed in catalog.csv but not found under the root");
            item_set_error(it, TNREC_ENOTFOUND);
            return;
        }
        if ((err = read_file(it->in->path, &w->fbuf, &w->fcap, &size)) != TNREC_OK) {
            item_set_error(it, err);
            return;
        }
        data = w->fbuf;
    }
    it->bytes_in = size;
    if ((err = ing_sample_read(&w->sample, &p->spec, data, size, name)) != TNREC_OK) {
        item_set_error(it, err);
        return;
    }
    ing_sample *s = &w->sample;
    if (!it->year_known && !year_selected(j->opt, ing_year_of(s->first_time))) {
        it->status = ST_FILTERED;
        return;
    }
    const void *values[TNREC_MAX_FIELDS];
    for (int m = 0; m < TNREC_INGEST_NVARS; m++)
        if (p->moment_field[m] >= 0)
            values[p->moment_field[m]] = s->moment[m];
    if (p->rfm_field >= 0)
        values[p->rfm_field] = s->rfm;
    values[p->f_time] = s->time;
    values[p->f_labels] = s->frame_labels;
    values[p->f_azlim] = s->azimuth_limits;
    values[p->f_rglim] = s->range_limits;
    values[p->f_site] = s->site;
    values[p->f_elev] = s->elevation;
    values[p->f_nyq] = s->nyquist;
    if ((err = tnrec_encoder_encode(w->enc, values, &it->blob)) != TNREC_OK) {
        item_set_error(it, err);
        return;
    }
    it->meta = s->meta;
    snprintf(it->meta.key, sizeof it->meta.key, "%s", item_key(it));
}

/* ---- progress file ---- */

#define TN_PROGRESS_NAME ".tnrec-build-progress.json"

typedef struct skip_entry {
    uint64_t index;            /* input index (within this build's selection) */
    char *input, *reason;
} skip_entry;

typedef struct run_state {
    const tnrec_build_options *opt;
    const plan *p;
    tnrec_dataset_writer *w;
    char *progress_path;
    /* what has been appended */
    uint64_t records;
    uint64_t *rec_input;       /* input index of each record */
    size_t rec_cap;
    skip_entry *skips;
    size_t nskips, skip_cap;
    int watch_shard;           /* number of the next shard to appear */
    uint64_t shard_records_done;
    int progress_dirty;        /* the progress file is behind: its last write failed */
    uint64_t progress_next;    /* the next input it should name */
    uint64_t *key_chain;       /* by input index: a hash of the keys of inputs 0..i */
    size_t key_n, key_cap;     /* entries set, allocated */
    int resume_has_chain;      /* the progress file holds the chain below */
    uint64_t resume_chain;     /* key_chain[next_input - 1] of the interrupted run */
    tnrec_build_summary sum;
} run_state;

static char *shard_path(const char *dir, int n)
{
    char name[64];
    snprintf(name, sizeof name, "shard-%05d%s", n, TNREC_SHARD_EXT);
    return tnrec__path_join(dir, name);
}

/* The chain of input keys: FNV-1a over each key, seeded with the chain
 * of the inputs before it. A resumed build checks that the inputs it
 * passes over are the ones the interrupted run had done. */
static uint64_t key_hash(const char *key, uint64_t seed)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* the end of the key counts too */
}

static tnrec_err note_input_key(run_state *st, uint64_t index, const char *key)
{
    tnrec_err e = tnrec__grow(&st->key_chain, &st->key_cap, (size_t)index + 1, sizeof *st->key_chain,
                              "the list of input keys");
    if (e)
        return e;
    st->key_chain[index] = key_hash(key, index ? st->key_chain[index - 1] : 0);
    st->key_n = (size_t)index + 1;
    return TNREC_OK;
}

static tnrec_err progress_write(run_state *st, uint64_t next_input)
{
    json_t *root = json_object(), *sk = json_array();
    tnrec_err err = TNREC_OK;
    if (!root || !sk) {
        json_decref(sk);
        err = tnrec__fail(TNREC_ENOMEM, "out of memory writing build progress");
        goto done;
    }
    json_error_t jerr;
    json_object_set_new(root, "params", json_loads(st->p->params, 0, &jerr));
    json_object_set_new(root, "shards", json_integer(st->watch_shard));
    json_object_set_new(root, "records", json_integer((json_int_t)st->shard_records_done));
    json_object_set_new(root, "next_input", json_integer((json_int_t)next_input));
    if (next_input > 0 && next_input <= st->key_n) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)st->key_chain[next_input - 1]);
        json_object_set_new(root, "inputs_chain", json_string(hex));
    }
    json_object_set_new(root, "skipped", sk);
    for (size_t i = 0; i < st->nskips && st->skips[i].index < next_input; i++)
        json_array_append_new(sk, json_pack("{s:I,s:s,s:s}", "index", (json_int_t)st->skips[i].index, "input",
                                            st->skips[i].input, "reason", st->skips[i].reason));
    err = tnrec__json_write_file(st->progress_path, root, JSON_COMPACT | JSON_SORT_KEYS,
                                 "out of memory writing build progress");
done:
    json_decref(root);
    return err;
}

/* After an append: has the writer closed the shard we are watching? */
static tnrec_err progress_check(run_state *st, uint64_t last_input)
{
    for (;;) {
        char *path = shard_path(st->opt->out_dir, st->watch_shard);
        if (!path)
            return tnrec__fail(TNREC_ENOMEM, "out of memory");
        struct stat sb;
        int exists = stat(path, &sb) == 0;
        if (!exists) {
            free(path);
            return TNREC_OK;
        }
        tnrec_shard *sh = NULL;
        tnrec_err err = tnrec_shard_open(&sh, path);
        free(path);
        if (err)
            return err;
        uint64_t n = tnrec_shard_count(sh);
        tnrec_shard_close(sh);
        st->shard_records_done += n;
        st->watch_shard++;
        if (st->shard_records_done > st->records)
            return tnrec__fail(TNREC_EINTERNAL, "shard %d of '%s' holds more records than were written",
                               st->watch_shard - 1, st->opt->out_dir);
        st->progress_next =
            st->shard_records_done < st->records ? st->rec_input[st->shard_records_done] : last_input + 1;
        st->progress_dirty = 1;
        if ((err = progress_write(st, st->progress_next)) != TNREC_OK)
            return err;
        st->progress_dirty = 0;
    }
}

/* The finished shards and their records that the progress file of an
 * earlier run names (for the message of a run that failed before it got
 * to adopt them). Zeros when there is none. */
static void progress_peek(const char *path, uint64_t *shards, uint64_t *records)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    *shards = *records = 0;
    if (!path || access(path, F_OK) != 0 || tnrec__read_file(path, &buf, &len) != TNREC_OK) {
        tnrec_error_clear();
        return;
    }
    json_error_t jerr;
    json_t *root = json_loads((const char *)buf, 0, &jerr);
    free(buf);
    json_int_t s = tnrec__json_int(root, "shards");
    json_int_t r = tnrec__json_int(root, "records");
    json_decref(root);
    if (s > 0 && r >= 0) {
        *shards = (uint64_t)s;
        *records = (uint64_t)r;
    }
}

/* After a failure, once the writer is gone (its partial shard removed, so
 * a full disk has room again): one more try at a progress file that fell
 * behind, so that a rerun adopts every finished shard. The first error's
 * message stays. */
static void progress_settle(run_state *st)
{
    if (!st->progress_dirty || !st->progress_path)
        return;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", tnrec_error_last());
    if (progress_write(st, st->progress_next) == TNREC_OK)
        st->progress_dirty = 0;
    tnrec__fail(TNREC_EIO, "%s", msg);
}

static tnrec_err note_skip(run_state *st, uint64_t index, const char *input, const char *reason)
{
    tnrec_err err = tnrec__grow(&st->skips, &st->skip_cap, st->nskips + 1, sizeof *st->skips, "the skipped inputs");
    if (err)
        return err;
    skip_entry *e = &st->skips[st->nskips];
    e->index = index;
    e->input = strdup(input);
    e->reason = strdup(reason);
    if (!e->input || !e->reason) {
        free(e->input);
        free(e->reason);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    st->nskips++;
    st->sum.skipped++;
    if (st->opt->on_skip)
        st->opt->on_skip(st->opt->skip_ctx, input, reason);
    return tnrec_dataset_writer_skip(st->w, input, reason);
}

/* An append that failed (a full disk, a write error) may have closed a
 * shard first: the progress file records it, so that a rerun adopts it
 * instead of writing it again. Returns err, with its message. */
static tnrec_err note_append_failure(run_state *st, uint64_t index, tnrec_err err)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", tnrec_error_last());
    if (index > 0 && progress_check(st, index - 1) != TNREC_OK)
        tnrec__fail(err, "%s", msg); /* the first failure is the one to report */
    return err;
}

static tnrec_err note_record(run_state *st, uint64_t index, const tnrec_blob *blob, const tnrec_record_meta *meta)
{
    tnrec_err err = tnrec__grow(&st->rec_input, &st->rec_cap, st->records + 1, sizeof *st->rec_input,
                                "the input of each record");
    if (err)
        return err;
    err = tnrec_dataset_writer_append(st->w, blob, meta);
    if (err)
        return note_append_failure(st, index, err);
    st->rec_input[st->records++] = index;
    tnrec_class_counts_add(&st->sum.counts, meta);
    st->sum.samples++;
    return TNREC_OK;
}

/* ---- resume ---- */

/* Reads the progress file of an interrupted build; when it matches and its
 * shards are whole, adopts them into st->w (no rewrite) and sets *out_resumed. */
static tnrec_err resume_load(run_state *st, uint64_t *out_next_input, int *out_resumed)
{
    *out_resumed = 0;
    *out_next_input = 0;
    uint8_t *buf = NULL;
    size_t len;
    if (access(st->progress_path, F_OK) != 0)
        return TNREC_OK;
    tnrec_err err = tnrec__read_file(st->progress_path, &buf, &len);
    if (err)
        return err;
    json_error_t jerr;
    json_t *root = json_loads((const char *)buf, 0, &jerr), *mine = json_loads(st->p->params, 0, &jerr);
    free(buf);
    json_t *params = root ? json_object_get(root, "params") : NULL;
    if (!root || !mine || !json_is_object(params)) {
        json_decref(root);
        json_decref(mine);
        return TNREC_OK; /* unreadable progress: start over */
    }
    if (!json_equal(params, mine)) {
        json_decref(root);
        json_decref(mine);
        return tnrec__fail(TNREC_EINVAL, "'%s' holds an interrupted build with different options\n"
                           "hint: rerun with the same options to finish it, or choose another -o directory",
                           st->opt->out_dir);
    }
    json_decref(mine);
    int shards = (int)tnrec__json_int(root, "shards");
    uint64_t next = (uint64_t)tnrec__json_int(root, "next_input");
    const char *chain = tnrec__json_str(root, "inputs_chain");
    char *chain_end = NULL;
    st->resume_has_chain = chain && *chain;
    st->resume_chain = chain ? strtoull(chain, &chain_end, 16) : 0;
    if (st->resume_has_chain && (!chain_end || *chain_end))
        st->resume_chain = ~st->resume_chain; /* unreadable: it cannot match */
    json_t *sk = json_object_get(root, "skipped");
    /* every finished shard must still be whole, else start over */
    for (int s = 0; s < shards; s++) {
        char *path = shard_path(st->opt->out_dir, s);
        tnrec_shard *sh = NULL;
        tnrec_err e2 = path ? tnrec_shard_open(&sh, path) : TNREC_ENOMEM;
        free(path);
        tnrec_shard_close(sh);
        if (e2 != TNREC_OK) {
            json_decref(root);
            tnrec_error_clear();
            return TNREC_OK;
        }
    }
    /* the finished shards join the new writer as they are */
    for (int s = 0; s < shards && !err; s++) {
        uint64_t n = 0;
        err = tnrec_dataset_writer_adopt(st->w, &n, &st->sum.counts);
        st->sum.samples += n;
    }
    size_t i;
    json_t *e;
    json_array_foreach(sk, i, e)
    {
        if (err)
            break;
        const char *in = tnrec__json_str(e, "input");
        const char *why = tnrec__json_str(e, "reason");
        uint64_t idx = (uint64_t)tnrec__json_int(e, "index");
        if (!in || !why) {
            err = tnrec__fail(TNREC_ECORRUPT, "progress file '%s' is damaged\nhint: remove '%s' and rebuild",
                              st->progress_path, st->opt->out_dir);
            break;
        }
        err = tnrec__grow(&st->skips, &st->skip_cap, st->nskips + 1, sizeof *st->skips, "the skipped inputs");
        if (err)
            break;
        skip_entry *se = &st->skips[st->nskips];
        se->index = idx;
        se->input = strdup(in);
        se->reason = strdup(why);
        if (!se->input || !se->reason) {
            free(se->input);
            free(se->reason);
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            break;
        }
        st->nskips++;
        st->sum.skipped++;
        err = tnrec_dataset_writer_skip(st->w, in, why);
    }
    json_decref(root);
    if (err)
        return err;
    /* The copied records are those of the finished shards. */
    st->records = 0;
    st->sum.resumed_records = st->sum.samples;
    st->shard_records_done = st->sum.samples;
    st->watch_shard = shards;
    err = tnrec__grow(&st->rec_input, &st->rec_cap, st->sum.samples + 1, sizeof *st->rec_input,
                      "the input of each record");
    if (err)
        return err;
    for (uint64_t r = 0; r < st->sum.samples; r++)
        st->rec_input[r] = 0; /* before next_input: never consulted */
    st->records = st->sum.samples;
    *out_next_input = next;
    *out_resumed = 1;
    return TNREC_OK;
}

/* Removes the temporary files left by a killed writer (tmp_only), or the
 * shards numbered keep_shards and up (they will be written again). */
static void clean_out_dir(const char *dir, int keep_shards, int tmp_only)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        int is_tmp = strstr(n, ".tmp.") != NULL, stale = tmp_only && is_tmp;
        int num;
        char tail[8];
        if (!tmp_only && !is_tmp && sscanf(n, "shard-%5d%7s", &num, tail) == 2 && strcmp(tail, TNREC_SHARD_EXT) == 0 &&
            num >= keep_shards)
            stale = 1;
        if (stale) {
            char *p = tnrec__path_join(dir, n);
            if (p)
                unlink(p);
            free(p);
        }
    }
    closedir(d);
}

/* ---- stopping, and builds that give nothing ---- */

static int stop_requested(const tnrec_build_options *opt)
{
    return opt->stop && *opt->stop;
}

static tnrec_err fail_stopped(const tnrec_build_options *opt)
{
    return tnrec__fail(TNREC_ECANCELED, "build of '%s' interrupted\n"
                       "hint: rerun the same command to resume from the last finished shard", opt->out_dir);
}

/* "2013-2015,2017" (or "all") into buf. */
static void years_text(char *buf, size_t cap, const tnrec_build_options *opt)
{
    snprintf(buf, cap, "all");
    size_t len = 0;
    for (size_t i = 0; i < opt->nyears && len < cap; i++) {
        size_t j = i;
        while (j + 1 < opt->nyears && opt->years[j + 1] == opt->years[j] + 1)
            j++;
        int n = j > i ? snprintf(buf + len, cap - len, "%s%d-%d", i ? "," : "", opt->years[i], opt->years[j])
                      : snprintf(buf + len, cap - len, "%s%d", i ? "," : "", opt->years[i]);
        len += n > 0 ? (size_t)n : 0;
        i = j;
    }
}

/* "'a', 'b' and 3 more" into buf. */
static void sources_text(char *buf, size_t cap, const tnrec_build_options *opt)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < opt->nsources && i < 3 && len < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s'%s'", i ? ", " : "", opt->sources[i]);
        len += n > 0 ? (size_t)n : 0;
    }
    if (opt->nsources > 3 && len < cap)
        snprintf(buf + len, cap - len, " and %zu more", opt->nsources - 3);
}

/* A skip reason without the input's own name in front, so that inputs
 * skipped for the same reason count together. */
static const char *reason_kind(const skip_entry *e)
{
    const char *r = e->reason, *base = strrchr(e->input, '/');
    const char *names[2] = { e->input, base ? base + 1 : e->input };
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(names[k]);
        if (r[0] == '\'' && strncmp(r + 1, names[k], n) == 0 && r[n + 1] == '\'') {
            r += n + 2;
            r += strspn(r, ": ");
            break;
        }
    }
    return r;
}

/* The length of a reason's kind: up to its details (": ..." or " (" and a
 * number, such as a file's size), so that "is truncated: 300 bytes, ..."
 * and "is truncated: 512 bytes, ..." count as one kind. */
static size_t kind_len(const char *r)
{
    size_t n = strcspn(r, "\n");
    for (size_t i = 0; i + 2 < n; i++)
        if ((r[i] == ':' && r[i + 1] == ' ') || (r[i] == ' ' && r[i + 1] == '(' && r[i + 2] >= '0' && r[i + 2] <= '9'))
            return i;
    return n;
}

/* The skip reasons with their counts, most frequent first, one per line
 * ("  6 x cannot be opened ..."), at most five kinds. */
static void skip_summary(char *buf, size_t cap, const run_state *st)
{
    enum { KINDS = 5 };
    const char *kind[KINDS];
    size_t count[KINDS] = { 0 }, nk = 0, other = 0;
    for (size_t i = 0; i < st->nskips; i++) {
        const char *r = reason_kind(&st->skips[i]);
        size_t k = 0;
        while (k < nk && !(kind_len(kind[k]) == kind_len(r) && strncmp(kind[k], r, kind_len(r)) == 0))
            k++;
        if (k == nk && nk == KINDS) {
            other++;
            continue;
        }
        if (k == nk)
            kind[nk++] = r;
        count[k]++;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (size_t done = 0; done < nk && len < cap; done++) {
        size_t best = 0;
        for (size_t k = 1; k < nk; k++)
            if (count[k] > count[best])
                best = k;
        int klen = (int)(count[best] > 1 ? kind_len(kind[best]) : strcspn(kind[best], "\n"));
        int n = snprintf(buf + len, cap - len, "\n  %zu x %.*s", count[best], klen < 160 ? klen : 160, kind[best]);
        len += n > 0 ? (size_t)n : 0;
        count[best] = 0;
    }
    if (other && len < cap)
        snprintf(buf + len, cap - len, "\n  %zu x other reasons (listed above)", other);
}

/* The error of a build whose inputs gave no record. found: inputs seen
 * before the split and year selection (files only). */
static tnrec_err fail_empty(const run_state *st, size_t found, size_t selected)
{
    const tnrec_build_options *opt = st->opt;
    char srcs[600], years[200], why[1100];
    sources_text(srcs, sizeof srcs, opt);
    years_text(years, sizeof years, opt);
    const char *split = opt->split ? opt->split : "all";
    if (!selected && !st->sum.skipped && !st->sum.filtered)
        return tnrec__fail(TNREC_ENOTFOUND, "no samples in %s for split %s, years %s: %zu .nc input(s) found "
                           "there, none selected; nothing was written\n"
                           "hint: give a TORNET_ROOT (with catalog.csv), a directory of .nc files, a list file "
                           "or a tarball, and check --split and --years", srcs, split, years, found);
    skip_summary(why, sizeof why, st);
    return tnrec__fail(TNREC_ENOTFOUND, "no samples in %s for split %s, years %s: of %zu input(s), %llu "
                       "skipped and %llu outside --years; nothing was written%s\n"
                       "hint: fix or fetch again the inputs named above (a cut-short download is the usual "
                       "cause), or check --split and --years", srcs, split, years, selected,
                       (unsigned long long)st->sum.skipped, (unsigned long long)st->sum.filtered, why);
}

/* ---- the run ---- */

static int split_code(const char *split)
{
    if (!split || strcmp(split, "all") == 0)
        return TN_SPLIT_UNKNOWN;
    return strcmp(split, "train") == 0 ? TN_SPLIT_TRAIN : TN_SPLIT_TEST;
}

tnrec_err ing_check_existing(const char *dir, const char *params, const char *redo, int *out_done)
{
    *out_done = 0;
    char *m = tnrec__path_join(dir, TNREC_MANIFEST_NAME);
    if (!m)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    int have = access(m, F_OK) == 0;
    free(m);
    if (!have)
        return TNREC_OK;
    tnrec_dataset *ds = NULL;
    tnrec_err err = tnrec_dataset_open(&ds, dir);
    if (err)
        return TNREC_OK; /* damaged: made again */
    json_error_t jerr;
    json_t *a = json_loads(tnrec_dataset_build_params(ds), 0, &jerr), *b = json_loads(params, 0, &jerr);
    int same = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    tnrec_dataset_close(ds);
    if (!same)
        return tnrec__fail(TNREC_EINVAL, "'%s' already holds a dataset built with other options\n"
                           "hint: choose another -o directory, or remove it to %s", dir, redo);
    *out_done = 1;
    return TNREC_OK;
}

uint64_t ing_dataset_bytes(const char *dir, tnrec_build_summary *sum)
{
    tnrec_dataset *ds = NULL;
    uint64_t bytes = 0;
    if (tnrec_dataset_open(&ds, dir) != TNREC_OK)
        return 0;
    for (size_t i = 0; i < tnrec_dataset_shard_count(ds); i++)
        bytes += tnrec_shard_file_size(tnrec_dataset_shard(ds, i));
    if (sum) {
        sum->samples = tnrec_dataset_count(ds);
        sum->counts = *tnrec_dataset_counts(ds);
        sum->skipped = tnrec_dataset_skipped_count(ds);
    }
    tnrec_dataset_close(ds);
    return bytes;
}

typedef struct feeder {
    const tnrec_build_options *opt;
    ing_input_list inputs;      /* selected file inputs, in order */
    size_t next_file;
    /* stream sources */
    size_t *stream_src;        /* indexes of tarball sources of this part, in order */
    size_t nstream, cur_stream;
    ing_tar *tar;
    uint64_t tar_bytes_done;
    int split;
} feeder;

/* Fills the next item (*out_have 0 at the end). Tarball members outside
 * the split are passed over: they are not inputs of this build. With
 * skip_data the member's bytes are not read (resume passes over them). */
static tnrec_err feeder_next(feeder *f, item *it, int skip_data, int *out_have)
{
    *out_have = 0;
    if (f->next_file < f->inputs.n) {
        it->in = &f->inputs.v[f->next_file++];
        it->year_known = it->in->year != 0;
        *out_have = 1;
        return TNREC_OK;
    }
    while (f->cur_stream < f->nstream) {
        tnrec_err err;
        if (!f->tar &&
            (err = ing_tar_open(&f->tar, f->opt->sources[f->stream_src[f->cur_stream]], f->opt->stop)) != TNREC_OK)
            return err;
        const char *name;
        while ((err = ing_tar_next(f->tar, &name)) == TNREC_OK) {
            while (name[0] == '.' && name[1] == '/')
                name += 2;
            if (f->split != TN_SPLIT_UNKNOWN && ing_split_from_key(name) != f->split)
                continue;
            if (!(it->member_key = strdup(name)))
                return tnrec__fail(TNREC_ENOMEM, "out of memory");
            it->year_known = 0;
            if (!skip_data) {
                err = ing_tar_data(f->tar, &it->data, &it->size);
                if (err == TNREC_ESCHEMA) {
                    /* this member alone is bad (too large): skip it, go on */
                    free(it->reason);
                    it->reason = strndup(tnrec_error_last(), strcspn(tnrec_error_last(), "\n"));
                    it->status = ST_SKIP;
                    it->err = err;
                    err = TNREC_OK;
                }
                if (err)
                    return err;
            }
            *out_have = 1;
            return TNREC_OK;
        }
        if (err != TNREC_ENOTFOUND)
            return err;
        f->tar_bytes_done += ing_tar_bytes_in(f->tar);
        ing_tar_close(f->tar);
        f->tar = NULL;
        f->cur_stream++;
    }
    return TNREC_OK;
}

tnrec_err tnrec_build_run(tnrec_build_summary *out, const tnrec_build_options *opt)
{
    double t0 = tnrec__now_seconds();
    plan p;
    run_state st;
    memset(&st, 0, sizeof st);
    ing_input_list all;
    memset(&all, 0, sizeof all);
    feeder fd;
    memset(&fd, 0, sizeof fd);
    item *items = NULL;
    worker *workers = NULL;
    int nthreads = 1;
    size_t batch = 0;
    uint64_t input_index = 0;
    size_t found = 0, selected = 0; /* file inputs before and after split and years */
    uint32_t pn = 1;
    tnrec_err err = plan_make(&p, opt);
    if (err)
        return err;
    /* A build that fails before writing anything leaves no empty OUT it made. */
    int made_dir = opt->out_dir && access(opt->out_dir, F_OK) != 0;
    st.opt = opt;
    st.p = &p;
    fd.opt = opt;
    fd.split = split_code(opt->split);
    if (out)
        memset(out, 0, sizeof *out);

    int done_already = 0;
    if ((err = ing_check_existing(opt->out_dir, p.params, "rebuild", &done_already)) != TNREC_OK)
        goto done;
    st.progress_path = tnrec__path_join(opt->out_dir, TN_PROGRESS_NAME);
    if (!st.progress_path) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    if (done_already) {
        unlink(st.progress_path);
        st.sum.up_to_date = 1;
        st.sum.bytes_out = ing_dataset_bytes(opt->out_dir, &st.sum);
        goto done;
    }

    /* inputs */
    uint32_t pk = opt->part_count > 1 ? opt->part_index : 0;
    pn = opt->part_count > 1 ? opt->part_count : 1;
    if (pk >= pn) {
        err = tnrec__fail(TNREC_EINVAL, "part %u/%u: K must be below N", pk, pn);
        goto done;
    }
    size_t nstream_total = 0;
    for (size_t s = 0; s < opt->nsources; s++)
        nstream_total += ing_source_is_stream(opt->sources[s]) ? 1 : 0;
    if (nstream_total && opt->holdout > 0) {
        err = tnrec__fail(TNREC_EUNSUPPORTED, "--holdout needs every input's name before the build starts, which a "
                          "streamed tarball does not give\nhint: extract the tarballs and build from the directory");
        goto done;
    }
    if (nstream_total && pn > 1 && (nstream_total != opt->nsources || pn > nstream_total)) {
        err = tnrec__fail(TNREC_EUNSUPPORTED, "--part with tarball sources splits by tarball: give only tarballs, "
                          "at least as many as parts (%u)\nhint: or extract the tarballs and build from the directory",
                          pn);
        goto done;
    }
    for (size_t s = 0; s < opt->nsources && !err; s++) {
        if (ing_source_is_stream(opt->sources[s]))
            continue;
        err = ing_inputs_add_source(&all, opt->sources[s], (int)s);
    }
    if (err)
        goto done;
    if (stop_requested(opt)) { /* listing a large tree takes a while */
        err = fail_stopped(opt);
        goto done;
    }
    ing_inputs_sort(&all);
    found = all.n;
    {
        /* split and catalog years first, then this part's contiguous range */
        size_t keep = 0;
        for (size_t i = 0; i < all.n; i++) {
            ing_input *in = &all.v[i];
            int ok = (fd.split == TN_SPLIT_UNKNOWN || in->split == fd.split) &&
                     (in->year == 0 || year_selected(opt, in->year));
            if (ok) {
                all.v[keep++] = *in;
            } else {
                free(in->key);
                free(in->path);
            }
        }
        all.n = keep;
        /* whole storms held out of the selection, before the part's range */
        if (opt->holdout > 0 &&
            (err = ing_holdout_select(&all, opt->holdout, opt->holdout_seed, opt->holdout_take)) != TNREC_OK)
            goto done;
        selected = all.n;
        size_t lo = all.n * pk / pn, hi = all.n * (pk + 1) / pn;
        fd.inputs.cap = hi - lo + 1;
        if (!(fd.inputs.v = malloc(fd.inputs.cap * sizeof *fd.inputs.v))) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < all.n; i++) {
            if (i >= lo && i < hi) {
                fd.inputs.v[fd.inputs.n++] = all.v[i];
            } else {
                free(all.v[i].key);
                free(all.v[i].path);
            }
        }
        free(all.v);
        memset(&all, 0, sizeof all);
    }
    if (nstream_total) {
        fd.stream_src = calloc(opt->nsources, sizeof *fd.stream_src);
        if (!fd.stream_src) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
        size_t lo = nstream_total * pk / pn, hi = nstream_total * (pk + 1) / pn, k = 0;
        for (size_t s = 0; s < opt->nsources; s++) {
            if (!ing_source_is_stream(opt->sources[s]))
                continue;
            if (pn == 1 || (k >= lo && k < hi))
                fd.stream_src[fd.nstream++] = s;
            k++;
        }
    }
    st.sum.inputs = fd.inputs.n;

    /* the writer, and what an interrupted run left */
    tnrec_dataset_options dopt;
    memset(&dopt, 0, sizeof dopt);
    dopt.max_shard_bytes = opt->shard_bytes;
    dopt.max_shard_records = opt->shard_records;
    dopt.keep_closed_shards = 1; /* a failed or stopped build keeps them for a rerun */
    {
        uint64_t next_input = 0;
        int resumed = 0;
        clean_out_dir(opt->out_dir, 0, 1); /* temporary files of a killed writer */
        if ((err = tnrec_dataset_writer_open(&st.w, opt->out_dir, &p.schema, &dopt)) != TNREC_OK)
            goto done;
        if ((err = resume_load(&st, &next_input, &resumed)) != TNREC_OK)
            goto done;
        /* pass over the inputs already done */
        uint64_t passed = 0;
        while (passed < next_input) {
            if (stop_requested(opt)) {
                err = fail_stopped(opt);
                goto done;
            }
            item tmp;
            memset(&tmp, 0, sizeof tmp);
            int have;
            err = feeder_next(&fd, &tmp, 1, &have);
            if (!err && have)
                err = note_input_key(&st, passed, tmp.in ? tmp.in->key : tmp.member_key);
            free(tmp.member_key);
            if (err && stop_requested(opt))
                err = fail_stopped(opt); /* a tarball read gave up on the stop request */
            if (err)
                goto done;
            if (!have)
                break;
            passed++;
        }
        if (resumed && st.resume_has_chain && next_input > 0 &&
            (passed < next_input || st.key_chain[next_input - 1] != st.resume_chain)) {
            err = tnrec__fail(TNREC_EINVAL, "'%s' holds an interrupted build whose first %llu inputs are not the "
                              "ones selected now (files were added, removed or renamed before the resume point)\n"
                              "hint: put the inputs back as they were to resume, or remove '%s' to build anew",
                              opt->out_dir, (unsigned long long)next_input, opt->out_dir);
            goto done;
        }
        clean_out_dir(opt->out_dir, resumed ? st.watch_shard : 0, 0); /* shards to be written again */
        input_index = passed;
    }

#if TNREC_HAVE_OPENMP
    nthreads = opt->threads > 0 ? opt->threads : omp_get_max_threads();
#else
    nthreads = 1;
#endif
    if (nthreads < 1)
        nthreads = 1;
    /* Each batch ends with a barrier where threads wait for the slowest
     * item: 32 items per thread keep that wait near 1.5 % (8 per thread
     * lost about 6 % at -j2); at most 512 items (about 700 MB of file
     * bytes and records in flight) whatever the thread count. */
    batch = opt->batch ? opt->batch : (size_t)nthreads * 32;
    if (!opt->batch && batch > 512)
        batch = 512;
    items = calloc(batch, sizeof *items);
    workers = calloc((size_t)nthreads, sizeof *workers);
    if (!items || !workers) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    for (int t = 0; t < nthreads; t++) {
        ing_sample_init(&workers[t].sample);
        if ((err = tnrec_encoder_create(&workers[t].enc, &p.schema, zstd_level_of(opt))) != TNREC_OK)
            goto done;
    }
    job jb = { opt, &p };
    uint64_t total = fd.inputs.n;
    for (;;) {
        size_t n = 0;
        while (n < batch && !stop_requested(opt)) {
            item *it = &items[n];
            free(it->member_key);
            free(it->data);
            free(it->reason);
            tnrec_blob keep = it->blob;
            memset(it, 0, sizeof *it);
            it->blob = keep;
            int have;
            if ((err = feeder_next(&fd, it, 0, &have)) != TNREC_OK) {
                if (stop_requested(opt))
                    err = fail_stopped(opt); /* a tarball read gave up on the stop request */
                goto done;
            }
            if (!have)
                break;
            n++;
        }
        if (!n && stop_requested(opt)) {
            err = fail_stopped(opt);
            goto done;
        }
        if (!n)
            break;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
        for (size_t i = 0; i < n; i++) {
            int t = 0;
#if TNREC_HAVE_OPENMP
            t = omp_get_thread_num();
#endif
            if (stop_requested(opt)) {
                items[i].status = ST_STOPPED; /* the samples after it are not read */
                continue;
            }
            double w0 = tnrec__now_seconds();
            process_item(&jb, &workers[t], &items[i]);
            workers[t].work_seconds += tnrec__now_seconds() - w0;
        }
        for (size_t i = 0; i < n && !err; i++, input_index++) {
            item *it = &items[i];
            if (it->status == ST_STOPPED || stop_requested(opt)) {
                err = fail_stopped(opt);
                break;
            }
            if ((err = note_input_key(&st, input_index, item_key(it))) != TNREC_OK)
                break;
            st.sum.bytes_in += it->bytes_in;
            if (it->status == ST_FILTERED) {
                st.sum.filtered++;
            } else if (it->status == ST_SKIP) {
                if (opt->strict) {
                    err = tnrec__fail(it->err ? it->err : TNREC_ESCHEMA, "input '%s': %s\n"
                                      "hint: without --strict bad inputs are skipped and listed in the manifest",
                                      item_key(it), it->reason ? it->reason : tnrec_err_name(it->err));
                    break;
                }
                err = note_skip(&st, input_index, item_key(it), it->reason ? it->reason : tnrec_err_name(it->err));
            } else {
                err = note_record(&st, input_index, &it->blob, &it->meta);
                if (!err)
                    err = progress_check(&st, input_index);
            }
        }
        if (err)
            goto done;
        if (opt->progress)
            opt->progress(opt->progress_ctx, input_index, total);
    }
    if (!st.sum.samples && !(pn > 1 && !fd.inputs.n && !fd.nstream && selected)) {
        err = fail_empty(&st, found, (size_t)input_index);
        goto done;
    }
    err = tnrec_dataset_writer_close(st.w, p.params);
    st.w = NULL;
    if (err)
        goto done;
    unlink(st.progress_path);
    tnrec__fsync_dir(opt->out_dir);
    st.sum.bytes_out = ing_dataset_bytes(opt->out_dir, NULL);
    st.sum.bytes_in += fd.tar_bytes_done;
done:
    /* The writer keeps its finished shards (keep_closed_shards) and removes
     * the one it was writing; the progress file names what a rerun adopts. */
    tnrec_dataset_writer_abort(st.w);
    if (err) {
        progress_settle(&st);
        st.sum.kept_shards = (uint64_t)st.watch_shard;
        st.sum.kept_records = st.shard_records_done;
        if (!st.sum.kept_shards) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", tnrec_error_last());
            progress_peek(st.progress_path, &st.sum.kept_shards, &st.sum.kept_records);
            tnrec__fail(err, "%s", msg);
        }
    }
    if (items) {
        for (size_t i = 0; i < batch; i++) {
            free(items[i].member_key);
            free(items[i].data);
            free(items[i].reason);
            tnrec_blob_free(&items[i].blob);
        }
        free(items);
    }
    if (workers) {
        for (int t = 0; t < nthreads; t++) {
            st.sum.work_seconds += workers[t].work_seconds;
            st.sum.lock_seconds += workers[t].sample.lock_seconds;
            ing_sample_release(&workers[t].sample);
            tnrec_encoder_free(workers[t].enc);
            free(workers[t].fbuf);
        }
        free(workers);
    }
    for (size_t i = 0; i < st.nskips; i++) {
        free(st.skips[i].input);
        free(st.skips[i].reason);
    }
    free(st.skips);
    free(st.rec_input);
    free(st.key_chain);
    free(st.progress_path);
    ing_inputs_free(&fd.inputs);
    ing_inputs_free(&all);
    if (err && made_dir)
        rmdir(opt->out_dir); /* only when empty: kept shards and the progress file stay */
    free(fd.stream_src);
    if (fd.tar)
        ing_tar_close(fd.tar);
    free(p.params);
    st.sum.seconds = tnrec__now_seconds() - t0;
    if (out)
        *out = st.sum;
    return err;
}

tnrec_err tnrec_ingest_check_mem(const void *data, size_t size, const char *name)
{
    tnrec_build_options opt;
    tnrec_build_options_init(&opt);
    const char *src[1] = { "memory" };
    opt.sources = src;
    opt.nsources = 1;
    opt.out_dir = "memory";
    plan p;
    tnrec_err err = plan_make(&p, &opt);
    if (err)
        return err;
    ing_sample s;
    ing_sample_init(&s);
    tnrec_encoder *enc = NULL;
    tnrec_blob blob;
    memset(&blob, 0, sizeof blob);
    worker w;
    memset(&w, 0, sizeof w);
    if ((err = tnrec_encoder_create(&enc, &p.schema, TNREC_BUILD_DEFAULT_ZSTD)) != TNREC_OK)
        goto done;
    w.enc = enc;
    item it;
    memset(&it, 0, sizeof it);
    it.data = (uint8_t *)data;
    it.size = size;
    it.member_key = (char *)(name ? name : "memory");
    it.year_known = 1;
    it.blob = blob;
    job jb = { &opt, &p };
    w.sample = s;
    process_item(&jb, &w, &it);
    s = w.sample;
    blob = it.blob;
    if (it.status == ST_SKIP) {
        err = tnrec__fail(it.err ? it.err : TNREC_ESCHEMA, "'%s': %s", it.member_key, it.reason);
        free(it.reason);
    }
done:
    tnrec_blob_free(&blob);
    tnrec_encoder_free(enc);
    ing_sample_release(&s);
    free(p.params);
    return err;
}
