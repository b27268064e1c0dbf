/* backend/cpu/tokens.c: the CPU's PVT/VGGish primitives (backend/ops.h, "PVT/VGGish"): the
 * tokens <-> map transpose, PVTv2's depthwise 3x3 conv on the token grid (forward, data and
 * filter gradients), the token mean, VGGish's 2x2 and ResNet's 3x3 stride-2 max-pools.
 * Every output element has one writer and a fixed summation order (the filter gradient's row
 * partials are reduced in row order), so the bits do not depend on the thread count. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"

/* OpenMP only pays off above a few tens of thousands of elements. */
#define PAR_MIN 32768
/* Transpose tiles: 32 x 32 floats read and written within L1. */
#define TILE 32

void avs_cpu_transpose(float *y, const float *x, int N, int R, int C)
{
    long tr = (R + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE, nt = (long)N * tr * tc;
#pragma omp parallel for schedule(static) if ((size_t)N * R * C > PAR_MIN)
    for (long t = 0; t < nt; t++) {
        long n = t / (tr * tc), k = t % (tr * tc);
        int r0 = (int)(k / tc) * TILE, c0 = (int)(k % tc) * TILE;
        int r1 = R - r0 < TILE ? R : r0 + TILE, c1 = C - c0 < TILE ? C : c0 + TILE;
        const float *xs = x + (size_t)n * R * C;
        float *ys = y + (size_t)n * R * C;
        for (int c = c0; c < c1; c++)
            for (int r = r0; r < r1; r++)
                ys[(size_t)c * R + r] = xs[(size_t)r * C + c];
    }
}

/* Depthwise 3x3 weights [C,1,3,3] as wt [9][C] (contiguous per tap, for loops along channels). */
static void taps_major(float *wt, const float *w, int C)
{
    for (int c = 0; c < C; c++)
        for (int t = 0; t < 9; t++)
            wt[(size_t)t * C + c] = w[c * 9 + t];
}

/* Channels innermost, so the loop runs along contiguous channels of each token. Same sum as
 * nn.Conv2d(C, C, 3, 1, 1, groups=C) on the NCHW view (order: bias, then taps row by row). */
void avs_cpu_dwconv3_fwd(float *y, const float *x, const float *w, const float *b, int N, int H,
                         int W, int C, float *ws)
{
    const float *wt = ws;
    taps_major(ws, w, C);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *restrict o = y + (((size_t)n * H + i) * W + j) * C;
#pragma omp simd
                for (int c = 0; c < C; c++)
                    o[c] = b[c];
                for (int di = -1; di <= 1; di++) {
                    if (i + di < 0 || i + di >= H)
                        continue;
                    for (int dj = -1; dj <= 1; dj++) {
                        if (j + dj < 0 || j + dj >= W)
                            continue;
                        const float *restrict p = x + (((size_t)n * H + i + di) * W + j + dj) * C;
                        const float *restrict wk = wt + (size_t)((di + 1) * 3 + dj + 1) * C;
#pragma omp simd
                        for (int c = 0; c < C; c++)
                            o[c] += wk[c] * p[c];
                    }
                }
            }
}

/* dx += the taps that read each input token (the same taps, mirrored). */
void avs_cpu_dwconv3_bwd_data(float *dx, const float *dy, const float *w, int N, int H, int W,
                              int C, float *ws)
{
    const float *wt = ws;
    taps_major(ws, w, C);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *restrict o = dx + (((size_t)n * H + i) * W + j) * C;
                /* output (i-di, j-dj) read this token through tap (di, dj) */
                for (int di = -1; di <= 1; di++) {
                    if (i - di < 0 || i - di >= H)
                        continue;
                    for (int dj = -1; dj <= 1; dj++) {
                        if (j - dj < 0 || j - dj >= W)
                            continue;
                        const float *restrict g = dy + (((size_t)n * H + i - di) * W + j - dj) * C;
                        const float *restrict wk = wt + (size_t)((di + 1) * 3 + dj + 1) * C;
#pragma omp simd
                        for (int c = 0; c < C; c++)
                            o[c] += wk[c] * g[c];
                    }
                }
            }
}

