/* cli/cmd_plot.c: `tnrec plot`: one record as PPI panels in a PNG, SVG or
 * PDF file (libtnrec's plot API, include/tnrec/plot.h, draws it).
 *
 * Prints one line naming the file (or, with --json, the layout: where each
 * panel and its radar lie in the picture). Exit 0 drawn, 1 failure (bad
 * dataset, record, field or output; no file is left behind), 2 usage. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "plot"

typedef struct plot_args {
    const char *path, *key, *output, *fields_arg;
    uint64_t record;
    int have_record, json, have_format;
    char *fields_buf;          /* a copy of --fields, split in place */
    tnrec_plot_options opt;
} plot_args;

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: tnrec plot PATH (--record N | --key KEY) -o FILE [options]\n"
            "\n"
            "Draw one record of PATH (a dataset directory or a .tnr shard) as PPI\n"
            "panels: each radar field at its true azimuth and range, north up, with\n"
            "range rings and radials, colour bars in physical units (values\n"
            "de-normalised with the schema's offset and scale; no-data gates grey) and\n"
            "a title with site, time (UTC), category, EF, label and event id.\n"
            "\n"
            "options:\n"
            "  --record N       the record, counted from 0 across PATH\n"
            "  --key KEY        the record whose key is KEY ('tnrec dump --records' lists them)\n"
            "  -o FILE          the picture; written under a temporary name, renamed when done\n"
            "  --format F       png, svg or pdf (default: from FILE's extension)\n"
            "  --size WxH       picture size in pixels (points for svg/pdf); default from the\n"
            "                   number of panels; the layout is scaled to fit, unstretched\n"
            "  --fields LIST    fields to draw, e.g. DBZ,VEL (default: every one of DBZ VEL\n"
            "                   KDP RHOHV ZDR WIDTH the dataset has)\n"
            "  --sweeps LIST    0, 1 or 0,1 (default 0)\n"
            "  --frame K        frame K, from 0 (default: the last)\n"
            "  --frames all     every frame, one column each\n"
            "  --mask           range-folded gates (range_folded_mask) in purple\n"
            "  --json           print the layout as JSON: size and, per panel, field,\n"
            "                   sweep, frame, PPI box, radar position and pixels per km\n"
            "  -h, --help       this text\n"
            "\n"
            "example: tnrec plot out/train --record 3 -o r3.png --sweeps 0,1 --mask\n");
}

/* "0,1" -> bits 0 and 1. */
static int parse_sweeps(const char *v, uint32_t *out)
{
    uint32_t bits = 0;
    const char *p = v;
    while (*p) {
        char *end = NULL;
        if (*p < '0' || *p > '9')
            return -1;
        unsigned long w = strtoul(p, &end, 10);
        if (w >= TNREC_PLOT_MAX_SWEEPS || (*end && *end != ','))
            return -1;
        bits |= 1u << w;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p)
            return -1;
    }
    *out = bits;
    return bits ? 0 : -1;
}

/* "1200x800" -> 1200, 800. */
static int parse_size(const char *v, uint32_t *w, uint32_t *h)
{
    char *end = NULL;
    if (*v < '1' || *v > '9')
        return -1;
    unsigned long a = strtoul(v, &end, 10);
    if (*end != 'x' && *end != 'X')
        return -1;
    const char *q = end + 1;
    if (*q < '1' || *q > '9')
        return -1;
    unsigned long b = strtoul(q, &end, 10);
    if (*end || a > TNREC_PLOT_MAX_SIDE || b > TNREC_PLOT_MAX_SIDE)
        return -1;
    *w = (uint32_t)a;
    *h = (uint32_t)b;
    return 0;
}

