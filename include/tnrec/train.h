/* tnrec/train.h: the tornado detector: layers, models, optimiser, metrics,
 * loader, training runs, checkpoints, evaluation.
 *
 * Tensors are float arrays in NDHWC order (batch, frame, azimuth, range,
 * channel), C order. Conv3D kernels are laid out [kd][kh][kw][cin][cout]
 * and Dense weights [in][out], as Keras stores them.
 *
 * Two levels:
 *  - tnrec_conv3d_*: the fast float kernels the trainer runs;
 *  - models (tnrec_model), workspaces (tnrec_net), optimiser, loader and
 *    the training / evaluation runs built on them.
 * The reference layers in double precision (tnrec_ref_*, the ground truth
 * for gradient checks and for the fast path) and tnrec_model_ref_loss are
 * for tests: tnrec/testing.h declares them. */
#ifndef TNREC_TRAIN_H
#define TNREC_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"
#include "tnrec/records.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fast float kernels (the trainer's path; checked against the reference layers) ---- */
tnrec_err tnrec_conv3d_forward(float *y, const float *x, const float *k, const float *b, int n,
                               int d, int h, int w, int ci, int co);
/* dx may be NULL (first layer). dk and db are overwritten. */
tnrec_err tnrec_conv3d_backward(float *dx, float *dk, float *db, const float *x, const float *k,
                                const float *dy, int n, int d, int h, int w, int ci, int co);

/* ---- models ---- */
typedef struct tnrec_model tnrec_model;

/* Input of a model: frames x azimuth x range x channels. */
typedef struct tnrec_input_shape {
    int frames, height, width, channels;
} tnrec_input_shape;

/* Creates a model from a preset name ("seed3d", "tiny", "tornet-cnn") or a text spec
 * (see docs/train.md): comma-separated layers
 *   cN[/L2]  Conv3D N filters 3x3x3 'same' + BatchNorm + LeakyReLU(0.1)
 *   pDHW     MaxPool3D with pool size (D,H,W), e.g. p122
 *   sR       SpatialDropout3D with rate R, e.g. s0.1
 *   g        GlobalMaxPool3D
 *   dN[/L2]  Dense N + LeakyReLU(0.1)
 *   xR       Dropout with rate R
 *   o        Dense 1, the logit of the sigmoid output (last, once)
 *   aN[/L2]  CoordConv2D: 3x3 'same' convolution of each frame over its
 *            input and the range coordinates r, 1/r; ReLU
 *   hN[/L2]  1x1 convolution + ReLU
 *   pDHWs    MaxPool3D as pDHW with 'same' padding (ceil)
 *   eR       Dropout of single elements of a feature map, rate R
 *   m        1x1 convolution to 1 channel, its global maximum is the
 *            logit (instead of g,...,o; last, once)
 * /L2 sets that layer's kernel L2 factor (Keras: lambda * sum w^2).
 * Weights are initialised as Keras does (Glorot uniform kernels, zero
 * biases, BN gamma 1, beta 0, moving mean 0, variance 1) from seed. */
tnrec_err tnrec_model_create(tnrec_model **out, const char *spec, const tnrec_input_shape *in,
                             uint64_t seed);
void tnrec_model_free(tnrec_model *m);                 /* accepts NULL */
/* The input a preset was made for (tornet-cnn: 1 frame, 120 x 240, 14
 * channels): 1 and *out set; 0 for other names and specs. A preset with a
 * fixed frame count refuses others in tnrec_model_create. */
int tnrec_model_preset_input(tnrec_input_shape *out, const char *name);

/* Weight initialisers, per layer type as the frameworks do (fan_in of a
 * Conv3D = 27 x input channels, of a Dense = its inputs; BN always gamma
 * 1, beta 0, moving mean 0, variance 1):
 *   GLOROT  Keras glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)),
 *           zero biases (the default, what tnrec_model_create does);
 *   HE      Kaiming/He normal, fan_in mode: N(0, 2 / fan_in), zero biases;
 *   TORCH   PyTorch's default for Conv3d and Linear (kaiming_uniform with
 *           a = sqrt(5)): weights and biases U(-b, b), b = 1 / sqrt(fan_in). */
