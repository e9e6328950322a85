/* tests/ingest/test_synth_api.c: the synthesiser's library API.
 * One sample in memory is a pure function of (seed, index); a written file
 * reads back (through netcdf-c and HDF5's own filters) bit for bit equal
 * to the arrays it came from; tnrec_synth_run's options, statistics and
 * refusals. */
#include <math.h>
#include <netcdf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tnrec_test.h"

static int same_sample(const tnrec_synth_sample *a, const tnrec_synth_sample *b)
{
    for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++)
        if (memcmp(a->moment[m], b->moment[m], sizeof(float) * TNREC_SYNTH_NGATES) != 0)
            return 0;
    return memcmp(a->range_folded_mask, b->range_folded_mask, TNREC_SYNTH_NGATES) == 0 &&
           strcmp(a->filename, b->filename) == 0 && memcmp(a->frame_time, b->frame_time, sizeof a->frame_time) == 0;
}

/* Counts of NaN, MissingDataFlag and other values; checks quantisation of
 * the level-II moments and that KDP (derived, step 0 here) is continuous
 * and only estimated where there is echo. */
static void check_values(const tnrec_synth_sample *s, int *out_nan, int *out_missing)
{
    static const float step[TNREC_SYNTH_NMOMENTS] = { 0.5f, 0.5f, 0.0f, 1.0f / 300.0f, 1.0f / 16.0f, 0.5f };
    int bad = 0;
    size_t kdp_est = 0, kdp_off_grid = 0;
    for (size_t i = 0; i < TNREC_SYNTH_NGATES; i++) {
        float k = s->moment[TNREC_SYNTH_KDP][i], z = s->moment[TNREC_SYNTH_DBZ][i];
        if (isnan(k) || k == -999.0f)
            continue;
        kdp_est++;
        kdp_off_grid += fabs((double)k * 32 - round((double)k * 32)) > 1e-3;
        if (isnan(z) || z == -999.0f)
            bad++;
    }
    CHECK(kdp_off_grid * 10 >= kdp_est * 9);
    for (int m = 0; m < TNREC_SYNTH_NMOMENTS; m++) {
        for (size_t i = 0; i < TNREC_SYNTH_NGATES; i++) {
            float v = s->moment[m][i];
            if (isnan(v)) {
                (*out_nan)++;
                continue;
            }
            if (v == -999.0f) {
                (*out_missing)++;
                continue;
            }
            if (step[m] == 0.0f)
                continue;
            double q = (double)v / step[m];
            if (fabs(q - round(q)) > 1e-3)
                bad++;
        }
    }
    for (size_t i = 0; i < TNREC_SYNTH_NGATES; i++)
        if (s->range_folded_mask[i] > 1)
            bad++;
    CHECK(bad == 0);
}

static void check_file_matches(const char *path, const tnrec_synth_sample *s)
{
    int ncid = -1;
    CHECK(nc_open(path, NC_NOWRITE, &ncid) == NC_NOERR);
    if (ncid < 0)
        return;
    float *buf = malloc(sizeof(float) * TNREC_SYNTH_NGATES);
    uint8_t *mask = malloc(TNREC_SYNTH_NGATES);
    CHECK(buf && mask);
    for (int m = 0; buf && m < TNREC_SYNTH_NMOMENTS; m++) {
        int varid = -1;
        CHECK(nc_inq_varid(ncid, tnrec_synth_moment_name(m), &varid) == NC_NOERR);
        CHECK(nc_get_var_float(ncid, varid, buf) == NC_NOERR);
        CHECK(memcmp(buf, s->moment[m], sizeof(float) * TNREC_SYNTH_NGATES) == 0);
    }
    int varid = -1;
    CHECK(nc_inq_varid(ncid, "range_folded_mask", &varid) == NC_NOERR);
    if (mask) {
        CHECK(nc_get_var_uchar(ncid, varid, mask) == NC_NOERR);
        CHECK(memcmp(mask, s->range_folded_mask, TNREC_SYNTH_NGATES) == 0);
    }
    float az[TNREC_SYNTH_NAZIMUTH];
    CHECK(nc_inq_varid(ncid, "azimuth", &varid) == NC_NOERR);
    CHECK(nc_get_var_float(ncid, varid, az) == NC_NOERR);
    CHECK(memcmp(az, s->azimuth, sizeof az) == 0);
    unsigned char labels[TNREC_SYNTH_NTIME];
    CHECK(nc_inq_varid(ncid, "frame_labels", &varid) == NC_NOERR);
    CHECK(nc_get_var_uchar(ncid, varid, labels) == NC_NOERR);
    CHECK(memcmp(labels, s->frame_labels, sizeof labels) == 0);
    char cat[8] = "";
    CHECK(nc_get_att_text(ncid, NC_GLOBAL, "category", cat) == NC_NOERR);
    CHECK(strcmp(cat, s->category) == 0);
    double ef = -2;
    CHECK(nc_get_att_double(ncid, NC_GLOBAL, "ef_number", &ef) == NC_NOERR);
    CHECK(ef == s->ef_number);
    size_t len = 99;
    int has_times = nc_inq_attlen(ncid, NC_GLOBAL, "tornado_start_time", &len) == NC_NOERR;
    CHECK(has_times == s->has_tornado_times);
    nc_close(ncid);
    free(buf);
    free(mask);
}

