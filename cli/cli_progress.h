/* cli/cli_progress.h: progress of long work, for people and for logs.
 *
 * On a terminal (stderr a tty) a live line redrawn in place with '\r' a
 * few times a second; otherwise one plain line "tnrec CMD: ..." every
 * --progress-interval seconds (default 30), so that logs under nohup or
 * Slurm show the same numbers without being flooded. --quiet silences
 * progress, never errors. */
#ifndef TNREC_CLI_PROGRESS_H
#define TNREC_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct cli_progress {
    const char *cmd;
    int tty;         /* stderr is a terminal: live line */
    int quiet;       /* --quiet: nothing */
    int drawn;       /* a live line is on screen */
    double interval; /* --progress-interval: seconds between plain lines */
    double start;    /* when the work began */
    double last;     /* when a line was last shown */
} cli_progress;

/* The two options every command with progress has, as cli_opt rows. */
#define CLI_PROGRESS_OPTS(p)                                                                                   \
    { CLI_FLAG, "quiet", 'q', .dst = &(p).quiet, .help = "no progress (errors are still printed)" },           \
    { CLI_DOUBLE, "progress-interval", 0, NULL, "S", .dst = &(p).interval, .min = 0.1, .max = 86400,          \
      .def = "30", .help = "seconds between progress lines when stderr is not a\nterminal" }

double cli_now(void);
/* Defaults (interval 30 s, tty from stderr); call before parsing options. */
void cli_progress_init(cli_progress *p, const char *cmd);
/* Starts the clock of the rates; call when the work begins (the next
 * plain line still comes an interval after the last one). */
void cli_progress_start(cli_progress *p);
/* True when a line is due now (terminal: 4 a second; else every interval). */
int cli_progress_due(cli_progress *p);
/* Shows one progress line (printf format) and marks it shown. */
void cli_progress_show(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Shows "done/total UNIT  R UNIT/s  ETA" (total 0: unknown) with extra text after it, when due. */
void cli_progress_count(cli_progress *p, uint64_t done, uint64_t total, const char *unit, const char *extra);
/* Erases the live line, before other output or at the end. */
void cli_progress_clear(cli_progress *p);
/* "1h02m03s" into buf. */
void cli_progress_eta(char *buf, size_t n, double seconds);

#endif
