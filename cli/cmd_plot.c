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
#include "cli_opt.h"

#define CMD "plot"

typedef struct plot_args {
    const char *path, *key, *output, *fields_arg;
    uint64_t record;
    int have_record, json, have_format;
    int quiet;                 /* --quiet: no "wrote" line (--json still prints) */
    char *fields_buf;          /* a copy of --fields, split in place */
    tnrec_plot_options opt;
} plot_args;

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

static int opt_format(void *dst, const char *v)
{
    char name[16];
    if (strcmp(v, "png") && strcmp(v, "svg") && strcmp(v, "pdf"))
        return -1;
    snprintf(name, sizeof name, "x.%s", v);
    int f = tnrec_plot_format_from_name(name);
    if (f < 0)
        return -1;
    *(tnrec_plot_format *)dst = (tnrec_plot_format)f;
    return 0;
}

static int opt_size(void *dst, const char *v)
{
    tnrec_plot_options *o = dst;
    return parse_size(v, &o->width, &o->height);
}

static int opt_sweeps(void *dst, const char *v)
{
    return parse_sweeps(v, dst);
}

/* --frames takes 'all' only. */
static int opt_frames(void *dst, const char *v)
{
    if (strcmp(v, "all") != 0)
        return -1;
    *(int *)dst = 1;
    return 0;
}

static int opt_key(void *dst, const char *v)
{
    if (!*v)
        return -1;
    *(const char **)dst = v;
    return 0;
}

/* Returns -1 when a is filled, else the exit code to return. */
static int parse_args(plot_args *a, int argc, char **argv)
{
    int frame_given = 0, frames_all = 0, frame = 0;
    char size_rule[96];
    snprintf(size_rule, sizeof size_rule, "WxH in pixels, each 1..%u (e.g. 1200x800)", TNREC_PLOT_MAX_SIDE);
    const cli_opt opts[] = {
        { CLI_INT, "record", 0, NULL, "N", CLI_INT_DST(a->record), .min = 0, .max = CLI_NONE, .seen = &a->have_record,
          .help = "the record, counted from 0 across PATH" },
        { CLI_CUSTOM, "key", 0, NULL, "KEY", .dst = &a->key, .parse = opt_key, .rule = "a record key",
          .help = "the record whose key is KEY ('tnrec dump --records' lists them)" },
        { CLI_STRING, "output", 'o', NULL, "FILE", .dst = &a->output,
          .help = "the picture; written under a temporary name, renamed when done" },
        { CLI_CUSTOM, "format", 0, NULL, "F", .dst = &a->opt.format, .parse = opt_format, .rule = "png, svg or pdf",
          .seen = &a->have_format, .help = "png, svg or pdf (default: from FILE's extension)" },
        { CLI_CUSTOM, "size", 0, NULL, "WxH", .dst = &a->opt, .parse = opt_size, .rule = size_rule,
          .help = "picture size in pixels (points for svg/pdf); default from the\n"
                  "number of panels; the layout is scaled to fit, unstretched" },
        { CLI_STRING, "fields", 0, NULL, "LIST", .dst = &a->fields_arg,
          .help = "fields to draw, e.g. DBZ,VEL (default: every one of DBZ VEL\nKDP RHOHV ZDR WIDTH the dataset has)" },
        { CLI_CUSTOM, "sweeps", 0, NULL, "LIST", .dst = &a->opt.sweeps, .parse = opt_sweeps, .rule = "0, 1 or 0,1",
          .help = "0, 1 or 0,1 (default 0)" },
        { CLI_INT, "frame", 0, NULL, "K", CLI_INT_DST(frame), .min = 0, .max = TNREC_PLOT_MAX_FRAMES - 1,
          .seen = &frame_given, .help = "frame K, from 0 (default: the last)" },
        { CLI_CUSTOM, "frames", 0, NULL, "all", .dst = &frames_all, .parse = opt_frames,
          .rule = "'all' (use --frame K for one frame)", .help = "every frame, one column each" },
        { CLI_FLAG, "mask", 0, .dst = &a->opt.mask, .help = "range-folded gates (range_folded_mask) in purple" },
        { CLI_FLAG, "json", 0, .dst = &a->json,
          .help = "print the layout as JSON: size and, per panel, field,\n"
                  "sweep, frame, PPI box, radar position and pixels per km;\n"
                  "on failure {\"error\", \"message\"}" },
        { CLI_FLAG, "quiet", 'q', .dst = &a->quiet, .help = "no 'wrote FILE' line (errors are still printed)" },
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "tnrec plot PATH (--record N | --key KEY) -o FILE [options]",
        .about = "Draw one record of PATH (a dataset directory or a .tnr shard) as PPI\n"
                 "panels: each radar field at its true azimuth and range, north up, with\n"
                 "range rings and radials, colour bars in physical units (values\n"
                 "de-normalised with the schema's offset and scale; no-data gates grey) and\n"
                 "a title with site, time (UTC), category, EF, label and event id.",
        .opts = opts,
        .epilog = "example: tnrec plot out/train --record 3 -o r3.png --sweeps 0,1 --mask\n",
    };
    int rc = cli_parse_one(&spec, argc, argv, "PATH", &a->path);
    if (rc >= 0)
        return rc;
    if (frame_given)
        a->opt.frame = frame;
    if (frames_all)
        a->opt.frame = TNREC_PLOT_ALL_FRAMES;
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
        if (a->quiet)
            return TNREC_EXIT_OK;
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
        int rc = a->json ? cli_fail_json(CMD, e) : cli_fail(CMD, e);
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
    int rc = e ? (a->json ? cli_fail_json(CMD, e) : cli_fail(CMD, e)) : print_result(a, index, res);
    free(res);
    if (rc == TNREC_EXIT_OK && fflush(stdout) != 0) {
        fprintf(stderr, "tnrec " CMD ": error: cannot write to standard output\n");
        rc = TNREC_EXIT_FAIL;
    }
    return rc;
}

int cmd_plot(int argc, char **argv)
{
    plot_args a;
    memset(&a, 0, sizeof a);
    tnrec_plot_options_init(&a.opt);
    int rc = parse_args(&a, argc, argv);
    if (rc < 0)
        rc = plot_run(&a);
    free(a.fields_buf);
    return rc;
}
