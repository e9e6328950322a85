/* ingest/synth.c: write synthetic TorNet samples as NetCDF-4 files and a
 * whole synthetic TORNET_ROOT (catalog.csv + train/YYYY + test/YYYY).
 *
 * netcdf-c is not thread-safe and Debian's HDF5 runs its filters under one
 * global lock, so the expensive work happens outside both: each thread
 * makes the fields (synth_storm.c) and shuffles and deflates the seven big
 * variables itself into exactly the chunk images HDF5's shuffle + deflate
 * filters would produce. Only then, under the library's one netCDF lock (the
 * lock the build takes too), netcdf-c creates the
 * file and defines the schema (so the layout and attributes are netcdf-c's
 * own), writes the small variables, closes it, and HDF5's direct chunk
 * write stores the seven prepared chunks. The file is written under a
 * temporary name and renamed; catalog.csv is written last, atomically,
 * after a sync, so a directory with a catalog is complete.
 *
 * Deliberately not here: reading TorNet files (that is the ingest reader's
 * job) and any randomness (all of it lives in synth_storm.c).
 *
 * Invariant: a file's bytes depend only on (seed, index, deflate level),
 * never on the thread that wrote it or the order of writing. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <netcdf.h>
#include <zlib.h>
#ifndef TNREC_SYNTH_LIBDEFLATE
#define TNREC_SYNTH_LIBDEFLATE 0
#endif
#if TNREC_SYNTH_LIBDEFLATE
#include <libdeflate.h>
#endif

#include "tnrec/config.h"

#include "common.h"
#include "ingest_internal.h"
#include "synth_private.h"

#if TNREC_HAVE_OPENMP
#include <omp.h>
#endif

#define NVARS_BIG (TNREC_SYNTH_NMOMENTS + 1) /* six moments + range_folded_mask */
#define FIRST_YEAR 2013
#define NYEARS 10

/* Every netcdf-c and HDF5 call of the synthesiser runs under this lock. */

static const char *const moment_names[TNREC_SYNTH_NMOMENTS] = { "DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH" };
static const char *const moment_units[TNREC_SYNTH_NMOMENTS] = { "dBZ", "m/s", "deg/km", "unitless", "dB", "m/s" };

const char *tnrec_synth_moment_name(int moment)
{
    return moment >= 0 && moment < TNREC_SYNTH_NMOMENTS ? moment_names[moment] : NULL;
}

tnrec_err tnrec_synth_sample_create(tnrec_synth_sample **out)
{
    *out = NULL;
    tnrec_synth_sample *s = calloc(1, sizeof *s);
    if (!s)
        return tnrec__fail(TNREC_ENOMEM, "out of memory allocating a synthetic sample");
    for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++) {
        s->moment[m] = malloc(sizeof(float) * TNREC_SYNTH_NGATES);
        if (!s->moment[m])
            goto fail;
    }
    s->range_folded_mask = malloc(TNREC_SYNTH_NGATES);
    if (!s->range_folded_mask)
        goto fail;
    *out = s;
    return TNREC_OK;
fail:
    tnrec_synth_sample_free(s);
    return tnrec__fail(TNREC_ENOMEM, "out of memory allocating a synthetic sample (%zu bytes)",
                       (size_t)TNREC_SYNTH_NGATES * (4 * TNREC_SYNTH_NMOMENTS + 1));
}

void tnrec_synth_sample_free(tnrec_synth_sample *s)
{
    if (!s)
        return;
    for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++)
        free(s->moment[m]);
    free(s->range_folded_mask);
    free(s);
}

void tnrec_synth_sample_generate_mix(tnrec_synth_sample *out, uint64_t seed, uint64_t index,
                                     double tor_fraction)
{
    ing_synth_meta(out, seed, index, tor_fraction);
    ing_synth_fields(out, seed);
}

void tnrec_synth_sample_generate(tnrec_synth_sample *out, uint64_t seed, uint64_t index)
{
    tnrec_synth_sample_generate_mix(out, seed, index, 0.0);
}

/* ---- chunk images: what HDF5's shuffle then deflate filters produce ---- */

/* The deflate filter's output is a zlib stream; libdeflate writes the same
 * format several times faster than zlib, which is used where it is absent
 * (the bytes then differ between the two builds, not between runs). */
