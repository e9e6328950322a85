/* plot/render.c: one record drawn with cairo as PPI panels.
 *
 * The page is laid out at a nominal size (CELL_W x CELL_H per panel, a
 * header above) and scaled uniformly into the size asked for, centred, so
 * that the geometry stays true: a degree is a degree and north is up.
 * Each gate is the annular sector between its two azimuths and two
 * ranges, drawn as a quadrilateral (at 0.5 degree the chord is within a
 * metre of the arc); gates of one radial with the same colour are joined.
 * PNG gates are drawn without antialiasing, so each pixel is exactly one
 * colour of the map; vector gates get a hairline of their own colour so
 * that viewers show no seams between them.
 *
 * The output file is written through common/'s atomic file: the
 * surface streams into "<path>.tmp.<pid>", renamed when complete. */
#include <cairo.h>
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "plot_internal.h"

#define CELL_W 340.0
#define CELL_H 392.0
#define HEADER_H 62.0
#define PAGE_PAD 10.0
#define PPI_DX 44.0          /* PPI box within a cell, room for labels all round */
#define PPI_DY 40.0
#define PPI_W (CELL_W - 88.0)
#define PPI_H 264.0
#define BAR_DY (PPI_DY + PPI_H + 26.0)
#define BAR_H 12.0
#define MIN_SCALE 0.25
#define FONT "DejaVu Sans"
#define PLOT_MAX_COLORS 32   /* no data, range folded and up to 30 bins */

static const double deg = M_PI / 180.0;

typedef struct cell {
    uint32_t moment, sweep, frame, col, row;
} cell;

typedef struct layout {
    uint32_t ncols, nrows, npanels;
    cell cell[TNREC_PLOT_MAX_PANELS];
    double nominal_w, nominal_h;
    uint32_t width, height;   /* the page, pixels */
    double scale, ox, oy;     /* nominal -> page */
} layout;

/* ---- layout ---- */

static void layout_panels(layout *L, const plot_sample *s, const tnrec_plot_options *opt)
{
    uint32_t sweeps[TNREC_PLOT_MAX_SWEEPS], nsw = 0;
    uint32_t mask = opt->sweeps ? opt->sweeps : 1u;
    for (uint32_t w = 0; w < s->nsweeps; w++)
        if ((mask >> w) & 1u)
            sweeps[nsw++] = w;
    uint32_t nf = s->nmoments;
    L->npanels = 0;
    if (opt->frame == TNREC_PLOT_ALL_FRAMES) {
        /* A column per frame, a row per (sweep, field). */
        L->ncols = s->nframes;
        L->nrows = nsw * nf;
        for (uint32_t w = 0; w < nsw; w++)
            for (uint32_t m = 0; m < nf; m++)
                for (uint32_t t = 0; t < s->nframes; t++)
                    L->cell[L->npanels++] = (cell){ m, sweeps[w], t, t, w * nf + m };
    } else {
        /* Up to three fields a row; each sweep starts a new row. */
        uint32_t t = opt->frame >= 0 ? (uint32_t)opt->frame : s->nframes - 1;
        L->ncols = nf < 3 ? nf : 3;
        uint32_t rows_per_sweep = (nf + L->ncols - 1) / L->ncols;
        L->nrows = nsw * rows_per_sweep;
        for (uint32_t w = 0; w < nsw; w++)
            for (uint32_t m = 0; m < nf; m++)
                L->cell[L->npanels++] = (cell){ m, sweeps[w], t, m % L->ncols, w * rows_per_sweep + m / L->ncols };
    }
    L->nominal_w = 2 * PAGE_PAD + L->ncols * CELL_W;
    L->nominal_h = HEADER_H + PAGE_PAD + L->nrows * CELL_H;
}

