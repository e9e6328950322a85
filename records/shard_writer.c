/* records/shard_writer.c: appends encoded records to one shard file.
 *
 * Writes go to "<path>.tmp.<pid>" through tnrec__atomic_*; the index is
 * kept in memory and written with the trailer at close, then the file is
 * fsynced and renamed. Nothing ever appears under `path` unless close
 * succeeds. After any write error the writer only accepts close (which
 * fails and removes the temporary file) or abort. The header is written
 * with the first record so that it can record the zstd level used. */
#include <stdlib.h>
#include <xxhash.h>

#include "records_internal.h"

struct tnrec_shard_writer {
    tnrec_atomic_file file;
    tnrec_schema schema;
    uint32_t header_len;
    uint64_t raw_size;
    int header_written;
    tnrec_err failed;       /* first write error, sticky */
    uint64_t count;
    uint64_t end;           /* offset after the last record */
    uint8_t *index;         /* count entries of REC_INDEX_ENTRY bytes */
    size_t index_cap;
    uint8_t *keys;          /* string table */
    size_t keys_len, keys_cap;
};

tnrec_err tnrec_shard_writer_open(tnrec_shard_writer **out, const char *path, const tnrec_schema *schema)
{
    *out = NULL;
    tnrec_err e = tnrec_schema_check(schema);
    if (e)
        return e;
    tnrec_shard_writer *w = calloc(1, sizeof *w);
    if (!w)
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening shard '%s'", path);
    w->schema = *schema;
    w->header_len = rec_header_len(schema->nfields);
    w->raw_size = rec_record_raw_size(schema);
    w->end = w->header_len;
    e = tnrec__atomic_open(&w->file, path);
    if (e) {
        free(w);
        return e;
    }
    *out = w;
    return TNREC_OK;
}

static tnrec_err write_header(tnrec_shard_writer *w, int level)
{
    uint8_t buf[REC_HEADER_FIXED + REC_FIELD_DESC * TNREC_MAX_FIELDS + 8];
    rec_header_put(buf, &w->schema, level);
    tnrec_err e = tnrec__atomic_write(&w->file, buf, w->header_len);
    if (e)
        return e;
    w->header_written = 1;
    return TNREC_OK;
}

static tnrec_err check_record(const tnrec_shard_writer *w, const tnrec_blob *rec, const tnrec_record_meta *m)
{
    const char *path = w->file.path;
    if (!rec || !rec->data || rec->size == 0)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': empty record", path);
    if (rec->raw_size != w->raw_size)
        return tnrec__fail(TNREC_ESCHEMA,
                           "shard '%s': record decodes to %llu bytes but the schema needs %llu\n"
                           "hint: encode with an encoder created from the shard's schema",
                           path, (unsigned long long)rec->raw_size, (unsigned long long)w->raw_size);
    if (XXH3_64bits(rec->data, rec->size) != rec->checksum)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': record bytes do not match their checksum (changed after encoding?)",
                           path);
    if (!rec_frame_ok(rec->data, rec->size, w->raw_size))
        return tnrec__fail(TNREC_EINVAL, "shard '%s': record is not one checksummed zstd frame of %llu bytes", path,
                           (unsigned long long)w->raw_size);
    if (!m)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': record without metadata", path);
    tnrec_err e = rec_meta_check(m, TNREC_EINVAL, path, w->count);
    if (e)
        return e;
    if (strnlen(m->key, TNREC_KEY_MAX) >= TNREC_KEY_MAX)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': record key is not NUL-terminated within %d bytes", path,
                           TNREC_KEY_MAX);
    return TNREC_OK;
}

tnrec_err tnrec_shard_writer_append(tnrec_shard_writer *w, const tnrec_blob *rec, const tnrec_record_meta *meta)
{
    if (!w)
        return tnrec__fail(TNREC_EINVAL, "tnrec_shard_writer_append: NULL writer");
    if (w->failed)
        return tnrec__fail(w->failed, "shard '%s': an earlier write failed; abort this writer", w->file.path);
    tnrec_err e = check_record(w, rec, meta);
    if (e)
        return e;
    uint32_t key_len = (uint32_t)strlen(meta->key);
    e = tnrec__grow(&w->index, &w->index_cap, (size_t)(w->count + 1) * REC_INDEX_ENTRY, 1, w->file.path);
    if (!e)
        e = tnrec__grow(&w->keys, &w->keys_cap, w->keys_len + key_len, 1, w->file.path);
    if (e)
        return e;
    if (!w->header_written)
        e = write_header(w, rec->zstd_level);
    if (!e)
        e = tnrec__atomic_write(&w->file, rec->data, rec->size);
    if (e) {
        w->failed = e;
        return e;
    }
    tnrec_record_info info = { .meta = *meta, .offset = w->end, .size = rec->size,
                               .raw_size = rec->raw_size, .checksum = rec->checksum };
    rec_index_entry_put(w->index + (size_t)w->count * REC_INDEX_ENTRY, &info, key_len, w->keys_len);
    if (key_len) /* an empty key may leave keys unallocated */
        memcpy(w->keys + w->keys_len, meta->key, key_len);
    w->keys_len += key_len;
    w->end += rec->size;
    w->count++;
    return TNREC_OK;
}

uint64_t tnrec_shard_writer_count(const tnrec_shard_writer *w) { return w ? w->count : 0; }

uint64_t tnrec_shard_writer_size(const tnrec_shard_writer *w)
{
    if (!w)
        return 0;
    return w->end + w->count * REC_INDEX_ENTRY + w->keys_len + REC_TRAILER;
}

static void writer_free(tnrec_shard_writer *w)
{
    free(w->index);
    free(w->keys);
    free(w);
}

void tnrec_shard_writer_abort(tnrec_shard_writer *w)
{
    if (!w)
        return;
    tnrec__atomic_abort(&w->file);
    writer_free(w);
}

tnrec_err tnrec_shard_writer_close(tnrec_shard_writer *w, uint64_t *out_index_checksum)
{
    if (!w)
        return tnrec__fail(TNREC_EINVAL, "tnrec_shard_writer_close: NULL writer");
    tnrec_err e = w->failed;
    if (e) {
        e = tnrec__fail(e, "shard '%s' not written: an earlier write failed", w->file.path);
        goto fail;
    }
    if (!w->header_written && (e = write_header(w, 0)) != TNREC_OK)
        goto fail;
    /* Index = entries then keys; written as one piece so its checksum is one pass. */
    size_t entries = (size_t)w->count * REC_INDEX_ENTRY;
    if ((e = tnrec__grow(&w->index, &w->index_cap, entries + w->keys_len, 1, w->file.path)) != TNREC_OK)
        goto fail;
    if (w->keys_len)
        memcpy(w->index + entries, w->keys, w->keys_len);
    uint64_t index_size = entries + w->keys_len;
    uint64_t checksum = XXH3_64bits(w->index, index_size);
    uint8_t trailer[REC_TRAILER];
    rec_trailer_put(trailer, w->end, index_size, w->count, checksum);
    if ((e = tnrec__atomic_write(&w->file, w->index, index_size)) != TNREC_OK ||
        (e = tnrec__atomic_write(&w->file, trailer, sizeof trailer)) != TNREC_OK)
        goto fail;
    e = tnrec__atomic_commit(&w->file); /* closes the file on success and failure */
    writer_free(w);
    if (!e && out_index_checksum)
        *out_index_checksum = checksum;
    return e;
fail:
    tnrec_shard_writer_abort(w);
    return e;
}
