/* backend/gelu_math.h: GELU in its exact form, y = x Phi(x) with Phi the normal CDF
 * (ref: torch.nn.GELU(approximate='none')), forward and backward, without a libm call per
 * element so that the loops vectorise (a call to erff per element took a quarter of a PVTv2-b0
 * forward + Grad-CAM).
 *
 * With z = |x| / sqrt(2) and E = exp(-x^2 / 2) (= exp(-z^2)):
 *   z < 1/2:  erf(z) = z A(z^2)                    A: degree 6, relative error 1.3e-9 on [0, 1]
 *   z >= 1/2: erfc(z) = E u Q(u), u = 1 / (1 + 0.4 z)   Q: degree 8, relative error 5.8e-9
 *             (Q fits exp(z^2) erfc(z) on [1/2, 10]; past z = 9.3, E underflows: erfc = 0)
 *   Phi(x) = 1/2 +- erf(z) / 2 (z < 1/2), 1 - erfc(z) / 2 (x >= 0) or erfc(z) / 2 (x < 0)
 *   dy/dx = Phi(x) + x E / sqrt(2 pi)
 * The coefficients are least-squares fits on Chebyshev nodes in double (numpy). E is computed
 * from x^2 split exactly (fdlibm's way: x's top 12 bits squared are exact in float), then
 * exp by Cody-Waite reduction and a degree-6 polynomial (2.9e-9). On the negative side Phi is
 * erfc / 2 itself, not 1 + erf with erf near -1, so it keeps its relative accuracy where
 * libm's erff form cancels. Every element takes the same path through the same operations
 * (both branches computed, one selected), so a value's result never depends on its position
 * or the thread count. The cpu backend's loops (backend/cpu/gelu.c) and the CUDA kernels
 * (backend/cuda/k_math.h) call these functions; tests/test_backend_gelu checks them against
 * the double erf. */
#ifndef AVS_BACKEND_GELU_MATH_H
#define AVS_BACKEND_GELU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define AVS_GELU_FN __host__ __device__ /* nvcc inlines device functions itself */
#else
#define AVS_GELU_FN __attribute__((always_inline)) /* inlined, or the loops do not vectorise */
#endif

static inline AVS_GELU_FN float avs_gelu_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline AVS_GELU_FN uint32_t avs_gelu_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* c ? a : b without a branch (a branch here stops the loops from vectorising: the compiler
 * keeps floating-point work that might trap inside the branch taken) */
static inline AVS_GELU_FN float avs_gelu_sel(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(c != 0);
    return avs_gelu_from_bits((avs_gelu_to_bits(a) & m) | (avs_gelu_to_bits(b) & ~m));
}

/* exp(-a^2 / 2) for a = |x| (0 past a^2 / 2 = 87, where float's normal range ends). From a,
 * not from z = a / sqrt(2) rounded: erfc's relative sensitivity to z is 2 z^2, so z's rounding
 * alone would cost 2 z^2 ulp (60 at x = -8). */
static inline AVS_GELU_FN float avs_gelu_exp_half_sq(float a)
{
    const float log2e = 1.44269504f, ln2_hi = 0.693145752f, ln2_lo = 1.42860677e-6f;
    const float round = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float ah = avs_gelu_from_bits(avs_gelu_to_bits(a) & 0xFFFFF000u);
    float hi = -0.5f * (ah * ah), lo = -0.5f * ((a - ah) * (a + ah)); /* -a^2/2 = hi + lo, hi exact */
    int under = !(a * a <= 174.0f); /* also NaN and inf: selected below */
    hi = avs_gelu_sel(under, 0.0f, hi), lo = avs_gelu_sel(under, 0.0f, lo);
    float kf = ((hi + lo) * log2e + round) - round;
    float r = (hi - kf * ln2_hi) - kf * ln2_lo + lo;
    float p = 1.38294206e-3f;
    p = p * r + 8.37477152e-3f;
    p = p * r + 4.16683580e-2f;
    p = p * r + 1.66664208e-1f;
    p = p * r + 4.99999915e-1f;
    p = p * r + 1.00000004f;
    p = p * r + 1.0f;
    float two_k = avs_gelu_from_bits((uint32_t)((int32_t)kf + 127) << 23);
    return avs_gelu_sel(under, 0.0f, p * two_k);
}

/* Phi(x), and E = exp(-x^2 / 2) in *e. */
static inline AVS_GELU_FN float avs_gelu_phi(float x, float *e)
{
    float z = fabsf(x) * 0.707106781f, s = z * z;
    float a = 7.84725926e-5f;
    a = a * s - 8.00818962e-4f;
    a = a * s + 5.18809889e-3f;
    a = a * s - 2.68536911e-2f;
    a = a * s + 1.12835822e-1f;
    a = a * s - 3.76126256e-1f;
    a = a * s + 1.12837917f;
    float erf_small = z * a;
    float E = avs_gelu_exp_half_sq(fabsf(x)), u = 1.0f / (1.0f + 0.4f * z);
    float q = 6.143223752e-2f;
    q = q * u - 2.256208520e-1f;
    q = q * u + 2.371575319e-1f;
    q = q * u - 6.424032651e-2f;
    q = q * u + 1.710710001e-1f;
    q = q * u + 1.596027192e-1f;
    q = q * u + 2.094045919e-1f;
    q = q * u + 2.255252181e-1f;
    q = q * u + 2.256813104e-1f;
    float half_erfc = 0.5f * (E * (u * q));
    float small = 0.5f + avs_gelu_sel(x < 0, -0.5f, 0.5f) * erf_small;
    float big = avs_gelu_sel(x < 0, half_erfc, 1.0f - half_erfc);
    *e = E;
    return avs_gelu_sel(z < 0.5f, small, big);
}

/* gelu(x) = x Phi(x) */
static inline AVS_GELU_FN float avs_gelu(float x)
{
    float e;
    return x * avs_gelu_phi(x, &e);
}

/* d gelu / dx = Phi(x) + x phi(x), phi(x) = E / sqrt(2 pi) */
static inline AVS_GELU_FN float avs_gelu_grad(float x)
{
    float e, cdf = avs_gelu_phi(x, &e);
    return cdf + x * (0.398942280f * e);
}

#endif
