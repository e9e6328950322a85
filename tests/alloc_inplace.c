/* tests/alloc_inplace.c: a malloc whose realloc grows blocks in place.
 *
 * glibc's realloc grows a block in place when the memory after it is free,
 * and then returns the same pointer. Code that updates an array's capacity
 * only when realloc moved the block keeps the old capacity, and later
 * writes run past the end of the block. AddressSanitizer and valgrind
 * never see this: their realloc always moves.
 *
 * This allocator gives every block hidden room after it (twice its size
 * plus 256 bytes) filled with poison bytes, and a realloc that fits in that
 * room returns the same pointer. Every realloc and free checks that the
 * poison after the block's requested size is intact; a write past the end
 * prints the block and offset and aborts. malloc_usable_size answers the
 * requested size, so nothing may use the room legitimately.
 *
 * Linked into a test program it replaces malloc there; built as a module
 * it is an LD_PRELOAD shim for the tnrec binary. A program may define
 * tnrec_alloc_admit() (return 0 to fail an allocation with ENOMEM) for
 * failure injection. Not built under AddressSanitizer, which owns malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_INPLACE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_INPLACE_OFF 1
#endif
#endif

#ifndef ALLOC_INPLACE_OFF
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_inplace.h"

/* glibc's own allocator, under the names it exports for this purpose. */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);

#define IP_MAGIC 0x7e57a110c8ed5a1bull
#define IP_POISON 0xA5
#define IP_HEADER 32u /* sizeof(ip_header), a multiple of 16 */

typedef struct ip_header {
    uint64_t magic;
    void *base;  /* what __libc_malloc returned */
    size_t size; /* requested bytes */
    size_t room; /* bytes usable before the next block: size <= room */
} ip_header;

_Static_assert(sizeof(ip_header) == IP_HEADER, "header size");

static size_t grown_in_place, moved;

size_t tnrec_alloc_inplace_grown(void) { return __atomic_load_n(&grown_in_place, __ATOMIC_RELAXED); }
size_t tnrec_alloc_inplace_moved(void) { return __atomic_load_n(&moved, __ATOMIC_RELAXED); }

static int admitted(void)
{
    if (tnrec_alloc_admit && !tnrec_alloc_admit()) {
        errno = ENOMEM;
        return 0;
    }
    return 1;
}

static ip_header *header_of(void *p) { return (ip_header *)((char *)p - IP_HEADER); }

/* Writes a message without allocating and aborts. */
static void die(const char *what, const void *p, size_t a, size_t b)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "alloc_inplace: %s (block %p, %zu, %zu)\n", what, p, a, b);
    if (n > 0 && write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
        abort();
    abort();
}

/* The first byte of the room past the requested size that is not poison. */
static void check_block(void *p)
{
    ip_header *h = header_of(p);
    if (h->magic != IP_MAGIC)
        die("free or realloc of a pointer this allocator did not return", p, 0, 0);
    const unsigned char *c = p;
    for (size_t i = h->size; i < h->room; i++)
        if (c[i] != IP_POISON)
            die("written past its end: requested size, offset of the first damaged byte", p, h->size, i);
}

/* A new block of n bytes aligned to align (a power of two >= 16). */
static void *block_new(size_t n, size_t align)
{
    if (n > (SIZE_MAX - 4096) / 2 - align) {
        errno = ENOMEM;
        return NULL;
    }
    size_t room = 2 * n + 256;
    char *base = __libc_malloc(IP_HEADER + align + room);
    if (!base)
        return NULL;
    uintptr_t at = ((uintptr_t)base + IP_HEADER + align - 1) & ~(uintptr_t)(align - 1);
    char *p = (char *)at;
    ip_header *h = header_of(p);
    h->magic = IP_MAGIC;
    h->base = base;
    h->size = n;
    h->room = room;
    memset(p + n, IP_POISON, room - n);
    return p;
}

static void block_free(void *p)
{
    check_block(p);
    ip_header *h = header_of(p);
    h->magic = 0;
    __libc_free(h->base);
}

void *malloc(size_t n)
{
    return admitted() ? block_new(n, 16) : NULL;
}

void *calloc(size_t n, size_t m)
{
    if (m && n > SIZE_MAX / m) {
        errno = ENOMEM;
        return NULL;
    }
    /* block_new, not malloc: malloc + memset would be folded into calloc. */
    void *p = admitted() ? block_new(n * m, 16) : NULL;
    if (p)
        memset(p, 0, n * m);
    return p;
}

void free(void *p)
{
    if (p)
        block_free(p);
}

/* Same pointer whenever the new size fits the block's room. */
void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    check_block(p);
    if (!admitted())
        return NULL;
    ip_header *h = header_of(p);
    if (n <= h->room) {
        if (n < h->size)
            memset((char *)p + n, IP_POISON, h->size - n);
        else if (n > h->size)
            __atomic_add_fetch(&grown_in_place, 1, __ATOMIC_RELAXED);
        h->size = n; /* grown bytes keep the poison: indeterminate, as realloc's are */
        return p;
    }
    void *q = block_new(n, 16);
    if (!q)
        return NULL;
    memcpy(q, p, h->size);
    block_free(p);
    __atomic_add_fetch(&moved, 1, __ATOMIC_RELAXED);
    return q;
}

static void *aligned(size_t align, size_t n)
{
    if (align == 0 || (align & (align - 1)) != 0 || align > 1u << 20) {
        errno = EINVAL;
        return NULL;
    }
    return admitted() ? block_new(n, align < 16 ? 16 : align) : NULL;
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align % sizeof(void *) != 0)
        return EINVAL;
    void *p = aligned(align, n);
    if (!p)
        return errno;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n) { return aligned(align, n); }
void *memalign(size_t align, size_t n) { return aligned(align, n); }
void *valloc(size_t n) { return aligned((size_t)sysconf(_SC_PAGESIZE), n); }

void *pvalloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return aligned(page, (n + page - 1) / page * page);
}

size_t malloc_usable_size(void *p) { return p ? header_of(p)->size : 0; }
#endif
