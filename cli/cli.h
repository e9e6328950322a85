/* cli/cli.h: what the cmd_<name>.c files share.
 *
 * Each subcommand is `int cmd_<name>(int argc, char **argv)` with argv[0]
 * the command name; it returns one of the TNREC_EXIT_* codes. Commands use
 * libtnrec's public API only, declare their options in a cli_opt table
 * (cli_opt.h) and report progress through cli_progress.h. */
#ifndef TNREC_CLI_H
#define TNREC_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdio.h>

#include "cli_progress.h"
#include "tnrec/tnrec.h"

#define TNREC_EXIT_OK 0
#define TNREC_EXIT_FAIL 1
#define TNREC_EXIT_USAGE 2

typedef struct tnrec_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} tnrec_cmd;

/* Prints "tnrec <cmd>: error: <library message>" to stderr (the message's
 * own "hint:" lines kept) and returns TNREC_EXIT_FAIL. */
int cli_fail(const char *cmd, tnrec_err err);
/* Prints "tnrec <cmd>: <formatted message>" and the usage hint to stderr;
 * returns TNREC_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A JSON string for text from a file (keys, paths, messages), which need
 * not be UTF-8: jansson refuses such text, so bytes outside ASCII are
 * replaced by '?' rather than the value being dropped. NULL only when out
 * of memory. */
json_t *cli_json_text(const char *s);
/* cli_fail for --json modes: also writes {"command", "ok": false, "error":
 * the error's name, "message"} on stdout. Returns TNREC_EXIT_FAIL. */
int cli_fail_json(const char *cmd, tnrec_err err);
/* That JSON object alone, without the line on stderr. */
void cli_json_failure(const char *cmd, tnrec_err err);
/* With on set (main.c does it when a command is given --json), a usage
 * error also prints {"command", "ok": false, "error": "usage", "message"}
 * on stdout, as failures do. */
void cli_json_errors(int on);
void cli_json_usage_error(const char *cmd, const char *msg);

/* Arguments of `tnrec eval` (with_output 0: --json allowed) and `tnrec
 * predict` (with_output 1: -o FILE required). */
typedef struct cli_score_args {
    const char *checkpoint, *dataset, *output, *device, *precision;
    const char *curves; /* eval --curves FILE, or NULL */
    int batch, threads;
    int json;
    cli_progress progress;
} cli_score_args;
/* Returns -1 when out is filled, else the exit code to return (0 after
 * --help, 2 after a usage error it printed). about and example go into the
 * help text. */
int cli_parse_score_args(cli_score_args *out, const char *cmd, const char *about, const char *example, int argc,
                         char **argv, int with_output);
/* The on_step callback for eval and predict: batches, samples/s, ETA;
 * ctx is the cli_progress. */
void cli_score_progress(void *ctx, const tnrec_step_report *r);
/* The evaluation eval and predict run: warns when the checkpoint records
 * no training data schema, installs the SIGINT/SIGTERM handlers, runs
 * tnrec_eval_run_opts into *m (scores to args->output, curves to
 * args->curves, progress on stderr). Returns -1 when it completed; else
 * the exit code after printing why not: 130 or 143 after a signal, with
 * one line saying nothing was written; 1 after an error (with args->json,
 * also the failure object on stdout). */
int cli_score_run(cli_score_args *args, const char *cmd, tnrec_metrics *m);
/* Warns on stderr when checkpoint (a file, or a run directory: its file
 * `name`, or best/last.tnck when name is NULL) does not record its training
 * data's schema, so `what` (the dataset) cannot be checked against it.
 * Silent when it does, and on errors (the command reports those). */
void cli_warn_unchecked_data(const char *cmd, const char *checkpoint, const char *name, const char *what);

/* SIGINT/SIGTERM handlers that only set a flag (cli_stop.c), and SIGXFSZ
 * ignored. Returns 0, or -1 when sigaction failed. */
int cli_stop_install(void);
/* The flag for the library's `stop` options: the signal number, 0 until one came. */
const volatile sig_atomic_t *cli_stop_flag(void);
int cli_stop_signal(void);
/* 128 + the signal number: 130 for SIGINT, 143 for SIGTERM. */
int cli_stop_exit_code(void);
const char *cli_stop_name(void);
/* One word as a POSIX shell reads it back: bare when it is plain,
 * otherwise in single quotes. */
void cli_print_word(FILE *f, const char *word);
/* "tnrec <cmd> ARGS..." with arguments quoted for a shell, no newline. */
void cli_print_command(FILE *f, const char *cmd, int argc, char **argv);

int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_mirror(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_import(int argc, char **argv);

#endif
