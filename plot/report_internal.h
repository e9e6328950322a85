/* plot/report_internal.h: what the report's files share. */
#ifndef TNREC_PLOT_REPORT_INTERNAL_H
#define TNREC_PLOT_REPORT_INTERNAL_H

#include <stdio.h>

#include "tnrec/report.h"
#include "tnrec/train.h"

/* The per-epoch series of metrics.jsonl (NaN where a line has no value). */
enum { H_LOSS, H_VAL_LOSS, H_ROC, H_VAL_ROC, H_PR, H_VAL_PR, H_CSI, H_VAL_CSI, H_LR, H_NSERIES };
typedef struct report_history {
    size_t n;
    double *epoch;
    double *v[H_NSERIES];
    int best_epoch;               /* 0: none recorded */
} report_history;

/* Reads run_dir/metrics.jsonl; an absent, empty or unreadable file is an error naming it. */
tnrec_err report_history_load(report_history *h, const char *run_dir);
void report_history_free(report_history *h);

/* What the evaluation part of the report draws from. */
typedef struct report_eval {
    const char *path;             /* the dataset */
    tnrec_dataset *ds;
    tnrec_metrics m;              /* as `tnrec eval --json` */
    tnrec_scores scores;
    int32_t *ef;                  /* per score: EF number, -1 none */
    uint64_t *index;              /* per score: the record's index in ds */
    tnrec_curves curves;
} report_eval;

/* Evaluates the run on the dataset and matches each score to its record. */
tnrec_err report_eval_load(report_eval *e, const tnrec_report_options *opt);
void report_eval_free(report_eval *e);

/* The sections of the page; each returns an error or TNREC_OK. */
tnrec_err report_training(FILE *f, const report_history *h);
tnrec_err report_evaluation(FILE *f, const report_eval *e);
tnrec_err report_gallery(FILE *f, const report_eval *e, int per_row);
void report_dataset(FILE *f, const char *title, const tnrec_dataset *ds);

#endif
