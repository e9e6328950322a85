/* benchmarks/bench_peak.c: this CPU's arithmetic peak, measured with a
 * loop of independent multiply-adds that never touches memory: float32
 * FMA (vfmadd231ps) and, where the CPU has avx512_bf16, the bfloat16 dot
 * product (vdpbf16ps: two products per float32 lane). One copy per
 * thread (OMP_NUM_THREADS); the roofline in docs/benchmarks.md divides
 * the kernels' rates by these.
 *
 * usage: bench_peak [--seconds 1]
 * Prints one JSON object: threads, fp32_gflops, bf16_gflops (null where
 * the instruction is missing), each over wall time for all threads and
 * per CPU-second (_per_core: what one core gives while it runs, the
 * figure that holds on a machine shared with other work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define HAVE_X86 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#define NACC 24
#define REPS 4096

#ifdef HAVE_X86
/* NACC chains of REPS FMAs each: 2 * 16 * NACC * REPS flops. */
__attribute__((target("avx512f"))) static float fma_loop(long iters)
{
    __m512 acc[NACC];
    __m512 a = _mm512_set1_ps(1.0f + 1e-7f), b = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < NACC; j++)
        acc[j] = _mm512_set1_ps((float)j);
    for (long it = 0; it < iters; it++)
        for (int r = 0; r < REPS; r++)
#pragma GCC unroll 24
            for (int j = 0; j < NACC; j++)
                acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    float s = 0;
    for (int j = 0; j < NACC; j++)
        s += _mm512_reduce_add_ps(acc[j]);
    return s;
}

/* vdpbf16ps: 32 products and 32 adds into 16 lanes: 64 flops each. */
__attribute__((target("avx512f,avx512bf16"))) static float bf16_loop(long iters)
{
    __m512 acc[NACC];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int j = 0; j < NACC; j++)
        acc[j] = _mm512_set1_ps((float)j);
    for (long it = 0; it < iters; it++)
        for (int r = 0; r < REPS; r++)
#pragma GCC unroll 24
            for (int j = 0; j < NACC; j++)
                acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
    float s = 0;
    for (int j = 0; j < NACC; j++)
        s += _mm512_reduce_add_ps(acc[j]);
    return s;
}
#endif

#ifdef HAVE_X86
/* CPU seconds of this process, all threads. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs loop on every thread for `iters` outer iterations; returns wall
 * seconds, and CPU seconds in *cpu. */
static double timed(float (*loop)(long), long iters, volatile float *sink, double *cpu)
{
    double t0 = bench_now(), c0 = cpu_now();
#pragma omp parallel
    {
        float s = loop(iters);
#pragma omp critical
        *sink += s;
    }
    *cpu = cpu_now() - c0;
    return bench_now() - t0;
}

/* GFLOP/s of loop (flops_per_inner per inner step) over about `seconds`,
 * of wall time (returned) and of CPU time (*per_core). */
static double rate(float (*loop)(long), double flops_per_inner, double seconds, int threads, double *per_core)
{
    volatile float sink = 0;
    long iters = 1;
    double t, cpu;
    while ((t = timed(loop, iters, &sink, &cpu)) < seconds / 4)
        iters *= 2;
    t = timed(loop, iters, &sink, &cpu);
    double flops = flops_per_inner * NACC * REPS * (double)iters * threads;
    *per_core = flops / cpu * 1e-9;
    return flops / t * 1e-9;
}
#endif

int main(int argc, char **argv)
{
    double seconds = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        printf("{\"threads\": %d, \"fp32_gflops\": null, \"bf16_gflops\": null}\n", threads);
        return 0;
    }
    double fc, bc;
    double f = rate(fma_loop, 32, seconds, threads, &fc);
    printf("{\"threads\": %d, \"fp32_gflops\": %.1f, \"fp32_gflops_per_core\": %.1f, ", threads, f, fc);
    if (__builtin_cpu_supports("avx512bf16")) {
        double bw = rate(bf16_loop, 64, seconds, threads, &bc);
        printf("\"bf16_gflops\": %.1f, \"bf16_gflops_per_core\": %.1f}\n", bw, bc);
    } else {
        printf("\"bf16_gflops\": null}\n");
    }
#else
    (void)seconds; /* no loops to time on this CPU */
    printf("{\"threads\": %d, \"fp32_gflops\": null, \"bf16_gflops\": null}\n", threads);
#endif
    return 0;
}
