/* train/conv_wgrad_bf16.h: private to train/: the Conv3D weight gradient
 * in bfloat16 products with float32 sums (train/conv_wgrad_bf16.c). */
#ifndef TNREC_TRAIN_CONV_WGRAD_BF16_H
#define TNREC_TRAIN_CONV_WGRAD_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

/* dk (27 x ci x co, overwritten) = the gradient of a 3x3x3 'same'
 * convolution's kernel from its input x (n x d x h x w x ci) and the
 * gradient dy of its output (n x d x h x w x co); x and dy are rounded to
 * bfloat16 (nearest even), the sums are float32. co a multiple of 16;
 * needs trn_infer_bf16_ok(). ws holds the packed operands (grown when
 * too small), so that a training step does not map fresh pages for them
 * at every layer. */
/* The packed operands' memory, kept from call to call (zeroed: empty;
 * trn_wgrad_ws_free releases it). */
typedef struct trn_wgrad_ws {
    uint32_t *buf;
    size_t cap; /* in uint32_t */
} trn_wgrad_ws;

tnrec_err trn_conv3d_wgrad_bf16(float *dk, const float *x, const float *dy, int n, int d, int h, int w, int ci,
                                int co, trn_wgrad_ws *ws);
void trn_wgrad_ws_free(trn_wgrad_ws *ws);

#endif
