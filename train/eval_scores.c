/* train/eval_scores.c: an evaluation that keeps the per-sample scores
 * (`tnrec report`) or writes their curves (`tnrec eval --curves`): the
 * short forms of tnrec_eval_run_opts that tnrec/report.h declares. */
#include "tnrec/report.h"

tnrec_err tnrec_eval_scores(tnrec_metrics *m, tnrec_scores *scores, const char *checkpoint, const char *dataset,
                            int batch, int threads, const char *device, const char *precision, tnrec_step_cb on_step,
                            void *step_ctx)
{
    const tnrec_eval_options opt = { .scores = scores, .batch = batch, .threads = threads, .device = device,
                                     .precision = precision, .on_step = on_step, .step_ctx = step_ctx };
    return tnrec_eval_run_opts(m, checkpoint, dataset, &opt);
}

tnrec_err tnrec_eval_curves(tnrec_metrics *m, const char *checkpoint, const char *dataset, int batch, int threads,
                            const char *device, const char *precision, const char *curves_path, tnrec_step_cb on_step,
                            void *step_ctx)
{
    const tnrec_eval_options opt = { .curves_path = curves_path, .batch = batch, .threads = threads,
                                     .device = device, .precision = precision, .on_step = on_step,
                                     .step_ctx = step_ctx };
    return tnrec_eval_run_opts(m, checkpoint, dataset, &opt);
}