int main(void)
{
    const char *dir = tnrec_test_dir();
    char path[4096];
    tnrec_synth_sample *a = NULL, *b = NULL;
    CHECK_OK(tnrec_synth_sample_create(&a));
    CHECK_OK(tnrec_synth_sample_create(&b));
    if (!a || !b)
        return tnrec_test_result("test_synth_api");

    /* a pure function of (seed, index) */
    tnrec_synth_sample_generate(a, 42, 7);
    tnrec_synth_sample_generate(b, 42, 8);
    tnrec_synth_sample_generate(b, 42, 7);
    CHECK(same_sample(a, b));
    tnrec_synth_sample_generate(b, 43, 7);
    CHECK(!same_sample(a, b));
    tnrec_synth_sample_generate(b, 42, 9);
    CHECK(!same_sample(a, b));
    CHECK(strcmp(tnrec_synth_moment_name(TNREC_SYNTH_RHOHV), "RHOHV") == 0);
    CHECK(tnrec_synth_moment_name(TNREC_SYNTH_NMOMENTS) == NULL);

    /* attributes consistent with the category; values quantised; files
     * read back bit for bit. The first TOR sample among the first 40 also
     * carries labelled frames. */
    int tor_seen = 0, missing_files = 0, written = 0;
    for (uint64_t i = 0; i < 40; i++) {
        tnrec_synth_sample_generate(a, 1, i);
        int tor = strcmp(a->category, "TOR") == 0;
        CHECK(tor || strcmp(a->category, "NUL") == 0 || strcmp(a->category, "WRN") == 0);
        CHECK(tor ? (a->ef_number >= 0 && a->ef_number <= 5) : a->ef_number == -1);
        CHECK(a->frame_labels[TNREC_SYNTH_NTIME - 1] == (tor ? 1 : 0));
        CHECK(tor ? a->tornado_start_time[0] != '\0' : a->tornado_start_time[0] == '\0');
        CHECK(a->year >= 2013 && a->year <= 2022);
        for (int t = 1; t < TNREC_SYNTH_NTIME; t++) {
            int64_t dt = a->frame_time[t] - a->frame_time[t - 1];
            CHECK(dt >= 280 && dt <= 320);
        }
        int nans = 0, miss = 0;
        check_values(a, &nans, &miss);
        CHECK(nans > 0);
        CHECK((miss > 0) == a->has_missing_gates);
        missing_files += miss > 0;
        if (i < 3 || (tor && !tor_seen)) {
            snprintf(path, sizeof path, "%s/one_%llu.nc", dir, (unsigned long long)i);
            CHECK_OK(tnrec_synth_sample_write(a, path, 2));
            check_file_matches(path, a);
            written++;
        }
        tor_seen |= tor;
    }
    CHECK(tor_seen);
    CHECK(missing_files > 0 && missing_files < 40);
    CHECK(written >= 4);

    /* bad arguments */
    snprintf(path, sizeof path, "%s/bad.nc", dir);
    CHECK(tnrec_synth_sample_write(a, path, 0) == TNREC_EINVAL);
    snprintf(path, sizeof path, "%s/no/such/dir/x.nc", dir);
    CHECK(tnrec_synth_sample_write(a, path, 2) == TNREC_EIO);
    CHECK(strstr(tnrec_error_last(), "no/such/dir") != NULL);

    /* the archive */
    tnrec_synth_options opt;
    tnrec_synth_options_init(&opt);
    tnrec_synth_stats st;
    snprintf(path, sizeof path, "%s/root", dir);
    opt.out_dir = path;
    opt.samples = 0;
    CHECK(tnrec_synth_run(&st, &opt) == TNREC_EINVAL);
    opt.samples = 5;
    opt.seed = 3;
    opt.threads = 2;
    CHECK_OK(tnrec_synth_run(&st, &opt));
    CHECK(st.samples == 5 && st.train + st.test == 5 && st.nul + st.wrn + st.tor == 5);
    CHECK(st.bytes > 5 * 100000ull);
    char cat[4200];
    snprintf(cat, sizeof cat, "%s/catalog.csv", path);
    struct stat sb;
    CHECK(stat(cat, &sb) == 0 && sb.st_size > 0);
    /* an archive is not overwritten by accident */
    CHECK(tnrec_synth_run(&st, &opt) == TNREC_EINVAL);
    CHECK(strstr(tnrec_error_last(), "--force") != NULL);
    opt.force = 1;
    opt.samples = 2;
    CHECK_OK(tnrec_synth_run(&st, &opt));
    CHECK(st.samples == 2);

    tnrec_synth_sample_free(a);
    tnrec_synth_sample_free(b);
    tnrec_synth_sample_free(NULL);
    return tnrec_test_result("test_synth_api");
}
