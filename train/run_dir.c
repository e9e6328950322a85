/* train/run_dir.c: a training run's directory (run_dir.h). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "json_util.h"
#include "path_util.h"
#include "run_dir.h"

json_t *trn_metrics_to_json(const tnrec_metrics *m);

/* mkdir -p, the error naming the run directory. */
static tnrec_err ensure_dir(const char *dir)
{
    tnrec_err err = tnrec__mkdir_p(dir, 0777);
    if (!err)
        return TNREC_OK;
    char why[1024];
    snprintf(why, sizeof why, "%s", tnrec_error_last());
    return tnrec__fail(err, "run directory '%s': %s\nhint: give -o a new or existing run directory", dir, why);
}

/* metrics.jsonl keeps lines of epochs < keep_below (used on resume). */
static tnrec_err trim_metrics(const char *path, uint64_t keep_below)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return TNREC_OK;
    tnrec_err err = tnrec__read_file(path, &data, &len);
    if (err)
        return err;
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out) {
        free(data);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    char *save = NULL;
    for (char *line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        json_int_t ep = j ? tnrec__json_int(j, "epoch") : 0;
        json_decref(j);
        if (j && ep >= 1 && (uint64_t)ep <= keep_below) {
            size_t l = strlen(line);
            memcpy(out + o, line, l);
            o += l;
            out[o++] = '\n';
        }
    }
    err = tnrec__write_file_atomic(path, out, o);
    free(out);
    free(data);
    return err;
}

static tnrec_err append_line(const char *path, const char *line)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot append to '%s'", path);
    int bad = fputs(line, f) < 0 || fputc('\n', f) == EOF;
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    return bad ? tnrec__fail_errno(TNREC_EIO, errno, "cannot write '%s'", path) : TNREC_OK;
}

tnrec_err trn_run_dir_init(trn_run_dir *d, const char *dir)
{
    memset(d, 0, sizeof *d);
    d->dir = dir;
    d->last = tnrec__path_join(dir, "last.tnck");
    d->best = tnrec__path_join(dir, "best.tnck");
    d->metrics = tnrec__path_join(dir, "metrics.jsonl");
    if (!d->last || !d->best || !d->metrics) {
        trn_run_dir_free(d);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    return TNREC_OK;
}

void trn_run_dir_free(trn_run_dir *d)
{
    free(d->last);
    free(d->best);
    free(d->metrics);
    memset(d, 0, sizeof *d);
}

tnrec_err trn_run_dir_create(trn_run_dir *d)
{
    tnrec_err err = ensure_dir(d->dir);
    if (err)
        return err;
    struct stat sb;
    if (stat(d->last, &sb) == 0)
        return tnrec__fail(TNREC_EINVAL, "run directory '%s' already holds a run (last.tnck)\nhint: add --resume %s to continue it, or choose another -o",
                           d->dir, d->dir);
    remove(d->metrics);
    return TNREC_OK;
}

char *trn_run_dir_epoch_path(const trn_run_dir *d, int epoch)
{
    char name[64];
    snprintf(name, sizeof name, "epoch-%04d.tnck", epoch);
    return tnrec__path_join(d->dir, name);
}

tnrec_err trn_run_dir_trim_metrics(const trn_run_dir *d, uint64_t keep_upto) { return trim_metrics(d->metrics, keep_upto); }

tnrec_err trn_run_dir_append_epoch(const trn_run_dir *d, const tnrec_epoch_report *rep, int has_val, int staged,
                                   int64_t best_epoch)
{
    json_t *line = json_object();
    json_object_set_new(line, "epoch", json_integer(rep->epoch));
    json_object_set_new(line, "loss", isfinite(rep->loss) ? json_real(rep->loss) : json_null());
    json_object_set_new(line, "lr", json_real(rep->lr));
    json_object_set_new(line, "seconds", json_real(rep->seconds));
    json_object_set_new(line, "samples_per_s", json_real(rep->samples_per_s));
    json_object_set_new(line, "data_wait_s", json_real(rep->data_wait_s));
    if (staged)
        json_object_set_new(line, "gpu_staged_steps", json_integer((json_int_t)rep->gpu_staged_steps));
    const char *keys[] = { "roc_auc", "pr_auc", "accuracy", "precision", "recall", "far", "f1", "csi", "csi_best", NULL };
    double vals[2][9] = {
        { rep->train.all.roc_auc, rep->train.all.pr_auc, rep->train.all.accuracy, rep->train.all.precision, rep->train.all.recall,
          rep->train.all.far, rep->train.all.f1, rep->train.all.csi, rep->train.all.csi_best },
        { rep->val.all.roc_auc, rep->val.all.pr_auc, rep->val.all.accuracy, rep->val.all.precision, rep->val.all.recall,
          rep->val.all.far, rep->val.all.f1, rep->val.all.csi, rep->val.all.csi_best } };
    for (int i = 0; keys[i]; i++)
        json_object_set_new(line, keys[i], isfinite(vals[0][i]) ? json_real(vals[0][i]) : json_null());
    if (has_val) {
        json_object_set_new(line, "val_loss", isfinite(rep->val.loss) ? json_real(rep->val.loss) : json_null());
        for (int i = 0; keys[i]; i++) {
            char k[32];
            snprintf(k, sizeof k, "val_%s", keys[i]);
            json_object_set_new(line, k, isfinite(vals[1][i]) ? json_real(vals[1][i]) : json_null());
        }
        json_object_set_new(line, "val", trn_metrics_to_json(&rep->val));
    }
    json_object_set_new(line, "monitor", json_string(rep->monitor));
    json_object_set_new(line, "improved", json_boolean(rep->improved));
    json_object_set_new(line, "best_epoch", json_integer(best_epoch + 1));
    json_object_set_new(line, "stopped", json_boolean(rep->stopped));
    char *text = json_dumps(line, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    json_decref(line);
    if (!text)
        return tnrec__fail(TNREC_ENOMEM, "out of memory writing metrics");
    tnrec_err err = append_line(d->metrics, text);
    free(text);
    return err;
}
