/* plot/report_gallery.c: the report's sample pictures: the highest-scoring
 * false alarms, the lowest-scoring tornadoes and the best detections, each
 * drawn by tnrec_plot_record to a temporary PNG and inlined. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "html.h"
#include "report_internal.h"
#include "tnrec/plot.h"

#define THUMB_W 480u
#define THUMB_H 300u

typedef struct pick { size_t i; float p; } pick;

static int by_p_desc(const void *a, const void *b)
{
    float x = ((const pick *)a)->p, y = ((const pick *)b)->p;
    return x > y ? -1 : x < y ? 1 : 0;
}
static int by_p_asc(const void *a, const void *b) { return by_p_desc(b, a); }

/* The samples with label `label`, sorted by score (descending or not). */
static size_t select_samples(const report_eval *e, int label, int descending, pick *out)
{
    size_t k = 0;
    for (size_t i = 0; i < e->scores.n; i++)
        if (e->scores.label[i] == label)
            out[k++] = (pick){ i, e->scores.prob[i] };
    qsort(out, k, sizeof *out, descending ? by_p_desc : by_p_asc);
    return k;
}

/* Draws record `index` to the temporary file tmp: DBZ and VEL when the
 * record has them, else its every moment. */
static tnrec_err draw_thumb(const report_eval *e, uint64_t index, const char *tmp)
{
    tnrec_plot_options o;
    tnrec_plot_options_init(&o);
    o.width = THUMB_W;
    o.height = THUMB_H;
    o.fields[0] = "DBZ";
    o.fields[1] = "VEL";
    o.nfields = 2;
    if (tnrec_plot_record(e->ds, e->path, index, &o, tmp, NULL) == TNREC_OK)
        return TNREC_OK;
    o.nfields = 0;
    return tnrec_plot_record(e->ds, e->path, index, &o, tmp, NULL);
}

static tnrec_err temp_png(char *buf, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    if (snprintf(buf, cap, "%s/tnrec-report-%ld.png", dir, (long)getpid()) >= (int)cap)
        return tnrec__fail(TNREC_EINVAL, "TMPDIR '%s' is too long a path", dir);
    return TNREC_OK;
}

static tnrec_err figure(FILE *f, const report_eval *e, size_t i, const char *tmp)
{
    const char *key = e->scores.key[i];
    tnrec_err err = draw_thumb(e, e->index[i], tmp);
    if (!err) {
        fputs("<figure>", f);
        err = html_image_file(f, tmp, "image/png", key);
        fputs("<figcaption><span class=\"key\">", f);
        html_text(f, key);
        fprintf(f, "</span><br>%s", tnrec_category_name(e->scores.category[i]));
        if (e->ef[i] >= 0)
            fprintf(f, " EF%d", (int)e->ef[i]);
        fprintf(f, ", score <span class=\"score\">%.4f</span></figcaption></figure>\n", (double)e->scores.prob[i]);
    }
    unlink(tmp);
    return err;
}

static tnrec_err row(FILE *f, const report_eval *e, const char *id, const char *title, const pick *p, size_t n,
                     int per_row, const char *tmp)
{
    fprintf(f, "<h3>%s</h3>\n<div class=\"gallery\" id=\"%s\">\n", title, id);
    if (!n)
        fputs("<p class=\"note\">none</p>\n", f);
    tnrec_err err = TNREC_OK;
    for (size_t k = 0; k < n && k < (size_t)per_row && !err; k++)
        err = figure(f, e, p[k].i, tmp);
    fputs("</div>\n", f);
    return err;
}

tnrec_err report_gallery(FILE *f, const report_eval *e, int per_row)
{
    char tmp[4200];
    tnrec_err err = temp_png(tmp, sizeof tmp);
    if (err)
        return err;
    pick *p = malloc((e->scores.n + 1) * sizeof *p);
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the gallery");
    fputs("<h2 id=\"gallery\">Samples</h2>\n<p class=\"note\">DBZ and VEL of the last frame, lowest sweep.</p>\n", f);
    size_t n = select_samples(e, 0, 1, p);
    err = row(f, e, "false-alarms", "Highest-scoring false alarms", p, n, per_row, tmp);
    if (!err) {
        n = select_samples(e, 1, 0, p);
        err = row(f, e, "misses", "Missed tornadoes (lowest-scoring tornadoes)", p, n, per_row, tmp);
    }
    if (!err) {
        n = select_samples(e, 1, 1, p);
        err = row(f, e, "detections", "Best detections", p, n, per_row, tmp);
    }
    free(p);
    return err;
}
