/* train/gpu/gpu_module_entry.c: the exported entry of the CUDA module
 * (libtnrec_cuda.so): the table of its entry points (gpu_module.h).
 *
 * The module is compiled with hidden visibility, so this function is the
 * only symbol it exports; the GPU entry points it fills the table with
 * share their names with libtnrec's forwarding functions (gpu_loader.c)
 * but bind inside the module. What the module needs from libtnrec
 * (tnrec__fail, the all-reduce and model helpers) it takes from the
 * loaded libtnrec, which it links: there is one copy of that code. */
#include "gpu_module.h"
#include "tnrec/config.h"

#define FILL(name, params, args) .name = name,
#define FILL_SPECIAL(ret, name, params) .name = name,

static const trn_gpu_api api = {
    .size = sizeof(trn_gpu_api),
    .version = TNREC_VERSION,
    .signature = TRN_GPU_SIGNATURE,
    TRN_GPU_CALLS(FILL)
    TRN_GPU_SPECIAL_CALLS(FILL_SPECIAL)
};

__attribute__((visibility("default"))) const trn_gpu_api *TRN_GPU_ENTRY(void) { return &api; }
