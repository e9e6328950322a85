/* records/records_internal.h: what the files of records/ share and nothing
 * else may use: the on-disk constants of docs/format.md, the encode and
 * decode kernels, the layout of an open shard.
 *
 * Invariant: a tnrec_shard is immutable after open, so any number of
 * threads may read it; per-thread state lives in encoders and decoders. */
#ifndef TNREC_RECORDS_INTERNAL_H
#define TNREC_RECORDS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "tnrec/records.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tnrec records are little-endian and this build supports little-endian hosts only"
#endif

/* ---- on-disk constants (docs/format.md) ---- */
#define REC_MAJOR 1u
#define REC_MINOR 0u
#define REC_MAGIC "\x89TNR\r\n\x1a\n"
#define REC_END_MAGIC "TNRIDX\r\n"
#define REC_HEADER_FIXED 28u
#define REC_FIELD_DESC 200u
#define REC_HEADER_MAX 65536u
#define REC_INDEX_ENTRY 80u
#define REC_TRAILER 48u
#define REC_KEY_LEN_MAX (TNREC_KEY_MAX - 1)
/* Largest decoded record (and field) accepted, in bytes. */
#define REC_RECORD_MAX ((uint64_t)1 << 30)

/* Header bytes for a schema (without later-minor extensions). */
static inline uint32_t rec_header_len(uint32_t nfields)
{
    return REC_HEADER_FIXED + REC_FIELD_DESC * nfields + 8u;
}

/* ---- format.c: byte layouts ---- */
/* Serialise the header of a checked schema into buf (rec_header_len bytes). */
void rec_header_put(uint8_t *buf, const tnrec_schema *s, int zstd_level);
/* Parse and check a header. buf holds header_len bytes (taken from the
 * header itself and already bounded); the caller has checked the magic and
 * the major version. name is for messages. */
tnrec_err rec_header_parse(const uint8_t *buf, uint32_t header_len, const char *name,
                           tnrec_schema *out_schema, uint32_t *out_version, int *out_level);
void rec_index_entry_put(uint8_t *p, const tnrec_record_info *info, uint32_t key_len, uint64_t key_off);
/* The ranges docs/format.md gives the metadata of an index entry (label,
 * category, EF): TNREC_OK, or err with a message naming the shard at path
 * and the record's index in it. The writer checks what it is given
 * (TNREC_EINVAL), the reader what it reads (TNREC_ECORRUPT). */
tnrec_err rec_meta_check(const tnrec_record_meta *m, tnrec_err err, const char *path, uint64_t index);
void rec_trailer_put(uint8_t *p, uint64_t index_offset, uint64_t index_size, uint64_t count,
                     uint64_t index_checksum);
/* 1 if data is exactly one zstd frame (RFC 8878) with the content
 * checksum flag set and a declared content size of raw_size. */
int rec_frame_ok(const uint8_t *data, size_t size, uint64_t raw_size);
/* Byte size a record of schema s decodes to (fields back to back). */
uint64_t rec_record_raw_size(const tnrec_schema *s);

/* ---- codec.c: element kernels ---- */
size_t rec_stored_elem_size(const tnrec_field *f);
/* Turns one field's input into its stored, possibly shuffled, bytes.
 * dst has tnrec_field_stored_bytes(f) bytes; scratch too (used for shuffle). */
void rec_field_encode(const tnrec_field *f, const void *src, uint8_t *dst, uint8_t *scratch);
/* Decodes a field's stored bytes into dst as `as` (checked by the caller:
 * raw -> own dtype, float encodings -> F32 or F16). mask may be NULL. */
void rec_field_decode(const tnrec_field *f, const uint8_t *stored, tnrec_dtype as, void *dst,
                      uint8_t *mask);
/* Per-channel statistics (tnrec_decoder_field_stats) of a field's decoded
 * values vals, of type tnrec_field_decoded_dtype(f). mask: the decoder's
 * no-data marks (float encodings), or NULL for a RAW field, where NaN is
 * no data. out has tnrec_field_channels(f) entries. */
