/* tnrec/records.h: record shards and datasets (the format in docs/format.md).
 *
 * A shard is one self-describing file: header with schema, records (each an
 * independent, checksummed zstd frame), footer index. A dataset is a
 * directory of shards plus manifest.json with class counts.
 *
 * Writing: an encoder (one per thread, reusable) turns field arrays into an
 * encoded record blob; a shard or dataset writer appends blobs in a fixed
 * order, so parallel producers give byte-identical output.
 * Reading: open a shard or dataset, then a decoder (one per thread) loads
 * record i with one pread and decodes fields into caller buffers. Shards are
 * read-only after open and may be shared by any number of threads. */
#ifndef TNREC_RECORDS_H
#define TNREC_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNREC_NAME_MAX 32          /* field and dimension names, with NUL */
#define TNREC_MAX_DIMS 4
#define TNREC_MAX_FIELDS 32
#define TNREC_KEY_MAX 256          /* record key (source path), with NUL */
#define TNREC_SHARD_EXT ".tnr"
#define TNREC_MANIFEST_NAME "manifest.json"
#define TNREC_DEFAULT_SHARD_BYTES ((uint64_t)512 << 20)

/* Element types. Values are stored in the file: never renumber. */
typedef enum tnrec_dtype {
    TNREC_DTYPE_U8 = 1, TNREC_DTYPE_I8 = 2, TNREC_DTYPE_U16 = 3, TNREC_DTYPE_I16 = 4,
    TNREC_DTYPE_U32 = 5, TNREC_DTYPE_I32 = 6, TNREC_DTYPE_U64 = 7, TNREC_DTYPE_I64 = 8,
    TNREC_DTYPE_F16 = 9, TNREC_DTYPE_F32 = 10, TNREC_DTYPE_F64 = 11
} tnrec_dtype;

/* How a field is stored. Values are stored in the file: never renumber.
 * RAW keeps the input elements of `dtype` bit for bit. The three float
 * encodings take float32 physical values (NaN = no data), normalise them
 * in float32 as (x - offset) / scale and store:
 *   FLOAT32: the normalised value, no-data as NaN (decoded as `nodata`);
 *   FLOAT16: the same rounded to IEEE half (nearest even), no-data as NaN
 *            (decoded as `nodata`);
 *   UINT8:   code 1 + round((clamp(n, qmin, qmax) - qmin) / (qmax - qmin) * 254),
 *            code 0 reserved for no data (decoded as `nodata`).
 * Because no-data is stored apart from every value, the decoded mask is exact. */
typedef enum tnrec_encoding {
    TNREC_ENC_RAW = 0, TNREC_ENC_FLOAT32 = 1, TNREC_ENC_FLOAT16 = 2, TNREC_ENC_UINT8 = 3
} tnrec_encoding;

typedef struct tnrec_field {
    char name[TNREC_NAME_MAX];              /* e.g. "DBZ" */
    tnrec_encoding encoding;
    tnrec_dtype dtype;                      /* RAW: element type; float encodings: TNREC_DTYPE_F32 */
    uint32_t ndim;                          /* 0 (scalar) .. TNREC_MAX_DIMS */
    uint32_t shape[TNREC_MAX_DIMS];
    char dims[TNREC_MAX_DIMS][TNREC_NAME_MAX]; /* dimension names, e.g. "time" */
    uint32_t shuffle;                       /* 1: byte-shuffle before compression */
    float offset, scale;                    /* normalisation (float encodings) */
    float nodata;                           /* decoded value of no-data gates */
    float qmin, qmax;                       /* UINT8 quantisation range, normalised units */
} tnrec_field;

typedef struct tnrec_schema {
    uint32_t nfields;
    tnrec_field fields[TNREC_MAX_FIELDS];
} tnrec_schema;

/* Categories of TorNet samples. Stored in the index: never renumber. */
typedef enum tnrec_category {
    TNREC_CAT_TOR = 0, TNREC_CAT_NUL = 1, TNREC_CAT_WRN = 2, TNREC_CAT_UNKNOWN = 3
} tnrec_category;

/* What the footer index keeps about each record (no decompression needed). */
typedef struct tnrec_record_meta {
    int32_t label;                          /* 0 or 1 */
    int32_t category;                       /* tnrec_category */
    int32_t ef;                             /* -1 (not a tornado) .. 5 */
    int64_t event_id;
    int64_t episode_id;
    int64_t time;                           /* last frame, Unix seconds UTC */
    char key[TNREC_KEY_MAX];                /* identity, e.g. "train/2013/NUL_...nc" */
} tnrec_record_meta;

