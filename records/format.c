/* records/format.c: the byte layouts of docs/format.md (header, field
 * descriptors, index entries, trailer), turned into and out of structs.
 *
 * No I/O here: callers read and bound the bytes first. Parsing checks the
 * header checksum and every value it takes from the bytes. */
#include <stdio.h>
#include <xxhash.h>
#include <zstd.h>

#include "records_internal.h"

static void put_name(uint8_t *p, const char *name)
{
    size_t n = strnlen(name, TNREC_NAME_MAX - 1);
    memset(p, 0, TNREC_NAME_MAX);
    memcpy(p, name, n);
}

void rec_header_put(uint8_t *buf, const tnrec_schema *s, int zstd_level)
{
    uint32_t len = rec_header_len(s->nfields);
    memset(buf, 0, len);
    memcpy(buf, REC_MAGIC, 8);
    tnrec__put_u16(buf + 8, (uint16_t)REC_MAJOR);
    tnrec__put_u16(buf + 10, (uint16_t)REC_MINOR);
    tnrec__put_u32(buf + 12, len);
    tnrec__put_u32(buf + 16, 0);
    tnrec__put_u32(buf + 20, (uint32_t)zstd_level);
    tnrec__put_u32(buf + 24, s->nfields);
    for (uint32_t i = 0; i < s->nfields; i++) {
        const tnrec_field *f = &s->fields[i];
        uint8_t *p = buf + REC_HEADER_FIXED + REC_FIELD_DESC * i;
        put_name(p, f->name);
        p[32] = (uint8_t)f->encoding;
        p[33] = (uint8_t)f->dtype;
        p[34] = (uint8_t)f->ndim;
        p[35] = (uint8_t)f->shuffle;
        for (uint32_t d = 0; d < TNREC_MAX_DIMS; d++) {
            tnrec__put_u32(p + 36 + 4 * d, d < f->ndim ? f->shape[d] : 0);
            put_name(p + 52 + TNREC_NAME_MAX * d, d < f->ndim ? f->dims[d] : "");
        }
        tnrec__put_f32(p + 180, f->offset);
        tnrec__put_f32(p + 184, f->scale);
        tnrec__put_f32(p + 188, f->nodata);
        tnrec__put_f32(p + 192, f->qmin);
        tnrec__put_f32(p + 196, f->qmax);
    }
    tnrec__put_u64(buf + len - 8, XXH3_64bits(buf, len - 8));
}

static int get_name(char *dst, const uint8_t *p)
{
    /* A name is at most 31 bytes followed by NULs only. */
    size_t n = strnlen((const char *)p, TNREC_NAME_MAX);
    if (n == TNREC_NAME_MAX)
        return 0;
    for (size_t k = n; k < TNREC_NAME_MAX; k++)
        if (p[k] != 0)
            return 0;
    memcpy(dst, p, TNREC_NAME_MAX);
    return 1;
}

