/* train/conv_impl.h: the Conv3D implementations behind tnrec_conv3d_*
 * (direct loops in conv_fast.c, oneDNN in conv_dnnl.c). */
#ifndef TNREC_TRAIN_CONV_IMPL_H
#define TNREC_TRAIN_CONV_IMPL_H

#include "tnrec/train.h"

int tnrec__conv_dnnl_available(void);
tnrec_err tnrec__conv_dnnl_forward(float *y, const float *x, const float *k, const float *b, int n, int d, int h,
                                   int w, int ci, int co);
tnrec_err tnrec__conv_dnnl_backward(float *dx, float *dk, float *db, const float *x, const float *k,
                                    const float *dy, int n, int d, int h, int w, int ci, int co);

#endif
