/* backend/cpu/attpool.c: the CPU's primitives of Kong et al.'s AudioSet attention head
 * (backend/ops.h, "audioset"): attention pooling over time, the VGGish 8-bit quantisation and
 * inverted dropout. Each output element has one writer and sums run over time in row order, so
 * the bits do not depend on the thread count. */
#include <math.h>

#include "backend/cpu/cpu.h"

#define PAR_MIN 32768

/* rows of clip n */
static void span(const int *off, int n, int T, int *r0, int *r1)
{
    *r0 = off ? off[n] : n * T;
    *r1 = off ? off[n + 1] : (n + 1) * T;
}

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

void avs_cpu_attpool_fwd(float *y, float *s, const float *a, const float *v, const int *off,
                         int N, int T, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * (T > 0 ? T : 1) > PAR_MIN)
    for (int n = 0; n < N; n++) {
        int r0, r1;
        span(off, n, T, &r0, &r1);
        for (int c = 0; c < C; c++) {
            float G = 0, S = 0;
            for (int r = r0; r < r1; r++) {
                size_t i = (size_t)r * C + c;
                s[i] = 1.0f / (1.0f + expf(-a[i]));
                float g = clampf(s[i], eps, 1.0f - eps);
                G += g, S += g * v[i];
            }
            y[(size_t)n * C + c] = S / G;
        }
    }
}

void avs_cpu_attpool_bwd(float *da, float *dv, const float *dy, const float *s, const float *v,
                         const float *y, const int *off, int N, int T, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * (T > 0 ? T : 1) > PAR_MIN)
    for (int n = 0; n < N; n++) {
        int r0, r1;
        span(off, n, T, &r0, &r1);
        for (int c = 0; c < C; c++) {
            float G = 0;
            for (int r = r0; r < r1; r++)
                G += clampf(s[(size_t)r * C + c], eps, 1.0f - eps);
            float d = dy[(size_t)n * C + c] / G, o = y[(size_t)n * C + c];
            for (int r = r0; r < r1; r++) {
                size_t i = (size_t)r * C + c;
                float g = clampf(s[i], eps, 1.0f - eps);
                if (dv)
                    dv[i] += d * g;
                if (da && s[i] >= eps && s[i] <= 1.0f - eps)
                    da[i] += d * (v[i] - o) * s[i] * (1.0f - s[i]);
            }
        }
    }
}

void avs_cpu_quant8_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float byte = nearbyintf((clampf(x[i], -2.0f, 2.0f) + 2.0f) * (255.0f / 4.0f));
        y[i] = (byte - 128.0f) / 128.0f;
    }
}

/* uniform in [0,1) from (seed, i): splitmix64 of the pair (every backend computes this) */
static float unit(unsigned long long seed, size_t i)
{
    unsigned long long z = seed * 0x9e3779b97f4a7c15ull + (unsigned long long)i + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

void avs_cpu_dropout_fwd(float *y, float *mask, const float *x, size_t n, float p,
                         unsigned long long seed)
{
    float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        mask[i] = unit(seed, i) < p ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
}

void avs_cpu_dropout_bwd(float *dx, const float *dy, const float *mask, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * mask[i];
}
