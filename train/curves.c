/* train/curves.c: ROC, PR and reliability points of a detector's scores
 * (see tnrec/report.h); the same sort and tie grouping as metrics.c. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json_util.h"
#include "tnrec/report.h"

typedef struct scored { float p; int32_t y; } scored;

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const scored *)a)->p, y = ((const scored *)b)->p;
    return x > y ? -1 : x < y ? 1 : 0;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

static void set_point(tnrec_curve_point *pt, double thr, uint64_t tp, uint64_t fp, uint64_t P, uint64_t N)
{
    pt->threshold = thr;
    pt->tp = tp;
    pt->fp = fp;
    pt->tpr = ratio((double)tp, (double)P);
    pt->fpr = ratio((double)fp, (double)N);
    pt->precision = tp + fp ? (double)tp / (double)(tp + fp) : 1.0;
}

/* One point per distinct score of the sorted s, after the +inf point. */
static size_t roc_points(tnrec_curve_point *pts, const scored *s, size_t n, uint64_t P)
{
    uint64_t N = n - P, tp = 0, fp = 0;
    size_t k = 0;
    set_point(&pts[k++], INFINITY, 0, 0, P, N);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        for (; j < n && s[j].p == s[i].p; j++) {
            if (s[j].y) tp++;
            else fp++;
        }
        set_point(&pts[k++], s[i].p, tp, fp, P, N);
        i = j;
    }
    return k;
}

static void reliability(tnrec_reliability_bin *bins, const scored *s, size_t n)
{
    double sum[TNREC_RELIABILITY_BINS] = { 0 };
    for (int b = 0; b < TNREC_RELIABILITY_BINS; b++) {
        memset(&bins[b], 0, sizeof bins[b]);
        bins[b].lo = (double)b / TNREC_RELIABILITY_BINS;
        bins[b].hi = (double)(b + 1) / TNREC_RELIABILITY_BINS;
    }
    for (size_t i = 0; i < n; i++) {
        int b = (int)((double)s[i].p * TNREC_RELIABILITY_BINS); /* in double: 0.7f is below 0.7 */
        b = b < 0 ? 0 : b >= TNREC_RELIABILITY_BINS ? TNREC_RELIABILITY_BINS - 1 : b;
        bins[b].count++;
        bins[b].positives += s[i].y ? 1 : 0;
        sum[b] += s[i].p;
    }
    for (int b = 0; b < TNREC_RELIABILITY_BINS; b++) {
        double c = (double)bins[b].count;
        bins[b].mean_predicted = c > 0 ? sum[b] / c : NAN;
        bins[b].observed = c > 0 ? (double)bins[b].positives / c : NAN;
    }
}

tnrec_err tnrec_curves_compute(tnrec_curves *out, const float *prob, const int32_t *label, size_t n)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(prob[i]))
            return tnrec__fail(TNREC_ERANGE, "probability of sample %zu is not finite", i);
    scored *s = malloc((n ? n : 1) * sizeof *s);
    out->points = malloc((n + 1) * sizeof *out->points);
    if (!s || !out->points) {
        free(s);
        tnrec_curves_free(out);
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the curves of %zu samples", n);
    }
    for (size_t i = 0; i < n; i++) {
        s[i].p = prob[i];
        s[i].y = label[i] ? 1 : 0;
        out->positives += (uint64_t)s[i].y;
    }
    out->n = n;
    qsort(s, n, sizeof *s, by_score_desc);
    out->npoints = roc_points(out->points, s, n, out->positives);
    reliability(out->bins, s, n);
    free(s);
    return TNREC_OK;
}

void tnrec_curves_free(tnrec_curves *c)
{
    free(c->points);
    c->points = NULL;
    c->npoints = 0;
}

/* {"name1": [...], "name2": [...], ...} of the points' members. */
static json_t *curve_json(const tnrec_curves *c, const char *const names[3], const size_t offs[3])
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (int k = 0; k < 3; k++) {
        json_t *a = json_array();
        if (!a || json_object_set_new(o, names[k], a)) {
            json_decref(o);
            return NULL;
        }
        for (size_t i = 0; i < c->npoints; i++) {
            double v = *(const double *)((const char *)&c->points[i] + offs[k]);
            if (json_array_append_new(a, tnrec__json_finite(v))) {
                json_decref(o);
                return NULL;
            }
        }
    }
    return o;
}

static json_t *reliability_json(const tnrec_curves *c)
{
    json_t *a = json_array();
    for (int b = 0; a && b < TNREC_RELIABILITY_BINS; b++) {
        const tnrec_reliability_bin *r = &c->bins[b];
        json_t *o = json_pack("{s:f,s:f,s:I,s:I,s:o,s:o}", "lo", r->lo, "hi", r->hi, "count", (json_int_t)r->count,
                              "positives", (json_int_t)r->positives, "mean_predicted", tnrec__json_finite(r->mean_predicted),
                              "observed", tnrec__json_finite(r->observed));
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

tnrec_err tnrec_curves_json(const tnrec_curves *c, char **out)
{
    *out = NULL;
    static const char *const roc_names[3] = { "threshold", "fpr", "tpr" };
    static const char *const pr_names[3] = { "threshold", "recall", "precision" };
    const size_t roc_offs[3] = { offsetof(tnrec_curve_point, threshold), offsetof(tnrec_curve_point, fpr),
                                 offsetof(tnrec_curve_point, tpr) };
    const size_t pr_offs[3] = { offsetof(tnrec_curve_point, threshold), offsetof(tnrec_curve_point, tpr),
                                offsetof(tnrec_curve_point, precision) };
    json_t *o = json_pack("{s:I,s:I,s:o*,s:o*,s:o*}", "n", (json_int_t)c->n, "positives", (json_int_t)c->positives,
                          "roc", curve_json(c, roc_names, roc_offs), "pr", curve_json(c, pr_names, pr_offs),
                          "reliability", reliability_json(c));
    int complete = o && json_object_size(o) == 5;
    char *s = complete ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (!s)
        return tnrec__fail(TNREC_ENOMEM, "out of memory writing the curves as JSON");
    *out = s;
    return TNREC_OK;
}

tnrec_err tnrec_curves_write(const tnrec_curves *c, const char *path)
{
    char *s = NULL;
    tnrec_err err = tnrec_curves_json(c, &s);
    if (err)
        return err;
    size_t len = strlen(s);
    s[len] = '\n';
    err = tnrec__write_file_atomic(path, s, len + 1);
    free(s);
    return err;
}