typedef enum tnrec_init { TNREC_INIT_GLOROT = 0, TNREC_INIT_HE = 1, TNREC_INIT_TORCH = 2 } tnrec_init;
/* "glorot", "he", "torch" (NULL: glorot); TNREC_EINVAL with a hint otherwise. */
tnrec_err tnrec_init_parse(tnrec_init *out, const char *name);
const char *tnrec_init_name(tnrec_init init);
/* Sets every parameter and the BN state of m afresh, deterministic in seed. */
tnrec_err tnrec_model_init_weights(tnrec_model *m, tnrec_init init, uint64_t seed);
/* The expanded spec (presets resolved). Borrowed, lives with m. */
const char *tnrec_model_spec(const tnrec_model *m);
const tnrec_input_shape *tnrec_model_input(const tnrec_model *m);
/* Parameters counted as Keras does (BN's moving mean and variance included). */
uint64_t tnrec_model_param_count(const tnrec_model *m);
/* Trainable parameters, one flat array (borrowed, lives with m) and its length. */
float *tnrec_model_params(tnrec_model *m);
size_t tnrec_model_trainable_count(const tnrec_model *m);
/* Gradient of the last training step, same layout as the parameters. */
float *tnrec_model_grads(tnrec_model *m);
/* Non-trainable state (BN moving means and variances), flat. */
float *tnrec_model_state(tnrec_model *m);
size_t tnrec_model_state_count(const tnrec_model *m);
/* The layer table as text (layer, output shape, parameters, total), like
 * Keras' model.summary(). *out is malloc'd; free() it. */
tnrec_err tnrec_model_summary(const tnrec_model *m, char **out);
/* One trainable tensor of the flat parameter array. */
typedef struct tnrec_param_tensor {
    size_t off, len;        /* its place in tnrec_model_params (and tnrec_model_grads) */
    int layer;              /* its layer: the row number in tnrec_model_summary */
    const char *layer_type; /* "Conv3D", "BatchNormalization", "Dense", "CoordConv2D" or "Conv2D" (static) */
    const char *role;       /* "kernel", "bias" (Conv3D, Dense); "gamma", "beta" (BatchNormalization) */
} tnrec_param_tensor;
/* The number of trainable tensors, and tensor i of them (0 <= i < count;
 * else TNREC_EINVAL), in the order of the flat array, which they cover
 * without gaps. */
size_t tnrec_model_tensor_count(const tnrec_model *m);
tnrec_err tnrec_model_tensor(tnrec_param_tensor *out, const tnrec_model *m, size_t i);

/* ---- workspaces: running a model on batches ---- */
typedef struct tnrec_net tnrec_net;
tnrec_err tnrec_net_create(tnrec_net **out, tnrec_model *m, int max_batch);
void tnrec_net_free(tnrec_net *net);                   /* accepts NULL */
/* One training step's forward and backward in float on the fast path:
 * batch statistics (BN moving statistics updated), dropout from
 * dropout_seed, loss as tnrec_model_ref_loss, gradient into
 * tnrec_model_grads (overwritten). logits (may be NULL) receives n values. */
tnrec_err tnrec_net_train_step(tnrec_net *net, const float *x, const float *label,
                               const float *weight, int n, uint64_t dropout_seed,
                               float *logits, double *out_loss);
/* Inference: moving statistics, no dropout. logits receives n values. */
tnrec_err tnrec_net_predict(tnrec_net *net, const float *x, int n, float *logits);
/* The same for chips with their own range windows: range_limits holds n x
 * [lower, upper] in metres (a record's range_limits field), from which
 * CoordConv layers take their range coordinates, as the TorNet baseline's
 * compute_coordinates does. tnrec_net_predict and tnrec_net_train_step
 * give every chip the fixed window [50 km, 50 km + 250 m x width]. A pair
 * that is not a window (not finite, lower < 0, upper <= lower) is
 * TNREC_EINVAL. Models without CoordConv layers ignore range_limits. */
tnrec_err tnrec_net_predict_at(tnrec_net *net, const float *x, const float *range_limits, int n, float *logits);
/* The precision of tnrec_net_predict*: "fp32" (the default) or "bf16":
 * the convolutions take bfloat16 products with float32 sums where the CPU
 * has avx512_bf16 (vdpbf16ps) and the environment does not set
 * TNREC_CPU_BF16=off, and compute in float32 elsewhere. *out_bf16 (may be
 * NULL): 1 when bfloat16 is in effect. "fp16" and other names are
 * TNREC_EINVAL. Training steps compute in float32 unless
 * tnrec_net_set_train_precision says otherwise. */
