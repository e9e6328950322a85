/* train/model.c: model descriptions: presets, the text spec, the layer
 * table with shapes and parameter offsets, initialisation (Keras' Glorot
 * uniform by default; He normal; PyTorch's default) and the summary.
 *
 * Does not run the model (train/network.c does, reference_net.c in double).
 * Invariant: after tnrec_model_create every layer's shapes are positive and
 * params/grads/state are allocated with nparams/nparams/nstate floats. */
#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "nn.h"
#include "splitmix64.h"

/* A layer spec's defaults: batch 32, 10 epochs, the run's default no-data fill. */
static const trn_model_defaults spec_defaults = { .batch = 32, .epochs = 10, .keeps_dataset_nodata = 0 };

static const struct {
    const char *name, *spec;
    trn_model_defaults defaults;
} presets[] = {
    { "seed3d", "c32/0.001,c32/0.001,p122,s0.1,c64/0.001,c64/0.001,p122,s0.1,"
                "c128/0.001,c128/0.001,p222,s0.1,g,d128/0.01,x0.1,o",
      { .batch = 32, .epochs = 10, .keeps_dataset_nodata = 0 } },
    /* tiny's batch and epochs were chosen on the signature family
     * (docs/train.md, "Defaults from a family of signatures"): batch 8
     * gives four times the steps of 32 per epoch. */
    { "tiny", "p122,c16,p122,c16,p222,c32,g,d16,o", { .batch = 8, .epochs = 20, .keeps_dataset_nodata = 0 } },
    /* The TorNet paper's baseline (mit-ll/tornet cnn_baseline.py): four
     * CoordConv VGG blocks, a 1x1 convolution head, the scene's maximum.
     * Made to reproduce a published model fed with TorNet's -3 fill, it
     * keeps the dataset's no-data value. */
    { "tornet-cnn", "a64/0.001,a64/0.001,p122s,e0.1,a128/0.001,a128/0.001,p122s,e0.1,"
                    "a256/0.001,a256/0.001,a256/0.001,p122s,e0.1,"
                    "a512/0.001,a512/0.001,a512/0.001,p122s,e0.1,h512/0.001,h256/0.001,m",
      { .batch = 32, .epochs = 10, .keeps_dataset_nodata = 1 } },
    { NULL, NULL, { 0, 0, 0 } }
};

const trn_model_defaults *trn_model_defaults_of(const char *model)
{
    if (!model)
        model = "tiny";
    for (int i = 0; presets[i].name; i++)
        if (strcmp(model, presets[i].name) == 0)
            return &presets[i].defaults;
    return &spec_defaults;
}

const char *trn_layer_kind_name(int kind)
{
    switch (kind) {
    case TRN_CONV: return "Conv3D";
    case TRN_BN: return "BatchNormalization";
    case TRN_LRELU: return "LeakyReLU";
    case TRN_POOL: return "MaxPooling3D";
    case TRN_SDROP: return "SpatialDropout3D";
    case TRN_GPOOL: return "GlobalMaxPooling3D";
    case TRN_DENSE: return "Dense";
    case TRN_DROP: return "Dropout";
    case TRN_CCONV: return "CoordConv2D";
    case TRN_CONV1: return "Conv2D";
    case TRN_RELU: return "ReLU";
    case TRN_EDROP: return "Dropout";
    }
    return "?";
}

int trn_model_first_cpu_only_layer(const tnrec_model *m)
{
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->kind == TRN_CCONV || L->kind == TRN_CONV1 || L->kind == TRN_RELU ||
            L->kind == TRN_EDROP || (L->kind == TRN_POOL && L->same))
            return i;
    }
    return -1;
}

int tnrec_model_preset_input(tnrec_input_shape *out, const char *name)
{
    if (name && strcmp(name, "tornet-cnn") == 0) {
        /* the last frame; 6 moments x 2 sweeps and the 2 range-folded masks */
        *out = (tnrec_input_shape){ 1, 120, 240, 14 };
        return 1;
    }
    return 0;
}

static tnrec_err add_layer(tnrec_model *m, const trn_layer *L)
{
    trn_layer *nl = realloc(m->layers, (size_t)(m->nlayers + 1) * sizeof *nl);
    if (!nl)
        return tnrec__fail(TNREC_ENOMEM, "out of memory building the model");
    m->layers = nl;
    m->layers[m->nlayers++] = *L;
    return TNREC_OK;
}

