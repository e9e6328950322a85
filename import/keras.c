/* import/keras.c: `tnrec import keras`: a Keras 3 .keras file of the TorNet
 * baseline CNN as a tnrec checkpoint.
 *
 * A .keras file is a zip of config.json (the functional model's layers and
 * their inbound tensors), metadata.json and model.weights.h5. In the HDF5
 * file each layer's variables are the datasets layers/<key>/vars/0, 1, ...
 * (a CoordConv2D keeps its inner Conv2D's at layers/<key>/conv/vars/...),
 * where <key> is not the layer's name but its class in snake case, with
 * _1, _2, ... for the second, third, ... layer of that class in the order
 * of config.json's layer list. Kernels are (kh, kw, cin, cout), biases
 * (cout): tnrec's layout, so each copies as it is (docs/train.md).
 *
 * The layers map onto the spec language (docs/train.md, "Models"):
 * CoordConv2D 3x3 'same' ReLU -> aN[/L2]; MaxPooling2D 2x2 'same' of the
 * features -> p122s (its twin on the coordinates is the same layer in
 * tnrec); Dropout -> eR; Conv2D 1x1 ReLU -> hN[/L2]; Conv2D 1x1 to one
 * linear channel then GlobalMaxPooling2D -> m. The inputs, their
 * Normalization (the ranges tnrec build normalises with), the NaN fill
 * (-3, tnrec build's no-data value) and the Concatenates are the dataset's
 * part. Anything else is refused, naming the layer. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "common.h"
#include "json_util.h"
#include "path_util.h"
#include "tnrec/import.h"
#include "tnrec/train.h"
#include "tnrec/tnrec.h"

/* The TorNet baseline's FillNaNs value, which tnrec build's no-data
 * default matches (docs/train.md). */
#define KERAS_NAN_FILL (-3.0)

#define MAX_MEMBER (1ull << 32) /* larger members are not a TorNet model */
#define MAX_LAYERS 256
#define MAX_VARS 16

typedef struct member { uint8_t *p; size_t len; int found; } member;

static void member_free(member *m) { free(m->p); m->p = NULL; }

static tnrec_err read_member(struct archive *a, member *m, const char *path, const char *name)
{
    size_t cap = 1 << 16;
    m->p = malloc(cap);
    m->len = 0;
    m->found = 1;
    if (!m->p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading %s of '%s'", name, path);
    for (;;) {
        if (cap - m->len < (1 << 15)) {
            if (cap >= MAX_MEMBER)
                return tnrec__fail(TNREC_EFORMAT, "'%s': %s is larger than 4 GiB: not a TorNet model", path, name);
            uint8_t *q = realloc(m->p, cap * 2);
            if (!q)
                return tnrec__fail(TNREC_ENOMEM, "out of memory reading %s of '%s'", name, path);
            m->p = q;
            cap *= 2;
        }
        la_ssize_t r = archive_read_data(a, m->p + m->len, cap - m->len);
        if (r < 0)
            return tnrec__fail(TNREC_EFORMAT, "'%s': cannot read %s from the zip: %s", path, name,
                               archive_error_string(a));
        if (r == 0)
            return TNREC_OK;
        m->len += (size_t)r;
    }
}

/* config.json and model.weights.h5 of the zip at path. */
static tnrec_err read_zip(const char *path, member *config, member *weights)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return tnrec__fail_errno(TNREC_ENOTFOUND, errno, "cannot open Keras model '%s'", path);
    struct archive *a = archive_read_new();
    if (!a)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    archive_read_support_format_zip(a);
    tnrec_err err = TNREC_OK;
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        err = tnrec__fail(TNREC_EFORMAT, "'%s' is not a zip archive, as a .keras file is (%s)", path,
                          archive_error_string(a));
        goto out;
    }
    for (int n = 0;; n++) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            err = tnrec__fail(TNREC_EFORMAT, "'%s' is not a zip archive, as a .keras file is (%s)", path,
                              archive_error_string(a));
            goto out;
        }
        const char *name = archive_entry_pathname(e);
        member *m = !name ? NULL : !strcmp(name, "config.json") ? config
                  : !strcmp(name, "model.weights.h5") ? weights : NULL;
        if (m && !m->found && (err = read_member(a, m, path, name)))
            goto out;
    }
    if (!config->found)
        err = tnrec__fail(TNREC_ENOTFOUND, "'%s' has no config.json: not a Keras 3 .keras file", path);
    else if (!weights->found)
        err = tnrec__fail(TNREC_ENOTFOUND, "'%s' has no model.weights.h5: not a Keras 3 .keras file "
                          "(saved without weights?)", path);
