/* tests/train/test_train_run.c: the loader (coverage, shuffling, exact
 * mid-epoch start, rank parts, channel layout, peeking at the next
 * batch), training runs (learning the
 * fixture's signature, exact resume, early stopping restoring the best
 * epoch), evaluation and predictions, and a corrupted shard mid-epoch. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tnrec_test.h"
#include "train_fixture.h"

#define T_FR 4
#define T_AZ 12
#define T_RG 16
#define SPEC "c8,p122,s0.1,c8,p222,g,d8,x0.1,o"

static char train_dir[4096], val_dir[4096], bad_dir[4096];

/* With range_limits asked, each sample's window comes with it (the
 * fixture puts record i at 5 km x (i mod 7)); without, the batch has none. */
static void test_loader_range_limits(void)
{
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, train_dir));
    if (!ds)
        return;
    for (int want = 0; want < 2; want++) {
        tnrec_loader_config lc = { .batch = 9, .threads = 2, .shuffle = 1, .seed = 4, .range_limits = want };
        tnrec_loader *l = NULL;
        CHECK_OK(tnrec_loader_create(&l, ds, &lc));
        if (!l)
            break;
        CHECK_OK(tnrec_loader_start(l, 0, 0));
        const tnrec_batch *b = NULL;
        uint64_t seen = 0;
        while (tnrec_loader_next(l, &b) == TNREC_OK && b) {
            CHECK((b->range_limits != NULL) == want);
            for (int i = 0; want && b->range_limits && i < b->n; i++, seen++) {
                float lo = 5000.0f * (float)(b->index[i] % 7);
                CHECK(b->range_limits[2 * i] == lo && b->range_limits[2 * i + 1] == lo + 250.0f * T_RG);
            }
        }
        CHECK(!want || seen == tnrec_dataset_count(ds));
        tnrec_loader_free(l);
    }
    tnrec_dataset_close(ds);
}

