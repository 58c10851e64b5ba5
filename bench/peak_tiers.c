/* Peak throughput of the integer and bfloat16 dot-product units of one core: AVX-512 VNNI
 * (vpdpbusd, 64 int8 multiply-adds per instruction), its 256-bit AVX-VNNI form, AVX512-BF16 (vdpbf16ps, 32 bfloat16 pairs)
 * and the AMX tile units (tdpbssd: 16 x 16 x 64 int8, tdpbf16ps: 16 x 16 x 32 bfloat16), the
 * ceilings of MaxSim's compute tiers (bench_tiers.py). Many independent accumulator chains in
 * a timed loop, as peak_fma.c does for FMA.
 *
 * Build: cc -O3 -mavx512f -mavx512vnni -mavx512bf16 -mavxvnni -mamx-tile -mamx-int8 -mamx-bf16 peak_tiers.c -o peak_tiers
 * Prints one JSON line, operations counted as 2 per multiply-add (GOPS / GFLOPS):
 *   {"vnni_gops": x, "avx_vnni_gops": v, "bf16_gflops": y, "amx_int8_gops": z | null, "amx_bf16_gflops": w | null}
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ITERS 20000000L
#define TILE_ITERS 2000000L

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static volatile int g_sink;

static double vnni(void) {
    __m512i acc[10], a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    for (int i = 0; i < 10; ++i) acc[i] = _mm512_setzero_si512();
    double t = now();
    for (long it = 0; it < ITERS; ++it)
        for (int i = 0; i < 10; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    t = now() - t;
    __m512i s = acc[0];
    for (int i = 1; i < 10; ++i) s = _mm512_add_epi32(s, acc[i]);
    g_sink = _mm512_reduce_add_epi32(s);
    return 10.0 * ITERS * 64 * 2 / t / 1e9;
}

static double avx_vnni(void) {
    __m256i acc[10], a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2);
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_setzero_si256();
    double t = now();
    for (long it = 0; it < ITERS; ++it)
        for (int i = 0; i < 10; ++i) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
    t = now() - t;
    __m256i s = acc[0];
    for (int i = 1; i < 10; ++i) s = _mm256_add_epi32(s, acc[i]);
    g_sink = _mm256_extract_epi32(s, 0);
    return 10.0 * ITERS * 32 * 2 / t / 1e9;
}

static double bf16(void) {
    __m512 acc[10];
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    for (int i = 0; i < 10; ++i) acc[i] = _mm512_setzero_ps();
    double t = now();
    for (long it = 0; it < ITERS; ++it)
        for (int i = 0; i < 10; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, a);
    t = now() - t;
    __m512 s = acc[0];
    for (int i = 1; i < 10; ++i) s = _mm512_add_ps(s, acc[i]);
    g_sink = (int)_mm512_reduce_add_ps(s);
    return 10.0 * ITERS * 32 * 2 / t / 1e9;
}

struct __attribute__((aligned(64))) config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Four independent C tiles (0-3) from A (4, 5) and B (6, 7). */
static double amx(int bf) {
    static uint8_t data[1024] __attribute__((aligned(64)));
    struct config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;
    _tile_loadconfig(&c);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, data, 64);
    _tile_loadd(5, data, 64);
    _tile_loadd(6, data, 64);
    _tile_loadd(7, data, 64);
    double t = now();
    if (bf) {
        for (long it = 0; it < TILE_ITERS; ++it) {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    } else {
        for (long it = 0; it < TILE_ITERS; ++it) {
            _tile_dpbssd(0, 4, 6);
            _tile_dpbssd(1, 4, 7);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        }
    }
    t = now() - t;
    _tile_stored(0, data, 64);
    _tile_release();
    const double per = 16.0 * 16 * (bf ? 32 : 64) * 2;
    return 4.0 * TILE_ITERS * per / t / 1e9;
}

int main(void) {
    const double v = vnni(), av = avx_vnni(), b = bf16();
    unsigned a = 0, bb = 0, cc = 0, d = 0;
    __asm__("cpuid" : "=a"(a), "=b"(bb), "=c"(cc), "=d"(d) : "a"(7), "c"(0));
    const int tiles = (d >> 24) & 1 && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    if (tiles) {
        const double ai = amx(0), ab = amx(1);
        printf("{\"vnni_gops\": %.1f, \"avx_vnni_gops\": %.1f, \"bf16_gflops\": %.1f, \"amx_int8_gops\": %.1f, "
               "\"amx_bf16_gflops\": %.1f}\n", v, av, b, ai, ab);
    } else {
        printf("{\"vnni_gops\": %.1f, \"avx_vnni_gops\": %.1f, \"bf16_gflops\": %.1f, \"amx_int8_gops\": null, "
               "\"amx_bf16_gflops\": null}\n", v, av, b);
    }
    return 0;
}
