/* ingest/merge.c: join the parts of a build (`tnrec merge`), and copy the
 * records of a finished shard.
 *
 * A part K/N of a build holds the records of a contiguous range of the
 * sorted inputs, so parts 0..N-1 in order hold exactly the records of a
 * one-machine build in its order. Merging appends them in that order to a
 * new dataset writer with the build's shard limits: the writer cuts shards
 * at the same places, so shards, manifest and records equal those of the
 * one-machine build. Records are copied as stored (compressed frame,
 * checksum checked, and index metadata), never decoded.
 * An out_dir that holds a complete dataset already is left as it is: the
 * merge is done when the dataset has the parts' build parameters, and
 * refused otherwise, so that a failing merge cannot lose it.
 * Deliberately not here: merging datasets of different builds (refused). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_internal.h"
#include "common.h"
#include "json_util.h"
#include "tnrec/ingest.h"

tnrec_err ing_copy_shard(tnrec_dataset_writer *w, const char *path, tnrec_blob *blob, tnrec_class_counts *counts,
                        uint64_t *n, int (*after)(void *ctx), void *ctx)
{
    tnrec_shard *sh = NULL;
    tnrec_err err = tnrec_shard_open(&sh, path);
    for (uint64_t i = 0; !err && i < tnrec_shard_count(sh); i++) {
        const tnrec_record_info *info = tnrec_shard_info(sh, i);
        if ((err = tnrec_shard_read_blob(blob, sh, i)) != TNREC_OK ||
            (err = tnrec_dataset_writer_append(w, blob, &info->meta)) != TNREC_OK)
            break;
        tnrec_class_counts_add(counts, &info->meta);
        (*n)++;
        if (after && after(ctx))
            err = tnrec__fail(TNREC_ECANCELED, "copy of '%s' stopped after record %llu", path,
                              (unsigned long long)(i + 1));
    }
    tnrec_shard_close(sh);
    return err;
}

typedef struct part {
    tnrec_dataset *ds;
    json_t *params;           /* build parameters without "part" */
    int index, count;
    const char *dir;
} part;

static int cmp_part(const void *a, const void *b)
{
    return ((const part *)a)->index - ((const part *)b)->index;
}

static int same_schema(const tnrec_schema *a, const tnrec_schema *b)
{
    if (a->nfields != b->nfields)
        return 0;
    for (uint32_t i = 0; i < a->nfields; i++) {
        const tnrec_field *x = &a->fields[i], *y = &b->fields[i];
        if (strcmp(x->name, y->name) || x->encoding != y->encoding || x->dtype != y->dtype || x->ndim != y->ndim ||
            x->offset != y->offset || x->scale != y->scale)
            return 0;
        for (uint32_t d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d])
                return 0;
    }
    return 1;
}

tnrec_err tnrec_merge_run(tnrec_build_summary *out, const char *out_dir, const char *const *parts, size_t nparts)
{
    return tnrec_merge_run_opts(out, out_dir, parts, nparts, NULL);
}

static int merge_stopped(const tnrec_merge_options *opt)
{
    return opt && opt->stop && *opt->stop;
}

static tnrec_err merge_cancel(const char *out_dir, uint64_t done, uint64_t total)
{
    return tnrec__fail(TNREC_ECANCELED, "merge into '%s' stopped after %llu of %llu records; nothing was kept\n"
                       "hint: run the same command again", out_dir, (unsigned long long)done,
                       (unsigned long long)total);
}

/* What the copy reports after each record, and where it reads the stop. */
typedef struct merge_step {
    const tnrec_merge_options *opt;
    const uint64_t *done;
    uint64_t total;
} merge_step;

/* After each record: progress, and whether to stop. Per record rather than
 * per shard: a shard may hold 512 MiB, seconds of copying. */
static int after_record(void *ctx)
{
    const merge_step *m = ctx;
    if (m->opt && m->opt->progress)
        m->opt->progress(m->opt->progress_ctx, *m->done, m->total);
    return merge_stopped(m->opt);
}