static tnrec_err layout_page(layout *L, const tnrec_plot_options *opt)
{
    if (!opt->width && !opt->height) {
        L->width = (uint32_t)ceil(L->nominal_w);
        L->height = (uint32_t)ceil(L->nominal_h);
    } else {
        L->width = opt->width;
        L->height = opt->height;
    }
    if (!L->width || !L->height || L->width > TNREC_PLOT_MAX_SIDE || L->height > TNREC_PLOT_MAX_SIDE)
        return tnrec__fail(TNREC_EINVAL, "size %" PRIu32 "x%" PRIu32 " out of range\nhint: give --size WxH with "
                           "each side 1..%u pixels", L->width, L->height, TNREC_PLOT_MAX_SIDE);
    double sx = L->width / L->nominal_w, sy = L->height / L->nominal_h;
    L->scale = sx < sy ? sx : sy;
    if (L->scale < MIN_SCALE)
        return tnrec__fail(TNREC_EINVAL, "size %" PRIu32 "x%" PRIu32 " is too small for %" PRIu32 " panel%s\n"
                           "hint: give --size at least %.0fx%.0f, or fewer fields, sweeps or frames",
                           L->width, L->height, L->npanels, L->npanels == 1 ? "" : "s",
                           ceil(L->nominal_w * MIN_SCALE), ceil(L->nominal_h * MIN_SCALE));
    L->ox = (L->width - L->nominal_w * L->scale) / 2.0;
    L->oy = (L->height - L->nominal_h * L->scale) / 2.0;
    return TNREC_OK;
}

/* ---- geometry of one panel (nominal units) ---- */

typedef struct wedge {
    double az_lo, az_span, r_lo, r_hi; /* degrees, km */
    double ox, oy, k;                  /* radar position and units per km */
} wedge;

static void wedge_point(const wedge *g, double r, double az, double *x, double *y)
{
    *x = g->ox + r * sin(az * deg) * g->k;
    *y = g->oy - r * cos(az * deg) * g->k;
}

/* Fits the wedge into the box (x, y, w, h), centred. */
static void wedge_fit(wedge *g, const plot_sample *s, double x, double y, double w, double h)
{
    g->az_lo = s->az_lo;
    g->az_span = s->az_span;
    g->r_lo = s->range_lo;
    g->r_hi = s->range_hi;
    double minx = INFINITY, maxx = -INFINITY, miny = INFINITY, maxy = -INFINITY;
    int steps = (int)ceil(g->az_span) + 1;
    for (int i = 0; i <= steps; i++) {
        double az = g->az_lo + g->az_span * i / steps;
        const double rs[2] = { g->r_lo, g->r_hi };
        for (int j = 0; j < 2; j++) {
            double px = rs[j] * sin(az * deg), py = rs[j] * cos(az * deg);
            minx = px < minx ? px : minx;
            maxx = px > maxx ? px : maxx;
            miny = py < miny ? py : miny;
            maxy = py > maxy ? py : maxy;
        }
    }
    double bw = maxx - minx > 1e-9 ? maxx - minx : 1e-9, bh = maxy - miny > 1e-9 ? maxy - miny : 1e-9;
    g->k = fmin(w / bw, h / bh);
    g->ox = x + (w - bw * g->k) / 2.0 - minx * g->k;
    g->oy = y + (h - bh * g->k) / 2.0 + maxy * g->k;
}

static void wedge_path(cairo_t *cr, const wedge *g)
{
    int steps = (int)ceil(g->az_span) + 1;
    double x, y;
    cairo_new_path(cr);
    for (int i = 0; i <= steps; i++) {
        wedge_point(g, g->r_hi, g->az_lo + g->az_span * i / steps, &x, &y);
        if (i == 0)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
    }
    for (int i = steps; i >= 0; i--) {
        wedge_point(g, g->r_lo, g->az_lo + g->az_span * i / steps, &x, &y);
        cairo_line_to(cr, x, y);
    }
    cairo_close_path(cr);
}

/* ---- drawing helpers ---- */

static void set_rgb(cairo_t *cr, uint32_t rgb)
{
    cairo_set_source_rgb(cr, ((rgb >> 16) & 0xff) / 255.0, ((rgb >> 8) & 0xff) / 255.0, (rgb & 0xff) / 255.0);
}

/* Text on the baseline y: ax 0 starts it at x, 0.5 centres it, 1 ends it there. */
static void text_at(cairo_t *cr, const char *txt, double x, double y, double ax)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, txt, &te);
    cairo_move_to(cr, x - te.x_advance * ax, y);
    cairo_show_text(cr, txt);
}

/* Boxes of the labels drawn so far on a panel, so that none overlaps. */
#define PLOT_MAX_LABELS 64
typedef struct label_boxes {
    uint32_t n;
    double box[PLOT_MAX_LABELS][4];   /* x0, y0, x1, y1 */
} label_boxes;