out:
    archive_read_free(a);
    return err;
}

/* ---- config.json ---- */

typedef struct weight_ref {
    char key[96];          /* layers/<key>/[conv/]vars */
    const char *layer;     /* the layer's name in config.json */
    int conv;              /* CoordConv2D: its inner conv */
    hsize_t kshape[4];     /* expected kernel shape; bias (kshape[3]) */
} weight_ref;

typedef struct walk {
    const char *path;
    char spec[1024];
    size_t speclen;
    int height, width, sweeps, nvars, mask, have_coords;
    char variables[256];
    int channels;                     /* of the features so far */
    int x_pools, c_pools;
    const char *coord_names[MAX_LAYERS]; /* layers whose output 0 is the coordinates */
    int ncoord;
    const char *coordconv_names[MAX_LAYERS];
    int ncoordconv;
    int heatmap, done;
    weight_ref w[MAX_LAYERS];
    int nw;
    char cls_names[MAX_LAYERS][64];   /* snake-case class names seen, for the keys */
    int cls_count[MAX_LAYERS];
    int ncls;
    json_t *root;                     /* config.json: the names above are borrowed from it */
} walk;

/* Keras' naming.to_snake_case of a class name: "CoordConv2D" ->
 * "coord_conv2d", "MaxPooling2D" -> "max_pooling2d". */
static void snake_case(char *out, size_t cap, const char *cls)
{
    char a[128];
    size_t n = 0, len = strlen(cls);
    /* (.)([A-Z][a-z]+) -> \1_\2 */
    for (size_t i = 0; i < len && n + 2 < sizeof a; i++) {
        if (i > 0 && cls[i] >= 'A' && cls[i] <= 'Z' && i + 1 < len && cls[i + 1] >= 'a' && cls[i + 1] <= 'z')
            a[n++] = '_';
        a[n++] = cls[i];
    }
    a[n] = 0;
    /* ([a-z])([A-Z]) -> \1_\2, then lower case */
    size_t m = 0;
    for (size_t i = 0; a[i] && m + 3 < cap; i++) {
        if (i > 0 && a[i] >= 'A' && a[i] <= 'Z' && a[i - 1] >= 'a' && a[i - 1] <= 'z')
            out[m++] = '_';
        out[m++] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i]);
    }
    out[m] = 0;
}

/* The weights key of the next layer of class cls. */
static void next_key(walk *w, char *key, size_t cap, const char *cls)
{
    char s[64];
    snake_case(s, sizeof s, cls);
    for (int i = 0; i < w->ncls; i++)
        if (!strcmp(w->cls_names[i], s)) {
            snprintf(key, cap, "layers/%s_%d", s, ++w->cls_count[i]);
            return;
        }
    if (w->ncls < MAX_LAYERS) {
        snprintf(w->cls_names[w->ncls], sizeof w->cls_names[0], "%s", s);
        w->cls_count[w->ncls++] = 0;
    }
    snprintf(key, cap, "layers/%s", s);
}

static void spec_add(walk *w, const char *fmt, double a, double l2)
{
    char t[64];
    int n = snprintf(t, sizeof t, fmt, a);
    if (l2 > 0)
        n += snprintf(t + n, sizeof t - (size_t)n, "/%.9g", l2);
    if (w->speclen + (size_t)n + 2 < sizeof w->spec)
        w->speclen += (size_t)snprintf(w->spec + w->speclen, sizeof w->spec - w->speclen, "%s%s",
                                       w->speclen ? "," : "", t);
}

static int in_list(const char *const *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return 1;
    return 0;
}

/* A value that is the integer v, or a list of integers all v (kernel_size 3
 * or [3, 3]). */
