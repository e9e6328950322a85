/* tnrec/import.h: models trained elsewhere, as tnrec checkpoints.
 *
 * tnrec_import_keras reads a Keras 3 `.keras` file (a zip of config.json,
 * metadata.json and model.weights.h5) holding the TorNet baseline CNN
 * (mit-ll/tornet, cnn_baseline.py: CoordConv2D VGG blocks, the `maxpool`
 * head), builds the matching tnrec spec from config.json's layers (filters,
 * block sizes, L2 factors, dropout rates), copies the weights in Keras'
 * order and writes run_dir/best.tnck and run_dir/last.tnck, which eval and
 * predict take as a run directory. docs/train.md, "MIT's published weights". */
#ifndef TNREC_IMPORT_H
#define TNREC_IMPORT_H

#include "tnrec/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tnrec_import_summary {
    char spec[1024];           /* the tnrec model spec built from config.json */
    int height, width, channels;
    char variables[256];       /* comma-separated input variables, in channel order */
    int mask;                  /* 1: range_folded_mask channels follow the variables */
    unsigned long long params; /* parameters copied */
} tnrec_import_summary;

/* Imports model_path into run_dir, which must not exist or be empty. On
 * any error nothing is left in run_dir (a directory it created is removed)
 * and the message names the file and what is wrong: TNREC_EFORMAT (not a
 * zip, not a Keras model), TNREC_ENOTFOUND (a member or weight missing),
 * TNREC_ESCHEMA (a layer or shape tnrec cannot represent), TNREC_EIO.
 * summary may be NULL. */
tnrec_err tnrec_import_keras(const char *model_path, const char *run_dir, tnrec_import_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