typedef struct tnrec_record_info {
    tnrec_record_meta meta;
    uint64_t offset;                        /* of the record frame in the shard */
    uint64_t size;                          /* compressed bytes */
    uint64_t raw_size;                      /* decoded bytes of all fields */
    uint64_t checksum;                      /* XXH3-64 of the compressed bytes */
} tnrec_record_info;

/* An encoded record: caller-owned, reusable growable buffer. */
typedef struct tnrec_blob {
    uint8_t *data;
    size_t size, cap;
    uint64_t raw_size;
    uint64_t checksum;
    int zstd_level;                         /* level the encoder used (the shard header records it) */
} tnrec_blob;
void tnrec_blob_free(tnrec_blob *blob);     /* frees data; blob itself is the caller's */

/* ---- schema helpers ---- */
size_t tnrec_dtype_size(tnrec_dtype dt);    /* 0 for an unknown type */
const char *tnrec_dtype_name(tnrec_dtype dt);            /* "float32", ... */
const char *tnrec_encoding_name(tnrec_encoding enc);     /* "raw", "float32", "float16", "uint8" */
const char *tnrec_category_name(int32_t cat);            /* "TOR", "NUL", "WRN", "UNKNOWN" */
int32_t tnrec_category_parse(const char *s);             /* TNREC_CAT_UNKNOWN if not one */
size_t tnrec_field_elems(const tnrec_field *f);          /* product of shape */
size_t tnrec_field_stored_bytes(const tnrec_field *f);   /* bytes in the decoded record */
/* The type tnrec_decoder_field gives by default: TNREC_DTYPE_F32 for the
 * float encodings, the field's own dtype for RAW. */
tnrec_dtype tnrec_field_decoded_dtype(const tnrec_field *f);
/* Channels of a field for statistics: the extent of its last dimension
 * (e.g. sweep), 1 for a scalar. */
size_t tnrec_field_channels(const tnrec_field *f);
/* Field f as a decoder with no-data value *nodata decodes it: f itself
 * when nodata is NULL or f is RAW, otherwise a copy of f in *tmp whose
 * nodata is *nodata (see tnrec_decoder_set_nodata). */
const tnrec_field *tnrec_field_with_nodata(const tnrec_field *f, const float *nodata, tnrec_field *tmp);
/* Index of the field named `name`, or -1. */
int tnrec_schema_find(const tnrec_schema *s, const char *name);
/* Check names, shapes, types and constants; TNREC_EINVAL naming the field. */
tnrec_err tnrec_schema_check(const tnrec_schema *s);

/* ---- encoding (any thread; one encoder per thread) ---- */
typedef struct tnrec_encoder tnrec_encoder;
/* zstd_level 1..19 (3 is a good default), or TNREC_ZSTD_LEVEL_MIN..-1:
 * zstd's fast levels, which compress and decompress faster for more
 * bytes. The schema is copied. */
#define TNREC_ZSTD_LEVEL_MIN (-7)
#define TNREC_ZSTD_LEVEL_MAX 19
tnrec_err tnrec_encoder_create(tnrec_encoder **out, const tnrec_schema *schema, int zstd_level);
void tnrec_encoder_free(tnrec_encoder *enc);
/* values[f] points to field f's input (float32 physical values for float
 * encodings, elements of dtype for RAW), in the field's shape, C order.
 * Fills blob (grown as needed, reused across calls). */
tnrec_err tnrec_encoder_encode(tnrec_encoder *enc, const void *const *values, tnrec_blob *blob);

/* ---- one shard: writing ---- */
typedef struct tnrec_shard_writer tnrec_shard_writer;
/* Starts "<path>.tmp.<pid>"; nothing appears under path until close. */
tnrec_err tnrec_shard_writer_open(tnrec_shard_writer **out, const char *path, const tnrec_schema *schema);
/* Appends an encoded record (from an encoder with the same schema). */
tnrec_err tnrec_shard_writer_append(tnrec_shard_writer *w, const tnrec_blob *rec, const tnrec_record_meta *meta);
uint64_t tnrec_shard_writer_count(const tnrec_shard_writer *w);
/* Bytes the shard would have if closed now (header + records + index + trailer). */
uint64_t tnrec_shard_writer_size(const tnrec_shard_writer *w);
/* Writes the index and trailer, fsyncs, renames to path, fsyncs the
 * directory, frees w. If out_index_checksum is not NULL it receives the
 * index checksum (the manifest records it). On failure the temp file is removed. */
