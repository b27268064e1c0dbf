/* backend/cuda/k_tokens.cu: the PVT/VGGish token primitives on the GPU (backend/ops.h):
 * transpose (32x32 shared-memory tiles), PVTv2's depthwise 3x3 conv on tokens [N,H,W,C]
 * (a thread per element, channels innermost: coalesced; the weights tap-major in ws), its
 * data gradient (a gather of the mirrored taps), its filter gradient (per token row, tap and
 * channel a double partial in ws, then the rows added in order: the cpu's order, no atomics),
 * and the token mean (a fixed-order column sum). */
#include "backend/cuda/k_reduce.cuh"

/* ---- transpose: y [N,C,R] = x [N,R,C] ---- */

#define TILE 32

__global__ static void transpose_k(float *y, const float *x, int N, int R, int C)
{
    __shared__ float t[TILE][TILE + 1];
    int c0 = blockIdx.x * TILE;
    for (int n = blockIdx.z; n < N; n += gridDim.z)
        for (int r0 = blockIdx.y * TILE; r0 < R; r0 += gridDim.y * TILE) {
            const float *xs = x + (size_t)n * R * C;
            float *ys = y + (size_t)n * R * C;
            for (int k = threadIdx.y; k < TILE; k += blockDim.y) {
                int r = r0 + k, c = c0 + threadIdx.x;
                if (r < R && c < C)
                    t[k][threadIdx.x] = xs[(size_t)r * C + c];
            }
            __syncthreads();
            for (int k = threadIdx.y; k < TILE; k += blockDim.y) {
                int c = c0 + k, r = r0 + threadIdx.x;
                if (r < R && c < C)
                    ys[(size_t)c * R + r] = t[threadIdx.x][k];
            }
            __syncthreads();
        }
}

void avs_cu_transpose(float *y, const float *x, int N, int R, int C)
{
    if ((size_t)N * R * C == 0)
        return;
    int tr = (R + TILE - 1) / TILE;
    dim3 grid((unsigned)((C + TILE - 1) / TILE), (unsigned)(tr < 65535 ? tr : 65535),
              (unsigned)(N < 65535 ? N : 65535));
    transpose_k<<<grid, dim3(TILE, AVS_CU_BLOCK / TILE), 0, avs_cu_stream()>>>(y, x, N, R, C);
    AVS_CU_LAUNCHED("transpose", "N=%d R=%d C=%d", N, R, C);
}

/* ---- depthwise 3x3 conv ---- */

/* wt [9][C] from w [C,1,3,3] */
__global__ static void taps_major_k(float *wt, const float *w, int C)
{
    AVS_K_FOR(k, (size_t)9 * C) wt[k] = w[(k % C) * 9 + k / C];
}

static const float *taps_major(float *ws, const float *w, int C, const char *op)
{
    AVS_K_GO(taps_major_k, (size_t)9 * C)(ws, w, C);
    AVS_CU_LAUNCHED(op, "C=%d (taps)", C);
    return ws;
}

template <class I>
__global__ static void dw_fwd_k(float *y, const float *x, const float *wt, const float *b,
                                size_t tot, int H, int W, int C)
{
    AVS_K_FOR_T(I, k, tot) {
        I t = k / (I)C;
        int c = (int)(k % C), j = (int)(t % W), i = (int)(t / W % H), n = (int)(t / W / H);
        y[k] = avs_k_dw_fwd_at(x, wt, b, H, W, C, n, i, j, c);
    }
}

template <class I>
__global__ static void dw_bwd_data_k(float *dx, const float *dy, const float *wt, size_t tot,
                                     int H, int W, int C)
{
    AVS_K_FOR_T(I, k, tot) {
        I t = k / (I)C;
        int c = (int)(k % C), j = (int)(t % W), i = (int)(t / W % H), n = (int)(t / W / H);
        dx[k] = avs_k_dw_bwd_at(dx[k], dy, wt, H, W, C, n, i, j, c);
    }
}

