/* ingest/sources.c: enumerate the NetCDF inputs of a build.
 *
 * A source is a directory searched recursively for *.nc (a TORNET_ROOT when
 * it holds catalog.csv: the catalog's `type` and `start_time` then give
 * each file's split and year, and catalog rows whose file is absent become
 * inputs without a path, reported as skipped), a single .nc file, or a text
 * file listing .nc paths (one per line, '#' comments, relative paths taken
 * from the list's directory). Keys are paths relative to the source root
 * ("train/2013/NUL_....nc"), so the same samples get the same keys
 * whichever way they were found. Deliberately not here: reading samples,
 * tarballs (tarball.c). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "ingest_internal.h"

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

int ing_source_is_stream(const char *src)
{
    return strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0 || has_suffix(src, ".tar.gz") ||
           has_suffix(src, ".tgz") || has_suffix(src, ".tar");
}

int ing_split_from_key(const char *key)
{
    const char *p = key;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!e) /* the file name itself is not a split */
            break;
        if (len == 5 && strncmp(p, "train", 5) == 0)
            return TN_SPLIT_TRAIN;
        if (len == 4 && strncmp(p, "test", 4) == 0)
            return TN_SPLIT_TEST;
        p = e + 1;
    }
    return TN_SPLIT_UNKNOWN;
}

static tnrec_err push(ing_input_list *l, const char *key, const char *path, int split, int year, int source)
{
    tnrec_err err = tnrec__grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, "the list of inputs");
    if (err)
        return err;
    ing_input *in = &l->v[l->n];
    in->key = strdup(key);
    in->path = path ? strdup(path) : NULL;
    if (!in->key || (path && !in->path)) {
        free(in->key);
        free(in->path);
        return tnrec__fail(TNREC_ENOMEM, "out of memory listing inputs");
    }
    in->split = split;
    in->year = year;
    in->source = source;
    l->n++;
    return TNREC_OK;
}

void ing_inputs_free(ing_input_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].path);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_input(const void *a, const void *b)
{
    const ing_input *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (x->source > y->source) - (x->source < y->source);
}

void ing_inputs_sort(ing_input_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_input);
}

/* ---- catalog.csv ---- */

typedef struct cat_row {
    char *filename;
    int split, year;
    int seen;
} cat_row;

typedef struct catalog {
    cat_row *rows;
    size_t n;
} catalog;

static void catalog_free(catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->rows[i].filename);
    free(c->rows);
}

/* Splits a CSV line in place (double quotes honoured); returns field count. */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else if (!*p) {
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        char sep = *p;
        *out = '\0';
        fields[n++] = start;
        if (sep != ',')
            break;
        p++;
    }
    return n;
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const cat_row *)a)->filename, ((const cat_row *)b)->filename);
}

static tnrec_err catalog_load(catalog *c, const char *path)
{
    uint8_t *buf = NULL;
    size_t len;
    tnrec_err err = tnrec__read_file(path, &buf, &len);
    if (err)
        return err;
    memset(c, 0, sizeof *c);
    size_t cap = 0;
    int col_file = -1, col_type = -1, col_start = -1, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (!ll)
            continue;
        char *f[64];
        int nf = csv_split(line, f, 64);
        if (lineno++ == 0) {
            for (int i = 0; i < nf; i++) {
                if (strcmp(f[i], "filename") == 0)
                    col_file = i;
                else if (strcmp(f[i], "type") == 0)
                    col_type = i;
                else if (strcmp(f[i], "start_time") == 0)
                    col_start = i;
            }
            if (col_file < 0) {
                err = tnrec__fail(TNREC_EFORMAT, "'%s' has no 'filename' column\n"
                                  "hint: TorNet's catalog.csv starts with a header naming its columns", path);
                goto done;
            }
            continue;
        }
        if (nf <= col_file || !f[col_file][0])
            continue;
        if ((err = tnrec__grow(&c->rows, &cap, c->n + 1, sizeof *c->rows, path)) != TNREC_OK)
            goto done;
        cat_row *r = &c->rows[c->n];
        const char *fn = f[col_file];
        while (fn[0] == '.' && fn[1] == '/')
            fn += 2;
        r->filename = strdup(fn);
        if (!r->filename) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", path);
            goto done;
        }
        r->split = TN_SPLIT_UNKNOWN;
        if (col_type >= 0 && nf > col_type) {
            if (strcmp(f[col_type], "train") == 0)
                r->split = TN_SPLIT_TRAIN;
            else if (strcmp(f[col_type], "test") == 0)
                r->split = TN_SPLIT_TEST;
        }
        if (r->split == TN_SPLIT_UNKNOWN)
            r->split = ing_split_from_key(r->filename);
        r->year = 0;
        int64_t t;
        if (col_start >= 0 && nf > col_start && ing_parse_datetime(f[col_start], &t) == 0)
            r->year = ing_year_of(t);
        r->seen = 0;
        c->n++;
    }
    qsort(c->rows, c->n, sizeof *c->rows, cmp_row);