/* The 10 partial sums [10][C] (9 taps, then the bias) of token row (n, i), in double along the
 * contiguous channels (one pass over dy and x, vectorised). */
static void dw_row_partials(double *acc, const float *dy, const float *x, int n, int i, int H,
                            int W, int C)
{
    memset(acc, 0, (size_t)10 * C * sizeof(double));
    for (int j = 0; j < W; j++) {
        const float *restrict gy = dy + (((size_t)n * H + i) * W + j) * C;
        double *restrict ab = acc + (size_t)9 * C;
#pragma omp simd
        for (int c = 0; c < C; c++)
            ab[c] += gy[c];
        for (int di = -1; di <= 1; di++) {
            if (i + di < 0 || i + di >= H)
                continue;
            for (int dj = -1; dj <= 1; dj++) {
                if (j + dj < 0 || j + dj >= W)
                    continue;
                const float *restrict xp = x + (((size_t)n * H + i + di) * W + j + dj) * C;
                double *restrict at = acc + (size_t)((di + 1) * 3 + dj + 1) * C;
#pragma omp simd
                for (int c = 0; c < C; c++)
                    at[c] += (double)gy[c] * xp[c];
            }
        }
    }
}

/* dw [C,1,3,3] += sum dy * shifted x, db [C] += sum dy: each token row's partials (ws, as
 * doubles [N*H][10][C]), then the rows added in row order per channel. (A loop per channel
 * strided through the whole map, one cache line per product, was 7% of a fine-tuning step.) */
void avs_cpu_dwconv3_bwd_filter(float *dw, float *db, const float *dy, const float *x, int N,
                                int H, int W, int C, float *ws)
{
    int rows = N * H;
    double *part = (double *)ws; /* 20*N*H*C floats hold [rows][10][C] doubles */
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        dw_row_partials(part + (size_t)r * 10 * C, dy, x, r / H, r % H, H, W, C);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double acc[10] = {0};
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < 10; t++)
                acc[t] += part[((size_t)r * 10 + t) * C + c];
        for (int t = 0; t < 9; t++)
            dw[c * 9 + t] += (float)acc[t];
        if (db)
            db[c] += (float)acc[9];
    }
}

/* 64 channels at a time along the token rows (a channel at a time would stride through the
 * whole map); each (n, c) still sums its positions in order. */
void avs_cpu_tokmean_fwd(float *y, const float *x, int N, int L, int C)
{
    int nb = (C + 63) / 64;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * L * C > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int k = 0; k < nb; k++) {
            int c0 = k * 64, nc = C - c0 < 64 ? C - c0 : 64;
            double acc[64] = {0};
            for (int l = 0; l < L; l++) {
                const float *restrict p = x + ((size_t)n * L + l) * C + c0;
#pragma omp simd
                for (int c = 0; c < nc; c++)
                    acc[c] += p[c];
            }
            for (int c = 0; c < nc; c++)
                y[(size_t)n * C + c0 + c] = (float)(acc[c] / L);
        }
}

void avs_cpu_tokmean_bwd(float *dx, const float *dy, int N, int L, int C)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * L * C > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int l = 0; l < L; l++) {
            float *restrict o = dx + ((size_t)n * L + l) * C;
            const float *restrict g = dy + (size_t)n * C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                o[c] += g[c] / (float)L;
        }
}

void avs_cpu_maxpool2_fwd(float *y, const float *x, int NC, int H, int W)
{
    int OH = H / 2, OW = W / 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const float *p = x + ((size_t)c * H + 2 * i) * W + 2 * j;
                float a = p[0] > p[1] ? p[0] : p[1], b = p[W] > p[W + 1] ? p[W] : p[W + 1];
                y[((size_t)c * OH + i) * OW + j] = a > b ? a : b;
            }
}