static int all_int(const json_t *j, json_int_t v)
{
    if (json_is_integer(j))
        return json_integer_value(j) == v;
    if (!json_is_array(j) || !json_array_size(j))
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
        if (!json_is_integer(e) || json_integer_value(e) != v)
            return 0;
    return 1;
}

static tnrec_err refuse(const walk *w, const char *layer, const char *cls, const char *what)
{
    return tnrec__fail(TNREC_ESCHEMA, "'%s': layer '%s' (%s): %s", w->path, layer, cls, what);
}

/* The L2 factor of a kernel_regularizer (null: 0); -1 when tnrec has no
 * counterpart. */
static double l2_of(const json_t *reg)
{
    if (!reg || json_is_null(reg))
        return 0;
    const char *cls = tnrec__json_str(reg, "class_name");
    const json_t *c = json_object_get(reg, "config");
    if (cls && !strcmp(cls, "L2") && json_is_number(json_object_get(c, "l2")))
        return json_number_value(json_object_get(c, "l2"));
    if (cls && !strcmp(cls, "L1L2") && json_number_value(json_object_get(c, "l1")) == 0)
        return json_number_value(json_object_get(c, "l2"));
    return -1;
}

/* The layer and tensor index the first input of a layer comes from. */
static const char *source_of(const json_t *layer, json_int_t *index)
{
    const json_t *args = json_object_get(json_array_get(json_object_get(layer, "inbound_nodes"), 0), "args");
    const json_t *t = json_array_get(args, 0);
    const json_t *h = json_object_get(json_object_get(t, "config"), "keras_history");
    *index = json_integer_value(json_array_get(h, 2));
    return json_string_value(json_array_get(h, 0));
}

/* The ranges of tornet/data/constants.py CHANNEL_MIN_MAX, which the Keras
 * model's Normalization layers and tnrec build's defaults share. */
static const struct { const char *name; double lo, hi; } norm_ranges[] = {
    { "DBZ", -20, 60 }, { "VEL", -60, 60 }, { "KDP", -2, 5 },
    { "RHOHV", 0.2, 1.04 }, { "ZDR", -1, 8 }, { "WIDTH", 0, 9 },
};

static int near(double a, double b) { return fabs(a - b) <= 1e-6 * (1 + fabs(b)); }

static tnrec_err check_normalization(walk *w, const json_t *c, const char *name)
{
    json_int_t idx;
    const char *src = source_of(c, &idx);
    const json_t *cfg = json_object_get(c, "config");
    const json_t *mean = json_object_get(cfg, "mean"), *var = json_object_get(cfg, "variance");
    for (size_t k = 0; src && k < sizeof norm_ranges / sizeof norm_ranges[0]; k++) {
        if (strcmp(src, norm_ranges[k].name))
            continue;
        double mid = (norm_ranges[k].lo + norm_ranges[k].hi) / 2, half = (norm_ranges[k].hi - norm_ranges[k].lo) / 2;
        int ok = json_is_array(mean) && json_is_array(var) && json_array_size(mean) == json_array_size(var);
        for (size_t i = 0; ok && i < json_array_size(mean); i++)
            ok = near(json_number_value(json_array_get(mean, i)), mid) &&
                 near(json_number_value(json_array_get(var, i)), half * half);
        if (!ok)
            return refuse(w, name, "Normalization",
                          "mean and variance are not those of TorNet's CHANNEL_MIN_MAX, which tnrec build "
                          "normalises with");
        return TNREC_OK;
    }
    return refuse(w, name, "Normalization", "normalises no TorNet variable tnrec knows");
}

