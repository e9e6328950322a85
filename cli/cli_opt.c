/* cli/cli_opt.c: the one option parser and help generator (cli_opt.h). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_opt.h"

#define HELP_COL 26

int cli_in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && n && strncmp(p, name, n) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int takes_value(const cli_opt *o)
{
    return o->type != CLI_FLAG && o->type != CLI_SECTION;
}

/* The row whose long name or alias is name (len bytes), or NULL. */
static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o->name || o->type != CLI_SECTION; o++) {
        if (o->type == CLI_SECTION)
            continue;
        if ((strlen(o->name) == len && strncmp(o->name, name, len) == 0))
            return o;
        char alias[64];
        if (len < sizeof alias) {
            memcpy(alias, name, len);
            alias[len] = '\0';
            if (cli_in_list(o->aliases, alias))
                return o;
        }
    }
    return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c)
{
    for (const cli_opt *o = opts; o->name || o->type != CLI_SECTION; o++)
        if (o->type != CLI_SECTION && o->short_name == c)
            return o;
    return NULL;
}

/* "1", "1.5", "1e-3" as the help shows a range bound. */
static void fmt_num(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.15g", v);
}

/* The range of a number option; min = max = 0 in the table means none. */
static double hi_of(const cli_opt *o)
{
    double hi = o->min == 0 && o->max == 0 ? INFINITY : o->max;
    if (o->type == CLI_INT && o->dst_size == sizeof(int32_t) && hi > (double)INT32_MAX)
        hi = (double)INT32_MAX;
    return hi;
}

static double lo_of(const cli_opt *o)
{
    return o->min == 0 && o->max == 0 ? -INFINITY : o->min;
}

/* "--batch must be at least 1, got 0"; "--batch must be an integer, got 'x'". */
static int range_error(const char *cmd, const char *flag, const cli_opt *o, const char *value, int parsed)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, lo_of(o));
    fmt_num(hi, sizeof hi, hi_of(o));
    int has_lo = lo_of(o) > -1e300, has_hi = !(o->min == 0 && o->max == 0) && o->max < 1e300;
    const char *what = o->type == CLI_INT ? "an integer" : "a number";
    if (!parsed && !has_lo && !has_hi)
        return cli_usage_error(cmd, "%s must be %s, got '%s'", flag, what, value);
    if (!parsed)
        return cli_usage_error(cmd, "%s must be %s (%s%s%s%s%s), got '%s'", flag, what,
                               has_lo ? (o->above_min ? "greater than " : "at least ") : "",
                               has_lo ? lo : "", has_lo && has_hi ? ", " : "", has_hi ? "at most " : "",
                               has_hi ? hi : "", value);
    if (o->above_min && has_hi)
        return cli_usage_error(cmd, "%s must be greater than %s and at most %s, got %s", flag, lo, hi, value);
    if (o->above_min)
        return cli_usage_error(cmd, "%s must be greater than %s, got %s", flag, lo, value);
    if (has_lo && has_hi)
        return cli_usage_error(cmd, "%s must be %s..%s, got %s", flag, lo, hi, value);
    if (has_lo)
        return cli_usage_error(cmd, "%s must be at least %s, got %s", flag, lo, value);
    return cli_usage_error(cmd, "%s must be at most %s, got %s", flag, hi, value);
}

static void store_int(const cli_opt *o, long long v)
{
    if (o->dst_size == sizeof(int32_t))
        *(int32_t *)o->dst = (int32_t)v;
    else
        *(int64_t *)o->dst = (int64_t)v;
}

/* "--device must be one of cpu, cuda; got 'gpu'". */
static int enum_error(const char *cmd, const char *flag, const char *choices, const char *value)
{
    char list[256];
    size_t k = 0;
    for (const char *p = choices; *p && k + 3 < sizeof list; p++) {
        list[k++] = *p;
        if (*p == ',')
            list[k++] = ' ';
    }
    list[k] = '\0';
    return cli_usage_error(cmd, "%s must be one of %s; got '%s'", flag, list, value);
}

