/* tests/train/fake_cuda_dep.c: a library that one fake CUDA module of
 * test_gpu_module needs and cannot find (see fake_cuda_module.c). */
int tnrec_test_dep_value(void);

int tnrec_test_dep_value(void) { return 1; }
