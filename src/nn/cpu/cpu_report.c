/*
 * CPUID decoding and the FMA peak loops (cpu_report.h).
 *
 * The peak is what one core's (or N cores') FMA units give on
 * register-resident data, the ceiling any convolution is measured against:
 * 16 independent accumulator chains (more than latency x throughput on
 * current x86: 4 cycles x 2 pipes), no loads, fixed trip count, timed by the
 * wall clock around an OpenMP region (the slowest thread decides).
 */
#include "nn/cpu/cpu_report.h"

#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define CPU_REPORT_X86 1
#endif

#ifdef CPU_REPORT_X86
static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

void cpu_report_read(cpu_report *r)
{
    memset(r, 0, sizeof *r);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    r->logical_cpus = n > 0 ? (int)n : 1;
#ifdef CPU_REPORT_X86
    unsigned a = 0, b = 0, c = 0, d = 0, max = 0;
    if (!__get_cpuid(0, &max, &b, &c, &d)) return;
    memcpy(r->vendor, &b, 4);
    memcpy(r->vendor + 4, &d, 4);
    memcpy(r->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    int fam = (int)((a >> 8) & 0xf), mod = (int)((a >> 4) & 0xf);
    if (fam == 0xf) fam += (int)((a >> 20) & 0xff);
    if (fam == 0x6 || fam >= 0xf) mod += (int)((a >> 16) & 0xf) << 4;
    r->family = fam, r->model = mod, r->stepping = (int)(a & 0xf);
    unsigned f = 0;
    const int osxsave = (c >> 27) & 1;
    const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    const int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0,
              tiles = (xcr0 & 0x60000) == 0x60000;
    if ((c >> 20) & 1) f |= CPU_SSE42;
    if (ymm && ((c >> 28) & 1)) f |= CPU_AVX;
    if (ymm && ((c >> 12) & 1)) f |= CPU_FMA;
    if (max >= 7) {
        unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0, b71 = 0, c71 = 0, d71 = 0;
        __get_cpuid_count(7, 0, &a, &b7, &c7, &d7);
        __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71);
        if (ymm && ((b7 >> 5) & 1)) f |= CPU_AVX2;
        if (zmm) {
            if ((b7 >> 16) & 1) f |= CPU_AVX512F;
            if ((b7 >> 17) & 1) f |= CPU_AVX512DQ;
            if ((b7 >> 30) & 1) f |= CPU_AVX512BW;
            if ((b7 >> 31) & 1) f |= CPU_AVX512VL;
            if ((c7 >> 11) & 1) f |= CPU_AVX512_VNNI;
            if ((d7 >> 23) & 1) f |= CPU_AVX512_FP16;
            if ((a71 >> 5) & 1) f |= CPU_AVX512_BF16;
        }
        if (ymm && ((a71 >> 4) & 1)) f |= CPU_AVX_VNNI;
        if (tiles) {
            if ((d7 >> 24) & 1) f |= CPU_AMX_TILE;
            if ((d7 >> 22) & 1) f |= CPU_AMX_BF16;
            if ((d7 >> 25) & 1) f |= CPU_AMX_INT8;
        }
    }
    r->flags = f;
    unsigned ext = 0;
    __get_cpuid(0x80000000, &ext, &b, &c, &d);
    if (ext >= 0x80000004) {
        unsigned w[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &w[4 * i], &w[4 * i + 1], &w[4 * i + 2], &w[4 * i + 3]);
        memcpy(r->brand, w, 48);
        r->brand[48] = 0;
        /* Trim the padding some CPUs put around the name. */
        char *s = r->brand;
        while (*s == ' ') s++;
        memmove(r->brand, s, strlen(s) + 1);
        for (size_t k = strlen(r->brand); k > 0 && r->brand[k - 1] == ' '; k--) r->brand[k - 1] = 0;
    }
#endif
}

const char *cpu_isa_cap(void)
{
    const char *v = getenv("BCAE_MAX_ISA");
    if (v && !strcmp(v, "avx2")) return "avx2";
    if (v && !strcmp(v, "avx512_core")) return "avx512_core";
    return NULL;
}

int cpu_isa_allows(int level)
{
    /* Our AVX-512 kernels write and read the 16-channel blocks that go with
     * oneDNN's AVX-512 kernels: they run only where those do. */
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core) != (unsigned)dnnl_cpu_isa_avx512_core)
        return 0;
    const char *cap = cpu_isa_cap();
    if (!cap) return 1;
    if (!strcmp(cap, "avx2")) return 0;
    return level < CPU_LEVEL_AVX512_BF16; /* avx512_core */
}

