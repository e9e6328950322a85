/* cli/cli_progress.c: live progress lines and plain log lines (cli_progress.h). */
#include <math.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "cli_progress.h"

#define TTY_PERIOD 0.25

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_init(cli_progress *p, const char *cmd)
{
    p->cmd = cmd;
    p->tty = isatty(2);
    p->quiet = 0;
    p->drawn = 0;
    p->interval = 30;
    p->start = p->last = cli_now();
}

void cli_progress_start(cli_progress *p)
{
    p->start = cli_now();
}

int cli_progress_due(cli_progress *p)
{
    if (p->quiet)
        return 0;
    return cli_now() - p->last >= (p->tty ? TTY_PERIOD : p->interval);
}

void cli_progress_show(cli_progress *p, const char *fmt, ...)
{
    if (p->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (p->tty)
        fputs("\r  ", stderr);
    else
        fprintf(stderr, "tnrec %s: ", p->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(p->tty ? "\033[K" : "\n", stderr);
    fflush(stderr);
    p->drawn = p->tty;
    p->last = cli_now();
}

void cli_progress_eta(char *buf, size_t n, double seconds)
{
    if (!(seconds >= 0) || !isfinite(seconds))
        seconds = 0;
    long s = lround(seconds);
    snprintf(buf, n, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
}

void cli_progress_count(cli_progress *p, uint64_t done, uint64_t total, const char *unit, const char *extra)
{
    if (!cli_progress_due(p))
        return;
    double t = cli_now() - p->start;
    double rate = t > 0 ? (double)done / t : 0;
    char eta[32] = "";
    if (total > done && rate > 0) {
        char hms[24];
        cli_progress_eta(hms, sizeof hms, (double)(total - done) / rate);
        snprintf(eta, sizeof eta, "  ETA %s", hms);
    }
    if (total)
        cli_progress_show(p, "%llu/%llu %s  %.1f %s/s%s%s", (unsigned long long)done, (unsigned long long)total, unit,
                          rate, unit, eta, extra ? extra : "");
    else
        cli_progress_show(p, "%llu %s  %.1f %s/s%s", (unsigned long long)done, unit, rate, unit, extra ? extra : "");
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->drawn)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->drawn = 0;
}
