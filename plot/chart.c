/* plot/chart.c: x-y charts on a cairo SVG surface written to memory. */
#include <cairo.h>
#include <cairo-svg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "common.h"

#define FONT "DejaVu Sans"
#define MARGIN_L 56.0
#define MARGIN_R 14.0
#define MARGIN_T 30.0
#define MARGIN_B 42.0
#define LEGEND_ROW 14.0

typedef struct frame {
    double x0, y0, w, h;                 /* plot area, points */
    double xmin, xmax, ymin, ymax;
} frame;

typedef struct membuf {
    char *data;
    size_t len, cap;
    int failed;
} membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len)
{
    membuf *m = closure;
    if (tnrec__grow(&m->data, &m->cap, m->len + len + 1, 1, "an SVG chart") != TNREC_OK) {
        m->failed = 1;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    m->data[m->len] = '\0';
    return CAIRO_STATUS_SUCCESS;
}

static double px(const frame *f, double x) { return f->x0 + (x - f->xmin) / (f->xmax - f->xmin) * f->w; }
static double py(const frame *f, double y) { return f->y0 + f->h - (y - f->ymin) / (f->ymax - f->ymin) * f->h; }

static void set_rgb(cairo_t *cr, uint32_t rgb, double alpha)
{
    cairo_set_source_rgba(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0, (rgb & 255) / 255.0, alpha);
}

static void text(cairo_t *cr, const char *s, double x, double y, double ax, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - ax * e.x_advance, y);
    cairo_show_text(cr, s);
}

/* The data's range of one axis over every series (y includes 0 for histograms). */
static void data_range(const chart *c, int yaxis, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < c->nseries; s++) {
        const chart_series *S = &c->series[s];
        for (size_t i = 0; i < S->n; i++) {
            double v = yaxis ? S->y[i] : S->x[i];
            double v2 = !yaxis && S->style == CHART_HIST ? v + S->bar_width : v;
            if (isfinite(v)) {
                *lo = fmin(*lo, fmin(v, v2));
                *hi = fmax(*hi, fmax(v, v2));
            }
        }
        if (yaxis && S->style == CHART_HIST)
            *lo = fmin(*lo, 0.0);
    }
    if (!isfinite(*lo)) {
        *lo = 0;
        *hi = 1;
    }
    if (*hi <= *lo) {
        double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1.0;
        *lo -= d;
        *hi += d;
    } else if (yaxis) {
        double pad = (*hi - *lo) * 0.05;
        *hi += pad;
        *lo = *lo == 0 ? 0 : *lo - pad;
    }
}

static double nice_step(double span)
{
    double raw = span / 5.0, p = pow(10.0, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void draw_axes(cairo_t *cr, const chart *c, const frame *f)
{
    cairo_set_line_width(cr, 0.6);
    for (int axis = 0; axis < 2; axis++) {
        double lo = axis ? f->ymin : f->xmin, hi = axis ? f->ymax : f->xmax, step = nice_step(hi - lo);
        if (!axis && c->xinteger)
            step = fmax(1.0, round(step));
        for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
            char buf[32];
            snprintf(buf, sizeof buf, "%g", fabs(v) < step * 1e-6 ? 0.0 : v);
            set_rgb(cr, 0xe4e4e4, 1);
            if (axis) {
                cairo_move_to(cr, f->x0, py(f, v));
                cairo_line_to(cr, f->x0 + f->w, py(f, v));
            } else {
                cairo_move_to(cr, px(f, v), f->y0);
                cairo_line_to(cr, px(f, v), f->y0 + f->h);
            }
            cairo_stroke(cr);
            set_rgb(cr, 0x333333, 1);
            if (axis)
                text(cr, buf, f->x0 - 4, py(f, v) + 3.5, 1.0, 9.5, 0);
            else
                text(cr, buf, px(f, v), f->y0 + f->h + 13, 0.5, 9.5, 0);
        }
    }
    set_rgb(cr, 0x333333, 1);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_stroke(cr);
    if (c->title)
        text(cr, c->title, f->x0 + f->w / 2, 18, 0.5, 12, 1);
    if (c->xlabel)
        text(cr, c->xlabel, f->x0 + f->w / 2, f->y0 + f->h + 32, 0.5, 10.5, 0);
    if (c->ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 14, f->y0 + f->h / 2);
        cairo_rotate(cr, -M_PI / 2);
        text(cr, c->ylabel, 0, 0, 0.5, 10.5, 0);
        cairo_restore(cr);
    }
}

static void draw_hist(cairo_t *cr, const chart_series *S, const frame *f)
{
    for (size_t i = 0; i < S->n; i++) {
        if (!isfinite(S->y[i]) || S->y[i] <= 0)
            continue;
        double x0 = px(f, S->x[i]), x1 = px(f, S->x[i] + S->bar_width), y = py(f, S->y[i]), yb = py(f, fmax(f->ymin, 0));
        cairo_rectangle(cr, x0, y, x1 - x0, yb - y);
        set_rgb(cr, S->rgb, 0.30);
        cairo_fill_preserve(cr);
        set_rgb(cr, S->rgb, 1);
        cairo_stroke(cr);
    }
}