/* Splits --fields at commas into a->opt.fields. */
static int split_fields(plot_args *a)
{
    a->fields_buf = strdup(a->fields_arg);
    if (!a->fields_buf) {
        fprintf(stderr, "tnrec " CMD ": error: out of memory\n");
        return TNREC_EXIT_FAIL;
    }
    char *save = NULL;
    for (char *tok = strtok_r(a->fields_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (a->opt.nfields == TNREC_PLOT_MAX_FIELDS)
            return cli_usage_error(CMD, "--fields names more than %d fields", TNREC_PLOT_MAX_FIELDS);
        if (!tnrec_plot_is_moment(tok))
            return cli_usage_error(CMD, "unknown field '%s' in --fields: choose from DBZ VEL KDP RHOHV ZDR WIDTH", tok);
        a->opt.fields[a->opt.nfields++] = tok;
    }
    if (!a->opt.nfields)
        return cli_usage_error(CMD, "--fields needs a list such as DBZ,VEL");
    return -1;
}

/* The value of option argv[*i] (inline after '=' or the next argument). */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static int is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* Returns -1 when a is filled, else the exit code of the error it printed. */
static int parse_args(plot_args *a, int argc, char **argv)
{
    int frame_given = 0, frames_all = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = NULL;
        if (s[0] != '-' || strcmp(s, "-") == 0) {
            if (a->path)
                return cli_usage_error(CMD, "one PATH only (got '%s' and '%s')", a->path, s);
            a->path = s;
        } else if (strcmp(s, "--mask") == 0) {
            a->opt.mask = 1;
        } else if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (is_opt(s, "--record")) {
            unsigned long long n;
            if (!(v = opt_value(argc, argv, &i, "--record")) || cli_parse_u64(v, &n) != 0)
                return cli_usage_error(CMD, "--record needs a record index (0, 1, ...), got '%s'", v ? v : "nothing");
            a->record = n;
            a->have_record = 1;
        } else if (is_opt(s, "--key")) {
            if (!(v = opt_value(argc, argv, &i, "--key")) || !*v)
                return cli_usage_error(CMD, "--key needs a record key");
            a->key = v;
        } else if (strcmp(s, "-o") == 0 || is_opt(s, "--output")) {
            v = strcmp(s, "-o") == 0 ? (i + 1 < argc ? argv[++i] : NULL) : opt_value(argc, argv, &i, "--output");
            if (!v || !*v)
                return cli_usage_error(CMD, "-o needs an output file");
            a->output = v;
        } else if (is_opt(s, "--format")) {
            v = opt_value(argc, argv, &i, "--format");
            int f = !v ? -1 : strcmp(v, "png") == 0 ? TNREC_PLOT_PNG : strcmp(v, "svg") == 0 ? TNREC_PLOT_SVG
                : strcmp(v, "pdf") == 0 ? TNREC_PLOT_PDF : -1;
            if (f < 0)
                return cli_usage_error(CMD, "--format takes png, svg or pdf, got '%s'", v ? v : "nothing");
            a->opt.format = (tnrec_plot_format)f;
            a->have_format = 1;
        } else if (is_opt(s, "--size")) {
            if (!(v = opt_value(argc, argv, &i, "--size")) || parse_size(v, &a->opt.width, &a->opt.height) != 0)
                return cli_usage_error(CMD, "--size takes WxH in pixels, each 1..%u (e.g. 1200x800), got '%s'",
                                       TNREC_PLOT_MAX_SIDE, v ? v : "nothing");
        } else if (is_opt(s, "--sweeps")) {
            if (!(v = opt_value(argc, argv, &i, "--sweeps")) || parse_sweeps(v, &a->opt.sweeps) != 0)
                return cli_usage_error(CMD, "--sweeps takes 0, 1 or 0,1, got '%s'", v ? v : "nothing");
        } else if (is_opt(s, "--frame")) {
            unsigned long long n;
            if (!(v = opt_value(argc, argv, &i, "--frame")) || cli_parse_u64(v, &n) != 0 || n >= TNREC_PLOT_MAX_FRAMES)
                return cli_usage_error(CMD, "--frame takes a frame number 0..%d, got '%s'",
                                       TNREC_PLOT_MAX_FRAMES - 1, v ? v : "nothing");
            a->opt.frame = (int)n;
            frame_given = 1;
        } else if (is_opt(s, "--frames")) {
            if (!(v = opt_value(argc, argv, &i, "--frames")) || strcmp(v, "all") != 0)
                return cli_usage_error(CMD, "--frames takes 'all' (use --frame K for one frame), got '%s'",
                                       v ? v : "nothing");
            a->opt.frame = TNREC_PLOT_ALL_FRAMES;
            frames_all = 1;
        } else if (is_opt(s, "--fields")) {
            if (!(v = opt_value(argc, argv, &i, "--fields")))
                return cli_usage_error(CMD, "--fields needs a list such as DBZ,VEL");
            a->fields_arg = v;
        } else {
            return cli_usage_error(CMD, "unknown option '%s'", s);
        }
    }
    if (!a->path)
        return cli_usage_error(CMD, "no PATH given (a dataset directory or a .tnr shard)");
    if (a->have_record == !!a->key)
        return cli_usage_error(CMD, "give exactly one of --record N and --key KEY");
    if (!a->output)
        return cli_usage_error(CMD, "no output file: give -o FILE.png (or .svg, .pdf)");
    if (frame_given && frames_all)
        return cli_usage_error(CMD, "--frame K and --frames all exclude each other");
    if (!a->have_format) {
        int f = tnrec_plot_format_from_name(a->output);
        if (f < 0)
            return cli_usage_error(CMD, "cannot tell the format of '%s' from its name: end it in .png, .svg or "
                                   ".pdf, or give --format", a->output);
        a->opt.format = (tnrec_plot_format)f;
    }
    if (a->fields_arg)
        return split_fields(a);
    return -1;
}