static tnrec_err walk_layer(walk *w, const json_t *layer)
{
    const char *cls = tnrec__json_str(layer, "class_name");
    const json_t *cfg = json_object_get(layer, "config");
    const char *name = tnrec__json_str(layer, "name");
    if (!name)
        name = tnrec__json_str(cfg, "name");
    if (!cls || !name || !json_is_object(cfg))
        return tnrec__fail(TNREC_EFORMAT, "'%s': config.json has a layer without class_name, name or config", w->path);
    if (w->done)
        return refuse(w, name, cls, "comes after the GlobalMaxPooling2D output; tnrec's model ends there");
    char key[96];
    next_key(w, key, sizeof key, cls);

    if (!strcmp(cls, "InputLayer")) {
        const json_t *shape = json_object_get(cfg, "batch_shape");
        if (!shape)
            shape = json_object_get(cfg, "batch_input_shape");
        if (!json_is_array(shape) || json_array_size(shape) != 4)
            return refuse(w, name, cls, "is not an (azimuth, range, sweeps) input");
        int h = (int)json_integer_value(json_array_get(shape, 1));
        int wd = (int)json_integer_value(json_array_get(shape, 2));
        int s = (int)json_integer_value(json_array_get(shape, 3));
        if (s <= 0 || s > 64)
            return refuse(w, name, cls, "has no fixed channel count from 1 to 64");
        if (h > 65536 || wd > 65536 || (h > 0) != (wd > 0))
            return refuse(w, name, cls, "its azimuth x range size is not one tnrec can make (1 to 65536 each)");
        if (h > 0 && wd > 0) {
            if ((w->height && (w->height != h || w->width != wd)))
                return refuse(w, name, cls, "differs in size from the other inputs");
            w->height = h;
            w->width = wd;
        }
        if (!strcmp(name, "coordinates")) {
            if (s != 2)
                return refuse(w, name, cls, "tnrec's coordinates are r and 1/r: 2 channels");
            w->have_coords = 1;
            w->coord_names[w->ncoord++] = name;
            return TNREC_OK;
        }
        if (w->sweeps && s != w->sweeps)
            return refuse(w, name, cls, "has another number of sweeps than the inputs before it");
        w->sweeps = s;
        if (!strcmp(name, "range_folded_mask")) {
            w->mask = 1;
            return TNREC_OK;
        }
        if (w->mask)
            return refuse(w, name, cls, "a variable after range_folded_mask: tnrec puts the mask last");
        size_t vl = strlen(w->variables);
        if (vl + strlen(name) + 2 >= sizeof w->variables)
            return refuse(w, name, cls, "too many input variables");
        snprintf(w->variables + vl, sizeof w->variables - vl, "%s%s", vl ? "," : "", name);
        w->nvars++;
        return TNREC_OK;
    }
    if (!strcmp(cls, "Normalization"))
        return check_normalization(w, layer, name);
    if (!strcmp(cls, "FillNaNs")) {
        const json_t *v = json_object_get(cfg, "fill_val");
        if (!json_is_number(v) || json_number_value(v) != KERAS_NAN_FILL)
            return refuse(w, name, cls, "fills NaN with another value than -3, tnrec build's no-data value");
        return TNREC_OK;
    }
    if (!strcmp(cls, "Where")) { /* FillNaNs traced as where(isnan(x), fill, x) */
        const json_t *args = json_object_get(json_array_get(json_object_get(layer, "inbound_nodes"), 0), "args");
        const json_t *fill = json_array_get(args, 1);
        if (json_is_number(fill) && json_number_value(fill) != KERAS_NAN_FILL)
            return refuse(w, name, cls, "fills NaN with another value than -3, tnrec build's no-data value");
        return TNREC_OK;
    }
    if (!strcmp(cls, "Concatenate") || !strcmp(cls, "Isnan"))
        return TNREC_OK; /* the inputs' concatenation and NaN test: the loader's part */
    if (!strcmp(cls, "CoordConv2D")) {
        if (!w->have_coords)
            return refuse(w, name, cls, "comes before the coordinates input");
        if (w->heatmap || w->x_pools != w->c_pools)
            return refuse(w, name, cls, "tnrec's CoordConv2D layers come before the head, with the coordinates "
                          "pooled as the features");
        json_int_t filters = tnrec__json_int(cfg, "filters");
        double l2 = l2_of(json_object_get(cfg, "kernel_regularizer"));
        const char *act = tnrec__json_str(cfg, "activation");
        const char *pad = tnrec__json_str(cfg, "padding");
        const json_t *kw = json_object_get(cfg, "conv2d_kwargs");
        if (filters <= 0 || filters > 65536)
            return refuse(w, name, cls, "has no filter count");
        if (!all_int(json_object_get(cfg, "kernel_size"), 3))
            return refuse(w, name, cls, "tnrec's CoordConv2D is 3x3");
        if (!pad || strcmp(pad, "same"))
            return refuse(w, name, cls, "tnrec's CoordConv2D pads 'same'");
        if (json_object_get(cfg, "strides") && !all_int(json_object_get(cfg, "strides"), 1))
            return refuse(w, name, cls, "tnrec's CoordConv2D has stride 1");
        if (!act || strcmp(act, "relu"))
            return refuse(w, name, cls, "tnrec's CoordConv2D is followed by ReLU");
        if (l2 < 0)
            return refuse(w, name, cls, "its kernel regularizer is not L2");
        if (kw && json_object_size(kw))
            return refuse(w, name, cls, "conv2d_kwargs are not empty");
        if (w->nw >= MAX_LAYERS || w->ncoordconv >= MAX_LAYERS)
            return refuse(w, name, cls, "too many layers");
        weight_ref *r = &w->w[w->nw++];
        snprintf(r->key, sizeof r->key, "%s", key);
        r->layer = name;
        r->conv = 1;
        r->kshape[0] = r->kshape[1] = 3;
        r->kshape[2] = (hsize_t)w->channels + 2;
        r->kshape[3] = (hsize_t)filters;
        w->channels = (int)filters;
        w->coordconv_names[w->ncoordconv++] = name;
        spec_add(w, "a%.0f", (double)filters, l2);
        return TNREC_OK;
    }
    if (!strcmp(cls, "MaxPooling2D")) {
        const char *pad = tnrec__json_str(cfg, "padding");
        if (!all_int(json_object_get(cfg, "pool_size"), 2) || !all_int(json_object_get(cfg, "strides"), 2) ||
            !pad || strcmp(pad, "same"))
            return refuse(w, name, cls, "tnrec's pooling between CoordConv2D blocks is 2x2, stride 2, 'same'");
        json_int_t idx;
        const char *src = source_of(layer, &idx);
        if (!src)
            return refuse(w, name, cls, "has no input in config.json");
        if ((idx == 0 && in_list(w->coord_names, w->ncoord, src)) ||
            (idx == 1 && in_list(w->coordconv_names, w->ncoordconv, src))) {
            w->coord_names[w->ncoord++] = name;
            w->c_pools++;
            return TNREC_OK;
        }
        if (w->heatmap)
            return refuse(w, name, cls, "pooling in the head");
        w->x_pools++;
        spec_add(w, "p122s", 0, 0);
        return TNREC_OK;
    }
    if (!strcmp(cls, "Dropout")) {
        const json_t *ns = json_object_get(cfg, "noise_shape");
        if (ns && !json_is_null(ns))
            return refuse(w, name, cls, "a noise_shape: tnrec's dropout drops single elements");
        double rate = json_number_value(json_object_get(cfg, "rate"));
        if (!(rate >= 0 && rate < 1))
            return refuse(w, name, cls, "rate outside [0, 1)");
        spec_add(w, "e%.9g", rate, 0);
        return TNREC_OK;
    }
    if (!strcmp(cls, "Conv2D")) {
        json_int_t filters = tnrec__json_int(cfg, "filters");
        double l2 = l2_of(json_object_get(cfg, "kernel_regularizer"));
        const char *act = tnrec__json_str(cfg, "activation");
        const json_t *bias = json_object_get(cfg, "use_bias");
        if (!all_int(json_object_get(cfg, "kernel_size"), 1))
            return refuse(w, name, cls, "tnrec's convolutions after the CoordConv2D blocks are 1x1");
        if (json_object_get(cfg, "strides") && !all_int(json_object_get(cfg, "strides"), 1))
            return refuse(w, name, cls, "stride other than 1");
        if (json_object_get(cfg, "groups") && !all_int(json_object_get(cfg, "groups"), 1))
            return refuse(w, name, cls, "grouped convolution");
        if (bias && !json_is_true(bias))
            return refuse(w, name, cls, "no bias: tnrec's convolutions have one");
        if (filters <= 0 || filters > 65536)
            return refuse(w, name, cls, "has no filter count");
        if (l2 < 0)
            return refuse(w, name, cls, "its kernel regularizer is not L2");
        if (w->heatmap)
            return refuse(w, name, cls, "after the one-channel heatmap; tnrec's head ends with it");
        if (act && !strcmp(act, "relu")) {
            spec_add(w, "h%.0f", (double)filters, l2);
        } else if ((!act || !strcmp(act, "linear")) && filters == 1 && l2 == 0) {
            spec_add(w, "m", 0, 0);
            w->heatmap = 1;
        } else {
            return refuse(w, name, cls, "tnrec has 1x1 convolutions with ReLU, and a last one to 1 linear channel "
                          "without L2 (the heatmap) whose global maximum is the logit");
        }
        if (w->nw >= MAX_LAYERS)
            return refuse(w, name, cls, "too many layers");
        weight_ref *r = &w->w[w->nw++];
        snprintf(r->key, sizeof r->key, "%s", key);
        r->layer = name;
        r->conv = 0;
        r->kshape[0] = r->kshape[1] = 1;
        r->kshape[2] = (hsize_t)w->channels;
        r->kshape[3] = (hsize_t)filters;
        w->channels = (int)filters;
        return TNREC_OK;
    }
    if (!strcmp(cls, "GlobalMaxPooling2D")) {
        if (!w->heatmap)
            return refuse(w, name, cls, "tnrec takes the global maximum only of a one-channel heatmap");
        if (json_is_true(json_object_get(cfg, "keepdims")))
            return refuse(w, name, cls, "keepdims: the model's output is one logit per sample");
        w->done = 1;
        return TNREC_OK;
    }
    return refuse(w, name, cls, "tnrec has no counterpart for this layer "
                  "(it reads the TorNet baseline CNN: CoordConv2D blocks and the 'maxpool' head)");
}

