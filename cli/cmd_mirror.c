/* cli/cmd_mirror.c: `tnrec mirror`: copy TorNet from Zenodo (or URLs) to a
 * directory or an S3-compatible bucket, or check a mirror (--verify).
 *
 * Draws a progress bar per file (speed, ETA) and totals when stderr is a
 * terminal, plain lines otherwise, and a final table on stdout. Prints no
 * credential: they are read from the environment by the library. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "cli_opt.h"
#include "tnrec/mirror.h"

static int parse_size(const char *s, unsigned long long *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-')
        return -1;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    double mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = 1024.0; break;
        case 'm': case 'M': mul = 1024.0 * 1024; break;
        case 'g': case 'G': mul = 1024.0 * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -1;
    }
    if (v * mul > 1.8e19)
        return -1;
    *out = (unsigned long long)(v * mul);
    return 0;
}

typedef struct ui {
    int tty;
    int lines;                 /* lines drawn last time (tty) */
    size_t n;
    tnrec_mirror_state *last_state;
    uint64_t *last_done;
    double *rate;
    double last_t;
    double last_plain;
    int verify;
    cli_progress progress;     /* --quiet, --progress-interval */
    pthread_mutex_t lock;      /* log lines (worker threads) and bars (caller) share stderr */
} ui;

static void human(char *out, size_t cap, double b)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void eta(char *out, size_t cap, double secs)
{
    if (secs < 0 || secs > 360000) {
        snprintf(out, cap, "--:--");
        return;
    }
    unsigned s = (unsigned)secs;
    if (s >= 3600)
        snprintf(out, cap, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, cap, "%02u:%02u", s / 60, s % 60);
}

static const char *state_name(tnrec_mirror_state s, int verify)
{
    switch (s) {
    case TNREC_MIRROR_PENDING: return "waiting";
    case TNREC_MIRROR_ACTIVE: return verify ? "checking" : "copying";
    case TNREC_MIRROR_COPIED: return "copied";
    case TNREC_MIRROR_SKIPPED: return "skipped";
    case TNREC_MIRROR_VERIFIED: return "verified";
    case TNREC_MIRROR_FAILED: return "failed";
    }
    return "?";
}

static void draw_progress(ui *u, const tnrec_mirror_progress *p);

static void on_progress(void *ud, const tnrec_mirror_progress *p)
{
    ui *u = ud;
    if (u->progress.quiet)
        return;
    pthread_mutex_lock(&u->lock);
    draw_progress(u, p);
    pthread_mutex_unlock(&u->lock);
}

/* The per-file arrays, sized on the first snapshot (the file list is fixed
 * by then). All or none: a later call must not find some of them missing. */
static int ui_alloc(ui *u, const tnrec_mirror_progress *p)
{
    if (u->last_state)
        return 0;
    size_t n = p->n_files ? p->n_files : 1;
    tnrec_mirror_state *state = calloc(n, sizeof *state);
    uint64_t *done = calloc(n, sizeof *done);
    double *rate = calloc(n, sizeof *rate);
    if (!state || !done || !rate) {
        free(state);
        free(done);
        free(rate);
        return -1;
    }
    u->n = p->n_files;
    u->last_state = state;
    u->last_done = done;
    u->rate = rate;
    u->last_t = p->elapsed_s;
    return 0;
}

static void plain_line(const ui *u, const char *name, tnrec_mirror_state s)
{
    fprintf(stderr, "tnrec mirror: %s: %s\n", name, state_name(s, u->verify));
}

/* Not a terminal: a line when a file starts and one when it ends. A file
 * copied or checked between two snapshots (a small one takes less than
 * their 200 ms) still gets its start line first: the library marks every
 * file active before it moves a byte. A file that fails at once may show
 * only "failed": one stopped before it started never was copying. */
static void plain_states(ui *u, const tnrec_mirror_progress *p)
{
    for (size_t i = 0; i < p->n_files; i++) {
        const tnrec_mirror_file *f = &p->files[i];
        if (f->state == u->last_state[i])
            continue;
        int succeeded = f->state == TNREC_MIRROR_COPIED || f->state == TNREC_MIRROR_VERIFIED;
        if (succeeded && u->last_state[i] == TNREC_MIRROR_PENDING)
            plain_line(u, f->name, TNREC_MIRROR_ACTIVE);
        u->last_state[i] = f->state;
        if (f->state != TNREC_MIRROR_PENDING)
            plain_line(u, f->name, f->state);
    }
}

/* Not a terminal: the totals every --progress-interval seconds, never on
 * the last call (the table on stdout follows). Tenths of a second when
 * the interval is under one, so that successive lines differ. */
