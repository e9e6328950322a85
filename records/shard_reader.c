/* records/shard_reader.c: opens a shard (a file, or bytes in memory) and
 * checks header, trailer and index (docs/format.md 2).
 *
 * Every size and offset read from the file is checked against the file
 * size before anything is allocated or read with it, so a corrupt length
 * can neither make us allocate more than a few times the file size nor
 * read out of bounds. After open a shard is immutable: readers use pread
 * (or memcpy for memory shards) and share no cursor, so any number of
 * threads may load records from one shard at once.
 *
 * Open shards keep their file descriptors up to a process-wide budget (a
 * quarter of RLIMIT_NOFILE); a shard opened past it closes its descriptor
 * after the checks and opens the file again for each read, so a dataset
 * of thousands of shards opens under any descriptor limit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "records_internal.h"
#include "tnrec/tnrec.h"

/* Shard descriptors held open in this process. */
static size_t fds_held;

/* How many descriptors shards may hold: a quarter of the soft limit. */
static size_t fd_budget(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return 1024;
    return (size_t)(lim.rlim_cur / 4);
}

/* 1 if one more shard may keep its descriptor (and counts it), else 0. */
static int fd_take(void)
{
    if (__atomic_add_fetch(&fds_held, 1, __ATOMIC_RELAXED) <= fd_budget())
        return 1;
    __atomic_sub_fetch(&fds_held, 1, __ATOMIC_RELAXED);
    return 0;
}

static void fd_give(void) { __atomic_sub_fetch(&fds_held, 1, __ATOMIC_RELAXED); }

/* pread from a shard that does not hold its file open: open, check it is
 * still the file that was opened, read, close. */
static tnrec_err reopen_read(const tnrec_shard *s, void *buf, size_t len, uint64_t off)
{
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return tnrec__fail_errno(err == ENOENT ? TNREC_ENOTFOUND : TNREC_EIO, err, "cannot open shard '%s'", s->path);
    }
    struct stat st;
    tnrec_err e = TNREC_OK;
    if (fstat(fd, &st) != 0)
        e = tnrec__fail_errno(TNREC_EIO, errno, "cannot stat shard '%s'", s->path);
    else if ((uint64_t)st.st_dev != s->dev || (uint64_t)st.st_ino != s->ino || (uint64_t)st.st_size != s->file_size)
        e = tnrec__fail(TNREC_ECORRUPT, "shard '%s' was replaced while it was open\n"
                                        "hint: do not rebuild a dataset while it is being read", s->path);
    else
        e = tnrec__pread_full(fd, buf, len, off, s->path);
    close(fd);
    return e;
}

tnrec_err rec_shard_read(const tnrec_shard *s, void *buf, size_t len, uint64_t off)
{
    if (off > s->file_size || len > s->file_size - off)
        return tnrec__fail(TNREC_ETRUNC, "shard '%s' truncated: %zu bytes at %llu past its end (%llu)", s->path, len,
                           (unsigned long long)off, (unsigned long long)s->file_size);
    if (s->mem) {
        memcpy(buf, s->mem + off, len);
        return TNREC_OK;
    }
    if (s->fd < 0)
        return reopen_read(s, buf, len, off);
    return tnrec__pread_full(s->fd, buf, len, off, s->path);
}

tnrec_err rec_read_frame(const tnrec_shard *s, uint64_t i, uint8_t **buf, size_t *cap)
{
    /* open() proved that offset + size lies inside the record area. */
    const tnrec_record_info *r = &s->info[i];
    tnrec_err e = tnrec__grow(buf, cap, (size_t)r->size, 1, s->path);
    if (!e)
        e = rec_shard_read(s, *buf, (size_t)r->size, r->offset);
    if (e)
        return e;
    if (XXH3_64bits(*buf, (size_t)r->size) != r->checksum)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu checksum mismatch\n"
                                           "hint: the file is damaged; rebuild it or fetch it again",
                           s->path, (unsigned long long)i);
    if (!rec_frame_ok(*buf, (size_t)r->size, r->raw_size))
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu is not one checksummed zstd frame of %llu bytes",
                           s->path, (unsigned long long)i, (unsigned long long)r->raw_size);
    return TNREC_OK;
}

