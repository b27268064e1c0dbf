/* backend/cuda/k_attpool.cu: the AudioSet attention head's primitives on the GPU (backend/ops.h,
 * "audioset"): attention pooling over time a thread per (clip, channel) walking its rows in
 * order (the cpu's order, no atomics), the VGGish quantisation and dropout a thread per element.
 * Per element the arithmetic is the cpu's (backend/cpu/attpool.c); the dropout mask is the same
 * counter hash, so both backends draw the same mask. */
#include "backend/cuda/k_loop.cuh"

__device__ static float clampf_k(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

__device__ static void span_k(const int *off, int n, int T, int *r0, int *r1)
{
    *r0 = off ? off[n] : n * T;
    *r1 = off ? off[n + 1] : (n + 1) * T;
}

__global__ static void attpool_fwd_k(float *y, float *s, const float *a, const float *v,
                                     const int *off, int N, int T, int C, float eps)
{
    AVS_K_FOR(k, (size_t)N * C) {
        int n = (int)(k / C), c = (int)(k % C), r0, r1;
        span_k(off, n, T, &r0, &r1);
        float G = 0, S = 0;
        for (int r = r0; r < r1; r++) {
            size_t i = (size_t)r * C + c;
            s[i] = 1.0f / (1.0f + expf(-a[i]));
            float g = clampf_k(s[i], eps, 1.0f - eps);
            G += g, S += g * v[i];
        }
        y[k] = S / G;
    }
}

void avs_cu_attpool_fwd(float *y, float *s, const float *a, const float *v, const int *off,
                        int N, int T, int C, float eps)
{
    if ((size_t)N * C == 0)
        return;
    AVS_K_GO(attpool_fwd_k, (size_t)N * C)(y, s, a, v, off, N, T, C, eps);
    AVS_CU_LAUNCHED("attpool_fwd", "N=%d T=%d C=%d", N, T, C);
}

__global__ static void attpool_bwd_k(float *da, float *dv, const float *dy, const float *s,
                                     const float *v, const float *y, const int *off, int N,
                                     int T, int C, float eps)
{
    AVS_K_FOR(k, (size_t)N * C) {
        int n = (int)(k / C), c = (int)(k % C), r0, r1;
        span_k(off, n, T, &r0, &r1);
        float G = 0;
        for (int r = r0; r < r1; r++)
            G += clampf_k(s[(size_t)r * C + c], eps, 1.0f - eps);
        float d = dy[k] / G, o = y[k];
        for (int r = r0; r < r1; r++) {
            size_t i = (size_t)r * C + c;
            float g = clampf_k(s[i], eps, 1.0f - eps);
            if (dv)
                dv[i] += d * g;
            if (da && s[i] >= eps && s[i] <= 1.0f - eps)
                da[i] += d * (v[i] - o) * s[i] * (1.0f - s[i]);
        }
    }
}

void avs_cu_attpool_bwd(float *da, float *dv, const float *dy, const float *s, const float *v,
                        const float *y, const int *off, int N, int T, int C, float eps)
{
    if ((size_t)N * C == 0)
        return;
    AVS_K_GO(attpool_bwd_k, (size_t)N * C)(da, dv, dy, s, v, y, off, N, T, C, eps);
    AVS_CU_LAUNCHED("attpool_bwd", "N=%d T=%d C=%d", N, T, C);
}

__global__ static void quant8_k(float *y, const float *x, size_t n)
{
    AVS_K_FOR(i, n) {
        float byte = nearbyintf((clampf_k(x[i], -2.0f, 2.0f) + 2.0f) * (255.0f / 4.0f));
        y[i] = (byte - 128.0f) / 128.0f;
    }
}

void avs_cu_quant8_fwd(float *y, const float *x, size_t n)
{
    if (!n)
        return;
    AVS_K_GO(quant8_k, n)(y, x, n);
    AVS_CU_LAUNCHED("quant8_fwd", "n=%zu", n);
}

__device__ static float unit_k(unsigned long long seed, size_t i)
{
    unsigned long long z = seed * 0x9e3779b97f4a7c15ull + (unsigned long long)i + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

__global__ static void dropout_fwd_k(float *y, float *mask, const float *x, size_t n, float p,
                                     unsigned long long seed)
{
    float keep = 1.0f / (1.0f - p);
    AVS_K_FOR(i, n) {
        mask[i] = unit_k(seed, i) < p ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
}

void avs_cu_dropout_fwd(float *y, float *mask, const float *x, size_t n, float p,
                        unsigned long long seed)
{
    if (!n)
        return;
    AVS_K_GO(dropout_fwd_k, n)(y, mask, x, n, p, seed);
    AVS_CU_LAUNCHED("dropout_fwd", "n=%zu", n);
}

__global__ static void dropout_bwd_k(float *dx, const float *dy, const float *mask, size_t n)
{
    AVS_K_FOR(i, n) dx[i] += dy[i] * mask[i];
}

void avs_cu_dropout_bwd(float *dx, const float *dy, const float *mask, size_t n)
{
    if (!n)
        return;
    AVS_K_GO(dropout_bwd_k, n)(dx, dy, mask, n);
    AVS_CU_LAUNCHED("dropout_bwd", "n=%zu", n);
}
