/* cli/cli_values.c: value checks that several commands' option tables share. */
#include <string.h>

#include "cli_opt.h"
#include "tnrec/tnrec.h"

const char cli_variable_names[] = "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH,range_folded_mask";
const char cli_model_names[] = "seed3d,tiny,tornet-cnn";

/* Every comma-separated element of value is in the list `names`. */
static int all_in(const char *names, const char *value)
{
    char item[64];
    if (!*value)
        return 0;
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item)
            return 0;
        memcpy(item, p, len);
        item[len] = '\0';
        if (!cli_in_list(names, item))
            return 0;
        p += len;
        if (*p == ',' && !*++p)
            return 0;
    }
    return 1;
}

int cli_check_variables(void *dst, const char *value)
{
    if (!all_in(cli_variable_names, value))
        return -1;
    *(const char **)dst = value;
    return 0;
}

int cli_check_model(void *dst, const char *value)
{
    /* A spec is a comma-separated list of layers; a single word is a preset. */
    if (!strchr(value, ',') && !cli_in_list(cli_model_names, value))
        return -1;
    *(const char **)dst = value;
    return 0;
}

int cli_check_nodata(void *dst, const char *value)
{
    float v;
    const float *parsed;
    if (tnrec_train_nodata_parse(value, &v, &parsed) != TNREC_OK) {
        tnrec_error_clear(); /* the option parser reports it, in the same words */
        return -1;
    }
    *(const char **)dst = value;
    return 0;
}