/* the max of row i (may be out of the map: -inf) over columns 2j-1..2j+1 of x [H,W] */
static float pool_row3(const float *x, int H, int W, int i, int j)
{
    float m = -INFINITY;
    if (i < 0 || i >= H)
        return m;
    for (int c = 2 * j - 1; c <= 2 * j + 1; c++)
        if (c >= 0 && c < W && x[(size_t)i * W + c] > m)
            m = x[(size_t)i * W + c];
    return m;
}

void avs_cpu_maxpool3s2_fwd(float *y, const float *x, int NC, int H, int W)
{
    int OH = (H + 1) / 2, OW = (W + 1) / 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int c = 0; c < NC; c++) {
        const float *p = x + (size_t)c * H * W;
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                float m = pool_row3(p, H, W, 2 * i - 1, j), b = pool_row3(p, H, W, 2 * i, j),
                      d = pool_row3(p, H, W, 2 * i + 1, j);
                m = b > m ? b : m;
                y[((size_t)c * OH + i) * OW + j] = d > m ? d : m;
            }
    }
}

/* Row-major index in x [H,W] of the maximum of output (i, j)'s 3x3 window (rows 2i-1..2i+1,
 * columns 2j-1..2j+1, inside the map): the first one on ties, as PyTorch's max_pool2d (its
 * index starts at the first cell inside, replaced only by a strictly larger value). */
static int pool_arg3(const float *x, int H, int W, int i, int j)
{
    int best = -1;
    for (int r = 2 * i - 1; r <= 2 * i + 1; r++)
        for (int c = 2 * j - 1; c <= 2 * j + 1; c++)
            if (r >= 0 && r < H && c >= 0 && c < W &&
                (best < 0 || x[(size_t)r * W + c] > x[best]))
                best = r * W + c;
    return best;
}

/* dx [r,c] += the sum, in output order, of dy over the (at most 2x2) windows whose maximum
 * is (r, c); backend/cuda/k_resize.cu computes the same sum per element. */
void avs_cpu_maxpool3s2_bwd(float *dx, const float *dy, const float *x, int NC, int H, int W)
{
    int OH = (H + 1) / 2, OW = (W + 1) / 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int p = 0; p < NC; p++) {
        const float *xp = x + (size_t)p * H * W, *g = dy + (size_t)p * OH * OW;
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++) {
                int i1 = (r + 1) / 2 < OH ? (r + 1) / 2 : OH - 1;
                int j1 = (c + 1) / 2 < OW ? (c + 1) / 2 : OW - 1;
                float s = 0.0f;
                for (int i = r / 2; i <= i1; i++)
                    for (int j = c / 2; j <= j1; j++)
                        if (pool_arg3(xp, H, W, i, j) == r * W + c)
                            s += g[(size_t)i * OW + j];
                dx[((size_t)p * H + r) * W + c] += s;
            }
    }
}

/* ref: F.avg_pool2d(x, kernel_size=2) (stride 2, no padding: floor): the mean of the 4, summed
 * in the order PyTorch's CPU kernel adds them (row by row) and divided by 4. */
void avs_cpu_avgpool2_fwd(float *y, const float *x, int NC, int H, int W)
{
    int OH = H / 2, OW = W / 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const float *p = x + ((size_t)c * H + 2 * i) * W + 2 * j;
                y[((size_t)c * OH + i) * OW + j] = (((p[0] + p[1]) + p[W]) + p[W + 1]) / 4.0f;
            }
}

/* ref: torch.max(x, dim=-1).values */
void avs_cpu_rowmax_fwd(float *y, const float *x, int rows, int n)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *p = x + (size_t)r * n;
        float m = p[0];
        for (int i = 1; i < n; i++)
            m = p[i] > m ? p[i] : m;
        y[r] = m;
    }
}