/* Parses "N" or "N/L2" after a layer letter. */
static int parse_units(const char *s, int *units, double *l2)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v <= 0 || v > 65536)
        return -1;
    *units = (int)v;
    *l2 = 0;
    if (*end == '/') {
        const char *p = end + 1;
        *l2 = strtod(p, &end);
        if (end == p || !(*l2 >= 0))
            return -1;
    }
    return *end ? -1 : 0;
}

static int parse_rate(const char *s, double *rate)
{
    char *end;
    *rate = strtod(s, &end);
    return (end == s || *end || !(*rate >= 0 && *rate < 1)) ? -1 : 0;
}

/* The coordinate channels of one chip at the current width: r and 1/r
 * per range gate (cnn_baseline.py's compute_coordinates without the
 * azimuth), max-pooled along with the feature maps. */
typedef struct coord_vec { double *v; int w; } coord_vec;

/* Keras: linspace(lower + 250, upper - 250, w) x 1e-5 for a chip with
 * range_limits [lower, upper] in metres, floored at the radar's minimum
 * range. */
static void coord_fill(coord_vec *cv, int w, double lower_m, double upper_m)
{
    double lo = (lower_m + TRN_COORD_GATE_M) * TRN_COORD_SCALE;
    double hi = (upper_m - TRN_COORD_GATE_M) * TRN_COORD_SCALE;
    double floor_r = TRN_COORD_MIN_RANGE_M * TRN_COORD_SCALE;
    cv->w = w;
    for (int q = 0; q < w; q++) {
        double r = w > 1 ? lo + (hi - lo) * q / (w - 1) : lo;
        r = r >= floor_r ? r : floor_r;
        cv->v[2 * q] = r;
        cv->v[2 * q + 1] = 1 / r;
    }
}

/* Max pooling of the coordinates along the range, as the feature maps. */
static void coord_pool(coord_vec *cv, int pw, int same, int ow)
{
    int pad = same ? (ow * pw - cv->w) / 2 : 0;
    for (int q = 0; q < ow; q++) {
        int lo = q * pw - pad, hi = lo + pw;
        lo = lo < 0 ? 0 : lo;
        hi = hi > cv->w ? cv->w : hi;
        for (int j = 0; j < 2; j++) {
            double mx = cv->v[2 * lo + j];
            for (int e = lo + 1; e < hi; e++)
                mx = cv->v[2 * e + j] > mx ? cv->v[2 * e + j] : mx;
            cv->v[2 * q + j] = mx; /* q <= lo: in place is safe */
        }
    }
    cv->w = ow;
}

void trn_coords_default_window(int width, float limits[2])
{
    limits[0] = (float)TRN_COORD_RANGE0_M;
    limits[1] = (float)(TRN_COORD_RANGE0_M + TRN_COORD_GATE_M * width);
}

int trn_coords_window_ok(const float limits[2])
{
    return isfinite(limits[0]) && isfinite(limits[1]) && limits[0] >= 0 && limits[1] > limits[0];
}

void trn_model_coords(const tnrec_model *m, const float limits[2], double *scratch, double *out)
{
    coord_vec cv = { scratch, 0 };
    coord_fill(&cv, m->in.width, limits[0], limits[1]);
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->kind == TRN_POOL)
            coord_pool(&cv, L->pool[2], L->same, L->w);
        else if (L->kind == TRN_CCONV)
            memcpy(out + L->c_off, cv.v, (size_t)cv.w * TRN_NCOORD * sizeof *out);
    }
}

/* The model's own coordinates: those of the fixed window. */
static tnrec_err model_coords_default(tnrec_model *m)
{
    if (!m->ncoords)
        return TNREC_OK;
    double *scratch = malloc((size_t)m->in.width * TRN_NCOORD * sizeof *scratch);
    m->coords = malloc(m->ncoords * sizeof *m->coords);
    if (!scratch || !m->coords) {
        free(scratch);
        return tnrec__fail(TNREC_ENOMEM, "out of memory building the model");
    }
    float limits[2];
    trn_coords_default_window(m->in.width, limits);
    trn_model_coords(m, limits, scratch, m->coords);
    free(scratch);
    return TNREC_OK;
}

