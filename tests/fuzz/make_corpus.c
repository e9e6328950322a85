/* tests/fuzz/make_corpus.c: writes the seed corpus of the fuzz targets
 * into <dir>/shard and <dir>/manifest: valid shards of each encoding (raw
 * and checksum-repairing mode), truncated and flipped copies, and a valid
 * manifest of fz_write_dataset with damaged variants.
 * Usage: make_fuzz_corpus <corpus dir> (the subdirectories must exist). */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_common.h"

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int emit(const char *dir, const char *name, uint8_t mode, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    int bad = (mode != 0xff && fputc(mode, f) == EOF) || fwrite(data, 1, len, f) != len;
    return fclose(f) != 0 || bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    char sd[4096], md[4096], tmp[4096], name[128];
    snprintf(sd, sizeof sd, "%s/shard", argv[1]);
    snprintf(md, sizeof md, "%s/manifest", argv[1]);
    snprintf(tmp, sizeof tmp, "/tmp/tnrec_make_corpus_%ld", (long)getpid());
    int bad = 0;
    const tnrec_encoding encs[4] = { TNREC_ENC_RAW, TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT16, TNREC_ENC_UINT8 };
    for (int e = 0; e < 4; e++) {
        char path[4200];
        snprintf(path, sizeof path, "%s.tnr", tmp);
        uint64_t n = e == 2 ? 3 : (e == 0 ? 0 : 1);
        if (fz_write_shard(path, encs[e], n) != TNREC_OK) {
            fprintf(stderr, "%s\n", tnrec_error_last());
            return 1;
        }
        size_t len;
        uint8_t *b = slurp(path, &len);
        unlink(path);
        if (!b)
            return 1;
        for (uint8_t mode = 0; mode < 2; mode++) {
            snprintf(name, sizeof name, "%s_%llu_mode%u.bin", tnrec_encoding_name(encs[e]), (unsigned long long)n, mode);
            bad |= emit(sd, name, mode, b, len);
        }
        if (e == 2) { /* damaged copies of the three-record float16 shard */
            const size_t cuts[4] = { 7, 100, len / 2, len - 1 };
            for (int c = 0; c < 4; c++) {
                snprintf(name, sizeof name, "float16_cut%zu.bin", cuts[c]);
                bad |= emit(sd, name, 0, b, cuts[c]);
            }
            const size_t flips[5] = { 9, 40, len / 2, len - 60, len - 20 };
            for (int f = 0; f < 5; f++) {
                b[flips[f]] ^= 0x10;
                snprintf(name, sizeof name, "float16_flip%zu_mode0.bin", flips[f]);
                bad |= emit(sd, name, 0, b, len);
                snprintf(name, sizeof name, "float16_flip%zu_mode1.bin", flips[f]);
                bad |= emit(sd, name, 1, b, len);
                b[flips[f]] ^= 0x10;
            }
        }
        free(b);
    }
    /* Manifests: the valid one, then damaged variants. */
    if (fz_write_dataset(tmp) != TNREC_OK) {
        fprintf(stderr, "%s\n", tnrec_error_last());
        return 1;
    }
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", tmp);
    size_t len;
    uint8_t *m = slurp(mpath, &len);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0 || !m)
        return 1;
    m[len] = '\0';
    bad |= emit(md, "valid.json", 0xff, m, len);
    bad |= emit(md, "cut.json", 0xff, m, len / 2);
    const char *variants[][2] = {
        { "\"records\": 5", "\"records\": 6" },
        { "\"format_version\": 1", "\"format_version\": 2" },
        { "fz-00001.tnr", "fz-00009.tnr" },
        { "\"scale\": 40.0", "\"scale\": \"nan\"" },
        { "\"shuffle\": true", "\"shuffle\": 1" },
        { "\"TOR\": 2", "\"TOR\": 3" },
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const char *at = strstr((const char *)m, variants[v][0]);
        if (!at) {
            fprintf(stderr, "manifest lacks %s\n", variants[v][0]);
            bad = 1;
            continue;
        }
        size_t pre = (size_t)(at - (const char *)m), old = strlen(variants[v][0]), neu = strlen(variants[v][1]);
        uint8_t *out = malloc(len - old + neu);
        memcpy(out, m, pre);
        memcpy(out + pre, variants[v][1], neu);
        memcpy(out + pre + neu, m + pre + old, len - pre - old);
        snprintf(name, sizeof name, "variant%zu.json", v);
        bad |= emit(md, name, 0xff, out, len - old + neu);
        free(out);
    }
    const char *small[] = { "{}", "[]", "{\"format\": \"tnrec-dataset\", \"format_version\": 1}", "nul" };
    for (size_t v = 0; v < 4; v++) {
        snprintf(name, sizeof name, "small%zu.json", v);
        bad |= emit(md, name, 0xff, (const uint8_t *)small[v], strlen(small[v]));
    }
    free(m);
    return bad;
}