typedef struct packed {
    uint8_t *chunk[NVARS_BIG];
    size_t len[NVARS_BIG];
    size_t cap;        /* capacity of each chunk buffer */
    uint8_t *scratch;  /* byte-shuffled copy of one variable */
    int level;
#if TNREC_SYNTH_LIBDEFLATE
    struct libdeflate_compressor *zc;
#endif
} packed;

static void packed_free(packed *p)
{
    if (!p)
        return;
    for (int v = 0; v < NVARS_BIG; v++)
        free(p->chunk[v]);
    free(p->scratch);
#if TNREC_SYNTH_LIBDEFLATE
    if (p->zc)
        libdeflate_free_compressor(p->zc);
#endif
    free(p);
}

static tnrec_err packed_create(packed **out, int level)
{
    *out = NULL;
    packed *p = calloc(1, sizeof *p);
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory allocating chunk buffers");
    p->level = level;
    p->cap = compressBound((uLong)(sizeof(float) * TNREC_SYNTH_NGATES));
    p->scratch = malloc(sizeof(float) * TNREC_SYNTH_NGATES);
    int ok = p->scratch != NULL;
#if TNREC_SYNTH_LIBDEFLATE
    ok = ok && (p->zc = libdeflate_alloc_compressor(level)) != NULL;
    if (ok)
        p->cap = libdeflate_zlib_compress_bound(p->zc, sizeof(float) * TNREC_SYNTH_NGATES);
#endif
    for (int v = 0; v < NVARS_BIG && ok; v++)
        ok = (p->chunk[v] = malloc(p->cap)) != NULL;
    if (!ok) {
        packed_free(p);
        return tnrec__fail(TNREC_ENOMEM, "out of memory allocating chunk buffers");
    }
    *out = p;
    return TNREC_OK;
}

/* HDF5's shuffle: byte k of every element, then byte k+1, ... */
static void shuffle4(uint8_t *restrict dst, const uint8_t *restrict src, size_t n)
{
    uint8_t *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n, *d3 = dst + 3 * n;
    for (size_t i = 0; i < n; i++) {
        d0[i] = src[4 * i];
        d1[i] = src[4 * i + 1];
        d2[i] = src[4 * i + 2];
        d3[i] = src[4 * i + 3];
    }
}

static tnrec_err pack_sample(packed *p, const tnrec_synth_sample *s, const char *path)
{
    for (int v = 0; v < NVARS_BIG; v++) {
        /* shuffling one-byte elements changes nothing */
        const uint8_t *src = s->range_folded_mask;
        size_t nbytes = TNREC_SYNTH_NGATES;
        if (v < TNREC_SYNTH_NMOMENTS) {
            shuffle4(p->scratch, (const uint8_t *)s->moment[v], TNREC_SYNTH_NGATES);
            src = p->scratch;
            nbytes = sizeof(float) * TNREC_SYNTH_NGATES;
        }
#if TNREC_SYNTH_LIBDEFLATE
        size_t len = libdeflate_zlib_compress(p->zc, src, nbytes, p->chunk[v], p->cap);
        if (len == 0)
            return tnrec__fail(TNREC_EINTERNAL, "deflate failed for '%s'", path);
#else
        uLongf len = (uLongf)p->cap;
        int zr = compress2(p->chunk[v], &len, src, (uLong)nbytes, p->level);
        if (zr != Z_OK)
            return tnrec__fail(TNREC_EINTERNAL, "deflate failed (zlib %d) for '%s'", zr, path);
#endif
        p->len[v] = len;
    }
    return TNREC_OK;
}

/* ---- the NetCDF-4 file ---- */

#define NCX(call)                                                                          \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ != NC_NOERR) {                                                             \
            err = tnrec__fail(TNREC_EIO, "cannot write '%s': %s", path, nc_strerror(rc_)); \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

static int def_var(int ncid, const char *name, nc_type type, int ndims, const int *dimids,
                   const size_t *shape, int level, int *out)
{
    int rc = nc_def_var(ncid, name, type, ndims, dimids, out);
    if (rc == NC_NOERR)
        rc = nc_def_var_chunking(ncid, *out, NC_CHUNKED, shape);
    if (rc == NC_NOERR)
        rc = nc_def_var_deflate(ncid, *out, 1, 1, level);
    return rc;
}

