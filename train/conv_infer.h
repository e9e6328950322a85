/* train/conv_infer.h: private to train/: the inference Conv3D with batch
 * norm and activation in registers, float32 and bfloat16
 * (train/conv_infer.c). */
#ifndef TNREC_TRAIN_CONV_INFER_H
#define TNREC_TRAIN_CONV_INFER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* float -> bfloat16, round to nearest even (a NaN stays a NaN). */
static inline uint16_t trn_bf16_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* 1 where the CPU has AVX-512 (the kernels below run); 0 elsewhere, where
 * inference goes through conv_fast.c and the reference layers. */
int trn_infer_fast_ok(void);
/* 1 where the CPU has avx512_bf16 (vdpbf16ps) and the environment does
 * not say TNREC_CPU_BF16=off; 0: bfloat16 requests compute in float32. */
int trn_infer_bf16_ok(void);

/* One convolution: n samples of d x h x w, ci input channels as stored in
 * the padded input (even for bf16), co output channels (a multiple of
 * 16); act 0: none, 1: LeakyReLU with slope alpha, 2: ReLU. */
typedef struct trn_infer_conv {
    int n, d, h, w, ci, co;
    int act;
    float alpha;
    int bf16;
} trn_infer_conv;

/* ep (4 x co floats) for trn_conv3d_infer: batch norm's gamma, moving
 * mean, 1/sqrt(moving variance + eps) and beta per channel, as
 * reference.c computes them; gamma NULL: the identity. */
void trn_infer_epilogue(float *ep, const float *gamma, const float *beta, const float *mmean,
                        const float *mvar, int co);
/* Rows (n * d * h of them) of w positions x ci channels into rows of
 * w + 2 positions x cp channels (cp >= ci): zero positions at both ends,
 * zero channels from ci to cp. The bf16 version rounds to nearest even. */
void trn_infer_pad_f32(float *xp, const float *x, int rows, int w, int ci, int cp);
void trn_infer_pad_bf16(uint16_t *xp, const float *x, int rows, int w, int ci, int cp);
/* A 27 x ci x co float kernel as 27 x cp/2 x co x 2 bfloat16 (channel
 * pairs per output lane; channels from ci to cp zero); cp even. */
void trn_infer_pack_bf16(uint16_t *kp, const float *k, int ci, int cp, int co);
/* y (n x d x h x w x co) = act(bn(conv(x) + b)), bn from ep; xp padded by
 * trn_infer_pad_*, k as the model stores it (float32) or packed (bf16).
 * Needs trn_infer_fast_ok() (and trn_infer_bf16_ok() for c->bf16). */
void trn_conv3d_infer(float *y, const void *xp, const void *k, const float *b, const float *ep,
                      const trn_infer_conv *c);

#endif
