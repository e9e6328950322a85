/* plot/colormap.c: the colour maps of the radar moments, and the parts of
 * the plot API that need no cairo (options, key lookup, file formats).
 *
 * Every map is discrete: a value takes the colour of the last bin whose
 * lower edge it reaches, so one colour means one range of values on the
 * picture and on its colour bar. docs/inspect.md lists the same bins; the
 * plot test reads them from there. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "plot_internal.h"

#define NBINS(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* NWS-style reflectivity, 5 dBZ steps; bluish greys below 5 dBZ. */
static const plot_bin dbz_bins[] = {
    { -INFINITY, 0x2b2b4b }, { -10, 0x4f4f77 }, { 0, 0x8a8ab5 }, { 5, 0x04e9e7 },
    { 10, 0x019ff4 }, { 15, 0x0300f4 }, { 20, 0x02fd02 }, { 25, 0x01c501 },
    { 30, 0x008e00 }, { 35, 0xfdf802 }, { 40, 0xe5bc00 }, { 45, 0xfd9500 },
    { 50, 0xfd0000 }, { 55, 0xd40000 }, { 60, 0xbc0000 }, { 65, 0xf800fd },
    { 70, 0x9854c6 }, { 75, 0xfdfdfd },
};
/* Radial velocity, diverging around a pale band at zero: inbound
 * (negative) in greens, outbound in reds, brighter as the speed grows. */
static const plot_bin vel_bins[] = {
    { -INFINITY, 0x00ff90 }, { -50, 0x00e000 }, { -40, 0x00c000 }, { -30, 0x00a000 },
    { -20, 0x008000 }, { -10, 0x006000 }, { -3, 0xefe8d0 }, { 3, 0x600000 },
    { 10, 0x800000 }, { 20, 0xa00000 }, { 30, 0xc80000 }, { 40, 0xf00000 },
    { 50, 0xff70a0 },
};
/* Specific differential phase, a viridis-like sequence. */
static const plot_bin kdp_bins[] = {
    { -INFINITY, 0x440154 }, { -1, 0x482475 }, { -0.5, 0x414487 }, { 0, 0x355f8d },
    { 0.5, 0x2a788e }, { 1, 0x21918c }, { 1.5, 0x22a884 }, { 2, 0x44bf70 },
    { 3, 0x7ad151 }, { 4, 0xbddf26 }, { 5, 0xfde725 },
};
/* Correlation coefficient, plasma-like, finest near 1 where it matters. */
static const plot_bin rhohv_bins[] = {
    { -INFINITY, 0x0d0887 }, { 0.2, 0x41049d }, { 0.5, 0x6a00a8 }, { 0.7, 0x8f0da4 },
    { 0.8, 0xb12a90 }, { 0.85, 0xcc4778 }, { 0.9, 0xe16462 }, { 0.93, 0xf2844b },
    { 0.96, 0xfca636 }, { 0.98, 0xfcce25 }, { 1.0, 0xf0f921 },
};
/* Differential reflectivity, turbo-like. */
static const plot_bin zdr_bins[] = {
    { -INFINITY, 0x30123b }, { -1, 0x4145ab }, { 0, 0x4675ed }, { 0.5, 0x39a2fc },
    { 1, 0x1bcfd4 }, { 1.5, 0x24eca6 }, { 2, 0x61fc6c }, { 2.5, 0xa4fc3b },
    { 3, 0xd1e834 }, { 4, 0xf3c63a }, { 5, 0xfe9b2d }, { 6, 0xf36315 },
    { 8, 0x7a0403 },
};
/* Spectrum width, inferno-like. */
static const plot_bin width_bins[] = {
    { -INFINITY, 0x1b0c41 }, { 1, 0x4a0c6b }, { 2, 0x781c6d }, { 3, 0xa52c60 },
    { 4, 0xcf4446 }, { 5, 0xed6925 }, { 6, 0xfb9b06 }, { 7, 0xf7d13d },
    { 8, 0xfcffa4 },
};

static const plot_colormap colormaps[] = {
    { "DBZ", "dBZ", dbz_bins, NBINS(dbz_bins) },
    { "VEL", "m/s", vel_bins, NBINS(vel_bins) },
    { "KDP", "deg/km", kdp_bins, NBINS(kdp_bins) },
    { "RHOHV", "", rhohv_bins, NBINS(rhohv_bins) },
    { "ZDR", "dB", zdr_bins, NBINS(zdr_bins) },
    { "WIDTH", "m/s", width_bins, NBINS(width_bins) },
};

const plot_colormap *plot_colormap_find(const char *field)
{
    for (size_t i = 0; field && i < sizeof colormaps / sizeof colormaps[0]; i++)
        if (strcmp(colormaps[i].field, field) == 0)
            return &colormaps[i];
    return NULL;
}

uint32_t plot_colormap_color(const plot_colormap *cm, double v)
{
    if (!cm || isnan(v))
        return TNREC_PLOT_NODATA_RGB;
    uint32_t k = 0;
    while (k + 1 < cm->nbins && v >= cm->bins[k + 1].lo)
        k++;
    return cm->bins[k].rgb;
}

int tnrec_plot_is_moment(const char *field)
{
    return plot_colormap_find(field) != NULL;
}

const char *tnrec_plot_unit(const char *field)
{
    const plot_colormap *cm = plot_colormap_find(field);
    return cm ? cm->unit : "";
}

uint32_t tnrec_plot_color(const char *field, double v)
{
    return plot_colormap_color(plot_colormap_find(field), v);
}

void tnrec_plot_options_init(tnrec_plot_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->format = TNREC_PLOT_PNG;
    opt->frame = TNREC_PLOT_LAST_FRAME;
    opt->sweeps = 1u;
}

int tnrec_plot_format_from_name(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/'))
        return -1;
    if (strcasecmp(dot, ".png") == 0)
        return TNREC_PLOT_PNG;
    if (strcasecmp(dot, ".svg") == 0)
        return TNREC_PLOT_SVG;
    if (strcasecmp(dot, ".pdf") == 0)
        return TNREC_PLOT_PDF;
    return -1;
}

tnrec_err tnrec_plot_find_key(const tnrec_dataset *ds, const char *path, const char *key, uint64_t *out_index)
{
    uint64_t index = 0;
    for (size_t s = 0; s < tnrec_dataset_shard_count(ds); s++) {
        const tnrec_shard *sh = tnrec_dataset_shard(ds, s);
        for (uint64_t i = 0; i < tnrec_shard_count(sh); i++, index++) {
            const tnrec_record_info *info = tnrec_shard_info(sh, i);
            if (info && strcmp(info->meta.key, key) == 0) {
                *out_index = index;
                return TNREC_OK;
            }
        }
    }
    return tnrec__fail(TNREC_ENOTFOUND, "no record with key '%s' in '%s'\n"
                       "hint: 'tnrec dump --records %s' lists the keys (the last column)", key, path, path);
}
