/* ingest/nc_sample.c: read and check one TorNet sample held in memory.
 *
 * Under the one NetCDF/HDF5 lock: HDF5 opens the caller's bytes as a file
 * image without copying them (lent through the file image callbacks,
 * read-only) and looks up where the raw
 * compressed chunk of each big variable lies in them (TorNet has one
 * shuffle+deflate chunk per variable; the chunk bytes are not copied
 * either), then netcdf-c opens the same
 * bytes to read and check the schema, attributes and small variables, and
 * reads through its own API any big variable whose storage is not one
 * shuffle/deflate chunk. Outside the lock: inflate (libdeflate), unshuffle,
 * keep the last N frames, turn fill and MissingDataFlag gates into NaN.
 * Deliberately not here: normalisation and encoding (the records encoder
 * does both), file I/O (the caller hands bytes in).
 * Invariant: no netcdf-c or HDF5 call outside ing_nc_lock(). */
#include <errno.h>
#include <hdf5.h>
#include <libdeflate.h>
#include <math.h>
#include <netcdf.h>
#include <netcdf_mem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "ingest_internal.h"

const char *const ing_moment_names[TNREC_INGEST_NVARS] = { "DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH" };

#define TN_MAX_TIME 64 /* largest `time` dimension accepted */
#define TN_RFM_SLOT TNREC_INGEST_NVARS
enum { FILT_SHUFFLE = 1, FILT_DEFLATE = 2 };

static pthread_mutex_t nc_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int h5_quiet;

void ing_nc_lock(void)
{
    pthread_mutex_lock(&nc_mutex);
    if (!h5_quiet) {
        /* HDF5's error stack (and its auto-printing) is per thread */
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        h5_quiet = 1;
    }
}

void ing_nc_unlock(void)
{
    pthread_mutex_unlock(&nc_mutex);
}

void ing_sample_init(ing_sample *s)
{
    memset(s, 0, sizeof *s);
}

void ing_sample_release(ing_sample *s)
{
    if (!s)
        return;
    for (int i = 0; i < TNREC_INGEST_NVARS; i++)
        free(s->moment[i]);
    free(s->rfm);
    free(s->inflated);
    if (s->inflater)
        libdeflate_free_decompressor(s->inflater);
    memset(s, 0, sizeof *s);
}

typedef struct nc_extra {
    double missing_flag;
    int has_missing;
    float fill[TNREC_INGEST_NVARS];
    int has_fill[TNREC_INGEST_NVARS];
    size_t ntime;
} nc_extra;

/* ---- HDF5 direct chunk read (under the lock) ---- */

/* Copies the single raw chunk of dataset vname; returns 0 on success, -1
 * when the variable must go through netcdf-c instead (any other layout,
 * filter, type or a missing chunk). */
/* Finds the one chunk of `vname` in the file image [data, data + size)
 * whose HDF5 addresses start at `base` (the user block): s->chunk[slot]
 * then points into the image, nothing is copied. */
static int direct_read(ing_sample *s, hid_t fid, const uint8_t *data, size_t size, hsize_t base, const char *vname,
                       int slot, int is_float, hsize_t *out_t)
{
    int ok = -1;
    hid_t d = -1, type = -1, space = -1, dcpl = -1;
    d = H5Dopen2(fid, vname, H5P_DEFAULT);
    if (d < 0)
        goto done;
    type = H5Dget_type(d);
    if (type < 0)
        goto done;
    if (is_float) {
        if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 4 || H5Tget_order(type) != H5T_ORDER_LE)
            goto done;
    } else if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 1 || H5Tget_sign(type) != H5T_SGN_NONE) {
        goto done;
    }
    space = H5Dget_space(d);
    hsize_t dims[4], cdims[4];
    if (space < 0 || H5Sget_simple_extent_ndims(space) != 4 || H5Sget_simple_extent_dims(space, dims, NULL) != 4)
        goto done;
    if (dims[1] != TN_NAZ || dims[2] != TN_NR || dims[3] != TN_NS || dims[0] < 1 || dims[0] > TN_MAX_TIME)
        goto done;
    dcpl = H5Dget_create_plist(d);
    if (dcpl < 0 || H5Pget_layout(dcpl) != H5D_CHUNKED || H5Pget_chunk(dcpl, 4, cdims) != 4)
        goto done;
    for (int i = 0; i < 4; i++)
        if (cdims[i] != dims[i])
            goto done;
    int nf = H5Pget_nfilters(dcpl);
    if (nf < 0 || nf > 2)
        goto done;
    uint32_t filters = 0, filter_bit[2] = { 0, 0 };
    for (int i = 0; i < nf; i++) {
        unsigned flags;
        size_t nelmts = 0;
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelmts, NULL, 0, NULL, NULL);
        if (id == H5Z_FILTER_SHUFFLE && i == 0)
            filter_bit[i] = FILT_SHUFFLE;
        else if (id == H5Z_FILTER_DEFLATE && i == nf - 1)
            filter_bit[i] = FILT_DEFLATE;
        else
            goto done;
    }
    hsize_t off[4] = { 0, 0, 0, 0 }, nbytes = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    if (H5Dget_chunk_info_by_coord(d, off, &mask, &addr, &nbytes) < 0 || addr == HADDR_UNDEF || nbytes == 0 ||
        base > size || addr > size - base || nbytes > size - base - addr)
        goto done; /* not stored, or not inside the image: a damaged file */
    s->chunk[slot] = data + base + addr;
    for (int i = 0; i < nf; i++)
        if (!(mask & (1u << i)))
            filters |= filter_bit[i];
    s->chunk_size[slot] = (size_t)nbytes;
    s->chunk_filters[slot] = filters;
    *out_t = dims[0];
    ok = 0;
done:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (d >= 0)
        H5Dclose(d);
    return ok;
}

