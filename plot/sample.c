/* plot/sample.c: the parts of one record a picture needs, read through
 * libtnrec's public reading API and checked against the options.
 *
 * Moments come back in physical units: the stored values are normalised,
 * (x - offset) / scale, so x = n * scale + offset, computed in double;
 * no-data gates (as the decoder marks them) become NaN. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "plot_internal.h"

/* TorNet's chip when a record carries no limits: 0.5 degree by 250 m gates. */
#define PLOT_ASSUMED_AZ_STEP 0.5
#define PLOT_ASSUMED_GATE_KM 0.25

static const char *const moment_order[TNREC_PLOT_MAX_FIELDS] = { "DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH" };

void plot_sample_free(plot_sample *s)
{
    for (uint32_t m = 0; m < TNREC_PLOT_MAX_FIELDS; m++) {
        free(s->moments[m].values);
        s->moments[m].values = NULL;
    }
    free(s->folded);
    s->folded = NULL;
}

/* The 4-d fields must be (time, azimuth, range, sweep) and agree in shape. */
static tnrec_err check_grid(plot_sample *s, const tnrec_field *f)
{
    static const char *const want[4] = { "time", "azimuth", "range", "sweep" };
    if (f->ndim != 4)
        return tnrec__fail(TNREC_ESCHEMA, "field '%s' of '%s' has %" PRIu32 " dimensions, not 4 "
                           "(time, azimuth, range, sweep)\nhint: tnrec plot draws datasets made by 'tnrec build'",
                           f->name, s->path, f->ndim);
    for (int d = 0; d < 4; d++)
        if (f->dims[d][0] && strcmp(f->dims[d], want[d]) != 0)
            return tnrec__fail(TNREC_ESCHEMA, "field '%s' of '%s' has dimension %d '%s', not '%s'\n"
                               "hint: tnrec plot draws (time, azimuth, range, sweep) fields as 'tnrec build' writes them",
                               f->name, s->path, d, f->dims[d], want[d]);
    if (!s->naz) {
        if (f->shape[0] > TNREC_PLOT_MAX_FRAMES || f->shape[3] > TNREC_PLOT_MAX_SWEEPS)
            return tnrec__fail(TNREC_ESCHEMA, "field '%s' of '%s' has %" PRIu32 " frames and %" PRIu32
                               " sweeps; tnrec plot draws at most %d and %d", f->name, s->path, f->shape[0],
                               f->shape[3], TNREC_PLOT_MAX_FRAMES, TNREC_PLOT_MAX_SWEEPS);
        s->nframes = f->shape[0];
        s->naz = f->shape[1];
        s->ngates = f->shape[2];
        s->nsweeps = f->shape[3];
        return TNREC_OK;
    }
    if (f->shape[0] != s->nframes || f->shape[1] != s->naz || f->shape[2] != s->ngates || f->shape[3] != s->nsweeps)
        return tnrec__fail(TNREC_ESCHEMA, "field '%s' of '%s' has another shape than the other radar fields",
                           f->name, s->path);
    return TNREC_OK;
}

static tnrec_err load_moment(plot_sample *s, tnrec_decoder *dec, const tnrec_schema *schema, int fi,
                             plot_moment *m, float *buf, uint8_t *mask)
{
    const tnrec_field *f = &schema->fields[fi];
    if (f->encoding == TNREC_ENC_RAW && f->dtype != TNREC_DTYPE_F32)
        return tnrec__fail(TNREC_ESCHEMA, "field '%s' of '%s' is stored as raw %s; tnrec plot reads float fields",
                           f->name, s->path, tnrec_dtype_name(f->dtype) ? tnrec_dtype_name(f->dtype) : "?");
    tnrec_err e = check_grid(s, f);
    if (e)
        return e;
    size_t n = tnrec_field_elems(f);
    if ((e = tnrec_decoder_field_mask(dec, (uint32_t)fi, buf, n * sizeof *buf, mask)) != TNREC_OK)
        return e;
    m->values = malloc(n * sizeof *m->values);
    if (!m->values)
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading field '%s' of record %" PRIu64 " of '%s'",
                           f->name, s->index, s->path);
    /* Raw float32 fields hold physical values already. */
    double scale = f->encoding == TNREC_ENC_RAW ? 1.0 : (double)f->scale;
    double offset = f->encoding == TNREC_ENC_RAW ? 0.0 : (double)f->offset;
    for (size_t k = 0; k < n; k++)
        m->values[k] = (mask[k] || isnan(buf[k])) ? NAN : (double)buf[k] * scale + offset;
    snprintf(m->name, sizeof m->name, "%s", f->name);
    m->cm = plot_colormap_find(f->name);
    return TNREC_OK;
}

