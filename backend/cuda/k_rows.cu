/* backend/cuda/k_rows.cu: row gather and scatter-add on the GPU (backend/ops.h, "rows"):
 * the gather is a thread per element; the scatter a thread per column walking the rows in
 * index order (the cpu's order, no atomics), so rows hit several times add up as on the cpu. */
#include "backend/cuda/k_reduce.cuh"

template <class I>
__global__ static void gather_rows_k(float *y, const float *x, const int *idx, size_t tot, int C)
{
    AVS_K_FOR_T(I, k, tot) y[k] = x[(I)idx[k / (I)C] * (I)C + k % (I)C];
}

void avs_cu_gather_rows(float *y, const float *x, const int *idx, int n, int C)
{
    size_t tot = (size_t)n * C;
    if (tot == 0)
        return;
    AVS_K_GO_IDX(gather_rows_k, tot, y, x, idx, tot, C);
    AVS_CU_LAUNCHED("gather_rows", "n=%d C=%d", n, C);
}

template <class I>
__global__ static void scatter_rows_k(float *y, const float *x, const int *idx, int n, int C)
{
    AVS_K_FOR_T(I, c, (size_t)C)
    for (int i = 0; i < n; i++)
        y[(I)idx[i] * (I)C + c] += x[(I)i * (I)C + c];
}

void avs_cu_scatter_rows_add(float *y, const float *x, const int *idx, int n, int C)
{
    if ((size_t)n * C == 0)
        return;
    if ((size_t)n * C <= (size_t)INT_MAX) /* a thread per column; index arithmetic by size */
        AVS_K_GO(scatter_rows_k<unsigned>, C)(y, x, idx, n, C);
    else
        AVS_K_GO(scatter_rows_k<size_t>, C)(y, x, idx, n, C);
    AVS_CU_LAUNCHED("scatter_rows_add", "n=%d C=%d", n, C);
}
