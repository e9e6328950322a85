/* tests/report/test_report_curves.c: the curves against the metrics on
 * the same scores (ties, one class, empty), and the predict CSV reader
 * (quoted keys, malformed lines). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec_test.h"

static double trapezoid(const tnrec_curves *c)
{
    double a = 0;
    for (size_t i = 1; i < c->npoints; i++)
        a += (c->points[i].fpr - c->points[i - 1].fpr) * (c->points[i].tpr + c->points[i - 1].tpr) / 2;
    return a;
}

static double ap_sum(const tnrec_curves *c)
{
    double a = 0;
    for (size_t i = 1; i < c->npoints; i++)
        a += (c->points[i].tpr - c->points[i - 1].tpr) * c->points[i].precision;
    return a;
}

static void check_against_metrics(const float *p, const int32_t *y, size_t n)
{
    tnrec_metrics m;
    tnrec_curves c;
    CHECK_OK(tnrec_metrics_compute(&m, p, y, NULL, n));
    CHECK_OK(tnrec_curves_compute(&c, p, y, n));
    CHECK(c.n == n && c.positives == m.all.positives);
    CHECK(c.npoints >= 1 && isinf(c.points[0].threshold) && c.points[0].tp == 0 && c.points[0].fp == 0);
    CHECK(c.points[c.npoints - 1].tp + c.points[c.npoints - 1].fp == n);
    if (isfinite(m.all.roc_auc))
        CHECK(fabs(trapezoid(&c) - m.all.roc_auc) < 1e-12);
    if (isfinite(m.all.pr_auc))
        CHECK(fabs(ap_sum(&c) - m.all.pr_auc) < 1e-12);
    uint64_t count = 0, pos = 0;
    for (int b = 0; b < TNREC_RELIABILITY_BINS; b++) {
        count += c.bins[b].count;
        pos += c.bins[b].positives;
        CHECK(c.bins[b].count ? c.bins[b].mean_predicted >= c.bins[b].lo && c.bins[b].mean_predicted <= c.bins[b].hi
                              : isnan(c.bins[b].mean_predicted));
    }
    CHECK(count == n && pos == m.all.positives);
    char *json = NULL;
    CHECK_OK(tnrec_curves_json(&c, &json));
    CHECK(json && strstr(json, "\"roc\"") && strstr(json, "\"reliability\""));
    free(json);
    tnrec_curves_free(&c);
}

static void test_curves(void)
{
    const float p[] = { 0.9f, 0.8f, 0.8f, 0.7f, 0.4f, 0.4f, 0.2f, 0.1f, 1.0f, 0.0f };
    const int32_t y[] = { 1, 0, 1, 1, 0, 1, 0, 0, 1, 0 };
    check_against_metrics(p, y, 10);
    const int32_t ones[] = { 1, 1, 1 };
    check_against_metrics(p, ones, 3);
    check_against_metrics(p, y, 0);
    const float bad[] = { 0.5f, NAN };
    tnrec_curves c;
    CHECK(tnrec_curves_compute(&c, bad, y, 2) == TNREC_ERANGE);
    tnrec_curves_free(&c);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_csv(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/scores.csv", dir);
    write_text(path, "key,event_id,time,category,label,probability\n"
                     "train/a.nc,1,2013-01-01T00:00:00Z,TOR,1,0.750000\n"
                     "\"we,ird \"\"key\"\"\",2,2013-01-01T00:00:00Z,NUL,0,0.125000\r\n");
    tnrec_scores s;
    CHECK_OK(tnrec_scores_read_csv(&s, path));
    CHECK(s.n == 2);
    if (s.n == 2) {
        CHECK(!strcmp(s.key[0], "train/a.nc") && s.label[0] == 1 && s.category[0] == TNREC_CAT_TOR);
        CHECK(fabsf(s.prob[0] - 0.75f) < 1e-7f);
        CHECK(!strcmp(s.key[1], "we,ird \"key\"") && s.label[1] == 0 && s.category[1] == TNREC_CAT_NUL);
    }
    tnrec_scores_free(&s);
    static const char *const bad[] = {
        "nope\n",
        "key,event_id,time,category,label,probability\na,1,t,TOR,2,0.5\n",
        "key,event_id,time,category,label,probability\na,1,t,TOR,1,1.5\n",
        "key,event_id,time,category,label,probability\na,1,t,TOR,1\n",
        "key,event_id,time,category,label,probability\n\"unterminated,1,t,TOR,1,0.5\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i]);
        CHECK(tnrec_scores_read_csv(&s, path) == TNREC_ECORRUPT);
        CHECK(strstr(tnrec_error_last(), path) != NULL);
        CHECK(s.n == 0 && s.key == NULL);
    }
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    CHECK(tnrec_scores_read_csv(&s, path) != TNREC_OK);
}

int main(void)
{
    const char *dir = tnrec_test_dir();
    test_curves();
    test_csv(dir);
    return tnrec_test_result("test_report_curves");
}