/* A small raw field of the expected type and element count, or -1 when
 * the schema has none such. */
static int small_field(const tnrec_schema *schema, const char *name, tnrec_dtype dt, size_t elems)
{
    int fi = tnrec_schema_find(schema, name);
    if (fi < 0)
        return -1;
    const tnrec_field *f = &schema->fields[fi];
    if (f->encoding != TNREC_ENC_RAW || f->dtype != dt || tnrec_field_elems(f) != elems)
        return -1;
    return fi;
}

static tnrec_err load_folded(plot_sample *s, tnrec_decoder *dec, const tnrec_schema *schema)
{
    int fi = tnrec_schema_find(schema, "range_folded_mask");
    if (fi < 0)
        return tnrec__fail(TNREC_ENOTFOUND, "'%s' has no field 'range_folded_mask'\n"
                           "hint: drop --mask, or rebuild with the variable kept", s->path);
    const tnrec_field *f = &schema->fields[fi];
    if (f->encoding != TNREC_ENC_RAW || f->dtype != TNREC_DTYPE_U8)
        return tnrec__fail(TNREC_ESCHEMA, "field 'range_folded_mask' of '%s' is not raw uint8", s->path);
    tnrec_err e = check_grid(s, f);
    if (e)
        return e;
    size_t n = tnrec_field_elems(f);
    if (!(s->folded = malloc(n)))
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading range_folded_mask of '%s'", s->path);
    return tnrec_decoder_field(dec, (uint32_t)fi, TNREC_DTYPE_U8, s->folded, n);
}

/* Window of the chip from azimuth_limits and range_limits (degrees, metres). */
static tnrec_err set_geometry(plot_sample *s, const float az[2], const float rg[2])
{
    if (!isfinite(az[0]) || !isfinite(az[1]) || !isfinite(rg[0]) || !isfinite(rg[1]) || rg[0] < 0 || rg[1] <= rg[0])
        return tnrec__fail(TNREC_ECORRUPT, "record %" PRIu64 " of '%s' has azimuth limits [%g, %g] and range "
                           "limits [%g, %g], which are no radar window\nhint: the record is damaged; rebuild it",
                           s->index, s->path, az[0], az[1], rg[0], rg[1]);
    double lo = fmod((double)az[0], 360.0), span = fmod((double)az[1] - (double)az[0], 360.0);
    if (lo < 0)
        lo += 360.0;
    if (span <= 0)
        span += 360.0;
    s->az_lo = lo;
    s->az_span = span;
    s->range_lo = rg[0] / 1000.0;
    s->range_hi = rg[1] / 1000.0;
    return TNREC_OK;
}

