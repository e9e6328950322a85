/* cli/cli_opt.h: the options of a command, declared once in a table.
 *
 * One parser reads every command's arguments from its table and the
 * command's help text is generated from the same table, so the two never
 * disagree. `--opt value`, `--opt=value`, `-o value` and `-ovalue` all
 * work; `--` ends the options; `-h`/`--help` prints the help. */
#ifndef TNREC_CLI_OPT_H
#define TNREC_CLI_OPT_H

#include <stddef.h>
#include <stdio.h>

typedef enum cli_opt_type {
    CLI_SECTION, /* not an option: a heading line in the help ("selection:") */
    CLI_FLAG,    /* no value; sets *(int *)dst to 1 */
    CLI_INT,     /* integer in [min, max]; dst is an integer of dst_size bytes */
    CLI_DOUBLE,  /* finite number in [min, max]; dst is a double */
    CLI_STRING,  /* any non-empty text; dst is a const char * */
    CLI_ENUM,    /* one of `choices` ("cpu,cuda"); dst is a const char * */
    CLI_CUSTOM,  /* parse(dst, value) reads it; `rule` says what it takes */
} cli_opt_type;

typedef struct cli_opt {
    cli_opt_type type;
    const char *name;    /* long name without "--"; the heading for CLI_SECTION */
    char short_name;     /* 'j' for -j, or 0 */
    const char *aliases; /* other long names, comma-separated ("threads"), or NULL */
    const char *arg;     /* the value's name in the help ("N"); NULL for flags */
    void *dst;
    size_t dst_size;     /* CLI_INT: sizeof *dst (4 or 8) */
    double min, max;     /* CLI_INT, CLI_DOUBLE; CLI_NONE for no bound; both 0: any value */
    int above_min;       /* CLI_DOUBLE: the value must be greater than min, not equal */
    const char *choices; /* CLI_ENUM */
    int (*parse)(void *dst, const char *value); /* CLI_CUSTOM: 0 or -1 */
    const char *rule;    /* CLI_CUSTOM: "a list such as 2013,2015-2017" */
    const char *def;     /* default shown in the help, or NULL */
    const char *help;    /* help text; '\n' starts an indented continuation line */
    int *seen;           /* set to 1 when the option is given, or NULL */
} cli_opt;

#define CLI_NONE 1e308 /* .max = CLI_NONE: no upper bound */

/* Table rows, in the order name, short, then the rest. */
#define CLI_OPT_END { .type = CLI_SECTION, .name = NULL }
#define CLI_HEAD(title) { .type = CLI_SECTION, .name = (title) }
#define CLI_INT_DST(x) .dst = &(x), .dst_size = sizeof(x)

typedef struct cli_spec {
    const char *cmd;     /* "build" */
    const char *usage;   /* the usage lines, without "usage: " on the first */
    const char *about;   /* what the command does, a paragraph or more */
    const cli_opt *opts; /* ends with CLI_OPT_END */
    const char *epilog;  /* after the options: notes, an example; or NULL */
} cli_spec;

/* Parses argv[1..argc-1] (argv[0] is the command name). Positional
 * arguments land in pos (at most cap of them) and their count in *npos.
 * Returns -1 when the command should run; otherwise the exit code to
 * return: 0 after printing the help, 2 after a usage error (printed, with
 * the flag, the rule and the value). */
int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos, size_t cap, size_t *npos);
/* cli_parse for a command of at most one positional argument, which is
 * named `what` in the usage error when there are more; *out is it, or
 * NULL when none was given. Returns as cli_parse. */
int cli_parse_one(const cli_spec *spec, int argc, char **argv, const char *what, const char **out);
/* cli_parse for a command of one or more PATHs: *out (malloc'd; free it)
 * holds *n of them. None is the usage error "no PATH given (detail)".
 * Returns as cli_parse; *out is NULL unless it returns -1. */
int cli_parse_paths(const cli_spec *spec, int argc, char **argv, const char *detail, const char ***out, size_t *n);
/* The help text generated from the table. */
void cli_print_help(const cli_spec *spec, FILE *out);

/* True when name is in the comma-separated list. */
int cli_in_list(const char *list, const char *name);

/* CLI_CUSTOM checks shared by several commands (cli_values.c); each
 * stores the value (a const char *) when it is valid. */
extern const char cli_variable_names[]; /* "DBZ,VEL,...,range_folded_mask" */
extern const char cli_model_names[];    /* "seed3d,tiny,tornet-cnn" */
/* A comma-separated list of TorNet variables. */
int cli_check_variables(void *dst, const char *value);
/* A model preset name or a layer spec (which has commas). */
int cli_check_model(void *dst, const char *value);
/* A no-data value for a model's input, as tnrec_train_nodata_parse takes it. */
int cli_check_nodata(void *dst, const char *value);

#endif
