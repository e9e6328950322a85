/* tnrec/testing.h: entry points libtnrec exports for its tests and
 * benchmarks, outside the public API: they may change in any release.
 *
 *  - tnrec_ref_*: the reference layers in double precision (plain loops,
 *    train/reference.c), the ground truth for gradient checks and for the
 *    fast float kernels; tnrec_model_ref_loss runs a whole model on them;
 *  - tnrec_sigv4_sign: the AWS Signature V4 signer `tnrec mirror` uses,
 *    checked against AWS's test vectors. A build without libcurl and
 *    OpenSSL keeps it; it then fails with TNREC_EUNSUPPORTED.
 *
 * As zstd's ZSTD_STATIC_LINKING_ONLY: define TNREC_TESTING before
 * including this header, which otherwise stops the build. tnrec/tnrec.h
 * does not include it. */
#ifndef TNREC_TESTING
#error "tnrec/testing.h declares libtnrec's test-only entry points: define TNREC_TESTING before including it"
#endif
#ifndef TNREC_TESTING_H
#define TNREC_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reference layers (double precision; outputs first) ----
 * Shapes: n batch, d frames, h azimuth, w range, c / ci / co channels.
 * Backward functions overwrite (never accumulate into) their outputs; any
 * output pointer of a backward function may be NULL to skip it. */
void tnrec_ref_conv3d_forward(double *y, const double *x, const double *k, const double *b,
                              int n, int d, int h, int w, int ci, int co);
void tnrec_ref_conv3d_backward(double *dx, double *dk, double *db, const double *x,
                               const double *k, const double *dy, int n, int d, int h, int w,
                               int ci, int co);
/* The bfloat16 training convolution's three passes (train/network.c):
 * y = conv(x) + b, dx and dk from dy, products of bfloat16-rounded
 * operands summed in float32. co a multiple of 16, and ci too unless dx
 * is NULL (no input gradient); needs
 * avx512_bf16 (TNREC_EUNSUPPORTED otherwise). */
tnrec_err tnrec_test_conv3d_bf16(float *y, float *dx, float *dk, const float *x, const float *k, const float *b,
                                 const float *dy, int n, int d, int h, int w, int ci, int co);
/* m = number of positions (n*d*h*w); mean and var (biased) per channel out. */
void tnrec_ref_batchnorm_forward_train(double *y, double *mean, double *var, const double *x,
                                       const double *gamma, const double *beta, size_t m, int c,
                                       double eps);
void tnrec_ref_batchnorm_forward_infer(double *y, const double *x, const double *gamma,
                                       const double *beta, const double *moving_mean,
                                       const double *moving_var, size_t m, int c, double eps);
void tnrec_ref_batchnorm_backward(double *dx, double *dgamma, double *dbeta, const double *x,
                                  const double *gamma, const double *mean, const double *var,
                                  const double *dy, size_t m, int c, double eps);
void tnrec_ref_leaky_relu_forward(double *y, const double *x, size_t len, double alpha);
void tnrec_ref_leaky_relu_backward(double *dx, const double *x, const double *dy, size_t len,
                                   double alpha);
/* 'valid' pooling: output extent floor(d/pd) x floor(h/ph) x floor(w/pw). */
void tnrec_ref_maxpool3d_forward(double *y, const double *x, int n, int d, int h, int w, int c,
                                 int pd, int ph, int pw);
void tnrec_ref_maxpool3d_backward(double *dx, const double *x, const double *dy, int n, int d,
                                  int h, int w, int c, int pd, int ph, int pw);
/* Multiplies x[i][p][ch] by scale[i][ch] for p < s: SpatialDropout3D (s =
 * d*h*w) and Dropout (s = 1) once the mask is drawn. */
void tnrec_ref_channel_scale_forward(double *y, const double *x, const double *scale, int n,
                                     size_t s, int c);
void tnrec_ref_channel_scale_backward(double *dx, const double *dy, const double *scale, int n,
                                      size_t s, int c);
/* Dropout masks: scale[i] = 0 with probability rate, else 1/(1-rate),
 * drawn from (seed, stream, i) alone so any rank can draw any part. */
void tnrec_ref_dropout_mask(double *scale, size_t count, double rate, uint64_t seed,
                            uint64_t stream, uint64_t first);
void tnrec_ref_global_maxpool_forward(double *y, const double *x, int n, size_t s, int c);
void tnrec_ref_global_maxpool_backward(double *dx, const double *x, const double *dy, int n,
                                       size_t s, int c);
