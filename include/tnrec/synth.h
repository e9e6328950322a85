/* tnrec/synth.h: a synthetic stand-in for the TorNet archive.
 *
 * `tnrec synth OUT --samples N` writes a TORNET_ROOT (catalog.csv,
 * train/YYYY/NAME.nc, test/YYYY/NAME.nc) whose files have exactly the layout of
 * the real TorNet v1.1 samples (dimensions, variables in the real order and
 * types, global attributes in the real order, CF-coded time, _FillValue NaN,
 * MissingDataFlag -999 gates, range-folded gates, shuffle + deflate with one
 * chunk per variable). The radar fields are storm-shaped, move between the
 * four frames and carry a learnable but noisy tornado signature: a
 * Rankine-vortex velocity couplet, a hook echo and a debris signature (low
 * RHOHV) on TOR samples; broader, weaker rotation on many WRN samples.
 *
 * Sample i depends only on (seed, i): the same seed gives byte-identical
 * files whatever the sample count or the thread count.
 *
 * Quantisation (NEXRAD level-II like): DBZ, VEL and WIDTH in steps of 0.5,
 * ZDR in steps of 1/16 dB, RHOHV in steps of 1/300. KDP, which level II
 * does not carry (it is derived from the slope of PHIDP), is continuous,
 * with an error correlated along the ray. */
#ifndef TNREC_SYNTH_H
#define TNREC_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNREC_SYNTH_NTIME 4
#define TNREC_SYNTH_NAZIMUTH 120
#define TNREC_SYNTH_NRANGE 240
#define TNREC_SYNTH_NSWEEP 2
/* Values per moment: time x azimuth x range x sweep, C order (sweep fastest). */
#define TNREC_SYNTH_NGATES (TNREC_SYNTH_NTIME * TNREC_SYNTH_NAZIMUTH * TNREC_SYNTH_NRANGE * TNREC_SYNTH_NSWEEP)
#define TNREC_SYNTH_NMOMENTS 6

/* The six moments in file order. */
typedef enum tnrec_synth_moment {
    TNREC_SYNTH_DBZ = 0,
    TNREC_SYNTH_VEL,
    TNREC_SYNTH_KDP,
    TNREC_SYNTH_RHOHV,
    TNREC_SYNTH_ZDR,
    TNREC_SYNTH_WIDTH
} tnrec_synth_moment;

/* Variable name of a moment ("DBZ", ...). Static string; NULL if out of range. */
const char *tnrec_synth_moment_name(int moment);

/* One sample, attributes and arrays, as a reader of the .nc file sees it. */
typedef struct tnrec_synth_sample {
    uint64_t index;               /* sample index the fields come from */
    /* global attributes */
    char site_name[8];            /* e.g. "KTLX" */
    double site_lat, site_lon;
    double missing_data_flag;     /* -999.0 */
    double ef_number;             /* -1 unless TOR, else 0..5 */
    int64_t event_id, episode_id;
    int has_tornado_times;        /* 0: a v1.0-style file without the two */
    char tornado_start_time[24];  /* "YYYY-MM-DD HH:MM:SS" on TOR, else "" */
    char tornado_end_time[24];
    char category[4];             /* "NUL", "WRN" or "TOR" */
    char scit_id[8];              /* storm cell id, e.g. "U2" */
    char storm_event_url[96];
    /* time: frame_time is the truth (Unix seconds); the file stores it
     * CF-coded with time_units, as int64 values when time_is_int64, else
     * as float64 values */
    int64_t frame_time[TNREC_SYNTH_NTIME];
    char time_units[64];
    char time_calendar[24];       /* "" means no calendar attribute */
    int time_is_int64;
    double time_f64[TNREC_SYNTH_NTIME];
    int64_t time_i64[TNREC_SYNTH_NTIME];
    /* catalog view */
    char filename[96];            /* relative to OUT: "train/2013/NUL_....nc" */
    int is_train;                 /* day-of-year (1-based) mod 20 < 17 */
    int year;
    char start_time[24], end_time[24]; /* first and last frame, "YYYY-MM-DD HH:MM:SS" */
    int has_missing_gates;        /* some gates hold MissingDataFlag */
    int has_range_folding;        /* some gates have range_folded_mask 1 */
    /* coordinate and small variables */
    float azimuth[TNREC_SYNTH_NAZIMUTH];      /* degrees */
    float range[TNREC_SYNTH_NRANGE];          /* metres */
    double elevation[TNREC_SYNTH_NSWEEP];     /* degrees */
    uint8_t frame_labels[TNREC_SYNTH_NTIME];
    float nyquist_velocity[TNREC_SYNTH_NTIME * TNREC_SYNTH_NSWEEP];
    float azimuth_limits[2], range_limits[2];
    /* big arrays, TNREC_SYNTH_NGATES values each, owned by the sample */
    float *moment[TNREC_SYNTH_NMOMENTS];
    uint8_t *range_folded_mask;
} tnrec_synth_sample;

/* Allocates a sample with its arrays (about 5.8 MB). Free with _free. */
tnrec_err tnrec_synth_sample_create(tnrec_synth_sample **out);
/* Frees a sample; accepts NULL. */
void tnrec_synth_sample_free(tnrec_synth_sample *s);
/* Fills out (made by _create) with sample `index` of the stream `seed`:
 * the same values, bit for bit, that `tnrec synth` writes for it. */
void tnrec_synth_sample_generate(tnrec_synth_sample *out, uint64_t seed, uint64_t index);
/* As _generate, with the share of TOR samples set to tor_fraction
 * (0 < F < 1; NUL and WRN keep their 61:32 proportion); 0 means TorNet's
 * own mix, the same samples _generate makes. */
void tnrec_synth_sample_generate_mix(tnrec_synth_sample *out, uint64_t seed, uint64_t index,
                                     double tor_fraction);
/* Writes s as a TorNet NetCDF-4 file at path (through a temporary name
 * and a rename; the directory must exist). deflate_level 1..9. Serialised
 * with every other netCDF/HDF5 call of the synthesiser. */
tnrec_err tnrec_synth_sample_write(const tnrec_synth_sample *s, const char *path, int deflate_level);

typedef struct tnrec_synth_options {
    const char *out_dir;   /* created if missing */
    uint64_t samples;      /* > 0 */
    uint64_t seed;
    int threads;           /* 0: OpenMP's default; ignored without OpenMP */
    int force;             /* replace an existing catalog and its files */
    int deflate_level;     /* 1..9; 0 means the default (2) */
    double tor_fraction;   /* share of TOR samples, 0 < F < 1; 0 means
                              TorNet's mix (NUL 61%, WRN 32%, TOR 7%) */
    /* Called after each sample file, one call at a time (may be NULL). */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} tnrec_synth_options;

typedef struct tnrec_synth_stats {
    uint64_t samples, train, test;
    uint64_t nul, wrn, tor;
    uint64_t bytes;        /* total size of the .nc files */
    int threads;           /* threads used */
    double seconds;        /* wall time */
} tnrec_synth_stats;

/* Default options: seed 0, threads 0, deflate level 2, no force,
 * TorNet's class mix. */
void tnrec_synth_options_init(tnrec_synth_options *out);

/* Generates opt->samples samples under opt->out_dir and then catalog.csv
 * (written last, atomically, so a directory with a catalog is complete).
 * Refuses an out_dir that already has a catalog.csv unless opt->force.
 * out (may be NULL) receives the counts and timing. */
tnrec_err tnrec_synth_run(tnrec_synth_stats *out, const tnrec_synth_options *opt);

#ifdef __cplusplus
}
#endif
#endif