tnrec_err tnrec_net_set_precision(tnrec_net *net, const char *precision, int *out_bf16);
/* The same for tnrec_net_train_step too: with "bf16" in effect the
 * convolutions' forward pass, input gradient and kernel gradient multiply
 * in bfloat16 and sum in float32 (16k output channels; others, and every
 * other layer, stay float32), and the weights and their gradients are
 * float32. Allocates the scratch this needs (TNREC_ENOMEM). */
tnrec_err tnrec_net_set_train_precision(tnrec_net *net, const char *precision, int *out_bf16);

/* ---- optimiser ---- */
typedef enum tnrec_optimizer_kind { TNREC_OPT_ADAM = 0, TNREC_OPT_ADAMW = 1 } tnrec_optimizer_kind;
typedef struct tnrec_optim_config {
    tnrec_optimizer_kind kind;
    double beta1, beta2, epsilon;   /* Keras defaults 0.9, 0.999, 1e-7 */
    double weight_decay;            /* AdamW only (Keras default 0.004) */
    double clipvalue;               /* > 0: clip each gradient element to [-v, v] */
    double clipnorm;                /* > 0: rescale each tensor's gradient to norm <= v */
} tnrec_optim_config;
void tnrec_optim_config_default(tnrec_optim_config *out, tnrec_optimizer_kind kind);
typedef struct tnrec_optim tnrec_optim;
tnrec_err tnrec_optim_create(tnrec_optim **out, const tnrec_optim_config *cfg, const tnrec_model *m);
void tnrec_optim_free(tnrec_optim *opt);               /* accepts NULL */
/* Applies clipping, then one Adam(W) update with learning rate lr using
 * the model's current gradient. */
tnrec_err tnrec_optim_step(tnrec_optim *opt, tnrec_model *m, double lr);
uint64_t tnrec_optim_iterations(const tnrec_optim *opt);

/* ---- metrics ---- */
typedef struct tnrec_binary_metrics {
    uint64_t n, positives;
    double roc_auc, pr_auc;          /* exact (sklearn roc_auc_score, average_precision_score); NaN if one class */
    double accuracy, precision, recall, far, f1, csi;  /* at threshold 0.5 */
    uint64_t tp, fp, fn, tn;
    double csi_best, csi_best_threshold;  /* best CSI over all thresholds (predict positive if p >= t) */
    double mean_probability;
} tnrec_binary_metrics;
typedef struct tnrec_metrics {
    double loss;                      /* NaN unless set by the caller */
    tnrec_binary_metrics all;
    tnrec_binary_metrics category[3]; /* TOR, NUL, WRN */
} tnrec_metrics;
/* category may be NULL (per-category parts then have n = 0). */
tnrec_err tnrec_metrics_compute(tnrec_metrics *out, const float *prob, const int32_t *label,
                                const int32_t *category, size_t n);
/* JSON object text of the metrics (keys roc_auc, pr_auc, accuracy,
 * precision, recall, far, f1, csi, csi_best, csi_best_threshold, n,
 * positives, tp, fp, fn, tn, loss and "categories": {"TOR": {...}, ...}).
 * *out is malloc'd; free() it. */
tnrec_err tnrec_metrics_json(const tnrec_metrics *m, char **out);

/* ---- loader ---- */
typedef struct tnrec_loader_config {
    const char *variables;  /* comma-separated fields; NULL: "DBZ,VEL,KDP,RHOHV,ZDR,WIDTH" */
    int frames;             /* last N frames; 0: all */
    int mask;               /* 1: add range_folded_mask as one channel per sweep */
    int batch;              /* global batch size */
    int threads;            /* decode threads (0: 2) */
    int prefetch;           /* batches decoded ahead (0: 2) */
    int shuffle;            /* 1: new permutation every epoch from seed */
    uint64_t seed;
    int rank, world;        /* this process' part of each global batch; world 0 means 1 */
    float class_weight[2];  /* per-sample weight by label; 0,0 means 1,1 */
    int has_nodata;         /* 1: no-data gates take `nodata` (normalised units) */
    float nodata;           /*    instead of the dataset schema's value */
    int range_limits;       /* 1: each sample's range_limits field into the batch (CoordConv models) */
} tnrec_loader_config;

typedef struct tnrec_batch {
    int n;                  /* samples of this rank in this batch */
    int global_n;           /* samples in the whole global batch */
    int global_first;       /* position of this rank's first sample in the global batch */
    uint64_t step;          /* batch number within the epoch */
    float *x;               /* n x frames x height x width x channels */
    float *label, *weight;  /* n each */
    int32_t *category;      /* n */
    uint64_t *index;        /* dataset record index of each sample */
    float *range_limits;    /* n x [lower, upper] metres when the config asks for them; else NULL */
} tnrec_batch;