done:
    free(buf);
    if (err) {
        catalog_free(c);
        memset(c, 0, sizeof *c);
    }
    return err;
}

static cat_row *catalog_find(catalog *c, const char *key)
{
    cat_row k = { (char *)key, 0, 0, 0 };
    return c->n ? bsearch(&k, c->rows, c->n, sizeof *c->rows, cmp_row) : NULL;
}

/* ---- directories ---- */

static tnrec_err walk(ing_input_list *l, const char *root, const char *rel, catalog *cat, int source)
{
    char dirpath[4096];
    snprintf(dirpath, sizeof dirpath, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dirpath);
    if (!d)
        return tnrec__fail_errno(TNREC_EIO, errno, "cannot list directory '%s'", dirpath);
    tnrec_err err = TNREC_OK;
    struct dirent *e;
    while (!err && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char r2[4096], full[4096];
        if ((size_t)snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >= sizeof r2 ||
            (size_t)snprintf(full, sizeof full, "%s/%s", root, r2) >= sizeof full) {
            err = tnrec__fail(TNREC_EINVAL, "path too long under '%s'", root);
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0)
            continue; /* dangling link: not an input */
        if (S_ISDIR(st.st_mode)) {
            err = walk(l, root, r2, cat, source);
        } else if (S_ISREG(st.st_mode) && has_suffix(e->d_name, ".nc")) {
            int split = ing_split_from_key(r2), year = 0;
            cat_row *row = cat ? catalog_find(cat, r2) : NULL;
            if (row) {
                row->seen = 1;
                if (row->split != TN_SPLIT_UNKNOWN)
                    split = row->split;
                year = row->year;
            }
            err = push(l, r2, full, split, year, source);
        }
    }
    closedir(d);
    return err;
}

static tnrec_err add_list_file(ing_input_list *l, const char *src, int source)
{
    uint8_t *buf = NULL;
    size_t len;
    tnrec_err err = tnrec__read_file(src, &buf, &len);
    if (err)
        return err;
    char base[4096];
    snprintf(base, sizeof base, "%s", src);
    char *slash = strrchr(base, '/');
    if (slash)
        slash[1] = '\0';
    else
        base[0] = '\0';
    if (memchr(buf, '\0', len)) {
        free(buf);
        return tnrec__fail(TNREC_EINVAL, "source '%s' is neither a directory, a .nc file nor a text list of .nc paths",
                           src);
    }
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        char full[4096];
        if (line[0] == '/')
            snprintf(full, sizeof full, "%s", line);
        else
            snprintf(full, sizeof full, "%s%s", base, line);
        const char *key = line;
        while (key[0] == '.' && key[1] == '/')
            key += 2;
        err = push(l, key, full, ing_split_from_key(key), 0, source);
    }
    free(buf);
    return err;
}

tnrec_err ing_inputs_add_source(ing_input_list *l, const char *src, int source)
{
    struct stat st;
    if (stat(src, &st) != 0)
        return tnrec__fail_errno(TNREC_ENOTFOUND, errno, "source '%s'", src);
    if (S_ISDIR(st.st_mode)) {
        char catpath[4096];
        snprintf(catpath, sizeof catpath, "%s/catalog.csv", src);
        catalog cat;
        int have_cat = access(catpath, R_OK) == 0;
        if (have_cat) {
            tnrec_err err = catalog_load(&cat, catpath);
            if (err)
                return err;
        }
        tnrec_err err = walk(l, src, "", have_cat ? &cat : NULL, source);
        if (!err && have_cat) {
            for (size_t i = 0; i < cat.n && !err; i++)
                if (!cat.rows[i].seen)
                    err = push(l, cat.rows[i].filename, NULL, cat.rows[i].split, cat.rows[i].year, source);
        }
        if (have_cat)
            catalog_free(&cat);
        return err;
    }
    if (!S_ISREG(st.st_mode))
        return tnrec__fail(TNREC_EINVAL, "source '%s' is not a directory or a file", src);
    if (has_suffix(src, ".nc")) {
        const char *key = src;
        while (key[0] == '.' && key[1] == '/')
            key += 2;
        while (key[0] == '/')
            key++;
        return push(l, key, src, ing_split_from_key(key), 0, source);
    }
    return add_list_file(l, src, source);
}
