/* model/randinit.c: counter-based random fills (randinit.h). */
#include "model/randinit.h"

#include <math.h>

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1) for element i of a stream. */
static double u01(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint64_t r = mix(mix(seed ^ mix(stream)) + i);
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0;
}

void avs_randinit_normal(float *w, size_t n, float std, uint64_t seed, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) {
        double z;
        uint64_t k = 0;
        do { /* Box-Muller, redrawn outside 2 std (timm's trunc_normal_ bounds) */
            double a = u01(seed, stream, 2 * (i + k * n)), b = u01(seed, stream, 2 * (i + k * n) + 1);
            z = sqrt(-2.0 * log(a)) * cos(2.0 * M_PI * b);
            k++;
        } while (fabs(z) > 2.0);
        w[i] = (float)(z * std);
    }
}

void avs_randinit_uniform(float *w, size_t n, float bound, uint64_t seed, uint64_t stream)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * u01(seed, stream, i) - 1.0) * bound);
}

void avs_randinit_const(float *w, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        w[i] = v;
}