/* ---- HDF5 fast path for the small variables and attributes ---- */

/* Reads a whole small dataset `vname` of rank `rank` whose dimensions
 * equal dims (0: any, the first one returned in *out_len0) as mem_type.
 * 0 on success, -1 for anything unexpected (the caller falls back). */
static int h5_small(hid_t fid, const char *vname, int rank, const hsize_t *dims, hsize_t max_elems, hid_t mem_type,
                    void *dst, hsize_t *out_len0, H5T_class_t *out_class)
{
    int ok = -1;
    hid_t d = H5Dopen2(fid, vname, H5P_DEFAULT), sp = -1, t = -1;
    if (d < 0)
        return -1;
    sp = H5Dget_space(d);
    t = H5Dget_type(d);
    hsize_t got[4], n = 1;
    if (sp < 0 || t < 0 || H5Sget_simple_extent_ndims(sp) != rank || rank > 4 ||
        H5Sget_simple_extent_dims(sp, got, NULL) != rank)
        goto done;
    H5T_class_t cls = H5Tget_class(t);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        goto done;
    for (int i = 0; i < rank; i++) {
        if (dims[i] && got[i] != dims[i])
            goto done;
        n *= got[i];
    }
    if (n == 0 || n > max_elems)
        goto done;
    if (H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        goto done;
    if (out_len0)
        *out_len0 = got[0];
    if (out_class)
        *out_class = cls;
    ok = 0;
done:
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    return ok;
}

/* One-element attribute of loc: a string into buf (cap bytes) when buf is
 * not NULL, else a number into *dv / *iv. 1: read, 0: absent, -1: other. */
static int h5_att(hid_t loc, const char *att, char *buf, size_t cap, double *dv, long long *iv)
{
    htri_t ex = H5Aexists(loc, att);
    if (ex == 0)
        return 0;
    if (ex < 0)
        return -1;
    int ok = -1;
    hid_t a = H5Aopen(loc, att, H5P_DEFAULT), t = -1, sp = -1, mt = -1;
    if (a < 0)
        return -1;
    t = H5Aget_type(a);
    sp = H5Aget_space(a);
    if (t < 0 || sp < 0 || H5Sget_simple_extent_npoints(sp) != 1)
        goto done;
    H5T_class_t cls = H5Tget_class(t);
    if (buf) {
        if (cls != H5T_STRING)
            goto done;
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0)
            goto done;
        if (H5Tis_variable_str(t) > 0) {
            char *p = NULL;
            if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &p) < 0)
                goto done;
            snprintf(buf, cap, "%s", p ? p : "");
            H5free_memory(p);
        } else {
            size_t n = H5Tget_size(t);
            char *tmp = malloc(n + 1);
            if (!tmp || H5Tset_size(mt, n + 1) < 0 || H5Aread(a, mt, tmp) < 0) {
                free(tmp);
                goto done;
            }
            tmp[n] = '\0';
            snprintf(buf, cap, "%s", tmp);
            free(tmp);
        }
    } else {
        if (cls == H5T_INTEGER) {
            long long v;
            if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0)
                goto done;
            if (iv)
                *iv = v;
            if (dv)
                *dv = (double)v;
        } else if (cls == H5T_FLOAT) {
            double v;
            if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
                goto done;
            if (dv)
                *dv = v;
            if (iv) {
                if (!isfinite(v) || fabs(v) > 9.0e15 || v != floor(v))
                    goto done;
                *iv = (long long)v;
            }
        } else {
            goto done;
        }
    }
    ok = 1;
done:
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* Everything but the big chunks through HDF5: 0 when the sample is fully
 * read and valid, -1 when netcdf-c must read it (which also words the
 * error of a bad file). T is the time length the chunks have. */