static int put_text(int ncid, int varid, const char *name, const char *value)
{
    return nc_put_att_text(ncid, varid, name, strlen(value), value);
}

/* Called with the library's netCDF lock held (ing_nc_lock). Writes s to
 * `path` (a temporary name). */
static tnrec_err write_locked(const tnrec_synth_sample *s, const packed *p, const char *path, int level)
{
    tnrec_err err = TNREC_OK;
    int ncid = -1;
    hid_t fid = -1, did = -1;
    enum { D_TIME, D_AZ, D_RANGE, D_SWEEP, D_LIMS };
    static const char *const dim_names[] = { "time", "azimuth", "range", "sweep", "lims" };
    static const size_t dim_len[] = { TNREC_SYNTH_NTIME, TNREC_SYNTH_NAZIMUTH, TNREC_SYNTH_NRANGE,
                                      TNREC_SYNTH_NSWEEP, 2 };
    int dim[5];
    int v_az, v_range, v_time, v_elev, v_labels, v_nyq, v_azl, v_rl, v_mom[TNREC_SYNTH_NMOMENTS], v_rf;

    NCX(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &ncid));
    for (int d = 0; d < 5; d++)
        NCX(nc_def_dim(ncid, dim_names[d], dim_len[d], &dim[d]));

    /* global attributes, in the order of a real v1.1 file */
    NCX(put_text(ncid, NC_GLOBAL, "site_name", s->site_name));
    NCX(nc_put_att_double(ncid, NC_GLOBAL, "site_lat", NC_DOUBLE, 1, &s->site_lat));
    NCX(nc_put_att_double(ncid, NC_GLOBAL, "site_lon", NC_DOUBLE, 1, &s->site_lon));
    NCX(nc_put_att_double(ncid, NC_GLOBAL, "MissingDataFlag", NC_DOUBLE, 1, &s->missing_data_flag));
    NCX(nc_put_att_double(ncid, NC_GLOBAL, "ef_number", NC_DOUBLE, 1, &s->ef_number));
    long long ev = s->event_id, ep = s->episode_id;
    NCX(nc_put_att_longlong(ncid, NC_GLOBAL, "event_id", NC_INT64, 1, &ev));
    NCX(nc_put_att_longlong(ncid, NC_GLOBAL, "episode_id", NC_INT64, 1, &ep));
    if (s->has_tornado_times) {
        NCX(put_text(ncid, NC_GLOBAL, "tornado_start_time", s->tornado_start_time));
        NCX(put_text(ncid, NC_GLOBAL, "tornado_end_time", s->tornado_end_time));
    }
    NCX(put_text(ncid, NC_GLOBAL, "category", s->category));
    NCX(put_text(ncid, NC_GLOBAL, "scit_id", s->scit_id));
    NCX(put_text(ncid, NC_GLOBAL, "storm_event_url", s->storm_event_url));

    /* variables, in the order of a real file */
    const size_t sh_az = TNREC_SYNTH_NAZIMUTH, sh_range = TNREC_SYNTH_NRANGE, sh_time = TNREC_SYNTH_NTIME;
    const size_t sh_sweep = TNREC_SYNTH_NSWEEP, sh_lims = 2;
    const size_t sh_nyq[2] = { TNREC_SYNTH_NTIME, TNREC_SYNTH_NSWEEP };
    const size_t sh_big[4] = { TNREC_SYNTH_NTIME, TNREC_SYNTH_NAZIMUTH, TNREC_SYNTH_NRANGE, TNREC_SYNTH_NSWEEP };
    const int dims_nyq[2] = { dim[D_TIME], dim[D_SWEEP] };
    const int dims_big[4] = { dim[D_TIME], dim[D_AZ], dim[D_RANGE], dim[D_SWEEP] };
    NCX(def_var(ncid, "azimuth", NC_FLOAT, 1, &dim[D_AZ], &sh_az, level, &v_az));
    NCX(put_text(ncid, v_az, "units", "degrees"));
    NCX(def_var(ncid, "range", NC_FLOAT, 1, &dim[D_RANGE], &sh_range, level, &v_range));
    NCX(put_text(ncid, v_range, "units", "meters"));
    NCX(def_var(ncid, "time", s->time_is_int64 ? NC_INT64 : NC_DOUBLE, 1, &dim[D_TIME], &sh_time, level, &v_time));
    NCX(put_text(ncid, v_time, "units", s->time_units));
    if (s->time_calendar[0])
        NCX(put_text(ncid, v_time, "calendar", s->time_calendar));
    NCX(def_var(ncid, "elevation", NC_DOUBLE, 1, &dim[D_SWEEP], &sh_sweep, level, &v_elev));
    NCX(put_text(ncid, v_elev, "units", "degrees"));
    NCX(def_var(ncid, "frame_labels", NC_UBYTE, 1, &dim[D_TIME], &sh_time, level, &v_labels));
    NCX(def_var(ncid, "nyquist_velocity", NC_FLOAT, 2, dims_nyq, sh_nyq, level, &v_nyq));
    NCX(put_text(ncid, v_nyq, "units", "m/s"));
    NCX(def_var(ncid, "azimuth_limits", NC_FLOAT, 1, &dim[D_LIMS], &sh_lims, level, &v_azl));
    NCX(put_text(ncid, v_azl, "units", "degrees"));
    NCX(def_var(ncid, "range_limits", NC_FLOAT, 1, &dim[D_LIMS], &sh_lims, level, &v_rl));
    NCX(put_text(ncid, v_rl, "units", "meters"));
    const float fill = NAN;
    for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++) {
        NCX(def_var(ncid, moment_names[m], NC_FLOAT, 4, dims_big, sh_big, level, &v_mom[m]));
        NCX(nc_def_var_fill(ncid, v_mom[m], 0, &fill));
        NCX(put_text(ncid, v_mom[m], "units", moment_units[m]));
    }
    NCX(def_var(ncid, "range_folded_mask", NC_UBYTE, 4, dims_big, sh_big, level, &v_rf));
    NCX(nc_enddef(ncid));

    NCX(nc_put_var_float(ncid, v_az, s->azimuth));
    NCX(nc_put_var_float(ncid, v_range, s->range));
    if (s->time_is_int64) {
        long long tv[TNREC_SYNTH_NTIME];
        for (int t = 0; t < TNREC_SYNTH_NTIME; t++)
            tv[t] = s->time_i64[t];
        NCX(nc_put_var_longlong(ncid, v_time, tv));
    } else {
        NCX(nc_put_var_double(ncid, v_time, s->time_f64));
    }
    NCX(nc_put_var_double(ncid, v_elev, s->elevation));
    NCX(nc_put_var_uchar(ncid, v_labels, s->frame_labels));
    NCX(nc_put_var_float(ncid, v_nyq, s->nyquist_velocity));
    NCX(nc_put_var_float(ncid, v_azl, s->azimuth_limits));
    NCX(nc_put_var_float(ncid, v_rl, s->range_limits));
    int rc = nc_close(ncid);
    ncid = -1;
    NCX(rc);

    /* The big variables: their one chunk each, already filtered. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (fid < 0) {
        err = tnrec__fail(TNREC_EIO, "cannot reopen '%s' with HDF5 to store its data", path);
        goto done;
    }
    const hsize_t origin[4] = { 0, 0, 0, 0 };
    for (int v = 0; v < NVARS_BIG; v++) {
        const char *name = v < TNREC_SYNTH_NMOMENTS ? moment_names[v] : "range_folded_mask";
        did = H5Dopen2(fid, name, H5P_DEFAULT);
        if (did < 0 || H5Dwrite_chunk(did, H5P_DEFAULT, 0, origin, p->len[v], p->chunk[v]) < 0) {
            err = tnrec__fail(TNREC_EIO, "cannot store variable '%s' in '%s'", name, path);
            goto done;
        }
        H5Dclose(did);
        did = -1;
    }
    herr_t hr = H5Fclose(fid);
    fid = -1;
    if (hr < 0)
        err = tnrec__fail(TNREC_EIO, "cannot close '%s'", path);
done:
    if (did >= 0)
        H5Dclose(did);
    if (fid >= 0)
        H5Fclose(fid);
    if (ncid >= 0)
        nc_abort(ncid);
    return err;
}

/* pack (no lock), write under the lock to "<path>.tmp.<pid>", rename. */
static tnrec_err write_sample(const tnrec_synth_sample *s, packed *p, const char *path, int level,
                              uint64_t *out_size)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return tnrec__fail(TNREC_EINVAL, "path too long: '%s'", path);
    tnrec_err err = pack_sample(p, s, path);
    if (err)
        return err;
    ing_nc_lock();
    err = write_locked(s, p, tmp, level);
    ing_nc_unlock();
    if (err) {
        unlink(tmp);
        return err;
    }
    struct stat st;
    if (stat(tmp, &st) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot stat '%s'", tmp);
        unlink(tmp);
        return err;
    }
    if (rename(tmp, path) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot rename '%s' to '%s'", tmp, path);
        unlink(tmp);
        return err;
    }
    if (out_size)
        *out_size = (uint64_t)st.st_size;
    return TNREC_OK;
}

