/* common/error.c: the thread-local last-error message behind tnrec_err,
 * and what libtnrec says about its own build (version, features).
 * Messages are truncated to a fixed size rather than allocated, so that
 * reporting an out-of-memory error can never fail itself. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fail.h"
#include "tnrec/tnrec.h"

#define TNREC_ERRMSG_MAX 2048

static _Thread_local char last_msg[TNREC_ERRMSG_MAX];

const char *tnrec_error_last(void) { return last_msg; }

void tnrec_error_clear(void) { last_msg[0] = '\0'; }

const char *tnrec_err_name(tnrec_err err)
{
    switch (err) {
    case TNREC_OK: return "ok";
    case TNREC_EINVAL: return "invalid argument";
    case TNREC_ENOMEM: return "out of memory";
    case TNREC_EIO: return "i/o error";
    case TNREC_ECORRUPT: return "corrupt";
    case TNREC_ETRUNC: return "truncated";
    case TNREC_EFORMAT: return "unsupported format";
    case TNREC_ENOTFOUND: return "not found";
    case TNREC_ESCHEMA: return "schema mismatch";
    case TNREC_ENET: return "network error";
    case TNREC_EAUTH: return "authentication failed";
    case TNREC_EUNSUPPORTED: return "not compiled in";
    case TNREC_ERANGE: return "out of range";
    case TNREC_EINTERNAL: return "internal error";
    case TNREC_ECANCELED: return "interrupted";
    }
    return "unknown error";
}

tnrec_err tnrec__fail(tnrec_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return err;
}

tnrec_err tnrec__fail_errno(tnrec_err err, int saved_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof last_msg)
        snprintf(last_msg + n, sizeof last_msg - (size_t)n, ": %s", strerror(saved_errno));
    return err;
}

const char *tnrec_version(void) { return TNREC_VERSION; }

const char *tnrec_gpu_build_info(void) { return TNREC_GPU_BUILD_INFO; }

const char *tnrec_features(void)
{
    return "zstd netcdf"
#if TNREC_HAVE_OPENMP
           " openmp"
#endif
#if TNREC_HAVE_CURL
           " curl"
#endif
#if TNREC_HAVE_MPI
           " mpi"
#endif
#if TNREC_HAVE_CUDA
           " cuda"
#endif
#if TNREC_HAVE_CAIRO
           " cairo"
#endif
        ;
}
