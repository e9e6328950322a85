/* plot/report_sections.c: the sections of the HTML report: training
 * curves, the evaluation's charts and tables, the datasets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "common.h"
#include "html.h"
#include "report_internal.h"

#define HIST_BINS 20
#define BLUE 0x1f77b4u
#define ORANGE 0xff7f0eu
#define GREEN 0x2ca02cu
#define RED 0xd62728u
#define PURPLE 0x9467bdu
#define GREY 0x7f7f7fu

static const uint32_t palette[7] = { GREY, BLUE, GREEN, ORANGE, RED, PURPLE, 0x8c564bu };
static const char *const category_names[3] = { "TOR", "NUL", "WRN" };

static chart_series line(const char *label, const double *x, const double *y, size_t n, uint32_t rgb, int dashed)
{
    /* One point makes no line: a dot instead. */
    return (chart_series){ .label = label, .x = x, .y = y, .n = n, .rgb = rgb, .style = n == 1 ? CHART_POINTS : CHART_LINE,
                           .dashed = dashed };
}

static void mark_best(chart *c, const report_history *h)
{
    if (h->best_epoch > 0)
        c->marks[c->nmarks++] = (chart_mark){ (double)h->best_epoch, NAN, "best", RED };
}

static int any_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            return 1;
    return 0;
}

tnrec_err report_training(FILE *f, const report_history *h)
{
    fprintf(f, "<h2 id=\"training\">Training</h2>\n<p>%zu epoch%s; best checkpoint: epoch %d (dashed red line).</p>\n",
            h->n, h->n == 1 ? "" : "s", h->best_epoch);
    fputs("<div class=\"charts\">\n", f);
    chart loss = { .title = "Loss", .xlabel = "epoch", .xinteger = 1, .ylabel = "loss" };
    loss.series[loss.nseries++] = line("loss", h->epoch, h->v[H_LOSS], h->n, BLUE, 0);
    if (any_finite(h->v[H_VAL_LOSS], h->n))
        loss.series[loss.nseries++] = line("val_loss", h->epoch, h->v[H_VAL_LOSS], h->n, ORANGE, 0);
    mark_best(&loss, h);
    chart skill = { .title = "ROC-AUC, PR-AUC, CSI", .xlabel = "epoch", .xinteger = 1, .ylabel = "score", .ymin = 0, .ymax = 1 };
    static const int keys[6] = { H_VAL_ROC, H_VAL_PR, H_VAL_CSI, H_ROC, H_PR, H_CSI };
    static const char *const names[6] = { "val_roc_auc", "val_pr_auc", "val_csi", "roc_auc", "pr_auc", "csi" };
    static const uint32_t colors[6] = { BLUE, ORANGE, GREEN, BLUE, ORANGE, GREEN };
    for (int k = 0; k < 6; k++)
        if (any_finite(h->v[keys[k]], h->n))
            skill.series[skill.nseries++] = line(names[k], h->epoch, h->v[keys[k]], h->n, colors[k], k >= 3);
    mark_best(&skill, h);
    chart lr = { .title = "Learning rate", .xlabel = "epoch", .xinteger = 1, .ylabel = "learning rate" };
    lr.series[lr.nseries++] = line("lr", h->epoch, h->v[H_LR], h->n, PURPLE, 0);
    mark_best(&lr, h);
    tnrec_err err = html_chart(f, &loss);
    if (!err)
        err = html_chart(f, &skill);
    if (!err)
        err = html_chart(f, &lr);
    fputs("</div>\n", f);
    return err;
}

/* The curve point with the highest CSI, tp / (P + fp). */
static const tnrec_curve_point *best_csi_point(const tnrec_curves *c)
{
    const tnrec_curve_point *best = &c->points[0];
    double bcsi = -1;
    for (size_t i = 0; i < c->npoints; i++) {
        double d = (double)(c->positives + c->points[i].fp);
        double csi = d > 0 ? (double)c->points[i].tp / d : 0;
        if (csi > bcsi) {
            bcsi = csi;
            best = &c->points[i];
        }
    }
    return best;
}