static int h5_meta_read(ing_sample *s, const ing_spec *spec, hid_t fid, size_t T, const char *name, nc_extra *x)
{
    if (T < spec->frames || T > TN_MAX_TIME)
        return -1;
    hsize_t tdim[1] = { T }, two[1] = { 2 }, ts[2] = { T, TN_NS };
    x->ntime = T;
    /* time, decoded per its CF units */
    {
        char units[256], cal[64];
        int64_t iv[TN_MAX_TIME], tout[TN_MAX_TIME];
        double dv[TN_MAX_TIME];
        H5T_class_t cls;
        hid_t d = H5Dopen2(fid, "time", H5P_DEFAULT);
        if (d < 0)
            return -1;
        int u = h5_att(d, "units", units, sizeof units, NULL, NULL);
        int c = h5_att(d, "calendar", cal, sizeof cal, NULL, NULL);
        H5Dclose(d);
        if (u != 1 || c < 0)
            return -1;
        if (c == 0)
            cal[0] = '\0';
        if (h5_small(fid, "time", 1, tdim, TN_MAX_TIME, H5T_NATIVE_DOUBLE, dv, NULL, &cls) != 0)
            return -1;
        if (cls == H5T_INTEGER &&
            h5_small(fid, "time", 1, tdim, TN_MAX_TIME, H5T_NATIVE_LLONG, iv, NULL, NULL) != 0)
            return -1;
        if (ing_cf_time_decode(tout, T, dv, cls == H5T_INTEGER ? iv : NULL, units, cal, name) != TNREC_OK)
            return -1;
        s->first_time = tout[0];
        memcpy(s->time, tout + (T - spec->frames), spec->frames * sizeof(int64_t));
    }
    {
        int lv[TN_MAX_TIME];
        H5T_class_t cls;
        if (h5_small(fid, "frame_labels", 1, tdim, TN_MAX_TIME, H5T_NATIVE_INT, lv, NULL, &cls) != 0 ||
            cls != H5T_INTEGER)
            return -1;
        for (size_t i = 0; i < T; i++)
            if (lv[i] != 0 && lv[i] != 1)
                return -1;
        for (uint32_t i = 0; i < spec->frames; i++)
            s->frame_labels[i] = (uint8_t)lv[T - spec->frames + i];
    }
    float ny[TN_MAX_TIME * TN_NS];
    if (h5_small(fid, "elevation", 1, two, 2, H5T_NATIVE_DOUBLE, s->elevation, NULL, NULL) != 0 ||
        h5_small(fid, "nyquist_velocity", 2, ts, TN_MAX_TIME * TN_NS, H5T_NATIVE_FLOAT, ny, NULL, NULL) != 0 ||
        h5_small(fid, "azimuth_limits", 1, two, 2, H5T_NATIVE_FLOAT, s->azimuth_limits, NULL, NULL) != 0 ||
        h5_small(fid, "range_limits", 1, two, 2, H5T_NATIVE_FLOAT, s->range_limits, NULL, NULL) != 0)
        return -1;
    memcpy(s->nyquist, ny + (T - spec->frames) * TN_NS, spec->frames * TN_NS * sizeof(float));
    /* _FillValue of the moments */
    for (uint32_t k = 0; k < spec->nmoments; k++) {
        int m = spec->moment[k];
        hid_t d = H5Dopen2(fid, ing_moment_names[m], H5P_DEFAULT);
        if (d < 0)
            return -1;
        double fv;
        int r = h5_att(d, "_FillValue", NULL, 0, &fv, NULL);
        H5Dclose(d);
        if (r < 0)
            return -1;
        x->has_fill[m] = r == 1;
        x->fill[m] = r == 1 ? (float)fv : 0.0f;
    }
    /* global attributes */
    double ef;
    long long ev, ep;
    char text[64];
    if (h5_att(fid, "ef_number", NULL, 0, &ef, NULL) != 1 || h5_att(fid, "event_id", NULL, 0, NULL, &ev) != 1 ||
        h5_att(fid, "episode_id", NULL, 0, NULL, &ep) != 1)
        return -1;
    int mf = h5_att(fid, "MissingDataFlag", NULL, 0, &x->missing_flag, NULL);
    if (mf < 0)
        return -1;
    x->has_missing = mf == 1;
    if (!isfinite(ef) || ef < -1 || ef > 5 || ef != floor(ef))
        return -1;
    if (h5_att(fid, "category", text, sizeof text, NULL, NULL) != 1)
        return -1;
    s->meta.category = tnrec_category_parse(text);
    if (h5_att(fid, "site_name", text, sizeof text, NULL, NULL) != 1 || strlen(text) > 4 || !text[0])
        return -1;
    memset(s->site, 0, sizeof s->site);
    memcpy(s->site, text, strlen(text));
    s->meta.ef = (int32_t)ef;
    s->meta.event_id = ev;
    s->meta.episode_id = ep;
    s->meta.time = s->time[spec->frames - 1];
    s->meta.label = s->meta.ef >= 0 ? 1 : 0; /* the reference loader's fix of the last frame's label */
    return 0;
}

/* Opens the image with HDF5, copies the chunks it can (*direct gets a bit
 * per slot) and, when every chunk came directly, reads the rest too.
 * Returns 0 when the sample is complete, -1 when netcdf-c must finish it. */
/* File image callbacks that lend the sample's bytes to HDF5 instead of
 * letting it copy them (twice: into the property list, then into the
 * driver). Every image "allocation" of the sample's size is the sample
 * itself, a copy onto itself does nothing, nothing is freed, and the
 * read-only file never grows. The loan lives on the caller's stack for
 * the whole open-read-close. */
typedef struct image_loan {
    const void *data;
    size_t size;
} image_loan;

static void *loan_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    const image_loan *l = udata;
    (void)op;
    return size == l->size ? (void *)l->data : NULL;
}

static void *loan_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)size;
    (void)op;
    (void)udata;
    return dest == src ? dest : NULL; /* only ever the sample onto itself */
}

static void *loan_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)ptr;
    (void)size;
    (void)op;
    (void)udata;
    return NULL;
}

static herr_t loan_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    (void)ptr;
    (void)op;
    (void)udata;
    return 0;
}

static void *loan_udata_copy(void *udata) { return udata; }

static herr_t loan_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

static int h5_read_all(ing_sample *s, const ing_spec *spec, const void *data, size_t size, const char *name,
                       unsigned *direct, hsize_t *slot_t, nc_extra *x)
{
    *direct = 0;
    image_loan loan = { data, size };
    H5FD_file_image_callbacks_t cb = { loan_malloc, loan_memcpy, loan_realloc, loan_free,
                                       loan_udata_copy, loan_udata_free, &loan };
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
    hid_t fid = -1;
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 && H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
        H5Pset_file_image(fapl, (void *)data, size) >= 0)
        fid = H5Fopen("tnrec-sample-image", H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (fid < 0)
        return -1;
    hsize_t base = 0;
    hid_t fcpl = H5Fget_create_plist(fid);
    int base_ok = fcpl >= 0 && H5Pget_userblock(fcpl, &base) >= 0;
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (!base_ok) {
        H5Fclose(fid);
        return -1;
    }
    int all = 1;
    hsize_t T = 0;
    for (uint32_t k = 0; k < spec->nmoments; k++) {
        int m = spec->moment[k];
        if (direct_read(s, fid, data, size, base, ing_moment_names[m], m, 1, &slot_t[m]) == 0)
            *direct |= 1u << m;
        else
            all = 0;
        if (!T)
            T = slot_t[m];
        else if (slot_t[m] != T)
            all = 0;
    }
    if (spec->want_rfm) {
        if (direct_read(s, fid, data, size, base, TN_RFM_NAME, TN_RFM_SLOT, 0, &slot_t[TN_RFM_SLOT]) == 0)
            *direct |= 1u << TN_RFM_SLOT;
        else
            all = 0;
        if (!T)
            T = slot_t[TN_RFM_SLOT];
        else if (slot_t[TN_RFM_SLOT] != T)
            all = 0;
    }
    int rc = all && T ? h5_meta_read(s, spec, fid, (size_t)T, name, x) : -1;
    H5Fclose(fid);
    return rc;
}