tnrec_err tnrec_merge_run_opts(tnrec_build_summary *out, const char *out_dir, const char *const *parts,
                               size_t nparts, const tnrec_merge_options *opt)
{
    tnrec_err err = TNREC_OK;
    int made_dir = 0;
    part *pv = NULL;
    tnrec_dataset_writer *w = NULL;
    char *params = NULL;
    tnrec_blob blob;
    memset(&blob, 0, sizeof blob);
    tnrec_build_summary sum;
    memset(&sum, 0, sizeof sum);
    if (out)
        memset(out, 0, sizeof *out);
    if (!nparts)
        return tnrec__fail(TNREC_EINVAL, "no parts to merge\nhint: tnrec merge PART_DIR... -o OUT");
    if (!out_dir || !*out_dir)
        return tnrec__fail(TNREC_EINVAL, "no output directory\nhint: give one with -o DIR");
    pv = calloc(nparts, sizeof *pv);
    if (!pv)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    for (size_t i = 0; i < nparts; i++) {
        part *p = &pv[i];
        p->dir = parts[i];
        char rp1[4096], rp2[4096];
        if (realpath(parts[i], rp1) && realpath(out_dir, rp2) && strcmp(rp1, rp2) == 0) {
            err = tnrec__fail(TNREC_EINVAL, "output '%s' is also a part\nhint: merge into a new directory", out_dir);
            goto done;
        }
        if ((err = tnrec_dataset_open(&p->ds, parts[i])) != TNREC_OK)
            goto done;
        json_error_t jerr;
        p->params = json_loads(tnrec_dataset_build_params(p->ds), 0, &jerr);
        if (!json_is_object(p->params)) {
            err = tnrec__fail(TNREC_EFORMAT, "'%s' has no build parameters\nhint: only datasets made by "
                              "'tnrec build --part K/N' can be merged", parts[i]);
            goto done;
        }
        json_t *jp = json_object_get(p->params, "part");
        if (jp) {
            p->index = (int)tnrec__json_int(jp, "index");
            p->count = (int)tnrec__json_int(jp, "count");
            json_object_del(p->params, "part");
        } else {
            p->index = 0;
            p->count = 1;
        }
    }
    qsort(pv, nparts, sizeof *pv, cmp_part);
    for (size_t i = 0; i < nparts; i++) {
        if (pv[i].count != (int)nparts || pv[i].index != (int)i) {
            err = tnrec__fail(TNREC_EINVAL, "parts do not form 0..%zu of %zu: '%s' is part %d/%d\n"
                              "hint: give every part directory of the build exactly once", nparts - 1, nparts,
                              pv[i].dir, pv[i].index, pv[i].count);
            goto done;
        }
        if (!json_equal(pv[i].params, pv[0].params) ||
            !same_schema(tnrec_dataset_schema(pv[i].ds), tnrec_dataset_schema(pv[0].ds))) {
            err = tnrec__fail(TNREC_EINVAL, "'%s' and '%s' were built with different options\n"
                              "hint: merge only the parts of one build", pv[0].dir, pv[i].dir);
            goto done;
        }
    }
    params = json_dumps(pv[0].params, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    if (!params) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    /* A complete dataset in out_dir stays as it is: the same merge done
     * already, or refused (as build does), never overwritten. */
    int complete = 0;
    if ((err = ing_check_existing(out_dir, params, "merge again", &complete)) != TNREC_OK)
        goto done;
    if (complete) {
        sum.up_to_date = 1;
        sum.bytes_out = ing_dataset_bytes(out_dir, &sum);
        goto done;
    }
    tnrec_dataset_options dopt;
    memset(&dopt, 0, sizeof dopt);
    dopt.max_shard_bytes = (uint64_t)tnrec__json_int(pv[0].params, "shard_bytes");
    dopt.max_shard_records = (uint64_t)tnrec__json_int(pv[0].params, "shard_records");
    made_dir = access(out_dir, F_OK) != 0;
    if ((err = tnrec_dataset_writer_open(&w, out_dir, tnrec_dataset_schema(pv[0].ds), &dopt)) != TNREC_OK)
        goto done;
    merge_step step = { .opt = opt, .done = &sum.samples };
    for (size_t i = 0; i < nparts; i++)
        step.total += tnrec_dataset_count(pv[i].ds);
    for (size_t i = 0; i < nparts && !err; i++) {
        for (size_t s = 0; s < tnrec_dataset_shard_count(pv[i].ds) && !err; s++) {
            if (merge_stopped(opt)) {
                err = merge_cancel(out_dir, sum.samples, step.total);
                break;
            }
            err = ing_copy_shard(w, tnrec_shard_path(tnrec_dataset_shard(pv[i].ds, s)), &blob, &sum.counts,
                                &sum.samples, after_record, &step);
            if (err == TNREC_ECANCELED)
                err = merge_cancel(out_dir, sum.samples, step.total);
        }
        for (size_t k = 0; k < tnrec_dataset_skipped_count(pv[i].ds) && !err; k++) {
            const tnrec_skipped *sk = tnrec_dataset_skipped(pv[i].ds, k);
            err = tnrec_dataset_writer_skip(w, sk->input, sk->reason);
            sum.skipped++;
        }
    }
    if (err)
        goto done;
    err = tnrec_dataset_writer_close(w, params);
    w = NULL;
    if (err)
        goto done;
    sum.bytes_out = ing_dataset_bytes(out_dir, NULL);
done:
    tnrec_dataset_writer_abort(w);
    if (err && made_dir)
        rmdir(out_dir); /* only when empty: a failed merge leaves no directory it made */
    tnrec_blob_free(&blob);
    free(params);
    for (size_t i = 0; pv && i < nparts; i++) {
        tnrec_dataset_close(pv[i].ds);
        json_decref(pv[i].params);
    }
    free(pv);
    if (out)
        *out = sum;
    return err;
}