tnrec_err tnrec_synth_sample_write(const tnrec_synth_sample *s, const char *path, int deflate_level)
{
    if (!s || !path || deflate_level < 1 || deflate_level > 9)
        return tnrec__fail(TNREC_EINVAL, "invalid arguments writing '%s' (deflate level %d, want 1..9)",
                           path ? path : "(null)", deflate_level);
    packed *p = NULL;
    tnrec_err err = packed_create(&p, deflate_level);
    if (!err)
        err = write_sample(s, p, path, deflate_level, NULL);
    packed_free(p);
    return err;
}

/* ---- the whole archive ---- */

void tnrec_synth_options_init(tnrec_synth_options *out)
{
    memset(out, 0, sizeof *out);
    out->deflate_level = 2;
}

static tnrec_err make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return TNREC_OK;
        return tnrec__fail(TNREC_EIO, "'%s' exists and is not a directory\nhint: choose another output directory", path);
    }
    return tnrec__fail_errno(TNREC_EIO, errno, "cannot create directory '%s'", path);
}

/* mkdir -p */
static tnrec_err make_dirs(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n >= 4096)
        return tnrec__fail(TNREC_EINVAL, "bad output directory '%s'", path);
    tnrec_err err = tnrec__mkdir_parents(path, 0755);
    return err ? err : make_dir(path);
}

