/* common/json_util.h: the jansson idioms the modules share: reading
 * members, floats that may be NaN or infinite, numbers that may not be
 * finite, a JSON document written to a file atomically.
 *
 * Borrowed and new references follow jansson's rules, said per function. */
#ifndef TNREC_JSON_UTIL_H
#define TNREC_JSON_UTIL_H

#include <jansson.h>

#include "hidden.h"
#include "tnrec/error.h"

/* Member `key` of object o as a string (borrowed, lives as long as o), or
 * NULL when it is missing or not a string. */
static inline const char *tnrec__json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Member `key` of object o as an integer, or 0 when it is missing or not
 * an integer. */
static inline json_int_t tnrec__json_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* A float as JSON: a number, or the string "nan", "inf" or "-inf", which
 * JSON has no numbers for. New reference, NULL when out of memory. */
TNREC__HIDDEN json_t *tnrec__json_float(float v);

/* Reads what tnrec__json_float writes (and any JSON number) into *out:
 * 1 on success, 0 (with *out unchanged) for anything else. */
TNREC__HIDDEN int tnrec__json_get_float(const json_t *j, float *out);

/* A double as a JSON number, or null when it is NaN or infinite. New
 * reference, NULL when out of memory. */
TNREC__HIDDEN json_t *tnrec__json_finite(double v);

/* Writes j as json_dumps(j, flags) text to path atomically (no newline
 * added). A NULL j or a failed dump gives TNREC_ENOMEM with the message
 * oom_msg. */
TNREC__HIDDEN tnrec_err tnrec__json_write_file(const char *path, const json_t *j, size_t flags, const char *oom_msg);

#endif