/* ---- netcdf-c schema checks (under the lock) ---- */

static const char *type_name(nc_type t)
{
    switch (t) {
    case NC_BYTE: return "byte";
    case NC_CHAR: return "char";
    case NC_SHORT: return "short";
    case NC_INT: return "int";
    case NC_FLOAT: return "float";
    case NC_DOUBLE: return "double";
    case NC_UBYTE: return "ubyte";
    case NC_USHORT: return "ushort";
    case NC_UINT: return "uint";
    case NC_INT64: return "int64";
    case NC_UINT64: return "uint64";
    case NC_STRING: return "string";
    default: return "non-atomic type";
    }
}

static int is_numeric(nc_type t)
{
    return t != NC_CHAR && t != NC_STRING && t >= NC_BYTE && t <= NC_UINT64;
}

/* want: a type, or 0 for any numeric type. dims: names (NULL: any name)
 * and lengths (0: any) of each dimension. */
static tnrec_err var_check(int ncid, const char *name, const char *vname, nc_type want, int ndims,
                           const char *const *dimnames, const size_t *dimlens, int *out_varid,
                           nc_type *out_type, size_t *out_len0)
{
    int varid, nd, dimids[NC_MAX_VAR_DIMS];
    nc_type t;
    if (nc_inq_varid(ncid, vname, &varid) != NC_NOERR)
        return tnrec__fail(TNREC_ESCHEMA, "'%s': variable '%s' is missing\n"
                           "hint: not a TorNet sample, or a damaged one", name, vname);
    if (nc_inq_var(ncid, varid, NULL, &t, &nd, NULL, NULL) != NC_NOERR || nd > NC_MAX_VAR_DIMS ||
        nc_inq_vardimid(ncid, varid, dimids) != NC_NOERR)
        return tnrec__fail(TNREC_EFORMAT, "'%s': cannot inquire variable '%s'", name, vname);
    if (want ? t != want : !is_numeric(t))
        return tnrec__fail(TNREC_ESCHEMA, "'%s': variable '%s' has type %s, expected %s", name, vname,
                           type_name(t), want ? type_name(want) : "a number");
    if (nd != ndims)
        return tnrec__fail(TNREC_ESCHEMA, "'%s': variable '%s' has %d dimension(s), expected %d", name,
                           vname, nd, ndims);
    for (int i = 0; i < nd; i++) {
        char dn[NC_MAX_NAME + 1];
        size_t len;
        if (nc_inq_dim(ncid, dimids[i], dn, &len) != NC_NOERR)
            return tnrec__fail(TNREC_EFORMAT, "'%s': cannot inquire a dimension of '%s'", name, vname);
        if ((dimnames && dimnames[i] && strcmp(dn, dimnames[i]) != 0) || (dimlens[i] && len != dimlens[i]))
            return tnrec__fail(TNREC_ESCHEMA, "'%s': variable '%s' dimension %d is %s=%zu, expected %s=%zu",
                               name, vname, i, dn, len, dimnames && dimnames[i] ? dimnames[i] : "?",
                               dimlens[i]);
        if (i == 0 && out_len0)
            *out_len0 = len;
    }
    *out_varid = varid;
    if (out_type)
        *out_type = t;
    return TNREC_OK;
}

/* Text attribute (NC_CHAR or NC_STRING) of varid into buf; 1 if present. */
static int att_text(int ncid, int varid, const char *att, char *buf, size_t cap)
{
    nc_type t;
    size_t len;
    buf[0] = '\0';
    if (nc_inq_att(ncid, varid, att, &t, &len) != NC_NOERR)
        return 0;
    if (t == NC_CHAR) {
        if (len >= cap) {
            char *tmp = malloc(len + 1);
            if (!tmp || nc_get_att_text(ncid, varid, att, tmp) != NC_NOERR) {
                free(tmp);
                return 0;
            }
            memcpy(buf, tmp, cap - 1);
            buf[cap - 1] = '\0';
            free(tmp);
            return 1;
        }
        if (nc_get_att_text(ncid, varid, att, buf) != NC_NOERR)
            return 0;
        buf[len] = '\0';
        return 1;
    }
    if (t == NC_STRING && len >= 1) {
        char **v = calloc(len, sizeof *v);
        if (!v)
            return 0;
        int ok = nc_get_att_string(ncid, varid, att, v) == NC_NOERR;
        if (ok && v[0])
            snprintf(buf, cap, "%s", v[0]);
        if (ok)
            nc_free_string(len, v);
        free(v);
        return ok;
    }
    return 0;
}