/* Text placed beside (x, y) in the direction (dx, dy) (a unit vector):
 * the box of the text just clear of the point on that side. Skipped when
 * it would overlap a label already drawn. */
static void text_toward(cairo_t *cr, label_boxes *lb, const char *txt, double x, double y, double dx, double dy)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, txt, &te);
    double hw = te.x_advance / 2 + 2, hh = -te.y_bearing / 2 + 2;
    double cx = x + dx * hw, cy = y + dy * hh;
    double b[4] = { cx - hw, cy - hh, cx + hw, cy + hh };
    for (uint32_t i = 0; i < lb->n; i++)
        if (b[0] < lb->box[i][2] && lb->box[i][0] < b[2] && b[1] < lb->box[i][3] && lb->box[i][1] < b[3])
            return;
    if (lb->n == PLOT_MAX_LABELS)
        return;
    memcpy(lb->box[lb->n++], b, sizeof b);
    cairo_move_to(cr, cx - te.x_advance / 2, cy - te.y_bearing / 2);
    cairo_show_text(cr, txt);
}

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static void utc_time(int64_t t, const char *fmt, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || strftime(buf, cap, fmt, &tm) == 0)
        snprintf(buf, cap, "%" PRId64, t);
}

/* A round step giving about 3 to 6 lines over span. */
static double nice_step(double span, const double *steps, int n)
{
    for (int i = 0; i < n; i++)
        if (span / steps[i] <= 6.0)
            return steps[i];
    return steps[n - 1];
}

/* ---- gates ---- */

static void gate_quad(cairo_t *cr, const wedge *g, double a0, double a1, double r0, double r1)
{
    double x, y;
    wedge_point(g, r0, a0, &x, &y);
    cairo_move_to(cr, x, y);
    wedge_point(g, r1, a0, &x, &y);
    cairo_line_to(cr, x, y);
    wedge_point(g, r1, a1, &x, &y);
    cairo_line_to(cr, x, y);
    wedge_point(g, r0, a1, &x, &y);
    cairo_line_to(cr, x, y);
    cairo_close_path(cr);
}

/* The colour of gate (a, j) of a panel: range-folded purple (with --mask),
 * no data grey, else the colour map's. */
static uint32_t gate_color(const plot_sample *s, const plot_moment *m, uint32_t t, uint32_t a, uint32_t j, uint32_t w)
{
    size_t e = plot_elem(s, t, a, j, w);
    if (s->folded && s->folded[e])
        return TNREC_PLOT_FOLDED_RGB;
    return plot_colormap_color(m->cm, m->values[e]);
}

/* Every colour a gate can take: the map's, no data, range folded. */
static uint32_t panel_colors(const plot_moment *m, uint32_t *out)
{
    uint32_t n = 0;
    out[n++] = TNREC_PLOT_NODATA_RGB;
    out[n++] = TNREC_PLOT_FOLDED_RGB;
    for (uint32_t k = 0; m->cm && k < m->cm->nbins; k++)
        out[n++] = m->cm->bins[k].rgb;
    return n;
}

/* One path per colour: the runs of gates of that colour along each radial,
 * over a wedge filled with the no-data colour. */
