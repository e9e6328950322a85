/* tnrec/plot.h: pictures of records (`tnrec plot`).
 *
 * One record of a dataset or shard drawn as PPI panels: each radar moment
 * (DBZ, VEL, KDP, RHOHV, ZDR, WIDTH) of the chosen sweeps and frames, every
 * gate at its true azimuth and range (from the record's azimuth_limits and
 * range_limits), north up, with range rings, radials, colour bars in
 * physical units and a title from the record's metadata. Drawn with cairo
 * to PNG, SVG or PDF; the file is written atomically (a temporary name,
 * renamed when complete), so a failure leaves no file behind.
 *
 * The colour maps are discrete: a value takes the colour of the bin it
 * falls in (tnrec_plot_color); docs/inspect.md lists the bins. Without
 * cairo (a build without libcairo2-dev) tnrec_plot_record fails with
 * TNREC_EUNSUPPORTED and names the package; the colour maps still work. */
#ifndef TNREC_PLOT_H
#define TNREC_PLOT_H

#include <stdint.h>

#include "tnrec/error.h"
#include "tnrec/records.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNREC_PLOT_MAX_FIELDS 6          /* the six TorNet moments */
#define TNREC_PLOT_MAX_SWEEPS 2
#define TNREC_PLOT_MAX_FRAMES 4
#define TNREC_PLOT_MAX_PANELS (TNREC_PLOT_MAX_FIELDS * TNREC_PLOT_MAX_SWEEPS * TNREC_PLOT_MAX_FRAMES)
#define TNREC_PLOT_MAX_SIDE 16384u        /* pixels, either side */
#define TNREC_PLOT_LAST_FRAME (-1)
#define TNREC_PLOT_ALL_FRAMES (-2)

/* Colours of what is not a value: gates without data, range-folded gates
 * (--mask), the page outside the radar's wedge. 0xRRGGBB. */
#define TNREC_PLOT_NODATA_RGB 0xb4b4b4u
#define TNREC_PLOT_FOLDED_RGB 0x77007du
#define TNREC_PLOT_PAGE_RGB 0xffffffu

typedef enum tnrec_plot_format {
    TNREC_PLOT_PNG = 0, TNREC_PLOT_SVG = 1, TNREC_PLOT_PDF = 2
} tnrec_plot_format;

typedef struct tnrec_plot_options {
    tnrec_plot_format format;
    uint32_t width, height;              /* pixels (points for SVG/PDF); 0, 0: from the panel count */
    int frame;                           /* 0.., TNREC_PLOT_LAST_FRAME or TNREC_PLOT_ALL_FRAMES */
    uint32_t sweeps;                     /* bit s: draw sweep s; 0: sweep 0 only */
    const char *fields[TNREC_PLOT_MAX_FIELDS]; /* moments to draw, in order */
    uint32_t nfields;                    /* 0: every moment the record has */
    int mask;                            /* draw range-folded gates (range_folded_mask) in purple */
} tnrec_plot_options;

/* Where one panel went, for whoever wants to find a gate in the picture:
 * the gate at azimuth a (degrees clockwise from north) and range r (km)
 * is at (origin_x + r sin a * px_per_km, origin_y - r cos a * px_per_km). */
typedef struct tnrec_plot_panel {
    char field[TNREC_NAME_MAX];
    uint32_t sweep, frame;
    double x, y, w, h;                   /* the PPI area, pixels from the top left */
    double origin_x, origin_y;           /* the radar (usually outside the area) */
    double px_per_km;
    double az_lo, az_span;               /* degrees: the wedge starts at az_lo, spans az_span clockwise */
    double range_lo_km, range_hi_km;
    double ring_step_km;                 /* range rings at the multiples of this inside the wedge */
    double radial_step_deg;              /* radials at the multiples of this inside the wedge */
    const char *unit;                    /* physical unit of the colour bar ("dBZ", "m/s", ...) */
} tnrec_plot_panel;

typedef struct tnrec_plot_result {
    uint32_t width, height;
    uint32_t npanels;
    int geometry_assumed;                /* 1: the record has no limits; 0.5 deg x 250 m gates assumed */
    tnrec_plot_panel panels[TNREC_PLOT_MAX_PANELS];
} tnrec_plot_result;

/* Options with their defaults: PNG, sized from the panels, last frame,
 * sweep 0, every moment, no mask. */
void tnrec_plot_options_init(tnrec_plot_options *opt);

/* Draws record `index` of ds (opened from ds_name, which messages use)
 * into path. Errors name the dataset, record, field or output file and
 * the fix. result (may be NULL) receives the layout. */
tnrec_err tnrec_plot_record(const tnrec_dataset *ds, const char *ds_name, uint64_t index,
                            const tnrec_plot_options *opt, const char *path, tnrec_plot_result *result);

/* The dataset-wide index of the record whose key is `key`
 * (TNREC_ENOTFOUND naming the dataset when there is none). */
tnrec_err tnrec_plot_find_key(const tnrec_dataset *ds, const char *path, const char *key, uint64_t *out_index);

/* 1 if `field` is one of the moments tnrec draws (DBZ VEL KDP RHOHV ZDR WIDTH). */
int tnrec_plot_is_moment(const char *field);
/* The physical unit of a moment ("dBZ", "m/s", "deg/km", "", "dB", "m/s"). */
const char *tnrec_plot_unit(const char *field);
/* The colour (0xRRGGBB) of physical value v of a moment; NaN gives
 * TNREC_PLOT_NODATA_RGB. An unknown field gives the no-data colour too. */
uint32_t tnrec_plot_color(const char *field, double v);
/* "png", "svg", "pdf" from a file name's extension (case-insensitive);
 * -1 when it has none of them. */
int tnrec_plot_format_from_name(const char *path);
/* 1 when this build can draw (it was built with cairo). */
int tnrec_plot_available(void);

#ifdef __cplusplus
}
#endif
#endif