/* Numeric global attribute (or a text one holding a number). */
static tnrec_err att_number(int ncid, const char *name, const char *att, int required, double *out_d,
                            long long *out_i, int *out_present)
{
    nc_type t;
    size_t len;
    if (out_present)
        *out_present = 0;
    if (nc_inq_att(ncid, NC_GLOBAL, att, &t, &len) != NC_NOERR) {
        if (!required)
            return TNREC_OK;
        return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute '%s' is missing", name, att);
    }
    if (is_numeric(t) && len >= 1) {
        double dv[8];
        long long iv[8];
        if (len > 8)
            return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute '%s' has %zu values, expected 1", name,
                               att, len);
        if (nc_get_att_double(ncid, NC_GLOBAL, att, dv) != NC_NOERR)
            return tnrec__fail(TNREC_ESCHEMA, "'%s': cannot read global attribute '%s'", name, att);
        if (out_i) {
            if (t == NC_FLOAT || t == NC_DOUBLE) {
                if (!isfinite(dv[0]) || fabs(dv[0]) > 9.0e15)
                    return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute '%s' = %g is not an integer",
                                       name, att, dv[0]);
                iv[0] = llround(dv[0]);
            } else if (nc_get_att_longlong(ncid, NC_GLOBAL, att, iv) != NC_NOERR) {
                return tnrec__fail(TNREC_ESCHEMA, "'%s': cannot read global attribute '%s'", name, att);
            }
            *out_i = iv[0];
        }
        if (out_d)
            *out_d = dv[0];
    } else if (t == NC_CHAR || t == NC_STRING) {
        char buf[64], *end;
        if (!att_text(ncid, NC_GLOBAL, att, buf, sizeof buf))
            return tnrec__fail(TNREC_ESCHEMA, "'%s': cannot read global attribute '%s'", name, att);
        double v = strtod(buf, &end);
        while (*end == ' ')
            end++;
        if (end == buf || *end || !isfinite(v))
            return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute '%s' = \"%s\" is not a number", name,
                               att, buf);
        if (out_d)
            *out_d = v;
        if (out_i)
            *out_i = llround(v);
    } else {
        return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute '%s' has type %s, expected a number", name,
                           att, type_name(t));
    }
    if (out_present)
        *out_present = 1;
    return TNREC_OK;
}


static tnrec_err nc_read_locked(ing_sample *s, const ing_spec *spec, int ncid, const char *name,
                                unsigned direct, const hsize_t *slot_t, nc_extra *x)
{
    static const char *const dims4[4] = { "time", "azimuth", "range", "sweep" };
    static const char *const dims_ts[2] = { "time", "sweep" };
    static const char *const dims_t[1] = { "time" };
    static const char *const dims_s[1] = { "sweep" };
    tnrec_err err;
    int varid;
    nc_type t;
    size_t T = 0;
    size_t any1[1] = { 0 };

    /* time first: it fixes the length of every time dimension */
    if ((err = var_check(ncid, name, "time", 0, 1, dims_t, any1, &varid, &t, &T)) != TNREC_OK)
        return err;
    if (T < spec->frames || T > TN_MAX_TIME)
        return tnrec__fail(TNREC_ESCHEMA, "'%s': dimension time=%zu, expected %u to %d frames", name, T,
                           spec->frames, TN_MAX_TIME);
    x->ntime = T;
    {
        char units[256], cal[64];
        int64_t tv[TN_MAX_TIME], tout[TN_MAX_TIME];
        double dv[TN_MAX_TIME];
        att_text(ncid, varid, "units", units, sizeof units);
        att_text(ncid, varid, "calendar", cal, sizeof cal);
        int is_int = t != NC_FLOAT && t != NC_DOUBLE;
        int rc = is_int ? nc_get_var_longlong(ncid, varid, (long long *)tv) : nc_get_var_double(ncid, varid, dv);
        if (rc != NC_NOERR)
            return tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read variable 'time': %s", name, nc_strerror(rc));
        if ((err = ing_cf_time_decode(tout, T, dv, is_int ? tv : NULL, units, cal, name)) != TNREC_OK)
            return err;
        s->first_time = tout[0];
        memcpy(s->time, tout + (T - spec->frames), spec->frames * sizeof(int64_t));
    }
    size_t tlen[1] = { T };
    {
        int lv[TN_MAX_TIME];
        if ((err = var_check(ncid, name, "frame_labels", 0, 1, dims_t, tlen, &varid, &t, NULL)) != TNREC_OK)
            return err;
        if (t == NC_FLOAT || t == NC_DOUBLE)
            return tnrec__fail(TNREC_ESCHEMA, "'%s': variable 'frame_labels' has type %s, expected ubyte", name,
                               type_name(t));
        int rc = nc_get_var_int(ncid, varid, lv);
        if (rc != NC_NOERR)
            return tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read 'frame_labels': %s", name, nc_strerror(rc));
        for (size_t i = 0; i < T; i++)
            if (lv[i] != 0 && lv[i] != 1)
                return tnrec__fail(TNREC_ESCHEMA, "'%s': frame_labels[%zu] = %d, expected 0 or 1", name, i, lv[i]);
        for (uint32_t i = 0; i < spec->frames; i++)
            s->frame_labels[i] = (uint8_t)lv[T - spec->frames + i];
    }
    {
        size_t slen[1] = { TN_NS };
        if ((err = var_check(ncid, name, "elevation", 0, 1, dims_s, slen, &varid, NULL, NULL)) != TNREC_OK)
            return err;
        if (nc_get_var_double(ncid, varid, s->elevation) != NC_NOERR)
            return tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read 'elevation'", name);
    }
    {
        size_t lens[2] = { T, TN_NS };
        float ny[TN_MAX_TIME * TN_NS];
        if ((err = var_check(ncid, name, "nyquist_velocity", 0, 2, dims_ts, lens, &varid, NULL, NULL)) != TNREC_OK)
            return err;
        if (nc_get_var_float(ncid, varid, ny) != NC_NOERR)
            return tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read 'nyquist_velocity'", name);
        memcpy(s->nyquist, ny + (T - spec->frames) * TN_NS, spec->frames * TN_NS * sizeof(float));
    }
    {
        size_t two[1] = { 2 };
        if ((err = var_check(ncid, name, "azimuth_limits", 0, 1, NULL, two, &varid, NULL, NULL)) != TNREC_OK ||
            nc_get_var_float(ncid, varid, s->azimuth_limits) != NC_NOERR)
            return err ? err : tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read 'azimuth_limits'", name);
        if ((err = var_check(ncid, name, "range_limits", 0, 1, NULL, two, &varid, NULL, NULL)) != TNREC_OK ||
            nc_get_var_float(ncid, varid, s->range_limits) != NC_NOERR)
            return err ? err : tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read 'range_limits'", name);
    }
    /* global attributes */
    double ef;
    long long ev = 0, ep = 0;
    if ((err = att_number(ncid, name, "ef_number", 1, &ef, NULL, NULL)) != TNREC_OK ||
        (err = att_number(ncid, name, "event_id", 1, NULL, &ev, NULL)) != TNREC_OK ||
        (err = att_number(ncid, name, "episode_id", 1, NULL, &ep, NULL)) != TNREC_OK ||
        (err = att_number(ncid, name, "MissingDataFlag", 0, &x->missing_flag, NULL, &x->has_missing)) != TNREC_OK)
        return err;
    if (!isfinite(ef) || ef < -1 || ef > 5 || ef != floor(ef))
        return tnrec__fail(TNREC_ESCHEMA, "'%s': ef_number = %g, expected -1 or 0..5", name, ef);
    char text[64];
    if (!att_text(ncid, NC_GLOBAL, "category", text, sizeof text))
        return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute 'category' is missing", name);
    s->meta.category = tnrec_category_parse(text);
    if (!att_text(ncid, NC_GLOBAL, "site_name", text, sizeof text) || strlen(text) > 4 || !text[0])
        return tnrec__fail(TNREC_ESCHEMA, "'%s': global attribute 'site_name' must be a 4-letter radar site", name);
    memset(s->site, 0, sizeof s->site);
    memcpy(s->site, text, strlen(text));
    s->meta.ef = (int32_t)ef;
    s->meta.event_id = ev;
    s->meta.episode_id = ep;
    s->meta.time = s->time[spec->frames - 1];
    s->meta.label = s->meta.ef >= 0 ? 1 : 0; /* the reference loader's fix of the last frame's label */

    /* the big variables: check all, read through netcdf-c the ones HDF5 could not give directly */
    size_t lens4[4] = { T, TN_NAZ, TN_NR, TN_NS };
    size_t start[4] = { T - spec->frames, 0, 0, 0 }, count[4] = { spec->frames, TN_NAZ, TN_NR, TN_NS };
    for (uint32_t k = 0; k < spec->nmoments; k++) {
        int m = spec->moment[k];
        const char *vn = ing_moment_names[m];
        if ((err = var_check(ncid, name, vn, NC_FLOAT, 4, dims4, lens4, &varid, NULL, NULL)) != TNREC_OK)
            return err;
        float fv;
        x->has_fill[m] = nc_get_att_float(ncid, varid, "_FillValue", &fv) == NC_NOERR;
        x->fill[m] = x->has_fill[m] ? fv : 0.0f;
        if ((direct & (1u << m)) && slot_t[m] == T)
            continue;
        int rc = nc_get_vara_float(ncid, varid, start, count, s->moment[m]);
        if (rc != NC_NOERR)
            return tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read variable '%s': %s", name, vn, nc_strerror(rc));
    }
    if (spec->want_rfm) {
        if ((err = var_check(ncid, name, TN_RFM_NAME, NC_UBYTE, 4, dims4, lens4, &varid, NULL, NULL)) != TNREC_OK)
            return err;
        if (!((direct & (1u << TN_RFM_SLOT)) && slot_t[TN_RFM_SLOT] == T)) {
            int rc = nc_get_vara_uchar(ncid, varid, start, count, s->rfm);
            if (rc != NC_NOERR)
                return tnrec__fail(TNREC_ECORRUPT, "'%s': cannot read variable '%s': %s", name, TN_RFM_NAME,
                                   nc_strerror(rc));
        }
    }
    return TNREC_OK;
}

