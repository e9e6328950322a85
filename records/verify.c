/* records/verify.c: loads every record of a shard to check its checksum,
 * its zstd frame (with zstd's own content checksum) and its size.
 *
 * Header, trailer and index were already checked by tnrec_shard_open.
 * Reports each bad record through the callback and keeps going unless the
 * callback asks to stop. */
#include <stdio.h>

#include "records_internal.h"

tnrec_err tnrec_shard_verify(const tnrec_shard *shard, tnrec_verify_cb cb, void *ctx, uint64_t *out_bad)
{
    if (out_bad)
        *out_bad = 0;
    if (!shard)
        return tnrec__fail(TNREC_EINVAL, "tnrec_shard_verify: NULL shard");
    tnrec_decoder *dec;
    tnrec_err e = tnrec_decoder_create(&dec);
    if (e)
        return e;
    uint64_t bad = 0, first_bad = 0;
    tnrec_err first_err = TNREC_OK;
    for (uint64_t i = 0; i < shard->count; i++) {
        e = tnrec_decoder_load(dec, shard, i);
        if (!e)
            continue;
        if (e == TNREC_ENOMEM)
            break;
        if (bad++ == 0) {
            first_bad = i;
            first_err = e;
        }
        if (cb && cb(ctx, shard->path, i, e, tnrec_error_last()) != 0)
            break;
    }
    tnrec_decoder_free(dec);
    if (out_bad)
        *out_bad = bad;
    if (e == TNREC_ENOMEM)
        return e;
    if (bad)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': %llu bad record(s), the first is record %llu (%s)\n"
                                           "hint: rebuild the shard or fetch it again",
                           shard->path, (unsigned long long)bad, (unsigned long long)first_bad,
                           tnrec_err_name(first_err));
    return TNREC_OK;
}