static tnrec_err walk_config(walk *w, const member *cm)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)cm->p, cm->len, 0, &jerr);
    if (!root)
        return tnrec__fail(TNREC_EFORMAT, "'%s': config.json is not JSON (line %d: %s)", w->path, jerr.line, jerr.text);
    tnrec_err err = TNREC_OK;
    const char *cls = tnrec__json_str(root, "class_name");
    const json_t *layers = json_object_get(json_object_get(root, "config"), "layers");
    if (!cls || strcmp(cls, "Functional") || !json_is_array(layers)) {
        err = tnrec__fail(TNREC_ESCHEMA, "'%s': config.json holds a %s, not a functional Keras model "
                          "(the TorNet baseline is one)", w->path, cls ? cls : "model of no class");
        goto out;
    }
    if (json_array_size(layers) > MAX_LAYERS) {
        err = tnrec__fail(TNREC_ESCHEMA, "'%s': %zu layers: more than the TorNet baseline's", w->path,
                          json_array_size(layers));
        goto out;
    }
    w->channels = -1;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
        const char *c = tnrec__json_str(l, "class_name");
        if (w->channels < 0 && c && (!strcmp(c, "CoordConv2D") || !strcmp(c, "Conv2D")))
            w->channels = w->nvars * w->sweeps + (w->mask ? w->sweeps : 0);
        if ((err = walk_layer(w, l)))
            goto out;
    }
    if (!w->done)
        err = tnrec__fail(TNREC_ESCHEMA, "'%s': the model does not end in a one-channel Conv2D heatmap and "
                          "GlobalMaxPooling2D, as the TorNet baseline's 'maxpool' head does", w->path);
    else if (!w->ncoordconv || !w->nvars)
        err = tnrec__fail(TNREC_ESCHEMA, "'%s': no CoordConv2D layer or no input variable: not the TorNet baseline",
                          w->path);
