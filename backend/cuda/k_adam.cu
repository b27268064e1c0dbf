/* backend/cuda/k_adam.cu: Adam of the CUDA backend (backend/ops.h adam, adam_zero): torch
 * 1.13's _single_tensor_adam, the constants rounded on the host as the cpu does and the
 * per-element update of backend/cuda/k_math.h (avs_k_adam_step), one thread per element,
 * 4 at a time where the four arrays are 16-byte aligned. */
#include <stdint.h>

#include "backend/cuda/k_loop.cuh"

static __device__ __forceinline__ void step4(float4 *p, float4 *m, float4 *v, float4 g,
                                             const struct avs_k_adam *k)
{
    avs_k_adam_step(&p->x, &m->x, &v->x, g.x, k);
    avs_k_adam_step(&p->y, &m->y, &v->y, g.y, k);
    avs_k_adam_step(&p->z, &m->z, &v->z, g.z, k);
    avs_k_adam_step(&p->w, &m->w, &v->w, g.w, k);
}

__global__ static void adam_k(float *p, float *g, float *m, float *v, size_t n,
                              struct avs_k_adam k, int zero)
{
    int al = ((uintptr_t)p | (uintptr_t)g | (uintptr_t)m | (uintptr_t)v) % 16 == 0;
    size_t n4 = al ? n / 4 : 0;
    AVS_K_FOR(i, n4) {
        float4 pi = ((float4 *)p)[i], mi = ((float4 *)m)[i], vi = ((float4 *)v)[i];
        step4(&pi, &mi, &vi, ((const float4 *)g)[i], &k);
        ((float4 *)p)[i] = pi, ((float4 *)m)[i] = mi, ((float4 *)v)[i] = vi;
        if (zero)
            ((float4 *)g)[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    AVS_K_FOR(j, n - 4 * n4) {
        size_t i = 4 * n4 + j;
        avs_k_adam_step(p + i, m + i, v + i, g[i], &k);
        if (zero)
            g[i] = 0;
    }
}

static void adam_run(float *p, float *g, float *m, float *v, size_t n, double lr, double b1,
                     double b2, double eps, double wd, long step, int zero, const char *op)
{
    if (n == 0)
        return;
    struct avs_k_adam k = avs_k_adam_consts(lr, b1, b2, eps, wd, step);
    AVS_K_GO(adam_k, n / 4 + 1)(p, g, m, v, n, k, zero);
    AVS_CU_LAUNCHED(op, "n=%zu step=%ld", n, step);
}

void avs_cu_adam(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                 double b2, double eps, double wd, long step)
{
    adam_run(p, (float *)g, m, v, n, lr, b1, b2, eps, wd, step, 0, "adam"); /* g only read */
}

void avs_cu_adam_zero(float *p, float *g, float *m, float *v, size_t n, double lr, double b1,
                      double b2, double eps, double wd, long step)
{
    adam_run(p, g, m, v, n, lr, b1, b2, eps, wd, step, 1, "adam_zero");
}