/* ---- the netcdf-c path, in a child process ---- */

/* What the child hands back through shared memory. */
typedef struct nc_result {
    tnrec_err err;
    char msg[1024];
    nc_extra x;
    ing_sample small;                          /* the fixed-size fields only */
} nc_result;

#define TN_CHILD_SECONDS 60

/* Files that are not one shuffle/deflate chunk per variable, and damaged
 * files, go through netcdf-c. HDF5 1.10.8 can crash (or loop) on damaged
 * metadata (tests/fuzz found such files), so this runs in a forked child
 * with the results in a shared mapping: a crash becomes an error naming the
 * file. Called with the lock held, so no other thread is inside netcdf-c
 * or HDF5 when the child starts. */
static tnrec_err nc_read_isolated(ing_sample *s, const ing_spec *spec, const void *data, size_t size,
                                  const char *name, unsigned direct, const hsize_t *slot_t, nc_extra *x)
{
    size_t nmom = (size_t)TNREC_INGEST_MAX_FRAMES * TN_GATES * sizeof(float);
    size_t nrfm = (size_t)TNREC_INGEST_MAX_FRAMES * TN_GATES;
    size_t total = sizeof(nc_result) + TNREC_INGEST_NVARS * nmom + nrfm;
    uint8_t *shm = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        return tnrec__fail_errno(TNREC_ENOMEM, errno, "cannot map memory to read '%s'", name);
    nc_result *res = (nc_result *)shm;
    res->err = TNREC_EINTERNAL;
    snprintf(res->msg, sizeof res->msg, "'%s': the reader process ended without a result", name);
    tnrec_err err = TNREC_OK;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot start a reader process for '%s'", name);
        goto done;
    }
    if (pid == 0) {
        alarm(TN_CHILD_SECONDS);
        ing_sample cs = *s;
        for (int m = 0; m < TNREC_INGEST_NVARS; m++)
            cs.moment[m] = (float *)(shm + sizeof(nc_result) + (size_t)m * nmom);
        cs.rfm = shm + sizeof(nc_result) + TNREC_INGEST_NVARS * nmom;
        int ncid, rc = nc_open_mem(name, NC_NOWRITE, size, (void *)data, &ncid);
        tnrec_err e;
        if (rc != NC_NOERR) {
            e = tnrec__fail(rc == NC_ENOTNC || rc == NC_EHDFERR ? TNREC_EFORMAT : TNREC_ECORRUPT,
                            "'%s' cannot be opened as NetCDF-4 (%zu bytes): %s\n"
                            "hint: the file is truncated or damaged; download it again", name, size, nc_strerror(rc));
        } else {
            e = nc_read_locked(&cs, spec, ncid, name, direct, slot_t, &res->x);
            nc_close(ncid);
        }
        res->small = cs;
        snprintf(res->msg, sizeof res->msg, "%s", e ? tnrec_error_last() : "");
        res->err = e;
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            err = tnrec__fail_errno(TNREC_EIO, errno, "lost the reader process of '%s'", name);
            goto done;
        }
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        err = tnrec__fail(TNREC_ECORRUPT, "'%s': %s while reading it (signal %d): the file is damaged\n"
                          "hint: download it again", name,
                          sig == SIGALRM ? "the NetCDF/HDF5 library did not finish within 60 s"
                                         : "the NetCDF/HDF5 library crashed", sig);
        goto done;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || res->err == TNREC_EINTERNAL) {
        /* e.g. a sanitizer build, which exits instead of dying by a signal */
        err = tnrec__fail(TNREC_ECORRUPT, "'%s': the NetCDF/HDF5 library failed while reading it (exit %d): "
                          "the file is damaged\nhint: download it again", name,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto done;
    }
    if (res->err) {
        err = tnrec__fail(res->err, "%s", res->msg);
        goto done;
    }
    *x = res->x;
    const ing_sample *r = &res->small;
    memcpy(s->time, r->time, sizeof s->time);
    memcpy(s->frame_labels, r->frame_labels, sizeof s->frame_labels);
    memcpy(s->nyquist, r->nyquist, sizeof s->nyquist);
    memcpy(s->azimuth_limits, r->azimuth_limits, sizeof s->azimuth_limits);
    memcpy(s->range_limits, r->range_limits, sizeof s->range_limits);
    memcpy(s->elevation, r->elevation, sizeof s->elevation);
    memcpy(s->site, r->site, sizeof s->site);
    s->first_time = r->first_time;
    s->meta = r->meta;
    size_t n = (size_t)spec->frames * TN_GATES;
    for (uint32_t k = 0; k < spec->nmoments; k++) {
        int m = spec->moment[k];
        if (!((direct & (1u << m)) && slot_t[m] == x->ntime))
            memcpy(s->moment[m], shm + sizeof(nc_result) + (size_t)m * nmom, n * sizeof(float));
    }
    if (spec->want_rfm && !((direct & (1u << TN_RFM_SLOT)) && slot_t[TN_RFM_SLOT] == x->ntime))
        memcpy(s->rfm, shm + sizeof(nc_result) + TNREC_INGEST_NVARS * nmom, n);
done:
    munmap(shm, total);
    return err;
}