/* --force: forget an earlier archive. The catalog goes first (so the
 * directory stops looking complete), then the sample files it listed;
 * only names of the form train|test/YYYY/NAME.nc are touched. */
static tnrec_err remove_old_archive(const char *out_dir, const char *catalog)
{
    uint8_t *text = NULL;
    size_t len = 0;
    tnrec_err err = tnrec__read_file(catalog, &text, &len);
    if (err)
        return err;
    if (unlink(catalog) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot remove '%s'", catalog);
        goto done;
    }
    char *line = (char *)text;
    int first = 1;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *comma = strchr(line, ',');
        if (comma)
            *comma = '\0';
        size_t n = strlen(line);
        int ours = (strncmp(line, "train/", 6) == 0 || strncmp(line, "test/", 5) == 0) && n > 3 &&
                   strcmp(line + n - 3, ".nc") == 0 && !strstr(line, "..");
        if (!first && ours) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", out_dir, line);
            if (unlink(path) != 0 && errno != ENOENT) {
                err = tnrec__fail_errno(TNREC_EIO, errno, "cannot remove old sample '%s'", path);
                goto done;
            }
        }
        first = 0;
        line = next;
    }
done:
    free(text);
    return err;
}

typedef struct catalog_row {
    char filename[96];
    char start_time[24], end_time[24];
    char category[4];
    char site[8];
    int is_train, ef;
    long long event_id, episode_id;
} catalog_row;

static tnrec_err write_catalog(const char *path, const catalog_row *rows, uint64_t n)
{
    size_t cap = 128 + (size_t)n * 256, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return tnrec__fail(TNREC_ENOMEM, "out of memory building '%s'", path);
    len += (size_t)snprintf(buf, cap, "filename,type,start_time,end_time,category,ef_number,event_id,episode_id,site\n");
    for (uint64_t i = 0; i < n; i++) {
        const catalog_row *r = &rows[i];
        len += (size_t)snprintf(buf + len, cap - len, "%s,%s,%s,%s,%s,%d,%lld,%lld,%s\n", r->filename,
                                r->is_train ? "train" : "test", r->start_time, r->end_time, r->category,
                                r->ef, r->event_id, r->episode_id, r->site);
    }
    tnrec_err err = tnrec__write_file_atomic(path, buf, len);
    free(buf);
    return err;
}

