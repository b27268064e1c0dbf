/* backend/cuda/k_elem.cu: the element-wise primitives of the CUDA backend (backend/ops.h):
 * activations, bias, broadcast add/mul forward, axpy, channel concat, and the backward passes
 * of the means (a broadcast). One thread per output element (grid-stride), coalesced; each
 * element's arithmetic is the cpu's (backend/cpu/ops_cpu.c) through backend/cuda/k_math.h. */
#include <stdint.h>

#include "backend/cuda/k_loop.cuh"

/* ---- activations ---- */

__global__ static void relu_fwd_k(float *y, const float *x, size_t n)
{
    AVS_K_FOR(i, n) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

__global__ static void relu_bwd_k(float *dx, const float *dy, const float *x, size_t n)
{
    AVS_K_FOR(i, n) dx[i] += x[i] > 0 ? dy[i] : 0.0f;
}

__global__ static void gelu_fwd_k(float *y, const float *x, size_t n)
{
    AVS_K_FOR(i, n) y[i] = avs_k_gelu(x[i]);
}

__global__ static void gelu_bwd_k(float *dx, const float *dy, const float *x, size_t n)
{
    AVS_K_FOR(i, n) dx[i] += dy[i] * avs_k_gelu_grad(x[i]);
}

__global__ static void sigmoid_fwd_k(float *y, const float *x, size_t n)
{
    AVS_K_FOR(i, n) y[i] = avs_k_sigmoid(x[i]);
}

__global__ static void sigmoid_bwd_k(float *dx, const float *dy, const float *y, size_t n)
{
    AVS_K_FOR(i, n) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

void avs_cu_relu_fwd(float *y, const float *x, size_t n)
{
    AVS_K_GO(relu_fwd_k, n)(y, x, n);
    AVS_CU_LAUNCHED("relu_fwd", "n=%zu", n);
}

void avs_cu_relu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    AVS_K_GO(relu_bwd_k, n)(dx, dy, x, n);
    AVS_CU_LAUNCHED("relu_bwd", "n=%zu", n);
}

void avs_cu_gelu_fwd(float *y, const float *x, size_t n)
{
    AVS_K_GO(gelu_fwd_k, n)(y, x, n);
    AVS_CU_LAUNCHED("gelu_fwd", "n=%zu", n);
}

void avs_cu_gelu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    AVS_K_GO(gelu_bwd_k, n)(dx, dy, x, n);
    AVS_CU_LAUNCHED("gelu_bwd", "n=%zu", n);
}

void avs_cu_sigmoid_fwd(float *y, const float *x, size_t n)
{
    AVS_K_GO(sigmoid_fwd_k, n)(y, x, n);
    AVS_CU_LAUNCHED("sigmoid_fwd", "n=%zu", n);
}

void avs_cu_sigmoid_bwd(float *dx, const float *dy, const float *y, size_t n)
{
    AVS_K_GO(sigmoid_bwd_k, n)(dx, dy, y, n);
    AVS_CU_LAUNCHED("sigmoid_bwd", "n=%zu", n);
}

/* ---- bias, axpy ---- */

template <class I> __global__ static void bias_fwd_k(float *y, const float *b, size_t n, int cols)
{
    AVS_K_FOR_T(I, i, n) y[i] += b[i % (I)cols];
}

void avs_cu_bias_fwd(float *y, const float *b, int rows, int cols)
{
    size_t n = (size_t)rows * cols;
    if (n == 0)
        return;
    AVS_K_GO_IDX(bias_fwd_k, n, y, b, n, cols);
    AVS_CU_LAUNCHED("bias_fwd", "rows=%d cols=%d", rows, cols);
}

/* 4 floats a thread where both pointers are 16-byte aligned (the arenas' tensors are) */
__global__ static void axpy_k(float *y, float alpha, const float *x, size_t n)
{
    size_t n4 = ((uintptr_t)y % 16 == 0 && (uintptr_t)x % 16 == 0) ? n / 4 : 0;
    float4 *y4 = (float4 *)y;
    const float4 *x4 = (const float4 *)x;
    AVS_K_FOR(i, n4) {
        float4 a = y4[i], b = x4[i];
        a.x += alpha * b.x, a.y += alpha * b.y, a.z += alpha * b.z, a.w += alpha * b.w;
        y4[i] = a;
    }
    AVS_K_FOR(k, n - 4 * n4) y[4 * n4 + k] += alpha * x[4 * n4 + k];
}

void avs_cu_axpy(float *y, float alpha, const float *x, size_t n)
{
    AVS_K_GO(axpy_k, n / 4 + 1)(y, alpha, x, n);
    AVS_CU_LAUNCHED("axpy", "n=%zu", n);
}

/* ---- broadcast add / mul ---- */

template <class I>
__global__ static void add_fwd_k(float *y, const float *x, const float *s, struct avs_bcast bc,
                                 size_t n)
{
    AVS_K_FOR_T(I, i, n) y[i] = x[i] + s[avs_k_bc_at(bc, i)];
}

template <class I>
__global__ static void mul_fwd_k(float *y, const float *x, const float *s, struct avs_bcast bc,
                                 size_t n)
{
    AVS_K_FOR_T(I, i, n) y[i] = x[i] * s[avs_k_bc_at(bc, i)];
}