/* Appends the layers of one token, tracking the current shape in cur. */
static tnrec_err add_token(tnrec_model *m, const char *tok, trn_layer *cur, int *flat, int *has_out)
{
    trn_layer L;
    memset(&L, 0, sizeof L);
    L.in_d = cur->d; L.in_h = cur->h; L.in_w = cur->w; L.in_c = cur->c;
    L.d = cur->d; L.h = cur->h; L.w = cur->w; L.c = cur->c;
    tnrec_err err = TNREC_OK;
    int units = 0;
    double l2 = 0, rate = 0;
    if (*has_out)
        return tnrec__fail(TNREC_EINVAL, "model spec: layer '%s' after 'o'\nhint: 'o' (the output) must be the last layer", tok);
    switch (tok[0]) {
    case 'c':
    case 'k': /* k: the same convolution without batch normalisation */
        if (*flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: conv '%s' after 'g'\nhint: convolutions come before the global pooling", tok);
        if (parse_units(tok + 1, &units, &l2))
            return tnrec__fail(TNREC_EINVAL, "model spec: bad conv layer '%s'\nhint: write %cN or %cN/L2, e.g. %c32/0.001",
                               tok, tok[0], tok[0], tok[0]);
        L.kind = TRN_CONV; L.c = units; L.l2 = l2;
        if ((err = add_layer(m, &L)))
            return err;
        L.in_c = units; L.l2 = 0;
        if (tok[0] == 'c') {
            L.kind = TRN_BN;
            if ((err = add_layer(m, &L)))
                return err;
        }
        L.kind = TRN_LRELU; L.alpha = TRN_LEAKY_ALPHA; L.inplace = 1;
        err = add_layer(m, &L);
        cur->c = units;
        return err;
    case 'p':
        if (*flat || (strlen(tok) != 4 && !(strlen(tok) == 5 && tok[4] == 's')) || !isdigit((unsigned char)tok[1]) ||
            !isdigit((unsigned char)tok[2]) || !isdigit((unsigned char)tok[3]) || tok[1] == '0' || tok[2] == '0' ||
            tok[3] == '0')
            return tnrec__fail(TNREC_EINVAL, "model spec: bad pooling layer '%s'\nhint: write pDHW with three digits 1-9, e.g. p122, or pDHWs for 'same' padding", tok);
        L.kind = TRN_POOL;
        L.pool[0] = tok[1] - '0'; L.pool[1] = tok[2] - '0'; L.pool[2] = tok[3] - '0';
        L.same = tok[4] == 's';
        if (L.same) {
            L.d = (cur->d + L.pool[0] - 1) / L.pool[0];
            L.h = (cur->h + L.pool[1] - 1) / L.pool[1];
            L.w = (cur->w + L.pool[2] - 1) / L.pool[2];
        } else {
            L.d = cur->d / L.pool[0]; L.h = cur->h / L.pool[1]; L.w = cur->w / L.pool[2];
        }
        if (L.d < 1 || L.h < 1 || L.w < 1)
            return tnrec__fail(TNREC_EINVAL, "model spec: pooling '%s' leaves an empty output (input %dx%dx%d)\nhint: pool less or give more frames",
                               tok, cur->d, cur->h, cur->w);
        cur->d = L.d; cur->h = L.h; cur->w = L.w;
        return add_layer(m, &L);
    case 'a':
    case 'h': /* CoordConv2D 3x3 + ReLU; 1x1 convolution + ReLU */
        if (*flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: conv '%s' after 'g'\nhint: convolutions come before the global pooling", tok);
        if (parse_units(tok + 1, &units, &l2))
            return tnrec__fail(TNREC_EINVAL, "model spec: bad conv layer '%s'\nhint: write %cN or %cN/L2, e.g. %c64/0.001",
                               tok, tok[0], tok[0], tok[0]);
        L.kind = tok[0] == 'a' ? TRN_CCONV : TRN_CONV1; L.c = units; L.l2 = l2;
        if (L.kind == TRN_CCONV) {
            L.c_off = m->ncoords;
            m->ncoords += (size_t)cur->w * TRN_NCOORD;
        }
        if ((err = add_layer(m, &L)))
            return err;
        L.in_c = units; L.l2 = 0; L.c_off = 0;
        L.kind = TRN_RELU; L.inplace = 1;
        err = add_layer(m, &L);
        cur->c = units;
        return err;
    case 'm': /* the heatmap head: 1x1 convolution to one channel, its maximum is the logit */
        if (tok[1])
            return tnrec__fail(TNREC_EINVAL, "model spec: bad heatmap output '%s'\nhint: write m", tok);
        if (*flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: heatmap output 'm' after 'g'\nhint: m takes the place of g,o");
        L.kind = TRN_CONV1; L.c = 1;
        if ((err = add_layer(m, &L)))
            return err;
        L.in_c = 1; L.kind = TRN_GPOOL; L.d = L.h = L.w = 1;
        cur->d = cur->h = cur->w = 1;
        cur->c = 1;
        *flat = 1;
        *has_out = 1;
        return add_layer(m, &L);
    case 'e':
        if (parse_rate(tok + 1, &rate))
            return tnrec__fail(TNREC_EINVAL, "model spec: bad dropout '%s'\nhint: write e0.1 (rate in [0,1))", tok);
        if (*flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: element dropout '%s' after 'g'\nhint: use xR for dropout of dense features", tok);
        L.kind = TRN_EDROP;
        L.rate = rate; L.inplace = 1;
        return add_layer(m, &L);
    case 's':
    case 'x':
        if (parse_rate(tok + 1, &rate))
            return tnrec__fail(TNREC_EINVAL, "model spec: bad dropout '%s'\nhint: write s0.1 or x0.1 (rate in [0,1))", tok);
        if (tok[0] == 's' && *flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: spatial dropout '%s' after 'g'\nhint: use xR for dropout of dense features", tok);
        L.kind = tok[0] == 's' ? TRN_SDROP : TRN_DROP;
        L.rate = rate; L.inplace = 1;
        return add_layer(m, &L);
    case 'g':
        if (tok[1] || *flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: bad global pooling '%s'", tok);
        L.kind = TRN_GPOOL; L.d = L.h = L.w = 1;
        cur->d = cur->h = cur->w = 1;
        *flat = 1;
        return add_layer(m, &L);
    case 'd':
    case 'o':
        if (!*flat)
            return tnrec__fail(TNREC_EINVAL, "model spec: dense '%s' before 'g'\nhint: put g (global max pooling) before dense layers", tok);
        if (tok[0] == 'o') {
            if (tok[1])
                return tnrec__fail(TNREC_EINVAL, "model spec: bad output layer '%s'\nhint: write o", tok);
            units = 1;
            *has_out = 1;
        } else if (parse_units(tok + 1, &units, &l2)) {
            return tnrec__fail(TNREC_EINVAL, "model spec: bad dense layer '%s'\nhint: write dN or dN/L2, e.g. d128/0.01", tok);
        }
        L.kind = TRN_DENSE; L.c = units; L.l2 = l2;
        if ((err = add_layer(m, &L)))
            return err;
        cur->c = units;
        if (tok[0] == 'd') {
            L.in_c = units; L.kind = TRN_LRELU; L.alpha = TRN_LEAKY_ALPHA; L.inplace = 1; L.l2 = 0;
            err = add_layer(m, &L);
        }
        return err;
    default:
        return tnrec__fail(TNREC_EINVAL, "model spec: unknown layer '%s'\nhint: layers are cN, kN, aN, hN, pDHW, pDHWs, sR, eR, g, dN, xR, o, m; or a preset: seed3d, tiny, tornet-cnn", tok);
    }
}

/* ---- initialisation ---- */

static const char *const init_names[] = { "glorot", "he", "torch" };

const char *tnrec_init_name(tnrec_init init)
{
    return (unsigned)init < sizeof init_names / sizeof *init_names ? init_names[init] : "?";
}

tnrec_err tnrec_init_parse(tnrec_init *out, const char *name)
{
    *out = TNREC_INIT_GLOROT;
    if (!name)
        return TNREC_OK;
    for (unsigned i = 0; i < sizeof init_names / sizeof *init_names; i++) {
        if (strcmp(name, init_names[i]) == 0) {
            *out = (tnrec_init)i;
            return TNREC_OK;
        }
    }
    return tnrec__fail(TNREC_EINVAL, "unknown initialiser '%s'\nhint: --init takes glorot, he or torch", name);
}

/* Uniform in [0, 1) from the stream. */
static double init_uniform(uint64_t *s)
{
    return (double)(tnrec__splitmix64_next(s) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, one value per pair of uniforms). */
static double init_normal(uint64_t *s)
{
    double u1 = 1.0 - init_uniform(s); /* (0, 1]: log is finite */
    double u2 = init_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill_uniform(float *v, size_t n, double limit, uint64_t *s)
{
    for (size_t j = 0; j < n; j++)
        v[j] = (float)((2 * init_uniform(s) - 1) * limit);
}

/* One Conv3D or Dense layer: fan_in = receptive field x input channels. */
static void init_linear(tnrec_model *m, const trn_layer *L, tnrec_init init, uint64_t *s)
{
    double rf = L->kind == TRN_CONV ? 27.0 : L->kind == TRN_CCONV ? 9.0 : 1.0;
    double fan_in = rf * (L->in_c + (L->kind == TRN_CCONV ? TRN_NCOORD : 0)), fan_out = rf * L->c;
    float *w = m->params + L->w_off, *b = m->params + L->b_off;
    memset(b, 0, L->b_len * sizeof *b);
    switch (init) {
    case TNREC_INIT_GLOROT: /* Keras glorot_uniform, zero bias */
        fill_uniform(w, L->w_len, sqrt(6.0 / (fan_in + fan_out)), s);
        break;
    case TNREC_INIT_HE: /* Kaiming normal, fan_in, gain sqrt(2): N(0, 2/fan_in), zero bias */
        for (size_t j = 0; j < L->w_len; j++)
            w[j] = (float)(init_normal(s) * sqrt(2.0 / fan_in));
        break;
    case TNREC_INIT_TORCH: /* PyTorch's default: kaiming_uniform(a=sqrt(5)), bias of the same bound */
        fill_uniform(w, L->w_len, 1.0 / sqrt(fan_in), s);
        fill_uniform(b, L->b_len, 1.0 / sqrt(fan_in), s);
        break;
    }
}

tnrec_err tnrec_model_init_weights(tnrec_model *m, tnrec_init init, uint64_t seed)
{
    if ((unsigned)init >= sizeof init_names / sizeof *init_names)
        return tnrec__fail(TNREC_EINVAL, "unknown initialiser %d", (int)init);
    uint64_t rs = seed;
    for (int i = 0; i < m->nlayers; i++) {
        trn_layer *L = &m->layers[i];
        if (L->kind == TRN_CONV || L->kind == TRN_DENSE || L->kind == TRN_CCONV || L->kind == TRN_CONV1) {
            init_linear(m, L, init, &rs);
        } else if (L->kind == TRN_BN) { /* gamma 1, beta 0, moving mean 0, variance 1 in every framework */
            for (int c = 0; c < L->c; c++) {
                m->params[L->w_off + c] = 1.0f;
                m->params[L->b_off + c] = 0.0f;
                m->state[L->s_off + c] = 0.0f;
                m->state[L->s_off + (size_t)L->c + c] = 1.0f;
            }
        }
    }
    return TNREC_OK;
}

tnrec_err tnrec_model_create(tnrec_model **out, const char *spec, const tnrec_input_shape *in, uint64_t seed)
{
    *out = NULL;
    if (!spec || !*spec)
        spec = "tiny";
    if (!in || in->frames < 1 || in->height < 1 || in->width < 1 || in->channels < 1)
        return tnrec__fail(TNREC_EINVAL, "model input shape must be positive");
    tnrec_input_shape native;
    if (tnrec_model_preset_input(&native, spec) && in->frames != native.frames)
        return tnrec__fail(TNREC_EINVAL, "model '%s' takes %d frame%s, not %d\nhint: train it with --frames %d --mask (the Keras model's input: the last frame of the 6 moments x 2 sweeps and the range-folded masks)",
                           spec, native.frames, native.frames == 1 ? "" : "s", in->frames, native.frames);
    for (int i = 0; presets[i].name; i++)
        if (strcmp(spec, presets[i].name) == 0)
            spec = presets[i].spec;
    tnrec_err err = TNREC_OK;
    char *copy = NULL;
    tnrec_model *m = calloc(1, sizeof *m);
    if (!m || !(m->spec = strdup(spec)) || !(copy = strdup(spec))) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory building the model");
        goto done;
    }
    m->in = *in;
    trn_layer cur = { .d = in->frames, .h = in->height, .w = in->width, .c = in->channels };
    int flat = 0, has_out = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t tl = strlen(tok);
        while (tl && isspace((unsigned char)tok[tl - 1]))
            tok[--tl] = '\0';
        if ((err = add_token(m, tok, &cur, &flat, &has_out)))
            goto done;
    }
    if (!has_out) {
        err = tnrec__fail(TNREC_EINVAL, "model spec '%s' has no output layer\nhint: end the spec with ',g,o' (or ',o' after g)", spec);
        goto done;
    }
    /* Parameter and state offsets. */
    for (int i = 0; i < m->nlayers; i++) {
        trn_layer *L = &m->layers[i];
        if (L->kind == TRN_CONV) {
            L->w_len = (size_t)27 * L->in_c * L->c;
            L->b_len = (size_t)L->c;
        } else if (L->kind == TRN_CCONV) {
            L->w_len = (size_t)9 * (L->in_c + TRN_NCOORD) * L->c;
            L->b_len = (size_t)L->c;
        } else if (L->kind == TRN_DENSE || L->kind == TRN_CONV1) {
            L->w_len = (size_t)L->in_c * L->c;
            L->b_len = (size_t)L->c;
        } else if (L->kind == TRN_BN) {
            L->w_len = L->b_len = (size_t)L->c;
            L->s_off = m->nstate;
            m->nstate += 2 * (size_t)L->c;
        }
        L->w_off = m->nparams;
        L->b_off = L->w_off + L->w_len;
        m->nparams += L->w_len + L->b_len;
    }
    if ((err = model_coords_default(m)))
        goto done;
    m->params = calloc(m->nparams, sizeof *m->params);
    m->grads = calloc(m->nparams, sizeof *m->grads);
    m->state = calloc(m->nstate ? m->nstate : 1, sizeof *m->state);
    if (!m->params || !m->grads || !m->state) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for %zu model parameters", m->nparams);
        goto done;
    }
    if ((err = tnrec_model_init_weights(m, TNREC_INIT_GLOROT, seed)) != TNREC_OK)
        goto done;
    *out = m;
    m = NULL;
done:
    free(copy);
    tnrec_model_free(m);
    return err;
}

void tnrec_model_free(tnrec_model *m)
{
    if (!m)
        return;
    free(m->spec);
    free(m->layers);
    free(m->params);
    free(m->grads);
    free(m->state);
    free(m->coords);
    free(m);
}

const char *tnrec_model_spec(const tnrec_model *m) { return m->spec; }

int trn_spec_has_coords(const char *spec)
{
    for (int i = 0; presets[i].name; i++)
        if (strcmp(spec, presets[i].name) == 0)
            spec = presets[i].spec;
    for (const char *p = spec; *p;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == 'a')
            return 1;
        p += strcspn(p, ",");
        p += *p == ',';
    }
    return 0;
}
const tnrec_input_shape *tnrec_model_input(const tnrec_model *m) { return &m->in; }
uint64_t tnrec_model_param_count(const tnrec_model *m) { return m->nparams + m->nstate; }
float *tnrec_model_params(tnrec_model *m) { return m->params; }
size_t tnrec_model_trainable_count(const tnrec_model *m) { return m->nparams; }
float *tnrec_model_grads(tnrec_model *m) { return m->grads; }
float *tnrec_model_state(tnrec_model *m) { return m->state; }
size_t tnrec_model_state_count(const tnrec_model *m) { return m->nstate; }

/* Layers with parameters have two tensors each: kernel (or gamma) and
 * bias (or beta), one after the other in the flat array. */
size_t tnrec_model_tensor_count(const tnrec_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].w_len + m->layers[i].b_len)
            n += 2;
    return n;
}

tnrec_err tnrec_model_tensor(tnrec_param_tensor *out, const tnrec_model *m, size_t i)
{
    memset(out, 0, sizeof *out);
    size_t k = 0;
    for (int l = 0; l < m->nlayers; l++) {
        const trn_layer *L = &m->layers[l];
        if (!(L->w_len + L->b_len))
            continue;
        if (i < k + 2) {
            int second = i > k;
            out->off = second ? L->b_off : L->w_off;
            out->len = second ? L->b_len : L->w_len;
            out->layer = l;
            out->layer_type = trn_layer_kind_name(L->kind);
            if (L->kind == TRN_BN)
                out->role = second ? "beta" : "gamma";
            else
                out->role = second ? "bias" : "kernel";
            return TNREC_OK;
        }
        k += 2;
    }
    return tnrec__fail(TNREC_EINVAL, "model tensor %zu asked for, but the model has %zu", i, k);
}

double trn_model_l2(const tnrec_model *m)
{
    double total = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->l2 <= 0)
            continue;
        double s = 0;
        for (size_t j = 0; j < L->w_len; j++)
            s += (double)m->params[L->w_off + j] * m->params[L->w_off + j];
        total += L->l2 * s;
    }
    return total;
}

