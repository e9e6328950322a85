/* cli/main.c: `tnrec <command>`: one table, one dispatcher.
 * Exit codes: 0 success, 1 failure, 2 usage error. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const tnrec_cmd commands[] = {
    { "mirror", cmd_mirror, "copy TorNet from Zenodo to a directory or S3 bucket; check a mirror" },
    { "synth", cmd_synth, "write a synthetic TorNet archive (catalog + NetCDF samples)" },
    { "build", cmd_build, "TorNet NetCDF samples -> record shards + manifest" },
    { "merge", cmd_merge, "join the parts of a 'build --part K/N' into one dataset" },
    { "train", cmd_train, "train the tornado detector; --summary prints a model" },
    { "eval", cmd_eval, "metrics of a checkpoint on a dataset" },
    { "predict", cmd_predict, "per-sample probabilities of a checkpoint, as CSV" },
    { "import", cmd_import, "a Keras .keras TorNet baseline (MIT's weights) as a tnrec run directory" },
    { "dump", cmd_dump, "summarise shards or a dataset; records, statistics, .npy" },
    { "verify", cmd_verify, "check every checksum and the manifest" },
    { "plot", cmd_plot, "draw one record as radar (PPI) panels: PNG, SVG or PDF" },
    { "report", cmd_report, "one HTML page about a training run and its evaluation" },
    { NULL, NULL, NULL }
};

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: tnrec <command> [options]\n"
            "       tnrec --version | --help\n"
            "\n"
            "TorNet radar archive to records to tornado detector.\n"
            "\n"
            "commands:\n");
    for (const tnrec_cmd *c = commands; c->name; c++)
        fprintf(out, "  %-8s  %s\n", c->name, c->summary);
    fprintf(out, "\n'tnrec <command> --help' (or 'tnrec help <command>') describes one command.\n");
}

int cli_fail(const char *cmd, tnrec_err err)
{
    const char *msg = tnrec_error_last();
    fprintf(stderr, "tnrec %s: error: %s\n", cmd, msg[0] ? msg : tnrec_err_name(err));
    return TNREC_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tnrec %s: %s\nhint: see 'tnrec %s --help'\n", cmd, msg, cmd);
    cli_json_usage_error(cmd, msg);
    return TNREC_EXIT_USAGE;
}

/* True when a command's arguments (before "--") ask for --json. */
static int wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return TNREC_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 && argc > 2) { /* tnrec help CMD == tnrec CMD --help */
        static char help_flag[] = "--help";
        char *help_argv[] = { argv[2], help_flag, NULL };
        for (const tnrec_cmd *c = commands; c->name; c++)
            if (strcmp(c->name, argv[2]) == 0)
                return c->run(2, help_argv);
        fprintf(stderr, "tnrec: unknown command '%s'\nhint: 'tnrec --help' lists the commands\n", argv[2]);
        return TNREC_EXIT_USAGE;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return TNREC_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("tnrec %s\nfeatures: %s\ngpu: %s\n", tnrec_version(), tnrec_features(), tnrec_gpu_build_info());
        return TNREC_EXIT_OK;
    }
    for (const tnrec_cmd *c = commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            cli_json_errors(wants_json(argc - 1, argv + 1));
            return c->run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "tnrec: unknown command '%s'\nhint: 'tnrec --help' lists the commands\n", name);
    return TNREC_EXIT_USAGE;
}