typedef struct tnrec_loader tnrec_loader;
/* ds is borrowed and must outlive the loader. */
tnrec_err tnrec_loader_create(tnrec_loader **out, const tnrec_dataset *ds,
                              const tnrec_loader_config *cfg);
void tnrec_loader_free(tnrec_loader *l);               /* accepts NULL; stops the threads */
/* Input shape of the batches this loader makes. */
tnrec_input_shape tnrec_loader_shape(const tnrec_loader *l);
uint64_t tnrec_loader_steps(const tnrec_loader *l);   /* batches per epoch */
/* Starts (or restarts) decoding epoch `epoch` at batch `step`. */
tnrec_err tnrec_loader_start(tnrec_loader *l, uint64_t epoch, uint64_t step);
/* Next ready batch: *out borrowed, valid until the next call; NULL at the
 * end of the epoch. A bad record fails with the shard and record named. */
tnrec_err tnrec_loader_next(tnrec_loader *l, const tnrec_batch **out);
/* The batch the next tnrec_loader_next call will return, if it is fully
 * decoded already; never waits. *out is NULL when it is not ready yet,
 * when the epoch has no more batches, or when it failed to decode (the
 * next tnrec_loader_next reports that). The pointer is the one that call
 * will return; its contents stay unchanged until the call after it, or
 * tnrec_loader_start. With prefetch 1 nothing is ready while a batch is
 * held. */
tnrec_err tnrec_loader_peek(tnrec_loader *l, const tnrec_batch **out);
/* Zero-copy hand-over of batches (the Python package uses it): takes the
 * input array (x) of the batch held since the last tnrec_loader_next and
 * puts `x` in its place for the batches that slot decodes from then on.
 * The array returned in *out_x is the caller's from then on: the loader
 * never touches it again; if it is not an array the caller gave in an
 * earlier swap, it was the loader's and is released with free(). `x` must
 * hold tnrec_loader_batch_floats(l) floats and stay valid until it is
 * swapped out again or the loader is freed (which does not free it).
 * Not for loaders whose arrays were page-locked for a GPU. */
size_t tnrec_loader_batch_floats(const tnrec_loader *l);
tnrec_err tnrec_loader_swap(tnrec_loader *l, float *x, float **out_x);

/* ---- training runs ---- */
/* Stopping a run between steps (e.g. on SIGINT or SIGTERM). The caller
 * sets `request` nonzero (a signal handler may: it is only read) with a
 * value of its choice, 1..63 (a signal number, say); the run then finishes
 * the step under way, writes last.tnck (a mid-epoch position that
 * --resume continues exactly), calls `notify` on rank 0 and returns
 * TNREC_OK with the fields below set. Several ranks agree to stop after
 * the same step: the requests are summed over ranks after every step (and
 * between epochs), and `reason` is the highest value any rank asked with;
 * no rank returns before rank 0's notify has returned. A request seen
 * once the last step of the run is done stops nothing (reason stays 0). */
typedef struct tnrec_train_stop tnrec_train_stop;
struct tnrec_train_stop {
    const volatile sig_atomic_t *request; /* in: checked after every step */
    void (*notify)(void *ctx, const tnrec_train_stop *st); /* in, may be NULL: rank 0, once stopped */
    void *ctx;                      /* in: for notify */
    int reason;                     /* out: the request the run stopped for; 0: it did not stop */
    int rank, world;                /* out: this process' rank and the number of ranks */
    uint64_t epoch, step;           /* out: where last.tnck resumes: epochs done, steps done in the next */
};

/* Progress inside a phase (a training epoch, a validation, an
 * evaluation), reported after every batch; rank 0 only. */
typedef struct tnrec_step_report {
    const char *phase;      /* "train", "val" or "eval" */
    int epoch, epochs;      /* 1-based epoch of the run; 0 in "eval" */
    uint64_t step, steps;   /* batches done in this phase, of steps */
    uint64_t samples;       /* samples done in this phase (all ranks) */
    double loss;            /* "train": mean loss of the epoch so far; NAN otherwise */
    double seconds;         /* since the phase began */
} tnrec_step_report;
typedef void (*tnrec_step_cb)(void *ctx, const tnrec_step_report *r);