static void plain_totals(ui *u, const tnrec_mirror_progress *p)
{
    if (p->final || p->elapsed_s - u->last_plain < u->progress.interval)
        return;
    char d[32], t[32];
    human(d, sizeof d, (double)p->bytes_done);
    human(t, sizeof t, (double)p->bytes_total);
    fprintf(stderr, "tnrec mirror: %s of %s after %.*f s\n", d, t, u->progress.interval < 1 ? 1 : 0,
            p->elapsed_s);
    u->last_plain = p->elapsed_s;
}

static void draw_progress(ui *u, const tnrec_mirror_progress *p)
{
    if (ui_alloc(u, p) != 0)
        return; /* out of memory: no progress, the run goes on */
    double dt = p->elapsed_s - u->last_t;
    if (dt > 0.05) {
        for (size_t i = 0; i < p->n_files; i++) {
            double inst = (double)(p->files[i].done - (p->files[i].done >= u->last_done[i] ? u->last_done[i] : p->files[i].done)) / dt;
            u->rate[i] = u->rate[i] > 0 ? 0.7 * u->rate[i] + 0.3 * inst : inst;
            u->last_done[i] = p->files[i].done;
        }
        u->last_t = p->elapsed_s;
    }
    if (!u->tty) {
        plain_states(u, p);
        plain_totals(u, p);
        return;
    }
    /* terminal: redraw a block of lines in place */
    if (u->lines)
        fprintf(stderr, "\033[%dA", u->lines);
    int lines = 0;
    int shown = 0;
    double total_rate = 0;
    for (size_t i = 0; i < p->n_files; i++)
        if (p->files[i].state == TNREC_MIRROR_ACTIVE)
            total_rate += u->rate[i];
    for (size_t i = 0; i < p->n_files && shown < 20; i++) {
        const tnrec_mirror_file *f = &p->files[i];
        if (f->state == TNREC_MIRROR_PENDING && !p->final)
            continue;
        shown++;
        double frac = f->size && f->size != TNREC_MIRROR_SIZE_UNKNOWN ? (double)f->done / (double)f->size : 0;
        if (frac > 1)
            frac = 1;
        if (f->state == TNREC_MIRROR_COPIED || f->state == TNREC_MIRROR_SKIPPED ||
            f->state == TNREC_MIRROR_VERIFIED)
            frac = 1;
        char bar[31];
        int fill = (int)(frac * 30);
        for (int k = 0; k < 30; k++)
            bar[k] = k < fill ? '#' : '.';
        bar[30] = '\0';
        char sp[32], et[32], sz[32];
        human(sp, sizeof sp, u->rate[i]);
        human(sz, sizeof sz, f->size == TNREC_MIRROR_SIZE_UNKNOWN ? 0 : (double)f->size);
        eta(et, sizeof et, u->rate[i] > 1 ? (double)(f->size - (f->done < f->size ? f->done : f->size)) / u->rate[i] : -1);
        if (f->state == TNREC_MIRROR_ACTIVE)
            fprintf(stderr, "\033[2K%-28.28s [%s] %3.0f%% %10s %10s/s ETA %s\n", f->name, bar,
                    frac * 100, sz, sp, et);
        else
            fprintf(stderr, "\033[2K%-28.28s [%s] %-8s %10s\n", f->name, bar,
                    state_name(f->state, u->verify), sz);
        lines++;
    }
    if (p->final && p->elapsed_s > 0)
        total_rate = (double)p->bytes_done / p->elapsed_s; /* the average, at the end */
    char d[32], t[32], sp[32], et[32];
    human(d, sizeof d, (double)p->bytes_done);
    human(t, sizeof t, (double)p->bytes_total);
    human(sp, sizeof sp, total_rate);
    eta(et, sizeof et, total_rate > 1 ? (double)(p->bytes_total - p->bytes_done) / total_rate : -1);
    fprintf(stderr, "\033[2Ktotal: %s of %s, %s/s, ETA %s, %.0f s elapsed\n", d, t, sp, et, p->elapsed_s);
    lines++;
    u->lines = lines;
    fflush(stderr);
}

static void on_log(void *ud, const char *line)
{
    ui *u = ud;
    pthread_mutex_lock(&u->lock);
    if (u->tty && u->lines) {
        /* keep the bars below the log lines */
        fprintf(stderr, "\033[%dA\033[J", u->lines);
        u->lines = 0;
    }
    fprintf(stderr, "tnrec mirror: %s\n", line);
    pthread_mutex_unlock(&u->lock);
}