tnrec_err tnrec_shard_read_blob(tnrec_blob *out, const tnrec_shard *s, uint64_t i)
{
    if (!out || !s)
        return tnrec__fail(TNREC_EINVAL, "tnrec_shard_read_blob: NULL argument");
    out->size = 0;
    if (i >= s->count)
        return tnrec__fail(TNREC_ERANGE, "shard '%s': record %llu out of range (%llu records)", s->path,
                           (unsigned long long)i, (unsigned long long)s->count);
    tnrec_err e = rec_read_frame(s, i, &out->data, &out->cap);
    if (e)
        return e;
    out->size = (size_t)s->info[i].size;
    out->raw_size = s->info[i].raw_size;
    out->checksum = s->info[i].checksum;
    out->zstd_level = s->zstd_level;
    return TNREC_OK;
}

static tnrec_err parse_index(tnrec_shard *s, const uint8_t *idx)
{
    const char *path = s->path;
    uint64_t table = s->count * REC_INDEX_ENTRY;
    const uint8_t *keys = idx + table;
    uint64_t keys_len = s->index_size - table;
    uint64_t expect = s->header_len;
    for (uint64_t i = 0; i < s->count; i++) {
        const uint8_t *p = idx + i * REC_INDEX_ENTRY;
        tnrec_record_info *r = &s->info[i];
        r->offset = tnrec__get_u64(p + 0);
        r->size = tnrec__get_u64(p + 8);
        r->raw_size = tnrec__get_u64(p + 16);
        r->checksum = tnrec__get_u64(p + 24);
        r->meta.event_id = (int64_t)tnrec__get_u64(p + 32);
        r->meta.episode_id = (int64_t)tnrec__get_u64(p + 40);
        r->meta.time = (int64_t)tnrec__get_u64(p + 48);
        r->meta.label = (int32_t)tnrec__get_u32(p + 56);
        r->meta.category = (int32_t)tnrec__get_u32(p + 60);
        r->meta.ef = (int32_t)tnrec__get_u32(p + 64);
        uint32_t key_len = tnrec__get_u32(p + 68);
        uint64_t key_off = tnrec__get_u64(p + 72);
        if (r->offset != expect || r->size == 0 || r->size > s->index_offset - r->offset)
            return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu has offset %llu and size %llu outside the record area",
                               path, (unsigned long long)i, (unsigned long long)r->offset,
                               (unsigned long long)r->size);
        if (r->raw_size != s->raw_size)
            return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu decodes to %llu bytes, schema says %llu", path,
                               (unsigned long long)i, (unsigned long long)r->raw_size,
                               (unsigned long long)s->raw_size);
        tnrec_err e = rec_meta_check(&r->meta, TNREC_ECORRUPT, path, i);
        if (e)
            return e;
        if (key_len > REC_KEY_LEN_MAX || key_off > keys_len || key_len > keys_len - key_off ||
            memchr(keys + key_off, 0, key_len))
            return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu has a bad key", path, (unsigned long long)i);
        memcpy(r->meta.key, keys + key_off, key_len);
        r->meta.key[key_len] = '\0';
        expect = r->offset + r->size;
    }
    if (expect != s->index_offset)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': records end at %llu but the index starts at %llu", path,
                           (unsigned long long)expect, (unsigned long long)s->index_offset);
    return TNREC_OK;
}