/* ---- outside the lock ---- */

/* What counts as no data in a float variable: non-finite values (the NaN
 * _FillValue), the MissingDataFlag and a non-NaN _FillValue, as bits. */
typedef struct nodata_bits {
    uint32_t flag, fill;
    int has_flag, has_fill;
} nodata_bits;

static inline uint32_t fix_nodata(uint32_t u, const nodata_bits *nb)
{
    if ((u & 0x7f800000u) == 0x7f800000u || (nb->has_flag && u == nb->flag) || (nb->has_fill && u == nb->fill))
        return 0x7fc00000u; /* NaN */
    return u;
}

/* Inflates the chunk of `slot`, keeps the last `frames` frames and undoes
 * the HDF5 shuffle (byte b of element i is at b * all + i) into dst. For
 * float variables (nb not NULL) no-data gates become NaN in the same pass. */
static tnrec_err inflate_slot(ing_sample *s, int slot, size_t elem, size_t T, uint32_t frames, void *dst,
                              const nodata_bits *nb, const char *name, const char *vname)
{
    size_t total = T * TN_GATES * elem;
    const uint8_t *src = s->chunk[slot];
    if (s->chunk_filters[slot] & FILT_DEFLATE) {
        tnrec_err err = tnrec__grow(&s->inflated, &s->inflated_cap, total, 1, "a sample");
        if (err)
            return err;
        if (!s->inflater && !(s->inflater = libdeflate_alloc_decompressor()))
            return tnrec__fail(TNREC_ENOMEM, "out of memory (inflater)");
        size_t got = 0;
        enum libdeflate_result r = libdeflate_zlib_decompress(s->inflater, s->chunk[slot], s->chunk_size[slot],
                                                              s->inflated, total, &got);
        if (r != LIBDEFLATE_SUCCESS || got != total)
            return tnrec__fail(TNREC_ECORRUPT, "'%s': compressed chunk of '%s' does not inflate to %zu bytes", name,
                               vname, total);
        src = s->inflated;
    } else if (s->chunk_size[slot] != total) {
        return tnrec__fail(TNREC_ECORRUPT, "'%s': chunk of '%s' has %zu bytes, expected %zu", name, vname,
                           s->chunk_size[slot], total);
    }
    size_t first = (T - frames) * TN_GATES, n = (size_t)frames * TN_GATES, all = T * TN_GATES;
    if (elem == 4) {
        uint8_t *out = dst;
        if (s->chunk_filters[slot] & FILT_SHUFFLE) {
            const uint8_t *p0 = src + first, *p1 = p0 + all, *p2 = p1 + all, *p3 = p2 + all;
            for (size_t i = 0; i < n; i++) {
                uint32_t u = (uint32_t)p0[i] | (uint32_t)p1[i] << 8 | (uint32_t)p2[i] << 16 | (uint32_t)p3[i] << 24;
                u = fix_nodata(u, nb);
                memcpy(out + 4 * i, &u, 4);
            }
        } else {
            const uint8_t *p = src + first * 4;
            for (size_t i = 0; i < n; i++)
            {
                uint32_t u = fix_nodata(tnrec__get_u32(p + 4 * i), nb);
                memcpy(out + 4 * i, &u, 4);
            }
        }
    } else {
        memcpy(dst, src + first * elem, n * elem); /* one-byte elements: shuffle changes nothing */
    }
    return TNREC_OK;
}