void rec_field_stats(const tnrec_field *f, const void *vals, const uint8_t *mask, tnrec_channel_stats *out);
/* Decodes elements [first, first + rows * width) of a field as float32, row
 * i's width values to dst + i * stride (the caller checked the range): a
 * float encoding gives rec_field_decode's values, a raw uint8 field 1.0f
 * where a byte is nonzero and 0.0f elsewhere. */
void rec_field_decode_rows(const tnrec_field *f, const uint8_t *stored, size_t first, size_t rows, size_t width,
                           float *dst, size_t stride);
/* The same for nf fields of 2-element rows at once, interleaved: field j's
 * pair of row i to dst + i * 2 * nf + 2 * j (dense rows of nf pairs), with
 * a SIMD path (AVX + F16C) that converts and interleaves in one pass.
 * Returns the rows it decoded, a multiple of 4 from the first: 0 when
 * there is no SIMD path (or TNREC_CODEC_PORTABLE=1, or nf is above
 * REC_PAIRS_MAX_FIELDS); the caller decodes the rest field by field.
 * stream: write with streaming (non-temporal) stores where the rows allow
 * (an even nf, dst 16-byte aligned), for output that is not read soon. */
#define REC_PAIRS_MAX_FIELDS 16
size_t rec_fields_decode_pairs(const tnrec_field *const *f, const uint8_t *const *stored, int nf, size_t first,
                               size_t rows, float *dst, int stream);
/* One field's constants for the row conversions (codec.c, codec_avx512.c). */
typedef struct rec_rows_ctx {
    const uint8_t *stored;
    size_t n;              /* elements of the field (plane size when shuffled) */
    int shuf;              /* shuffled bytes (elements wider than one byte) */
    float nodata, qmin, span;
} rec_rows_ctx;
/* 1 when nf fields suit the one-pass interleave: every field but the last
 * of one encoding *e, the last of it or (*raw_last) a raw mask. */
int rec_pairs_encoding(const tnrec_field *const *f, int nf, tnrec_encoding *e, int *raw_last);
/* codec_avx512.c: rec_fields_decode_pairs's pass with AVX-512, 8 rows at a
 * time, for 4, 6, 7 or 8 fields of encoding e found by rec_pairs_encoding
 * (not raw; float32 only unshuffled); returns the rows it decoded (rows /
 * 8 * 8), or 0 where it does not apply. Streaming stores where asked and
 * dst is 64-byte aligned. The caller checks the CPU. */
size_t rec_fields_decode_pairs512(tnrec_encoding e, int raw_last, const rec_rows_ctx *c, int nf, size_t first,
                                  size_t rows, float *dst, int stream);

/* ---- shard_reader.c: an open shard ---- */
struct tnrec_shard {
    char *path;                 /* for messages; "<memory>" style name for mem shards */
    int fd;                     /* -1 for a shard held in memory or not holding its file open */
    int holds_fd;               /* fd counts against the process's shard descriptor budget */
    uint64_t dev, ino;          /* the file opened, checked again when a read reopens it */
    const uint8_t *mem;         /* borrowed bytes of a memory shard */
    uint64_t file_size;
    uint32_t version;
    int zstd_level;
    uint32_t header_len;
    tnrec_schema schema;
    uint64_t field_off[TNREC_MAX_FIELDS]; /* offset of each field in the raw record */
    uint64_t raw_size;
    uint64_t count;
    uint64_t index_offset, index_size, index_checksum;
    tnrec_record_info *info;
};

/* Reads len bytes at off of the shard (pread or memcpy); bounds already checked. */
tnrec_err rec_shard_read(const tnrec_shard *s, void *buf, size_t len, uint64_t off);
/* Reads record i's frame (i < count) into *buf (grown as needed), checks
 * its XXH3 and that it is one checksummed zstd frame of raw_size bytes. */
tnrec_err rec_read_frame(const tnrec_shard *s, uint64_t i, uint8_t **buf, size_t *cap);

#endif
