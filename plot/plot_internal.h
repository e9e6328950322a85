/* plot/plot_internal.h: what the files of plot/ share.
 *
 * plot/ depends on records/ (the public reading API), common/ (errors and
 * atomic files) and cairo; nothing else includes it. */
#ifndef TNREC_PLOT_INTERNAL_H
#define TNREC_PLOT_INTERNAL_H

#include <stdint.h>

#include "tnrec/plot.h"

/* One bin of a discrete colour map: values >= lo (up to the next bin's lo). */
typedef struct plot_bin {
    double lo;                 /* -INFINITY for the first bin */
    uint32_t rgb;
} plot_bin;

typedef struct plot_colormap {
    const char *field;         /* "DBZ", ... */
    const char *unit;
    const plot_bin *bins;
    uint32_t nbins;
} plot_colormap;

/* The colour map of a moment, or NULL. */
const plot_colormap *plot_colormap_find(const char *field);
uint32_t plot_colormap_color(const plot_colormap *cm, double v);

/* One moment of the loaded record, in physical units (NaN = no data). */
typedef struct plot_moment {
    char name[TNREC_NAME_MAX];
    const plot_colormap *cm;
    double *values;            /* frames x azimuths x gates x sweeps, C order */
} plot_moment;

/* The parts of one record a picture needs. */
typedef struct plot_sample {
    const char *path;          /* the dataset, for messages */
    uint64_t index;
    tnrec_record_meta meta;
    uint32_t nframes, naz, ngates, nsweeps;
    uint32_t nmoments;
    plot_moment moments[TNREC_PLOT_MAX_FIELDS];
    uint8_t *folded;           /* range_folded_mask, same shape, or NULL */
    int64_t times[TNREC_PLOT_MAX_FRAMES]; /* Unix seconds of each frame */
    int have_times;
    double elevation[TNREC_PLOT_MAX_SWEEPS];
    int have_elevation;
    char site[8];              /* "" when the record has none */
    double az_lo, az_span;     /* degrees clockwise from north */
    double range_lo, range_hi; /* km */
    int geometry_assumed;      /* no limits stored: 0.5 deg x 250 m gates from 0 */
} plot_sample;

/* Loads record `index` of ds: the moments opt asks for (all present ones
 * when it names none), the mask when opt->mask, times, site, elevation and
 * limits. Checks every option against what the record has. */
tnrec_err plot_sample_load(plot_sample *s, const tnrec_dataset *ds, const char *path, uint64_t index,
                           const tnrec_plot_options *opt);
void plot_sample_free(plot_sample *s);

/* Element (frame, az, gate, sweep) of a moment's array. */
static inline size_t plot_elem(const plot_sample *s, uint32_t t, uint32_t a, uint32_t g, uint32_t w)
{
    return (((size_t)t * s->naz + a) * s->ngates + g) * s->nsweeps + w;
}

#endif
