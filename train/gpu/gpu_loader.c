/* train/gpu/gpu_loader.c: libtnrec's side of the GPU entry points in a
 * build with CUDA: each loads the CUDA module (libtnrec_cuda.so) on first
 * use and forwards to it through the table of gpu_module.h.
 *
 * Where the module is: the file TNREC_CUDA_MODULE names when that is set
 * and not empty, else TNREC_CUDA_MODULE_FILE in the folder libtnrec was
 * loaded from (the build tree and the installed tree alike). The
 * environment is read once, at the first GPU call.
 *
 * Invariants: the module is loaded at most once per process (pthread_once)
 * and never unloaded (RTLD_NODELETE, no dlclose), so the table and every
 * net made through it stay valid until exit. A module that cannot be
 * loaded, or one from another build, makes every entry point answer
 * TNREC_EUNSUPPORTED with the path, the loader's reason and a hint;
 * tnrec_gpu_device_count answers 0 then. Frees of NULL and the device
 * count leave the last error message alone. Not here: anything CUDA
 * (the module does it all) and the build without CUDA (gpu_stub.c). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gpu_module.h"
#include "tnrec/config.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const trn_gpu_api *api;       /* set once by load_module, NULL if it failed */
static char load_msg[4096];             /* why it failed */

/* Where to look: TNREC_CUDA_MODULE (returns 1), else next to libtnrec
 * (returns 0); -1 when the path does not fit. */
static int module_path(char *out, size_t cap)
{
    const char *env = getenv("TNREC_CUDA_MODULE");
    if (env && *env)
        return (size_t)snprintf(out, cap, "%s", env) < cap ? 1 : -1;
    /* The address of a variable of this file lies in libtnrec itself
     * (a function's address may be the executable's PLT entry). */
    Dl_info info;
    const char *self = NULL;
    if (dladdr((const void *)&load_once, &info) && info.dli_fname)
        self = info.dli_fname;
    const char *slash = self ? strrchr(self, '/') : NULL;
    int n = slash ? snprintf(out, cap, "%.*s/%s", (int)(slash - self), self, TNREC_CUDA_MODULE_FILE)
                  : snprintf(out, cap, "./%s", TNREC_CUDA_MODULE_FILE);
    return (size_t)n < cap ? 0 : -1;
}

static void load_module(void)
{
    char path[1024];
    int from_env = module_path(path, sizeof path);
    if (from_env < 0) {
        snprintf(load_msg, sizeof load_msg, "the path of the CUDA module '%.200s...' is too long\n"
                 "hint: TNREC_CUDA_MODULE and the folder of libtnrec must name a path under %zu bytes",
                 path, sizeof path);
        return;
    }
    const char *how = from_env ? " (named by TNREC_CUDA_MODULE)" : "";

    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *why = dlerror();
        if (access(path, F_OK) != 0)
            snprintf(load_msg, sizeof load_msg,
                     "the CUDA module '%s'%s is missing: %s\n"
                     "hint: this tnrec was built with CUDA but its GPU part is not installed beside libtnrec; "
                     "reinstall (cmake --install) or set TNREC_CUDA_MODULE to the path of %s",
                     path, how, why ? why : "not found", TNREC_CUDA_MODULE_FILE);
        else
            snprintf(load_msg, sizeof load_msg,
                     "cannot load the CUDA module '%s'%s: %s\n"
                     "hint: it needs the CUDA runtime, cuBLAS, cuDNN 9 and NCCL 2 libraries on the loader's path "
                     "('ldd %s' names any that are missing); see docs/gpu.md",
                     path, how, why ? why : "unknown reason", path);
        return;
    }
    dlerror();
    trn_gpu_entry_fn entry = (trn_gpu_entry_fn)dlsym(h, TRN_GPU_ENTRY_NAME);
    const trn_gpu_api *t = entry ? entry() : NULL;
    if (!t) {
        const char *why = dlerror();
        snprintf(load_msg, sizeof load_msg,
                 "'%s'%s is not a tnrec CUDA module: no %s (%s)\n"
                 "hint: point TNREC_CUDA_MODULE at the %s built with this tnrec, or unset it",
                 path, how, TRN_GPU_ENTRY_NAME, why ? why : "it returned no table", TNREC_CUDA_MODULE_FILE);
        return;
    }
    if (t->size != sizeof *t || strcmp(t->version, TNREC_VERSION) != 0 ||
        strcmp(t->signature, TRN_GPU_SIGNATURE) != 0) {
        snprintf(load_msg, sizeof load_msg,
                 "the CUDA module '%s'%s comes from another build of tnrec (module %s, library %s%s)\n"
                 "hint: rebuild and reinstall tnrec so that libtnrec and %s come from the same build",
                 path, how, t->size == sizeof *t ? t->version : "?", TNREC_VERSION,
                 t->size == sizeof *t ? ", other entry points" : ", other table size", TNREC_CUDA_MODULE_FILE);
        return;
    }
    api = t;
}