static void test_loader(void)
{
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, train_dir));
    if (!ds)
        return;
    uint64_t n = tnrec_dataset_count(ds);
    tnrec_loader_config lc = { .batch = 7, .threads = 3, .prefetch = 3, .shuffle = 1, .seed = 9, .frames = 3, .mask = 1 };
    tnrec_loader *l = NULL;
    CHECK_OK(tnrec_loader_create(&l, ds, &lc));
    if (!l) {
        tnrec_dataset_close(ds);
        return;
    }
    tnrec_input_shape sh = tnrec_loader_shape(l);
    CHECK(sh.frames == 3 && sh.height == T_AZ && sh.width == T_RG && sh.channels == 14);
    CHECK(tnrec_loader_steps(l) == (n + 6) / 7);
    uint64_t *e0 = calloc(n, sizeof *e0), *e1 = calloc(n, sizeof *e1);
    int *seen = calloc(n, sizeof *seen);
    for (int epoch = 0; epoch < 2; epoch++) {
        CHECK_OK(tnrec_loader_start(l, (uint64_t)epoch, 0));
        uint64_t k = 0;
        const tnrec_batch *b = NULL;
        memset(seen, 0, n * sizeof *seen);
        while (tnrec_loader_next(l, &b) == TNREC_OK && b) {
            for (int i = 0; i < b->n; i++, k++) {
                (epoch ? e1 : e0)[k] = b->index[i];
                seen[b->index[i]]++;
            }
        }
        CHECK(k == n);
        for (uint64_t i = 0; i < n; i++)
            CHECK(seen[i] == 1);
    }
    CHECK(memcmp(e0, e1, n * sizeof *e0) != 0); /* a new order each epoch */
    /* Starting epoch 1 at step 3 gives the same batches from there. */
    CHECK_OK(tnrec_loader_start(l, 1, 3));
    const tnrec_batch *b = NULL;
    CHECK_OK(tnrec_loader_next(l, &b));
    CHECK(b && b->step == 3 && b->index[0] == e1[21]);
    /* Channel layout: channel v*2+s is variable v, sweep s; then the mask. */
    tnrec_decoder *dec = NULL;
    CHECK_OK(tnrec_decoder_create(&dec));
    size_t shard;
    uint64_t local;
    CHECK_OK(tnrec_dataset_locate(ds, b->index[1], &shard, &local));
    CHECK_OK(tnrec_decoder_load(dec, tnrec_dataset_shard(ds, shard), local));
    const tnrec_schema *sc = tnrec_dataset_schema(ds);
    size_t fe = (size_t)T_FR * T_AZ * T_RG * 2;
    float *f = malloc(fe * sizeof *f);
    uint8_t *m8 = malloc(fe);
    int vel = tnrec_schema_find(sc, "VEL"), rfm = tnrec_schema_find(sc, "range_folded_mask");
    CHECK_OK(tnrec_decoder_field(dec, (uint32_t)vel, TNREC_DTYPE_F32, f, fe * sizeof *f));
    CHECK_OK(tnrec_decoder_field(dec, (uint32_t)rfm, TNREC_DTYPE_U8, m8, fe));
    const float *x = b->x + (size_t)1 * 3 * T_AZ * T_RG * 14;
    int bad = 0, nodata = 0;
    for (int t = 0; t < 3; t++)
        for (int a = 0; a < T_AZ; a++)
            for (int r = 0; r < T_RG; r++)
                for (int s = 0; s < 2; s++) {
                    size_t src = (((size_t)(t + 1) * T_AZ + a) * T_RG + r) * 2 + s;
                    const float *px = x + (((size_t)t * T_AZ + a) * T_RG + r) * 14;
                    bad += px[1 * 2 + s] != f[src];
                    bad += px[12 + s] != (float)m8[src];
                    nodata += px[1 * 2 + s] == -3.0f;
                }
    CHECK(bad == 0 && nodata > 0);
    free(f);
    free(m8);
    tnrec_decoder_free(dec);
    tnrec_loader_free(l);

    /* Two ranks: their parts make up each global batch. */
    tnrec_loader *r0 = NULL, *r1 = NULL;
    lc.world = 2;
    lc.rank = 0;
    CHECK_OK(tnrec_loader_create(&r0, ds, &lc));
    lc.rank = 1;
    CHECK_OK(tnrec_loader_create(&r1, ds, &lc));
    if (r0 && r1) {
        CHECK_OK(tnrec_loader_start(r0, 0, 0));
        CHECK_OK(tnrec_loader_start(r1, 0, 0));
        uint64_t k = 0;
        for (;;) {
            const tnrec_batch *b0 = NULL, *b1 = NULL;
            CHECK_OK(tnrec_loader_next(r0, &b0));
            CHECK_OK(tnrec_loader_next(r1, &b1));
            if (!b0 || !b1) {
                CHECK(!b0 && !b1);
                break;
            }
            CHECK(b0->global_n == b1->global_n && b0->n + b1->n == b0->global_n && b1->global_first == b0->n);
            for (int i = 0; i < b0->n; i++)
                CHECK(b0->index[i] == e0[k++]);
            for (int i = 0; i < b1->n; i++)
                CHECK(b1->index[i] == e0[k++]);
        }
        CHECK(k == n);
    }
    tnrec_loader_free(r0);
    tnrec_loader_free(r1);
    /* Bad settings. */
    lc.world = 1;
    lc.rank = 0;
    lc.frames = 9;
    CHECK(tnrec_loader_create(&l, ds, &lc) == TNREC_EINVAL && strstr(tnrec_error_last(), "frames"));
    lc.frames = 4;
    lc.variables = "DBZ,NOPE";
    CHECK(tnrec_loader_create(&l, ds, &lc) == TNREC_ESCHEMA && strstr(tnrec_error_last(), "NOPE"));
    free(e0);
    free(e1);
    free(seen);
    tnrec_dataset_close(ds);
}

/* Peeks until the next batch is ready or `seconds` passed. */
static const tnrec_batch *peek_wait(tnrec_loader *l, double seconds)
{
    struct timespec t0, now, nap = { 0, 1000000 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const tnrec_batch *p = NULL;
        CHECK_OK(tnrec_loader_peek(l, &p));
        if (p)
            return p;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) * 1e-9 > seconds)
            return NULL;
        nanosleep(&nap, NULL);
    }
}

/* tnrec_loader_peek: the batch the next tnrec_loader_next returns, same
 * pointer and contents, untouched while the current one is held; nothing
 * past the epoch's end, nothing with prefetch 1 while a batch is held. */
