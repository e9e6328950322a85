/* train/run_config.c: a training run's settings (run_config.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json_util.h"
#include "nn.h"
#include "optim.h"
#include "run_config.h"
#include "tnrec/tnrec.h"

void tnrec_train_config_default(tnrec_train_config *out)
{
    memset(out, 0, sizeof *out);
    out->model = "tiny";
    out->epochs = 0; /* the model's defaults (trn_model_defaults_of) */
    out->batch = 0;
    out->seed = 1;
    out->lr = 1e-3;
    tnrec_optim_config_default(&out->optim, TNREC_OPT_ADAM);
    out->schedule = "constant";
    out->frames = 4;
    out->device = "cpu";
    out->gpu = -1;
}

tnrec_err trn_schedule_parse(trn_schedule *s, const char *text)
{
    memset(s, 0, sizeof *s);
    if (!text || !*text || strcmp(text, "constant") == 0)
        return TNREC_OK;
    if (sscanf(text, "exp:%lf:%lf", &s->rate, &s->steps) == 2 && s->rate > 0 && s->steps > 0) {
        s->kind = TRN_SCHEDULE_EXP;
        return TNREC_OK;
    }
    int n = sscanf(text, "plateau:%lf:%d:%lf", &s->factor, &s->patience, &s->min_lr);
    if (n >= 2 && s->factor > 0 && s->factor < 1 && s->patience > 0) {
        s->kind = TRN_SCHEDULE_PLATEAU;
        return TNREC_OK;
    }
    return tnrec__fail(TNREC_EINVAL, "bad learning-rate schedule '%s'\nhint: constant, exp:RATE:STEPS (e.g. exp:0.9:1000) or plateau:FACTOR:PATIENCE[:MIN_LR] (e.g. plateau:0.5:2:1e-6)", text);
}

double trn_schedule_exp_lr(const trn_schedule *s, double lr, uint64_t global_step)
{
    return lr * pow(s->rate, (double)global_step / s->steps);
}

tnrec_err trn_class_weights(float w[2], const char *spec, const tnrec_dataset *ds, const char *path)
{
    if (!spec || strcmp(spec, "balanced") == 0) {
        w[0] = (float)tnrec_dataset_class_weight(ds, 0);
        w[1] = (float)tnrec_dataset_class_weight(ds, 1);
        if (w[0] <= 0 || w[1] <= 0)
            return tnrec__fail(TNREC_EINVAL, "dataset '%s' lacks one of the classes, so balanced class weights are undefined\n"
                               "hint: use --class-weights none or W0,W1", path);
        return TNREC_OK;
    }
    if (strcmp(spec, "none") == 0) {
        w[0] = w[1] = 1.0f;
        return TNREC_OK;
    }
    double a, b;
    char extra;
    if (sscanf(spec, "%lf,%lf%c", &a, &b, &extra) == 2 && a > 0 && b > 0 && isfinite(a) && isfinite(b)) {
        w[0] = (float)a;
        w[1] = (float)b;
        return TNREC_OK;
    }
    return tnrec__fail(TNREC_EINVAL, "bad class weights '%s'\nhint: balanced, none, or two positive numbers W0,W1", spec);
}

double trn_metric_value(const char *name, double loss, const tnrec_metrics *tm, double val_loss,
                        const tnrec_metrics *vm, int *ok)
{
    *ok = 1;
    const tnrec_metrics *m = tm;
    double l = loss;
    if (strncmp(name, "val_", 4) == 0) {
        m = vm;
        l = val_loss;
        name += 4;
    }
    if (strcmp(name, "loss") == 0) return l;
    if (strcmp(name, "roc_auc") == 0) return m->all.roc_auc;
    if (strcmp(name, "pr_auc") == 0) return m->all.pr_auc;
    if (strcmp(name, "accuracy") == 0) return m->all.accuracy;
    if (strcmp(name, "precision") == 0) return m->all.precision;
    if (strcmp(name, "recall") == 0) return m->all.recall;
    if (strcmp(name, "f1") == 0) return m->all.f1;
    if (strcmp(name, "csi") == 0) return m->all.csi;
    if (strcmp(name, "csi_best") == 0) return m->all.csi_best;
    *ok = 0;
    return NAN;
}

