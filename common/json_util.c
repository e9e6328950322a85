/* common/json_util.c: shared jansson idioms (json_util.h). Nothing here
 * parses text: callers keep their own checks and messages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "fail.h"
#include "json_util.h"

json_t *tnrec__json_float(float v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real((double)v);
}

int tnrec__json_get_float(const json_t *j, float *out)
{
    if (json_is_number(j)) {
        *out = (float)json_number_value(j);
        return 1;
    }
    const char *s = json_string_value(j);
    if (!s)
        return 0;
    if (strcmp(s, "nan") == 0)
        *out = NAN;
    else if (strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else
        return 0;
    return 1;
}

json_t *tnrec__json_finite(double v) { return isfinite(v) ? json_real(v) : json_null(); }

tnrec_err tnrec__json_write_file(const char *path, const json_t *j, size_t flags, const char *oom_msg)
{
    char *text = j ? json_dumps(j, flags) : NULL;
    if (!text)
        return tnrec__fail(TNREC_ENOMEM, "%s", oom_msg);
    tnrec_err err = tnrec__write_file_atomic(path, text, strlen(text));
    free(text);
    return err;
}
