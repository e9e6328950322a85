/* cli/cmd_synth.c: `tnrec synth OUT --samples N [--seed S] [--tor-fraction F] [-j N]`:
 * write a synthetic TorNet archive (catalog.csv, train/YYYY, test/YYYY)
 * for tests, benchmarks and trying tnrec without the real download. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_opt.h"
#include "cli_progress.h"

/* 0 < F < 1, both ends excluded. */
static int parse_fraction(void *dst, const char *value)
{
    char *end = NULL;
    double f = strtod(value, &end);
    if (end == value || *end || !(f > 0.0 && f < 1.0))
        return -1;
    *(double *)dst = f;
    return 0;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    cli_progress_count(ctx, done, total, "samples", NULL);
}

int cmd_synth(int argc, char **argv)
{
    tnrec_synth_options opt;
    tnrec_synth_options_init(&opt);
    cli_progress progress;
    cli_progress_init(&progress, "synth");
    int have_samples = 0;
    const cli_opt opts[] = {
        { CLI_INT, "samples", 0, NULL, "N", CLI_INT_DST(opt.samples), .min = 1, .max = CLI_NONE,
          .help = "number of samples (required)", .seen = &have_samples },
        { CLI_INT, "seed", 0, NULL, "S", CLI_INT_DST(opt.seed), .min = 0, .max = CLI_NONE, .def = "0",
          .help = "random seed, a non-negative integer" },
        { CLI_CUSTOM, "tor-fraction", 0, NULL, "F", .dst = &opt.tor_fraction, .parse = parse_fraction,
          .rule = "a number with 0 < F < 1",
          .help = "share of TOR samples, 0 < F < 1 (default: TorNet's\n7%); NUL and WRN keep their 61:32 proportion. For\n"
                  "demos and tests that need more positives" },
        { CLI_INT, "jobs", 'j', NULL, "N", CLI_INT_DST(opt.threads), .min = 1, .max = 1024,
          .def = "all cores", .help = "worker threads" },
        { CLI_INT, "deflate-level", 0, NULL, "L", CLI_INT_DST(opt.deflate_level), .min = 1, .max = 9,
          .def = "2", .help = "deflate level of the files, 1..9" },
        { CLI_FLAG, "force", 0, .dst = &opt.force,
          .help = "replace an archive already in OUT (its catalog and\nthe sample files it lists are removed first)" },
        CLI_PROGRESS_OPTS(progress),
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = "synth",
        .usage = "tnrec synth OUT --samples N [--seed S] [--tor-fraction F] [-j N]\n"
                 "                        [--deflate-level L] [--force]",
        .about = "Write N synthetic TorNet samples under OUT in the archive's layout:\n"
                 "OUT/catalog.csv, OUT/train/YYYY/*.nc, OUT/test/YYYY/*.nc (split by\n"
                 "day of year: day mod 20 < 17 is train). The files have the real\n"
                 "schema; TOR samples carry a tornado vortex signature. The class mix\n"
                 "is TorNet's (NUL 61%, WRN 32%, TOR 7%) unless --tor-fraction sets\n"
                 "the TOR share. The same seed and options give byte-identical files\n"
                 "whatever N or -j.",
        .opts = opts,
    };
    const char *cmd = spec.cmd;
    int rc = cli_parse_one(&spec, argc, argv, "output directory", &opt.out_dir);
    if (rc >= 0)
        return rc;
    if (!opt.out_dir)
        return cli_usage_error(cmd, "missing the output directory OUT");
    if (!have_samples)
        return cli_usage_error(cmd, "missing --samples N");

    tnrec_synth_stats st;
    opt.progress = on_progress;
    opt.progress_ctx = &progress;
    cli_progress_start(&progress);
    tnrec_err err = tnrec_synth_run(&st, &opt);
    cli_progress_clear(&progress);
    if (err)
        return cli_fail(cmd, err);
    printf("wrote %llu samples to %s (train %llu, test %llu; NUL %llu, WRN %llu, TOR %llu)\n",
           (unsigned long long)st.samples, opt.out_dir, (unsigned long long)st.train,
           (unsigned long long)st.test, (unsigned long long)st.nul, (unsigned long long)st.wrn,
           (unsigned long long)st.tor);
    printf("%.1f MB of .nc files (%.2f MB per sample) in %.2f s: %.1f samples/s on %d thread%s\n",
           (double)st.bytes / 1e6, (double)st.bytes / 1e6 / (double)st.samples, st.seconds,
           st.seconds > 0 ? (double)st.samples / st.seconds : 0.0, st.threads, st.threads == 1 ? "" : "s");
    return TNREC_EXIT_OK;
}