tnrec_err tnrec_shard_writer_close(tnrec_shard_writer *w, uint64_t *out_index_checksum);
/* Discards the temporary file and frees w. Accepts NULL. */
void tnrec_shard_writer_abort(tnrec_shard_writer *w);

/* ---- one shard: reading (read-only after open; share across threads) ---- */
typedef struct tnrec_shard tnrec_shard;
/* Reads and checks header, trailer and index. Errors name the path. */
tnrec_err tnrec_shard_open(tnrec_shard **out, const char *path);
/* The same for a shard held in memory (e.g. fetched over the network).
 * data is borrowed and must outlive the shard; name is used in messages. */
tnrec_err tnrec_shard_open_mem(tnrec_shard **out, const char *name, const void *data, size_t size);
void tnrec_shard_close(tnrec_shard *shard);                     /* accepts NULL */
const char *tnrec_shard_path(const tnrec_shard *shard);         /* borrowed, lives with shard */
const tnrec_schema *tnrec_shard_schema(const tnrec_shard *shard);
uint64_t tnrec_shard_count(const tnrec_shard *shard);
uint64_t tnrec_shard_file_size(const tnrec_shard *shard);
uint64_t tnrec_shard_index_checksum(const tnrec_shard *shard);
uint32_t tnrec_shard_version(const tnrec_shard *shard);        /* (major << 16) | minor */
/* Borrowed pointer into the index, or NULL if i is out of range. */
const tnrec_record_info *tnrec_shard_info(const tnrec_shard *shard, uint64_t i);
/* Reads record i's compressed frame, as written, into out (grown as
 * needed, reusable) after checking its checksum: the way to copy records
 * into another shard or dataset writer without decoding them. out's
 * zstd_level is the shard header's. Any thread. */
tnrec_err tnrec_shard_read_blob(tnrec_blob *out, const tnrec_shard *shard, uint64_t i);

/* ---- decoding (one decoder per thread; no allocation per record once warm) ---- */
typedef struct tnrec_decoder tnrec_decoder;
tnrec_err tnrec_decoder_create(tnrec_decoder **out);
void tnrec_decoder_free(tnrec_decoder *dec);                    /* accepts NULL */
/* value non-NULL: from now on, no-data gates of float-encoded fields decode
 * as *value (normalised units) instead of their schema's nodata, in
 * tnrec_decoder_field, _field_mask and _field_rows (a model's input fill;
 * physical values keep NaN). NULL: the schema's values again. */
void tnrec_decoder_set_nodata(tnrec_decoder *dec, const float *value);
/* on 0: tnrec_decoder_load no longer verifies zstd's content checksum
 * (XXH64 of the decompressed bytes); the frame's XXH3 from the index is
 * still checked, so the bytes inflated are the bytes written. For readers
 * that load every record many times (the training loader); tnrec verify
 * and every other reader keep the default, on. */
void tnrec_decoder_set_content_check(tnrec_decoder *dec, int on);
/* on 1: tnrec_decoder_fields_rows may write its output with streaming
 * stores, past the cache: for output much larger than the cache that is
 * read later (the training loader's batches). Same values; default 0. */
void tnrec_decoder_set_stream(tnrec_decoder *dec, int on);
/* Reads record i with one pread, checks its checksum and decompresses it.
 * Errors name the shard and the record index. */
tnrec_err tnrec_decoder_load(tnrec_decoder *dec, const tnrec_shard *shard, uint64_t i);
/* Decodes field f of the loaded record into dst (dst_cap bytes).
 * Float encodings decode to TNREC_DTYPE_F32 (normalised, no data = nodata)
 * or TNREC_DTYPE_F16; RAW fields decode only to their own dtype. */
tnrec_err tnrec_decoder_field(tnrec_decoder *dec, uint32_t f, tnrec_dtype as, void *dst, size_t dst_cap);
/* Decodes field f as float32 and also marks no-data gates: mask[k] = 1 where
 * element k had no data (float encodings; all 0 for a RAW float32 field, and
 * TNREC_EINVAL for RAW fields of other dtypes). mask has tnrec_field_elems bytes. */
