/*
 * A minimal test harness: CHECK records a failure and goes on, so one run
 * reports every broken expectation; main() returns the failure count.
 */
#ifndef BCAE_TESTS_CHECK_H
#define BCAE_TESTS_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        check_count++;                                                                \
        if (!(cond)) {                                                                \
            check_failures++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        check_count++;                                                        \
        if (!(cond)) {                                                        \
            check_failures++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
        }                                                                     \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double check_a_ = (double)(a), check_b_ = (double)(b);                             \
        check_count++;                                                                     \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                                       \
            check_failures++;                                                              \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.10g, %s = %.10g (tol %g)\n", \
                    __FILE__, __LINE__, #a, check_a_, #b, check_b_, (double)(tol));        \
        }                                                                                  \
    } while (0)

/* max |a - b| / max |b| and sqrt(mean (a-b)^2) / sqrt(mean b^2); a NaN in a
 * makes both NaN (a failure for any bound). */
static inline void check_rel_errors(const float *a, const float *b, size_t n, double *maxrel,
                                    double *rmsrel)
{
    double dmax = 0, bmax = 0, d2 = 0, b2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= dmax)) dmax = d;
        if (fabs(b[i]) > bmax) bmax = fabs(b[i]);
        d2 += d * d;
        b2 += (double)b[i] * b[i];
    }
    *maxrel = dmax / bmax;
    *rmsrel = sqrt(d2 / b2);
}

static inline int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