tnrec_err tnrec_synth_run(tnrec_synth_stats *out, const tnrec_synth_options *opt)
{
    tnrec_err err = TNREC_OK;
    catalog_row *rows = NULL;
    tnrec_synth_sample **samples = NULL;
    packed **packs = NULL;
    uint64_t *sizes = NULL;
    int nthreads = 1;
    double t_start = tnrec__now_seconds();

    if (out)
        memset(out, 0, sizeof *out);
    if (!opt || !opt->out_dir || !opt->out_dir[0])
        return tnrec__fail(TNREC_EINVAL, "synth: no output directory given");
    if (opt->samples == 0)
        return tnrec__fail(TNREC_EINVAL, "synth: the sample count must be at least 1 (output '%s')", opt->out_dir);
    int level = opt->deflate_level ? opt->deflate_level : 2;
    if (level < 1 || level > 9)
        return tnrec__fail(TNREC_EINVAL, "synth: deflate level %d out of range 1..9", opt->deflate_level);
    if (opt->threads < 0)
        return tnrec__fail(TNREC_EINVAL, "synth: thread count %d must be 0 (default) or more", opt->threads);
    if (!(opt->tor_fraction == 0.0 || (opt->tor_fraction > 0.0 && opt->tor_fraction < 1.0)))
        return tnrec__fail(TNREC_EINVAL, "synth: TOR fraction %g out of range (output '%s')\n"
                           "hint: give 0 < F < 1, or 0 for TorNet's own mix", opt->tor_fraction, opt->out_dir);
    const char *dir = opt->out_dir;
    const uint64_t n = opt->samples;
    if (n > ((uint64_t)1 << 40))
        return tnrec__fail(TNREC_EINVAL, "synth: sample count %llu is too large", (unsigned long long)n);

    err = make_dirs(dir);
    if (err) {
        char why[1024];
        snprintf(why, sizeof why, "%s", tnrec_error_last());
        return tnrec__fail(err, "%s\nhint: check the path, and that you may write there", why);
    }
    if (access(dir, W_OK | X_OK) != 0)
        return tnrec__fail_errno(TNREC_EIO, errno, "output directory '%s' is not writable", dir);
    char catalog[4096];
    if ((size_t)snprintf(catalog, sizeof catalog, "%s/catalog.csv", dir) >= sizeof catalog)
        return tnrec__fail(TNREC_EINVAL, "output path too long: '%s'", dir);
    if (access(catalog, F_OK) == 0) {
        if (!opt->force)
            return tnrec__fail(TNREC_EINVAL,
                               "'%s' already exists: '%s' holds an archive\n"
                               "hint: pass --force to replace it, or choose another directory",
                               catalog, dir);
        err = remove_old_archive(dir, catalog);
        if (err)
            return err;
    }

    /* Metadata of every sample first: the directories to make and the
     * catalog rows, in index order. */
    rows = calloc((size_t)n, sizeof *rows);
    sizes = calloc((size_t)n, sizeof *sizes);
    if (!rows || !sizes) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for %llu catalog rows", (unsigned long long)n);
        goto done;
    }
    int need[2][NYEARS] = { { 0 } };
    {
        tnrec_synth_sample meta;
        memset(&meta, 0, sizeof meta);
        for (uint64_t i = 0; i < n; i++) {
            ing_synth_meta(&meta, opt->seed, i, opt->tor_fraction);
            catalog_row *r = &rows[i];
            memcpy(r->filename, meta.filename, sizeof r->filename);
            memcpy(r->start_time, meta.start_time, sizeof r->start_time);
            memcpy(r->end_time, meta.end_time, sizeof r->end_time);
            memcpy(r->category, meta.category, sizeof r->category);
            memcpy(r->site, meta.site_name, sizeof r->site);
            r->is_train = meta.is_train;
            r->ef = (int)meta.ef_number;
            r->event_id = meta.event_id;
            r->episode_id = meta.episode_id;
            need[meta.is_train][meta.year - FIRST_YEAR] = 1;
        }
    }
    for (int split = 0; split < 2; split++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, split ? "train" : "test");
        if ((err = make_dir(path)))
            goto done;
        for (int y = 0; y < NYEARS; y++) {
            if (!need[split][y])
                continue;
            snprintf(path, sizeof path, "%s/%s/%d", dir, split ? "train" : "test", FIRST_YEAR + y);
            if ((err = make_dir(path)))
                goto done;
        }
    }