out:
    /* the layer names are borrowed from root: keep it alive with the walk */
    if (err)
        json_decref(root);
    else
        w->root = root;
    return err;
}

/* ---- model.weights.h5 ---- */

/* Reads dataset `path` of the file into dst (n floats) after checking its
 * shape against want (rank dims). */
static tnrec_err read_var(hid_t fid, const walk *w, const weight_ref *r, const char *path, int rank,
                          const hsize_t *want, float *dst, size_t n)
{
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(fid, path, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0)
        return tnrec__fail(TNREC_ENOTFOUND, "'%s': model.weights.h5 has no '%s' (the weights of layer '%s')",
                           w->path, path, r->layer);
    tnrec_err err = TNREC_OK;
    hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
    hsize_t dims[8] = { 0 };
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd < 0 || nd > 8 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || ty < 0) {
        err = tnrec__fail(TNREC_EFORMAT, "'%s': cannot read the shape of '%s' in model.weights.h5", w->path, path);
        goto out;
    }
    int same = nd == rank;
    for (int i = 0; same && i < rank; i++)
        same = dims[i] == want[i];
    if (!same) {
        char got[96] = "", exp[96] = "";
        for (int i = 0; i < nd; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        for (int i = 0; i < rank; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%llu", i ? ", " : "", (unsigned long long)want[i]);
        err = tnrec__fail(TNREC_ESCHEMA, "'%s': '%s' (layer '%s') has shape (%s); config.json's layers make it (%s)",
                          w->path, path, r->layer, got, exp);
        goto out;
    }
    if (H5Tget_class(ty) != H5T_FLOAT) {
        err = tnrec__fail(TNREC_ESCHEMA, "'%s': '%s' (layer '%s') is not a float array", w->path, path, r->layer);
        goto out;
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= (size_t)dims[i];
    if (count != n) {
        err = tnrec__fail(TNREC_EINTERNAL, "'%s': '%s' holds %zu values, tnrec's tensor %zu", w->path, path, count, n);
        goto out;
    }
    herr_t rr;
    H5E_BEGIN_TRY { rr = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst); } H5E_END_TRY;
    if (rr < 0)
        err = tnrec__fail(TNREC_EFORMAT, "'%s': cannot read '%s' from model.weights.h5", w->path, path);
    for (size_t i = 0; !err && i < n; i++)
        if (!isfinite(dst[i]))
            err = tnrec__fail(TNREC_ECORRUPT, "'%s': '%s' (layer '%s') holds a value that is not finite",
                              w->path, path, r->layer);
out:
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    return err;
}

static tnrec_err copy_weights(const walk *w, const member *wm, tnrec_model *m)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid = -1;
    if (fapl < 0)
        return tnrec__fail(TNREC_EINTERNAL, "HDF5: cannot create a file access list");
    H5E_BEGIN_TRY {
        if (H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 && H5Pset_file_image(fapl, wm->p, wm->len) >= 0)
            fid = H5Fopen("model.weights.h5", H5F_ACC_RDONLY, fapl);
    } H5E_END_TRY;
    H5Pclose(fapl);
    if (fid < 0)
        return tnrec__fail(TNREC_EFORMAT, "'%s': model.weights.h5 is not an HDF5 file", w->path);
    tnrec_err err = TNREC_OK;
    size_t nt = tnrec_model_tensor_count(m);
    if (nt != 2 * (size_t)w->nw) {
        err = tnrec__fail(TNREC_EINTERNAL, "'%s': spec '%s' has %zu tensors, config.json's layers %d", w->path,
                          w->spec, nt, 2 * w->nw);
        goto out;
    }
    float *params = tnrec_model_params(m);
    for (int i = 0; !err && i < w->nw; i++) {
        const weight_ref *r = &w->w[i];
        tnrec_param_tensor k, b;
        if ((err = tnrec_model_tensor(&k, m, 2 * (size_t)i)) || (err = tnrec_model_tensor(&b, m, 2 * (size_t)i + 1)))
            break;
        char path[160];
        snprintf(path, sizeof path, "%s%s/vars/0", r->key, r->conv ? "/conv" : "");
        err = read_var(fid, w, r, path, 4, r->kshape, params + k.off, k.len);
        if (!err) {
            snprintf(path, sizeof path, "%s%s/vars/1", r->key, r->conv ? "/conv" : "");
            err = read_var(fid, w, r, path, 1, &r->kshape[3], params + b.off, b.len);
        }
    }
out:
    H5Fclose(fid);
    return err;
}

