/* common/splitmix64.h: splitmix64 (Steele, Lea, Flood 2014), the one
 * definition for the CPU code and the CUDA kernels.
 *
 * A counter-based generator: value i of a stream depends on the stream's
 * seed and i only, so the CPU reference (train/reference.c) and the GPU
 * kernels (train/gpu/kernels.cu) draw the same dropout masks bit for bit,
 * and loaders, initialisers and the synthesiser can jump anywhere in a
 * stream. Plain C; usable from C and from nvcc (host and device). */
#ifndef TNREC_SPLITMIX64_H
#define TNREC_SPLITMIX64_H

#include <stdint.h>

#ifdef __CUDACC__
#define TNREC__HOST_DEVICE __host__ __device__
#else
#define TNREC__HOST_DEVICE
#endif

/* The golden-ratio increment between consecutive states. */
#define TNREC__SPLITMIX64_GAMMA 0x9E3779B97F4A7C15ull

/* The output function alone (variant 13 of Stafford's mixers): a
 * bijection of 64-bit words that spreads every input bit. */
TNREC__HOST_DEVICE static inline uint64_t tnrec__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The value that follows state z: tnrec__mix64(z + gamma). As a counter
 * generator, value i of seed s is tnrec__splitmix64(s + i). */
TNREC__HOST_DEVICE static inline uint64_t tnrec__splitmix64(uint64_t z)
{
    return tnrec__mix64(z + TNREC__SPLITMIX64_GAMMA);
}

/* Advances *state and returns the next value of the stream. */
TNREC__HOST_DEVICE static inline uint64_t tnrec__splitmix64_next(uint64_t *state)
{
    *state += TNREC__SPLITMIX64_GAMMA;
    return tnrec__mix64(*state);
}

#endif
