/* common/le_bytes.h: little-endian loads and stores, independent of the
 * host's byte order (the shard format and checkpoints are little-endian). */
#ifndef TNREC_LE_BYTES_H
#define TNREC_LE_BYTES_H

#include <stdint.h>
#include <string.h>

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

#endif
