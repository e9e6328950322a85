/* cli/cmd_merge.c: `tnrec merge PART_DIR... -o OUT`: join the parts of a
 * build made with --part K/N into one dataset equal to a one-machine build. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tnrec/ingest.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tnrec merge PART_DIR... -o OUT\n"
            "\n"
            "Joins the datasets built by 'tnrec build --part K/N' (every K of one N,\n"
            "any order) into OUT: the same records in the same order and shards as a\n"
            "one-machine build with the same options. Records are copied, not re-encoded.\n"
            "example: tnrec merge parts/0 parts/1 parts/2 parts/3 -o shards/train\n");
}

int cmd_merge(int argc, char **argv)
{
    const char *cmd = "merge";
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return TNREC_EXIT_OK;
    }
    const char *parts[4096], *out = NULL;
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "%s needs a directory", a);
            out = argv[++i];
        } else if (strncmp(a, "--output=", 9) == 0) {
            out = a + 9;
        } else if (a[0] == '-') {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else {
            if (n == sizeof parts / sizeof parts[0])
                return cli_usage_error(cmd, "too many parts");
            parts[n++] = a;
        }
    }
    if (!n)
        return cli_usage_error(cmd, "no part directories given");
    if (!out)
        return cli_usage_error(cmd, "no output directory: give -o OUT");
    tnrec_build_summary sum;
    tnrec_err err = tnrec_merge_run(&sum, out, parts, n);
    if (err)
        return cli_fail(cmd, err);
    fprintf(stderr, "tnrec merge: %zu parts, %llu samples (%llu non-tornadic, %llu tornadic), %llu skipped, %.2f MiB\n",
            n, (unsigned long long)sum.samples, (unsigned long long)sum.counts.label[0],
            (unsigned long long)sum.counts.label[1], (unsigned long long)sum.skipped, sum.bytes_out / 1048576.0);
    return TNREC_EXIT_OK;
}
