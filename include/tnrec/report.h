/* tnrec/report.h: per-sample scores, the curves drawn from them, and the
 * HTML report of a training run (`tnrec eval --curves`, `tnrec report`).
 *
 * The curves are computed the same way as tnrec_metrics_compute: samples
 * sorted by probability, one point per distinct probability (ties grouped),
 * p >= threshold counted as a detection. The area under the ROC points by
 * trapezoids is the metrics' roc_auc; the sum over the PR points of
 * (recall step x precision) is their pr_auc (average precision). */
#ifndef TNREC_REPORT_H
#define TNREC_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"
#include "tnrec/records.h"
#include "tnrec/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNREC_RELIABILITY_BINS 10

/* One point of the ROC and PR curves: every sample with p >= threshold is
 * a detection. The first point has threshold +inf (no detections). */
typedef struct tnrec_curve_point {
    double threshold;
    uint64_t tp, fp;
    double tpr, fpr;             /* tpr is also the recall */
    double precision;            /* 1 at the first point (nothing detected) */
} tnrec_curve_point;

/* One bin of the reliability diagram: probabilities in [lo, hi) (the last
 * bin includes 1). mean_predicted and observed are NaN in an empty bin. */
typedef struct tnrec_reliability_bin {
    double lo, hi;
    uint64_t count, positives;
    double mean_predicted, observed;
} tnrec_reliability_bin;

typedef struct tnrec_curves {
    uint64_t n, positives;
    size_t npoints;
    tnrec_curve_point *points;   /* malloc'd; decreasing threshold */
    tnrec_reliability_bin bins[TNREC_RELIABILITY_BINS];
} tnrec_curves;

/* Curves of n probabilities (finite) with labels (nonzero = tornado).
 * Free with tnrec_curves_free. */
tnrec_err tnrec_curves_compute(tnrec_curves *out, const float *prob, const int32_t *label, size_t n);
void tnrec_curves_free(tnrec_curves *c);              /* accepts a zeroed struct */
/* The curves as JSON text: {"n", "positives", "roc": {"threshold": [...],
 * "fpr": [...], "tpr": [...]}, "pr": {"threshold", "recall", "precision"},
 * "reliability": [{"lo", "hi", "count", "positives", "mean_predicted",
 * "observed"}...]}; +inf thresholds are written as null. *out is malloc'd. */
tnrec_err tnrec_curves_json(const tnrec_curves *c, char **out);
/* Writes that JSON to path atomically. */
tnrec_err tnrec_curves_write(const tnrec_curves *c, const char *path);

/* Reads a predict CSV into scores (tnrec_scores, tnrec/train.h; its
 * probabilities have the CSV's 6 decimals); errors name the file and the
 * line. */
tnrec_err tnrec_scores_read_csv(tnrec_scores *out, const char *path);

/* Evaluates a checkpoint on a dataset as tnrec_eval_run_progress does
 * (metrics into m, which `tnrec eval --json` prints; on_step, may be
 * NULL, after each batch) and keeps the per-sample scores too, in memory
 * at full precision (tnrec_eval_run_opts with opt.scores). */
tnrec_err tnrec_eval_scores(tnrec_metrics *m, tnrec_scores *scores, const char *checkpoint, const char *dataset,
                            int batch, int threads, const char *device, const char *precision, tnrec_step_cb on_step,
                            void *step_ctx);
/* The same, then the curves of the scores written to curves_path (JSON,
 * atomically; tnrec_eval_run_opts with opt.curves_path). */
tnrec_err tnrec_eval_curves(tnrec_metrics *m, const char *checkpoint, const char *dataset, int batch, int threads,
                            const char *device, const char *precision, const char *curves_path, tnrec_step_cb on_step,
                            void *step_ctx);

/* ---- the HTML report ---- */
typedef struct tnrec_report_options {
    const char *run_dir;         /* metrics.jsonl, best.tnck / last.tnck */
    const char *eval_path;       /* dataset to evaluate on; NULL: training curves only */
    const char *output;          /* the .html file, written atomically */
    int batch, threads;          /* for the evaluation (0: defaults) */
    int gallery;                 /* samples per gallery row (0: 4) */
    tnrec_step_cb on_step;       /* the evaluation's progress, after each batch (may be NULL) */
    void *step_ctx;
} tnrec_report_options;
void tnrec_report_options_init(tnrec_report_options *opt);
/* Writes one self-contained HTML file (inline SVG charts, base64 PNG
 * samples). Errors name the file at fault; no output file on failure.
 * Without cairo: TNREC_EUNSUPPORTED. */
tnrec_err tnrec_report_write(const tnrec_report_options *opt);

#ifdef __cplusplus
}
#endif
#endif