static void draw_gates(cairo_t *cr, const plot_sample *s, const plot_moment *m, uint32_t t, uint32_t w,
                       const wedge *g, int vector, uint32_t *colors)
{
    double daz = g->az_span / s->naz, dr = (g->r_hi - g->r_lo) / s->ngates;
    uint32_t palette[PLOT_MAX_COLORS];
    uint32_t npal = panel_colors(m, palette);
    for (uint32_t a = 0; a < s->naz; a++)
        for (uint32_t j = 0; j < s->ngates; j++)
            colors[(size_t)a * s->ngates + j] = gate_color(s, m, t, a, j, w);
    cairo_save(cr);
    cairo_set_antialias(cr, vector ? CAIRO_ANTIALIAS_DEFAULT : CAIRO_ANTIALIAS_NONE);
    cairo_set_line_width(cr, 0.35);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_BEVEL);
    /* The whole wedge in the no-data colour first (whole radials, the
     * gates' own outline), so that only gates with a value or a fold are
     * drawn one by one: no-data is usually most of a chip. */
    cairo_new_path(cr);
    for (uint32_t a = 0; a < s->naz; a++)
        gate_quad(cr, g, g->az_lo + a * daz, g->az_lo + (a + 1) * daz, g->r_lo, g->r_hi);
    set_rgb(cr, TNREC_PLOT_NODATA_RGB);
    cairo_fill(cr);
    for (uint32_t c = 0; c < npal; c++) {
        int any = 0;
        if (palette[c] == TNREC_PLOT_NODATA_RGB)
            continue;
        cairo_new_path(cr);
        for (uint32_t a = 0; a < s->naz; a++) {
            const uint32_t *row = colors + (size_t)a * s->ngates;
            double a0 = g->az_lo + a * daz, a1 = a0 + daz;
            for (uint32_t j = 0; j < s->ngates;) {
                if (row[j] != palette[c]) {
                    j++;
                    continue;
                }
                uint32_t end = j + 1;
                while (end < s->ngates && row[end] == palette[c])
                    end++;
                gate_quad(cr, g, a0, a1, g->r_lo + j * dr, g->r_lo + end * dr);
                any = 1;
                j = end;
            }
        }
        if (!any)
            continue;
        set_rgb(cr, palette[c]);
        if (vector) {
            cairo_fill_preserve(cr);
            cairo_stroke(cr);
        } else {
            cairo_fill(cr);
        }
    }
    cairo_new_path(cr);
    cairo_restore(cr);
}

/* ---- rings, radials and their labels ---- */

/* Range rings and radials at round steps: 3 to 6 of each across the wedge. */
static void grid_steps(const wedge *g, double *rstep, double *astep)
{
    static const double rsteps[] = { 1, 2, 5, 10, 20, 25, 50, 100 };
    static const double asteps[] = { 1, 2, 5, 10, 15, 30, 45, 90 };
    *rstep = nice_step(g->r_hi - g->r_lo, rsteps, 8);
    *astep = nice_step(g->az_span, asteps, 8);
}

static void draw_grid(cairo_t *cr, const wedge *g)
{
    double rstep, astep;
    grid_steps(g, &rstep, &astep);
    char label[32];
    double x, y;

    cairo_save(cr);
    wedge_path(cr, g);
    cairo_clip(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.55);
    cairo_set_line_width(cr, 0.7);
    for (double r = ceil(g->r_lo / rstep) * rstep; r <= g->r_hi; r += rstep) {
        cairo_new_path(cr);
        cairo_arc(cr, g->ox, g->oy, r * g->k, 0, 2 * M_PI);
        cairo_stroke(cr);
    }
    double first = ceil(g->az_lo / astep) * astep;
    for (double az = first; az <= g->az_lo + g->az_span; az += astep) {
        wedge_point(g, g->r_lo, az, &x, &y);
        cairo_move_to(cr, x, y);
        wedge_point(g, g->r_hi, az, &x, &y);
        cairo_line_to(cr, x, y);
        cairo_stroke(cr);
    }
    cairo_restore(cr);

    /* Labels just outside the wedge: ranges beyond its first radial,
     * azimuths beyond its far arc. */
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    font(cr, 9.0, 0);
    /* Ranges beside the edge radial nearer the vertical (wide labels
     * stack best there), outward from the wedge; azimuths beyond the far
     * arc, along the radial. Page y grows downwards. */
    label_boxes lb = { 0 };
    double az_hi = g->az_lo + g->az_span;
    int use_hi = fabs(cos(az_hi * deg)) > fabs(cos(g->az_lo * deg));
    double edge = use_hi ? az_hi : g->az_lo, sign = use_hi ? 1.0 : -1.0;
    double nx = sign * cos(edge * deg), ny = sign * sin(edge * deg);
    for (double r = ceil(g->r_lo / rstep) * rstep; r <= g->r_hi; r += rstep) {
        snprintf(label, sizeof label, "%g km", r);
        wedge_point(g, r, edge, &x, &y);
        text_toward(cr, &lb, label, x + nx * 2, y + ny * 2, nx, ny);
    }
    for (double az = first; az <= az_hi; az += astep) {
        snprintf(label, sizeof label, "%g\u00b0", fmod(az, 360.0));
        wedge_point(g, g->r_hi, az, &x, &y);
        double dx = sin(az * deg), dy = -cos(az * deg);
        text_toward(cr, &lb, label, x + dx * 2, y + dy * 2, dx, dy);
    }
    cairo_restore(cr);

    cairo_save(cr);
    wedge_path(cr, g);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* A small arrow pointing up, labelled N: north is up. */
static void draw_north(cairo_t *cr, double x, double y)
{
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_line_width(cr, 1.2);
    cairo_move_to(cr, x, y + 18);
    cairo_line_to(cr, x, y + 6);
    cairo_stroke(cr);
    cairo_move_to(cr, x - 3.5, y + 9);
    cairo_line_to(cr, x, y + 3);
    cairo_line_to(cr, x + 3.5, y + 9);
    cairo_close_path(cr);
    cairo_fill(cr);
    font(cr, 9.0, 1);
    text_at(cr, "N", x, y + 1, 0.5);
    cairo_restore(cr);
}

/* ---- colour bar ---- */

static void draw_colorbar(cairo_t *cr, const plot_colormap *cm, double x, double y, double w)
{
    if (!cm)
        return;
    double bw = w / cm->nbins;
    char label[32];
    cairo_save(cr);
    for (uint32_t k = 0; k < cm->nbins; k++) {
        cairo_rectangle(cr, x + k * bw, y, bw, BAR_H);
        set_rgb(cr, cm->bins[k].rgb);
        cairo_fill(cr);
    }
    cairo_rectangle(cr, x, y, w, BAR_H);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.6);
    cairo_stroke(cr);
    font(cr, 8.5, 0);
    /* Every edge, or every second one when the labels would touch. */
    double widest = 0;
    for (uint32_t k = 1; k < cm->nbins; k++) {
        cairo_text_extents_t te;
        snprintf(label, sizeof label, "%g", cm->bins[k].lo);
        cairo_text_extents(cr, label, &te);
        widest = te.x_advance > widest ? te.x_advance : widest;
    }
    uint32_t every = widest + 3 > bw ? 2 : 1;
    for (uint32_t k = 1; k < cm->nbins; k++) {
        double ex = x + k * bw;
        cairo_move_to(cr, ex, y + BAR_H);
        cairo_line_to(cr, ex, y + BAR_H + 3);
        cairo_stroke(cr);
        if (k % every)
            continue;
        snprintf(label, sizeof label, "%g", cm->bins[k].lo);
        text_at(cr, label, ex, y + BAR_H + 12, 0.5);
    }
    cairo_restore(cr);
}

