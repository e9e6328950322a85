/* mirror/mirror_source.c: turn source arguments into a list of files.
 *
 * "zenodo:RECORD[/FILE]" asks the records API ({zenodo}/api/records/ID)
 * and accepts both field spellings (key/size/checksum and the newer
 * filename/filesize), files as a list or as files.entries; downloads go to
 * {zenodo}/records/ID/files/KEY?download=1, which honours Range (the
 * /api/.../content link does not). "tornet" is the ten v1.1 records.
 * A plain http(s) URL is asked for its size (HEAD, or a one-byte Range GET
 * when HEAD is refused); its MD5 is known only if the server sends
 * x-amz-meta-md5.
 *
 * Invariant: every name handed on is safe (mir_name_is_safe) and unique. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <jansson.h>

#include "mirror_internal.h"

static const char *const tornet_records[] = {
    "12636522", "12637032", "12655151", "12655179", "12655183",
    "12655187", "12655716", "12655717", "12655718", "12655719",
};

void mir_items_free(mir_items *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        free(it->v[i].name);
        free(it->v[i].url);
    }
    free(it->v);
    memset(it, 0, sizeof *it);
}

static tnrec_err items_push(mir_items *it, const char *name, char *url_owned, uint64_t size,
                            const char *md5, const char *where)
{
    if (!mir_name_is_safe(name)) {
        free(url_owned);
        return tnrec__fail(TNREC_EINVAL, "unsafe file name '%s' from %s: names must be relative, "
                           "without '..', '.', empty parts, backslashes or control bytes\n"
                           "hint: this source cannot be mirrored as is", name, where);
    }
    for (size_t i = 0; i < it->n; i++)
        if (strcmp(it->v[i].name, name) == 0) {
            free(url_owned);
            return tnrec__fail(TNREC_EINVAL, "two sources give the same file name '%s' (%s)\n"
                               "hint: name each file once", name, where);
        }
    tnrec_err err = tnrec__grow(&it->v, &it->cap, it->n + 1, sizeof *it->v, "the list of files");
    if (err) {
        free(url_owned);
        return err;
    }
    mir_item *x = &it->v[it->n];
    memset(x, 0, sizeof *x);
    x->name = strdup(name);
    x->url = url_owned;
    x->size = size;
    if (md5)
        snprintf(x->md5, sizeof x->md5, "%s", md5);
    if (!x->name) {
        free(url_owned);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    it->n++;
    return TNREC_OK;
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (!json_is_string(v) && b)
        v = json_object_get(o, b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jsize(json_t *o, uint64_t *out)
{
    json_t *v = json_object_get(o, "size");
    if (!v)
        v = json_object_get(o, "filesize");
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1.8e19) {
        *out = (uint64_t)json_real_value(v);
        return 0;
    }
    return -1;
}

static tnrec_err zenodo_file(json_t *f, const char *zenodo_url, const char *record,
                             const char *only_file, mir_items *out, int *matched)
{
    const char *key = jstr(f, "key", "filename");
    char where[256];
    snprintf(where, sizeof where, "Zenodo record %s", record);
    if (!key)
        return tnrec__fail(TNREC_EFORMAT, "Zenodo record %s: a file entry has neither 'key' nor "
                           "'filename'\nhint: is --zenodo-url a Zenodo server?", record);
    if (only_file && strcmp(key, only_file) != 0)
        return TNREC_OK;
    uint64_t size;
    if (jsize(f, &size))
        return tnrec__fail(TNREC_EFORMAT, "Zenodo record %s: file '%s' has no 'size' or 'filesize'",
                           record, key);
    const char *ck = jstr(f, "checksum", NULL);
    char md5[33] = "";
    if (ck) {
        if (strncasecmp(ck, "md5:", 4) != 0 || strlen(ck + 4) != 32)
            return tnrec__fail(TNREC_EFORMAT, "Zenodo record %s: file '%s' has checksum '%s', "
                               "expected 'md5:<32 hex digits>'", record, key, ck);
        for (int i = 0; i < 32; i++)
            md5[i] = (char)tolower((unsigned char)ck[4 + i]);
        md5[32] = '\0';
        if (!mir_is_md5_hex(md5))
            return tnrec__fail(TNREC_EFORMAT, "Zenodo record %s: file '%s' has a malformed MD5 '%s'",
                               record, key, ck);
    }
    if (!mir_name_is_safe(key))
        return items_push(out, key, NULL, size, md5, where);
    mir_buf u = { 0 };
    mir_buf_addf(&u, "%s/records/%s/files/", zenodo_url, record);
    mir_uri_encode(&u, key, strlen(key), 0);
    mir_buf_adds(&u, "?download=1");
    char *url = mir_buf_take(&u);
    if (!url)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    *matched = 1;
    return items_push(out, key, url, size, md5, where);
}

tnrec_err mir_parse_zenodo_record(const char *json, size_t len, const char *zenodo_url,
                                  const char *record, const char *only_file, mir_items *out)
{
    tnrec_err err = TNREC_OK;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root || !json_is_object(root)) {
        err = tnrec__fail(TNREC_EFORMAT, "Zenodo record %s: the API answer is not a JSON object "
                          "(%s, line %d)\nhint: is --zenodo-url a Zenodo server?", record,
                          root ? "wrong type" : je.text, root ? 0 : je.line);
        goto done;
    }
    json_t *files = json_object_get(root, "files");
    if (json_is_object(files))
        files = json_object_get(files, "entries");
    int matched = 0;
    size_t before = out->n;
    if (json_is_array(files)) {
        size_t i;
        json_t *f;
        json_array_foreach(files, i, f)
        {
            if (!json_is_object(f)) {
                err = tnrec__fail(TNREC_EFORMAT, "Zenodo record %s: a file entry is not an object", record);
                goto done;
            }
            if ((err = zenodo_file(f, zenodo_url, record, only_file, out, &matched)))
                goto done;
        }
    } else if (json_is_object(files)) {
        const char *k;
        json_t *f;
        json_object_foreach(files, k, f)
        {
            if (json_is_object(f) && (err = zenodo_file(f, zenodo_url, record, only_file, out, &matched)))
                goto done;
        }
    } else {
        err = tnrec__fail(TNREC_EFORMAT, "Zenodo record %s has no 'files' list\n"
                          "hint: the record may be restricted or still a draft", record);
        goto done;
    }
    if (only_file && !matched)
        err = tnrec__fail(TNREC_ENOTFOUND, "Zenodo record %s has no file '%s'", record, only_file);
    else if (out->n == before)
        err = tnrec__fail(TNREC_ENOTFOUND, "Zenodo record %s lists no files", record);
done:
    json_decref(root);
    return err;
}

static tnrec_err resolve_zenodo(mir_ctx *c, const char *spec, mir_items *out)
{
    tnrec_err err = TNREC_OK;
    char *record = strdup(spec);
    mir_buf u = { 0 };
    mir_resp resp = { 0 };
    if (!record)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    char *file = strchr(record, '/');
    if (file)
        *file++ = '\0';
    if (!*record || strspn(record, "0123456789") != strlen(record) || strlen(record) > 18) {
        err = tnrec__fail(TNREC_EINVAL, "source 'zenodo:%s': the record must be a number, "
                          "e.g. zenodo:12636522 or zenodo:12636522/catalog.csv", spec);
        goto done;
    }
    if (file && !*file) {
        err = tnrec__fail(TNREC_EINVAL, "source 'zenodo:%s' names an empty file", spec);
        goto done;
    }
    mir_buf_addf(&u, "%s/api/records/%s", c->opt->zenodo_url, record);
    if (u.oom) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    const char *hdr[] = { "Accept: application/json" };
    mir_req req = { .url = u.data, .headers = hdr, .n_headers = 1 };
    if ((err = mir_http_retry(c, &req, &resp)))
        goto done;
    if (resp.status == 404 || resp.status == 410) {
        err = tnrec__fail(TNREC_ENOTFOUND, "Zenodo record %s not found (%s: HTTP %ld)\n"
                          "hint: TorNet v1.1 records are 12636522 and 12637032..12655719; "
                          "'tornet' names all ten", record, u.data, resp.status);
        goto done;
    }
    if (resp.status < 200 || resp.status > 299) {
        err = tnrec__fail(TNREC_ENET, "Zenodo record %s: %s answered HTTP %ld\n"
                          "hint: 429 means Zenodo's guest rate limit; wait and rerun", record, u.data,
                          resp.status);
        goto done;
    }
    err = mir_parse_zenodo_record(resp.body.data ? resp.body.data : "", resp.body.len,
                                  c->opt->zenodo_url, record, file, out);
done:
    mir_resp_free(&resp);
    mir_buf_free(&u);
    free(record);
    return err;
}

/* Name of a URL: its last path segment, decoded. */
static char *url_name(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p = strchr(p, '/');
    if (!p)
        return NULL;
    size_t n = strcspn(p, "?#");
    const char *e = p + n;
    const char *s = e;
    while (s > p && s[-1] != '/')
        s--;
    if (s == e)
        return NULL;
    return mir_uri_decode(s, (size_t)(e - s));
}

