/* records/manifest.c: the JSON forms of a schema and of class counts in
 * manifest.json (docs/format.md 3.1), both directions.
 *
 * Parsing checks every type and range and names the manifest in errors;
 * it never trusts a count or an index from the JSON to size anything. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "json_util.h"
#include "manifest.h"

static _Thread_local int json_oom;

static void *json_alloc_noted(size_t n)
{
    void *p = malloc(n);
    if (!p)
        json_oom = 1;
    return p;
}

static void json_install(void) { json_set_alloc_funcs(json_alloc_noted, free); }

void rec_json_begin(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, json_install);
    json_oom = 0;
}

int rec_json_oom(void) { return json_oom; }

static const char *const ef_keys[7] = { "-1", "0", "1", "2", "3", "4", "5" };
static const char *const label_keys[2] = { "0", "1" };

json_t *rec_schema_to_json(const tnrec_schema *s)
{
    json_t *fields = json_array();
    for (uint32_t i = 0; fields && i < s->nfields; i++) {
        const tnrec_field *f = &s->fields[i];
        json_t *shape = json_array(), *dims = json_array();
        for (uint32_t d = 0; shape && dims && d < f->ndim; d++) {
            json_array_append_new(shape, json_integer(f->shape[d]));
            json_array_append_new(dims, json_string(f->dims[d]));
        }
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:b}", "name", f->name, "dtype",
                              tnrec_dtype_name(f->dtype), "shape", shape, "dims", dims, "encoding",
                              tnrec_encoding_name(f->encoding), "offset", tnrec__json_float(f->offset), "scale",
                              tnrec__json_float(f->scale), "nodata", tnrec__json_float(f->nodata), "qmin", tnrec__json_float(f->qmin),
                              "qmax", tnrec__json_float(f->qmax), "shuffle", (int)f->shuffle);
        if (!o || json_array_append_new(fields, o) != 0) {
            json_decref(fields);
            return NULL;
        }
    }
    return fields ? json_pack("{s:o}", "fields", fields) : NULL;
}

json_t *rec_counts_to_json(const tnrec_class_counts *c)
{
    json_t *label = json_object(), *cat = json_object(), *ef = json_object();
    if (label && cat && ef) {
        for (int i = 0; i < 2; i++)
            json_object_set_new(label, label_keys[i], json_integer((json_int_t)c->label[i]));
        for (int i = 0; i < 3; i++)
            json_object_set_new(cat, tnrec_category_name(i), json_integer((json_int_t)c->category[i]));
        for (int i = 0; i < 7; i++)
            json_object_set_new(ef, ef_keys[i], json_integer((json_int_t)c->ef[i]));
    }
    return json_pack("{s:o, s:o, s:o}", "label", label, "category", cat, "ef", ef);
}

double rec_class_weight(const tnrec_class_counts *c, int label)
{
    if (label < 0 || label > 1 || c->label[label] == 0)
        return 0.0;
    double n = (double)(c->label[0] + c->label[1]);
    return n / (2.0 * (double)c->label[label]);
}

json_t *rec_weights_to_json(const tnrec_class_counts *c)
{
    return json_pack("{s:f, s:f}", "0", rec_class_weight(c, 0), "1", rec_class_weight(c, 1));
}

/* ---- parsing ---- */

static tnrec_err bad(const char *path, const char *what)
{
    return tnrec__fail(TNREC_ECORRUPT, "manifest '%s': %s\n"
                                       "hint: the manifest is damaged or was edited; rebuild the dataset",
                       path, what);
}

static int copy_name(char *dst, const json_t *j)
{
    const char *s = json_string_value(j);
    if (!s || strlen(s) >= TNREC_NAME_MAX)
        return 0;
    memset(dst, 0, TNREC_NAME_MAX);
    memcpy(dst, s, strlen(s));
    return 1;
}

static int parse_dtype(const char *s, tnrec_dtype *out)
{
    for (int d = TNREC_DTYPE_U8; s && d <= TNREC_DTYPE_F64; d++)
        if (strcmp(s, tnrec_dtype_name((tnrec_dtype)d)) == 0) {
            *out = (tnrec_dtype)d;
            return 1;
        }
    return 0;
}

static int parse_encoding(const char *s, tnrec_encoding *out)
{
    for (int e = TNREC_ENC_RAW; s && e <= TNREC_ENC_UINT8; e++)
        if (strcmp(s, tnrec_encoding_name((tnrec_encoding)e)) == 0) {
            *out = (tnrec_encoding)e;
            return 1;
        }
    return 0;
}