static tnrec_err open_checked(tnrec_shard *s)
{
    const char *path = s->path;
    const uint64_t size = s->file_size;
    uint8_t fixed[REC_HEADER_FIXED];
    uint8_t *hdr = NULL, *idx = NULL;
    tnrec_err e;
    size_t head = size < 8 ? (size_t)size : 8;
    if (head && (e = rec_shard_read(s, fixed, head, 0)) != TNREC_OK)
        return e;
    if (size == 0 || memcmp(fixed, REC_MAGIC, head) != 0)
        return tnrec__fail(TNREC_EFORMAT, "'%s' is not a tnrec shard (%s)\n"
                                          "hint: shards are the .tnr files written by 'tnrec build'",
                           path, size == 0 ? "empty file" : "bad magic");
    if (size < REC_HEADER_FIXED)
        return tnrec__fail(TNREC_ETRUNC, "shard '%s' truncated to %llu bytes", path, (unsigned long long)size);
    if ((e = rec_shard_read(s, fixed, REC_HEADER_FIXED, 0)) != TNREC_OK)
        return e;
    uint32_t major = tnrec__get_u16(fixed + 8), minor = tnrec__get_u16(fixed + 10);
    if (major != REC_MAJOR)
        return tnrec__fail(TNREC_EFORMAT,
                           "shard '%s' has format version %u.%u; this tnrec (%s) reads version %u.x\n"
                           "hint: upgrade tnrec to read this shard",
                           path, major, minor, tnrec_version(), REC_MAJOR);
    uint32_t header_len = tnrec__get_u32(fixed + 12);
    if (header_len < rec_header_len(1) || header_len > REC_HEADER_MAX)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': header length %u out of range", path, header_len);
    if ((uint64_t)header_len + REC_TRAILER > size)
        return tnrec__fail(TNREC_ETRUNC, "shard '%s' truncated: %llu bytes, header alone needs %u", path,
                           (unsigned long long)size, header_len);
    hdr = malloc(header_len);
    if (!hdr)
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading the header of '%s'", path);
    if ((e = rec_shard_read(s, hdr, header_len, 0)) != TNREC_OK ||
        (e = rec_header_parse(hdr, header_len, path, &s->schema, &s->version, &s->zstd_level)) != TNREC_OK)
        goto done;
    s->header_len = header_len;
    uint64_t off = 0;
    for (uint32_t i = 0; i < s->schema.nfields; i++) {
        s->field_off[i] = off;
        off += tnrec_field_stored_bytes(&s->schema.fields[i]);
    }
    s->raw_size = off;

    uint8_t tr[REC_TRAILER];
    if ((e = rec_shard_read(s, tr, REC_TRAILER, size - REC_TRAILER)) != TNREC_OK)
        goto done;
    if (memcmp(tr + 40, REC_END_MAGIC, 8) != 0) {
        e = tnrec__fail(TNREC_ETRUNC, "shard '%s' truncated: no end marker after %llu bytes\n"
                                      "hint: the file was cut short (interrupted copy?); fetch or rebuild it",
                        path, (unsigned long long)size);
        goto done;
    }
    if (XXH3_64bits(tr, 32) != tnrec__get_u64(tr + 32)) {
        e = tnrec__fail(TNREC_ECORRUPT, "shard '%s': trailer checksum mismatch\n"
                                        "hint: the file is damaged; rebuild it or fetch it again",
                        path);
        goto done;
    }
    s->index_offset = tnrec__get_u64(tr + 0);
    s->index_size = tnrec__get_u64(tr + 8);
    s->count = tnrec__get_u64(tr + 16);
    s->index_checksum = tnrec__get_u64(tr + 24);
    uint64_t index_end = size - REC_TRAILER;
    if (s->index_offset < header_len || s->index_offset > index_end ||
        s->index_size != index_end - s->index_offset || s->count > s->index_size / REC_INDEX_ENTRY) {
        e = tnrec__fail(TNREC_ECORRUPT, "shard '%s': trailer gives index at %llu, %llu bytes, %llu records, "
                                        "which does not fit a %llu-byte file",
                        path, (unsigned long long)s->index_offset, (unsigned long long)s->index_size,
                        (unsigned long long)s->count, (unsigned long long)size);
        goto done;
    }
    idx = malloc(s->index_size ? s->index_size : 1);
    s->info = calloc(s->count ? s->count : 1, sizeof *s->info);
    if (!idx || !s->info) {
        e = tnrec__fail(TNREC_ENOMEM, "out of memory reading the index of '%s' (%llu records)", path,
                        (unsigned long long)s->count);
        goto done;
    }
    if ((e = rec_shard_read(s, idx, s->index_size, s->index_offset)) != TNREC_OK)
        goto done;
    if (XXH3_64bits(idx, s->index_size) != s->index_checksum) {
        e = tnrec__fail(TNREC_ECORRUPT, "shard '%s': index checksum mismatch\n"
                                        "hint: the file is damaged; rebuild it or fetch it again",
                        path);
        goto done;
    }
    e = parse_index(s, idx);
done:
    free(hdr);
    free(idx);
    return e;
}

