/* records/manifest.h: JSON forms shared by the dataset writer and reader
 * (docs/format.md 3.1). Private to records/. */
#ifndef TNREC_MANIFEST_H
#define TNREC_MANIFEST_H

#include <jansson.h>

#include "records_internal.h"

#define REC_MANIFEST_FORMAT "tnrec-dataset"
#define REC_MANIFEST_VERSION 1

/* jansson reports a failed allocation while parsing as a syntax error (or
 * not at all). Call rec_json_begin() before a parse; if the parse fails,
 * rec_json_oom() says whether an allocation failed on this thread since.
 * (Installs allocation functions that are malloc and free plus a
 * thread-local note; nothing else about jansson changes.) */
void rec_json_begin(void);
int rec_json_oom(void);

/* New references, or NULL when out of memory. */
json_t *rec_schema_to_json(const tnrec_schema *s);
json_t *rec_counts_to_json(const tnrec_class_counts *c);
json_t *rec_weights_to_json(const tnrec_class_counts *c);
/* Parses the "schema" object; errors name `path`. */
tnrec_err rec_schema_from_json(const json_t *j, const char *path, tnrec_schema *out);
/* Parses "class_counts"; errors name `path`. */
tnrec_err rec_counts_from_json(const json_t *j, const char *path, tnrec_class_counts *out);
/* Field-by-field equality, constants compared bit for bit. */
int rec_schema_equal(const tnrec_schema *a, const tnrec_schema *b);
/* Balanced weight N / (2 N_c), 0 if N_c is 0. */
double rec_class_weight(const tnrec_class_counts *c, int label);

#endif
