/* ingest/holdout.c: `tnrec build --holdout FRACTION`: whole storms kept
 * out of a build, for an honest validation set.
 *
 * Samples are grouped so that one storm never sits on both sides: two
 * samples are in one group when they share the day of their file name
 * (TorNet names files CAT_YYMMDD_HHMMSS_SITE_EVENTs_CELL.nc) or a positive
 * event id; groups are the connected components of that relation, so an
 * event that crosses midnight joins its two days. The groups are ordered
 * by a hash of (seed, the group's first day) and taken in that order while
 * taking one brings the held-out sample count nearer to FRACTION of the
 * selection. Only names and the seed decide: the held-out set is the same
 * for every thread count, for every part K/N and for a resumed build, and
 * the build that takes the rest and the one that takes the held-out
 * groups split the same selection.
 * Deliberately not here: tarball sources (their member names are known
 * only while streaming; the build refuses --holdout with them). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ingest_internal.h"
#include "splitmix64.h"

typedef struct ho_sample {
    int32_t day;   /* YYMMDD of the file name */
    int64_t event; /* event id of the file name; 0: none */
    size_t parent; /* union-find */
} ho_sample;

typedef struct ho_group {
    size_t root, size;
    int32_t first_day;
    uint64_t order;
} ho_group;

/* Reads the day and the event id from a key's file name; -1 if it does
 * not follow TorNet's naming. */
static int ho_parse_name(const char *key, int32_t *day, int64_t *event)
{
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    const char *f = strchr(base, '_'); /* after the category */
    if (!f)
        return -1;
    f++;
    int32_t d = 0;
    for (int i = 0; i < 6; i++) {
        if (f[i] < '0' || f[i] > '9')
            return -1;
        d = d * 10 + (f[i] - '0');
    }
    if (f[6] != '_')
        return -1;
    /* fields: date, time, site, event id + suffix */
    const char *e = f;
    for (int k = 0; k < 3; k++) {
        e = strchr(e, '_');
        if (!e)
            return -1;
        e++;
    }
    int64_t ev = 0;
    int digits = 0;
    while (*e >= '0' && *e <= '9' && digits < 18) {
        ev = ev * 10 + (*e - '0');
        e++;
        digits++;
    }
    *day = d;
    *event = digits ? ev : 0;
    return 0;
}

static size_t ho_find(ho_sample *s, size_t i)
{
    while (s[i].parent != i) {
        s[i].parent = s[s[i].parent].parent;
        i = s[i].parent;
    }
    return i;
}

static void ho_union(ho_sample *s, size_t a, size_t b)
{
    a = ho_find(s, a);
    b = ho_find(s, b);
    if (a != b)
        s[a < b ? b : a].parent = a < b ? a : b; /* the smaller index is the root */
}

/* qsort has no context argument: the samples being sorted. */
static const ho_sample *ho_sort_base;

static int ho_cmp_day(const void *pa, const void *pb)
{
    const ho_sample *a = &ho_sort_base[*(const size_t *)pa], *b = &ho_sort_base[*(const size_t *)pb];
    return (a->day > b->day) - (a->day < b->day);
}

static int ho_cmp_event(const void *pa, const void *pb)
{
    const ho_sample *a = &ho_sort_base[*(const size_t *)pa], *b = &ho_sort_base[*(const size_t *)pb];
    return (a->event > b->event) - (a->event < b->event);
}

static int ho_cmp_group(const void *pa, const void *pb)
{
    const ho_group *a = pa, *b = pb;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    return (a->first_day > b->first_day) - (a->first_day < b->first_day);
}

/* Joins samples that share a value, visiting them sorted by it. */
static void ho_join_equal(ho_sample *s, size_t *idx, size_t n, int by_event)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    ho_sort_base = s;
    qsort(idx, n, sizeof *idx, by_event ? ho_cmp_event : ho_cmp_day);
    for (size_t i = 1; i < n; i++) {
        const ho_sample *a = &s[idx[i - 1]], *b = &s[idx[i]];
        if (by_event ? (a->event > 0 && a->event == b->event) : a->day == b->day)
            ho_union(s, idx[i - 1], idx[i]);
    }
}

/* Marks held[root] for the groups taken, nearest to fraction * n. */
static tnrec_err ho_choose(ho_sample *s, size_t n, double fraction, uint64_t seed, unsigned char *held)
{
    ho_group *g = calloc(n, sizeof *g);
    size_t *slot = malloc(n * sizeof *slot);
    if (!g || !slot) {
        free(g);
        free(slot);
        return tnrec__fail(TNREC_ENOMEM, "out of memory choosing the held-out groups");
    }
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        size_t r = ho_find(s, i);
        if (r == i) {
            slot[i] = ng;
            g[ng].root = i;
            g[ng].first_day = s[i].day;
            ng++;
        }
        ho_group *gr = &g[slot[r]];
        gr->size++;
        if (s[i].day < gr->first_day)
            gr->first_day = s[i].day;
    }
    for (size_t k = 0; k < ng; k++)
        g[k].order = tnrec__splitmix64(tnrec__splitmix64(seed) ^ (uint64_t)g[k].first_day);
    qsort(g, ng, sizeof *g, ho_cmp_group);
    double target = fraction * (double)n, taken = 0;
    for (size_t k = 0; k < ng; k++) {
        if (fabs(taken + (double)g[k].size - target) < fabs(taken - target)) {
            taken += (double)g[k].size;
            held[g[k].root] = 1;
        }
    }
    free(g);
    free(slot);
    return TNREC_OK;
}

tnrec_err ing_holdout_select(ing_input_list *list, double fraction, uint64_t seed, int take_held)
{
    size_t n = list->n;
    if (!(fraction > 0 && fraction < 1))
        return tnrec__fail(TNREC_EINVAL, "holdout fraction %g is not between 0 and 1\nhint: e.g. --holdout 0.2", fraction);
    if (!n)
        return TNREC_OK;
    ho_sample *s = malloc(n * sizeof *s);
    size_t *idx = malloc(n * sizeof *idx);
    unsigned char *held = calloc(n, 1);
    tnrec_err err = TNREC_OK;
    if (!s || !idx || !held) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory grouping %zu inputs for --holdout", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        s[i].parent = i;
        if (ho_parse_name(list->v[i].key, &s[i].day, &s[i].event)) {
            err = tnrec__fail(TNREC_EINVAL, "--holdout groups samples by the day and event id of TorNet file names "
                              "(CAT_YYMMDD_HHMMSS_SITE_EVENTs_CELL.nc), and '%s' does not follow it\n"
                              "hint: rename the file the TorNet way, or build without --holdout",
                              list->v[i].key);
            goto done;
        }
    }
    ho_join_equal(s, idx, n, 0);
    ho_join_equal(s, idx, n, 1);
    if ((err = ho_choose(s, n, fraction, seed, held)) != TNREC_OK)
        goto done;
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        ing_input *in = &list->v[i];
        if (held[ho_find(s, i)] == (take_held != 0)) {
            list->v[keep++] = *in;
        } else {
            free(in->key);
            free(in->path);
        }
    }
    list->n = keep;
    if (!keep)
        err = tnrec__fail(TNREC_EINVAL, "--holdout %g %s of the %zu selected samples: the %s side is empty\n"
                          "hint: %s the fraction, or select more samples", fraction,
                          take_held ? "holds out none" : "holds out all", n, take_held ? "held-out" : "training",
                          take_held ? "raise" : "lower");
done:
    free(s);
    free(idx);
    free(held);
    return err;
}
