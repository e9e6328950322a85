/* ingest/synth_storm.c: the contents of one synthetic TorNet sample.
 *
 * Metadata first (category, EF, site, times, coordinates, which oddities
 * the file carries), then the radar fields on the 120 x 240 polar chip:
 * a few elliptical storm cells over a smooth stratiform/clear-air
 * background, moving with the storm between the four frames (5 minutes
 * apart), with NEXRAD-like quantisation of the level-II moments, KDP
 * continuous as a derived field, and NaN where there is no echo.
 * TOR samples carry a beam-smoothed Rankine vortex couplet in VEL inside a
 * mesocyclone, a hook echo and (often) a debris signature (low RHOHV, high
 * DBZ, ZDR near 0) on the tornadic frames; many WRN samples carry broader,
 * weaker rotation and some a tight but weak couplet, NUL rarely a weak
 * mesocyclone. Strength, range, position and noise vary so that the task
 * is learnable but not trivial.
 *
 * Deliberately not modelled: velocity dealiasing artefacts beyond plain
 * folding at the Nyquist velocity, beam blockage, anomalous propagation.
 *
 * Invariant: every value is a function of (seed, index) only. Two
 * independent random streams are used (metadata, fields), each seeded from
 * (seed, index, stream), so the fields never shift when metadata draws
 * change order and no state is shared between samples or threads. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "splitmix64.h"
#include "synth_private.h"

#define NT TNREC_SYNTH_NTIME
#define NA TNREC_SYNTH_NAZIMUTH
#define NR TNREC_SYNTH_NRANGE
#define NS TNREC_SYNTH_NSWEEP
#define DEG (3.14159265358979323846 / 180.0)

/* ---- random numbers: splitmix64 seeding, xoshiro256** stream ---- */

typedef struct rng {
    uint64_t s[4];
} rng;

