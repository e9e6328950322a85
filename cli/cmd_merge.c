/* cli/cmd_merge.c: `tnrec merge PART_DIR... -o OUT`: join the parts of a
 * build made with --part K/N into one dataset equal to a one-machine build. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_opt.h"
#include "tnrec/ingest.h"

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    cli_progress_count(ctx, done, total, "records", NULL);
}

int cmd_merge(int argc, char **argv)
{
    const char *out = NULL;
    cli_progress ps;
    cli_progress_init(&ps, "merge");
    const cli_opt opts[] = {
        { CLI_STRING, "output", 'o', NULL, "OUT", .dst = &out, .help = "the merged dataset directory (required)" },
        CLI_PROGRESS_OPTS(ps),
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = "merge",
        .usage = "tnrec merge PART_DIR... -o OUT",
        .about = "Joins the datasets built by 'tnrec build --part K/N' (every K of one N,\n"
                 "any order) into OUT: the same records in the same order and shards as a\n"
                 "one-machine build with the same options. Records are copied, not re-encoded.",
        .opts = opts,
        .epilog = "SIGINT or SIGTERM stops after the record being copied, removes what was\n"
                  "written and exits 130 or 143; run the same command again.\n"
                  "example: tnrec merge parts/0 parts/1 parts/2 parts/3 -o shards/train\n",
    };
    const char *cmd = spec.cmd;
    const char *parts[4096];
    size_t n = 0;
    int rc = cli_parse(&spec, argc, argv, parts, sizeof parts / sizeof parts[0], &n);
    if (rc >= 0)
        return rc;
    if (!n)
        return cli_usage_error(cmd, "no part directories given");
    if (!out)
        return cli_usage_error(cmd, "no output directory: give -o OUT");
    tnrec_merge_options mo = { .progress = on_progress, .progress_ctx = &ps };
    if (cli_stop_install() == 0)
        mo.stop = cli_stop_flag();
    tnrec_build_summary sum;
    cli_progress_start(&ps);
    tnrec_err err = tnrec_merge_run_opts(&sum, out, parts, n, &mo);
    cli_progress_clear(&ps);
    if (err) {
        rc = cli_fail(cmd, err);
        return cli_stop_signal() ? cli_stop_exit_code() : rc;
    }
    if (ps.quiet)
        return TNREC_EXIT_OK;
    if (sum.up_to_date) {
        fprintf(stderr, "tnrec merge: dataset is complete already (%llu samples)\n", (unsigned long long)sum.samples);
        return TNREC_EXIT_OK;
    }
    fprintf(stderr, "tnrec merge: %zu parts, %llu samples (%llu non-tornadic, %llu tornadic), %llu skipped, %.2f MiB\n",
            n, (unsigned long long)sum.samples, (unsigned long long)sum.counts.label[0],
            (unsigned long long)sum.counts.label[1], (unsigned long long)sum.skipped, sum.bytes_out / 1048576.0);
    return TNREC_EXIT_OK;
}
