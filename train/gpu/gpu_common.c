/* train/gpu/gpu_common.c: the parts of the GPU interface that need no
 * CUDA: precision names and default options. Compiled in every build. */
#include <string.h>

#include "common.h"
#include "tnrec/gpu.h"

tnrec_err tnrec_precision_parse(tnrec_precision *out, const char *name)
{
    if (name && (strcmp(name, "fp32") == 0 || strcmp(name, "float32") == 0)) {
        *out = TNREC_PRECISION_FP32;
        return TNREC_OK;
    }
    if (name && (strcmp(name, "fp16") == 0 || strcmp(name, "float16") == 0 || strcmp(name, "mixed") == 0)) {
        *out = TNREC_PRECISION_FP16;
        return TNREC_OK;
    }
    if (name && (strcmp(name, "bf16") == 0 || strcmp(name, "bfloat16") == 0)) {
        *out = TNREC_PRECISION_BF16;
        return TNREC_OK;
    }
    return tnrec__fail(TNREC_EINVAL, "unknown precision '%s'\nhint: fp32, fp16 (mixed) or bf16", name ? name : "(null)");
}

const char *tnrec_precision_name(tnrec_precision p)
{
    switch (p) {
    case TNREC_PRECISION_FP32: return "fp32";
    case TNREC_PRECISION_FP16: return "fp16";
    case TNREC_PRECISION_BF16: return "bf16";
    }
    return "?";
}

void tnrec_gpu_options_default(tnrec_gpu_options *out)
{
    memset(out, 0, sizeof *out);
    out->device = -1;
    out->precision = TNREC_PRECISION_FP32;
    out->loss_scale = 65536.0;
}
