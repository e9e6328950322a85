/* train/data_schema.c: the training data's schema in a checkpoint, and
 * the check of a dataset against it (see data_schema.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "data_schema.h"
#include "json_util.h"

#define MASK_FIELD "range_folded_mask"
#define DEFAULT_VARIABLES "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH"

static json_t *field_json(const tnrec_field *f)
{
    json_t *o = json_object(), *shape = json_array();
    if (!o || !shape) {
        json_decref(o);
        json_decref(shape);
        return NULL;
    }
    for (uint32_t d = 0; d < f->ndim; d++)
        json_array_append_new(shape, json_integer(f->shape[d]));
    int bad = json_object_set_new(o, "name", json_string(f->name));
    bad |= json_object_set_new(o, "encoding", json_string(tnrec_encoding_name(f->encoding)));
    bad |= json_object_set_new(o, "dtype", json_string(tnrec_dtype_name(f->dtype)));
    bad |= json_object_set_new(o, "shape", shape);
    bad |= json_object_set_new(o, "offset", tnrec__json_float(f->offset));
    bad |= json_object_set_new(o, "scale", tnrec__json_float(f->scale));
    bad |= json_object_set_new(o, "nodata", tnrec__json_float(f->nodata));
    bad |= json_object_set_new(o, "qmin", tnrec__json_float(f->qmin));
    bad |= json_object_set_new(o, "qmax", tnrec__json_float(f->qmax));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends field `name` of schema sc to fields, if sc has it. -1: out of memory. */
static int append_field(json_t *fields, const tnrec_schema *sc, const char *name, const float *nodata)
{
    int i = tnrec_schema_find(sc, name);
    if (i < 0)
        return 0;
    tnrec_field tmp;
    json_t *f = field_json(tnrec_field_with_nodata(&sc->fields[i], nodata, &tmp));
    return f ? json_array_append_new(fields, f) : -1;
}