/* The table, loading the module on first use; NULL (message set) if it
 * cannot be loaded. */
static const trn_gpu_api *get_api(void)
{
    pthread_once(&load_once, load_module);
    if (!api)
        tnrec__fail(TNREC_EUNSUPPORTED, "%s", load_msg);
    return api;
}

/* As get_api, leaving the last error message alone. */
static const trn_gpu_api *get_api_quiet(void)
{
    pthread_once(&load_once, load_module);
    return api;
}

#define FORWARD(name, params, args)                                                                                   \
    tnrec_err name params                                                                                             \
    {                                                                                                                 \
        const trn_gpu_api *t = get_api();                                                                          \
        return t ? t->name args : TNREC_EUNSUPPORTED;                                                                 \
    }
TRN_GPU_CALLS(FORWARD)

int tnrec_gpu_device_count(void)
{
    const trn_gpu_api *t = get_api_quiet();
    return t ? t->tnrec_gpu_device_count() : 0;
}

tnrec_err tnrec_gpu_net_create(tnrec_gpu_net **out, tnrec_model *m, int max_batch, const tnrec_gpu_options *opt)
{
    const trn_gpu_api *t = get_api();
    if (!t) {
        *out = NULL;
        return TNREC_EUNSUPPORTED;
    }
    return t->tnrec_gpu_net_create(out, m, max_batch, opt);
}

tnrec_err trn_gpu_net_create_ranked(tnrec_gpu_net **out, tnrec_model *m, int max_batch,
                                       const tnrec_gpu_options *opt, trn_allreduce *ar)
{
    const trn_gpu_api *t = get_api();
    if (!t) {
        *out = NULL;
        return TNREC_EUNSUPPORTED;
    }
    return t->trn_gpu_net_create_ranked(out, m, max_batch, opt, ar);
}

tnrec_err trn_nccl_create(trn_nccl **out, int rank, int size, int use_mpi, int device)
{
    const trn_gpu_api *t = get_api();
    if (!t) {
        *out = NULL;
        return TNREC_EUNSUPPORTED;
    }
    return t->trn_nccl_create(out, rank, size, use_mpi, device);
}

/* A net or communicator exists only if the module is loaded; NULL must
 * not load it (every CPU run frees a NULL GPU net). */
void tnrec_gpu_net_free(tnrec_gpu_net *net)
{
    if (net)
        get_api_quiet()->tnrec_gpu_net_free(net);
}

void trn_nccl_free(trn_nccl *c)
{
    if (c)
        get_api_quiet()->trn_nccl_free(c);
}

void trn_nccl_abort(trn_nccl *c)
{
    if (c)
        get_api_quiet()->trn_nccl_abort(c);
}

const char *tnrec_gpu_net_describe(const tnrec_gpu_net *net)
{
    return net ? get_api_quiet()->tnrec_gpu_net_describe(net) : "no GPU net";
}

uint64_t trn_gpu_net_staged_steps(const tnrec_gpu_net *net)
{
    return net ? get_api_quiet()->trn_gpu_net_staged_steps(net) : 0;
}

void trn_gpu_net_loss_scale(const tnrec_gpu_net *net, double *out_scale, int *out_good_steps)
{
    if (net) {
        get_api_quiet()->trn_gpu_net_loss_scale(net, out_scale, out_good_steps);
        return;
    }
    *out_scale = 0;
    *out_good_steps = 0;
}
