/* tests/fuzz/fuzz_shard.c: libFuzzer target for the shard reader.
 *
 * Input: one mode byte, then the shard bytes. Mode bit 0 set: before
 * opening, the harness recomputes the header, record, index and trailer
 * checksums wherever the (fuzzed) layout lets it find them, so that the
 * fuzzer reaches the structure checks and the zstd decoder behind the
 * checksums; clear: the bytes are used as they are. Opened in memory; if
 * open succeeds every record is loaded, every field decoded (and its
 * statistics taken) and the shard verified. Anything but a clean error is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tnrec/tnrec.h"

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the checksums of docs/format.md where the layout is findable. */
static void fix_checksums(uint8_t *b, size_t n)
{
    if (n >= 28) {
        uint32_t hl = (uint32_t)b[12] | (uint32_t)b[13] << 8 | (uint32_t)b[14] << 16 | (uint32_t)b[15] << 24;
        if (hl >= 16 && hl <= n)
            put64(b + hl - 8, XXH3_64bits(b, hl - 8));
    }
    if (n < 48)
        return;
    uint8_t *tr = b + n - 48;
    uint64_t io = get64(tr), is = get64(tr + 8), count = get64(tr + 16);
    if (io <= n - 48 && is <= n - 48 - io) {
        for (uint64_t i = 0; i < count && i < is / 80; i++) {
            uint8_t *e = b + io + 80 * i;
            uint64_t off = get64(e), size = get64(e + 8);
            if (off <= n && size <= n - off)
                put64(e + 24, XXH3_64bits(b + off, (size_t)size));
        }
        put64(tr + 24, XXH3_64bits(b + io, (size_t)is));
    }
    put64(tr + 32, XXH3_64bits(tr, 32));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, n);
    if (data[0] & 1)
        fix_checksums(buf, n);
    tnrec_shard *s = NULL;
    tnrec_decoder *dec = NULL;
    void *dst = NULL;
    if (tnrec_shard_open_mem(&s, "fuzz.tnr", buf, n) != TNREC_OK || tnrec_decoder_create(&dec) != TNREC_OK)
        goto done;
    const tnrec_schema *sc = tnrec_shard_schema(s);
    size_t cap = 1 << 20;
    dst = malloc(cap);
    uint8_t *mask = malloc(cap);
    for (uint64_t i = 0; dst && mask && i < tnrec_shard_count(s) && i < 64; i++) {
        const tnrec_record_info *info = tnrec_shard_info(s, i);
        if (!info || tnrec_decoder_load(dec, s, i) != TNREC_OK)
            continue;
        for (uint32_t f = 0; f < sc->nfields; f++) {
            const tnrec_field *fd = &sc->fields[f];
            tnrec_dtype as = tnrec_field_decoded_dtype(fd);
            size_t need = tnrec_field_elems(fd) * tnrec_dtype_size(as);
            if (need > cap)
                continue;
            tnrec_decoder_field(dec, f, as, dst, cap);
            if (fd->encoding != TNREC_ENC_RAW) {
                tnrec_decoder_field(dec, f, TNREC_DTYPE_F16, dst, cap);
                tnrec_decoder_field_mask(dec, f, dst, cap, mask);
            }
            tnrec_decoder_field_stats(dec, f, dst, cap / sizeof(tnrec_channel_stats));
        }
    }
    free(mask);
    uint64_t bad;
    tnrec_shard_verify(s, NULL, NULL, &bad);
done:
    free(dst);
    tnrec_decoder_free(dec);
    tnrec_shard_close(s);
    free(buf);
    return 0;
}