/* ---- the run directory ---- */

static const char *const outputs[] = { "best.tnck", "last.tnck" };

/* run_dir must be absent (*created = 1 once made) or an empty directory. */
static tnrec_err prepare_dir(const char *run_dir, int *created)
{
    *created = 0;
    struct stat sb;
    if (stat(run_dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return tnrec__fail(TNREC_EINVAL, "'%s' exists and is not a directory", run_dir);
        DIR *d = opendir(run_dir);
        if (!d)
            return tnrec__fail_errno(TNREC_EIO, errno, "cannot open directory '%s'", run_dir);
        struct dirent *e;
        int empty = 1;
        while (empty && (e = readdir(d)))
            empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        closedir(d);
        if (!empty)
            return tnrec__fail(TNREC_EINVAL, "run directory '%s' is not empty\nhint: import into a new directory",
                               run_dir);
        return TNREC_OK;
    }
    tnrec_err err = tnrec__mkdir_p(run_dir, 0777);
    if (!err)
        *created = 1;
    return err;
}

static void remove_outputs(const char *run_dir, int created)
{
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
        char *p = tnrec__path_join(run_dir, outputs[i]);
        if (p)
            unlink(p);
        free(p);
    }
    if (created)
        rmdir(run_dir);
}

/* The checkpoint's config: train's members of every checkpoint, then
 * those of an import (no training data; the file it came from). */