tnrec_err tnrec_decoder_field_mask(tnrec_decoder *dec, uint32_t f, float *dst, size_t dst_cap, uint8_t *mask);
/* Decodes field f in physical units as float32: x = n * scale + offset
 * (computed in float32) from the decoded normalised value n, NaN where the
 * element had no data. The inverse of the encoder's normalisation up to
 * float32 rounding (and the quantisation step for UINT8). A RAW float32
 * field is returned as stored; RAW fields of other dtypes: TNREC_EINVAL. */
tnrec_err tnrec_decoder_field_physical(tnrec_decoder *dec, uint32_t f, float *dst, size_t dst_cap);
/* Decodes elements [first, first + rows * width) of field f as float32 into
 * rows of a wider array: row i's width values go to dst + i * stride (so dst
 * holds (rows - 1) * stride + width floats). A float-encoded field gives the
 * values tnrec_decoder_field gives as TNREC_DTYPE_F32; a RAW uint8 field
 * (a mask) gives 1.0f where its byte is nonzero and 0.0f elsewhere. Lets a
 * caller interleave several fields (e.g. into NDHWC channels) as it
 * decodes, without a pass over a whole-field buffer. */
tnrec_err tnrec_decoder_field_rows(tnrec_decoder *dec, uint32_t f, uint64_t first, size_t rows, size_t width,
                                   float *dst, size_t stride);
/* tnrec_decoder_field_rows for nf fields side by side: field j's rows go
 * to dst + j * width (stride at least nf * width), the same values. Rows of
 * 2 packed densely (stride = 2 * nf, e.g. NDHWC channels of two sweeps)
 * are converted and interleaved in one vectorised pass where the CPU
 * has AVX and F16C. */
tnrec_err tnrec_decoder_fields_rows(tnrec_decoder *dec, const uint32_t *fields, size_t nf, uint64_t first,
                                    size_t rows, size_t width, float *dst, size_t stride);
/* Statistics of one channel of a decoded field (tnrec_decoder_field_stats). */
typedef struct tnrec_channel_stats {
    uint64_t count;                         /* elements of the channel */
    uint64_t data;                          /* of them with data (see tnrec_decoder_field_stats) */
    double min, max;                        /* over the elements with data; +inf, -inf when data is 0 */
    double sum;                             /* over the elements with data, in element order */
    double mean;                            /* sum / data; NaN when data is 0 */
} tnrec_channel_stats;
/* Per-channel statistics of field f of the loaded record over its values
 * as tnrec_decoder_field decodes them to tnrec_field_decoded_dtype (float
 * encodings: normalised float32; RAW: the field's own elements, float16
 * included, widened to double). Element k belongs to channel
 * k % tnrec_field_channels. An element has no data where the float
 * encodings stored no data (the mask of tnrec_decoder_field_mask) and,
 * in a RAW field, where it is NaN. out has room for out_cap channels, at
 * least tnrec_field_channels (TNREC_ERANGE otherwise). Uses the decoder's
 * own buffers: no allocation per record once warm. */
tnrec_err tnrec_decoder_field_stats(tnrec_decoder *dec, uint32_t f, tnrec_channel_stats *out, size_t out_cap);

/* ---- verification ---- */
/* Called for each bad record; return nonzero to stop early. */
typedef int (*tnrec_verify_cb)(void *ctx, const char *shard_path, uint64_t index, tnrec_err err, const char *msg);
/* Checks every record's checksum and decompressed size. *out_bad receives
 * the number of bad records. Returns TNREC_OK if all are good,
 * TNREC_ECORRUPT otherwise. */
tnrec_err tnrec_shard_verify(const tnrec_shard *shard, tnrec_verify_cb cb, void *ctx, uint64_t *out_bad);

/* ---- datasets ---- */
typedef struct tnrec_class_counts {
    uint64_t label[2];                      /* by label 0, 1 */
    uint64_t category[3];                   /* TOR, NUL, WRN */
    uint64_t ef[7];                         /* ef -1..5 at index ef + 1 */
} tnrec_class_counts;
void tnrec_class_counts_add(tnrec_class_counts *c, const tnrec_record_meta *m);