/* ---- panels and header ---- */

static void panel_title(cairo_t *cr, const plot_sample *s, const plot_moment *m, uint32_t w, uint32_t t,
                        double x, double y)
{
    char sweep[48] = "", when[32] = "", buf[160];
    if (s->have_elevation)
        snprintf(sweep, sizeof sweep, "sweep %" PRIu32 " (%.1f\u00b0)", w, s->elevation[w]);
    else
        snprintf(sweep, sizeof sweep, "sweep %" PRIu32, w);
    if (s->have_times)
        utc_time(s->times[t], "%H:%M:%SZ", when, sizeof when);
    const char *unit = m->cm ? m->cm->unit : "";
    snprintf(buf, sizeof buf, "%s%s%s%s  %s  frame %" PRIu32 "%s%s", m->name, unit[0] ? " [" : "", unit,
             unit[0] ? "]" : "", sweep, t, when[0] ? " " : "", when);
    cairo_set_source_rgb(cr, 0, 0, 0);
    font(cr, 11.0, 0);
    text_at(cr, buf, x, y, 0);
}

static void draw_panel(cairo_t *cr, const plot_sample *s, const layout *L, uint32_t p, int vector,
                       uint32_t *colors, tnrec_plot_panel *out)
{
    const plot_moment *m = &s->moments[L->cell[p].moment];
    uint32_t w = L->cell[p].sweep, t = L->cell[p].frame;
    double cx = PAGE_PAD + L->cell[p].col * CELL_W, cy = HEADER_H + L->cell[p].row * CELL_H;
    double bx = cx + PPI_DX, by = cy + PPI_DY;
    wedge g;
    wedge_fit(&g, s, bx, by, PPI_W, PPI_H);
    panel_title(cr, s, m, w, t, cx + 6, cy + 16);
    draw_gates(cr, s, m, t, w, &g, vector, colors);
    draw_grid(cr, &g);
    draw_north(cr, cx + CELL_W - 14, by - 4);
    draw_colorbar(cr, m->cm, bx, cy + BAR_DY, PPI_W);

    memset(out, 0, sizeof *out);
    snprintf(out->field, sizeof out->field, "%s", m->name);
    out->sweep = w;
    out->frame = t;
    out->x = L->ox + bx * L->scale;
    out->y = L->oy + by * L->scale;
    out->w = PPI_W * L->scale;
    out->h = PPI_H * L->scale;
    out->origin_x = L->ox + g.ox * L->scale;
    out->origin_y = L->oy + g.oy * L->scale;
    out->px_per_km = g.k * L->scale;
    out->az_lo = g.az_lo;
    out->az_span = g.az_span;
    out->range_lo_km = g.r_lo;
    out->range_hi_km = g.r_hi;
    out->unit = m->cm ? m->cm->unit : "";
    grid_steps(&g, &out->ring_step_km, &out->radial_step_deg);
}

