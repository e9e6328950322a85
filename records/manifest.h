/* records/manifest.h: JSON forms shared by the dataset writer and reader
 * (docs/format.md 3.1). Private to records/. */
#ifndef TNREC_MANIFEST_H
#define TNREC_MANIFEST_H

#include <jansson.h>

#include "records_internal.h"

#define TNR_MANIFEST_FORMAT "tnrec-dataset"
#define TNR_MANIFEST_VERSION 1

/* jansson reports a failed allocation while parsing as a syntax error (or
 * not at all). Call tnr_json_begin() before a parse; if the parse fails,
 * tnr_json_oom() says whether an allocation failed on this thread since.
 * (Installs allocation functions that are malloc and free plus a
 * thread-local note; nothing else about jansson changes.) */
void tnr_json_begin(void);
int tnr_json_oom(void);

/* New references, or NULL when out of memory. */
json_t *tnr_schema_to_json(const tnrec_schema *s);
json_t *tnr_counts_to_json(const tnrec_class_counts *c);
json_t *tnr_weights_to_json(const tnrec_class_counts *c);
/* Parses the "schema" object; errors name `path`. */
tnrec_err tnr_schema_from_json(const json_t *j, const char *path, tnrec_schema *out);
/* Parses "class_counts"; errors name `path`. */
tnrec_err tnr_counts_from_json(const json_t *j, const char *path, tnrec_class_counts *out);
/* Field-by-field equality, constants compared bit for bit. */
int tnr_schema_equal(const tnrec_schema *a, const tnrec_schema *b);
/* Balanced weight N / (2 N_c), 0 if N_c is 0. */
double tnr_class_weight(const tnrec_class_counts *c, int label);

#endif