const char *cpu_report_flags(unsigned flags, char *buf, size_t size)
{
    static const char *const names[] = {"sse4_2",      "avx",         "avx2",       "fma",
                                        "avx512f",     "avx512bw",    "avx512vl",   "avx512dq",
                                        "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
                                        "amx_tile",    "amx_bf16",    "amx_int8"};
    size_t used = 0;
    if (size) buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & (1u << i)) || used >= size) continue;
        int k = snprintf(buf + used, size - used, "%s%s", used ? " " : "", names[i]);
        if (k > 0) used += (size_t)k;
    }
    return buf;
}

const char *cpu_report_uarch(const cpu_report *r)
{
    if (!strcmp(r->vendor, "AuthenticAMD")) {
        if (r->family == 0x17) return r->model >= 0x30 ? "Zen 2" : "Zen / Zen+";
        if (r->family == 0x19) /* Zen 4: Genoa, Raphael, Phoenix, Bergamo */
            return (r->model >= 0x10 && r->model <= 0x1f) || (r->model >= 0x60 && r->model <= 0x7f) ||
                           (r->model >= 0xa0 && r->model <= 0xaf)
                       ? "Zen 4"
                       : "Zen 3";
        if (r->family == 0x1a) return "Zen 5";
    }
    if (!strcmp(r->vendor, "GenuineIntel") && r->family == 6) {
        switch (r->model) {
        case 0x55: return "Skylake-SP / Cascade Lake";
        case 0x6a:
        case 0x6c: return "Ice Lake-SP";
        case 0x8f: return "Sapphire Rapids";
        case 0xcf: return "Emerald Rapids";
        case 0xad:
        case 0xae: return "Granite Rapids";
        default: break;
        }
    }
    return "";
}

/* ---- peak loops --------------------------------------------------------------------- */

enum { PEAK_CHAINS = 16, PEAK_INNER = 1000 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#ifdef CPU_REPORT_X86
/* Each returns a value built from its accumulators so the work is kept. */
__attribute__((target("avx512f"), noinline)) static float fma512(long reps)
{
    __m512 acc[PEAK_CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < reps; r++)
        for (int k = 0; k < PEAK_INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma256(long reps)
{
    __m256 acc[PEAK_CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long r = 0; r < reps; r++)
        for (int k = 0; k < PEAK_INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0] + o[7];
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static float dpbf16(long reps)
{
    __m512 acc[PEAK_CHAINS];
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < reps; r++)
        for (int k = 0; k < PEAK_INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

/* GFLOP/s of fn on `threads` threads: reps sized so one run lasts about
 * `seconds`, best of three. flops_per_rep: per thread per rep. */
static double time_loop(float (*fn)(long), double flops_per_rep, int threads, double seconds)
{
    volatile float sink = 0.0f;
    long reps = 1;
    for (;;) { /* calibrate on one thread */
        double t0 = now_s();
        sink += fn(reps);
        double dt = now_s() - t0;
        if (dt > 0.02 || reps > (1L << 30)) {
            reps = (long)((double)reps * (seconds / 3.0) / dt) + 1;
            break;
        }
        reps *= 4;
    }
    double best = 0.0;
    for (int round = 0; round < 3; round++) {
        double t0 = now_s();
#pragma omp parallel num_threads(threads)
        {
            float v = fn(reps);
#pragma omp atomic
            sink += v;
        }
        double g = flops_per_rep * (double)reps * threads / (now_s() - t0) * 1e-9;
        if (g > best) best = g;
    }
    (void)sink;
    return best;
}

void cpu_peak_measure(int threads, double seconds, cpu_peak *out)
{
    memset(out, 0, sizeof *out);
    out->threads = threads > 0 ? threads : omp_get_max_threads();
#ifdef CPU_REPORT_X86
    cpu_report r;
    cpu_report_read(&r);
    /* flops per rep per thread: chains x inner x lanes x 2 (x 2 for the
     * dot product's pairs). */
    if (r.flags & CPU_AVX512F) {
        out->vector_bits = 512;
        out->fp32_gflops = time_loop(fma512, (double)PEAK_CHAINS * PEAK_INNER * 16 * 2, out->threads, seconds);
    } else if ((r.flags & CPU_AVX2) && (r.flags & CPU_FMA)) {
        out->vector_bits = 256;
        out->fp32_gflops = time_loop(fma256, (double)PEAK_CHAINS * PEAK_INNER * 8 * 2, out->threads, seconds);
    }
    if (r.flags & CPU_AVX512_BF16)
        out->bf16_gflops = time_loop(dpbf16, (double)PEAK_CHAINS * PEAK_INNER * 16 * 4, out->threads, seconds);
#else
    (void)seconds;
#endif
}