static tnrec_err curve_charts(FILE *f, const report_eval *e)
{
    const tnrec_curves *c = &e->curves;
    const tnrec_binary_metrics *a = &e->m.all;
    size_t n = c->npoints;
    double *fpr = malloc((n + 1) * sizeof *fpr), *tpr = malloc((n + 1) * sizeof *tpr), *prec = malloc((n + 1) * sizeof *prec);
    double mp[TNREC_RELIABILITY_BINS], obs[TNREC_RELIABILITY_BINS];
    tnrec_err err = TNREC_OK;
    if (!fpr || !tpr || !prec)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for the curves");
    for (size_t i = 0; !err && i < n; i++) {
        fpr[i] = c->points[i].fpr;
        tpr[i] = c->points[i].tpr;
        prec[i] = c->points[i].precision;
    }
    for (int b = 0; b < TNREC_RELIABILITY_BINS; b++) {
        mp[b] = c->bins[b].mean_predicted;
        obs[b] = c->bins[b].observed;
    }
    char roc_title[64], pr_title[64];
    snprintf(roc_title, sizeof roc_title, "ROC (AUC %.4f)", a->roc_auc);
    snprintf(pr_title, sizeof pr_title, "Precision-recall (AP %.4f)", a->pr_auc);
    double P = (double)a->positives, N = (double)(a->n - a->positives);
    chart roc = { .title = roc_title, .xlabel = "false positive rate", .ylabel = "true positive rate (POD)",
                  .xmin = 0, .xmax = 1, .ymin = 0, .ymax = 1, .diagonal = 1, .width = 340, .height = 320 };
    roc.series[roc.nseries++] = line(NULL, fpr, tpr, n, BLUE, 0);
    roc.marks[roc.nmarks++] = (chart_mark){ N > 0 ? (double)a->fp / N : 0, P > 0 ? (double)a->tp / P : 0, "p > 0.5", RED };
    chart pr = { .title = pr_title, .xlabel = "recall (POD)", .ylabel = "precision (1 - FAR)", .xmin = 0, .xmax = 1,
                 .ymin = 0, .ymax = 1, .width = 340, .height = 320 };
    pr.series[pr.nseries++] = line(NULL, tpr, prec, n, BLUE, 0);
    pr.marks[pr.nmarks++] = (chart_mark){ a->recall, a->tp + a->fp ? a->precision : 1.0, "p > 0.5", RED };
    chart rel = { .title = "Reliability", .xlabel = "mean predicted probability", .ylabel = "observed frequency",
                  .xmin = 0, .xmax = 1, .ymin = 0, .ymax = 1, .diagonal = 1, .width = 340, .height = 320 };
    rel.series[rel.nseries++] = line(NULL, mp, obs, TNREC_RELIABILITY_BINS, BLUE, 0);
    rel.series[rel.nseries++] = (chart_series){ .x = mp, .y = obs, .n = TNREC_RELIABILITY_BINS, .rgb = BLUE,
                                                .style = CHART_POINTS };
    if (!err)
        err = html_chart(f, &roc);
    if (!err)
        err = html_chart(f, &pr);
    if (!err)
        err = html_chart(f, &rel);
    free(fpr);
    free(tpr);
    free(prec);
    return err;
}

/* Histogram of the scores of the samples group(i) == g, as fractions of the group. */
typedef int (*group_fn)(const report_eval *e, size_t i);
static int group_label(const report_eval *e, size_t i) { return e->scores.label[i]; }
static int group_category(const report_eval *e, size_t i) { return e->scores.category[i]; }
static int group_ef(const report_eval *e, size_t i) { return e->ef[i] + 1; }

static size_t histogram(const report_eval *e, group_fn group, int g, double *y)
{
    size_t total = 0;
    memset(y, 0, HIST_BINS * sizeof *y);
    for (size_t i = 0; i < e->scores.n; i++)
        if (group(e, i) == g) {
            int b = (int)((double)e->scores.prob[i] * HIST_BINS);
            y[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b] += 1;
            total++;
        }
    for (int b = 0; b < HIST_BINS; b++)
        y[b] = total ? y[b] / (double)total : NAN;
    return total;
}