static void test_loader_peek(void)
{
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, train_dir));
    if (!ds)
        return;
    for (int pf = 1; pf <= 3; pf += 2) {
        tnrec_loader_config lc = { .batch = 10, .threads = 2, .prefetch = pf, .shuffle = 1, .seed = 3, .frames = T_FR };
        tnrec_loader *l = NULL;
        CHECK_OK(tnrec_loader_create(&l, ds, &lc));
        if (!l)
            break;
        const tnrec_batch *p = NULL, *b = NULL;
        CHECK_OK(tnrec_loader_peek(l, &p));
        CHECK(p == NULL); /* not started */
        CHECK_OK(tnrec_loader_start(l, 0, 0));
        p = peek_wait(l, 10.0);
        CHECK(p && p->step == 0);
        CHECK_OK(tnrec_loader_next(l, &b));
        CHECK(b && b == p);
        uint64_t steps = tnrec_loader_steps(l), peeked = 0;
        tnrec_input_shape sh = tnrec_loader_shape(l);
        size_t sample = (size_t)sh.frames * sh.height * sh.width * sh.channels;
        float *keep = malloc(10 * sample * sizeof *keep);
        uint64_t keep_index[10];
        for (uint64_t k = 0; b && k < steps; k++) {
            CHECK(b->step == k);
            const tnrec_batch *nb = peek_wait(l, pf > 1 && k + 1 < steps ? 10.0 : 0.05);
            if (k + 1 == steps || pf == 1) {
                CHECK(nb == NULL);
            } else {
                CHECK(nb && nb != b && nb->step == k + 1);
                if (nb) {
                    memcpy(keep, nb->x, (size_t)nb->n * sample * sizeof *keep);
                    memcpy(keep_index, nb->index, (size_t)nb->n * sizeof *keep_index);
                }
            }
            const tnrec_batch *b2 = NULL;
            CHECK_OK(tnrec_loader_next(l, &b2));
            if (k + 1 == steps) {
                CHECK(b2 == NULL);
            } else if (nb) {
                peeked++;
                CHECK(b2 == nb);
                CHECK(b2 && memcmp(keep, b2->x, (size_t)b2->n * sample * sizeof *keep) == 0 &&
                      memcmp(keep_index, b2->index, (size_t)b2->n * sizeof *keep_index) == 0);
            }
            b = b2;
        }
        CHECK(pf == 1 ? peeked == 0 : peeked == steps - 1);
        free(keep);
        tnrec_loader_free(l);
    }
    tnrec_dataset_close(ds);
}

static void base_config(tnrec_train_config *c, const char *run_dir)
{
    tnrec_train_config_default(c);
    c->train_path = train_dir;
    c->val_path = val_dir;
    c->run_dir = run_dir;
    c->model = SPEC;
    c->epochs = 3;
    c->batch = 8;
    c->seed = 4;
    c->lr = 3e-3;
}

static int same_weights(const char *a, const char *b)
{
    tnrec_model *ma = NULL, *mb = NULL;
    CHECK_OK(tnrec_checkpoint_load_model(&ma, a));
    CHECK_OK(tnrec_checkpoint_load_model(&mb, b));
    int same = ma && mb && tnrec_model_trainable_count(ma) == tnrec_model_trainable_count(mb) &&
               memcmp(tnrec_model_params(ma), tnrec_model_params(mb), tnrec_model_trainable_count(ma) * 4) == 0 &&
               memcmp(tnrec_model_state(ma), tnrec_model_state(mb), tnrec_model_state_count(ma) * 4) == 0;
    tnrec_model_free(ma);
    tnrec_model_free(mb);
    return same;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f)
        return -1;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static double last_val_auc;
static int last_epoch, stopped_epoch;
static void on_epoch(void *ctx, const tnrec_epoch_report *r)
{
    (void)ctx;
    printf("  epoch %d loss %.4f val_loss %.4f val_roc_auc %.4f%s%s\n", r->epoch, r->loss, r->val.loss, r->val.all.roc_auc,
           r->improved ? " *" : "", r->stopped ? " stop" : "");
    last_val_auc = r->val.all.roc_auc;
    last_epoch = r->epoch;
    if (r->stopped)
        stopped_epoch = r->epoch;
}

