/* train/run_config.h: a training run's settings: the learning-rate
 * schedule, the class weights, the monitored metric, and the config JSON
 * that every checkpoint carries and a resumed run reads back. Private to
 * train/. */
#ifndef TNREC_TRAIN_RUN_CONFIG_H
#define TNREC_TRAIN_RUN_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "tnrec/train.h"

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

/* The checkpoint's config; data_schema (reference taken) describes the
 * training data's input fields. NULL when out of memory. */
json_t *trn_config_json(const tnrec_train_config *c, const tnrec_model *m, const float cw[2], const char *variables,
                        json_t *data_schema);
/* Restores the run settings of a checkpoint's config into c (strings
 * borrowed from j, which must outlive c's use). */
tnrec_err trn_config_from_json(tnrec_train_config *c, json_t *j, float cw[2], const char *path);

#endif
