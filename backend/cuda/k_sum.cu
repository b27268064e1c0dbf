/* backend/cuda/k_sum.cu: the CUDA primitives that are sums (backend/ops.h): bias_bwd, add_bwd,
 * mul_bwd, mean_fwd, chmean_fwd. Every sum is in double with a fixed split and tree
 * (backend/cuda/k_reduce.cuh): the same bits for the same inputs on the same GPU. The cpu sums
 * in double too (other orders), so results agree to the float rounding of the double sum. */
#include "backend/cuda/k_reduce.cuh"

/* db [cols] += column sums of dy [rows, cols] */
void avs_cu_bias_bwd(float *db, const float *dy, int rows, int cols)
{
    avs_k_col_sum(1, rows, cols, avs_k_ld1{dy}, avs_k_fin_add{db}, "bias_bwd");
}

void avs_cu_mean_fwd(float *y, const float *x, int rows, int n)
{
    avs_k_plane_sum(1, rows, n, avs_k_ld1{x}, avs_k_fin_mean{y, n}, "mean_fwd");
}

/* y [N,HW] = mean over C of x [N,C,HW]: columns of C rows per image */
void avs_cu_chmean_fwd(float *y, const float *x, int N, int C, int HW)
{
    avs_k_col_sum(N, C, HW, avs_k_ld1{x}, avs_k_fin_mean{y, C}, "chmean_fwd");
}

/* ---- broadcast reductions: ds [the axes s has] += sum of load over the others ---- */

template <class L> __global__ static void bc_same_k(float *ds, L load, size_t n)
{
    AVS_K_FOR(i, n) ds[i] += (float)load(i);
}

/* Each pattern of kept axes is a view of [N,C,HW] (backend/cuda/k_math.h avs_k_bc_view) */
template <class L>
static void bcast_reduce(float *ds, L load, const struct avs_bcast *bc, const char *op)
{
    int N = bc->N, C = bc->C, HW = bc->HW;
    avs_k_fin_add fin{ds};
    size_t n = (size_t)N * C * HW;
    if (n == 0)
        return;
    struct avs_k_view v = avs_k_bc_view(bc);
    if (v.kind == AVS_K_VIEW_SAME) {
        AVS_K_GO(bc_same_k<L>, n)(ds, load, n);
        AVS_CU_LAUNCHED(op, "N=%d C=%d HW=%d", N, C, HW);
    } else if (v.kind == AVS_K_VIEW_PLANE)
        avs_k_plane_sum(v.a, v.b, v.c, load, fin, op);
    else
        avs_k_col_sum(v.a, v.b, v.c, load, fin, op);
}

void avs_cu_add_bwd(float *ds, const float *dy, const struct avs_bcast *bc)
{
    bcast_reduce(ds, avs_k_ld1{dy}, bc, "add_bwd");
}

template <class I>
__global__ static void mul_bwd_dx_k(float *dx, const float *dy, const float *s,
                                    struct avs_bcast bc, size_t n)
{
    AVS_K_FOR_T(I, i, n) dx[i] += dy[i] * s[avs_k_bc_at(bc, i)];
}

void avs_cu_mul_bwd(float *dx, float *ds, const float *dy, const float *x, const float *s,
                    const struct avs_bcast *bc)
{
    size_t n = (size_t)bc->N * bc->C * bc->HW;
    if (dx && n) {
        AVS_K_GO_IDX(mul_bwd_dx_k, n, dx, dy, s, *bc, n);
        AVS_CU_LAUNCHED("mul_bwd", "N=%d C=%d HW=%d", bc->N, bc->C, bc->HW);
    }
    if (ds)
        bcast_reduce(ds, avs_k_ld2{dy, x}, bc, "mul_bwd");
}
