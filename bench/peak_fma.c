/* Peak single-precision FMA throughput probe.
 *
 * Runs many independent FMA chains (16 zmm / 12 ymm accumulators: more than
 * latency x ports = 4 x 2, and few enough to stay in registers; AVX2 has only
 * 16 ymm registers) in a timed loop, for AVX-512 (zmm) and AVX2
 * (ymm) registers, on 1 thread and optionally on N threads at once.
 *
 * Build: cc -O2 -mavx512f -mfma -pthread peak_fma.c -o peak_fma
 *        (without -mavx512f the AVX-512 figure is reported as null)
 * Usage: peak_fma [max_threads]
 * Prints one JSON line:
 *   {"avx512_gflops": x, "avx2_gflops": y,            <- one core
 *    "threads": {"1": {...}, "2": {...}}}               <- all threads together
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 50000000L /* 8 cycles per iteration at 2 FMA/cycle: ~0.15 s at 3 GHz */
#define REPEATS 3

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static volatile float g_sink; /* keeps results alive */

#define FMA16(OP, a, b) \
    c0 = OP(c0, a, b); c1 = OP(c1, a, b); c2 = OP(c2, a, b); c3 = OP(c3, a, b); \
    c4 = OP(c4, a, b); c5 = OP(c5, a, b); c6 = OP(c6, a, b); c7 = OP(c7, a, b); \
    c8 = OP(c8, a, b); c9 = OP(c9, a, b); c10 = OP(c10, a, b); c11 = OP(c11, a, b); \
    c12 = OP(c12, a, b); c13 = OP(c13, a, b); c14 = OP(c14, a, b); c15 = OP(c15, a, b);

#define FMA12(OP, a, b) \
    c0 = OP(c0, a, b); c1 = OP(c1, a, b); c2 = OP(c2, a, b); c3 = OP(c3, a, b); \
    c4 = OP(c4, a, b); c5 = OP(c5, a, b); c6 = OP(c6, a, b); c7 = OP(c7, a, b); \
    c8 = OP(c8, a, b); c9 = OP(c9, a, b); c10 = OP(c10, a, b); c11 = OP(c11, a, b);

#ifdef __AVX512F__
/* Returns FLOPs done: 16 chains x 16 lanes x 2 flops per iteration. */
static double run_zmm(long iters) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0.f), c1 = _mm512_set1_ps(1.f), c2 = _mm512_set1_ps(2.f),
           c3 = _mm512_set1_ps(3.f), c4 = _mm512_set1_ps(4.f), c5 = _mm512_set1_ps(5.f),
           c6 = _mm512_set1_ps(6.f), c7 = _mm512_set1_ps(7.f), c8 = _mm512_set1_ps(8.f),
           c9 = _mm512_set1_ps(9.f), c10 = _mm512_set1_ps(10.f), c11 = _mm512_set1_ps(11.f),
           c12 = _mm512_set1_ps(12.f), c13 = _mm512_set1_ps(13.f), c14 = _mm512_set1_ps(14.f),
           c15 = _mm512_set1_ps(15.f);
    for (long i = 0; i < iters; i++) {
        FMA16(_mm512_fmadd_ps, a, b)
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3)); /* no folding */
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    g_sink = _mm512_reduce_add_ps(s);
    return (double)iters * 16 * 16 * 2;
}
#endif

/* Returns FLOPs done: 12 chains x 8 lanes x 2 flops per iteration. */
static double run_ymm(long iters) {
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0.f), c1 = _mm256_set1_ps(1.f), c2 = _mm256_set1_ps(2.f),
           c3 = _mm256_set1_ps(3.f), c4 = _mm256_set1_ps(4.f), c5 = _mm256_set1_ps(5.f),
           c6 = _mm256_set1_ps(6.f), c7 = _mm256_set1_ps(7.f), c8 = _mm256_set1_ps(8.f),
           c9 = _mm256_set1_ps(9.f), c10 = _mm256_set1_ps(10.f), c11 = _mm256_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        FMA12(_mm256_fmadd_ps, a, b)
        __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    g_sink = out[0] + out[7];
    return (double)iters * 12 * 8 * 2;
}

typedef double (*kernel_fn)(long);

typedef struct {
    kernel_fn fn;
    pthread_barrier_t *barrier;
    double flops;
} job_t;

static void *worker(void *arg) {
    job_t *job = (job_t *)arg;
    pthread_barrier_wait(job->barrier);
    job->flops = job->fn(ITERS);
    return NULL;
}

/* Best-of-REPEATS aggregate GFLOP/s of `fn` running on `nthreads` threads. */
static double measure(kernel_fn fn, int nthreads) {
    double best = 0.0;
    fn(ITERS / 10); /* warm up: wake the core, settle the clock */
    for (int r = 0; r < REPEATS; r++) {
        pthread_t tid[64];
        job_t jobs[64];
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
        for (int t = 0; t < nthreads; t++) {
            jobs[t].fn = fn;
            jobs[t].barrier = &barrier;
            pthread_create(&tid[t], NULL, worker, &jobs[t]);
        }
        pthread_barrier_wait(&barrier);
        double t0 = now(), flops = 0.0;
        for (int t = 0; t < nthreads; t++) {
            pthread_join(tid[t], NULL);
            flops += jobs[t].flops;
        }
        double gflops = flops / (now() - t0) * 1e-9;
        if (gflops > best) best = gflops;
        pthread_barrier_destroy(&barrier);
    }
    return best;
}

#ifdef __AVX512F__
static int have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#endif

static void print_pair(double z, double y) {
    if (z >= 0) printf("\"avx512_gflops\": %.2f, ", z);
    else printf("\"avx512_gflops\": null, ");
    printf("\"avx2_gflops\": %.2f", y);
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : 1;
    if (max_threads < 1) max_threads = 1;
    if (max_threads > 64) max_threads = 64;
    double z[65], y[65];
    for (int t = 1; t <= max_threads; t++) {
        z[t] = -1.0;
#ifdef __AVX512F__
        if (have_avx512()) z[t] = measure(run_zmm, t);
#endif
        y[t] = measure(run_ymm, t);
    }
    printf("{");
    print_pair(z[1], y[1]);
    printf(", \"threads\": {");
    for (int t = 1; t <= max_threads; t++) {
        printf("%s\"%d\": {", t > 1 ? ", " : "", t);
        print_pair(z[t], y[t]);
        printf("}");
    }
    printf("}}\n");
    return 0;
}