static void legend_box(cairo_t *cr, double *x, double y, uint32_t rgb, const char *label)
{
    cairo_text_extents_t te;
    cairo_rectangle(cr, *x, y - 9, 12, 10);
    set_rgb(cr, rgb);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.6);
    cairo_stroke(cr);
    cairo_move_to(cr, *x + 16, y);
    cairo_show_text(cr, label);
    cairo_text_extents(cr, label, &te);
    *x += 16 + te.x_advance + 14;
}

static void draw_header(cairo_t *cr, const plot_sample *s, const tnrec_plot_options *opt)
{
    const tnrec_record_meta *mt = &s->meta;
    char when[48], ef[16], line[512];
    uint32_t t = opt->frame >= 0 ? (uint32_t)opt->frame : s->nframes - 1;
    utc_time(s->have_times ? s->times[t] : mt->time, "%Y-%m-%d %H:%M:%S UTC", when, sizeof when);
    if (mt->ef >= 0)
        snprintf(ef, sizeof ef, "EF%d", (int)mt->ef);
    else
        snprintf(ef, sizeof ef, "no tornado");
    snprintf(line, sizeof line, "%s  %s%s  %s  %s  label %d  event %" PRId64, s->site[0] ? s->site : "site ?", when,
             opt->frame == TNREC_PLOT_ALL_FRAMES ? " (last frame)" : "", tnrec_category_name(mt->category), ef,
             (int)mt->label, mt->event_id);
    cairo_set_source_rgb(cr, 0, 0, 0);
    font(cr, 15.0, 1);
    text_at(cr, line, PAGE_PAD + 6, 22, 0);

    font(cr, 10.0, 0);
    snprintf(line, sizeof line, "record %" PRIu64 "  %s", s->index, mt->key);
    text_at(cr, line, PAGE_PAD + 6, 38, 0);
    double x = PAGE_PAD + 6;
    legend_box(cr, &x, 53, TNREC_PLOT_NODATA_RGB, "no data");
    if (s->folded)
        legend_box(cr, &x, 53, TNREC_PLOT_FOLDED_RGB, "range folded");
    cairo_set_source_rgb(cr, 0.6, 0, 0);
    if (s->geometry_assumed)
        text_at(cr, "no azimuth/range limits in the record: 0.5\u00b0 x 250 m gates from 0\u00b0, 0 km assumed",
                x, 53, 0);
}

/* Everything, in nominal units on a page already scaled. */
static void draw_page(cairo_t *cr, const plot_sample *s, const layout *L, const tnrec_plot_options *opt,
                      int vector, uint32_t *colors, tnrec_plot_result *res)
{
    set_rgb(cr, TNREC_PLOT_PAGE_RGB);
    cairo_paint(cr);
    cairo_translate(cr, L->ox, L->oy);
    cairo_scale(cr, L->scale, L->scale);
    draw_header(cr, s, opt);
    for (uint32_t p = 0; p < L->npanels; p++)
        draw_panel(cr, s, L, p, vector, colors, &res->panels[p]);
}

/* ---- output ---- */

