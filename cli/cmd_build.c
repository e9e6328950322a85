/* cli/cmd_build.c: `tnrec build SRC... -o OUT`: TorNet NetCDF -> record shards.
 *
 * Parses the options into tnrec_build_options and runs the build. Prints
 * one line per skipped input on stderr, a progress line when stderr is a
 * terminal, and a summary at the end. The part K/N comes from --part or,
 * when not given, from an MPI or Slurm array launcher's environment. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tnrec/ingest.h"

#define MAX_LIST 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tnrec build SRC... -o OUT [options]\n"
            "\n"
            "Turns TorNet NetCDF samples into zstd record shards plus manifest.json.\n"
            "SRC: a TORNET_ROOT (catalog.csv, train/, test/), a directory of .nc files\n"
            "(searched recursively), a text file listing .nc paths, or a year tarball\n"
            "(tornet_YYYY.tar.gz) as a path or an http(s) URL, streamed.\n"
            "\n"
            "selection:\n"
            "  --split train|test|all      split from catalog.csv or the train/ test/ path (default all)\n"
            "  --years 2013,2015-2017      years of the sample's start time (default all)\n"
            "  --frames N                  keep the last N frames, 1..4 (default 4)\n"
            "  --variables DBZ,VEL,...     subset of DBZ VEL KDP RHOHV ZDR WIDTH range_folded_mask\n"
            "  --part K/N                  build part K of N (default: from OMPI_COMM_WORLD_RANK/SIZE,\n"
            "                              PMI_RANK/SIZE or SLURM_ARRAY_TASK_ID/COUNT); join with 'tnrec merge'\n"
            "  --holdout FRACTION          keep about this share of the selection out, as whole storms\n"
            "                              (samples grouped by the day and event id of their file names)\n"
            "  --held-out                  with --holdout: build only the held-out storms (a validation set)\n"
            "  --holdout-seed N            which storms are held out (default 1)\n"
            "encoding:\n"
            "  --dtype float32|float16|uint8   stored type of the radar variables (default float16)\n"
            "  --norm VAR=MIN:MAX          normalisation range (default TorNet's; repeatable)\n"
            "  --zstd-level L              1..19 (default 2; 1 with --dtype uint8)\n"
            "output:\n"
            "  -o, --output OUT            dataset directory\n"
            "  --shard-size BYTES          shard size limit, K/M/G suffixes (default 512M)\n"
            "  --shard-records N           records per shard limit (default none)\n"
            "  -j, --threads N             worker threads (default: all cores)\n"
            "  --strict                    fail on the first bad input instead of skipping it\n"
            "  -q, --quiet                 no progress line or summary\n"
            "\n"
            "A build that stops (an error, a full disk, SIGINT or SIGTERM, kill -9) keeps its finished\n"
            "shards: rerun the same command to resume. SIGINT exits 130, SIGTERM 143.\n"
            "example: tnrec build $TORNET_ROOT --split train --years 2013-2015 -o shards/train -j 8\n");
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0 || !isfinite(v))
        return -1;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        mul = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        mul = 1ull << 30;
    else if (*end == 'T' || *end == 't')
        mul = 1ull << 40;
    if (mul != 1) {
        end++;
        if (*end == 'i')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
    }
    if (*end)
        return -1;
    double r = v * (double)mul;
    if (r > 1.8e19)
        return -1;
    *out = (uint64_t)r;
    return 0;
}

/* "2013,2015-2017" -> years; returns the count or -1. */
static int parse_years(const char *s, int *years, int cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 1900 || a > 2200)
            return -1;
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b > 2200)
                return -1;
            p = end;
        }
        for (long y = a; y <= b; y++) {
            if (n == cap)
                return -1;
            years[n++] = (int)y;
        }
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

static int split_list(char *s, const char **out, int cap)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap)
            return -1;
        out[n++] = tok;
    }
    return n;
}

