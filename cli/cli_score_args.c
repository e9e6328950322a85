/* cli/cli_score_args.c: the arguments `tnrec eval` and `tnrec predict`
 * share: CHECKPOINT DATASET, --batch, --threads, --device, --precision, and per command
 * --json (eval) or -o/--output (predict). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_parse_score_args(cli_score_args *out, const char *cmd, int argc, char **argv, int with_output)
{
    memset(out, 0, sizeof *out);
    out->batch = 32;
    out->threads = 2;
    out->device = "cpu";
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!with_output && strcmp(a, "--json") == 0) {
            out->json = 1;
        } else if (with_output && (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "%s needs a file name", a);
            out->output = argv[++i];
        } else if (strcmp(a, "--device") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "--device needs cpu or cuda");
            out->device = argv[++i];
        } else if (strcmp(a, "--precision") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "--precision needs fp32, fp16 or bf16");
            out->precision = argv[++i];
        } else if (strcmp(a, "--batch") == 0 || strcmp(a, "--threads") == 0) {
            unsigned long long *dst = a[2] == 'b' ? &out->batch : &out->threads;
            if (i + 1 >= argc || cli_parse_u64(argv[i + 1], dst) || *dst < 1 || *dst > 65536)
                return cli_usage_error(cmd, "%s needs a positive integer", a);
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (npos == 0) {
            out->checkpoint = a;
            npos++;
        } else if (npos == 1) {
            out->dataset = a;
            npos++;
        } else {
            return cli_usage_error(cmd, "too many arguments ('%s')", a);
        }
    }
    if (npos != 2)
        return cli_usage_error(cmd, "need CHECKPOINT and DATASET");
    if (with_output && !out->output)
        return cli_usage_error(cmd, "no output file given (-o SCORES.csv)");
    return -1;
}

void cli_warn_unchecked_data(const char *cmd, const char *checkpoint, const char *name, const char *what)
{
    char *path = NULL;
    if (name) {
        size_t n = strlen(checkpoint) + strlen(name) + 2;
        if (!(path = malloc(n)))
            return;
        snprintf(path, n, "%s/%s", checkpoint, name);
    }
    int has = 1;
    tnrec_err err = tnrec_checkpoint_has_data_schema(&has, path ? path : checkpoint);
    if (!err && !has)
        fprintf(stderr, "tnrec %s: warning: checkpoint '%s' predates checkpoint format 1.2 and does not record the schema of "
                "its training data, so %s cannot be checked against it (a dataset built with other settings would be "
                "scored without an error)\n", cmd, path ? path : checkpoint, what);
    tnrec_error_clear();
    free(path);
}