static tnrec_err load_small(plot_sample *s, tnrec_decoder *dec, const tnrec_schema *schema)
{
    tnrec_err e = TNREC_OK;
    int fa = small_field(schema, "azimuth_limits", TNREC_DTYPE_F32, 2);
    int fr = small_field(schema, "range_limits", TNREC_DTYPE_F32, 2);
    if (fa >= 0 && fr >= 0) {
        float az[2], rg[2];
        if ((e = tnrec_decoder_field(dec, (uint32_t)fa, TNREC_DTYPE_F32, az, sizeof az)) ||
            (e = tnrec_decoder_field(dec, (uint32_t)fr, TNREC_DTYPE_F32, rg, sizeof rg)) ||
            (e = set_geometry(s, az, rg)))
            return e;
    } else {
        s->geometry_assumed = 1;
        s->az_lo = 0.0;
        s->az_span = PLOT_ASSUMED_AZ_STEP * s->naz;
        s->range_lo = 0.0;
        s->range_hi = PLOT_ASSUMED_GATE_KM * s->ngates;
    }
    int ft = small_field(schema, "time", TNREC_DTYPE_I64, s->nframes);
    if (ft >= 0) {
        if ((e = tnrec_decoder_field(dec, (uint32_t)ft, TNREC_DTYPE_I64, s->times, sizeof s->times)))
            return e;
        s->have_times = 1;
    }
    int fe = small_field(schema, "elevation", TNREC_DTYPE_F64, s->nsweeps);
    if (fe >= 0) {
        if ((e = tnrec_decoder_field(dec, (uint32_t)fe, TNREC_DTYPE_F64, s->elevation, sizeof s->elevation)))
            return e;
        s->have_elevation = 1;
    }
    int fs = small_field(schema, "site", TNREC_DTYPE_U8, 4);
    if (fs >= 0) {
        uint8_t site[4];
        if ((e = tnrec_decoder_field(dec, (uint32_t)fs, TNREC_DTYPE_U8, site, sizeof site)))
            return e;
        for (int i = 0; i < 4 && site[i] >= 0x20 && site[i] < 0x7f; i++)
            s->site[i] = (char)site[i];
    }
    return TNREC_OK;
}

/* The schema indexes of the moments to draw, in the order asked for. */
static tnrec_err pick_moments(plot_sample *s, const tnrec_schema *schema, const tnrec_plot_options *opt,
                              int *out, uint32_t *nout)
{
    *nout = 0;
    if (!opt->nfields) {
        for (int m = 0; m < TNREC_PLOT_MAX_FIELDS; m++) {
            int fi = tnrec_schema_find(schema, moment_order[m]);
            if (fi >= 0)
                out[(*nout)++] = fi;
        }
        if (!*nout)
            return tnrec__fail(TNREC_ENOTFOUND, "'%s' has none of the radar fields DBZ VEL KDP RHOHV ZDR WIDTH\n"
                               "hint: 'tnrec dump %s' shows its schema", s->path, s->path);
        return TNREC_OK;
    }
    if (opt->nfields > TNREC_PLOT_MAX_FIELDS)
        return tnrec__fail(TNREC_EINVAL, "%" PRIu32 " fields asked for; at most %d", opt->nfields, TNREC_PLOT_MAX_FIELDS);
    for (uint32_t k = 0; k < opt->nfields; k++) {
        const char *name = opt->fields[k];
        if (!tnrec_plot_is_moment(name))
            return tnrec__fail(TNREC_EINVAL, "unknown field '%s'\nhint: choose from DBZ VEL KDP RHOHV ZDR WIDTH", name);
        for (uint32_t j = 0; j < k; j++)
            if (strcmp(opt->fields[j], name) == 0)
                return tnrec__fail(TNREC_EINVAL, "field '%s' given twice", name);
        int fi = tnrec_schema_find(schema, name);
        if (fi < 0)
            return tnrec__fail(TNREC_ENOTFOUND, "'%s' has no field '%s'\nhint: 'tnrec dump %s' shows its schema; "
                               "leave --fields out to draw every radar field it has", s->path, name, s->path);
        out[(*nout)++] = fi;
    }
    return TNREC_OK;
}

