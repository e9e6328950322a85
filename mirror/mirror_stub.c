/* mirror/mirror_stub.c: the mirror API in a build without libcurl and
 * OpenSSL. Every call fails with TNREC_EUNSUPPORTED and says what to
 * install; `tnrec mirror` therefore exists in every build. */
#define TNREC_TESTING 1 /* the signer's declaration (tnrec/testing.h) */
#include "common.h"
#include "tnrec/mirror.h"
#include "tnrec/testing.h"

#define MIRROR_MISSING                                                                        \
    "mirror support is not compiled in: install libcurl4-openssl-dev libssl-dev and rebuild\n" \
    "hint: cmake -S . -B build -DTNREC_WITH_CURL=ON fails with a message if they are still missing"

tnrec_err tnrec_mirror_run(tnrec_mirror_report **out, const char *const *sources, size_t n_sources,
                           const char *dest, const tnrec_mirror_options *opt)
{
    if (out)
        *out = NULL;
    return tnrec__fail(TNREC_EUNSUPPORTED, MIRROR_MISSING);
}

tnrec_err tnrec_mirror_verify(tnrec_mirror_report **out, const char *target,
                              const char *const *sources, size_t n_sources,
                              const tnrec_mirror_options *opt)
{
    if (out)
        *out = NULL;
    return tnrec__fail(TNREC_EUNSUPPORTED, MIRROR_MISSING);
}

tnrec_err tnrec_sigv4_sign(tnrec_sigv4_result *out, const tnrec_sigv4_input *in)
{
    if (out)
        memset(out, 0, sizeof *out);
    return tnrec__fail(TNREC_EUNSUPPORTED, MIRROR_MISSING);
}

void tnrec_sigv4_result_clear(tnrec_sigv4_result *r)
{
    if (r)
        memset(r, 0, sizeof *r);
}
