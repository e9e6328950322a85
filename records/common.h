/* records/common.h: private helpers shared by every module of libtnrec.
 *
 * Not installed and not for cli/, tests/ or benchmarks/, which use the
 * public headers only. records/ is the base layer, so these live here. */
#ifndef TNREC_COMMON_H
#define TNREC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tnrec/error.h"

/* Record an error for this thread and return err. fmt is printf-style; a
 * second line "hint: ..." may follow after '\n'. */
tnrec_err tnrec__fail(tnrec_err err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like tnrec__fail but appends ": strerror(errno)" for the saved errno. */
tnrec_err tnrec__fail_errno(tnrec_err err, int saved_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes room for at least `need` elements of elem_size bytes in a growable
 * array. arrayp is the address of the array pointer (of any object pointer
 * type, NULL while empty) and *cap its capacity in elements. The new
 * capacity is the larger of need and twice the old one (16 at least), so
 * appends cost amortised O(1). On success the pointer and *cap are updated
 * together, whether or not realloc moved the block; on failure
 * (TNREC_ENOMEM, message naming `what`, or an overflowing size) neither
 * changes and the old block stays valid. */
tnrec_err tnrec__grow(void *arrayp, size_t *cap, size_t need, size_t elem_size, const char *what);

/* Seconds on the monotonic clock (for rates and timeouts, not dates). */
double tnrec__now_seconds(void);

/* Little-endian loads and stores, independent of host byte order. */
static inline void tnrec__put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void tnrec__put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void tnrec__put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t tnrec__get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t tnrec__get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t tnrec__get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline void tnrec__put_f32(uint8_t *p, float f) { uint32_t u; memcpy(&u, &f, 4); tnrec__put_u32(p, u); }
static inline float tnrec__get_f32(const uint8_t *p) { uint32_t u = tnrec__get_u32(p); float f; memcpy(&f, &u, 4); return f; }

/* Durable file output: write to "<path>.tmp.<pid>", fsync, rename over
 * path, fsync the directory. A crash leaves either the old file or none,
 * never a file under `path` that looks complete but is not. */
typedef struct tnrec_atomic_file {
    int fd;
    char *path;
    char *tmp_path;
    uint64_t written;
} tnrec_atomic_file;

tnrec_err tnrec__atomic_open(tnrec_atomic_file *out, const char *path);
tnrec_err tnrec__atomic_write(tnrec_atomic_file *f, const void *buf, size_t len);
/* fsync, rename and fsync the directory; closes f on success and failure. */
tnrec_err tnrec__atomic_commit(tnrec_atomic_file *f);
/* Close and unlink the temporary file. Accepts a never-opened f (fd < 0). */
void tnrec__atomic_abort(tnrec_atomic_file *f);
/* Write a whole buffer to path atomically. */
tnrec_err tnrec__write_file_atomic(const char *path, const void *buf, size_t len);
/* fsync a directory (after a rename into it). */
tnrec_err tnrec__fsync_dir(const char *dir);

/* Read a whole file into a malloc'd buffer (NUL-terminated for text use). */
tnrec_err tnrec__read_file(const char *path, uint8_t **out, size_t *out_len);

/* pread that loops on short reads and EINTR. A short file gives TNREC_ETRUNC. */
tnrec_err tnrec__pread_full(int fd, void *buf, size_t len, uint64_t off, const char *path);

#endif
