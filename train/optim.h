/* train/optim.h: the optimiser's state, visible to the checkpoint code. */
#ifndef TNREC_TRAIN_OPTIM_H
#define TNREC_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/train.h"

struct tnrec_optim {
    tnrec_optim_config cfg;
    size_t n;
    float *m, *v;   /* first and second moments, one per trainable parameter */
    uint64_t t;     /* steps taken */
};

#endif