void avs_cu_dwconv3_fwd(float *y, const float *x, const float *w, const float *b, int N, int H,
                        int W, int C, float *ws)
{
    size_t tot = (size_t)N * H * W * C;
    if (tot == 0)
        return;
    const float *wt = taps_major(ws, w, C, "dwconv3_fwd");
    AVS_K_GO_IDX(dw_fwd_k, tot, y, x, wt, b, tot, H, W, C);
    AVS_CU_LAUNCHED("dwconv3_fwd", "N=%d H=%d W=%d C=%d", N, H, W, C);
}

void avs_cu_dwconv3_bwd_data(float *dx, const float *dy, const float *w, int N, int H, int W,
                             int C, float *ws)
{
    size_t tot = (size_t)N * H * W * C;
    if (tot == 0)
        return;
    const float *wt = taps_major(ws, w, C, "dwconv3_bwd_data");
    AVS_K_GO_IDX(dw_bwd_data_k, tot, dx, dy, wt, tot, H, W, C);
    AVS_CU_LAUNCHED("dwconv3_bwd_data", "N=%d H=%d W=%d C=%d", N, H, W, C);
}

/* part [rows][10][C] doubles: token row r = n*H + i, tap t, channel c */
__global__ static void dw_partials_k(double *part, const float *dy, const float *x, int N, int H,
                                     int W, int C)
{
    AVS_K_FOR(k, (size_t)N * H * 10 * C) {
        int c = (int)(k % C), t = (int)(k / C % 10);
        size_t r = k / ((size_t)10 * C);
        part[k] = avs_k_dw_row_partial(dy, x, H, W, C, (int)(r / H), (int)(r % H), c, t);
    }
}

/* per (t, c): the rows' partials in row order */
__global__ static void dw_rows_k(float *dw, float *db, const double *part, int rows, int C)
{
    AVS_K_FOR(k, (size_t)10 * C) {
        int c = (int)(k % C), t = (int)(k / C);
        double acc = 0;
        for (int r = 0; r < rows; r++)
            acc += part[((size_t)r * 10 + t) * C + c];
        if (t < 9)
            dw[c * 9 + t] += (float)acc;
        else if (db)
            db[c] += (float)acc;
    }
}

void avs_cu_dwconv3_bwd_filter(float *dw, float *db, const float *dy, const float *x, int N,
                               int H, int W, int C, float *ws)
{
    if ((size_t)N * H * W * C == 0)
        return;
    double *part = (double *)ws; /* avs_dwconv3_ws: 20*N*H*C floats = 10*N*H*C doubles */
    AVS_K_GO(dw_partials_k, (size_t)N * H * 10 * C)(part, dy, x, N, H, W, C);
    AVS_CU_LAUNCHED("dwconv3_bwd_filter", "N=%d H=%d W=%d C=%d", N, H, W, C);
    AVS_K_GO(dw_rows_k, (size_t)10 * C)(dw, db, part, N * H, C);
    AVS_CU_LAUNCHED("dwconv3_bwd_filter", "N=%d H=%d W=%d C=%d (rows)", N, H, W, C);
}

/* ---- token mean ---- */

void avs_cu_tokmean_fwd(float *y, const float *x, int N, int L, int C)
{
    avs_k_col_sum(N, L, C, avs_k_ld1{x}, avs_k_fin_mean{y, L}, "tokmean_fwd");
}

template <class I>
__global__ static void tokmean_bwd_k(float *dx, const float *dy, size_t tot, int L, int C)
{
    AVS_K_FOR_T(I, k, tot) dx[k] += dy[k / ((I)L * (I)C) * C + k % (I)C] / (float)L;
}

void avs_cu_tokmean_bwd(float *dx, const float *dy, int N, int L, int C)
{
    size_t tot = (size_t)N * L * C;
    if (tot == 0)
        return;
    AVS_K_GO_IDX(tokmean_bwd_k, tot, dx, dy, tot, L, C);
    AVS_CU_LAUNCHED("tokmean_bwd", "N=%d L=%d C=%d", N, L, C);
}
