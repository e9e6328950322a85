/* records/schema.c: names and sizes of dtypes, encodings and categories,
 * and the rules a schema must obey (docs/format.md 2.2).
 *
 * Pure functions over caller data: no allocation, no I/O. */
#include <math.h>
#include <string.h>

#include "records_internal.h"

size_t tnrec_dtype_size(tnrec_dtype dt)
{
    switch (dt) {
    case TNREC_DTYPE_U8: case TNREC_DTYPE_I8: return 1;
    case TNREC_DTYPE_U16: case TNREC_DTYPE_I16: case TNREC_DTYPE_F16: return 2;
    case TNREC_DTYPE_U32: case TNREC_DTYPE_I32: case TNREC_DTYPE_F32: return 4;
    case TNREC_DTYPE_U64: case TNREC_DTYPE_I64: case TNREC_DTYPE_F64: return 8;
    }
    return 0;
}

const char *tnrec_dtype_name(tnrec_dtype dt)
{
    switch (dt) {
    case TNREC_DTYPE_U8: return "uint8";
    case TNREC_DTYPE_I8: return "int8";
    case TNREC_DTYPE_U16: return "uint16";
    case TNREC_DTYPE_I16: return "int16";
    case TNREC_DTYPE_U32: return "uint32";
    case TNREC_DTYPE_I32: return "int32";
    case TNREC_DTYPE_U64: return "uint64";
    case TNREC_DTYPE_I64: return "int64";
    case TNREC_DTYPE_F16: return "float16";
    case TNREC_DTYPE_F32: return "float32";
    case TNREC_DTYPE_F64: return "float64";
    }
    return "unknown";
}

const char *tnrec_encoding_name(tnrec_encoding enc)
{
    switch (enc) {
    case TNREC_ENC_RAW: return "raw";
    case TNREC_ENC_FLOAT32: return "float32";
    case TNREC_ENC_FLOAT16: return "float16";
    case TNREC_ENC_UINT8: return "uint8";
    }
    return "unknown";
}

const char *tnrec_category_name(int32_t cat)
{
    switch (cat) {
    case TNREC_CAT_TOR: return "TOR";
    case TNREC_CAT_NUL: return "NUL";
    case TNREC_CAT_WRN: return "WRN";
    default: return "UNKNOWN";
    }
}

int32_t tnrec_category_parse(const char *s)
{
    if (!s)
        return TNREC_CAT_UNKNOWN;
    for (int32_t c = TNREC_CAT_TOR; c <= TNREC_CAT_WRN; c++)
        if (strcmp(s, tnrec_category_name(c)) == 0)
            return c;
    return TNREC_CAT_UNKNOWN;
}

size_t tnrec_field_elems(const tnrec_field *f)
{
    size_t n = 1;
    for (uint32_t d = 0; d < f->ndim && d < TNREC_MAX_DIMS; d++)
        n *= f->shape[d];
    return n;
}

tnrec_dtype tnrec_field_decoded_dtype(const tnrec_field *f)
{
    return f->encoding == TNREC_ENC_RAW ? f->dtype : TNREC_DTYPE_F32;
}

size_t tnrec_field_channels(const tnrec_field *f)
{
    return f->ndim && f->ndim <= TNREC_MAX_DIMS ? f->shape[f->ndim - 1] : 1;
}

const tnrec_field *tnrec_field_with_nodata(const tnrec_field *f, const float *nodata, tnrec_field *tmp)
{
    if (!nodata || f->encoding == TNREC_ENC_RAW)
        return f;
    *tmp = *f;
    tmp->nodata = *nodata;
    return tmp;
}

size_t rec_stored_elem_size(const tnrec_field *f)
{
    switch (f->encoding) {
    case TNREC_ENC_RAW: return tnrec_dtype_size(f->dtype);
    case TNREC_ENC_FLOAT32: return 4;
    case TNREC_ENC_FLOAT16: return 2;
    case TNREC_ENC_UINT8: return 1;
    }
    return 0;
}

size_t tnrec_field_stored_bytes(const tnrec_field *f)
{
    return tnrec_field_elems(f) * rec_stored_elem_size(f);
}

uint64_t rec_record_raw_size(const tnrec_schema *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->nfields; i++)
        n += tnrec_field_stored_bytes(&s->fields[i]);
    return n;
}

int tnrec_schema_find(const tnrec_schema *s, const char *name)
{
    for (uint32_t i = 0; i < s->nfields && i < TNREC_MAX_FIELDS; i++)
        if (strncmp(s->fields[i].name, name, TNREC_NAME_MAX) == 0)
            return (int)i;
    return -1;
}

static int name_ok(const char *name, int may_be_empty)
{
    size_t n = strnlen(name, TNREC_NAME_MAX);
    if (n == TNREC_NAME_MAX)
        return 0; /* not NUL-terminated */
    return may_be_empty || n > 0;
}