typedef struct tnrec_train_config {
    const char *train_path, *val_path, *run_dir;
    const char *model;                /* preset or spec; NULL: "tiny" */
    int epochs, batch;      /* 0: the model's default: 20 epochs of batch 8 for tiny,
                             * 10 of 32 for the others */
    uint64_t seed;
    const char *init;       /* weight initialiser: "glorot" (NULL), "he" or "torch" */
    double lr;
    tnrec_optim_config optim;
    const char *schedule;   /* "constant", "exp:RATE:STEPS", "plateau:FACTOR:PATIENCE[:MIN_LR]" */
    int patience;           /* early stopping; 0: off */
    const char *monitor;    /* "val_loss" (min) or val_roc_auc, val_pr_auc, val_csi, val_accuracy, loss ... */
    const char *class_weights; /* "balanced" (NULL), "none" or "W0,W1" */
    const char *variables;
    int frames, mask;
    const char *nodata;     /* value of no-data gates in the input: NULL (the model's default:
                             * 0 for all but tornet-cnn, which keeps the dataset's), "dataset"
                             * (the dataset's nodata, TorNet's -3 by default) or a number
                             * in [-1000, 1000] (normalised units; tnrec_train_nodata_parse);
                             * recorded in the checkpoint */
    int threads;            /* loader threads */
    uint64_t checkpoint_every; /* also checkpoint every N steps mid-epoch; 0: epoch ends only */
    uint64_t max_steps;     /* stop (with a checkpoint) after N steps in this call; 0: no limit */
    int resume;             /* continue from run_dir/last.tnck */
    const char *device;     /* "cpu" (default, also NULL) or "cuda" (see tnrec/gpu.h) */
    const char *precision;  /* cuda: "fp32" (default, TF32 off), "fp16" or "bf16" */
    int deterministic;      /* cuda: deterministic cuDNN algorithms only */
    int gpu;                /* cuda: device ordinal; -1 (default): local rank */
    tnrec_train_stop *stop; /* NULL: no stop requests */
    tnrec_step_cb on_step;  /* NULL: no per-step progress */
    void *step_ctx;         /* for on_step */
} tnrec_train_config;
void tnrec_train_config_default(tnrec_train_config *out);
/* What the config's `nodata` (the --nodata option) takes as text. */
#define TNREC_TRAIN_NODATA_RULE "a number between -1000 and 1000 (normalised units) or 'dataset'"
/* Parses a `nodata` text: "dataset" gives *out NULL, a finite number in
 * [-1000, 1000] stores it in *buf and gives *out = buf. Anything else is
 * TNREC_EINVAL, "--nodata takes TNREC_TRAIN_NODATA_RULE, got 'TEXT'". */
tnrec_err tnrec_train_nodata_parse(const char *text, float *buf, const float **out);

typedef struct tnrec_epoch_report {
    int epoch, epochs;
    double loss, lr, seconds, samples_per_s;
    double data_wait_s;     /* of seconds, time spent waiting for the loader */
    uint64_t gpu_staged_steps; /* cuda: steps whose batch was copied to the GPU during the step before */
    tnrec_metrics train, val;
    int improved, stopped;
    const char *monitor;
    double monitor_value;
} tnrec_epoch_report;
typedef void (*tnrec_train_progress_cb)(void *ctx, const tnrec_epoch_report *r);

/* Runs a training: checkpoints go to run_dir (last.tnck each epoch,
 * best.tnck when the monitored metric improves), metrics to
 * run_dir/metrics.jsonl. With MPI compiled in and several ranks, gradients
 * are all-reduced and only rank 0 writes. */
tnrec_err tnrec_train_run(const tnrec_train_config *cfg, tnrec_train_progress_cb cb, void *ctx);

/* Checkpoint path for a file or a run directory (its best.tnck, else
 * last.tnck). *out is malloc'd; free() it. */
tnrec_err tnrec_checkpoint_resolve(char **out, const char *path);
/* The configuration a checkpoint (file or run directory, as for eval)
 * carries: the JSON text of its run's settings and data schema, in *out
 * (malloc'd; free it). */
tnrec_err tnrec_checkpoint_config(char **out, const char *path);
/* Whether a checkpoint (file or run directory, as for eval) records the
 * schema of its training data (checkpoint format 1.2 and later). Without
 * it, eval, predict and --resume cannot check that a dataset holds the
 * same kind of data: *out = 0. With it they refuse a dataset that does
 * not (TNREC_ESCHEMA naming both paths and the first difference). */