json_t *trn_data_schema_json(const tnrec_dataset *ds, const char *variables, int mask, const float *nodata)
{
    const tnrec_schema *sc = tnrec_dataset_schema(ds);
    json_t *fields = json_array(), *out = json_object();
    char buf[1024];
    int bad = !fields || !out;
    snprintf(buf, sizeof buf, "%s", variables ? variables : DEFAULT_VARIABLES);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save))
        bad = append_field(fields, sc, tok, nodata) != 0;
    if (!bad && mask)
        bad = append_field(fields, sc, MASK_FIELD, nodata) != 0;
    if (bad) {
        json_decref(fields);
        json_decref(out);
        return NULL;
    }
    if (json_object_set_new(out, "fields", fields)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* A field as recorded: names kept as text, as they are compared. */
typedef struct recorded_field {
    const char *name, *encoding, *dtype;
    uint32_t ndim, shape[TNREC_MAX_DIMS];
    float offset, scale, nodata, qmin, qmax;
} recorded_field;

static int parse_field(recorded_field *rf, const json_t *o)
{
    memset(rf, 0, sizeof *rf);
    rf->name = tnrec__json_str(o, "name");
    rf->encoding = tnrec__json_str(o, "encoding");
    rf->dtype = tnrec__json_str(o, "dtype");
    const json_t *shape = json_object_get(o, "shape");
    if (!rf->name || !rf->encoding || !rf->dtype || !json_is_array(shape) || json_array_size(shape) > TNREC_MAX_DIMS)
        return -1;
    rf->ndim = (uint32_t)json_array_size(shape);
    for (uint32_t d = 0; d < rf->ndim; d++) {
        json_int_t v = json_integer_value(json_array_get(shape, d));
        if (v < 1 || v > UINT32_MAX)
            return -1;
        rf->shape[d] = (uint32_t)v;
    }
    if (!tnrec__json_get_float(json_object_get(o, "offset"), &rf->offset) ||
        !tnrec__json_get_float(json_object_get(o, "scale"), &rf->scale) ||
        !tnrec__json_get_float(json_object_get(o, "nodata"), &rf->nodata) ||
        !tnrec__json_get_float(json_object_get(o, "qmin"), &rf->qmin) ||
        !tnrec__json_get_float(json_object_get(o, "qmax"), &rf->qmax))
        return -1;
    return 0;
}

static int same_float(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

static void shape_text(char *buf, size_t n, uint32_t ndim, const uint32_t *shape)
{
    size_t o = 0;
    buf[0] = '\0';
    if (ndim == 0)
        snprintf(buf, n, "scalar");
    for (uint32_t d = 0; d < ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%u", d ? "x" : "", shape[d]);
}

/* The first difference between dataset field f and recorded field rf, as
 * "what A in", "B in" parts: what[], a[] (dataset), b[] (recorded).
 * Returns 0 when they match. */
static int field_difference(const tnrec_field *f, const recorded_field *rf, char *what, char *a, char *b, size_t n)
{
    const char *enc = tnrec_encoding_name(f->encoding), *dt = tnrec_dtype_name(f->dtype);
    if (strcmp(enc, rf->encoding) != 0) {
        snprintf(what, n, "encoding");
        snprintf(a, n, "%s", enc);
        snprintf(b, n, "%s", rf->encoding);
        return 1;
    }
    if (strcmp(dt, rf->dtype) != 0) {
        snprintf(what, n, "dtype");
        snprintf(a, n, "%s", dt);
        snprintf(b, n, "%s", rf->dtype);
        return 1;
    }
    if (f->ndim != rf->ndim || memcmp(f->shape, rf->shape, f->ndim * sizeof f->shape[0]) != 0) {
        snprintf(what, n, "shape");
        shape_text(a, n, f->ndim, f->shape);
        shape_text(b, n, rf->ndim, rf->shape);
        return 1;
    }
    if (f->encoding == TNREC_ENC_RAW)
        return 0; /* the constants of raw fields are stored but unused */
    const struct { const char *what; float a, b; } c[] = {
        { "normalisation offset", f->offset, rf->offset },
        { "normalisation scale", f->scale, rf->scale },
        { "no-data value", f->nodata, rf->nodata },
        { "quantisation minimum", f->qmin, rf->qmin },
        { "quantisation maximum", f->qmax, rf->qmax },
    };
    int nc = f->encoding == TNREC_ENC_UINT8 ? 5 : 3;
    for (int i = 0; i < nc; i++) {
        if (same_float(c[i].a, c[i].b))
            continue;
        snprintf(what, n, "%s", c[i].what);
        snprintf(a, n, "%.9g", (double)c[i].a);
        snprintf(b, n, "%.9g", (double)c[i].b);
        return 1;
    }
    return 0;
}

static tnrec_err mismatch(const char *ds_what, const char *ds_path, const char *ref_what, const char *ref_path,
                          const char *name, const char *what, const char *a, const char *b)
{
    return tnrec__fail(TNREC_ESCHEMA,
                       "%s '%s' does not match %s '%s': field %s: %s%s%s in '%s', %s in '%s'\n"
                       "hint: datasets built with the same 'tnrec build' settings (--dtype, --norm, --frames, "
                       "--variables) hold the same kind of data; 'tnrec dump %s' shows its schema",
                       ds_what, ds_path, ref_what, ref_path, name, what, *what ? " " : "", a, ds_path, b, ref_path, ds_path);
}

tnrec_err trn_data_schema_check(const json_t *recorded, const tnrec_dataset *ds, const float *nodata,
                                const char *ds_what, const char *ds_path, const char *ref_what, const char *ref_path)
{
    const json_t *fields = json_object_get(recorded, "fields");
    if (!json_is_array(fields) || json_array_size(fields) == 0)
        return tnrec__fail(TNREC_ECORRUPT, "%s '%s': its data_schema has no fields", ref_what, ref_path);
    const tnrec_schema *sc = tnrec_dataset_schema(ds);
    for (size_t i = 0; i < json_array_size(fields); i++) {
        recorded_field rf;
        if (parse_field(&rf, json_array_get(fields, i)))
            return tnrec__fail(TNREC_ECORRUPT, "%s '%s': field %zu of its data_schema is malformed", ref_what, ref_path, i + 1);
        int k = tnrec_schema_find(sc, rf.name);
        if (k < 0)
            return mismatch(ds_what, ds_path, ref_what, ref_path, rf.name, "", "missing", "present");
        char what[96], a[96], b[96];
        tnrec_field tmp;
        if (field_difference(tnrec_field_with_nodata(&sc->fields[k], nodata, &tmp), &rf, what, a, b, sizeof a))
            return mismatch(ds_what, ds_path, ref_what, ref_path, rf.name, what, a, b);
    }
    return TNREC_OK;
}