typedef struct progress_state {
    double start, last;
    int tty, quiet;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress_state *ps = ctx;
    double t = now_s();
    if (!ps->tty || ps->quiet || (t - ps->last < 0.5 && done < total))
        return;
    ps->last = t;
    double rate = done / (t - ps->start + 1e-9);
    fprintf(stderr, "\r  %llu/%llu inputs  %.1f samples/s", (unsigned long long)done, (unsigned long long)total, rate);
    if (total > done && rate > 0) {
        double eta = (double)(total - done) / rate;
        fprintf(stderr, "  ETA %dh%02dm%02ds", (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    }
    fprintf(stderr, "\033[K");
    fflush(stderr);
}

static void on_skip(void *ctx, const char *input, const char *reason)
{
    progress_state *ps = ctx;
    if (ps->tty && !ps->quiet)
        fprintf(stderr, "\r\033[K");
    fprintf(stderr, "tnrec build: skipped '%s': %s\n", input, reason);
}

static void print_bytes(FILE *f, uint64_t b)
{
    if (b >= (1ull << 30))
        fprintf(f, "%.2f GiB", b / 1073741824.0);
    else if (b >= (1ull << 20))
        fprintf(f, "%.2f MiB", b / 1048576.0);
    else
        fprintf(f, "%.1f KiB", b / 1024.0);
}

static void print_summary(const char *cmd, const tnrec_build_summary *s)
{
    FILE *f = stderr;
    if (s->up_to_date) {
        fprintf(f, "tnrec %s: dataset is complete already (%llu samples)\n", cmd, (unsigned long long)s->samples);
        return;
    }
    fprintf(f, "tnrec %s: %llu samples", cmd, (unsigned long long)s->samples);
    if (s->resumed_records)
        fprintf(f, " (%llu kept from an interrupted run)", (unsigned long long)s->resumed_records);
    fprintf(f, ", %llu skipped", (unsigned long long)s->skipped);
    if (s->filtered)
        fprintf(f, ", %llu outside --years", (unsigned long long)s->filtered);
    fprintf(f, "\n  labels: %llu non-tornadic, %llu tornadic; TOR %llu, NUL %llu, WRN %llu\n",
            (unsigned long long)s->counts.label[0], (unsigned long long)s->counts.label[1],
            (unsigned long long)s->counts.category[0], (unsigned long long)s->counts.category[1],
            (unsigned long long)s->counts.category[2]);
    fprintf(f, "  bytes in ");
    print_bytes(f, s->bytes_in);
    fprintf(f, ", out ");
    print_bytes(f, s->bytes_out);
    double rate = s->seconds > 0 ? (s->samples - s->resumed_records) / s->seconds : 0;
    fprintf(f, "; %.2f s, %.1f samples/s\n", s->seconds, rate);
    if (s->work_seconds > 0)
        fprintf(f, "  worker time %.2f s, of which %.0f%% inside NetCDF/HDF5 (serialised)\n", s->work_seconds,
                100.0 * s->lock_seconds / s->work_seconds);
}

/* After a failed or interrupted build: what is kept and how to resume,
 * on one line. why: "interrupted by SIGINT", or NULL after an error. */
static void print_resume(const char *why, const tnrec_build_summary *s, const char *out, int argc, char **argv)
{
    fprintf(stderr, "tnrec build: ");
    if (why)
        fprintf(stderr, "%s; ", why);
    if (s->kept_shards)
        fprintf(stderr, "%llu finished shard%s (%llu records) kept in '%s'; ", (unsigned long long)s->kept_shards,
                s->kept_shards == 1 ? "" : "s", (unsigned long long)s->kept_records, out);
    else
        fprintf(stderr, "no shard was finished yet; ");
    fprintf(stderr, "%s: ", why ? "to resume, run the same command again"
                                : "after fixing the cause, resume with the same command");
    cli_print_command(stderr, "build", argc, argv);
    fputc('\n', stderr);
}

/* Errors that a rerun of the same command resumes from (not a refusal of
 * the options or of the sources). */
static int resumable(tnrec_err err)
{
    return err != TNREC_EINVAL && err != TNREC_ENOTFOUND && err != TNREC_EUNSUPPORTED;
}

/* Option value: "--opt value" or "--opt=value". */
/* A fraction strictly between 0 and 1; -1 otherwise. */
static int parse_fraction(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0 && v < 1))
        return -1;
    *out = v;
    return 0;
}