tnrec_err rec_header_parse(const uint8_t *buf, uint32_t header_len, const char *name,
                           tnrec_schema *out_schema, uint32_t *out_version, int *out_level)
{
    uint32_t major = tnrec__get_u16(buf + 8), minor = tnrec__get_u16(buf + 10);
    uint64_t want = tnrec__get_u64(buf + header_len - 8);
    if (XXH3_64bits(buf, header_len - 8) != want)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': header checksum mismatch\n"
                                           "hint: the file is damaged; rebuild it or fetch it again",
                           name);
    uint32_t nfields = tnrec__get_u32(buf + 24);
    if (nfields == 0 || nfields > TNREC_MAX_FIELDS || rec_header_len(nfields) > header_len)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': header declares %u fields in %u bytes", name, nfields,
                           header_len);
    tnrec_schema *s = out_schema;
    memset(s, 0, sizeof *s);
    s->nfields = nfields;
    for (uint32_t i = 0; i < nfields; i++) {
        tnrec_field *f = &s->fields[i];
        const uint8_t *p = buf + REC_HEADER_FIXED + REC_FIELD_DESC * i;
        int names_ok = get_name(f->name, p);
        f->encoding = (tnrec_encoding)p[32];
        f->dtype = (tnrec_dtype)p[33];
        f->ndim = p[34];
        f->shuffle = p[35];
        for (uint32_t d = 0; d < TNREC_MAX_DIMS; d++) {
            f->shape[d] = tnrec__get_u32(p + 36 + 4 * d);
            names_ok &= get_name(f->dims[d], p + 52 + TNREC_NAME_MAX * d);
        }
        f->offset = tnrec__get_f32(p + 180);
        f->scale = tnrec__get_f32(p + 184);
        f->nodata = tnrec__get_f32(p + 188);
        f->qmin = tnrec__get_f32(p + 192);
        f->qmax = tnrec__get_f32(p + 196);
        if (!names_ok)
            return tnrec__fail(TNREC_ECORRUPT, "shard '%s': field %u has a name that is not NUL-padded", name, i);
    }
    tnrec_err e = tnrec_schema_check(s);
    if (e) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", tnrec_error_last());
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': invalid schema in header: %s", name, msg);
    }
    *out_version = (major << 16) | minor;
    *out_level = (int)tnrec__get_u32(buf + 20);
    return TNREC_OK;
}

void rec_index_entry_put(uint8_t *p, const tnrec_record_info *info, uint32_t key_len, uint64_t key_off)
{
    tnrec__put_u64(p + 0, info->offset);
    tnrec__put_u64(p + 8, info->size);
    tnrec__put_u64(p + 16, info->raw_size);
    tnrec__put_u64(p + 24, info->checksum);
    tnrec__put_u64(p + 32, (uint64_t)info->meta.event_id);
    tnrec__put_u64(p + 40, (uint64_t)info->meta.episode_id);
    tnrec__put_u64(p + 48, (uint64_t)info->meta.time);
    tnrec__put_u32(p + 56, (uint32_t)info->meta.label);
    tnrec__put_u32(p + 60, (uint32_t)info->meta.category);
    tnrec__put_u32(p + 64, (uint32_t)info->meta.ef);
    tnrec__put_u32(p + 68, key_len);
    tnrec__put_u64(p + 72, key_off);
}

tnrec_err rec_meta_check(const tnrec_record_meta *m, tnrec_err err, const char *path, uint64_t index)
{
    unsigned long long i = (unsigned long long)index;
    if (m->label != 0 && m->label != 1)
        return tnrec__fail(err, "shard '%s': record %llu has label %d (must be 0 or 1)", path, i, (int)m->label);
    if (m->category < TNREC_CAT_TOR || m->category > TNREC_CAT_UNKNOWN)
        return tnrec__fail(err, "shard '%s': record %llu has category %d (must be 0..3: TOR, NUL, WRN, unknown)",
                           path, i, (int)m->category);
    if (m->ef < -1 || m->ef > 5)
        return tnrec__fail(err, "shard '%s': record %llu has EF %d (must be -1..5)", path, i, (int)m->ef);
    return TNREC_OK;
}

void rec_trailer_put(uint8_t *p, uint64_t index_offset, uint64_t index_size, uint64_t count,
                     uint64_t index_checksum)
{
    tnrec__put_u64(p + 0, index_offset);
    tnrec__put_u64(p + 8, index_size);
    tnrec__put_u64(p + 16, count);
    tnrec__put_u64(p + 24, index_checksum);
    tnrec__put_u64(p + 32, XXH3_64bits(p, 32));
    memcpy(p + 40, REC_END_MAGIC, 8);
}

int rec_frame_ok(const uint8_t *data, size_t size, uint64_t raw_size)
{
    /* Magic number, then the frame header descriptor whose bit 2 is the
     * content checksum flag (RFC 8878, 3.1.1.1.1). */
    if (size < 6 || tnrec__get_u32(data) != 0xFD2FB528u || !(data[4] & 0x04u))
        return 0;
    return ZSTD_getFrameContentSize(data, size) == raw_size && ZSTD_findFrameCompressedSize(data, size) == size;
}