static void test_resume(const char *dir)
{
    char a[4096], b[4096], pa[4200], pb[4200];
    snprintf(a, sizeof a, "%s/run_a", dir);
    snprintf(b, sizeof b, "%s/run_b", dir);
    tnrec_train_config c;
    base_config(&c, a);
    c.checkpoint_every = 4;
    c.schedule = "exp:0.7:10";
    CHECK_OK(tnrec_train_run(&c, on_epoch, NULL));
    /* The same run interrupted mid-epoch twice, then resumed. */
    base_config(&c, b);
    c.schedule = "exp:0.7:10";
    c.max_steps = 15; /* 12 steps an epoch: stops at step 3 of epoch 2 */
    c.checkpoint_every = 4;
    CHECK_OK(tnrec_train_run(&c, on_epoch, NULL));
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", b);
    CHECK(count_lines(pb) == 1);
    tnrec_train_config r;
    memset(&r, 0, sizeof r);
    r.run_dir = b;
    r.resume = 1;
    r.max_steps = 4;
    r.checkpoint_every = 4;
    CHECK_OK(tnrec_train_run(&r, on_epoch, NULL));
    r.max_steps = 0;
    CHECK_OK(tnrec_train_run(&r, on_epoch, NULL));
    CHECK(count_lines(pb) == 3);
    snprintf(pa, sizeof pa, "%s/last.tnck", a);
    snprintf(pb, sizeof pb, "%s/last.tnck", b);
    CHECK(same_weights(pa, pb));
    snprintf(pa, sizeof pa, "%s/epoch-0002.tnck", a);
    snprintf(pb, sizeof pb, "%s/epoch-0002.tnck", b);
    CHECK(same_weights(pa, pb));
    snprintf(pa, sizeof pa, "%s/epoch-0001.tnck", a);
    CHECK(!same_weights(pa, pb)); /* the comparison can tell epochs apart */
    /* A finished run refuses a second start in the same directory. */
    base_config(&c, a);
    CHECK(tnrec_train_run(&c, NULL, NULL) == TNREC_EINVAL && strstr(tnrec_error_last(), "--resume"));
}

static void test_early_stopping(const char *dir)
{
    char run[4096], p[4200], q[4200];
    snprintf(run, sizeof run, "%s/run_es", dir);
    tnrec_train_config c;
    base_config(&c, run);
    c.epochs = 12;
    c.lr = 0.05; /* large steps: validation loss soon stops improving */
    c.patience = 2;
    c.schedule = "plateau:0.5:1";
    stopped_epoch = 0;
    CHECK_OK(tnrec_train_run(&c, on_epoch, NULL));
    CHECK(stopped_epoch > 0 && stopped_epoch < 12);
    /* Replay the rule on metrics.jsonl: best epoch, then `patience` worse ones. */
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    double best = INFINITY, prev_lr = 0;
    int best_epoch = 0, epochs = 0, prev_improved = 1, halvings = 0;
    char line[65536];
    while (f && fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "\"val_loss\": "), *l = strstr(line, "\"lr\": ");
        CHECK(k != NULL && l != NULL);
        if (!k || !l)
            break;
        double v = atof(k + 12), lr = atof(l + 6);
        epochs++;
        /* plateau:0.5:1 halves the rate after every epoch without improvement */
        if (epochs > 1) {
            CHECK(fabs(lr - (prev_improved ? prev_lr : prev_lr * 0.5)) < 1e-9 * prev_lr);
            halvings += !prev_improved;
        }
        prev_improved = v < best;
        prev_lr = lr;
        if (v < best) {
            best = v;
            best_epoch = epochs;
        }
    }
    CHECK(halvings > 0);
    if (f)
        fclose(f);
    CHECK(epochs == stopped_epoch && best_epoch == stopped_epoch - 2);
    snprintf(p, sizeof p, "%s/best.tnck", run);
    snprintf(q, sizeof q, "%s/epoch-%04d.tnck", run, best_epoch);
    CHECK(same_weights(p, q));
    /* A run directory means its best checkpoint. */
    CHECK(same_weights(run, q));
}

/* ROC-AUC (ties count one half) and mean probability of a predictions CSV
 * (label and probability are its last two columns), against eval's. */
