/* cli/cmd_build.c: `tnrec build SRC... -o OUT`: TorNet NetCDF -> record shards.
 *
 * Parses the options into tnrec_build_options and runs the build. Prints
 * one line per skipped input on stderr, a progress line when stderr is a
 * terminal, and a summary at the end. The part K/N comes from --part or,
 * when not given, from an MPI or Slurm array launcher's environment. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_opt.h"
#include "tnrec/ingest.h"

#define MAX_LIST 64

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

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    cli_progress_count(ctx, done, total, "inputs", NULL);
}

static void on_skip(void *ctx, const char *input, const char *reason)
{
    cli_progress_clear(ctx);
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

/* What the custom option parsers of the build fill. */
typedef struct build_args {
    tnrec_build_options opt;
    int years[512];
    const char *vars[MAX_LIST];
    char varbuf[1024];
    tnrec_norm_range norms[16];
    size_t nnorms;
    const char *dtype;
    int part_given, holdout_seed_given;
} build_args;

static int opt_years(void *dst, const char *v)
{
    build_args *b = dst;
    int n = parse_years(v, b->years, 512);
    if (n <= 0)
        return -1;
    b->opt.years = b->years;
    b->opt.nyears = (size_t)n;
    return 0;
}

static int opt_variables(void *dst, const char *v)
{
    build_args *b = dst;
    const char *checked = NULL;
    if (strlen(v) >= sizeof b->varbuf || cli_check_variables(&checked, v) != 0)
        return -1;
    snprintf(b->varbuf, sizeof b->varbuf, "%s", v);
    int n = split_list(b->varbuf, b->vars, MAX_LIST);
    if (n <= 0)
        return -1;
    b->opt.variables = b->vars;
    b->opt.nvariables = (size_t)n;
    return 0;
}

static int opt_norm(void *dst, const char *v)
{
    build_args *b = dst;
    char name[TNREC_NAME_MAX];
    float lo, hi;
    int used = 0;
    if (b->nnorms == sizeof b->norms / sizeof b->norms[0] ||
        sscanf(v, "%31[^=]=%f:%f%n", name, &lo, &hi, &used) != 3 || v[used] || !(hi > lo))
        return -1;
    tnrec_norm_range *r = &b->norms[b->nnorms++];
    memset(r, 0, sizeof *r);
    snprintf(r->var, sizeof r->var, "%s", name);
    r->min = lo;
    r->max = hi;
    return 0;
}

static int opt_shard_size(void *dst, const char *v)
{
    uint64_t *bytes = dst;
    return parse_size(v, bytes) != 0 || *bytes == 0 ? -1 : 0;
}

static int opt_part(void *dst, const char *v)
{
    build_args *b = dst;
    if (tnrec_build_parse_part(&b->opt.part_index, &b->opt.part_count, v) != TNREC_OK)
        return -1;
    b->part_given = 1;
    return 0;
}

/* A fraction strictly between 0 and 1. */
static int opt_holdout(void *dst, const char *v)
{
    double *out = dst;
    char *end;
    double f = strtod(v, &end);
    if (end == v || *end || !(f > 0 && f < 1))
        return -1;
    *out = f;
    return 0;
}

static int opt_holdout_seed(void *dst, const char *v)
{
    build_args *b = dst;
    char *end;
    if (!*v || *v == '-')
        return -1;
    errno = 0;
    unsigned long long u = strtoull(v, &end, 10);
    if (errno || *end)
        return -1;
    b->opt.holdout_seed = u;
    b->holdout_seed_given = 1;
    return 0;
}

static tnrec_encoding encoding_of(const char *dtype)
{
    if (strcmp(dtype, "float32") == 0)
        return TNREC_ENC_FLOAT32;
    return strcmp(dtype, "uint8") == 0 ? TNREC_ENC_UINT8 : TNREC_ENC_FLOAT16;
}

