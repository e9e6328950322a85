/* tnrec/tnrec.h: the whole public API of libtnrec. */
#ifndef TNREC_TNREC_H
#define TNREC_TNREC_H

#include "tnrec/config.h"
#include "tnrec/error.h"
#include "tnrec/records.h"
#include "tnrec/mirror.h"
#include "tnrec/synth.h"
#include "tnrec/ingest.h"
#include "tnrec/train.h"
#include "tnrec/gpu.h"
#include "tnrec/plot.h"
#include "tnrec/report.h"
#include "tnrec/import.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library version string, e.g. "0.1.0". Static. */
const char *tnrec_version(void);
/* Space-separated compiled-in features, e.g. "openmp curl mpi". Static. */
const char *tnrec_features(void);
/* The CUDA, cuDNN and NCCL versions the GPU module was built against, or
 * that it was built without them; read at build time, so asking loads no
 * GPU library. Static. */
const char *tnrec_gpu_build_info(void);

#ifdef __cplusplus
}
#endif
#endif
