/* cli/cmd_synth.c: `tnrec synth OUT --samples N [--seed S] [--tor-fraction F] [-j N]`:
 * write a synthetic TorNet archive (catalog.csv, train/YYYY, test/YYYY)
 * for tests, benchmarks and trying tnrec without the real download. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tnrec synth OUT --samples N [--seed S] [--tor-fraction F] [-j N]\n"
            "                        [--deflate-level L] [--force]\n"
            "\n"
            "Write N synthetic TorNet samples under OUT in the archive's layout:\n"
            "OUT/catalog.csv, OUT/train/YYYY/*.nc, OUT/test/YYYY/*.nc (split by\n"
            "day of year: day mod 20 < 17 is train). The files have the real\n"
            "schema; TOR samples carry a tornado vortex signature. The class mix\n"
            "is TorNet's (NUL 61%%, WRN 32%%, TOR 7%%) unless --tor-fraction sets\n"
            "the TOR share. The same seed and options give byte-identical files\n"
            "whatever N or -j.\n"
            "\n"
            "  --samples N         number of samples (required, at least 1)\n"
            "  --seed S            random seed, a non-negative integer (default 0)\n"
            "  --tor-fraction F    share of TOR samples, 0 < F < 1 (default: TorNet's\n"
            "                      7%%); NUL and WRN keep their 61:32 proportion. For\n"
            "                      demos and tests that need more positives\n"
            "  -j, --jobs N        threads (default: all cores)\n"
            "  --deflate-level L   deflate level of the files, 1..9 (default 2)\n"
            "  --force             replace an archive already in OUT (its catalog and\n"
            "                      the sample files it lists are removed first)\n");
}

int cmd_synth(int argc, char **argv)
{
    const char *cmd = "synth";
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return TNREC_EXIT_OK;
    }
    tnrec_synth_options opt;
    tnrec_synth_options_init(&opt);
    int have_samples = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v = 0;
        if (strncmp(a, "-j", 2) == 0 && a[2] != '\0') { /* -jN */
            if (cli_parse_u64(a + 2, &v) != 0 || v < 1 || v > 1024)
                return cli_usage_error(cmd, "bad value '%s' for '-j': want 1..1024", a + 2);
            opt.threads = (int)v;
            continue;
        }
        if (strcmp(a, "--samples") == 0 || strcmp(a, "--seed") == 0 || strcmp(a, "-j") == 0 ||
            strcmp(a, "--jobs") == 0 || strcmp(a, "--deflate-level") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "option '%s' needs a value", a);
            const char *val = argv[++i];
            if (cli_parse_u64(val, &v) != 0)
                return cli_usage_error(cmd, "bad value '%s' for '%s': want a non-negative integer", val, a);
            if (strcmp(a, "--samples") == 0) {
                if (v == 0)
                    return cli_usage_error(cmd, "--samples must be at least 1");
                opt.samples = v;
                have_samples = 1;
            } else if (strcmp(a, "--seed") == 0) {
                opt.seed = v;
            } else if (strcmp(a, "--deflate-level") == 0) {
                if (v < 1 || v > 9)
                    return cli_usage_error(cmd, "--deflate-level must be 1..9, not %llu", v);
                opt.deflate_level = (int)v;
            } else {
                if (v < 1 || v > 1024)
                    return cli_usage_error(cmd, "%s must be 1..1024, not %llu", a, v);
                opt.threads = (int)v;
            }
        } else if (strcmp(a, "--tor-fraction") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "option '%s' needs a value", a);
            const char *val = argv[++i];
            char *end = NULL;
            double f = strtod(val, &end);
            if (end == val || *end != '\0' || !(f > 0.0 && f < 1.0))
                return cli_usage_error(cmd, "bad value '%s' for '--tor-fraction': want a number with 0 < F < 1", val);
            opt.tor_fraction = f;
        } else if (strcmp(a, "--force") == 0) {
            opt.force = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (opt.out_dir) {
            return cli_usage_error(cmd, "one output directory only ('%s' and '%s')", opt.out_dir, a);
        } else {
            opt.out_dir = a;
        }
    }
    if (!opt.out_dir)
        return cli_usage_error(cmd, "missing the output directory OUT");
    if (!have_samples)
        return cli_usage_error(cmd, "missing --samples N");

    tnrec_synth_stats st;
    tnrec_err err = tnrec_synth_run(&st, &opt);
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