static void print_table(const tnrec_mirror_report *r, int verify)
{
    printf("%-32s %-9s %15s  %s\n", "file", "status", "bytes", "md5 / reason");
    for (size_t i = 0; i < r->n_files; i++) {
        const tnrec_mirror_file *f = &r->files[i];
        char size[32];
        if (f->size == TNREC_MIRROR_SIZE_UNKNOWN)
            snprintf(size, sizeof size, "?");
        else
            snprintf(size, sizeof size, "%llu", (unsigned long long)f->size);
        const char *why = f->state == TNREC_MIRROR_FAILED ? (f->message ? f->message : "") : f->md5;
        /* only the first line of a message in the table */
        size_t wl = strcspn(why, "\n");
        printf("%-32s %-9s %15s  %.*s\n", f->name, state_name(f->state, verify), size, (int)wl, why);
    }
    char moved[32];
    human(moved, sizeof moved, (double)r->bytes_transferred);
    printf("copied %zu, skipped %zu, verified %zu, failed %zu; %s moved in %.1f s\n", r->copied,
           r->skipped, r->verified, r->failed, moved, r->elapsed_s);
}

/* --limit-rate and --part-size: a size such as 512k, 100M or 5G. */
static int opt_size(void *dst, const char *v)
{
    return parse_size(v, dst);
}

