/* train/data_schema.h: the schema of the data a model was trained on, as
 * kept in a checkpoint's config ("data_schema", since checkpoint 1.2),
 * and the check that another dataset holds the same kind of data
 * (private to train/).
 *
 * Only the fields the network reads are kept: the variables in input
 * order, then range_folded_mask with --mask. Each is compared by name,
 * encoding, dtype, shape, normalisation offset and scale, no-data value
 * and, for the uint8 encoding, its quantisation range (qmin, qmax):
 * everything that decides the numbers the loader feeds the network.
 * A run that sets the input's no-data value (tnrec train --nodata) records
 * that value as each float field's nodata, and compares datasets as the
 * loader will decode them, so their stored nodata no longer matters. */
#ifndef TNREC_TRAIN_DATA_SCHEMA_H
#define TNREC_TRAIN_DATA_SCHEMA_H

#include <jansson.h>

#include "tnrec/tnrec.h"

/* The data_schema object of dataset ds for the given input fields
 * (variables: comma-separated; mask: add range_folded_mask; nodata: the
 * input's no-data value, NULL for each field's own). Fields the dataset
 * lacks are left out (the loader reports them). NULL: out of memory. */
json_t *trn_data_schema_json(const tnrec_dataset *ds, const char *variables, int mask, const float *nodata);

/* Checks dataset ds (read from ds_path, called ds_what in the message,
 * e.g. "dataset") against a data_schema object recorded with ref_path
 * (called ref_what, e.g. "the training data of checkpoint"), ds decoded
 * with no-data as *nodata when nodata is not NULL:
 * TNREC_ESCHEMA "DS_WHAT 'DS_PATH' does not match REF_WHAT 'REF_PATH':
 * field F: WHAT A in 'DS_PATH', B in 'REF_PATH'" for the first
 * difference; TNREC_ECORRUPT if the object is malformed. */
tnrec_err trn_data_schema_check(const json_t *recorded, const tnrec_dataset *ds, const float *nodata,
                                const char *ds_what, const char *ds_path, const char *ref_what, const char *ref_path);

#endif
