/* train/metrics.c: classification metrics of a detector's probabilities.
 *
 * ROC-AUC and PR-AUC are exact: samples sorted by score, one point per
 * distinct score, ties grouped, as scikit-learn's roc_auc_score
 * (trapezoids) and average_precision_score (sum of recall steps times
 * precision). Threshold metrics at 0.5 count p > 0.5 as positive (Keras'
 * BinaryAccuracy / Precision / Recall). The CSI-best threshold is the
 * score t maximising CSI when p >= t is positive. Undefined ratios
 * (0/0) are 0, as scikit-learn's zero_division=0; AUCs need both classes
 * and are NaN otherwise. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json_util.h"
#include "tnrec/train.h"

typedef struct scored { float p; int32_t y; } scored;

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const scored *)a)->p, y = ((const scored *)b)->p;
    return x > y ? -1 : x < y ? 1 : 0;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* Metrics of n sorted-by-caller items (s is sorted here, in place). */
static void binary_metrics(tnrec_binary_metrics *out, scored *s, size_t n)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    double psum = 0;
    for (size_t i = 0; i < n; i++) {
        out->positives += s[i].y ? 1 : 0;
        psum += s[i].p;
        int pred = s[i].p > 0.5f;
        if (pred && s[i].y) out->tp++;
        else if (pred) out->fp++;
        else if (s[i].y) out->fn++;
        else out->tn++;
    }
    out->mean_probability = n ? psum / (double)n : NAN;
    double P = (double)out->positives, N = (double)(n - out->positives);
    out->accuracy = ratio((double)(out->tp + out->tn), (double)n);
    out->precision = ratio((double)out->tp, (double)(out->tp + out->fp));
    out->recall = ratio((double)out->tp, (double)(out->tp + out->fn));
    out->far = ratio((double)out->fp, (double)(out->tp + out->fp));
    out->f1 = ratio(2.0 * (double)out->tp, (double)(2 * out->tp + out->fp + out->fn));
    out->csi = ratio((double)out->tp, (double)(out->tp + out->fp + out->fn));

    qsort(s, n, sizeof *s, by_score_desc);
    double tp = 0, fp = 0, tp_prev = 0, fp_prev = 0, area = 0, ap = 0;
    out->csi_best = 0;
    out->csi_best_threshold = n ? (double)s[0].p : 0.5;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].p == s[i].p) {
            if (s[j].y) tp++;
            else fp++;
            j++;
        }
        area += (fp - fp_prev) * (tp + tp_prev) / 2.0;
        if (P > 0)
            ap += (tp - tp_prev) / P * (tp / (tp + fp));
        double csi = ratio(tp, tp + fp + (P - tp));
        if (csi > out->csi_best) {
            out->csi_best = csi;
            out->csi_best_threshold = s[i].p;
        }
        tp_prev = tp;
        fp_prev = fp;
        i = j;
    }
    out->roc_auc = (P > 0 && N > 0) ? area / (P * N) : NAN;
    out->pr_auc = P > 0 ? ap : NAN;
}

tnrec_err tnrec_metrics_compute(tnrec_metrics *out, const float *prob, const int32_t *label,
                                const int32_t *category, size_t n)
{
    memset(out, 0, sizeof *out);
    out->loss = NAN;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(prob[i]))
            return tnrec__fail(TNREC_ERANGE, "probability of sample %zu is not finite", i);
    scored *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for metrics of %zu samples", n);
    for (size_t i = 0; i < n; i++) {
        s[i].p = prob[i];
        s[i].y = label[i] ? 1 : 0;
    }
    binary_metrics(&out->all, s, n);
    for (int c = 0; c < 3; c++) {
        size_t k = 0;
        if (category)
            for (size_t i = 0; i < n; i++)
                if (category[i] == c) {
                    s[k].p = prob[i];
                    s[k].y = label[i] ? 1 : 0;
                    k++;
                }
        binary_metrics(&out->category[c], s, k);
    }
    free(s);
    return TNREC_OK;
}

static const char *const category_names[3] = { "TOR", "NUL", "WRN" };

static json_t *binary_json(const tnrec_binary_metrics *b)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "n", json_integer((json_int_t)b->n));
    json_object_set_new(o, "positives", json_integer((json_int_t)b->positives));
    json_object_set_new(o, "roc_auc", tnrec__json_finite(b->roc_auc));
    json_object_set_new(o, "pr_auc", tnrec__json_finite(b->pr_auc));
    json_object_set_new(o, "accuracy", tnrec__json_finite(b->accuracy));
    json_object_set_new(o, "precision", tnrec__json_finite(b->precision));
    json_object_set_new(o, "recall", tnrec__json_finite(b->recall));
    json_object_set_new(o, "far", tnrec__json_finite(b->far));
    json_object_set_new(o, "f1", tnrec__json_finite(b->f1));
    json_object_set_new(o, "csi", tnrec__json_finite(b->csi));
    json_object_set_new(o, "csi_best", tnrec__json_finite(b->csi_best));
    json_object_set_new(o, "csi_best_threshold", tnrec__json_finite(b->csi_best_threshold));
    json_object_set_new(o, "tp", json_integer((json_int_t)b->tp));
    json_object_set_new(o, "fp", json_integer((json_int_t)b->fp));
    json_object_set_new(o, "fn", json_integer((json_int_t)b->fn));
    json_object_set_new(o, "tn", json_integer((json_int_t)b->tn));
    json_object_set_new(o, "mean_probability", tnrec__json_finite(b->mean_probability));
    return o;
}

json_t *trn_metrics_to_json(const tnrec_metrics *m);
json_t *trn_metrics_to_json(const tnrec_metrics *m)
{
    json_t *o = binary_json(&m->all);
    json_t *cats = json_object();
    if (!o || !cats) {
        json_decref(o);
        json_decref(cats);
        return NULL;
    }
    json_object_set_new(o, "loss", tnrec__json_finite(m->loss));
    for (int c = 0; c < 3; c++)
        json_object_set_new(cats, category_names[c], binary_json(&m->category[c]));
    json_object_set_new(o, "categories", cats);
    return o;
}

tnrec_err tnrec_metrics_json(const tnrec_metrics *m, char **out)
{
    *out = NULL;
    json_t *o = trn_metrics_to_json(m);
    char *s = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL; /* reads back as the same doubles */
    json_decref(o);
    if (!s)
        return tnrec__fail(TNREC_ENOMEM, "out of memory writing metrics as JSON");
    *out = s;
    return TNREC_OK;
}
