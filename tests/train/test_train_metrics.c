/* tests/train/test_train_metrics.c: metrics on hand-made cases, and score
 * sets written for the scikit-learn comparison (metrics_sklearn.py).
 * With an argument DIR it writes DIR/case_K.txt (probability, label,
 * category per line) and DIR/case_K.json (tnrec's metrics) for each case. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec_test.h"

static uint64_t rs = 777;
static double unif(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rs >> 11) * 0x1.0p-53;
}

/* The number after the first "key": in js, or NAN. */
static double json_number(const char *js, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = js ? strstr(js, pat) : NULL;
    return at ? strtod(at + strlen(pat), NULL) : NAN;
}

/* The metrics' JSON reads back as the very doubles computed. */
static void check_round_trip(const tnrec_metrics *m)
{
    char *js = NULL;
    CHECK_OK(tnrec_metrics_json(m, &js));
    const struct { const char *key; double v; } f[] = {
        { "roc_auc", m->all.roc_auc }, { "pr_auc", m->all.pr_auc }, { "accuracy", m->all.accuracy },
        { "precision", m->all.precision }, { "recall", m->all.recall }, { "far", m->all.far },
        { "f1", m->all.f1 }, { "csi", m->all.csi }, { "csi_best_threshold", m->all.csi_best_threshold },
        { "mean_probability", m->all.mean_probability },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        double got = json_number(js, f[i].key);
        CHECK(got == f[i].v);
        if (got != f[i].v)
            fprintf(stderr, "  %s: JSON %.17g, computed %.17g\n", f[i].key, got, f[i].v);
    }
    free(js);
}

static void hand_cases(void)
{
    /* Perfect ranking, AUC 1; threshold metrics at p > 0.5. */
    float p[6] = { 0.9f, 0.8f, 0.6f, 0.4f, 0.2f, 0.1f };
    int32_t y[6] = { 1, 1, 0, 1, 0, 0 };
    int32_t c[6] = { 0, 0, 2, 0, 1, 1 };
    tnrec_metrics m;
    CHECK_OK(tnrec_metrics_compute(&m, p, y, c, 6));
    /* positives at ranks 1,2,4: AUC = (3+3+2)/9 */
    CHECK(fabs(m.all.roc_auc - 8.0 / 9.0) < 1e-12);
    /* AP = 1/3*1 + 1/3*1 + 1/3*(3/4) */
    CHECK(fabs(m.all.pr_auc - (2.0 / 3.0 + 0.25)) < 1e-12);
    CHECK(m.all.tp == 2 && m.all.fp == 1 && m.all.fn == 1 && m.all.tn == 2);
    CHECK(fabs(m.all.precision - 2.0 / 3) < 1e-12 && fabs(m.all.recall - 2.0 / 3) < 1e-12);
    CHECK(fabs(m.all.far - 1.0 / 3) < 1e-12 && fabs(m.all.csi - 0.5) < 1e-12);
    CHECK(fabs(m.all.accuracy - 4.0 / 6) < 1e-12);
    check_round_trip(&m);
    /* CSI best: threshold 0.4 -> tp 3, fp 1, fn 0: 0.75 */
    CHECK(fabs(m.all.csi_best - 0.75) < 1e-12 && fabs(m.all.csi_best_threshold - 0.4f) < 1e-7);
    CHECK(m.category[0].n == 3 && m.category[1].n == 2 && m.category[2].n == 1);
    CHECK(isnan(m.category[1].roc_auc) && m.category[0].recall == 2.0 / 3);
    /* All tied: AUC 0.5, AP = prevalence. */
    float t[4] = { 0.3f, 0.3f, 0.3f, 0.3f };
    int32_t ty[4] = { 1, 0, 0, 0 };
    CHECK_OK(tnrec_metrics_compute(&m, t, ty, NULL, 4));
    CHECK(fabs(m.all.roc_auc - 0.5) < 1e-12 && fabs(m.all.pr_auc - 0.25) < 1e-12);
    CHECK(m.category[0].n == 0);
    char *js = NULL;
    CHECK_OK(tnrec_metrics_json(&m, &js));
    CHECK(js && strstr(js, "\"roc_auc\": 0.5") && strstr(js, "\"far\"") && strstr(js, "\"TOR\""));
    free(js);
    float bad[1] = { NAN };
    CHECK(tnrec_metrics_compute(&m, bad, ty, NULL, 1) == TNREC_ERANGE);
}

static void write_case(const char *dir, int k, size_t n, int quantise, double prevalence)
{
    float *p = malloc(n * sizeof *p);
    int32_t *y = malloc(n * sizeof *y), *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        y[i] = unif() < prevalence;
        c[i] = y[i] ? 0 : (unif() < 0.6 ? 1 : 2);
        double s = 0.5 * unif() + (y[i] ? 0.35 * unif() : 0.0) + (c[i] == 2 ? 0.1 : 0.0);
        if (quantise)
            s = floor(s * quantise) / quantise; /* many ties */
        p[i] = (float)s;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/case_%d.txt", dir, k);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.9g %d %d\n", p[i], y[i], c[i]);
    fclose(f);
    tnrec_metrics m;
    CHECK_OK(tnrec_metrics_compute(&m, p, y, c, n));
    char *js = NULL;
    CHECK_OK(tnrec_metrics_json(&m, &js));
    snprintf(path, sizeof path, "%s/case_%d.json", dir, k);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f && js) {
        fputs(js, f);
        fclose(f);
    }
    free(js);
    free(p);
    free(y);
    free(c);
}

int main(int argc, char **argv)
{
    hand_cases();
    if (argc > 1) {
        write_case(argv[1], 0, 5000, 0, 0.07);
        write_case(argv[1], 1, 3000, 20, 0.1);
        write_case(argv[1], 2, 2000, 3, 0.3);
        write_case(argv[1], 3, 37, 0, 0.5);
        write_case(argv[1], 4, 10000, 1000, 0.02);
    }
    return tnrec_test_result("test_train_metrics");
}