void tnrec_ref_dense_forward(double *y, const double *x, const double *wt, const double *b,
                             int n, int in, int out);
void tnrec_ref_dense_backward(double *dx, double *dw, double *db, const double *x,
                              const double *wt, const double *dy, int n, int in, int out);
/* CoordConv2D (cnn_baseline.py): a 3x3 'same' convolution of each frame
 * over ci input channels followed by 2 coordinate channels, coord[q][0..1]
 * at range gate q (the same at every azimuth and frame); k is 3 x 3 x
 * (ci + 2) x co. dx holds only the ci input channels. */
void tnrec_ref_coordconv2d_forward(double *y, const double *x, const double *coord,
                                   const double *k, const double *b, int n, int d, int h, int w,
                                   int ci, int co);
void tnrec_ref_coordconv2d_backward(double *dx, double *dk, double *db, const double *x,
                                    const double *coord, const double *k, const double *dy,
                                    int n, int d, int h, int w, int ci, int co);
void tnrec_ref_relu_forward(double *y, const double *x, size_t len);
void tnrec_ref_relu_backward(double *dx, const double *x, const double *dy, size_t len);
/* 'same' pooling with stride = pool (Keras MaxPool padding='same'): output
 * extent ceil(d/pd) x ceil(h/ph) x ceil(w/pw); windows past the edges are
 * cut, (pool * out - in) / 2 of the padding before the first window. */
void tnrec_ref_maxpool3d_same_forward(double *y, const double *x, int n, int d, int h, int w,
                                      int c, int pd, int ph, int pw);
void tnrec_ref_maxpool3d_same_backward(double *dx, const double *x, const double *dy, int n,
                                       int d, int h, int w, int c, int pd, int ph, int pw);
/* Weighted binary cross-entropy from logits z (stable form):
 * sum_i weight_i * (max(z,0) - z*y + log(1 + exp(-|z|))) / denom.
 * dz (may be NULL) receives the gradient. */
double tnrec_ref_bce_logits(double *dz, const double *z, const double *label,
                            const double *weight, int n, double denom);

/* ---- a whole model on the reference layers ---- */
typedef struct tnrec_model tnrec_model; /* tnrec/train.h's (C11 allows the typedef twice) */
/* Whole-network loss and gradient in double precision with the reference
 * layers, for gradient checks: training mode (batch statistics, dropout
 * masks from dropout_seed), params in the layout of tnrec_model_params.
 * Loss = sum_i w_i bce_i / n + L2 terms. grad may be NULL. */
tnrec_err tnrec_model_ref_loss(double *out_loss, double *grad, const tnrec_model *m,
                               const double *params, const double *x, const double *label,
                               const double *weight, int n, uint64_t dropout_seed);

/* ---- AWS Signature Version 4 ---------------------------------------- */

typedef struct tnrec_sigv4_header {
    const char *name;
    const char *value;
} tnrec_sigv4_header;

typedef struct tnrec_sigv4_input {
    const char *method;          /* "GET", "PUT", ... */
    const char *path;            /* decoded path, e.g. "/bucket/a key"; encoded here once */
    const char *query;           /* wire query without '?', may be NULL */
    const tnrec_sigv4_header *headers; /* must include Host; X-Amz-Date is added */
    size_t n_headers;
    const char *payload_hash;    /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *access_key;
    const char *secret_key;
    const char *session_token;   /* NULL when none */
    const char *region;
    const char *service;         /* "s3" */
    const char *amz_date;        /* "YYYYMMDDTHHMMSSZ" */
    int normalize_path;          /* remove "." and ".." segments and empty ones (not for S3) */
    int presign;                 /* sign the query (X-Amz-*) instead of the headers */
    unsigned expires;            /* presign: X-Amz-Expires seconds */
    int omit_session_token;      /* header mode: send the token but leave it out of the signature */
} tnrec_sigv4_input;

typedef struct tnrec_sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char signature[65];
    char *authorization;         /* header mode: value of the Authorization header */
    char *query;                 /* presign: the full canonical query to send */
} tnrec_sigv4_result;

/* Sign one request. *out holds malloc'd strings: release them with
 * tnrec_sigv4_result_clear. The secret appears in no output field. */
tnrec_err tnrec_sigv4_sign(tnrec_sigv4_result *out, const tnrec_sigv4_input *in);
void tnrec_sigv4_result_clear(tnrec_sigv4_result *r);

#ifdef __cplusplus
}
#endif
#endif