#if TNREC_HAVE_OPENMP
    nthreads = opt->threads > 0 ? opt->threads : omp_get_max_threads();
    if ((uint64_t)nthreads > n)
        nthreads = (int)n;
    if (nthreads < 1)
        nthreads = 1;
#endif
    samples = calloc((size_t)nthreads, sizeof *samples);
    packs = calloc((size_t)nthreads, sizeof *packs);
    if (!samples || !packs) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for %d worker buffers", nthreads);
        goto done;
    }
    for (int t = 0; t < nthreads; t++) {
        if ((err = tnrec_synth_sample_create(&samples[t])) || (err = packed_create(&packs[t], level)))
            goto done;
    }

    /* Errors inside the loop are recorded (the lowest failing index wins,
     * whatever the schedule) and reported after it. */
    int failed = 0;
    uint64_t fail_index = UINT64_MAX;
    tnrec_err fail_err = TNREC_OK;
    char fail_msg[1024] = "";
    long long ni = (long long)n;
    uint64_t written = 0;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
    for (long long ii = 0; ii < ni; ii++) {
        int stop;
#if TNREC_HAVE_OPENMP
#pragma omp atomic read
#endif
        stop = failed;
        if (stop)
            continue;
        int tid = 0;
#if TNREC_HAVE_OPENMP
        tid = omp_get_thread_num();
#endif
        uint64_t i = (uint64_t)ii;
        tnrec_synth_sample *s = samples[tid];
        tnrec_synth_sample_generate_mix(s, opt->seed, i, opt->tor_fraction);
        char path[4096];
        tnrec_err e;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, s->filename) >= sizeof path)
            e = tnrec__fail(TNREC_EINVAL, "output path too long under '%s'", dir);
        else
            e = write_sample(s, packs[tid], path, level, &sizes[i]);
        if (e) {
#if TNREC_HAVE_OPENMP
#pragma omp critical(tnrec_synth_fail)
#endif
            {
                if (i < fail_index) {
                    fail_index = i;
                    fail_err = e;
                    snprintf(fail_msg, sizeof fail_msg, "%s", tnrec_error_last());
                }
            }
#if TNREC_HAVE_OPENMP
#pragma omp atomic write
#endif
            failed = 1;
        } else if (opt->progress) {
#if TNREC_HAVE_OPENMP
#pragma omp critical(tnrec_synth_progress)
#endif
            opt->progress(opt->progress_ctx, ++written, n);
        }
    }
    if (fail_err) {
        err = tnrec__fail(fail_err, "%s", fail_msg);
        goto done;
    }

    /* The samples reach the disk before the catalog says they are there. */
    {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || syncfs(dfd) != 0) {
            err = tnrec__fail_errno(TNREC_EIO, errno, "cannot sync the files under '%s'", dir);
            if (dfd >= 0)
                close(dfd);
            goto done;
        }
        close(dfd);
    }
    if ((err = write_catalog(catalog, rows, n)))
        goto done;

    if (out) {
        out->samples = n;
        out->threads = nthreads;
        for (uint64_t i = 0; i < n; i++) {
            out->bytes += sizes[i];
            if (rows[i].is_train)
                out->train++;
            else
                out->test++;
            switch (rows[i].category[0]) {
            case 'T': out->tor++; break;
            case 'W': out->wrn++; break;
            default: out->nul++; break;
            }
        }
        out->seconds = tnrec__now_seconds() - t_start;
    }
done:
    if (samples)
        for (int t = 0; t < nthreads; t++)
            tnrec_synth_sample_free(samples[t]);
    if (packs)
        for (int t = 0; t < nthreads; t++)
            packed_free(packs[t]);
    free(samples);
    free(packs);
    free(rows);
    free(sizes);
    return err;
}
