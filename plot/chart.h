/* plot/chart.h: small x-y charts drawn with cairo to SVG text in memory
 * (lines, steps, histograms, points), for the HTML report. */
#ifndef TNREC_PLOT_CHART_H
#define TNREC_PLOT_CHART_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

#define CHART_MAX_SERIES 8
#define CHART_MAX_MARKS 4

typedef enum chart_style { CHART_LINE = 0, CHART_POINTS = 1, CHART_HIST = 2 } chart_style;

/* CHART_HIST: bar i spans x[i] .. x[i] + bar_width, height y[i]. NaN y
 * values are gaps. */
typedef struct chart_series {
    const char *label;
    const double *x, *y;
    size_t n;
    uint32_t rgb;
    chart_style style;
    int dashed;
    double bar_width;
} chart_series;

/* A labelled point (operating point, best epoch...); NaN y: a vertical line at x. */
typedef struct chart_mark {
    double x, y;
    const char *label;
    uint32_t rgb;
} chart_mark;

typedef struct chart {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax;       /* equal min and max: from the data */
    int diagonal;                        /* grey line from (xmin, ymin) to (xmax, ymax) */
    int xinteger;                        /* x ticks at whole numbers only (epochs) */
    double width, height;                /* points; 0: 420 x 300 */
    chart_series series[CHART_MAX_SERIES];
    int nseries;
    chart_mark marks[CHART_MAX_MARKS];
    int nmarks;
} chart;

/* The chart as SVG text (*out malloc'd, *len bytes, NUL-terminated). */
tnrec_err chart_svg(const chart *c, char **out, size_t *len);

#endif