/* Stores value into the option's destination; returns -1 or the usage exit code. */
static int store(const char *cmd, const char *flag, const cli_opt *o, const char *value)
{
    char *end = NULL;
    switch (o->type) {
    case CLI_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno)
            return range_error(cmd, flag, o, value, 0);
        if ((double)v > hi_of(o) && o->max >= 1e300)
            return cli_usage_error(cmd, "%s must be at most %.0f, got %s", flag, hi_of(o), value);
        if ((double)v < lo_of(o) || (double)v > hi_of(o))
            return range_error(cmd, flag, o, value, 1);
        store_int(o, v);
        break;
    }
    case CLI_DOUBLE: {
        double v = strtod(value, &end);
        if (end == value || *end || !isfinite(v))
            return range_error(cmd, flag, o, value, 0);
        if (v < lo_of(o) || v > hi_of(o) || (o->above_min && v <= o->min))
            return range_error(cmd, flag, o, value, 1);
        *(double *)o->dst = v;
        break;
    }
    case CLI_STRING:
        if (!*value)
            return cli_usage_error(cmd, "%s needs a value, got ''", flag);
        *(const char **)o->dst = value;
        break;
    case CLI_ENUM:
        if (!cli_in_list(o->choices, value))
            return enum_error(cmd, flag, o->choices, value);
        *(const char **)o->dst = value;
        break;
    case CLI_CUSTOM:
        if (o->parse(o->dst, value) != 0)
            return cli_usage_error(cmd, "%s takes %s, got '%s'", flag, o->rule, value);
        break;
    default:
        *(int *)o->dst = 1;
        break;
    }
    if (o->seen)
        *o->seen = 1;
    return -1;
}

/* One "--name[=value]" argument at argv[*i]. */
static int parse_long(const cli_spec *s, int argc, char **argv, int *i)
{
    const char *a = argv[*i] + 2;
    size_t len = strcspn(a, "=");
    const cli_opt *o = find_long(s->opts, a, len);
    if (!o)
        return cli_usage_error(s->cmd, "unknown option '--%.*s'", (int)len, a);
    char flag[80]; /* as typed: an alias is named as the user wrote it */
    snprintf(flag, sizeof flag, "--%.*s", (int)(len < 64 ? len : 64), a);
    if (!takes_value(o)) {
        if (a[len] == '=')
            return cli_usage_error(s->cmd, "%s takes no value, got '%s'", flag, a + len + 1);
        return store(s->cmd, flag, o, NULL);
    }
    if (a[len] == '=')
        return store(s->cmd, flag, o, a + len + 1);
    if (*i + 1 >= argc)
        return cli_usage_error(s->cmd, "%s needs a value (%s)", flag, o->arg ? o->arg : "see --help");
    return store(s->cmd, flag, o, argv[++*i]);
}

/* One "-x", "-x value" or "-xvalue" argument at argv[*i]. */
static int parse_short(const cli_spec *s, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const cli_opt *o = find_short(s->opts, a[1]);
    if (!o)
        return cli_usage_error(s->cmd, "unknown option '%s'", a);
    char flag[8];
    snprintf(flag, sizeof flag, "-%c", a[1]);
    if (!takes_value(o)) {
        if (a[2])
            return cli_usage_error(s->cmd, "unknown option '%s'", a);
        return store(s->cmd, flag, o, NULL);
    }
    if (a[2])
        return store(s->cmd, flag, o, a + 2);
    if (*i + 1 >= argc)
        return cli_usage_error(s->cmd, "%s needs a value (%s)", flag, o->arg ? o->arg : "see --help");
    return store(s->cmd, flag, o, argv[++*i]);
}

static int add_pos(const cli_spec *s, const char *a, const char **pos, size_t cap, size_t *npos)
{
    if (*npos == cap)
        return cli_usage_error(s->cmd, "too many arguments ('%s')", a);
    pos[(*npos)++] = a;
    return -1;
}