static tnrec_err histogram_chart(FILE *f, const report_eval *e, const char *title, group_fn group, int ngroups,
                                 const char *const *names)
{
    static double x[HIST_BINS];
    for (int b = 0; b < HIST_BINS; b++)
        x[b] = (double)b / HIST_BINS;
    double (*y)[HIST_BINS] = calloc((size_t)ngroups, sizeof *y);
    char (*labels)[48] = calloc((size_t)ngroups, sizeof *labels);
    if (!y || !labels) {
        free(y);
        free(labels);
        return tnrec__fail(TNREC_ENOMEM, "out of memory for a histogram");
    }
    chart c = { .title = title, .xlabel = "probability", .ylabel = "fraction of the group", .xmin = 0, .xmax = 1,
                .width = 340, .height = 320 };
    for (int g = 0; g < ngroups && c.nseries < CHART_MAX_SERIES; g++) {
        size_t n = histogram(e, group, g, y[g]);
        if (!n)
            continue;
        snprintf(labels[g], sizeof labels[g], "%s (%zu)", names[g], n);
        c.series[c.nseries++] = (chart_series){ .label = labels[g], .x = x, .y = y[g], .n = HIST_BINS,
                                                .rgb = palette[(g + 1) % 7], .style = CHART_HIST,
                                                .bar_width = 1.0 / HIST_BINS };
    }
    tnrec_err err = html_chart(f, &c);
    free(y);
    free(labels);
    return err;
}

static tnrec_err histograms(FILE *f, const report_eval *e)
{
    static const char *const classes[2] = { "no tornado", "tornado" };
    static const char *const efs[7] = { "no EF", "EF0", "EF1", "EF2", "EF3", "EF4", "EF5" };
    tnrec_err err = histogram_chart(f, e, "Scores by class", group_label, 2, classes);
    if (!err)
        err = histogram_chart(f, e, "Scores by category", group_category, 3, category_names);
    if (!err)
        err = histogram_chart(f, e, "Scores by EF number", group_ef, 7, efs);
    return err;
}

static void confusion(FILE *f, const char *id, const char *title, double thr, const char *rule, uint64_t tp,
                      uint64_t fp, uint64_t fn, uint64_t tn)
{
    fprintf(f, "<table class=\"confusion\" id=\"%s\"><caption>%s: p %s ", id, title, rule);
    html_num(f, thr);
    fprintf(f, "</caption>\n<tr><th></th><th>detected</th><th>not detected</th></tr>\n"
               "<tr><th>tornado</th><td data-key=\"tp\">%llu</td><td data-key=\"fn\">%llu</td></tr>\n"
               "<tr><th>no tornado</th><td data-key=\"fp\">%llu</td><td data-key=\"tn\">%llu</td></tr>\n</table>\n",
            (unsigned long long)tp, (unsigned long long)fn, (unsigned long long)fp, (unsigned long long)tn);
}

static void metrics_row(FILE *f, const char *name, const tnrec_binary_metrics *b)
{
    const double v[] = { b->roc_auc, b->pr_auc, b->accuracy, b->precision, b->recall, b->far, b->f1, b->csi,
                         b->csi_best, b->csi_best_threshold };
    static const char *const keys[] = { "roc_auc", "pr_auc", "accuracy", "precision", "recall", "far", "f1", "csi",
                                        "csi_best", "csi_best_threshold" };
    fprintf(f, "<tr data-category=\"%s\"><th>%s</th><td data-key=\"n\">%llu</td><td data-key=\"positives\">%llu</td>", name,
            name, (unsigned long long)b->n, (unsigned long long)b->positives);
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        fprintf(f, "<td data-key=\"%s\">", keys[k]);
        html_num(f, v[k]);
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
}

static void metrics_table(FILE *f, const tnrec_metrics *m)
{
    fputs("<table id=\"metrics\"><tr><th></th><th>n</th><th>positives</th><th>ROC-AUC</th><th>PR-AUC</th><th>accuracy</th>"
          "<th>precision</th><th>recall</th><th>FAR</th><th>F1</th><th>CSI</th><th>best CSI</th><th>at threshold</th></tr>\n",
          f);
    metrics_row(f, "all", &m->all);
    for (int c = 0; c < 3; c++)
        if (m->category[c].n)
            metrics_row(f, category_names[c], &m->category[c]);
    fputs("</table>\n<p class=\"note\">Threshold metrics at p &gt; 0.5; NaN where a category has one class. "
          "The same numbers as <code>tnrec eval --json</code>.</p>\n",
          f);
}

