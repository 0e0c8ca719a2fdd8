/*
 * What CPU this is, in the terms the CPU backend dispatches on, and its
 * measured arithmetic peak. For reports (`bcae bench`, bench/RESULTS.md's
 * per-CPU tables); kernels test their own features where they are chosen.
 */
#ifndef BCAE_NN_CPU_REPORT_H
#define BCAE_NN_CPU_REPORT_H

#include <stddef.h>

/* ISA flags, as bits of cpu_report.flags. Each is set only when the
 * operating system also saves the registers it needs (XCR0). */
enum {
    CPU_SSE42 = 1 << 0,
    CPU_AVX = 1 << 1,
    CPU_AVX2 = 1 << 2,
    CPU_FMA = 1 << 3,
    CPU_AVX512F = 1 << 4,
    CPU_AVX512BW = 1 << 5,
    CPU_AVX512VL = 1 << 6,
    CPU_AVX512DQ = 1 << 7,
    CPU_AVX512_VNNI = 1 << 8,
    CPU_AVX512_BF16 = 1 << 9,
    CPU_AVX512_FP16 = 1 << 10,
    CPU_AVX_VNNI = 1 << 11,
    CPU_AMX_TILE = 1 << 12,
    CPU_AMX_BF16 = 1 << 13,
    CPU_AMX_INT8 = 1 << 14
};

typedef struct cpu_report {
    char vendor[13];  /* "AuthenticAMD", "GenuineIntel", ...; "" off x86 */
    char brand[49];   /* the brand string, trimmed */
    int family, model, stepping; /* display values (extended fields folded in) */
    unsigned flags;   /* CPU_* */
    int logical_cpus; /* online, as the OS counts them */
} cpu_report;

/* Fills r from CPUID (zeros and "" where the CPU is not x86). */
void cpu_report_read(cpu_report *r);

/* The flags, space-separated in /proc/cpuinfo's spelling, into buf. */
const char *cpu_report_flags(unsigned flags, char *buf, size_t size);

/* A short name for the microarchitecture where it is known (Zen 3, Zen 4,
 * Zen 5, ...), else "". */
const char *cpu_report_uarch(const cpu_report *r);

/* Measured peaks in GFLOP/s (2 per multiply-add): register-resident
 * independent FMA chains on `threads` threads for about `seconds`. fp32:
 * 512-bit FMAs where AVX-512F is there, else 256-bit (AVX2 + FMA); bf16:
 * AVX512-BF16 dot products (vdpbf16ps: 2 multiply-adds a lane), 0 where the
 * CPU lacks it. */
typedef struct cpu_peak {
    double fp32_gflops, bf16_gflops;
    int threads, vector_bits;
} cpu_peak;
void cpu_peak_measure(int threads, double seconds, cpu_peak *out);

/* Whether the backend's own kernels may use an ISA level the CPU has:
 * BCAE_MAX_ISA caps them, to run (and measure) on a CPU with AVX-512 the
 * code paths a CPU without it takes: "avx2" (no AVX-512 kernels: the
 * portable and oneDNN paths), "avx512_core" (AVX-512 without the bf16 dot
 * products); unset or anything else: no cap. It does not cap oneDNN (set
 * ONEDNN_MAX_CPU_ISA for that) and does not tell whether the CPU has the
 * ISA: callers test that themselves. Also 0 for every level where oneDNN
 * itself runs below AVX-512 (ONEDNN_MAX_CPU_ISA=AVX2, or an AVX2 CPU). */
enum { CPU_LEVEL_AVX512 = 1, CPU_LEVEL_AVX512_BF16 = 2 };
int cpu_isa_allows(int level);
/* The cap in words ("avx2", "avx512_core"), or NULL when there is none. */
const char *cpu_isa_cap(void);

#endif
