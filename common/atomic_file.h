/* common/atomic_file.h: durable file output and whole-file input
 * (common/fileio.c).
 *
 * Every file the library writes goes through tnrec__atomic_*: write to
 * "<path>.tmp.<pid>", fsync, rename over path, fsync the directory. A
 * crash leaves either the old file or none, never a file under `path`
 * that looks complete but is not. */
#ifndef TNREC_ATOMIC_FILE_H
#define TNREC_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

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
