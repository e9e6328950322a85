/* cli/cmd_import.c: `tnrec import keras MODEL.keras -o RUN_DIR`: a model
 * trained elsewhere as a tnrec run directory (best.tnck, last.tnck) that
 * eval and predict take. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_opt.h"
#include "tnrec/import.h"

int cmd_import(int argc, char **argv)
{
    const char *out = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        { CLI_STRING, "output", 'o', NULL, "RUN_DIR", .dst = &out,
          .help = "the run directory to write (required; new or empty)" },
        { CLI_FLAG, "quiet", 'q', NULL, NULL, .dst = &quiet, .help = "print nothing on success" },
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = "import",
        .usage = "tnrec import keras MODEL.keras -o RUN_DIR",
        .about = "Reads a Keras 3 .keras file of the TorNet baseline CNN (mit-ll/tornet's\n"
                 "cnn_baseline.py, such as MIT's published tornado_detector_baseline.keras),\n"
                 "builds the matching tnrec model from its config.json (filters, blocks, L2,\n"
                 "dropout), copies its weights and writes RUN_DIR/best.tnck and last.tnck for\n"
                 "'tnrec eval' and 'tnrec predict' (CPU). A layer tnrec cannot represent is\n"
                 "refused by name; on any error RUN_DIR is left as it was.",
        .opts = opts,
        .epilog = "The inputs are those of a 'tnrec build' dataset with the default ranges, one\n"
                  "frame, the range-folded mask when the model has it (docs/train.md, \"MIT's\n"
                  "published weights\").\n"
                  "example: tnrec import keras tornado_detector_baseline.keras -o runs/mit\n"
                  "         tnrec eval runs/mit shards/test\n",
    };
    const char *cmd = spec.cmd;
    const char *pos[3];
    size_t n = 0;
    int rc = cli_parse(&spec, argc, argv, pos, sizeof pos / sizeof pos[0], &n);
    if (rc >= 0)
        return rc;
    if (n == 0)
        return cli_usage_error(cmd, "no format given: tnrec import keras MODEL.keras -o RUN_DIR");
    if (strcmp(pos[0], "keras"))
        return cli_usage_error(cmd, "unknown format '%s': the one tnrec imports is 'keras'", pos[0]);
    if (n != 2)
        return cli_usage_error(cmd, n < 2 ? "no MODEL.keras given" : "one MODEL.keras at a time");
    if (!out)
        return cli_usage_error(cmd, "no run directory: give -o RUN_DIR");
    tnrec_import_summary sum;
    tnrec_err err = tnrec_import_keras(pos[1], out, &sum);
    if (err)
        return cli_fail(cmd, err);
    if (!quiet)
        fprintf(stderr, "tnrec import: %s -> %s: model %s, input %d x %d x %d (%s%s), %llu parameters\n", pos[1],
                out, sum.spec, sum.height, sum.width, sum.channels, sum.variables,
                sum.mask ? ", range_folded_mask" : "", sum.params);
    return TNREC_EXIT_OK;
}