static tnrec_err resolve_url(mir_ctx *c, const char *url, mir_items *out)
{
    tnrec_err err = TNREC_OK;
    mir_resp resp = { 0 };
    char *name = url_name(url);
    if (!name) {
        err = tnrec__fail(TNREC_EINVAL, "source '%s' has no file name at the end of its path\n"
                          "hint: name one file, e.g. https://host/file/bucket/tornet_2013.tar.gz", url);
        goto done;
    }
    mir_req req = { .url = url, .head = 1 };
    if ((err = mir_http_retry(c, &req, &resp)))
        goto done;
    uint64_t size = TNREC_MIRROR_SIZE_UNKNOWN;
    char md5[33] = "";
    if (resp.status >= 200 && resp.status <= 299) {
        size = resp.content_length;
    } else if (resp.status == 404 || resp.status == 410) {
        err = tnrec__fail(TNREC_ENOTFOUND, "source '%s' not found (HTTP %ld)", url, resp.status);
        goto done;
    }
    if (strlen(resp.meta_md5) == 32) {
        memcpy(md5, resp.meta_md5, 33);
        for (char *p = md5; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!mir_is_md5_hex(md5))
            md5[0] = '\0';
    }
    if (size == TNREC_MIRROR_SIZE_UNKNOWN) {
        /* HEAD refused or no length: ask for one byte and read the total */
        mir_req r2 = { .url = url, .has_range = 1, .range_from = 0, .range_to = 0 };
        if ((err = mir_http_retry(c, &r2, &resp)))
            goto done;
        if (resp.status == 206 && resp.range_total != TNREC_MIRROR_SIZE_UNKNOWN)
            size = resp.range_total;
        else if (resp.status < 200 || resp.status > 299) {
            err = tnrec__fail(TNREC_ENET, "source '%s' answered HTTP %ld", url, resp.status);
            goto done;
        }
    }
    char *u = strdup(url);
    if (!u) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    err = items_push(out, name, u, size, md5, url);
done:
    mir_resp_free(&resp);
    free(name);
    return err;
}

tnrec_err mir_resolve(mir_ctx *c, const char *const *sources, size_t n, mir_items *out)
{
    tnrec_err err = TNREC_OK;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n && !err; i++) {
        const char *s = sources[i];
        if (strcmp(s, "tornet") == 0) {
            for (size_t k = 0; k < sizeof tornet_records / sizeof *tornet_records && !err; k++)
                err = resolve_zenodo(c, tornet_records[k], out);
        } else if (strncmp(s, "zenodo:", 7) == 0) {
            err = resolve_zenodo(c, s + 7, out);
        } else if (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) {
            err = resolve_url(c, s, out);
        } else {
            err = tnrec__fail(TNREC_EINVAL, "unknown source '%s'\nhint: use zenodo:RECORD, "
                              "zenodo:RECORD/FILE, tornet, or an http(s) URL", s);
        }
    }
    if (err)
        mir_items_free(out);
    return err;
}