int cmd_mirror(int argc, char **argv)
{
    const char *cmd = "mirror";
    tnrec_mirror_options opt;
    tnrec_mirror_options_init(&opt);
    int verify = 0, verbose = 0;
    ui u = { .tty = isatty(2) };
    cli_progress_init(&u.progress, cmd);
    unsigned long long limit_rate = opt.limit_rate, part_size = 0;
    int part_size_given = 0;
    const cli_opt opts[] = {
        { CLI_STRING, "zenodo-url", 0, NULL, "URL", .dst = &opt.zenodo_url, .def = "https://zenodo.org",
          .help = "Zenodo server" },
        { CLI_INT, "connections", 0, NULL, "N", CLI_INT_DST(opt.connections), .min = 1, .max = 64, .def = "4",
          .help = "Range connections per file" },
        { CLI_INT, "jobs", 'j', NULL, "N", CLI_INT_DST(opt.jobs), .min = 1, .max = 64, .def = "2",
          .help = "files at once (worker threads)" },
        { CLI_CUSTOM, "limit-rate", 0, NULL, "RATE", .dst = &limit_rate, .parse = opt_size,
          .rule = "a size such as 512k, 100M or 5G", .help = "bytes/s over all transfers, e.g. 20M (default none)" },
        { CLI_STRING, "cacert", 0, NULL, "FILE", .dst = &opt.cacert,
          .help = "CA bundle for TLS (verification is always on)" },
        { CLI_INT, "retries", 0, NULL, "N", CLI_INT_DST(opt.retries), .min = 0, .max = 100000000, .def = "8",
          .help = "retries of a failing transfer" },
        { CLI_INT, "retry-delay", 0, NULL, "MS", CLI_INT_DST(opt.retry_delay_ms), .min = 0, .max = 100000000,
          .def = "1000", .help = "first backoff delay, doubled each retry" },
        { CLI_INT, "low-speed-time", 0, NULL, "S", CLI_INT_DST(opt.low_speed_time), .min = 0, .max = 100000000,
          .def = "60", .help = "abandon a transfer slower than 1 KiB/s for S seconds" },
        { CLI_STRING, "endpoint", 0, NULL, "URL", .dst = &opt.endpoint,
          .help = "S3 endpoint, e.g. https://s3.us-west-004.backblazeb2.com" },
        { CLI_STRING, "region", 0, NULL, "NAME", .dst = &opt.region,
          .help = "S3 region (default: from a B2 endpoint, AWS_REGION, us-east-1)" },
        { CLI_CUSTOM, "part-size", 0, NULL, "SIZE", .dst = &part_size, .parse = opt_size,
          .rule = "a size such as 512k, 100M or 5G", .seen = &part_size_given,
          .help = "multipart part size (default 100M, kept in 5M..5G, <= 10000 parts)" },
        { CLI_FLAG, "stream", 0, .dst = &opt.stream, .help = "S3: download into upload parts in memory, no local file" },
        { CLI_STRING, "staging", 0, NULL, "DIR", .dst = &opt.staging,
          .help = "S3 without --stream: where downloads wait (default .tnrec-staging)" },
        { CLI_FLAG, "abort-incomplete", 0, .dst = &opt.abort_incomplete,
          .help = "S3: abort unfinished multipart uploads under the prefix first" },
        { CLI_FLAG, "verify", 0, .dst = &verify,
          .help = "re-read TARGET (directory, URL, URL prefix ending in '/',\nor s3://bucket/prefix) and check sizes and MD5s" },
        { CLI_FLAG, "verbose", 'v', .dst = &verbose, .help = "log each request and decision (never a secret)" },
        CLI_PROGRESS_OPTS(u.progress),
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = cmd,
        .usage = "tnrec mirror [options] SOURCE... DEST\n"
                 "       tnrec mirror --verify [options] TARGET [SOURCE...]\n"
                 "       tnrec mirror --abort-incomplete [options] s3://BUCKET/PREFIX",
        .about = "Copy files to DEST (a directory or s3://bucket/prefix), checking MD5s;\n"
                 "files already there with the same size and MD5 are skipped.\n"
                 "\n"
                 "sources:\n"
                 "  zenodo:RECORD         every file of a Zenodo record\n"
                 "  zenodo:RECORD/FILE    one file of it\n"
                 "  tornet                the ten TorNet v1.1 records (catalog.csv included)\n"
                 "  http(s)://...         one file, e.g. https://proxy/file/bucket/tornet_2013.tar.gz",
        .opts = opts,
        .epilog = "S3 credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
                  "B2_APPLICATION_KEY_ID/B2_APPLICATION_KEY.\n"
                  "\n"
                  "Stopped (SIGINT exits 130, SIGTERM 143, a failure, kill -9), a run keeps its partial\n"
                  "downloads and unfinished uploads: rerun the same command to resume.\n"
                  "\n"
                  "examples:\n"
                  "  tnrec mirror tornet /data/tornet\n"
                  "  tnrec mirror --stream --endpoint https://s3.us-west-004.backblazeb2.com tornet s3://my-bucket/tornet\n"
                  "  tnrec mirror --verify https://proxy.example.org/file/my-bucket/tornet/ tornet\n",
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t npos = 0;
    if (!pos)
        return cli_fail(cmd, TNREC_ENOMEM);
    int rc = cli_parse(&spec, argc, argv, pos, (size_t)argc + 1, &npos);
    if (rc >= 0)
        goto done;
    rc = TNREC_EXIT_OK;
    opt.limit_rate = limit_rate;
    if (part_size_given) {
        if (part_size < (5ull << 20) || part_size > (5ull << 30)) {
            fprintf(stderr, "tnrec mirror: --part-size kept within 5M..5G\n");
            part_size = part_size < (5ull << 20) ? (5ull << 20) : (5ull << 30);
        }
        opt.part_size = part_size;
    }
    if (cli_stop_install() != 0)
        fprintf(stderr, "tnrec mirror: warning: cannot catch SIGINT/SIGTERM; a stop then loses up to a "
                "second of each download (a rerun still resumes)\n");
    opt.stop = cli_stop_flag();
    u.verify = verify;
    pthread_mutex_init(&u.lock, NULL);
    opt.progress = on_progress;
    opt.ud = &u;
    if (verbose)
        opt.log = on_log;
    tnrec_mirror_report *rep = NULL;
    tnrec_err err;
    if (verify) {
        if (npos < 1) {
            rc = cli_usage_error(cmd, "--verify needs a TARGET");
            goto done;
        }
        err = tnrec_mirror_verify(&rep, pos[0], pos + 1, npos - 1, &opt);
    } else {
        if (npos < 2 && !(opt.abort_incomplete && npos == 1)) {
            rc = cli_usage_error(cmd, "need at least one SOURCE and a DEST");
            goto done;
        }
        err = tnrec_mirror_run(&rep, pos, npos - 1, pos[npos - 1], &opt);
    }
    if (rep)
        print_table(rep, verify);
    else if (!err && opt.abort_incomplete)
        printf("unfinished multipart uploads under %s aborted\n", pos[npos - 1]);
    fflush(stdout);
    if (err && cli_stop_signal()) {
        fprintf(stderr, "tnrec mirror: interrupted by %s; %s; to resume, run the same command again: ",
                cli_stop_name(), verify ? "nothing was changed"
                : "partial downloads (.tnrec-part with .tnrec-state) and uploaded parts are kept");
        cli_print_command(stderr, "mirror", argc, argv);
        fputc('\n', stderr);
        rc = cli_stop_exit_code();
    } else {
        rc = err ? cli_fail(cmd, err) : TNREC_EXIT_OK;
    }
    tnrec_mirror_report_free(rep);
    free(u.last_state);
    free(u.last_done);
    free(u.rate);
    pthread_mutex_destroy(&u.lock);
done:
    free(pos);
    return rc;
}