int trn_metric_lower_is_better(const char *name)
{
    size_t n = strlen(name);
    return n >= 4 && strcmp(name + n - 4, "loss") == 0;
}

tnrec_err tnrec_train_nodata_parse(const char *text, float *buf, const float **out)
{
    *out = NULL;
    if (text && strcmp(text, "dataset") == 0)
        return TNREC_OK;
    char *end = NULL;
    double v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || *end || !isfinite(v) || fabs(v) > 1000)
        return tnrec__fail(TNREC_EINVAL, "--nodata takes " TNREC_TRAIN_NODATA_RULE ", got '%s'", text ? text : "");
    *buf = (float)v;
    *out = buf;
    return TNREC_OK;
}

tnrec_err trn_nodata_resolve(const char *text, const char *model, float *buf, const float **out)
{
    *out = NULL;
    if (!text) {
        if (trn_model_defaults_of(model)->keeps_dataset_nodata)
            return TNREC_OK;
        *buf = TRN_DEFAULT_NODATA;
        *out = buf;
        return TNREC_OK;
    }
    return tnrec_train_nodata_parse(text, buf, out);
}

const float *trn_config_nodata(const json_t *j, float *buf)
{
    const json_t *v = json_object_get(j, "nodata");
    if (!json_is_number(v))
        return NULL;
    *buf = (float)json_number_value(v);
    return buf;
}

/* The members every checkpoint's config starts with: the format, the
 * version, the model and its input. NULL when out of memory. */
static json_t *config_base(const tnrec_model *m, const char *variables, int mask)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    const tnrec_input_shape *in = tnrec_model_input(m);
    int bad = json_object_set_new(j, "format", json_string("tnrec-checkpoint"));
    bad |= json_object_set_new(j, "tnrec_version", json_string(tnrec_version()));
    bad |= json_object_set_new(j, "model", json_string(tnrec_model_spec(m)));
    bad |= json_object_set_new(j, "frames", json_integer(in->frames));
    bad |= json_object_set_new(j, "height", json_integer(in->height));
    bad |= json_object_set_new(j, "width", json_integer(in->width));
    bad |= json_object_set_new(j, "channels", json_integer(in->channels));
    bad |= json_object_set_new(j, "variables", json_string(variables));
    bad |= json_object_set_new(j, "mask", json_boolean(mask));
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

tnrec_err tnrec_checkpoint_config_text(char **out, const tnrec_model *m, const char *variables, int mask,
                                       const char *extra)
{
    *out = NULL;
    if (!m || !variables)
        return tnrec__fail(TNREC_EINVAL, "tnrec_checkpoint_config_text: NULL argument");
    json_t *more = NULL;
    if (extra) {
        json_error_t jerr;
        more = json_loads(extra, 0, &jerr);
        if (!json_is_object(more)) {
            json_decref(more);
            return tnrec__fail(TNREC_EINVAL, "checkpoint config: the extra members are not a JSON object");
        }
    }
    json_t *j = config_base(m, variables, mask);
    if (j && (!more || json_object_update(j, more) == 0))
        *out = json_dumps(j, JSON_COMPACT);
    json_decref(more);
    json_decref(j);
    return *out ? TNREC_OK : tnrec__fail(TNREC_ENOMEM, "out of memory writing a checkpoint config");
}