static void reliability_table(FILE *f, const tnrec_curves *c)
{
    fputs("<details><summary>Reliability bins</summary>\n<table id=\"reliability\"><tr><th>probability</th><th>samples</th>"
          "<th>tornadoes</th><th>mean predicted</th><th>observed frequency</th></tr>\n", f);
    for (int b = 0; b < TNREC_RELIABILITY_BINS; b++) {
        const tnrec_reliability_bin *r = &c->bins[b];
        fprintf(f, "<tr><th>%.1f - %.1f</th><td data-key=\"count\">%llu</td><td data-key=\"positives\">%llu</td><td>", r->lo,
                r->hi, (unsigned long long)r->count, (unsigned long long)r->positives);
        html_num(f, r->mean_predicted);
        fputs("</td><td>", f);
        html_num(f, r->observed);
        fputs("</td></tr>\n", f);
    }
    fputs("</table></details>\n", f);
}

tnrec_err report_evaluation(FILE *f, const report_eval *e)
{
    const tnrec_binary_metrics *a = &e->m.all;
    fputs("<h2 id=\"evaluation\">Evaluation on ", f);
    html_text(f, e->path);
    fprintf(f, "</h2>\n<p id=\"summary\">loss <span data-key=\"loss\">");
    html_num(f, e->m.loss);
    fputs("</span>, ROC-AUC <span data-key=\"roc_auc\">", f);
    html_num(f, a->roc_auc);
    fputs("</span>, PR-AUC <span data-key=\"pr_auc\">", f);
    html_num(f, a->pr_auc);
    fprintf(f, "</span>, %llu samples, %llu tornadoes.</p>\n<div class=\"charts\">\n", (unsigned long long)a->n,
            (unsigned long long)a->positives);
    tnrec_err err = curve_charts(f, e);
    if (!err)
        err = histograms(f, e);
    fputs("</div>\n", f);
    if (err)
        return err;
    reliability_table(f, &e->curves);
    fputs("<h3>Confusion matrices</h3>\n<div class=\"row\">\n", f);
    confusion(f, "confusion-0.5", "threshold 0.5", 0.5, "&gt;", a->tp, a->fp, a->fn, a->tn);
    const tnrec_curve_point *b = best_csi_point(&e->curves);
    confusion(f, "confusion-best", "best CSI", b->threshold, "&ge;", b->tp, b->fp, e->curves.positives - b->tp,
              e->curves.n - e->curves.positives - b->fp);
    fputs("</div>\n<h3>Metrics by category</h3>\n", f);
    metrics_table(f, &e->m);
    return TNREC_OK;
}

void report_dataset(FILE *f, const char *title, const tnrec_dataset *ds)
{
    const tnrec_class_counts *c = tnrec_dataset_counts(ds);
    fputs("<h3>", f);
    html_text(f, title);
    fprintf(f, "</h3>\n<table class=\"manifest\"><tr><th>records</th><td>%llu</td></tr>\n"
               "<tr><th>tornado / no tornado</th><td>%llu / %llu</td></tr>\n"
               "<tr><th>TOR / NUL / WRN</th><td>%llu / %llu / %llu</td></tr>\n"
               "<tr><th>skipped inputs</th><td>%zu</td></tr>\n</table>\n",
            (unsigned long long)tnrec_dataset_count(ds), (unsigned long long)c->label[1], (unsigned long long)c->label[0],
            (unsigned long long)c->category[0], (unsigned long long)c->category[1], (unsigned long long)c->category[2],
            tnrec_dataset_skipped_count(ds));
    size_t ns = tnrec_dataset_skipped_count(ds);
    if (!ns)
        return;
    fputs("<details><summary>skipped inputs</summary><ul>\n", f);
    for (size_t i = 0; i < ns && i < 100; i++) {
        const tnrec_skipped *s = tnrec_dataset_skipped(ds, i);
        fputs("<li>", f);
        html_text(f, s->input);
        fputs(": ", f);
        html_text(f, s->reason);
        fputs("</li>\n", f);
    }
    if (ns > 100)
        fprintf(f, "<li>and %zu more</li>\n", ns - 100);
    fputs("</ul></details>\n", f);
}