static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int cmd_build(int argc, char **argv)
{
    const char *cmd = "build";
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return TNREC_EXIT_OK;
    }
    tnrec_build_options opt;
    tnrec_build_options_init(&opt);
    const char *sources[1024];
    size_t nsources = 0;
    int years[512];
    const char *vars[MAX_LIST];
    char varbuf[1024];
    tnrec_norm_range norms[16];
    size_t nnorms = 0;
    int part_given = 0, quiet = 0, holdout_seed_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        unsigned long long u;
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (nsources == sizeof sources / sizeof sources[0])
                return cli_usage_error(cmd, "too many sources");
            sources[nsources++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) {
                if (nsources == sizeof sources / sizeof sources[0])
                    return cli_usage_error(cmd, "too many sources");
                sources[nsources++] = argv[i];
            }
            break;
        }
        int known = 1;
        if (is_opt(a, "-o") || is_opt(a, "--output")) {
            if (!(v = opt_value(argc, argv, &i, a[1] == 'o' ? "-o" : "--output")))
                return cli_usage_error(cmd, "%s needs a directory", a);
            opt.out_dir = v;
        } else if (is_opt(a, "--split")) {
            if (!(v = opt_value(argc, argv, &i, "--split")) ||
                (strcmp(v, "train") && strcmp(v, "test") && strcmp(v, "all")))
                return cli_usage_error(cmd, "--split takes train, test or all");
            opt.split = v;
        } else if (is_opt(a, "--years")) {
            int n;
            if (!(v = opt_value(argc, argv, &i, "--years")) || (n = parse_years(v, years, 512)) <= 0)
                return cli_usage_error(cmd, "--years takes a list such as 2013,2015-2017");
            opt.years = years;
            opt.nyears = (size_t)n;
        } else if (is_opt(a, "--frames")) {
            if (!(v = opt_value(argc, argv, &i, "--frames")) || cli_parse_u64(v, &u) || u < 1 || u > 4)
                return cli_usage_error(cmd, "--frames takes 1..4 (the last N frames)");
            opt.frames = (uint32_t)u;
        } else if (is_opt(a, "--variables")) {
            int n;
            if (!(v = opt_value(argc, argv, &i, "--variables")) || strlen(v) >= sizeof varbuf)
                return cli_usage_error(cmd, "--variables takes a list such as DBZ,VEL");
            snprintf(varbuf, sizeof varbuf, "%s", v);
            if ((n = split_list(varbuf, vars, MAX_LIST)) <= 0)
                return cli_usage_error(cmd, "--variables takes a list such as DBZ,VEL");
            opt.variables = vars;
            opt.nvariables = (size_t)n;
        } else if (is_opt(a, "--dtype")) {
            if (!(v = opt_value(argc, argv, &i, "--dtype")))
                return cli_usage_error(cmd, "--dtype takes float32, float16 or uint8");
            if (strcmp(v, "float32") == 0)
                opt.encoding = TNREC_ENC_FLOAT32;
            else if (strcmp(v, "float16") == 0)
                opt.encoding = TNREC_ENC_FLOAT16;
            else if (strcmp(v, "uint8") == 0)
                opt.encoding = TNREC_ENC_UINT8;
            else
                return cli_usage_error(cmd, "--dtype takes float32, float16 or uint8, not '%s'", v);
        } else if (is_opt(a, "--norm")) {
            char name[TNREC_NAME_MAX];
            float lo, hi;
            int used = 0;
            if (!(v = opt_value(argc, argv, &i, "--norm")) || nnorms == 16 ||
                sscanf(v, "%31[^=]=%f:%f%n", name, &lo, &hi, &used) != 3 || v[used] || !(hi > lo))
                return cli_usage_error(cmd, "--norm takes VAR=MIN:MAX with MIN < MAX, e.g. DBZ=-20:60");
            memset(&norms[nnorms], 0, sizeof norms[nnorms]);
            snprintf(norms[nnorms].var, sizeof norms[nnorms].var, "%s", name);
            norms[nnorms].min = lo;
            norms[nnorms].max = hi;
            nnorms++;
        } else if (is_opt(a, "--shard-size")) {
            if (!(v = opt_value(argc, argv, &i, "--shard-size")) || parse_size(v, &opt.shard_bytes) || !opt.shard_bytes)
                return cli_usage_error(cmd, "--shard-size takes bytes with an optional K/M/G suffix");
        } else if (is_opt(a, "--shard-records")) {
            if (!(v = opt_value(argc, argv, &i, "--shard-records")) || cli_parse_u64(v, &u) || !u)
                return cli_usage_error(cmd, "--shard-records takes a positive number");
            opt.shard_records = u;
        } else if (is_opt(a, "-j") || is_opt(a, "--threads")) {
            if (!(v = opt_value(argc, argv, &i, a[1] == 'j' ? "-j" : "--threads")) || cli_parse_u64(v, &u) || !u ||
                u > 4096)
                return cli_usage_error(cmd, "%s takes a thread count", a);
            opt.threads = (int)u;
        } else if (strncmp(a, "-j", 2) == 0 && a[2]) {
            if (cli_parse_u64(a + 2, &u) || !u || u > 4096)
                return cli_usage_error(cmd, "-j takes a thread count");
            opt.threads = (int)u;
        } else if (is_opt(a, "--zstd-level")) {
            if (!(v = opt_value(argc, argv, &i, "--zstd-level")) || cli_parse_u64(v, &u) || u < 1 || u > 19)
                return cli_usage_error(cmd, "--zstd-level takes 1..19");
            opt.zstd_level = (int)u;
        } else if (is_opt(a, "--part")) {
            if (!(v = opt_value(argc, argv, &i, "--part")))
                return cli_usage_error(cmd, "--part takes K/N");
            if (tnrec_build_parse_part(&opt.part_index, &opt.part_count, v) != TNREC_OK)
                return cli_usage_error(cmd, "--part takes K/N with 0 <= K < N, not '%s'", v);
            part_given = 1;
        } else if (is_opt(a, "--holdout")) {
            if (!(v = opt_value(argc, argv, &i, "--holdout")) || parse_fraction(v, &opt.holdout))
                return cli_usage_error(cmd, "--holdout takes a fraction between 0 and 1, e.g. --holdout 0.2");
        } else if (is_opt(a, "--holdout-seed")) {
            if (!(v = opt_value(argc, argv, &i, "--holdout-seed")) || cli_parse_u64(v, &u))
                return cli_usage_error(cmd, "--holdout-seed takes a non-negative integer");
            opt.holdout_seed = u;
            holdout_seed_given = 1;
        } else if (strcmp(a, "--held-out") == 0) {
            opt.holdout_take = 1;
        } else if (strcmp(a, "--strict") == 0) {
            opt.strict = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else {
            known = 0;
        }
        if (!known)
            return cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!nsources)
        return cli_usage_error(cmd, "no sources given");
    if (!opt.out_dir)
        return cli_usage_error(cmd, "no output directory: give -o OUT");
    if (!opt.holdout && (opt.holdout_take || holdout_seed_given))
        return cli_usage_error(cmd, "--held-out and --holdout-seed need --holdout FRACTION");
    if (!holdout_seed_given)
        opt.holdout_seed = 1;
    if (!part_given)
        tnrec_build_part_from_env(&opt.part_index, &opt.part_count);
    opt.sources = sources;
    opt.nsources = nsources;
    opt.norms = norms;
    opt.nnorms = nnorms;
    progress_state ps = { now_s(), 0, isatty(2), quiet };
    opt.progress = on_progress;
    opt.progress_ctx = &ps;
    opt.on_skip = on_skip;
    opt.skip_ctx = &ps;
    if (cli_stop_install() != 0)
        fprintf(stderr, "tnrec build: warning: cannot catch SIGINT/SIGTERM; a stop loses the shard being "
                "written (a rerun still resumes)\n");
    opt.stop = cli_stop_flag();
    tnrec_build_summary sum;
    tnrec_err err = tnrec_build_run(&sum, &opt);
    if (ps.tty && !quiet)
        fprintf(stderr, "\r\033[K");
    if (err && cli_stop_signal()) {
        char why[64];
        snprintf(why, sizeof why, "interrupted by %s", cli_stop_name());
        print_resume(why, &sum, opt.out_dir, argc, argv);
        return cli_stop_exit_code();
    }
    if (err) {
        int rc = cli_fail(cmd, err);
        if (resumable(err))
            print_resume(NULL, &sum, opt.out_dir, argc, argv);
        return rc;
    }
    if (!quiet)
        print_summary(cmd, &sum);
    return TNREC_EXIT_OK;
}