typedef struct tnrec_dataset_options {
    uint64_t max_shard_bytes;               /* 0: TNREC_DEFAULT_SHARD_BYTES */
    uint64_t max_shard_records;             /* 0: no limit */
    const char *prefix;                     /* shard name prefix; NULL: "shard" */
    int first_shard;                        /* number of the first shard (parts) */
    int keep_closed_shards;                 /* on failure or abort, keep the shards this writer
                                               closed (a resumable build adopts them later);
                                               0: remove them */
} tnrec_dataset_options;

typedef struct tnrec_dataset_writer tnrec_dataset_writer;
/* Creates dir if needed. Shards are named "<prefix>-NNNNN.tnr". */
tnrec_err tnrec_dataset_writer_open(tnrec_dataset_writer **out, const char *dir,
                                    const tnrec_schema *schema, const tnrec_dataset_options *opt);
tnrec_err tnrec_dataset_writer_append(tnrec_dataset_writer *w, const tnrec_blob *rec, const tnrec_record_meta *meta);
/* Takes the shard this writer would start next ("<prefix>-NNNNN.tnr" in its
 * directory, left whole by an earlier, interrupted run) into the dataset
 * as it is, without rewriting it: checks its header, index and schema,
 * counts its classes and lists it in the manifest. Only between shards
 * (before the first append or right after another adopt). The file is not
 * removed if the writer later fails or is aborted. out_records (may be
 * NULL) receives its record count; counts (may be NULL) is added to. */
tnrec_err tnrec_dataset_writer_adopt(tnrec_dataset_writer *w, uint64_t *out_records, tnrec_class_counts *counts);
/* Lists an input that was skipped, with the reason, in the manifest. */
tnrec_err tnrec_dataset_writer_skip(tnrec_dataset_writer *w, const char *input, const char *reason);
/* Closes the last shard and writes manifest.json atomically. build_params is
 * a JSON object text stored under "build" (NULL: {}). Frees w. On failure
 * the shards are treated as by tnrec_dataset_writer_abort. */
tnrec_err tnrec_dataset_writer_close(tnrec_dataset_writer *w, const char *build_params);
/* Stops without a manifest and frees w (accepts NULL): the shard being
 * written is removed, and so are the shards w closed unless the options
 * asked to keep them (keep_closed_shards). */
void tnrec_dataset_writer_abort(tnrec_dataset_writer *w);

typedef struct tnrec_skipped { char *input; char *reason; } tnrec_skipped;

typedef struct tnrec_dataset tnrec_dataset;
/* path: a dataset directory (with manifest.json), or one shard file. The
 * manifest is checked against the shards' record counts and index checksums. */
tnrec_err tnrec_dataset_open(tnrec_dataset **out, const char *path);
void tnrec_dataset_close(tnrec_dataset *ds);                    /* accepts NULL */
size_t tnrec_dataset_shard_count(const tnrec_dataset *ds);
const tnrec_shard *tnrec_dataset_shard(const tnrec_dataset *ds, size_t s);
uint64_t tnrec_dataset_count(const tnrec_dataset *ds);
const tnrec_schema *tnrec_dataset_schema(const tnrec_dataset *ds);
/* Maps a dataset-wide record index to (shard, index in shard). */
tnrec_err tnrec_dataset_locate(const tnrec_dataset *ds, uint64_t i, size_t *out_shard, uint64_t *out_local);
/* Counts recomputed from the shards' indexes. */
const tnrec_class_counts *tnrec_dataset_counts(const tnrec_dataset *ds);
/* Balanced class weight N / (2 N_c) for label c (0 if N_c is 0). */
double tnrec_dataset_class_weight(const tnrec_dataset *ds, int label);
size_t tnrec_dataset_skipped_count(const tnrec_dataset *ds);
const tnrec_skipped *tnrec_dataset_skipped(const tnrec_dataset *ds, size_t i);
/* The manifest's "build" object as JSON text, "{}" for a bare shard. Borrowed. */
const char *tnrec_dataset_build_params(const tnrec_dataset *ds);
/* Manifest's tnrec version, or NULL for a bare shard. Borrowed. */
const char *tnrec_dataset_tool_version(const tnrec_dataset *ds);

/* ---- NumPy .npy output ---- */
/* Writes an .npy (format 1.0, C order, little-endian) atomically. */
tnrec_err tnrec_npy_write(const char *path, tnrec_dtype dt, uint32_t ndim, const uint32_t *shape, const void *data);

#ifdef __cplusplus
}
#endif
#endif
