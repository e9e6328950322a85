/* tests/mirror/mirror_sigv4_tool.c: signs one request described on stdin
 * with tnrec_sigv4_sign and prints the signature, then the canonical
 * request. Input lines: method, decoded path, query, payload hash,
 * region, service, X-Amz-Date, access key, secret key, then one
 * "name:value" header per line. A session token, if any, comes from the
 * environment variable MIRROR_SIGV4_SESSION_TOKEN. Used to compare with
 * botocore. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TNREC_TESTING 1 /* tnrec_sigv4_sign (tnrec/testing.h) */
#include "tnrec/testing.h"
#include "tnrec/tnrec.h"

int main(void)
{
    char *lines[64] = { 0 };
    size_t n = 0, cap = 0;
    char *line = NULL;
    ssize_t len;
    while (n < 64 && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len && line[len - 1] == '\n')
            line[len - 1] = '\0';
        lines[n++] = strdup(line);
    }
    free(line);
    if (n < 9) {
        fprintf(stderr, "mirror_sigv4_tool: need at least 9 lines\n");
        return 2;
    }
    tnrec_sigv4_header h[64];
    size_t nh = 0;
    for (size_t i = 9; i < n; i++) {
        char *c = strchr(lines[i], ':');
        if (!c)
            continue;
        *c = '\0';
        h[nh].name = lines[i];
        h[nh].value = c + 1;
        nh++;
    }
    tnrec_sigv4_input in = { .method = lines[0], .path = lines[1], .query = lines[2],
                             .payload_hash = lines[3], .region = lines[4], .service = lines[5],
                             .amz_date = lines[6], .access_key = lines[7], .secret_key = lines[8],
                             .headers = h, .n_headers = nh,
                             .session_token = getenv("MIRROR_SIGV4_SESSION_TOKEN") };
    tnrec_sigv4_result r;
    tnrec_err err = tnrec_sigv4_sign(&r, &in);
    int rc = 0;
    if (err) {
        fprintf(stderr, "mirror_sigv4_tool: %s\n", tnrec_error_last());
        rc = 1;
    } else {
        printf("%s\n%s\n", r.signature, r.canonical_request);
    }
    tnrec_sigv4_result_clear(&r);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    return rc;
}