/* Lines skip NaN gaps and points closer than half a point to the last drawn. */
static void draw_line(cairo_t *cr, const chart_series *S, const frame *f)
{
    int open = 0;
    double lx = 0, ly = 0;
    for (size_t i = 0; i < S->n; i++) {
        if (!isfinite(S->x[i]) || !isfinite(S->y[i])) {
            open = 0;
            continue;
        }
        double x = px(f, S->x[i]), y = py(f, S->y[i]);
        if (!open) {
            cairo_move_to(cr, x, y);
            open = 1;
        } else if (fabs(x - lx) + fabs(y - ly) >= 0.5 || i + 1 == S->n) {
            cairo_line_to(cr, x, y);
        } else {
            continue;
        }
        lx = x;
        ly = y;
    }
    cairo_stroke(cr);
}

static void draw_points(cairo_t *cr, const chart_series *S, const frame *f)
{
    for (size_t i = 0; i < S->n; i++)
        if (isfinite(S->x[i]) && isfinite(S->y[i])) {
            cairo_new_sub_path(cr);
            cairo_arc(cr, px(f, S->x[i]), py(f, S->y[i]), 3.0, 0, 2 * M_PI);
        }
    cairo_fill(cr);
}

static void draw_series(cairo_t *cr, const chart_series *S, const frame *f)
{
    cairo_set_line_width(cr, 1.6);
    static const double dash[] = { 5.0, 3.0 };
    cairo_set_dash(cr, dash, S->dashed ? 2 : 0, 0);
    set_rgb(cr, S->rgb, 1);
    if (S->style == CHART_HIST)
        draw_hist(cr, S, f);
    else if (S->style == CHART_POINTS)
        draw_points(cr, S, f);
    else
        draw_line(cr, S, f);
    cairo_set_dash(cr, NULL, 0, 0);
}

static void draw_mark(cairo_t *cr, const chart_mark *m, const frame *f)
{
    set_rgb(cr, m->rgb, 1);
    cairo_set_line_width(cr, 1.2);
    double x = px(f, m->x);
    if (!isfinite(m->y)) {
        static const double dash[] = { 3.0, 3.0 };
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, x, f->y0);
        cairo_line_to(cr, x, f->y0 + f->h);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (m->label)
            text(cr, m->label, x + 3, f->y0 + 11, 0, 9.5, 0);
        return;
    }
    double y = py(f, m->y);
    cairo_arc(cr, x, y, 4.5, 0, 2 * M_PI);
    cairo_fill(cr);
    if (m->label)
        text(cr, m->label, x + (x > f->x0 + f->w * 0.6 ? -7 : 7), y + (y < f->y0 + 14 ? 13 : -6),
             x > f->x0 + f->w * 0.6 ? 1.0 : 0.0, 9.5, 0);
}

static void draw_legend(cairo_t *cr, const chart *c, const frame *f)
{
    double y = f->y0 + 12;
    for (int s = 0; s < c->nseries; s++) {
        const chart_series *S = &c->series[s];
        if (!S->label)
            continue;
        set_rgb(cr, S->rgb, 1);
        cairo_rectangle(cr, f->x0 + f->w - 118, y - 8, 10, 8);
        cairo_fill(cr);
        set_rgb(cr, 0x222222, 1);
        text(cr, S->label, f->x0 + f->w - 104, y, 0, 9.5, 0);
        y += LEGEND_ROW;
    }
}

static void draw_chart(cairo_t *cr, const chart *c, double w, double h)
{
    frame f = { MARGIN_L, MARGIN_T, w - MARGIN_L - MARGIN_R, h - MARGIN_T - MARGIN_B,
                c->xmin, c->xmax, c->ymin, c->ymax };
    if (!(f.xmax > f.xmin))
        data_range(c, 0, &f.xmin, &f.xmax);
    if (!(f.ymax > f.ymin))
        data_range(c, 1, &f.ymin, &f.ymax);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw_axes(cr, c, &f);
    cairo_save(cr);
    cairo_rectangle(cr, f.x0, f.y0, f.w, f.h);
    cairo_clip(cr);
    if (c->diagonal) {
        set_rgb(cr, 0x999999, 1);
        cairo_set_line_width(cr, 0.8);
        cairo_move_to(cr, px(&f, f.xmin), py(&f, f.ymin));
        cairo_line_to(cr, px(&f, f.xmax), py(&f, f.ymax));
        cairo_stroke(cr);
    }
    for (int s = 0; s < c->nseries; s++)
        draw_series(cr, &c->series[s], &f);
    for (int m = 0; m < c->nmarks; m++)
        draw_mark(cr, &c->marks[m], &f);
    cairo_restore(cr);
    draw_legend(cr, c, &f);
}

tnrec_err chart_svg(const chart *c, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    double w = c->width > 0 ? c->width : 420, h = c->height > 0 ? c->height : 300;
    membuf m = { 0 };
    cairo_surface_t *surf = cairo_svg_surface_create_for_stream(mem_write, &m, w, h);
    cairo_t *cr = cairo_create(surf);
    draw_chart(cr, c, w, h);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surf);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(surf);
    cairo_surface_destroy(surf);
    if (st != CAIRO_STATUS_SUCCESS || m.failed || !m.data) {
        free(m.data);
        return tnrec__fail(m.failed ? TNREC_ENOMEM : TNREC_EINTERNAL, "cannot draw the chart '%s': %s",
                           c->title ? c->title : "", m.failed ? "out of memory" : cairo_status_to_string(st));
    }
    *out = m.data;
    *len = m.len;
    return TNREC_OK;
}
