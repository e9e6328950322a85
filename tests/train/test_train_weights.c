/* tests/train/test_train_weights.c: class weights reach the loss.
 *
 * The balanced class weights are read from the dataset's manifest.json
 * (parsed here with jansson, not through libtnrec), a loader configured
 * as the trainer configures it makes one batch of the whole dataset, and
 *  - every sample's weight is the manifest's weight of its label;
 *  - one training step's loss (tnrec_net_train_step on that batch) equals
 *    the weighted binary cross-entropy computed here by hand from the
 *    step's own logits and the manifest's weights:
 *        sum_i w[y_i] * (max(z,0) - z*y + log(1 + exp(-|z|))) / n;
 *  - with weights 1,1 the loss differs, so the weights really matter. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec_test.h"
#include "train_fixture.h"

#define N_SAMPLES 24

static int manifest_weights(const char *dir, double w[2])
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        fprintf(stderr, "cannot read %s: %s\n", path, jerr.text);
        return -1;
    }
    json_t *cw = json_object_get(root, "class_weights");
    json_t *w0 = json_object_get(cw, "0"), *w1 = json_object_get(cw, "1");
    int ok = json_is_number(w0) && json_is_number(w1);
    if (ok) {
        w[0] = json_number_value(w0);
        w[1] = json_number_value(w1);
    } else {
        fprintf(stderr, "%s: no class_weights {\"0\": ..., \"1\": ...}\n", path);
    }
    json_decref(root);
    return ok ? 0 : -1;
}

static double hand_bce(const float *z, const float *label, const double w[2], int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double zi = z[i], y = label[i];
        s += w[label[i] > 0.5f ? 1 : 0] * ((zi > 0 ? zi : 0) - zi * y + log1p(exp(-fabs(zi))));
    }
    return s / n;
}

int main(void)
{
    const char *tmp = tnrec_test_dir();
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data", tmp);
    CHECK_OK(fixture_write(dir, N_SAMPLES, 2, 8, 8, 5, 0));

    double mw[2] = { 0, 0 };
    CHECK(manifest_weights(dir, mw) == 0);
    printf("manifest class weights: %.6f %.6f\n", mw[0], mw[1]);
    /* Balanced weights of a fixture with a third TOR: both away from 1. */
    CHECK(fabs(mw[0] - 1.0) > 0.05 && fabs(mw[1] - 1.0) > 0.05);

    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, dir));
    if (!ds)
        return tnrec_test_result("test_train_weights");
    tnrec_loader_config lc = { .batch = N_SAMPLES, .threads = 2, .prefetch = 1, .shuffle = 0, .seed = 1,
                               .class_weight = { (float)mw[0], (float)mw[1] } };
    tnrec_loader *l = NULL;
    CHECK_OK(tnrec_loader_create(&l, ds, &lc));
    const tnrec_batch *b = NULL;
    if (l) {
        CHECK_OK(tnrec_loader_start(l, 0, 0));
        CHECK_OK(tnrec_loader_next(l, &b));
    }
    CHECK(b && b->n == N_SAMPLES);
    if (b && b->n == N_SAMPLES) {
        int pos = 0;
        for (int i = 0; i < b->n; i++) {
            int y = b->label[i] > 0.5f;
            pos += y;
            if (fabs(b->weight[i] - mw[y]) > 1e-6 * mw[y]) {
                fprintf(stderr, "sample %d (label %d): weight %.6f, manifest says %.6f\n", i, y, b->weight[i], mw[y]);
                CHECK(!"loader weight equals the manifest's class weight");
                break;
            }
        }
        CHECK(pos > 0 && pos < b->n); /* both classes in the batch */

        tnrec_model *m = NULL;
        tnrec_net *net = NULL;
        tnrec_input_shape sh = tnrec_loader_shape(l);
        CHECK_OK(tnrec_model_create(&m, "k4,g,o", &sh, 3));
        if (m)
            CHECK_OK(tnrec_net_create(&net, m, b->n));
        if (net) {
            float *z = malloc((size_t)b->n * sizeof *z);
            double loss = NAN;
            CHECK_OK(tnrec_net_train_step(net, b->x, b->label, b->weight, b->n, 1, z, &loss));
            double want = hand_bce(z, b->label, mw, b->n);
            double ones[2] = { 1, 1 };
            double unweighted = hand_bce(z, b->label, ones, b->n);
            printf("one step: loss %.9f, weighted BCE by hand %.9f, unweighted %.9f\n", loss, want, unweighted);
            CHECK(fabs(loss - want) <= 1e-5 * fabs(want));
            CHECK(fabs(want - unweighted) > 1e-3 * fabs(want)); /* the check above can tell them apart */
            free(z);
        }
        tnrec_net_free(net);
        tnrec_model_free(m);
    }
    tnrec_loader_free(l);
    tnrec_dataset_close(ds);
    return tnrec_test_result("test_train_weights");
}
