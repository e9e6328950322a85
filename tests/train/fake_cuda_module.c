/* tests/train/fake_cuda_module.c: two broken CUDA modules for
 * test_gpu_module. Built as tnrec_test_stale_module, it exports the
 * module entry but hands out a table of another size (a module left over
 * from another build); built with FAKE_MODULE_DEP, it also needs a
 * library the loader cannot find (as a module whose libcudnn is missing). */
#include <stddef.h>

#ifdef FAKE_MODULE_DEP
int tnrec_test_dep_value(void);
#endif

struct old_table {
    size_t size;
    const char *version;
};

const struct old_table *tnrec_cuda_module_api(void);

const struct old_table *tnrec_cuda_module_api(void)
{
    static struct old_table t = { sizeof(struct old_table), "0.0.1" };
#ifdef FAKE_MODULE_DEP
    t.version = tnrec_test_dep_value() ? "0.0.1" : "0.0.2";
#endif
    return &t;
}