/* The HDF5 signature sits at offset 0, or after a user block at 512,
 * 1024, 2048, ... bytes (HDF5 file format, superblock). */
static int has_hdf5_signature(const void *data, size_t size)
{
    static const char sig[8] = "\x89HDF\r\n\x1a\n";
    for (size_t off = 0; off <= size && size - off >= sizeof sig; off = off ? off * 2 : 512)
        if (memcmp((const uint8_t *)data + off, sig, sizeof sig) == 0)
            return 1;
    return 0;
}

/* Little-endian unsigned of n bytes (1..8). */
static uint64_t le_uint(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* The file size the HDF5 superblock records (signature offset + its end
 * of file address), or 0 when it cannot be told (no superblock found,
 * an unknown version, or the superblock itself cut short). */
static uint64_t hdf5_expected_size(const void *data, size_t size)
{
    static const char sig[8] = "\x89HDF\r\n\x1a\n";
    const uint8_t *d = data;
    for (size_t off = 0; off <= size && size - off >= sizeof sig; off = off ? off * 2 : 512) {
        if (memcmp(d + off, sig, sizeof sig) != 0)
            continue;
        const uint8_t *sb = d + off;
        size_t left = size - off;
        if (left < 16)
            return 0;
        unsigned version = sb[8], so;
        size_t at;
        if (version == 0 || version == 1) {
            so = sb[13];
            at = 24 + (version == 1 ? 4 : 0) + 2 * (size_t)so; /* base, free-space: then the end of file */
        } else if (version == 2 || version == 3) {
            so = sb[9];
            at = 12 + 2 * (size_t)so; /* base, extension: then the end of file */
        } else {
            return 0;
        }
        if (so < 2 || so > 8 || left < at + so)
            return 0;
        return (uint64_t)off + le_uint(sb + at, so);
    }
    return 0;
}

tnrec_err ing_sample_read(ing_sample *s, const ing_spec *spec, const void *data, size_t size, const char *name)
{
    tnrec_err err = TNREC_OK;
    size_t nelem = (size_t)spec->frames * TN_GATES;
    for (uint32_t k = 0; k < spec->nmoments; k++) {
        int m = spec->moment[k];
        if (!s->moment[m] && !(s->moment[m] = malloc(TNREC_INGEST_MAX_FRAMES * TN_GATES * sizeof(float))))
            return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", name);
    }
    if (spec->want_rfm && !s->rfm && !(s->rfm = malloc(TNREC_INGEST_MAX_FRAMES * TN_GATES)))
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", name);
    if (!has_hdf5_signature(data, size))
        return tnrec__fail(TNREC_EFORMAT, "'%s' is not a NetCDF-4 (HDF5) file (%zu bytes, wrong signature)\n"
                           "hint: TorNet samples are NetCDF-4 files; check the download is complete", name, size);
    uint64_t expected = hdf5_expected_size(data, size);
    if (expected > size)
        return tnrec__fail(TNREC_EFORMAT, "'%s' is truncated: %zu bytes, its HDF5 superblock says %llu\n"
                           "hint: the copy was cut short; download it again", name, size, (unsigned long long)expected);

    unsigned direct = 0;
    hsize_t slot_t[TNREC_INGEST_NVARS + 1] = { 0 };
    nc_extra x;
    memset(&x, 0, sizeof x);
    ing_nc_lock();
    double t0 = tnrec__now_seconds();
    int fast = h5_read_all(s, spec, data, size, name, &direct, slot_t, &x) == 0;
    if (fast) {
        tnrec_error_clear();
    } else {
        memset(&x, 0, sizeof x);
        err = nc_read_isolated(s, spec, data, size, name, direct, slot_t, &x);
    }
    s->lock_seconds += tnrec__now_seconds() - t0;
    ing_nc_unlock();
    if (err)
        return err;

    s->direct_chunks = 0;
    float flagf = (float)x.missing_flag;
    for (uint32_t k = 0; k < spec->nmoments && !err; k++) {
        int m = spec->moment[k];
        nodata_bits nb = { 0, 0, x.has_missing, x.has_fill[m] && !isnan(x.fill[m]) };
        memcpy(&nb.flag, &flagf, 4);
        memcpy(&nb.fill, &x.fill[m], 4);
        if ((direct & (1u << m)) && slot_t[m] == x.ntime) {
            err = inflate_slot(s, m, 4, x.ntime, spec->frames, s->moment[m], &nb, name, ing_moment_names[m]);
            s->direct_chunks++;
        } else {
            /* read through netcdf-c: mark no data here */
            float *v = s->moment[m];
            for (size_t i = 0; i < nelem; i++) {
                uint32_t u;
                memcpy(&u, &v[i], 4);
                u = fix_nodata(u, &nb);
                memcpy(&v[i], &u, 4);
            }
        }
    }
    if (!err && spec->want_rfm && (direct & (1u << TN_RFM_SLOT)) && slot_t[TN_RFM_SLOT] == x.ntime) {
        err = inflate_slot(s, TN_RFM_SLOT, 1, x.ntime, spec->frames, s->rfm, NULL, name, TN_RFM_NAME);
        s->direct_chunks++;
    }
    if (err)
        return err;
    return TNREC_OK;
}