static int csv_matches_eval(const char *path, const tnrec_binary_metrics *b)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    int lab[64], n = 0;
    double p[64], sum = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return 0;
    }
    while (n < 64 && fgets(line, sizeof line, f)) {
        char *c = strrchr(line, ',');
        if (!c || c == line)
            break;
        *c = '\0';
        char *c2 = strrchr(line, ',');
        if (!c2)
            break;
        lab[n] = atoi(c2 + 1);
        p[n] = atof(c + 1);
        sum += p[n++];
    }
    fclose(f);
    double pairs = 0, wins = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (lab[i] == 1 && lab[j] == 0) {
                pairs++;
                wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
            }
    double auc = pairs > 0 ? wins / pairs : NAN, mean = n ? sum / n : NAN;
    printf("predictions CSV: %d rows, roc_auc %.4f (eval %.4f), mean probability %.6f (eval %.6f)\n", n, auc, b->roc_auc,
           mean, b->mean_probability);
    /* The CSV rounds to 6 decimals: near-ties may reorder, hence 0.01. */
    return (uint64_t)n == b->n && fabs(auc - b->roc_auc) < 0.01 && fabs(mean - b->mean_probability) < 1e-5;
}

static void test_learning_and_eval(const char *dir)
{
    char run[4096], csv[4200];
    snprintf(run, sizeof run, "%s/run_learn", dir);
    tnrec_train_config c;
    base_config(&c, run);
    c.epochs = 10;
    c.lr = 0.01;
    c.model = "c8,p122,c8,p222,g,d8,o";
    /* The best checkpoint by loss: by ROC-AUC it is often the first epoch
     * that separates the classes, long before the loss settles. */
    c.monitor = "val_loss";
    CHECK_OK(tnrec_train_run(&c, on_epoch, NULL));
    tnrec_metrics m;
    snprintf(csv, sizeof csv, "%s/scores.csv", dir);
    CHECK_OK(tnrec_eval_run(&m, run, val_dir, csv, 5, 2));
    printf("fixture validation: roc_auc %.4f pr_auc %.4f csi %.4f\n", m.all.roc_auc, m.all.pr_auc, m.all.csi);
    /* The fixture is easy (a ROC-AUC of 1.0 is common), so a bar on the
     * AUC says little by itself: the model must also beat the class prior
     * by far in loss, and the CSV's probabilities must give eval's metrics. */
    double prior = (double)m.all.positives / (double)m.all.n;
    double prior_bce = -(prior * log(prior) + (1 - prior) * log(1 - prior));
    printf("fixture validation: loss %.4f, the class prior's %.4f\n", m.loss, prior_bce);
    CHECK(m.all.roc_auc >= 0.9);
    CHECK(m.loss < 0.5 * prior_bce);
    CHECK(csv_matches_eval(csv, &m.all));
    CHECK(m.all.n == 40 && m.category[0].n + m.category[1].n + m.category[2].n == 40);
    CHECK(count_lines(csv) == 41);
    FILE *f = fopen(csv, "r");
    char line[1024] = "";
    if (f) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        CHECK(strcmp(line, "key,event_id,time,category,label,probability\n") == 0);
        CHECK(fgets(line, sizeof line, f) != NULL);
        CHECK(strstr(line, "train/2013/") == line && strstr(line, ",1000,2013-05-08T"));
        fclose(f);
    }
    /* Errors name what is wrong. */
    CHECK(tnrec_eval_run(&m, dir, val_dir, NULL, 5, 2) == TNREC_ENOTFOUND && strstr(tnrec_error_last(), "best.tnck"));
    char junk[4200];
    snprintf(junk, sizeof junk, "%s/junk.tnck", dir);
    f = fopen(junk, "w");
    if (f) {
        fputs("not a checkpoint at all, really", f);
        fclose(f);
    }
    CHECK(tnrec_eval_run(&m, junk, val_dir, NULL, 5, 2) == TNREC_EFORMAT && strstr(tnrec_error_last(), "junk.tnck"));
}