tnrec_err tnrec_checkpoint_has_data_schema(int *out, const char *path);
/* Writes m's weights and BN state as a checkpoint file (atomically) with
 * the given config JSON text (it must name the model spec and input shape
 * as a training run's does: "model", "frames", "height", "width",
 * "channels", "variables", "mask"), no optimiser state and no training
 * position: a checkpoint eval and predict read, not one to resume. */
tnrec_err tnrec_checkpoint_write_model(const char *path, const char *config_json, const tnrec_model *m);
/* The config of a checkpoint of m made outside a training run (an import,
 * for tnrec_checkpoint_write_model), as compact JSON text: the members a
 * trained checkpoint's config starts with ("format", "tnrec_version",
 * "model", "frames", "height", "width", "channels", "variables", "mask"),
 * then the members of the JSON object `extra` (text, or NULL for none)
 * in their order. *out is malloc'd; free() it. */
tnrec_err tnrec_checkpoint_config_text(char **out, const tnrec_model *m, const char *variables, int mask,
                                       const char *extra);
/* Loads the model (weights and BN state) of a checkpoint. */
tnrec_err tnrec_checkpoint_load_model(tnrec_model **out, const char *path);

/* Evaluates a checkpoint on a dataset: metrics into out; if csv_path is not
 * NULL, also writes one row per sample atomically with the columns
 * key,event_id,time,category,label,probability. */
tnrec_err tnrec_eval_run(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                         const char *csv_path, int batch, int threads);
/* The same on a device: "cpu" (also NULL) or "cuda" (float32). */
tnrec_err tnrec_eval_run_device(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                                const char *csv_path, int batch, int threads, const char *device);
/* The same with the GPU's precision: "fp32" (also NULL), "fp16" or
 * "bf16" (see tnrec/gpu.h); anything but fp32 needs device "cuda". */
tnrec_err tnrec_eval_run_precision(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                                   const char *csv_path, int batch, int threads, const char *device,
                                   const char *precision);
/* The same, reporting each batch to on_step (may be NULL) as phase "eval". */
tnrec_err tnrec_eval_run_progress(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                                  const char *csv_path, int batch, int threads, const char *device,
                                  const char *precision, tnrec_step_cb on_step, void *step_ctx);

/* Per-sample scores, in dataset order, as `tnrec predict` writes them
 * (CSV with the columns key,event_id,time,category,label,probability). */
typedef struct tnrec_scores {
    size_t n;
    char (*key)[TNREC_KEY_MAX];
    float *prob;
    int32_t *label, *category;
} tnrec_scores;
void tnrec_scores_free(tnrec_scores *s);              /* accepts a zeroed struct */

/* What an evaluation produces besides its metrics, and how it runs. A
 * zeroed struct is valid: no outputs, batch 32, 2 decode threads, the CPU. */
typedef struct tnrec_eval_options {
    const char *csv_path;    /* NULL, or the per-sample CSV (as tnrec_eval_run), written atomically */
    const char *curves_path; /* NULL, or the curves of the scores as JSON (tnrec/report.h), atomically */
    tnrec_scores *scores;    /* NULL, or filled with every sample's score at full precision (float, the
                              * values the metrics are computed from); free with tnrec_scores_free */
    int batch, threads;      /* 0: 32 and the loader's default */
    const char *device;      /* "cpu" (also NULL) or "cuda" */
    const char *precision;   /* "fp32" (also NULL), "fp16" or "bf16" (cuda only) */
    tnrec_step_cb on_step;   /* NULL, or called after each batch as phase "eval" */
    void *step_ctx;
    /* NULL, or read before each batch and before each output file is
     * renamed into place (a signal handler may set it): nonzero stops the
     * evaluation with TNREC_ECANCELED; the file being written is removed,
     * and scores is left empty. An output already in place stays (only
     * when both csv_path and curves_path are given: the CSV comes first).
     * A request that comes after the last output is in place stops
     * nothing. */
    const volatile sig_atomic_t *stop;
} tnrec_eval_options;
/* Evaluates a checkpoint on a dataset with options (opt may be NULL):
 * metrics into out, and the outputs opt asks for. On failure no output
 * file appears and opt->scores is left zeroed. */
tnrec_err tnrec_eval_run_opts(tnrec_metrics *out, const char *checkpoint, const char *dataset,
                              const tnrec_eval_options *opt);

#ifdef __cplusplus
}
#endif
#endif
