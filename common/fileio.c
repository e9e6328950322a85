/* common/fileio.c: durable file output and whole-file input.
 *
 * Every file tnrec writes goes through tnrec__atomic_*: temporary name in
 * the same directory, fsync, rename, fsync of the directory. A reader can
 * therefore trust that a file under its final name is complete. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "fail.h"
#include "str_util.h"

tnrec_err tnrec__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot open directory '%s'", dir);
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    /* Some file systems refuse fsync on directories; that is not data loss. */
    if (rc != 0 && saved != EINVAL && saved != EROFS)
        return tnrec__fail_errno(TNREC_EIO, saved, "cannot fsync directory '%s'", dir);
    return TNREC_OK;
}

tnrec_err tnrec__atomic_open(tnrec_atomic_file *out, const char *path)
{
    out->fd = -1;
    out->written = 0;
    out->path = tnrec__strdup(path);
    size_t n = strlen(path) + 32;
    out->tmp_path = malloc(n);
    if (!out->path || !out->tmp_path) {
        free(out->path);
        free(out->tmp_path);
        out->path = out->tmp_path = NULL;
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening '%s'", path);
    }
    snprintf(out->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    out->fd = open(out->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out->fd < 0) {
        tnrec_err e = tnrec__fail_errno(TNREC_EIO, errno, "cannot create '%s'", out->tmp_path);
        free(out->path);
        free(out->tmp_path);
        out->path = out->tmp_path = NULL;
        return e;
    }
    return TNREC_OK;
}

tnrec_err tnrec__atomic_write(tnrec_atomic_file *f, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return tnrec__fail_errno(TNREC_EIO, errno, "cannot write '%s'", f->tmp_path);
        }
        p += w;
        len -= (size_t)w;
        f->written += (uint64_t)w;
    }
    return TNREC_OK;
}

static void atomic_release(tnrec_atomic_file *f)
{
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    f->fd = -1;
}

void tnrec__atomic_abort(tnrec_atomic_file *f)
{
    if (!f || f->fd < 0)
        return;
    close(f->fd);
    unlink(f->tmp_path);
    atomic_release(f);
}

tnrec_err tnrec__atomic_commit(tnrec_atomic_file *f)
{
    /* Everything that can fail for lack of memory happens before the
     * rename, so that an error never comes after the file appeared. */
    char *dir_copy = tnrec__strdup(f->path);
    if (!dir_copy) {
        tnrec_err e = tnrec__fail(TNREC_ENOMEM, "out of memory committing '%s'", f->path);
        tnrec__atomic_abort(f);
        return e;
    }
    if (fsync(f->fd) != 0) {
        free(dir_copy);
        tnrec_err e = tnrec__fail_errno(TNREC_EIO, errno, "cannot fsync '%s'", f->tmp_path);
        tnrec__atomic_abort(f);
        return e;
    }
    if (close(f->fd) != 0) {
        free(dir_copy);
        tnrec_err e = tnrec__fail_errno(TNREC_EIO, errno, "cannot close '%s'", f->tmp_path);
        unlink(f->tmp_path);
        atomic_release(f);
        return e;
    }
    f->fd = -1;
    if (rename(f->tmp_path, f->path) != 0) {
        free(dir_copy);
        tnrec_err e = tnrec__fail_errno(TNREC_EIO, errno, "cannot rename '%s' to '%s'", f->tmp_path, f->path);
        unlink(f->tmp_path);
        atomic_release(f);
        return e;
    }
    tnrec_err e = tnrec__fsync_dir(dirname(dir_copy));
    free(dir_copy);
    atomic_release(f);
    return e;
}

tnrec_err tnrec__write_file_atomic(const char *path, const void *buf, size_t len)
{
    tnrec_atomic_file f;
    tnrec_err e = tnrec__atomic_open(&f, path);
    if (e)
        return e;
    e = tnrec__atomic_write(&f, buf, len);
    if (e) {
        tnrec__atomic_abort(&f);
        return e;
    }
    return tnrec__atomic_commit(&f);
}

tnrec_err tnrec__pread_full(int fd, void *buf, size_t len, uint64_t off, const char *path)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return tnrec__fail_errno(TNREC_EIO, errno, "cannot read '%s' at byte %llu", path,
                                     (unsigned long long)off);
        }
        if (r == 0)
            return tnrec__fail(TNREC_ETRUNC, "'%s' truncated: end of file at byte %llu", path,
                               (unsigned long long)off);
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return TNREC_OK;
}

tnrec_err tnrec__read_file(const char *path, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tnrec__fail_errno(errno == ENOENT ? TNREC_ENOTFOUND : TNREC_EIO, errno, "cannot open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        tnrec_err e = tnrec__fail_errno(TNREC_EIO, errno, "cannot stat '%s'", path);
        close(fd);
        return e;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s' (%zu bytes)", path, n);
    }
    tnrec_err e = n ? tnrec__pread_full(fd, buf, n, 0, path) : TNREC_OK;
    close(fd);
    if (e) {
        free(buf);
        return e;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return TNREC_OK;
}
