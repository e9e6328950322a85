/* tests/train/test_gpu_module.c: the GPU entry points load the CUDA
 * libraries only when called, and fail cleanly when they cannot.
 *
 * usage: test_gpu_module
 *          non-GPU calls map no CUDA library; then (built with CUDA) the
 *          first GPU call, from several threads at once, loads the module
 *          and its CUDA libraries once, and every thread sees the same
 *          answer: OK with a GPU, TNREC_ENOTFOUND without one
 *        test_gpu_module fail TEXT...
 *          with TNREC_CUDA_MODULE naming a missing or broken module: every
 *          GPU entry point answers TNREC_EUNSUPPORTED with a message that
 *          names the path and contains each TEXT and a hint, the device
 *          count is 0, constructors clear *out, and nothing CUDA is mapped
 * Whether a library is mapped is read from /proc/self/maps. */
#include <pthread.h>
#include <string.h>

#include "tnrec_test.h"

static const char *const cuda_libs[] = { "libcudart", "libcublas", "libcudnn", "libnccl", TNREC_CUDA_MODULE_FILE,
                                         NULL };

/* 1 if a mapped file's name contains `name`. */
static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) {
        fprintf(stderr, "cannot read /proc/self/maps\n");
        exit(1);
    }
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        const char *file = strchr(line, '/');
        found = file && strstr(file, name) != NULL;
    }
    fclose(f);
    return found;
}

static int any_cuda_mapped(void)
{
    int any = 0;
    for (int i = 0; cuda_libs[i]; i++)
        if (mapped(cuda_libs[i])) {
            fprintf(stderr, "  mapped: %s\n", cuda_libs[i]);
            any = 1;
        }
    return any;
}

#define NTHREADS 4
static tnrec_err results[NTHREADS];
static char messages[NTHREADS][2048];

static void *check_thread(void *arg)
{
    int i = (int)(size_t)arg;
    results[i] = tnrec_gpu_check();
    snprintf(messages[i], sizeof messages[i], "%s", results[i] ? tnrec_error_last() : "");
    return NULL;
}

static void first_gpu_call(void)
{
    /* Calls that need no GPU, including the frees every CPU run makes. */
    tnrec_precision p;
    CHECK_OK(tnrec_precision_parse(&p, "bf16"));
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    tnrec_gpu_net_free(NULL);
    CHECK(strstr(tnrec_features(), "zstd") != NULL);
    CHECK(!any_cuda_mapped());

    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, check_thread, (void *)(size_t)i) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < NTHREADS; i++)
        CHECK(results[i] == results[0] && strcmp(messages[i], messages[0]) == 0);
    int count = tnrec_gpu_device_count();
    printf("  tnrec_gpu_check: %s %s\n  devices: %d\n", tnrec_err_name(results[0]), messages[0], count);
    if (TNREC_HAVE_CUDA) {
        /* The module loaded: the answer is the driver's, not the loader's. */
        CHECK(results[0] == TNREC_OK || results[0] == TNREC_ENOTFOUND);
        CHECK((count > 0) == (results[0] == TNREC_OK));
        CHECK(mapped(TNREC_CUDA_MODULE_FILE) && mapped("libcudart") && mapped("libcudnn") && mapped("libcublas") &&
              mapped("libnccl"));
    } else {
        CHECK(results[0] == TNREC_EUNSUPPORTED && count == 0);
        CHECK(!any_cuda_mapped());
    }
    if (results[0])
        CHECK(strstr(messages[0], "hint:") != NULL);
}

static void broken_module(int ntexts, char **texts)
{
    const char *path = getenv("TNREC_CUDA_MODULE");
    if (!TNREC_HAVE_CUDA || !path || !*path) {
        printf("test_gpu_module: SKIPPED (needs a build with CUDA and TNREC_CUDA_MODULE set)\n");
        exit(77);
    }
    /* The device count neither loads an error message nor fails. */
    tnrec_precision p;
    CHECK(tnrec_precision_parse(&p, "fp7") == TNREC_EINVAL);
    CHECK(tnrec_gpu_device_count() == 0);
    CHECK(strstr(tnrec_error_last(), "fp7") != NULL);

    for (int round = 0; round < 2; round++) {   /* the second answer replays the first */
        CHECK(tnrec_gpu_check() == TNREC_EUNSUPPORTED);
        const char *msg = tnrec_error_last();
        printf("  %s\n", msg);
        CHECK(strstr(msg, path) && strstr(msg, "TNREC_CUDA_MODULE") && strstr(msg, "\nhint: "));
        for (int i = 0; i < ntexts; i++)
            if (!strstr(msg, texts[i])) {
                fprintf(stderr, "  the message lacks '%s'\n", texts[i]);
                tnrec_test_failures++;
            }
    }
    static char sentinel;
    tnrec_gpu_net *g = (tnrec_gpu_net *)(void *)&sentinel;
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    CHECK(tnrec_gpu_net_create(&g, NULL, 4, &o) == TNREC_EUNSUPPORTED && g == NULL);
    CHECK(strstr(tnrec_error_last(), path) != NULL);
    tnrec_gpu_net_free(NULL);
    CHECK(!any_cuda_mapped());
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "fail") == 0)
        broken_module(argc - 2, argv + 2);
    else
        first_gpu_call();
    return tnrec_test_result("test_gpu_module");
}