static tnrec_err field_from_json(const json_t *o, const char *path, uint32_t i, tnrec_field *f)
{
    char what[160];
    snprintf(what, sizeof what, "schema field %u is malformed", i);
    if (!json_is_object(o) || !copy_name(f->name, json_object_get(o, "name")) ||
        !parse_dtype(tnrec__json_str(o, "dtype"), &f->dtype) ||
        !parse_encoding(tnrec__json_str(o, "encoding"), &f->encoding))
        return bad(path, what);
    const json_t *shape = json_object_get(o, "shape"), *dims = json_object_get(o, "dims");
    if (!json_is_array(shape) || !json_is_array(dims) || json_array_size(shape) > TNREC_MAX_DIMS ||
        json_array_size(dims) != json_array_size(shape))
        return bad(path, what);
    f->ndim = (uint32_t)json_array_size(shape);
    for (uint32_t d = 0; d < f->ndim; d++) {
        const json_t *v = json_array_get(shape, d);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > UINT32_MAX ||
            !copy_name(f->dims[d], json_array_get(dims, d)))
            return bad(path, what);
        f->shape[d] = (uint32_t)json_integer_value(v);
    }
    const json_t *shuf = json_object_get(o, "shuffle");
    if (!json_is_boolean(shuf) || !tnrec__json_get_float(json_object_get(o, "offset"), &f->offset) ||
        !tnrec__json_get_float(json_object_get(o, "scale"), &f->scale) || !tnrec__json_get_float(json_object_get(o, "nodata"), &f->nodata) ||
        !tnrec__json_get_float(json_object_get(o, "qmin"), &f->qmin) || !tnrec__json_get_float(json_object_get(o, "qmax"), &f->qmax))
        return bad(path, what);
    f->shuffle = json_is_true(shuf) ? 1u : 0u;
    return TNREC_OK;
}

tnrec_err rec_schema_from_json(const json_t *j, const char *path, tnrec_schema *out)
{
    memset(out, 0, sizeof *out);
    const json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields) || json_array_size(fields) == 0 || json_array_size(fields) > TNREC_MAX_FIELDS)
        return bad(path, "\"schema\" needs a \"fields\" array of 1 to 32 fields");
    out->nfields = (uint32_t)json_array_size(fields);
    for (uint32_t i = 0; i < out->nfields; i++) {
        tnrec_err e = field_from_json(json_array_get(fields, i), path, i, &out->fields[i]);
        if (e)
            return e;
    }
    if (tnrec_schema_check(out) != TNREC_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "invalid schema: %s", tnrec_error_last());
        return bad(path, msg);
    }
    return TNREC_OK;
}

static int get_count(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

tnrec_err rec_counts_from_json(const json_t *j, const char *path, tnrec_class_counts *out)
{
    memset(out, 0, sizeof *out);
    const json_t *label = json_object_get(j, "label"), *cat = json_object_get(j, "category"),
                 *ef = json_object_get(j, "ef");
    int ok = json_is_object(label) && json_is_object(cat) && json_is_object(ef);
    for (int i = 0; ok && i < 2; i++)
        ok = get_count(label, label_keys[i], &out->label[i]);
    for (int i = 0; ok && i < 3; i++)
        ok = get_count(cat, tnrec_category_name(i), &out->category[i]);
    for (int i = 0; ok && i < 7; i++)
        ok = get_count(ef, ef_keys[i], &out->ef[i]);
    return ok ? TNREC_OK : bad(path, "\"class_counts\" is malformed");
}

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

int rec_schema_equal(const tnrec_schema *a, const tnrec_schema *b)
{
    if (a->nfields != b->nfields)
        return 0;
    for (uint32_t i = 0; i < a->nfields; i++) {
        const tnrec_field *x = &a->fields[i], *y = &b->fields[i];
        if (strcmp(x->name, y->name) != 0 || x->encoding != y->encoding || x->dtype != y->dtype ||
            x->ndim != y->ndim || x->shuffle != y->shuffle || !same_float(x->offset, y->offset) ||
            !same_float(x->scale, y->scale) || !same_float(x->nodata, y->nodata) || !same_float(x->qmin, y->qmin) ||
            !same_float(x->qmax, y->qmax))
            return 0;
        for (uint32_t d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d] || strcmp(x->dims[d], y->dims[d]) != 0)
                return 0;
    }
    return 1;
}