static void rng_seed(rng *r, uint64_t seed, uint64_t index, uint64_t stream)
{
    uint64_t x = tnrec__splitmix64(seed);
    x = tnrec__mix64(x ^ (index * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL));
    x ^= stream * 0xA0761D6478BD642FULL;
    for (int i = 0; i < 4; i++) {
        r->s[i] = tnrec__splitmix64_next(&x);
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

static double uni(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static double urange(rng *r, double a, double b) { return a + (b - a) * uni(r); }
static int uint_below(rng *r, int n) { return (int)(uni(r) * n); }
static int chance(rng *r, double p) { return uni(r) < p; }

/* Approximately standard normal from one draw: the sum of four 16-bit
 * uniforms (Irwin-Hall), rescaled. Cheap, and tails do not matter here. */
static inline float gauss(rng *r)
{
    uint64_t v = rng_next(r);
    uint32_t s = (uint32_t)(v & 0xFFFF) + (uint32_t)((v >> 16) & 0xFFFF) +
                 (uint32_t)((v >> 32) & 0xFFFF) + (uint32_t)(v >> 48);
    return ((float)s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

/* ---- smooth value noise on an integer lattice, hashed (no tables) ---- */

static inline float lattice(uint64_t key, int64_t ix, int64_t iy)
{
    uint64_t h = tnrec__mix64(key ^ ((uint64_t)ix * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)iy * 0xC2B2AE3D27D4EB4FULL));
    return (float)(h >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

/* In [-1, 1], smooth, unit lattice spacing. */
static float vnoise(uint64_t key, float x, float y)
{
    float fx = floorf(x), fy = floorf(y);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    float a = lattice(key, ix, iy), b = lattice(key, ix + 1, iy);
    float c = lattice(key, ix, iy + 1), d = lattice(key, ix + 1, iy + 1);
    float ab = a + (b - a) * tx, cd = c + (d - c) * tx;
    return ab + (cd - ab) * ty;
}

static float fbm2(uint64_t key, float x, float y)
{
    return 0.7f * vnoise(key, x, y) + 0.3f * vnoise(key ^ 0x5555, 2.03f * x + 17.1f, 2.03f * y - 9.7f);
}

/* ---- metadata ---- */

typedef struct site {
    const char *name;
    double lat, lon;
} site;

static const site sites[] = {
    { "KTLX", 35.3331, -97.2778 }, { "KFWS", 32.5731, -97.3031 }, { "KLSX", 38.6989, -90.6828 },
    { "KBMX", 33.1722, -86.7697 }, { "KDMX", 41.7311, -93.7228 }, { "KFFC", 33.3636, -84.5658 },
    { "KMPX", 44.8489, -93.5656 }, { "KOAX", 41.3203, -96.3667 }, { "KICT", 37.6545, -97.4431 },
    { "KSHV", 32.4508, -93.8414 }, { "KLIX", 30.3367, -89.8256 }, { "KJAN", 32.3178, -90.0803 },
    { "KHGX", 29.4719, -95.0792 }, { "KAMA", 35.2333, -101.7092 }, { "KDDC", 37.7608, -99.9689 },
    { "KLZK", 34.8364, -92.2622 }, { "KOHX", 36.2472, -86.5625 }, { "KILX", 40.1505, -89.3368 },
    { "KIND", 39.7075, -86.2803 }, { "KTBW", 27.7056, -82.4017 }, { "KGWX", 33.8967, -88.3289 },
    { "KINX", 36.1750, -95.5644 }, { "KEAX", 38.8103, -94.2644 }, { "KMOB", 30.6794, -88.2397 },
};

static void fmt_time(char *buf, size_t cap, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* the modulos only bound the widths for the compiler; the values fit */
    snprintf(buf, cap, "%04u-%02u-%02u %02u:%02u:%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

static int64_t year_start(int year)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mday = 1;
    return (int64_t)timegm(&tm);
}

/* Event ids: a permutation of [200000, 1000000) over the first 800,000
 * indices, then 1000000 + index; unique for every index, so file names
 * never collide. */
static int64_t event_id_of(uint64_t seed, uint64_t index)
{
    const uint64_t m = 800000;
    if (index >= m)
        return (int64_t)(1000000 + index);
    uint64_t off = tnrec__mix64(seed ^ 0x6A09E667F3BCC909ULL) % m;
    return (int64_t)(200000 + (index * 524287 + off) % m);
}

void ing_synth_meta(tnrec_synth_sample *out, uint64_t seed, uint64_t index, double tor_fraction)
{
    tnrec_synth_sample *s = out;
    rng r;
    rng_seed(&r, seed, index, 0);
    s->index = index;

    /* Category from a golden-ratio (Weyl) sequence: TorNet's mix (NUL 61%,
     * WRN 32%, TOR 7%) holds closely even for a few dozen samples. With a
     * TOR fraction F the top F of [0, 1) is TOR and the rest is split
     * 61:32 between NUL and WRN; F = 0 keeps the original thresholds
     * exactly (same bytes as before the option existed). */
    double w = fmod((double)(index % 1000003) * 0.6180339887498949 +
                    (double)(tnrec__mix64(seed ^ 0xBB67AE8584CAA73BULL) >> 11) * 0x1.0p-53, 1.0);
    double nul_below = 0.61, tor_from = 0.93;
    if (tor_fraction > 0.0 && tor_fraction < 1.0) {
        tor_from = 1.0 - tor_fraction;
        nul_below = tor_from * (0.61 / 0.93);
    }
    const char *cat = w < nul_below ? "NUL" : w < tor_from ? "WRN" : "TOR";
    memcpy(s->category, cat, 4);
    int tor = cat[0] == 'T';

    if (tor) {
        double u = uni(&r);
        s->ef_number = u < 0.42 ? 0 : u < 0.78 ? 1 : u < 0.93 ? 2 : u < 0.98 ? 3 : u < 0.995 ? 4 : 5;
    } else {
        s->ef_number = -1;
    }

    const site *st = &sites[uint_below(&r, (int)(sizeof sites / sizeof sites[0]))];
    snprintf(s->site_name, sizeof s->site_name, "%s", st->name);
    s->site_lat = st->lat;
    s->site_lon = st->lon;
    s->missing_data_flag = -999.0;

    /* Time and its CF coding. Variant C (minutes) keeps the frames on a
     * 15 s grid so that float minutes are exact. */
    double tv = uni(&r);
    int variant = tv < 0.60 ? 0 : tv < 0.75 ? 1 : tv < 0.90 ? 2 : 3;
    s->year = 2013 + uint_below(&r, 10);
    int leap = (s->year % 4 == 0 && s->year % 100 != 0) || s->year % 400 == 0;
    int doy = 1 + uint_below(&r, leap ? 366 : 365);
    int sod = uint_below(&r, 86400 - 960); /* the four frames stay inside the day */
    if (variant == 2)
        sod -= sod % 15;
    int64_t t0 = year_start(s->year) + (int64_t)(doy - 1) * 86400 + sod;
    s->frame_time[0] = t0;
    for (int t = 1; t < NT; t++) {
        int jitter = variant == 2 ? 0 : uint_below(&r, 17) - 8;
        s->frame_time[t] = t0 + 300 * t + jitter;
    }
    s->is_train = doy % 20 < 17;
    fmt_time(s->start_time, sizeof s->start_time, s->frame_time[0]);
    fmt_time(s->end_time, sizeof s->end_time, s->frame_time[NT - 1]);
    int cal = chance(&r, 0.5);
    s->time_calendar[0] = '\0';
    switch (variant) {
    case 0:
        snprintf(s->time_units, sizeof s->time_units, "seconds since 1970-01-01 00:00:00");
        if (cal)
            snprintf(s->time_calendar, sizeof s->time_calendar, "standard");
        s->time_is_int64 = 0;
        for (int t = 0; t < NT; t++)
            s->time_f64[t] = (double)s->frame_time[t];
        break;
    case 1:
        snprintf(s->time_units, sizeof s->time_units, "seconds since %s", s->start_time);
        snprintf(s->time_calendar, sizeof s->time_calendar, "proleptic_gregorian");
        s->time_is_int64 = 1;
        for (int t = 0; t < NT; t++)
            s->time_i64[t] = s->frame_time[t] - t0;
        break;
    case 2: {
        int64_t day0 = t0 - sod;
        char day[24];
        fmt_time(day, sizeof day, day0);
        snprintf(s->time_units, sizeof s->time_units, "minutes since %.10s 00:00:00", day);
        snprintf(s->time_calendar, sizeof s->time_calendar, "standard");
        s->time_is_int64 = 0;
        for (int t = 0; t < NT; t++)
            s->time_f64[t] = (double)(s->frame_time[t] - day0) / 60.0;
        break;
    }
    default:
        snprintf(s->time_units, sizeof s->time_units, "seconds since 2000-01-01T00:00:00");
        s->time_is_int64 = 1;
        for (int t = 0; t < NT; t++)
            s->time_i64[t] = s->frame_time[t] - 946684800;
        break;
    }
    if (!s->time_is_int64)
        memset(s->time_i64, 0, sizeof s->time_i64);
    else
        memset(s->time_f64, 0, sizeof s->time_f64);

    /* Labels: the tornado is on the ground from frame k0 to the end. */
    memset(s->frame_labels, 0, sizeof s->frame_labels);
    s->tornado_start_time[0] = s->tornado_end_time[0] = '\0';
    if (tor) {
        int k0 = 1 + uint_below(&r, NT - 1);
        for (int t = k0; t < NT; t++)
            s->frame_labels[t] = 1;
        int64_t ts = s->frame_time[k0] - uint_below(&r, 250);
        int64_t te = s->frame_time[NT - 1] + 60 + uint_below(&r, 1500);
        fmt_time(s->tornado_start_time, sizeof s->tornado_start_time, ts);
        fmt_time(s->tornado_end_time, sizeof s->tornado_end_time, te);
    }
    s->has_tornado_times = !chance(&r, 0.15);
    s->has_missing_gates = chance(&r, 0.20);
    s->has_range_folding = chance(&r, 0.35);

    s->event_id = event_id_of(seed, index);
    s->episode_id = s->event_id / 6 + uint_below(&r, 1000);
    snprintf(s->scit_id, sizeof s->scit_id, "%c%d", 'A' + uint_below(&r, 26), uint_below(&r, 10));
    snprintf(s->storm_event_url, sizeof s->storm_event_url,
             "https://www.ncdc.noaa.gov/stormevents/eventdetails.jsp?id=%lld", (long long)s->event_id);

    /* The chip: 60 degrees by 60 km, super-resolution radials. */
    double az0 = 0.5 * uint_below(&r, 720);
    for (int i = 0; i < NA; i++)
        s->azimuth[i] = (float)fmod(az0 + 0.25 + 0.5 * i, 360.0);
    s->azimuth_limits[0] = (float)az0;
    s->azimuth_limits[1] = (float)fmod(az0 + 60.0, 360.0);
    double r0 = 250.0 * (20 + uint_below(&r, 540));
    for (int j = 0; j < NR; j++)
        s->range[j] = (float)(r0 + 125.0 + 250.0 * j);
    s->range_limits[0] = (float)r0;
    s->range_limits[1] = (float)(r0 + 60000.0);
    if (chance(&r, 0.5)) {
        s->elevation[0] = 0.483398;
        s->elevation[1] = 0.878906;
    } else {
        s->elevation[0] = 0.527344;
        s->elevation[1] = 0.922852;
    }
    static const float nyq[] = { 26.6f, 28.4f, 30.8f, 33.2f };
    float v0 = nyq[uint_below(&r, 4)];
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < NS; k++)
            s->nyquist_velocity[t * NS + k] = v0;

    time_t tt = (time_t)s->frame_time[0];
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(s->filename, sizeof s->filename, "%s/%04d/%s_%02d%02d%02d_%02d%02d%02d_%s_%llds_%s.nc",
             s->is_train ? "train" : "test", s->year, s->category, tm.tm_year % 100, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, s->site_name,
             (long long)s->event_id, s->scit_id);
}

/* ---- fields ---- */

#define MAX_CELLS 8
#define MAX_VORT 3

typedef struct cell {
    double cx, cy;          /* centre at the last frame, km (x along the chip axis) */
    double a, b, ca, sa;    /* semi-axes (km) and orientation */
    double zmax, growth;    /* dBZ at the last frame, dBZ per frame */
    double zdrop1;          /* loss at the upper sweep */
} cell;

typedef struct vortex {
    double x, y;            /* storm-relative position at the last frame, km */
    double vmax, rc;        /* as observed (beam-smoothed), m/s and km */
    double strength[NT];    /* per-frame multiplier */
    double sign;            /* +1 cyclonic */
} vortex;

typedef struct debris {
    int on;
    double rd, rho, zdr, dbz;
} debris;

/* A vortex of core radius rc (km) and peak wind vm (m/s) as the radar sees
 * it: the beam and the gate spread the core (smear2, km^2, added to rc^2)
 * and the peak drops in proportion, keeping the circulation. */
static void vortex_observe(vortex *v, double x, double y, double rc, double vm, double smear2)
{
    double rce = sqrt(rc * rc + smear2);
    v->x = x;
    v->y = y;
    v->rc = rce;
    v->vmax = vm * rc / rce;
}

static float quant(float v, float step) { return roundf(v / step) * step; }

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void ing_synth_fields(tnrec_synth_sample *s, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, s->index, 1);
    int tor = s->category[0] == 'T', wrn = s->category[0] == 'W';
    int ef = (int)s->ef_number;

    const double r0 = s->range_limits[0] / 1000.0;
    const double xc = r0 + 30.0;
    /* Storm motion (km per 5-minute frame) and the environmental wind (m/s)
     * in the chip frame: x along the chip's centre radial. */
    double mdir = urange(&r, 0, 2 * 3.14159265358979);
    double mspd = urange(&r, 7.0, 20.0);
    double mx = mspd * cos(mdir) * 0.3, my = mspd * sin(mdir) * 0.3;
    double ue = mspd * cos(mdir) + urange(&r, -6, 6), ve = mspd * sin(mdir) + urange(&r, -6, 6);

    cell cells[MAX_CELLS];
    int nc = 0;
    int has_storm = tor || wrn || chance(&r, 0.75);
    if (has_storm) {
        int extra = uint_below(&r, 3);
        for (int k = 0; k <= extra && nc < MAX_CELLS; k++) {
            cell *c = &cells[nc++];
            if (k == 0) {
                c->cx = xc + urange(&r, -8, 8);
                c->cy = urange(&r, -0.12, 0.12) * xc;
                c->zmax = (tor || wrn) ? urange(&r, 50, 64) : urange(&r, 35, 62);
                c->a = urange(&r, 8, 16);
                c->b = urange(&r, 5, 10);
            } else {
                c->cx = urange(&r, r0 - 5, r0 + 65);
                c->cy = urange(&r, -0.45, 0.45) * xc;
                c->zmax = urange(&r, 25, 58);
                c->a = urange(&r, 2, 10);
                c->b = urange(&r, 2, 6);
            }
            double ang = urange(&r, 0, 3.14159265);
            c->ca = cos(ang);
            c->sa = sin(ang);
            c->growth = urange(&r, -1.5, 1.5);
            c->zdrop1 = urange(&r, 1, 5);
        }
    }
    double bmean = urange(&r, -6, 6), bamp = urange(&r, 9, 13);
    double tiltx = urange(&r, -1.5, 1.5), tilty = urange(&r, -1.5, 1.5);

    vortex vort[MAX_VORT];
    int nv = 0;
    debris deb = { 0, 0, 0, 0, 0 };
    int k0 = NT;
    for (int t = 0; t < NT; t++)
        if (s->frame_labels[t] && t < k0)
            k0 = t;
    if (nc > 0) {
        const cell *m = &cells[0];
        double phi = urange(&r, 0, 2 * 3.14159265);
        double d = urange(&r, 0.4, 0.85) * m->b;
        double px = m->cx + d * cos(phi), py = m->cy + d * sin(phi);
        double vr = hypot(px, py);
        double beam = vr * 1.0 * DEG; /* beam width, km */
        int meso = tor || (wrn && chance(&r, 0.75)) || (!wrn && chance(&r, 0.10));
        if (meso) {
            vortex *v = &vort[nv++];
            double x = px + urange(&r, -1, 1);
            double y = py + urange(&r, -1, 1);
            double rc = tor ? urange(&r, 1.5, 3.5) : wrn ? urange(&r, 2, 5) : urange(&r, 3, 6);
            double vm = tor ? urange(&r, 14, 26) : wrn ? urange(&r, 10, 22) : urange(&r, 7, 14);
            vortex_observe(v, x, y, rc, vm, 0.2 * beam * beam);
            v->sign = chance(&r, 0.95) ? 1 : -1;
            for (int t = 0; t < NT; t++)
                v->strength[t] = urange(&r, 0.8, 1.1);
        }
        if (tor) {
            static const double vlo[] = { 22, 30, 38, 48, 58, 65 }, vhi[] = { 32, 42, 52, 62, 72, 85 };
            vortex *v = &vort[nv++];
            double rc = urange(&r, 0.25, 0.8);
            double vm = urange(&r, vlo[ef], vhi[ef]);
            if (chance(&r, 0.12))
                vm *= 0.5; /* weak or poorly sampled tornadoes exist */
            vortex_observe(v, px, py, rc, vm, 0.2 * beam * beam + 0.015);
            double rce = v->rc;
            v->sign = nv > 1 ? vort[0].sign : 1;
            for (int t = 0; t < NT; t++)
                v->strength[t] = t >= k0 ? urange(&r, 0.85, 1.15) : urange(&r, 0.2, 0.5);
            double pdeb = ef == 0 ? 0.25 : ef == 1 ? 0.5 : 0.8;
            if (chance(&r, pdeb)) {
                deb.on = 1;
                deb.rd = fmax(0.5, rce) * urange(&r, 0.9, 1.5);
                deb.rho = urange(&r, 0.55, 0.82);
                deb.zdr = urange(&r, -0.5, 0.8);
                deb.dbz = urange(&r, 45, 56);
            }
        } else if (wrn && chance(&r, 0.15)) {
            vortex *v = &vort[nv++]; /* tight but weak: a hard negative */
            double rc = urange(&r, 0.8, 1.5);
            vortex_observe(v, px, py, rc, urange(&r, 12, 20), 0.2 * beam * beam);
            v->sign = 1;
            for (int t = 0; t < NT; t++)
                v->strength[t] = urange(&r, 0.7, 1.0);
        }
        /* Hook echo wrapping around the rotation. */
        if (nv > 0 && nc < MAX_CELLS && (tor || chance(&r, 0.5))) {
            cell *c = &cells[nc++];
            c->cx = px;
            c->cy = py;
            c->a = urange(&r, 2, 3.5);
            c->b = urange(&r, 0.8, 1.4);
            double ang = phi + 3.14159265 / 2;
            c->ca = cos(ang);
            c->sa = sin(ang);
            c->zmax = urange(&r, 40, 52);
            c->growth = 0;
            c->zdrop1 = 1;
        }
    }

    /* Oddities: missing radials (MissingDataFlag) and a range-folded sector. */
    int miss_t = -1, miss_i0 = 0, miss_n = 0;
    if (s->has_missing_gates) {
        miss_t = uint_below(&r, NT);
        miss_n = 1 + uint_below(&r, 4);
        miss_i0 = uint_below(&r, NA - miss_n);
    }
    int rf_t = NT, rf_i0 = 0, rf_i1 = 0, rf_j = NR;
    if (s->has_range_folding) {
        rf_t = uint_below(&r, NT - 1);
        rf_i0 = uint_below(&r, NA - 50);
        rf_i1 = rf_i0 + 10 + uint_below(&r, 40);
        rf_j = 100 + uint_below(&r, 120);
    }
    const float missing = (float)s->missing_data_flag;
    const float nan = NAN;
    size_t n_folded = 0;
    const float nyqv = s->nyquist_velocity[0];
    const float vlim = floorf(2.0f * nyqv) / 2.0f;

    uint64_t kbg = rng_next(&r), ktex = rng_next(&r), kvel = rng_next(&r);
    uint64_t kwid = rng_next(&r), kzdr = rng_next(&r);
    /* Echo coverage of the chip: the detection threshold moves (a stand-in
     * for sensitivity and clear-air return varying between scans) so that
     * about this fraction of the gates has echo. It keeps the file size in
     * the real files' range. */
    double coverage = urange(&r, 0.30, 0.46);

    float cosd[NA], sind[NA], thr[NR];
    for (int i = 0; i < NA; i++) {
        double dth = (i - (NA - 1) / 2.0) * 0.5 * DEG;
        cosd[i] = (float)cos(dth);
        sind[i] = (float)sin(dth);
    }
    for (int j = 0; j < NR; j++)
        thr[j] = (float)(-35.0 + 20.0 * log10(s->range[j] / 1000.0));

    /* Pass 1: reflectivity (unquantised, kept in the DBZ array) and a
     * histogram of its height above the noise floor. */
    enum { HBINS = 640 };
    const float hlo = -60.0f, hstep = 0.25f;
    uint32_t hist[HBINS];
    memset(hist, 0, sizeof hist);
    float *zbuf = s->moment[TNREC_SYNTH_DBZ];
    for (int t = 0; t < NT; t++) {
        float back = (float)(NT - 1 - t); /* frames before the last */
        float sx = -(float)mx * back, sy = -(float)my * back; /* storm displacement since then */
        const vortex *tv = nv > 0 ? &vort[nv - 1] : NULL;
        int deb_on = deb.on && s->frame_labels[t] && tv;
        for (int i = 0; i < NA; i++) {
            for (int j = 0; j < NR; j++) {
                float rk = s->range[j] / 1000.0f;
                /* storm-relative position: the fields move with the storm */
                float px = rk * cosd[i] - sx, py = rk * sind[i] - sy;
                float bg = (float)bmean + (float)bamp * fbm2(kbg, px / 9.0f, py / 9.0f + 0.15f * t);
                float tex = 3.0f * vnoise(ktex, px / 1.6f, py / 1.6f + 0.3f * t);
                for (int k = 0; k < NS; k++) {
                    size_t idx = (((size_t)t * NA + i) * NR + j) * NS + k;
                    float zc = -99.0f;
                    for (int c = 0; c < nc; c++) {
                        const cell *cl = &cells[c];
                        float dx = px - (float)(cl->cx + k * tiltx), dy = py - (float)(cl->cy + k * tilty);
                        float u = (dx * (float)cl->ca + dy * (float)cl->sa) / (float)cl->a;
                        float v = (-dx * (float)cl->sa + dy * (float)cl->ca) / (float)cl->b;
                        float q = u * u + v * v;
                        if (q > 30.0f)
                            continue;
                        float z = (float)(cl->zmax - cl->growth * back - k * cl->zdrop1) * expf(-0.5f * q);
                        if (z > zc)
                            zc = z;
                    }
                    float bgk = bg - 2.0f * k;
                    float z = (zc > bgk ? zc : bgk) + tex + 1.2f * gauss(&r);
                    if (deb_on) {
                        float dx = px - (float)tv->x, dy = py - (float)tv->y;
                        float wgt = expf(-0.5f * (dx * dx + dy * dy) / (float)(deb.rd * deb.rd)) * (k ? 0.6f : 1.0f);
                        if ((float)deb.dbz > z)
                            z += ((float)deb.dbz - z) * wgt;
                    }
                    z = clampf(z, -40.0f, 75.0f);
                    zbuf[idx] = z;
                    int b = (int)((z - thr[j] - hlo) / hstep);
                    hist[b < 0 ? 0 : b >= HBINS ? HBINS - 1 : b]++;
                }
            }
        }
    }
    float offset = 0.0f;
    {
        uint64_t want = (uint64_t)(coverage * TNREC_SYNTH_NGATES), acc = 0;
        int b = HBINS - 1;
        while (b > 0 && acc + hist[b] < want)
            acc += hist[b--];
        offset = clampf(hlo + hstep * b, -15.0f, 25.0f);
    }

    /* Pass 2: the other moments on the gates with echo. */
    static const float width_cap = 20.0f;
    for (int t = 0; t < NT; t++) {
        float back = (float)(NT - 1 - t);
        float sx = -(float)mx * back, sy = -(float)my * back;
        const vortex *tv = nv > 0 ? &vort[nv - 1] : NULL;
        int deb_on = deb.on && s->frame_labels[t] && tv;
        for (int i = 0; i < NA; i++) {
            int in_miss = t == miss_t && i >= miss_i0 && i < miss_i0 + miss_n;
            float kdp_err[NS] = {0}; /* KDP estimate error, correlated along the ray */
            for (int j = 0; j < NR; j++) {
                size_t idx0 = (((size_t)t * NA + i) * NR + j) * NS;
                float thj = thr[j] + offset;
                if (in_miss || (zbuf[idx0] < thj && zbuf[idx0 + 1] < thj)) {
                    float fillv = in_miss ? missing : nan;
                    for (int k = 0; k < NS; k++)
                        for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++)
                            s->moment[m][idx0 + k] = fillv;
                    s->range_folded_mask[idx0] = s->range_folded_mask[idx0 + 1] = 0;
                    continue;
                }
                float rk = s->range[j] / 1000.0f;
                float px = rk * cosd[i] - sx, py = rk * sind[i] - sy;
                float vsm = 2.5f * vnoise(kvel, px / 5.0f, py / 5.0f);
                float wsm = fabsf(vnoise(kwid, px / 4.0f, py / 4.0f));
                float zsm = 0.4f * vnoise(kzdr, px / 3.0f, py / 3.0f);
                float venv = (float)ue * cosd[i] + (float)ve * sind[i];
                float dwk = 0.0f;
                if (deb_on) {
                    float dx = px - (float)tv->x, dy = py - (float)tv->y;
                    dwk = expf(-0.5f * (dx * dx + dy * dy) / (float)(deb.rd * deb.rd));
                }
                int rf = t >= rf_t && i >= rf_i0 && i < rf_i1 && j >= rf_j;
                for (int k = 0; k < NS; k++) {
                    size_t idx = idx0 + k;
                    float z = zbuf[idx];
                    if (z < thj) {
                        for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++)
                            s->moment[m][idx] = nan;
                        s->range_folded_mask[idx] = 0;
                        continue;
                    }
                    /* the vortices: radial velocity and the spectrum width they add */
                    float vv = 0.0f, wv = 0.0f;
                    for (int n = 0; n < nv; n++) {
                        const vortex *vx = &vort[n];
                        float dx = px - (float)vx->x, dy = py - (float)vx->y;
                        float rr = sqrtf(dx * dx + dy * dy) + 1e-4f;
                        float rc = (float)vx->rc;
                        float vm = (float)(vx->vmax * vx->strength[t]) * (k ? 0.85f : 1.0f);
                        float vt = rr < rc ? vm * rr / rc : vm * rc / rr;
                        vv += (float)vx->sign * vt * (-dy * cosd[i] + dx * sind[i]) / rr;
                        wv += 0.25f * vm * expf(-0.5f * rr * rr / (rc * rc));
                    }
                    float dw = dwk * (k ? 0.6f : 1.0f);
                    float snr = z - thj;
                    float e = expf(-snr / 6.0f);
                    /* VEL: environment + smooth perturbation + vortices + noise, folded */
                    float vel = venv + vsm + vv + (0.8f + 3.0f * e) * gauss(&r);
                    vel -= 2.0f * nyqv * floorf((vel + nyqv) / (2.0f * nyqv));
                    vel = clampf(quant(vel, 0.5f), -vlim, vlim); /* stays on the 0.5 grid */
                    float wid = 1.2f + wsm + 2.5f * e + wv + 2.0f * dw + 0.4f * gauss(&r);
                    wid = quant(clampf(wid, 0.0f, width_cap), 0.5f);
                    float zdr = 0.2f + 0.07f * clampf(z - 15.0f, 0.0f, 45.0f) + zsm;
                    if (z > 55.0f)
                        zdr -= 0.25f * (z - 55.0f);
                    zdr += (0.2f + 1.0f * e) * gauss(&r);
                    zdr = zdr * (1.0f - dw) + (float)deb.zdr * dw;
                    zdr = quant(clampf(zdr, -7.875f, 7.9375f), 1.0f / 16.0f);
                    float rho = 0.99f - 0.08f * e - (z > 55.0f ? 0.004f * (z - 55.0f) : 0.0f) +
                                (0.006f + 0.03f * e) * gauss(&r);
                    rho = rho * (1.0f - dw) + ((float)deb.rho + 0.05f * gauss(&r)) * dw;
                    rho = quant(clampf(rho, 0.2f, 1.05f), 1.0f / 300.0f);
                    /* KDP is not a level-II moment: it is derived from the slope of a
                     * range-filtered PHIDP, so it is continuous (no quantisation) and
                     * its error is correlated over the few gates of the filter;
                     * weak or non-meteorological echo gets no estimate. */
                    kdp_err[k] = 0.8f * kdp_err[k] + 0.6f * gauss(&r);
                    float kdp = (z > 35.0f ? 0.05f * powf(z - 35.0f, 1.3f) : 0.0f) +
                                (0.25f + 0.8f * e) * kdp_err[k];
                    kdp = clampf(kdp, -2.0f, 10.0f);
                    if (snr < 10.0f || rho < 0.85f)
                        kdp = nan; /* PHIDP too noisy for a slope: no estimate */

                    s->moment[TNREC_SYNTH_DBZ][idx] = quant(z, 0.5f);
                    s->moment[TNREC_SYNTH_VEL][idx] = vel;
                    s->moment[TNREC_SYNTH_WIDTH][idx] = wid;
                    s->moment[TNREC_SYNTH_ZDR][idx] = zdr;
                    s->moment[TNREC_SYNTH_RHOHV][idx] = rho;
                    s->moment[TNREC_SYNTH_KDP][idx] = kdp;
                    /* range folding hides the Doppler moments, as in level-II data */
                    s->range_folded_mask[idx] = (uint8_t)rf;
                    if (rf) {
                        n_folded++;
                        float gone = s->has_missing_gates ? missing : nan;
                        s->moment[TNREC_SYNTH_VEL][idx] = gone;
                        s->moment[TNREC_SYNTH_WIDTH][idx] = gone;
                    }
                }
            }
        }
    }
    s->has_range_folding = n_folded > 0;
}