static tnrec_err config_text(char **out, const walk *w, const tnrec_model *m, const char *model_path)
{
    *out = NULL;
    char *abs = realpath(model_path, NULL);
    /* nodata: the model's NaN fill (checked to be -3), applied to any
     * dataset whatever no-data value it was built with. */
    json_t *extra = json_pack("{s:s, s:n, s:i, s:f, s:{s:s, s:s}}", "train", "", "val", "epochs", 0, "nodata",
                              (double)KERAS_NAN_FILL, "imported", "format", "keras", "from", abs ? abs : model_path);
    char *text = extra ? json_dumps(extra, JSON_COMPACT) : NULL;
    tnrec_err err = text ? tnrec_checkpoint_config_text(out, m, w->variables, w->mask, text)
                         : tnrec__fail(TNREC_ENOMEM, "out of memory");
    free(text);
    json_decref(extra);
    free(abs);
    return err;
}

tnrec_err tnrec_import_keras(const char *model_path, const char *run_dir, tnrec_import_summary *summary)
{
    if (!model_path || !run_dir)
        return tnrec__fail(TNREC_EINVAL, "tnrec_import_keras: NULL path");
    if (summary)
        memset(summary, 0, sizeof *summary);
    member cm = { 0 }, wm = { 0 };
    walk *w = calloc(1, sizeof *w);
    tnrec_model *m = NULL;
    char *cfg = NULL;
    if (!w)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    w->path = model_path;
    tnrec_err err = read_zip(model_path, &cm, &wm);
    if (!err)
        err = walk_config(w, &cm);
    if (!err) {
        tnrec_input_shape in = { 1, w->height > 0 ? w->height : 120, w->width > 0 ? w->width : 240,
                                 w->nvars * w->sweeps + (w->mask ? w->sweeps : 0) };
        err = tnrec_model_create(&m, w->spec, &in, 0);
        if (err)
            err = tnrec__fail(TNREC_ESCHEMA, "'%s': tnrec cannot build the spec '%s' made from config.json: %s",
                              model_path, w->spec, tnrec_error_last());
    }
    if (!err)
        err = copy_weights(w, &wm, m);
    if (!err)
        err = config_text(&cfg, w, m, model_path);
    if (!err) {
        int created = 0;
        err = prepare_dir(run_dir, &created);
        for (size_t i = 0; !err && i < sizeof outputs / sizeof outputs[0]; i++) {
            char *p = tnrec__path_join(run_dir, outputs[i]);
            err = p ? tnrec_checkpoint_write_model(p, cfg, m) : tnrec__fail(TNREC_ENOMEM, "out of memory");
            free(p);
            if (err)
                remove_outputs(run_dir, created);
        }
    }
    if (!err && summary) {
        const tnrec_input_shape *in = tnrec_model_input(m);
        snprintf(summary->spec, sizeof summary->spec, "%s", w->spec);
        snprintf(summary->variables, sizeof summary->variables, "%s", w->variables);
        summary->height = in->height;
        summary->width = in->width;
        summary->channels = in->channels;
        summary->mask = w->mask;
        summary->params = tnrec_model_param_count(m);
    }
    free(cfg);
    tnrec_model_free(m);
    json_decref(w->root);
    free(w);
    member_free(&cm);
    member_free(&wm);
    return err;
}