static tnrec_err check_choice(const plot_sample *s, const tnrec_plot_options *opt)
{
    if (opt->frame >= 0 && (uint32_t)opt->frame >= s->nframes)
        return tnrec__fail(TNREC_ERANGE, "frame %d out of range: the records of '%s' have %" PRIu32
                           " frame%s (0..%" PRIu32 ")\nhint: leave --frame out for the last one",
                           opt->frame, s->path, s->nframes, s->nframes == 1 ? "" : "s", s->nframes - 1);
    if (opt->frame < TNREC_PLOT_ALL_FRAMES)
        return tnrec__fail(TNREC_EINVAL, "frame %d is not a frame", opt->frame);
    uint32_t sweeps = opt->sweeps ? opt->sweeps : 1u;
    for (uint32_t w = 0; w < 32; w++)
        if ((sweeps >> w) & 1u && w >= s->nsweeps)
            return tnrec__fail(TNREC_ERANGE, "sweep %" PRIu32 " out of range: the records of '%s' have %" PRIu32
                               " sweep%s (0..%" PRIu32 ")", w, s->path, s->nsweeps, s->nsweeps == 1 ? "" : "s",
                               s->nsweeps - 1);
    return TNREC_OK;
}

static tnrec_err range_error(const tnrec_dataset *ds, const char *path, uint64_t index)
{
    uint64_t n = tnrec_dataset_count(ds);
    if (n == 0)
        return tnrec__fail(TNREC_ERANGE, "record %" PRIu64 " out of range: '%s' has no records\n"
                           "hint: this dataset is empty; rebuild it or pick another PATH", index, path);
    return tnrec__fail(TNREC_ERANGE, "record %" PRIu64 " out of range: '%s' has %" PRIu64 " record%s\n"
                       "hint: pick an index from 0 to %" PRIu64 " ('tnrec dump --records %s' lists them)",
                       index, path, n, n == 1 ? "" : "s", n - 1, path);
}

static tnrec_err load_fields(plot_sample *s, tnrec_decoder *dec, const tnrec_schema *schema,
                             const tnrec_plot_options *opt)
{
    int fis[TNREC_PLOT_MAX_FIELDS];
    uint32_t nf = 0;
    tnrec_err e = pick_moments(s, schema, opt, fis, &nf);
    if (e)
        return e;
    size_t maxn = 1;
    for (uint32_t k = 0; k < nf; k++) {
        size_t n = tnrec_field_elems(&schema->fields[fis[k]]);
        maxn = n > maxn ? n : maxn;
    }
    float *buf = malloc(maxn * sizeof *buf);
    uint8_t *mask = malloc(maxn);
    if (!buf || !mask)
        e = tnrec__fail(TNREC_ENOMEM, "out of memory reading record %" PRIu64 " of '%s'", s->index, s->path);
    for (uint32_t k = 0; k < nf && !e; k++) {
        e = load_moment(s, dec, schema, fis[k], &s->moments[k], buf, mask);
        if (!e)
            s->nmoments = k + 1;
    }
    free(buf);
    free(mask);
    if (!e && opt->mask)
        e = load_folded(s, dec, schema);
    if (!e)
        e = check_choice(s, opt);
    if (!e)
        e = load_small(s, dec, schema);
    return e;
}

tnrec_err plot_sample_load(plot_sample *s, const tnrec_dataset *ds, const char *path, uint64_t index,
                           const tnrec_plot_options *opt)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->index = index;
    if (index >= tnrec_dataset_count(ds))
        return range_error(ds, path, index);
    size_t shard = 0;
    uint64_t local = 0;
    tnrec_err e = tnrec_dataset_locate(ds, index, &shard, &local);
    if (e)
        return e;
    const tnrec_shard *sh = tnrec_dataset_shard(ds, shard);
    const tnrec_record_info *info = tnrec_shard_info(sh, local);
    if (!info)
        return range_error(ds, path, index);
    s->meta = info->meta;
    tnrec_decoder *dec = NULL;
    if ((e = tnrec_decoder_create(&dec)) == TNREC_OK && (e = tnrec_decoder_load(dec, sh, local)) == TNREC_OK)
        e = load_fields(s, dec, tnrec_dataset_schema(ds), opt);
    tnrec_decoder_free(dec);
    if (e)
        plot_sample_free(s);
    return e;
}
