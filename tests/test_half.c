/* fp16 conversions against the compiler's own _Float16 (hardware rounding). */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/half.h"

#pragma GCC diagnostic ignored "-Wpedantic"

int main(void)
{
    long bad = 0;
    /* Every half value survives half -> float -> half, and agrees with _Float16. */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bcae_f16_to_f32((uint16_t)h);
        int nan = ((h >> 10) & 31) == 31 && (h & 0x3ff);
        if (nan) {
            bad += f == f; /* must be NaN */
            continue;
        }
        _Float16 r;
        memcpy(&r, &h, 2);
        bad += (float)r != f;
        bad += bcae_f32_to_f16(f) != h;
    }
    CHECK(bad == 0);
    /* Random bit patterns: rounding to nearest even, overflow, subnormals. */
    uint32_t s = 12345;
    bad = 0;
    for (long i = 0; i < 5000000; i++) {
        s = s * 1664525u + 1013904223u;
        float f;
        memcpy(&f, &s, 4);
        if (f != f) continue;
        _Float16 r = (_Float16)f;
        uint16_t a;
        memcpy(&a, &r, 2);
        bad += a != bcae_f32_to_f16(f);
    }
    CHECK(bad == 0);
    CHECK(bcae_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(bcae_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(bcae_f32_to_f16(1.0f) == 0x3c00);
    return check_report("test_half");
}