static const char *format_name(tnrec_plot_format f)
{
    return f == TNREC_PLOT_SVG ? "svg" : f == TNREC_PLOT_PDF ? "pdf" : "png";
}

static json_t *panel_json(const tnrec_plot_panel *p)
{
    return json_pack("{s:o,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:o}",
                     "field", cli_json_text(p->field), "sweep", (json_int_t)p->sweep, "frame", (json_int_t)p->frame,
                     "x", p->x, "y", p->y, "w", p->w, "h", p->h, "origin_x", p->origin_x, "origin_y", p->origin_y,
                     "px_per_km", p->px_per_km, "az_lo", p->az_lo, "az_span", p->az_span,
                     "range_lo_km", p->range_lo_km, "range_hi_km", p->range_hi_km,
                     "ring_step_km", p->ring_step_km, "radial_step_deg", p->radial_step_deg, "unit", cli_json_text(p->unit));
}

static int print_result(const plot_args *a, uint64_t index, const tnrec_plot_result *r)
{
    if (!a->json) {
        printf("wrote %s (%s, %" PRIu32 "x%" PRIu32 ", %" PRIu32 " panel%s, record %" PRIu64 ")\n", a->output,
               format_name(a->opt.format), r->width, r->height, r->npanels, r->npanels == 1 ? "" : "s", index);
        return TNREC_EXIT_OK;
    }
    json_t *panels = json_array();
    for (uint32_t p = 0; panels && p < r->npanels; p++)
        json_array_append_new(panels, panel_json(&r->panels[p]));
    json_t *doc = json_pack("{s:o,s:I,s:o,s:s,s:i,s:i,s:b,s:o}", "path", cli_json_text(a->path), "index",
                            (json_int_t)index, "output", cli_json_text(a->output), "format",
                            format_name(a->opt.format), "width", (json_int_t)r->width, "height",
                            (json_int_t)r->height, "geometry_assumed", r->geometry_assumed, "panels",
                            panels ? panels : json_null());
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    if (!text) {
        fprintf(stderr, "tnrec " CMD ": error: out of memory formatting the layout (%s was written)\n", a->output);
        return TNREC_EXIT_FAIL;
    }
    puts(text);
    free(text);
    return TNREC_EXIT_OK;
}

static int plot_run(plot_args *a)
{
    tnrec_dataset *ds = NULL;
    tnrec_err e = tnrec_dataset_open(&ds, a->path);
    if (e) {
        int has_hint = strstr(tnrec_error_last(), "hint:") != NULL;
        int rc = cli_fail(CMD, e);
        if (!has_hint)
            fprintf(stderr, "hint: PATH is a dataset directory (with manifest.json) or a .tnr shard; "
                    "'tnrec dump PATH' checks it\n");
        return rc;
    }
    uint64_t index = a->record;
    tnrec_plot_result *res = malloc(sizeof *res);
    if (!res) {
        tnrec_dataset_close(ds);
        fprintf(stderr, "tnrec " CMD ": error: out of memory\n");
        return TNREC_EXIT_FAIL;
    }
    if (a->key)
        e = tnrec_plot_find_key(ds, a->path, a->key, &index);
    if (!e)
        e = tnrec_plot_record(ds, a->path, index, &a->opt, a->output, res);
    tnrec_dataset_close(ds);
    int rc = e ? cli_fail(CMD, e) : print_result(a, index, res);
    free(res);
    if (rc == TNREC_EXIT_OK && fflush(stdout) != 0) {
        fprintf(stderr, "tnrec " CMD ": error: cannot write to standard output\n");
        rc = TNREC_EXIT_FAIL;
    }
    return rc;
}

int cmd_plot(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        print_usage(stdout);
        return TNREC_EXIT_OK;
    }
    plot_args a;
    memset(&a, 0, sizeof a);
    tnrec_plot_options_init(&a.opt);
    int rc = parse_args(&a, argc, argv);
    if (rc < 0)
        rc = plot_run(&a);
    free(a.fields_buf);
    return rc;
}