static void test_corrupt_shard(const char *dir)
{
    /* Several shards; damage a record in the middle of the third. */
    CHECK_OK(fixture_write(bad_dir, 48, T_FR, T_AZ, T_RG, 77, 10));
    char shard[4200];
    snprintf(shard, sizeof shard, "%s/shard-00002.tnr", bad_dir);
    tnrec_shard *sh = NULL;
    CHECK_OK(tnrec_shard_open(&sh, shard));
    if (!sh)
        return;
    const tnrec_record_info *info = tnrec_shard_info(sh, 4);
    uint64_t off = info->offset + info->size / 2;
    tnrec_shard_close(sh);
    FILE *f = fopen(shard, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, (long)off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, (long)off, SEEK_SET);
    fputc(ch ^ 0x5a, f);
    fclose(f);
    char run[4096];
    snprintf(run, sizeof run, "%s/run_bad", dir);
    tnrec_train_config c;
    base_config(&c, run);
    c.train_path = bad_dir;
    c.epochs = 1;
    tnrec_err err = tnrec_train_run(&c, NULL, NULL);
    printf("corrupt shard: %s\n", tnrec_error_last());
    CHECK(err == TNREC_ECORRUPT);
    CHECK(strstr(tnrec_error_last(), "shard-00002.tnr") != NULL);
}

/* The config's `nodata` text: one parse and one bound for the library and --nodata. */
static void test_nodata_parse(void)
{
    float buf = 7.0f;
    const float *v = &buf;
    CHECK_OK(tnrec_train_nodata_parse("dataset", &buf, &v));
    CHECK(v == NULL);
    CHECK_OK(tnrec_train_nodata_parse("-1000", &buf, &v));
    CHECK(v == &buf && buf == -1000.0f);
    CHECK_OK(tnrec_train_nodata_parse("0.5", &buf, &v));
    CHECK(v == &buf && buf == 0.5f);
    const char *bad[] = { "1000.5", "-2e3", "nan", "inf", "abc", "1x", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(tnrec_train_nodata_parse(bad[i], &buf, &v) == TNREC_EINVAL && v == NULL);
        CHECK(strstr(tnrec_error_last(), "--nodata takes") != NULL);
    }
    CHECK(tnrec_train_nodata_parse(NULL, &buf, &v) == TNREC_EINVAL);
}

/* The config of a checkpoint made outside a run: the common members, then the caller's. */
static void test_config_text(void)
{
    tnrec_input_shape in = { 1, 4, 4, 2 };
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, "c4,g,o", &in, 1));
    char *text = NULL;
    CHECK_OK(tnrec_checkpoint_config_text(&text, m, "DBZ", 1, "{\"epochs\":0,\"imported\":{\"format\":\"x\"}}"));
    CHECK(text && strncmp(text, "{\"format\":\"tnrec-checkpoint\",\"tnrec_version\":", 44) == 0);
    CHECK(text && strstr(text, "\"model\":\"c4,g,o\",\"frames\":1,\"height\":4,\"width\":4,\"channels\":2,"
                               "\"variables\":\"DBZ\",\"mask\":true,\"epochs\":0,\"imported\":{\"format\":\"x\"}}"));
    free(text);
    CHECK(tnrec_checkpoint_config_text(&text, m, "DBZ", 0, "[1]") == TNREC_EINVAL && text == NULL);
    CHECK_OK(tnrec_checkpoint_config_text(&text, m, "DBZ", 0, NULL));
    CHECK(text && strstr(text, "\"mask\":false}"));
    free(text);
    tnrec_model_free(m);
}

int main(void)
{
    const char *dir = tnrec_test_dir();
    snprintf(train_dir, sizeof train_dir, "%s/train", dir);
    snprintf(val_dir, sizeof val_dir, "%s/val", dir);
    snprintf(bad_dir, sizeof bad_dir, "%s/bad", dir);
    CHECK_OK(fixture_write(train_dir, 96, T_FR, T_AZ, T_RG, 1, 0));
    CHECK_OK(fixture_write(val_dir, 40, T_FR, T_AZ, T_RG, 2, 0));
    test_nodata_parse();
    test_config_text();
    test_loader();
    test_loader_range_limits();
    test_loader_peek();
    test_resume(dir);
    test_early_stopping(dir);
    test_learning_and_eval(dir);
    test_corrupt_shard(dir);
    return tnrec_test_result("test_train_run");
}
