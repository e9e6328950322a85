/* mirror/mirror_common.c: the parts of the mirror API that need no
 * network library: option defaults and freeing a report. Compiled in
 * every build, with or without libcurl. */
#include <stdlib.h>
#include <string.h>

#include "tnrec/mirror.h"

void tnrec_mirror_options_init(tnrec_mirror_options *out)
{
    memset(out, 0, sizeof *out);
    out->zenodo_url = "https://zenodo.org";
    out->connections = 4;
    out->jobs = 2;
    out->retries = 8;
    out->retry_delay_ms = 1000;
    out->retry_max_ms = 120000;
    out->low_speed_time = 60;
    out->connect_timeout = 30;
    out->part_size = 100ull << 20;
    out->staging = ".tnrec-staging";
}

void tnrec_mirror_report_free(tnrec_mirror_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_files; i++) {
        free((char *)r->files[i].name);
        free((char *)r->files[i].source);
        free((char *)r->files[i].message);
    }
    free(r->files);
    free(r);
}