static size_t bc_total(const struct avs_bcast *bc)
{
    return (size_t)bc->N * bc->C * bc->HW;
}

void avs_cu_add_fwd(float *y, const float *x, const float *s, const struct avs_bcast *bc)
{
    size_t n = bc_total(bc);
    if (n == 0)
        return;
    AVS_K_GO_IDX(add_fwd_k, n, y, x, s, *bc, n);
    AVS_CU_LAUNCHED("add_fwd", "N=%d C=%d HW=%d", bc->N, bc->C, bc->HW);
}

void avs_cu_mul_fwd(float *y, const float *x, const float *s, const struct avs_bcast *bc)
{
    size_t n = bc_total(bc);
    if (n == 0)
        return;
    AVS_K_GO_IDX(mul_fwd_k, n, y, x, s, *bc, n);
    AVS_CU_LAUNCHED("mul_fwd", "N=%d C=%d HW=%d", bc->N, bc->C, bc->HW);
}

/* ---- concat ---- */

/* element i of x [N,Cx,HW] is element of y [N,Cy,HW] at channel c0 + c (in y's index type:
 * y is larger than x, so the caller picks I by y's size) */
template <class I> static __device__ I concat_at(I i, I CxHW, int Cy, int c0, int HW)
{
    I n = i / CxHW, r = i % CxHW;
    return (n * Cy + c0) * (I)HW + r;
}

template <class I>
__global__ static void concat_fwd_k(float *y, const float *x, size_t n, size_t CxHW, int Cy,
                                    int c0, int HW)
{
    AVS_K_FOR_T(I, i, n) y[concat_at<I>(i, (I)CxHW, Cy, c0, HW)] = x[i];
}

template <class I>
__global__ static void concat_bwd_k(float *dx, const float *dy, size_t n, size_t CxHW, int Cy,
                                    int c0, int HW)
{
    AVS_K_FOR_T(I, i, n) dx[i] += dy[concat_at<I>(i, (I)CxHW, Cy, c0, HW)];
}

/* launch kernel<unsigned> when y [N,Cy,HW] fits 32-bit indices */
#define CONCAT_GO(kernel, ny, n, ...)                                                           \
    do {                                                                                        \
        if ((ny) <= (size_t)INT_MAX)                                                            \
            AVS_K_GO(kernel<unsigned>, n)(__VA_ARGS__);                                         \
        else                                                                                    \
            AVS_K_GO(kernel<size_t>, n)(__VA_ARGS__);                                           \
    } while (0)

void avs_cu_concat_fwd(float *y, const float *x, int N, int Cx, int HW, int Cy, int c0)
{
    size_t n = (size_t)N * Cx * HW;
    if (n == 0)
        return;
    CONCAT_GO(concat_fwd_k, (size_t)N * Cy * HW, n, y, x, n, (size_t)Cx * HW, Cy, c0, HW);
    AVS_CU_LAUNCHED("concat_fwd", "N=%d Cx=%d HW=%d Cy=%d c0=%d", N, Cx, HW, Cy, c0);
}

void avs_cu_concat_bwd(float *dx, const float *dy, int N, int Cx, int HW, int Cy, int c0)
{
    size_t n = (size_t)N * Cx * HW;
    if (n == 0)
        return;
    CONCAT_GO(concat_bwd_k, (size_t)N * Cy * HW, n, dx, dy, n, (size_t)Cx * HW, Cy, c0, HW);
    AVS_CU_LAUNCHED("concat_bwd", "N=%d Cx=%d HW=%d Cy=%d c0=%d", N, Cx, HW, Cy, c0);
}

/* ---- the means' backward: a broadcast of dy / count ---- */

template <class I> __global__ static void mean_bwd_k(float *dx, const float *dy, size_t tot, int n)
{
    AVS_K_FOR_T(I, i, tot) dx[i] += dy[i / (I)n] / (float)n;
}

/* dx [N,C,HW] += dy [N,HW] / C */
template <class I>
__global__ static void chmean_bwd_k(float *dx, const float *dy, size_t tot, int C, int HW)
{
    AVS_K_FOR_T(I, k, tot) {
        I i = k % (I)HW, nn = k / ((I)C * (I)HW);
        dx[k] += dy[nn * HW + i] / (float)C;
    }
}

void avs_cu_mean_bwd(float *dx, const float *dy, int rows, int n)
{
    size_t tot = (size_t)rows * n;
    if (tot == 0)
        return;
    AVS_K_GO_IDX(mean_bwd_k, tot, dx, dy, tot, n);
    AVS_CU_LAUNCHED("mean_bwd", "rows=%d n=%d", rows, n);
}

void avs_cu_chmean_bwd(float *dx, const float *dy, int N, int C, int HW)
{
    size_t tot = (size_t)N * C * HW;
    if (tot == 0)
        return;
    AVS_K_GO_IDX(chmean_bwd_k, tot, dx, dy, tot, C, HW);
    AVS_CU_LAUNCHED("chmean_bwd", "N=%d C=%d HW=%d", N, C, HW);
}