typedef struct sink {
    tnrec_atomic_file file;
    tnrec_err err;             /* the first write error, with its message kept */
    char msg[512];
} sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int len)
{
    sink *k = closure;
    if (k->err)
        return CAIRO_STATUS_WRITE_ERROR;
    k->err = tnrec__atomic_write(&k->file, data, len);
    if (k->err) {
        snprintf(k->msg, sizeof k->msg, "%s", tnrec_error_last());
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

static tnrec_err cairo_fail(cairo_status_t st, const sink *k, const char *path, const layout *L)
{
    if (k->err)
        return tnrec__fail(k->err, "%s", k->msg);
    if (st == CAIRO_STATUS_NO_MEMORY || st == CAIRO_STATUS_INVALID_SIZE)
        return tnrec__fail(TNREC_ENOMEM, "cannot draw a %" PRIu32 "x%" PRIu32 " picture for '%s': %s\n"
                           "hint: give a smaller --size", L->width, L->height, path, cairo_status_to_string(st));
    return tnrec__fail(TNREC_EIO, "cannot draw '%s': %s", path, cairo_status_to_string(st));
}

static cairo_surface_t *make_surface(tnrec_plot_format fmt, sink *k, const layout *L)
{
    switch (fmt) {
    case TNREC_PLOT_SVG:
        return cairo_svg_surface_create_for_stream(sink_write, k, L->width, L->height);
    case TNREC_PLOT_PDF:
        return cairo_pdf_surface_create_for_stream(sink_write, k, L->width, L->height);
    case TNREC_PLOT_PNG:
        break;
    }
    return cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)L->width, (int)L->height);
}

/* Draws and streams the picture into k's open file. */
static tnrec_err render(const plot_sample *s, const layout *L, const tnrec_plot_options *opt, const char *path,
                        sink *k, tnrec_plot_result *res)
{
    int vector = opt->format != TNREC_PLOT_PNG;
    cairo_surface_t *surf = make_surface(opt->format, k, L);
    cairo_status_t st = cairo_surface_status(surf);
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        return cairo_fail(st, k, path, L);
    }
    uint32_t *colors = malloc((size_t)s->naz * s->ngates * sizeof *colors);
    if (!colors) {
        cairo_surface_destroy(surf);
        return tnrec__fail(TNREC_ENOMEM, "out of memory drawing '%s'", path);
    }
    cairo_t *cr = cairo_create(surf);
    draw_page(cr, s, L, opt, vector, colors, res);
    free(colors);
    st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) {
        if (vector) {
            cairo_surface_finish(surf);
            st = cairo_surface_status(surf);
        } else {
            cairo_surface_flush(surf);
            st = cairo_surface_write_to_png_stream(surf, sink_write, k);
        }
    }
    cairo_surface_destroy(surf);
    return st == CAIRO_STATUS_SUCCESS && !k->err ? TNREC_OK : cairo_fail(st, k, path, L);
}

int tnrec_plot_available(void) { return 1; }

tnrec_err tnrec_plot_record(const tnrec_dataset *ds, const char *ds_name, uint64_t index,
                            const tnrec_plot_options *opt, const char *path, tnrec_plot_result *result)
{
    if (!ds || !opt || !path || !*path)
        return tnrec__fail(TNREC_EINVAL, "tnrec_plot_record: no dataset, options or output path");
    if (opt->format != TNREC_PLOT_PNG && opt->format != TNREC_PLOT_SVG && opt->format != TNREC_PLOT_PDF)
        return tnrec__fail(TNREC_EINVAL, "unknown picture format %d\nhint: png, svg or pdf", (int)opt->format);
    tnrec_plot_result local;
    tnrec_plot_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    plot_sample s;
    tnrec_err e = plot_sample_load(&s, ds, ds_name ? ds_name : "dataset", index, opt);
    if (e)
        return e;
    layout L;
    layout_panels(&L, &s, opt);
    if ((e = layout_page(&L, opt)) == TNREC_OK) {
        sink k;
        memset(&k, 0, sizeof k);
        k.file.fd = -1;
        if ((e = tnrec__atomic_open(&k.file, path)) != TNREC_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", tnrec_error_last());
            e = tnrec__fail(e, "cannot write the picture '%s': %s\nhint: check that its directory exists and is "
                            "writable, or give another -o", path, msg);
        } else {
            e = render(&s, &L, opt, path, &k, res);
            if (e)
                tnrec__atomic_abort(&k.file);
            else
                e = tnrec__atomic_commit(&k.file);
        }
    }
    if (!e) {
        res->width = L.width;
        res->height = L.height;
        res->npanels = L.npanels;
        res->geometry_assumed = s.geometry_assumed;
    }
    plot_sample_free(&s);
    return e;
}