static tnrec_err check_field(const tnrec_field *f, uint32_t i)
{
    if (!name_ok(f->name, 0))
        return tnrec__fail(TNREC_EINVAL, "schema field %u: name is empty or longer than %d bytes", i,
                           TNREC_NAME_MAX - 1);
    const char *nm = f->name;
    if (f->encoding != TNREC_ENC_RAW && f->encoding != TNREC_ENC_FLOAT32 &&
        f->encoding != TNREC_ENC_FLOAT16 && f->encoding != TNREC_ENC_UINT8)
        return tnrec__fail(TNREC_EINVAL, "schema field '%s': unknown encoding %d", nm, (int)f->encoding);
    if (tnrec_dtype_size(f->dtype) == 0)
        return tnrec__fail(TNREC_EINVAL, "schema field '%s': unknown dtype %d", nm, (int)f->dtype);
    if (f->encoding != TNREC_ENC_RAW && f->dtype != TNREC_DTYPE_F32)
        return tnrec__fail(TNREC_EINVAL,
                           "schema field '%s': encoding %s needs dtype float32 input (got %s)\n"
                           "hint: convert the input to float32 or use the raw encoding",
                           nm, tnrec_encoding_name(f->encoding), tnrec_dtype_name(f->dtype));
    if (f->ndim > TNREC_MAX_DIMS)
        return tnrec__fail(TNREC_EINVAL, "schema field '%s': %u dimensions (at most %d)", nm, f->ndim,
                           TNREC_MAX_DIMS);
    if (f->shuffle > 1)
        return tnrec__fail(TNREC_EINVAL, "schema field '%s': shuffle flag must be 0 or 1", nm);
    uint64_t elems = 1;
    for (uint32_t d = 0; d < TNREC_MAX_DIMS; d++) {
        if (d < f->ndim) {
            if (f->shape[d] == 0)
                return tnrec__fail(TNREC_EINVAL, "schema field '%s': dimension %u has size 0", nm, d);
            elems *= f->shape[d];
            if (elems > REC_RECORD_MAX)
                return tnrec__fail(TNREC_EINVAL, "schema field '%s': more than %llu elements", nm,
                                   (unsigned long long)REC_RECORD_MAX);
        } else if (f->shape[d] != 0) {
            return tnrec__fail(TNREC_EINVAL, "schema field '%s': shape[%u] set beyond ndim %u", nm, d, f->ndim);
        }
        if (!name_ok(f->dims[d], 1))
            return tnrec__fail(TNREC_EINVAL, "schema field '%s': dimension name %u longer than %d bytes", nm, d,
                               TNREC_NAME_MAX - 1);
    }
    if (f->encoding != TNREC_ENC_RAW) {
        if (!isfinite(f->offset) || !isfinite(f->scale) || f->scale == 0.0f)
            return tnrec__fail(TNREC_EINVAL, "schema field '%s': offset must be finite and scale finite, non-zero",
                               nm);
        if (f->encoding == TNREC_ENC_UINT8 && !(isfinite(f->qmin) && isfinite(f->qmax) && f->qmin < f->qmax &&
                                                    isfinite(f->qmax - f->qmin)))
            return tnrec__fail(TNREC_EINVAL, "schema field '%s': uint8 needs finite qmin < qmax (got %g, %g)", nm,
                               (double)f->qmin, (double)f->qmax);
    }
    return TNREC_OK;
}

tnrec_err tnrec_schema_check(const tnrec_schema *s)
{
    if (!s)
        return tnrec__fail(TNREC_EINVAL, "schema is NULL");
    if (s->nfields == 0 || s->nfields > TNREC_MAX_FIELDS)
        return tnrec__fail(TNREC_EINVAL, "schema has %u fields (1..%d allowed)", s->nfields, TNREC_MAX_FIELDS);
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nfields; i++) {
        tnrec_err e = check_field(&s->fields[i], i);
        if (e)
            return e;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(s->fields[i].name, s->fields[j].name) == 0)
                return tnrec__fail(TNREC_EINVAL, "schema field '%s' appears twice", s->fields[i].name);
        total += tnrec_field_stored_bytes(&s->fields[i]);
        if (total > REC_RECORD_MAX)
            return tnrec__fail(TNREC_EINVAL, "schema: a record would decode to more than %llu bytes",
                               (unsigned long long)REC_RECORD_MAX);
    }
    return TNREC_OK;
}

void tnrec_class_counts_add(tnrec_class_counts *c, const tnrec_record_meta *m)
{
    if (m->label == 0 || m->label == 1)
        c->label[m->label]++;
    if (m->category >= TNREC_CAT_TOR && m->category <= TNREC_CAT_WRN)
        c->category[m->category]++;
    if (m->ef >= -1 && m->ef <= 5)
        c->ef[m->ef + 1]++;
}