static int is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos, size_t cap, size_t *npos)
{
    *npos = 0;
    for (int i = 1; i < argc; i++) { /* help first, whatever else is wrong */
        if (strcmp(argv[i], "--") == 0)
            break;
        if (is_help(argv[i])) {
            cli_print_help(spec, stdout);
            return TNREC_EXIT_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                if ((rc = add_pos(spec, argv[i], pos, cap, npos)) >= 0)
                    return rc;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            rc = add_pos(spec, a, pos, cap, npos);
        else if (a[1] == '-')
            rc = parse_long(spec, argc, argv, &i);
        else
            rc = parse_short(spec, argc, argv, &i);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

/* "  -j, --jobs N" into buf. */
static int opt_label(char *buf, size_t n, const cli_opt *o)
{
    int len;
    if (o->short_name)
        len = snprintf(buf, n, "  -%c, --%s", o->short_name, o->name);
    else
        len = snprintf(buf, n, "  --%s", o->name);
    if (o->arg && len >= 0 && (size_t)len < n)
        len += snprintf(buf + len, n - (size_t)len, " %s", o->arg);
    return len;
}

/* The help text, its continuation lines indented to the help column. */
static void print_wrapped(FILE *out, const char *text)
{
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        fprintf(out, "%.*s", (int)len, p);
        p += len;
        if (*p == '\n') {
            p++;
            fprintf(out, "\n%*s", HELP_COL, "");
        }
    }
}

static void print_aliases(FILE *out, const cli_opt *o)
{
    if (!o->aliases)
        return;
    fprintf(out, " (also");
    for (const char *p = o->aliases; *p;) {
        size_t len = strcspn(p, ",");
        fprintf(out, " --%.*s", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    fputc(')', out);
}

static void print_row(FILE *out, const cli_opt *o)
{
    char label[96];
    int len = opt_label(label, sizeof label, o);
    fputs(label, out);
    if (len + 1 >= HELP_COL)
        fprintf(out, "\n%*s", HELP_COL, "");
    else
        fprintf(out, "%*s", HELP_COL - len, "");
    print_wrapped(out, o->help ? o->help : "");
    if (o->def)
        fprintf(out, " (default %s)", o->def);
    print_aliases(out, o);
    fputc('\n', out);
}

void cli_print_help(const cli_spec *spec, FILE *out)
{
    fprintf(out, "usage: %s\n", spec->usage);
    if (spec->about)
        fprintf(out, "\n%s\n", spec->about);
    fprintf(out, "\n");
    int head = 0;
    for (const cli_opt *o = spec->opts; o->name || o->type != CLI_SECTION; o++) {
        if (o->type == CLI_SECTION) {
            fprintf(out, "%s\n", o->name);
            head = 1;
            continue;
        }
        if (!head) {
            fprintf(out, "options:\n");
            head = 1;
        }
        print_row(out, o);
    }
    if (!head)
        fprintf(out, "options:\n");
    fprintf(out, "  -h, --help%*sthis text\n", HELP_COL - 12, "");
    if (spec->epilog)
        fprintf(out, "\n%s", spec->epilog);
}

int cli_parse_one(const cli_spec *spec, int argc, char **argv, const char *what, const char **out)
{
    const char *pos[2];
    size_t npos = 0;
    *out = NULL;
    int rc = cli_parse(spec, argc, argv, pos, 2, &npos);
    if (rc >= 0)
        return rc;
    if (npos > 1)
        return cli_usage_error(spec->cmd, "one %s only (got '%s' and '%s')", what, pos[0], pos[1]);
    *out = npos ? pos[0] : NULL;
    return -1;
}

int cli_parse_paths(const cli_spec *spec, int argc, char **argv, const char *detail, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    if (!paths) {
        fprintf(stderr, "tnrec %s: error: out of memory\n", spec->cmd);
        return TNREC_EXIT_FAIL;
    }
    int rc = cli_parse(spec, argc, argv, paths, (size_t)argc + 1, n);
    if (rc < 0 && *n == 0)
        rc = cli_usage_error(spec->cmd, "no PATH given (%s)", detail);
    if (rc >= 0) {
        free(paths);
        *n = 0;
        return rc;
    }
    *out = paths;
    return -1;
}
