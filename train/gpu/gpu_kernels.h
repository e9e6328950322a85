/* train/gpu/gpu_kernels.h: the small CUDA kernels of the GPU trainer
 * (train/gpu/kernels.cu), callable from C. Private to train/gpu/.
 *
 * Every launcher enqueues on `stream` (a cudaStream_t) and returns the
 * launch status as an int (0: cudaSuccess); the caller turns it into a
 * tnrec_err with trn_cuda_check. Activation arrays are of type `dt`
 * (TRN_DT_*), NDHWC; parameters, gradients and optimiser state are
 * float32. Each kernel computes exactly what the CPU path computes
 * (train/reference.c): first-maximum pooling, the same dropout masks, the
 * same loss; sums are done in a fixed order (deterministic). */
#ifndef TNREC_TRAIN_GPU_KERNELS_H
#define TNREC_TRAIN_GPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { TRN_DT_F32 = 0, TRN_DT_F16 = 1, TRN_DT_BF16 = 2 };

/* Bytes of one element of type dt. */
size_t trn_dt_size(int dt);

/* dst[p][c] = c < ci ? src[p][c] : 0 for p < positions (float -> dt). */
int trn_k_cast_input(void *dst, const float *src, size_t positions, int ci, int ci_pad, int dt, void *stream);
/* Conv kernel [taps][ci][co] (float) -> cuDNN NDHWC filter [co][taps][ci_pad]
 * (dt): taps 27 for Conv3D 3x3x3, 9 for CoordConv2D 3x3, 1 for a 1x1. */
int trn_k_pack_filter(void *dst, const float *src, int taps, int ci, int ci_pad, int co, int dt, void *stream);
/* CoordConv2D's input (inference): y[p] = the ci channels of x[p] (x has
 * xs channels), its sample's two coordinates at p's range position, zeros
 * up to cc. rows_per_sample = d x h; coords: n x ncoords floats, this
 * layer's w x 2 at c_off. */
int trn_k_coord_concat(void *y, const void *x, const float *coords, int n, size_t rows_per_sample, int w, int ci,
                       int xs, int cc, size_t ncoords, size_t c_off, int dt, void *stream);
/* cuDNN filter gradient [co][27][ci_pad] (dt) -> [27][ci][co] (float). */
int trn_k_unpack_filter(float *dst, const void *src, int ci, int ci_pad, int co, int dt, void *stream);
/* Element-wise casts. */
int trn_k_to_dt(void *dst, const float *src, size_t n, int dt, void *stream);
int trn_k_from_dt(float *dst, const void *src, size_t n, int dt, void *stream);
/* x[i] *= s. */
int trn_k_scale(float *x, size_t n, float s, void *stream);

/* Keras moving statistics from cuDNN's batch mean and inverse std:
 * mm = mom mm + (1-mom) mean; mv = mom mv + (1-mom) (1/inv^2 - eps). */
int trn_k_bn_moving(float *mm, float *mv, const float *mean, const float *inv, int c, double mom, double eps,
                       void *stream);

/* LeakyReLU; backward from the output y (same sign as the input). */
int trn_k_lrelu_fwd(void *y, const void *x, size_t n, float alpha, int dt, void *stream);
int trn_k_lrelu_bwd(void *dx, const void *y, const void *dy, size_t n, float alpha, int dt, void *stream);
/* 'valid' max pooling, first maximum on ties. */
int trn_k_maxpool_fwd(void *y, const void *x, int n, int d, int h, int w, int c, int pd, int ph, int pw, int dt,
                         void *stream);
int trn_k_maxpool_bwd(void *dx, const void *x, const void *dy, int n, int d, int h, int w, int c, int pd, int ph,
                         int pw, int dt, void *stream);
/* 'same' max pooling (inference): ceil(in / p) outputs per axis, windows
 * placed as train/reference.c's, first maximum on ties. */
int trn_k_maxpool_same_fwd(void *y, const void *x, int n, int d, int h, int w, int c, int pd, int ph, int pw, int dt,
                           void *stream);
/* Dropout mask as tnrec_ref_dropout_mask (counter-based splitmix64). */
int trn_k_dropout_mask(float *scale, size_t count, double rate, uint64_t seed, uint64_t stream_id,
                          uint64_t first, void *stream);
/* y[i][p][ch] = x[i][p][ch] * scale[i][ch]. */
int trn_k_channel_scale(void *y, const void *x, const float *scale, int n, size_t s, int c, int dt, void *stream);
/* Global max pooling: x (dt) -> y float [n][c]; backward float dy -> dx (dt). */
int trn_k_gmax_fwd(float *y, const void *x, int n, size_t s, int c, int dt, void *stream);
int trn_k_gmax_bwd(void *dx, const void *x, const float *dy, int n, size_t s, int c, int dt, void *stream);
/* Conv bias over NDHWC activations of type dt (not cuDNN's, whose
 * bfloat16 support is not documented): y[p][k] += b[k] for p < positions;
 * db[k] = sum_p dy[p][k], summed in float (no float16 overflow of a
 * loss-scaled sum) in a fixed order, into float db, through scratch of
 * trn_k_conv_bias_scratch(c) floats. */
int trn_k_conv_bias_add(void *y, const float *b, size_t positions, int c, int dt, void *stream);
size_t trn_k_conv_bias_scratch(int c);
int trn_k_conv_bias_grad(float *db, float *scratch, const void *dy, size_t positions, int c, int dt, void *stream);
/* Dense helpers (float): y[i][o] += b[o]; db[o] = sum_i dy[i][o]. */
int trn_k_bias_add(float *y, const float *b, int n, int out, void *stream);
int trn_k_bias_grad(float *db, const float *dy, int n, int out, void *stream);
/* Weighted BCE from logits: per-sample loss terms (double) and
 * dz = scale * w (sigmoid(z) - y) / denom. */
int trn_k_bce(double *loss, float *dz, const float *z, const float *label, const float *weight, int n,
                 double denom, float scale, void *stream);
/* L2: g += 2 l2 w over len; partial[b] = sum of w^2 of block b (nblocks
 * from trn_k_l2_blocks(len)). */
int trn_k_l2_blocks(size_t len);
int trn_k_l2(float *g, const float *w, size_t len, float l2, double *partial, void *stream);
/* Sets *flag to 1 if any g is not finite (flag is not cleared). */
int trn_k_nonfinite(int *flag, const float *g, size_t n, void *stream);
/* Per-tensor gradient norm clipping: norms[t] = ||g[off_t..off_t+len_t)||
 * then scaling by min(1, clip / norm). */
int trn_k_clipnorm(float *g, const size_t *off, const size_t *len, int ntensors, float clip, void *stream);
/* Clipping by value, AdamW decay, Adam moments and update (Keras' form). */
int trn_k_adam(float *w, float *m, float *v, float *g, size_t n, float lr_t, float b1, float b2, float eps,
                  float clipvalue, float decay, void *stream);

#ifdef __cplusplus
}
#endif
#endif
