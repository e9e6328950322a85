/* train/scores.c: reads the per-sample CSV of `tnrec predict` back
 * (key,event_id,time,category,label,probability). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "tnrec/report.h"

#define SCORES_HEADER "key,event_id,time,category,label,probability"

/* Reads the first (possibly quoted) field of line into key; returns the
 * rest of the line after its comma, or NULL when malformed. */
static const char *read_key(const char *line, char key[TNREC_KEY_MAX])
{
    size_t k = 0;
    const char *p = line;
    if (*p == '"') {
        for (p++; *p && !(p[0] == '"' && p[1] != '"'); p++) {
            if (p[0] == '"')
                p++;
            if (k + 1 >= TNREC_KEY_MAX)
                return NULL;
            key[k++] = *p;
        }
        if (*p != '"')
            return NULL;
        p++;
    } else {
        for (; *p && *p != ','; p++) {
            if (k + 1 >= TNREC_KEY_MAX)
                return NULL;
            key[k++] = *p;
        }
    }
    key[k] = '\0';
    return *p == ',' ? p + 1 : NULL;
}

/* event_id,time,category,label,probability after the key. */
static int read_rest(const char *p, int32_t *category, int32_t *label, float *prob)
{
    char cat[16];
    int lab;
    double pr;
    int used = 0;
    if (sscanf(p, "%*[^,],%*[^,],%15[^,],%d,%lf%n", cat, &lab, &pr, &used) != 3)
        return -1;
    if (p[used] != '\0' && p[used] != '\r')
        return -1;
    if ((lab != 0 && lab != 1) || !isfinite(pr) || pr < 0 || pr > 1)
        return -1;
    *category = tnrec_category_parse(cat);
    *label = lab;
    *prob = (float)pr;
    return 0;
}

static tnrec_err scores_alloc(tnrec_scores *s, size_t cap)
{
    s->key = malloc(cap * sizeof *s->key);
    s->prob = malloc(cap * sizeof *s->prob);
    s->label = malloc(cap * sizeof *s->label);
    s->category = malloc(cap * sizeof *s->category);
    if (!s->key || !s->prob || !s->label || !s->category) {
        tnrec_scores_free(s);
        return tnrec__fail(TNREC_ENOMEM, "out of memory for %zu scores", cap);
    }
    return TNREC_OK;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n + 1;
}

static tnrec_err parse_lines(tnrec_scores *out, char *text, const char *path)
{
    char *save = NULL;
    size_t lineno = 1;
    char *line = strtok_r(text, "\n", &save);
    if (!line || strncmp(line, SCORES_HEADER, strlen(SCORES_HEADER)) != 0)
        return tnrec__fail(TNREC_ECORRUPT, "'%s' is not a tnrec predict CSV: the first line is not '%s'", path, SCORES_HEADER);
    while ((line = strtok_r(NULL, "\n", &save))) {
        lineno++;
        size_t i = out->n;
        const char *rest = read_key(line, out->key[i]);
        if (!rest || read_rest(rest, &out->category[i], &out->label[i], &out->prob[i]) != 0)
            return tnrec__fail(TNREC_ECORRUPT, "'%s' line %zu: expected key,event_id,time,category,label(0/1),probability(0..1)",
                               path, lineno);
        out->n++;
    }
    return TNREC_OK;
}

tnrec_err tnrec_scores_read_csv(tnrec_scores *out, const char *path)
{
    memset(out, 0, sizeof *out);
    uint8_t *data = NULL;
    size_t len = 0;
    tnrec_err err = tnrec__read_file(path, &data, &len);
    if (err)
        return err;
    char *text = realloc(data, len + 1);
    if (!text) {
        free(data);
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", path);
    }
    text[len] = '\0';
    if ((err = scores_alloc(out, count_lines(text))) == TNREC_OK && (err = parse_lines(out, text, path)) != TNREC_OK)
        tnrec_scores_free(out);
    free(text);
    return err;
}

void tnrec_scores_free(tnrec_scores *s)
{
    free(s->key);
    free(s->prob);
    free(s->label);
    free(s->category);
    memset(s, 0, sizeof *s);
}
