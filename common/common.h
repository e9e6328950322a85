/* common/common.h: the private helpers every module of libtnrec shares.
 *
 * One include for the everyday helpers: errors (fail.h), little-endian
 * access (le_bytes.h), durable file output (atomic_file.h), growable
 * arrays (grow.h), the monotonic clock (mono_clock.h), paths and
 * directories (path_util.h), string copies (str_util.h). The JSON helpers
 * (json_util.h, which needs jansson) and the splitmix64 generator
 * (splitmix64.h, shared with the CUDA kernels) are included on their own.
 *
 * Not installed and not for cli/, tests/ or benchmarks/, which use the
 * public headers only. common/ includes nothing from the other modules. */
#ifndef TNREC_COMMON_H
#define TNREC_COMMON_H

#include "atomic_file.h"
#include "fail.h"
#include "grow.h"
#include "le_bytes.h"
#include "mono_clock.h"
#include "path_util.h"
#include "str_util.h"

#endif
