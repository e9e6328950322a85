/* ingest/cf_time.c: CF-convention time decoding for TorNet's `time` variable.
 *
 * "<unit> since <reference>" with unit seconds, minutes, hours, days,
 * milliseconds, microseconds or nanoseconds (and their CF abbreviations),
 * reference "Y-M-D[( |T)h:m[:s[.f]]][Z| UTC|+hh[:mm]]", calendars standard,
 * gregorian, proleptic_gregorian (identical after 1582) or absent. Integer
 * values use exact integer arithmetic (int64 nanoseconds since 1970 would
 * not survive a double); floating values are rounded to the nearest second.
 * Deliberately not here: 360_day/noleap calendars (no TorNet file uses
 * them: they are refused with an error). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "common.h"
#include "ingest_internal.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int ing_year_of(int64_t t)
{
    int64_t z = (t >= 0 ? t : t - 86399) / 86400 + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return (int)((int64_t)yoe + era * 400 + (m <= 2));
}

static const char *read_int(const char *p, int maxdig, long *out)
{
    long v = 0;
    int n = 0;
    while (n < maxdig && isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0)
        return NULL;
    *out = v;
    return p;
}

/* Parses a CF reference time; *out_sec whole seconds, *out_frac fraction. */
static int parse_reference(const char *p, int64_t *out_sec, double *out_frac)
{
    long y, mo, d, h = 0, mi = 0, s = 0;
    double frac = 0;
    int neg = 0;
    while (*p == ' ')
        p++;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (!(p = read_int(p, 5, &y)) || *p++ != '-' || !(p = read_int(p, 2, &mo)) || *p++ != '-' ||
        !(p = read_int(p, 2, &d)))
        return -1;
    if (neg)
        y = -y;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    if (*p == ' ' || *p == 'T') {
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        if (isdigit((unsigned char)*q)) {
            p = q;
            if (!(p = read_int(p, 2, &h)) || *p++ != ':' || !(p = read_int(p, 2, &mi)))
                return -1;
            if (*p == ':') {
                p++;
                if (!(p = read_int(p, 2, &s)))
                    return -1;
                if (*p == '.') {
                    char *end;
                    frac = strtod(p, &end);
                    p = end;
                }
            }
        }
    }
    if (h > 24 || mi > 59 || s > 60)
        return -1;
    long tz = 0; /* seconds east of UTC */
    while (*p == ' ')
        p++;
    if (*p == 'Z') {
        p++;
    } else if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0) {
        p += 3;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        long th, tm = 0;
        p++;
        const char *q = read_int(p, 2, &th);
        if (!q)
            return -1;
        p = q;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p)) {
            if (!(p = read_int(p, 2, &tm)))
                return -1;
        }
        tz = sign * (th * 3600 + tm * 60);
    }
    while (*p == ' ')
        p++;
    if (*p)
        return -1;
    *out_sec = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s - tz;
    *out_frac = frac;
    return 0;
}

int ing_parse_datetime(const char *s, int64_t *out)
{
    double frac;
    if (!s || parse_reference(s, out, &frac) != 0)
        return -1;
    return 0;
}

/* Unit -> (numerator, denominator) in seconds. */
static int parse_unit(const char *u, size_t len, int64_t *num, int64_t *den)
{
    static const struct { const char *name; int64_t num, den; } units[] = {
        { "seconds", 1, 1 }, { "second", 1, 1 }, { "secs", 1, 1 }, { "sec", 1, 1 }, { "s", 1, 1 },
        { "minutes", 60, 1 }, { "minute", 60, 1 }, { "mins", 60, 1 }, { "min", 60, 1 },
        { "hours", 3600, 1 }, { "hour", 3600, 1 }, { "hrs", 3600, 1 }, { "hr", 3600, 1 }, { "h", 3600, 1 },
        { "days", 86400, 1 }, { "day", 86400, 1 }, { "d", 86400, 1 },
        { "milliseconds", 1, 1000 }, { "millisecond", 1, 1000 }, { "msecs", 1, 1000 },
        { "msec", 1, 1000 }, { "ms", 1, 1000 },
        { "microseconds", 1, 1000000 }, { "microsecond", 1, 1000000 }, { "usecs", 1, 1000000 },
        { "usec", 1, 1000000 }, { "us", 1, 1000000 },
        { "nanoseconds", 1, 1000000000 }, { "nanosecond", 1, 1000000000 }, { "ns", 1, 1000000000 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].name) == len && strncasecmp(u, units[i].name, len) == 0) {
            *num = units[i].num;
            *den = units[i].den;
            return 0;
        }
    }
    return -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

tnrec_err ing_cf_time_decode(int64_t *out, size_t n, const double *dvals, const int64_t *ivals,
                            const char *units, const char *calendar, const char *name)
{
    if (!units || !*units)
        return tnrec__fail(TNREC_ESCHEMA, "'%s': variable 'time' has no 'units' attribute\n"
                           "hint: TorNet files carry CF units such as \"seconds since 1970-01-01\"", name);
    if (calendar && *calendar && strcasecmp(calendar, "standard") != 0 &&
        strcasecmp(calendar, "gregorian") != 0 && strcasecmp(calendar, "proleptic_gregorian") != 0)
        return tnrec__fail(TNREC_ESCHEMA, "'%s': time calendar '%s' is not supported (only standard/gregorian)",
                           name, calendar);
    const char *p = units;
    while (*p == ' ')
        p++;
    const char *u = p;
    while (*p && *p != ' ')
        p++;
    size_t ulen = (size_t)(p - u);
    while (*p == ' ')
        p++;
    int64_t num, den, ref;
    double frac;
    if (parse_unit(u, ulen, &num, &den) != 0 || strncasecmp(p, "since", 5) != 0 ||
        (p[5] != ' ' && p[5] != '\0') || parse_reference(p + 5, &ref, &frac) != 0)
        return tnrec__fail(TNREC_ESCHEMA, "'%s': cannot decode time units \"%s\"\n"
                           "hint: expected \"<seconds|minutes|hours|days|...> since YYYY-MM-DD[ hh:mm:ss]\"",
                           name, units);
    for (size_t i = 0; i < n; i++) {
        if (ivals && frac == 0.0) {
            int64_t v = ivals[i];
            /* v * num / den without overflow for plausible values */
            if (num != 1 && (v > INT64_MAX / num || v < INT64_MIN / num))
                return tnrec__fail(TNREC_ESCHEMA, "'%s': time value %lld out of range", name, (long long)v);
            int64_t t = v * num;
            if (den != 1)
                t = floor_div(t + den / 2, den);
            out[i] = ref + t;
        } else {
            double v = ivals ? (double)ivals[i] : dvals[i];
            double t = v * (double)num / (double)den + frac;
            if (!isfinite(t) || fabs(t) > 9.0e15)
                return tnrec__fail(TNREC_ESCHEMA, "'%s': time value %g is not a valid time", name, v);
            out[i] = ref + (int64_t)llround(t);
        }
    }
    return TNREC_OK;
}