json_t *trn_config_json(const tnrec_train_config *c, const tnrec_model *m, const float cw[2], const char *variables,
                        const float *nodata, json_t *data_schema)
{
    json_t *j = config_base(m, variables, c->mask);
    if (!j) {
        json_decref(data_schema);
        return NULL;
    }
    json_object_set_new(j, "nodata", nodata ? json_real(*nodata) : json_null());
    json_object_set_new(j, "train", json_string(c->train_path ? c->train_path : ""));
    json_object_set_new(j, "val", c->val_path ? json_string(c->val_path) : json_null());
    json_object_set_new(j, "epochs", json_integer(c->epochs));
    json_object_set_new(j, "batch", json_integer(c->batch));
    json_object_set_new(j, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(j, "init", json_string(c->init ? c->init : "glorot"));
    json_object_set_new(j, "lr", json_real(c->lr));
    json_object_set_new(j, "optimizer", json_string(c->optim.kind == TNREC_OPT_ADAMW ? "adamw" : "adam"));
    json_object_set_new(j, "beta1", json_real(c->optim.beta1));
    json_object_set_new(j, "beta2", json_real(c->optim.beta2));
    json_object_set_new(j, "epsilon", json_real(c->optim.epsilon));
    json_object_set_new(j, "weight_decay", json_real(c->optim.weight_decay));
    json_object_set_new(j, "clipvalue", json_real(c->optim.clipvalue));
    json_object_set_new(j, "clipnorm", json_real(c->optim.clipnorm));
    json_object_set_new(j, "schedule", json_string(c->schedule ? c->schedule : "constant"));
    json_object_set_new(j, "patience", json_integer(c->patience));
    json_object_set_new(j, "monitor", json_string(c->monitor ? c->monitor : "val_loss"));
    json_object_set_new(j, "class_weight_0", json_real(cw[0]));
    json_object_set_new(j, "class_weight_1", json_real(cw[1]));
    if (json_object_set_new(j, "data_schema", data_schema)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

tnrec_err trn_config_from_json(tnrec_train_config *c, json_t *j, float cw[2], const char *path)
{
    const char *opt = tnrec__json_str(j, "optimizer");
    const char *model = tnrec__json_str(j, "model");
    const char *train = tnrec__json_str(j, "train");
    if (!opt || !model || !train)
        return tnrec__fail(TNREC_ECORRUPT, "checkpoint '%s': incomplete config", path);
    c->model = model;
    c->train_path = train;
    c->val_path = tnrec__json_str(j, "val");
    c->variables = tnrec__json_str(j, "variables");
    c->frames = (int)tnrec__json_int(j, "frames");
    c->mask = json_is_true(json_object_get(j, "mask"));
    if (c->epochs <= 0)
        c->epochs = (int)tnrec__json_int(j, "epochs");
    c->batch = (int)tnrec__json_int(j, "batch");
    c->seed = (uint64_t)tnrec__json_int(j, "seed");
    c->init = tnrec__json_str(j, "init"); /* absent before --init: glorot */
    c->lr = json_real_value(json_object_get(j, "lr"));
    tnrec_optim_config_default(&c->optim, strcmp(opt, "adamw") == 0 ? TNREC_OPT_ADAMW : TNREC_OPT_ADAM);
    c->optim.beta1 = json_real_value(json_object_get(j, "beta1"));
    c->optim.beta2 = json_real_value(json_object_get(j, "beta2"));
    c->optim.epsilon = json_real_value(json_object_get(j, "epsilon"));
    c->optim.weight_decay = json_real_value(json_object_get(j, "weight_decay"));
    c->optim.clipvalue = json_real_value(json_object_get(j, "clipvalue"));
    c->optim.clipnorm = json_real_value(json_object_get(j, "clipnorm"));
    c->schedule = tnrec__json_str(j, "schedule");
    c->patience = (int)tnrec__json_int(j, "patience");
    c->monitor = tnrec__json_str(j, "monitor");
    cw[0] = (float)json_real_value(json_object_get(j, "class_weight_0"));
    cw[1] = (float)json_real_value(json_object_get(j, "class_weight_1"));
    return TNREC_OK;
}
