/* Error reporting and the counter-based RNG. */
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"

int main(void)
{
    bcae_error err;
    bcae_error_clear(&err);
    CHECK(err.status == BCAE_OK && err.message[0] == '\0');
    CHECK(bcae_fail(&err, BCAE_ERR_IO, "file %s: %d", "a.npy", 7) == BCAE_ERR_IO);
    CHECK(err.status == BCAE_ERR_IO);
    CHECK(strcmp(err.message, "file a.npy: 7") == 0);
    CHECK(bcae_fail(NULL, BCAE_ERR_FORMAT, "x") == BCAE_ERR_FORMAT);
    CHECK(strcmp(bcae_strerror(BCAE_ERR_FORMAT), "malformed or truncated file") == 0);
    CHECK(strcmp(bcae_version(), "0.1.0") == 0);

    /* A long message is truncated, not overflowed. */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    bcae_fail(&err, BCAE_ERR_IO, "%s", big);
    CHECK(strlen(err.message) == BCAE_ERROR_MESSAGE_MAX - 1);

    /* Streams are reproducible and distinct. */
    bcae_rng a, b, c;
    bcae_rng_seed(&a, bcae_hash3(1, 2, 3, 4));
    bcae_rng_seed(&b, bcae_hash3(1, 2, 3, 4));
    bcae_rng_seed(&c, bcae_hash3(1, 2, 3, 5));
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = bcae_rng_u64(&a), y = bcae_rng_u64(&b), z = bcae_rng_u64(&c);
        same &= x == y;
        differ += x != z;
    }
    CHECK(same);
    CHECK(differ == 100);

    /* Moments of the samplers. */
    double s = 0, s2 = 0, e = 0, p = 0, u = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double g = bcae_rng_normal(&a);
        s += g;
        s2 += g * g;
        e += bcae_rng_exponential(&a, 2.0);
        p += bcae_rng_poisson(&a, 3.5);
        u += bcae_rng_uniform(&a);
    }
    CHECK_NEAR(s / n, 0.0, 0.01);
    CHECK_NEAR(s2 / n, 1.0, 0.01);
    CHECK_NEAR(e / n, 2.0, 0.02);
    CHECK_NEAR(p / n, 3.5, 0.02);
    CHECK_NEAR(u / n, 0.5, 0.005);
    return check_report("test_core");
}
