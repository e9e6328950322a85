/* train/eval_scores.c: an evaluation that keeps the per-sample scores
 * (for `tnrec eval --curves` and `tnrec report`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "tnrec/report.h"

/* A fresh empty file's name under $TMPDIR (or /tmp) in buf. */
static tnrec_err temp_csv(char *buf, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int n = snprintf(buf, cap, "%s/tnrec-scores-XXXXXX", dir);
    if (n < 0 || (size_t)n >= cap)
        return tnrec__fail(TNREC_EINVAL, "TMPDIR '%s' is too long a path", dir);
    int fd = mkstemp(buf);
    if (fd < 0)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot create a temporary file in '%s'", dir);
    close(fd);
    return TNREC_OK;
}

tnrec_err tnrec_eval_scores(tnrec_metrics *m, tnrec_scores *scores, const char *checkpoint, const char *dataset,
                            int batch, int threads, const char *device, const char *precision, tnrec_step_cb on_step,
                            void *step_ctx)
{
    memset(scores, 0, sizeof *scores);
    char tmp[4200];
    tnrec_err err = temp_csv(tmp, sizeof tmp);
    if (err)
        return err;
    err = tnrec_eval_run_progress(m, checkpoint, dataset, tmp, batch, threads, device, precision, on_step, step_ctx);
    if (!err)
        err = tnrec_scores_read_csv(scores, tmp);
    unlink(tmp);
    return err;
}

tnrec_err tnrec_eval_curves(tnrec_metrics *m, const char *checkpoint, const char *dataset, int batch, int threads,
                            const char *device, const char *precision, const char *curves_path, tnrec_step_cb on_step,
                            void *step_ctx)
{
    tnrec_scores s;
    tnrec_err err = tnrec_eval_scores(m, &s, checkpoint, dataset, batch, threads, device, precision, on_step, step_ctx);
    if (err)
        return err;
    tnrec_curves c;
    err = tnrec_curves_compute(&c, s.prob, s.label, s.n);
    if (!err)
        err = tnrec_curves_write(&c, curves_path);
    tnrec_curves_free(&c);
    tnrec_scores_free(&s);
    return err;
}
