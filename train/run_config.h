/* train/run_config.h: a training run's settings: the learning-rate
 * schedule, the class weights, the monitored metric, and the config JSON
 * that every checkpoint carries and a resumed run reads back. Private to
 * train/. */
#ifndef TNREC_TRAIN_RUN_CONFIG_H
#define TNREC_TRAIN_RUN_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "tnrec/train.h"

/* The input's no-data value of a new run whose model does not keep the
 * dataset's (docs/train.md, "Defaults from a family of signatures"): the
 * normalised fields' centre. */
#define TRN_DEFAULT_NODATA 0.0f

typedef enum trn_schedule_kind { TRN_SCHEDULE_CONSTANT, TRN_SCHEDULE_EXP, TRN_SCHEDULE_PLATEAU } trn_schedule_kind;

/* "constant", "exp:RATE:STEPS" or "plateau:FACTOR:PATIENCE[:MIN_LR]". */
typedef struct trn_schedule {
    trn_schedule_kind kind;
    double rate, steps;             /* exp */
    double factor, min_lr;          /* plateau */
    int patience;
} trn_schedule;

tnrec_err trn_schedule_parse(trn_schedule *s, const char *text);
/* The learning rate of step global_step under an exp schedule from lr. */
double trn_schedule_exp_lr(const trn_schedule *s, double lr, uint64_t global_step);

/* "balanced" (NULL; from the manifest's class counts), "none" or
 * "W0,W1" into w. */
tnrec_err trn_class_weights(float w[2], const char *spec, const tnrec_dataset *ds, const char *path);

/* A metric's value by name ("val_roc_auc", "loss", ...); *ok 0 and NAN
 * when the name is unknown. */
double trn_metric_value(const char *name, double loss, const tnrec_metrics *train, double val_loss,
                        const tnrec_metrics *val, int *ok);
int trn_metric_lower_is_better(const char *name);

/* The value no-data gates take in the input of a new run: from text (the
 * train config's `nodata`: NULL for the model's default, "dataset" for the
 * dataset's own, or a number in normalised units, as
 * tnrec_train_nodata_parse takes it). *out is buf holding the value, or
 * NULL for the dataset's own. */
tnrec_err trn_nodata_resolve(const char *text, const char *model, float *buf, const float **out);
/* The same as recorded in a checkpoint's config ("nodata": a number, or
 * null or absent for the dataset's own): buf or NULL. */
const float *trn_config_nodata(const json_t *j, float *buf);

/* The checkpoint's config; data_schema (reference taken) describes the
 * training data's input fields; nodata: the input's no-data value (NULL:
 * the dataset's). NULL when out of memory. */
json_t *trn_config_json(const tnrec_train_config *c, const tnrec_model *m, const float cw[2], const char *variables,
                        const float *nodata, json_t *data_schema);
/* Restores the run settings of a checkpoint's config into c (strings
 * borrowed from j, which must outlive c's use). */
tnrec_err trn_config_from_json(tnrec_train_config *c, json_t *j, float cw[2], const char *path);

#endif