/* Growable text for the summary. */
typedef struct text { char *s; size_t len, cap; int oom; } text;

static void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        if (tnrec__grow(&t->s, &t->cap, t->len + (size_t)n + 1, 1, "a model summary")) {
            t->oom = 1;
            return;
        }
    }
}

static void group_digits(char *buf, size_t cap, uint64_t v)
{
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
}

tnrec_err tnrec_model_summary(const tnrec_model *m, char **out)
{
    *out = NULL;
    text t = { 0 };
    text_add(&t, "Model: %s\ninput: (None, %d, %d, %d, %d)\n", m->spec, m->in.frames, m->in.height,
             m->in.width, m->in.channels);
    text_add(&t, "%-4s %-22s %-28s %12s\n", "#", "Layer (type)", "Output Shape", "Param #");
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        char shape[64], np[32];
        if (L->kind == TRN_GPOOL || L->kind == TRN_DENSE || (L->d == 1 && L->h == 1 && L->w == 1 &&
            (L->kind == TRN_DROP || (L->kind == TRN_LRELU && i > 0 && m->layers[i - 1].kind == TRN_DENSE))))
            snprintf(shape, sizeof shape, "(None, %d)", L->c);
        else
            snprintf(shape, sizeof shape, "(None, %d, %d, %d, %d)", L->d, L->h, L->w, L->c);
        uint64_t count = L->w_len + L->b_len + (L->kind == TRN_BN ? 2 * (uint64_t)L->c : 0);
        group_digits(np, sizeof np, count);
        char desc[64];
        if (L->kind == TRN_CONV || L->kind == TRN_DENSE || L->kind == TRN_CCONV || L->kind == TRN_CONV1)
            snprintf(desc, sizeof desc, "%s%s%s", trn_layer_kind_name(L->kind), L->kind == TRN_CONV1 ? "(1x1)" : "",
                     L->l2 > 0 ? "+L2" : "");
        else if (L->kind == TRN_POOL && L->same)
            snprintf(desc, sizeof desc, "%s(same)", trn_layer_kind_name(L->kind));
        else
            snprintf(desc, sizeof desc, "%s", trn_layer_kind_name(L->kind));
        text_add(&t, "%-4d %-22s %-28s %12s\n", i, desc, shape, np);
    }
    char total[32], train[32], non[32];
    group_digits(total, sizeof total, tnrec_model_param_count(m));
    group_digits(train, sizeof train, m->nparams);
    group_digits(non, sizeof non, m->nstate);
    text_add(&t, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", total, train, non);
    if (m->layers[m->nlayers - 1].kind == TRN_GPOOL)
        text_add(&t, "Output: sigmoid of the heatmap's global maximum (trained from logits)\n");
    else
        text_add(&t, "Output: sigmoid of the last Dense (trained from logits)\n");
    if (t.oom) {
        free(t.s);
        return tnrec__fail(TNREC_ENOMEM, "out of memory writing the model summary");
    }
    *out = t.s;
    return TNREC_OK;
}