int cmd_build(int argc, char **argv)
{
    const char *cmd = "build";
    build_args ba;
    memset(&ba, 0, sizeof ba);
    tnrec_build_options_init(&ba.opt);
    tnrec_build_options *o = &ba.opt;
    cli_progress ps;
    cli_progress_init(&ps, cmd);
    double nodata = NAN; /* --nodata not given */
    const cli_opt opts[] = {
        CLI_HEAD("selection:"),
        { CLI_ENUM, "split", 0, NULL, "train|test|all", .dst = &o->split, .choices = "train,test,all",
          .help = "split from catalog.csv or the train/ test/ path (default all)" },
        { CLI_CUSTOM, "years", 0, NULL, "2013,2015-2017", .dst = &ba, .parse = opt_years,
          .rule = "a list of years such as 2013,2015-2017",
          .help = "years of the sample's start time (default all)" },
        { CLI_INT, "frames", 0, NULL, "N", CLI_INT_DST(o->frames), .min = 1, .max = 4, .def = "4",
          .help = "keep the last N frames, 1..4" },
        { CLI_CUSTOM, "variables", 0, NULL, "DBZ,VEL,...", .dst = &ba, .parse = opt_variables,
          .rule = "a comma-separated list of DBZ, VEL, KDP, RHOHV, ZDR, WIDTH, range_folded_mask",
          .help = "subset of DBZ VEL KDP RHOHV ZDR WIDTH range_folded_mask" },
        { CLI_CUSTOM, "part", 0, NULL, "K/N", .dst = &ba, .parse = opt_part, .rule = "K/N with 0 <= K < N",
          .help = "build part K of N (default: from OMPI_COMM_WORLD_RANK/SIZE,\n"
                  "PMI_RANK/SIZE or SLURM_ARRAY_TASK_ID/COUNT); join with 'tnrec merge'" },
        { CLI_CUSTOM, "holdout", 0, NULL, "FRACTION", .dst = &o->holdout, .parse = opt_holdout,
          .rule = "a fraction between 0 and 1, e.g. --holdout 0.2",
          .help = "keep about this share of the selection out, as whole storms\n"
                  "(samples grouped by the day and event id of their file names)" },
        { CLI_FLAG, "held-out", 0, .dst = &o->holdout_take,
          .help = "with --holdout: build only the held-out storms (a validation set)" },
        { CLI_CUSTOM, "holdout-seed", 0, NULL, "N", .dst = &ba, .parse = opt_holdout_seed,
          .rule = "a non-negative integer", .help = "which storms are held out (default 1)" },
        CLI_HEAD("encoding:"),
        { CLI_ENUM, "dtype", 0, NULL, "float32|float16|uint8", .dst = &ba.dtype, .choices = "float32,float16,uint8",
          .help = "stored type of the radar variables\n(default float16)" },
        { CLI_CUSTOM, "norm", 0, NULL, "VAR=MIN:MAX", .dst = &ba, .parse = opt_norm,
          .rule = "VAR=MIN:MAX with MIN < MAX, e.g. DBZ=-20:60 (at most 16)",
          .help = "normalisation range (default TorNet's; repeatable)" },
        { CLI_DOUBLE, "nodata", 0, NULL, "X", .dst = &nodata, .min = -1000, .max = 1000,
          .help = "value of gates with no data, in normalised units (default -3, as\nTorNet's loaders; docs/ingest.md)" },
        { CLI_INT, "zstd-level", 0, NULL, "L", CLI_INT_DST(o->zstd_level), .min = TNREC_ZSTD_LEVEL_MIN,
          .max = TNREC_ZSTD_LEVEL_MAX,
          .help = "1..19, or -7..-1: zstd's fast levels, which decode faster\nfor more bytes (default 2; 1 with --dtype uint8; 0: the\ndefault)" },
        CLI_HEAD("output:"),
        { CLI_STRING, "output", 'o', NULL, "OUT", .dst = &o->out_dir, .help = "dataset directory" },
        { CLI_CUSTOM, "shard-size", 0, NULL, "BYTES", .dst = &o->shard_bytes, .parse = opt_shard_size,
          .rule = "a positive size in bytes with an optional K/M/G suffix", .def = "512M",
          .help = "shard size limit, K/M/G suffixes" },
        { CLI_INT, "shard-records", 0, NULL, "N", CLI_INT_DST(o->shard_records), .min = 1, .max = CLI_NONE,
          .help = "records per shard limit (default none)" },
        { CLI_INT, "jobs", 'j', "threads", "N", CLI_INT_DST(o->threads), .min = 1, .max = 4096, .def = "all cores",
          .help = "worker threads" },
        { CLI_FLAG, "strict", 0, .dst = &o->strict, .help = "fail on the first bad input instead of skipping it" },
        { CLI_FLAG, "quiet", 'q', .dst = &ps.quiet, .help = "no progress or summary (errors are still printed)" },
        { CLI_DOUBLE, "progress-interval", 0, NULL, "S", .dst = &ps.interval, .min = 0.1, .max = 86400, .def = "30",
          .help = "seconds between progress lines when stderr is not a\nterminal" },
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = cmd,
        .usage = "tnrec build SRC... -o OUT [options]",
        .about = "Turns TorNet NetCDF samples into zstd record shards plus manifest.json.\n"
                 "SRC: a TORNET_ROOT (catalog.csv, train/, test/), a directory of .nc files\n"
                 "(searched recursively), a text file listing .nc paths, or a year tarball\n"
                 "(tornet_YYYY.tar.gz) as a path or an http(s) URL, streamed.",
        .opts = opts,
        .epilog = "A build that stops (an error, a full disk, SIGINT or SIGTERM, kill -9) keeps its finished\n"
                  "shards: rerun the same command to resume. SIGINT exits 130, SIGTERM 143.\n"
                  "example: tnrec build $TORNET_ROOT --split train --years 2013-2015 -o shards/train -j 8\n",
    };
    const char *sources[1024];
    size_t nsources = 0;
    int rc = cli_parse(&spec, argc, argv, sources, sizeof sources / sizeof sources[0], &nsources);
    if (rc >= 0)
        return rc;
    if (ba.dtype)
        o->encoding = encoding_of(ba.dtype);
    int quiet = ps.quiet;
    if (!nsources)
        return cli_usage_error(cmd, "no sources given");
    tnrec_build_options opt = ba.opt;
    if (!opt.out_dir)
        return cli_usage_error(cmd, "no output directory: give -o OUT");
    if (!opt.holdout && (opt.holdout_take || ba.holdout_seed_given))
        return cli_usage_error(cmd, "--held-out and --holdout-seed need --holdout FRACTION");
    if (!ba.holdout_seed_given)
        opt.holdout_seed = 1;
    if (!ba.part_given)
        tnrec_build_part_from_env(&opt.part_index, &opt.part_count);
    opt.sources = sources;
    opt.nsources = nsources;
    opt.norms = ba.norms;
    opt.nnorms = ba.nnorms;
    if (!isnan(nodata)) {
        opt.has_nodata = 1;
        opt.nodata = (float)nodata;
    }
    cli_progress_start(&ps);
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
    cli_progress_clear(&ps);
    if (err && cli_stop_signal()) {
        char why[64];
        snprintf(why, sizeof why, "interrupted by %s", cli_stop_name());
        print_resume(why, &sum, opt.out_dir, argc, argv);
        return cli_stop_exit_code();
    }
    if (err) {
        rc = cli_fail(cmd, err);
        if (resumable(err))
            print_resume(NULL, &sum, opt.out_dir, argc, argv);
        return rc;
    }
    if (!quiet)
        print_summary(cmd, &sum);
    return TNREC_EXIT_OK;
}