static tnrec_err shard_new(tnrec_shard **out, const char *name)
{
    tnrec_shard *s = calloc(1, sizeof *s);
    char *p = strdup(name);
    if (!s || !p) {
        free(s);
        free(p);
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening shard '%s'", name);
    }
    s->path = p;
    s->fd = -1;
    *out = s;
    return TNREC_OK;
}

tnrec_err tnrec_shard_open(tnrec_shard **out, const char *path)
{
    *out = NULL;
    tnrec_shard *s;
    tnrec_err e = shard_new(&s, path);
    if (e)
        return e;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        int err = errno;
        e = tnrec__fail_errno(err == ENOENT ? TNREC_ENOTFOUND : TNREC_EIO, err, "cannot open shard '%s'", path);
        goto done;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        e = tnrec__fail_errno(TNREC_EIO, errno, "cannot stat shard '%s'", path);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        e = tnrec__fail(TNREC_EINVAL, "'%s' is not a regular file", path);
        goto done;
    }
    s->file_size = (uint64_t)st.st_size;
    s->dev = (uint64_t)st.st_dev;
    s->ino = (uint64_t)st.st_ino;
    e = open_checked(s);
    if (!e && !(s->holds_fd = fd_take())) {
        close(s->fd); /* past the budget: reads open the file again */
        s->fd = -1;
    }
done:
    if (e) {
        tnrec_shard_close(s);
        return e;
    }
    *out = s;
    return TNREC_OK;
}

tnrec_err tnrec_shard_open_mem(tnrec_shard **out, const char *name, const void *data, size_t size)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': NULL data", name);
    tnrec_shard *s;
    tnrec_err e = shard_new(&s, name);
    if (e)
        return e;
    static const uint8_t empty[1];
    s->mem = data ? data : empty;
    s->file_size = size;
    e = open_checked(s);
    if (e) {
        tnrec_shard_close(s);
        return e;
    }
    *out = s;
    return TNREC_OK;
}

void tnrec_shard_close(tnrec_shard *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->holds_fd)
        fd_give();
    free(s->info);
    free(s->path);
    free(s);
}

const char *tnrec_shard_path(const tnrec_shard *s) { return s->path; }
const tnrec_schema *tnrec_shard_schema(const tnrec_shard *s) { return &s->schema; }
uint64_t tnrec_shard_count(const tnrec_shard *s) { return s->count; }
uint64_t tnrec_shard_file_size(const tnrec_shard *s) { return s->file_size; }
uint64_t tnrec_shard_index_checksum(const tnrec_shard *s) { return s->index_checksum; }
uint32_t tnrec_shard_version(const tnrec_shard *s) { return s->version; }

const tnrec_record_info *tnrec_shard_info(const tnrec_shard *s, uint64_t i)
{
    if (!s || i >= s->count)
        return NULL;
    return &s->info[i];
}
