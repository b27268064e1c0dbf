/* backend/cpu/head.c: the CPU primitives of the C3N head (backend/ops.h, "head" section):
 * weight rearrangements (tap-major weights, output_conv.2 composed with the x2 upsampling),
 * replicate padding, pixel shuffle, the border ring of the upsampled map, and CCAM's norm and
 * backward. Every output element has one writer and a fixed summation order: the same bits for
 * any thread count. The arithmetic is the one model/c3n_*.c did on the host before, in the same
 * order (same bits).
 *
 * The x2 bilinear upsampling (align_corners false) of a row h[0..n): U[2i+a] = sum_u
 * up_c[a][u+1] h[i+u] with h replicated past its ends (PyTorch's clamped indices):
 *     U[2i] = .25 h[i-1] + .75 h[i],   U[2i+1] = .75 h[i] + .25 h[i+1]
 * so a padded row hp[j] = h[j-1] (pad_replicate) gives U[2i+a] = sum_u up_c[a][u+1] hp[i+u+1].
 */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"

/* OpenMP only pays off above a few tens of thousands of elements (as ops_cpu.c). */
#define PAR_MIN 32768

/* ---- tap-major weights ---- */

/* k, t, c order: the writes are contiguous, the reads stride 9 within one row w[k] (cached) */
void avs_cpu_taps_split(float *wt, const float *w, int K, int C, int T)
{
#pragma omp parallel for schedule(static) if ((size_t)K * C > 8192)
    for (int k = 0; k < K; k++)
        for (int t = 0; t < T; t++) {
            const float *src = w + (size_t)k * C * T + t;
            float *dst = wt + ((size_t)t * K + k) * C;
            for (int c = 0; c < C; c++)
                dst[c] = src[(size_t)c * T];
        }
}

void avs_cpu_taps_merge(float *dw, const float *dwt, int K, int C, int T)
{
#pragma omp parallel for schedule(static) if ((size_t)K * C > 8192)
    for (int k = 0; k < K; k++)
        for (int t = 0; t < T; t++) {
            float *dst = dw + (size_t)k * C * T + t;
            const float *src = dwt + ((size_t)t * K + k) * C;
            for (int c = 0; c < C; c++)
                dst[(size_t)c * T] += src[c];
        }
}

/* ---- output_conv.2 composed with the x2 upsampling ---- */

static const float up_c[2][3] = {{0.25f, 0.75f, 0.0f}, {0.0f, 0.75f, 0.25f}};

/* The weight of hp row i+u+1 (u = -1..1) in U row 2i+a+r (a = parity, r = tap -1..1). */
static float tap_c(int a, int r, int u)
{
    int m = a + r, d = m < 0 ? -1 : m / 2, ap = m - 2 * d; /* U[2(i+d) + ap] */
    int up = u - d;
    return up < -1 || up > 1 ? 0.0f : up_c[ap][up + 1];
}

/* tt[a][r][u] = tap_c(a, r-1, u-1) */
static void tap_table(float tt[2][3][3])
{
    for (int a = 0; a < 2; a++)
        for (int r = 0; r < 3; r++)
            for (int u = 0; u < 3; u++)
                tt[a][r][u] = tap_c(a, r - 1, u - 1);
}

/* kc[4k+p][c][u][v] = sum_rs tt[a][r][u] tt[b][s][v] w[k][c][r][s], p = 2a+b; kcb[4k+p] = b[k] */
void avs_cpu_up2conv_compose(float *kc, float *kcb, const float *w, const float *b, int K, int C)
{
    float tt[2][3][3];
    tap_table(tt);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++)
        for (int p = 0; p < 4; p++) {
            int a = p >> 1, bb = p & 1;
            kcb[k * 4 + p] = b[k];
            for (int c = 0; c < C; c++) {
                const float *wk = w + ((size_t)k * C + c) * 9;
                float *o = kc + (((size_t)k * 4 + p) * C + c) * 9;
                for (int u = 0; u < 3; u++)
                    for (int v = 0; v < 3; v++) {
                        float sum = 0.0f;
                        for (int r = 0; r < 3; r++)
                            for (int s = 0; s < 3; s++)
                                sum += tt[a][r][u] * tt[bb][s][v] * wk[r * 3 + s];
                        o[u * 3 + v] = sum;
                    }
            }
        }
}

void avs_cpu_up2conv_decompose(float *dw, float *db, const float *dkc, const float *dkcb, int K,
                               int C)
{
    float tt[2][3][3];
    tap_table(tt);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++) {
        for (int p = 0; p < 4; p++)
            db[k] += dkcb[k * 4 + p];
        for (int c = 0; c < C; c++)
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) {
                    float sum = 0.0f;
                    for (int p = 0; p < 4; p++) {
                        const float *d = dkc + (((size_t)k * 4 + p) * C + c) * 9;
                        for (int u = 0; u < 3; u++)
                            for (int v = 0; v < 3; v++)
                                sum += tt[p >> 1][r][u] * tt[p & 1][s][v] * d[u * 3 + v];
                    }
                    dw[((size_t)k * C + c) * 9 + r * 3 + s] += sum;
                }
    }
}

/* ---- replicate padding, pixel shuffle ---- */

void avs_cpu_pad_replicate(float *y, const float *x, int NC, int H, int W)
{
    int Wp = W + 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int nc = 0; nc < NC; nc++)
        for (int i = -1; i <= H; i++) {
            const float *s = x + ((size_t)nc * H + (i < 0 ? 0 : i >= H ? H - 1 : i)) * W;
            float *d = y + ((size_t)nc * (H + 2) + i + 1) * Wp;
            d[0] = s[0];
            memcpy(d + 1, s, (size_t)W * sizeof(float));
            d[W + 1] = s[W - 1];
        }
}

void avs_cpu_pad_replicate_bwd(float *dx, const float *dy, int NC, int H, int W)
{
    int Wp = W + 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int nc = 0; nc < NC; nc++)
        for (int i = -1; i <= H; i++) {
            float *d = dx + ((size_t)nc * H + (i < 0 ? 0 : i >= H ? H - 1 : i)) * W;
            const float *s = dy + ((size_t)nc * (H + 2) + i + 1) * Wp;
            d[0] += s[0];
            for (int j = 0; j < W; j++)
                d[j] += s[j + 1];
            d[W - 1] += s[W + 1];
        }
}

void avs_cpu_pixel_shuffle2(float *y, const float *x, int NC, int H, int W)
{
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > 8192)
    for (int c = 0; c < NC; c++)
        for (int p = 0; p < 4; p++) {
            const float *xp = x + ((size_t)c * 4 + p) * H * W;
            float *yc = y + (size_t)c * 4 * H * W + (size_t)(p >> 1) * 2 * W + (p & 1);
            for (int i = 0; i < H; i++) {
                float *yr = yc + (size_t)i * 4 * W;
                const float *xr = xp + (size_t)i * W;
                for (int j = 0; j < W; j++)
                    yr[2 * j] = xr[j];
            }
        }
}

void avs_cpu_pixel_unshuffle2(float *y, const float *x, int NC, int H, int W)
{
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > 8192)
    for (int c = 0; c < NC; c++)
        for (int p = 0; p < 4; p++) {
            float *yp = y + ((size_t)c * 4 + p) * H * W;
            const float *xc = x + (size_t)c * 4 * H * W + (size_t)(p >> 1) * 2 * W + (p & 1);
            for (int i = 0; i < H; i++) {
                const float *xr = xc + (size_t)i * 4 * W;
                float *yr = yp + (size_t)i * W;
                for (int j = 0; j < W; j++)
                    yr[j] = xr[2 * j];
            }
        }
}

/* ---- the border ring ---- */

/* Row-major ring pixel t of a P x Q map (P, Q >= 3; smaller maps are all ring): (p, q). */
static void ring_pixel(int t, int P, int Q, int *p, int *q)
{
    if (P < 3 || Q < 3 || t < Q) {
        *p = t / Q, *q = t % Q;
        return;
    }
    t -= Q;
    if (t < 2 * (P - 2)) {
        *p = 1 + t / 2, *q = t & 1 ? Q - 1 : 0;
        return;
    }
    *p = P - 1, *q = t - 2 * (P - 2);
}

/* The two padded rows (or columns) U row m of a map of n rows reads, and their weights, in
 * the order of increasing offset: U[2i] = .25 h[i-1] + .75 h[i] = .25 hp[i] + .75 hp[i+1],
 * U[2i+1] = .75 hp[i+1] + .25 hp[i+2]. */
static void up2_pair(int m, int *i0, float *w0, float *w1)
{
    int i = m >> 1;
    if (m & 1)
        *i0 = i + 1, *w0 = 0.75f, *w1 = 0.25f;
    else
        *i0 = i, *w0 = 0.25f, *w1 = 0.75f;
}

/* The taps of U (2H x 2W, zero outside) at ring pixel t offset by tap rs (3r+s), into a padded
 * plane [H+2][W+2]: 0 (outside U) or 4 offsets and weights, in the order the sums take them. */
static int ring_taps(int t, int rs, int H, int W, int *off, float *wt)
{
    int p, q;
    ring_pixel(t, 2 * H, 2 * W, &p, &q);
    int m = p + rs / 3 - 1, l = q + rs % 3 - 1, i0, j0, Wp = W + 2;
    if (m < 0 || m >= 2 * H || l < 0 || l >= 2 * W)
        return 0;
    float a0, a1, b0, b1;
    up2_pair(m, &i0, &a0, &a1);
    up2_pair(l, &j0, &b0, &b1);
    off[0] = i0 * Wp + j0, wt[0] = a0 * b0;
    off[1] = off[0] + 1, wt[1] = a0 * b1;
    off[2] = off[0] + Wp, wt[2] = a1 * b0;
    off[3] = off[2] + 1, wt[3] = a1 * b1;
    return 4;
}

/* Each ring tap's geometry is worked out once and applied to the B images' planes (loop b
 * innermost): the writes are B contiguous streams, each plane's updates keep their order. */
void avs_cpu_up2_ring_cols(float *col, const float *hp, int B, int C, int H, int W)
{
    int n = avs_ring_n(2 * H, 2 * W);
    size_t ld = (size_t)B * n, plane = (size_t)(H + 2) * (W + 2);
#pragma omp parallel for schedule(static) if ((size_t)B * C * n > 4096)
    for (int c = 0; c < C; c++)
        for (int rs = 0; rs < 9; rs++) {
            float *cv = col + ((size_t)c * 9 + rs) * ld;
            for (int t = 0; t < n; t++) {
                int off[4];
                float wt[4];
                int nt = ring_taps(t, rs, H, W, off, wt);
                for (int bi = 0; bi < B; bi++) {
                    const float *pc = hp + ((size_t)bi * C + c) * plane;
                    float v = 0.0f;
                    for (int e = 0; e < nt; e++)
                        v += wt[e] * pc[off[e]];
                    cv[(size_t)bi * n + t] = v;
                }
            }
        }
}

void avs_cpu_up2_ring_cols_bwd(float *dhp, const float *col, int B, int C, int H, int W)
{
    int n = avs_ring_n(2 * H, 2 * W);
    size_t ld = (size_t)B * n, plane = (size_t)(H + 2) * (W + 2);
#pragma omp parallel for schedule(static) if ((size_t)B * C * n > 4096)
    for (int c = 0; c < C; c++)
        for (int rs = 0; rs < 9; rs++) {
            const float *cv = col + ((size_t)c * 9 + rs) * ld;
            for (int t = 0; t < n; t++) {
                int off[4];
                float wt[4];
                int nt = ring_taps(t, rs, H, W, off, wt);
                for (int bi = 0; bi < B; bi++) {
                    float *pc = dhp + ((size_t)bi * C + c) * plane, g = cv[(size_t)bi * n + t];
                    for (int e = 0; e < nt; e++)
                        pc[off[e]] += wt[e] * g;
                }
            }
        }
}

void avs_cpu_ring_set(float *y, const float *yr, const float *b, int B, int K, int P, int Q)
{
    int n = avs_ring_n(P, Q);
    size_t ld = (size_t)B * n, PQ = (size_t)P * Q;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)K * B * n > PAR_MIN)
    for (int k = 0; k < K; k++)
        for (int bi = 0; bi < B; bi++) {
            float *yk = y + ((size_t)bi * K + k) * PQ, bk = b ? b[k] : 0.0f;
            const float *r = yr + (size_t)k * ld + (size_t)bi * n;
            for (int t = 0; t < n; t++) {
                int p, q;
                ring_pixel(t, P, Q, &p, &q);
                yk[(size_t)p * Q + q] = r[t] + bk;
            }
        }
}

void avs_cpu_ring_take(float *yr, float *y, int B, int K, int P, int Q)
{
    int n = avs_ring_n(P, Q);
    size_t ld = (size_t)B * n, PQ = (size_t)P * Q;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)K * B * n > PAR_MIN)
    for (int k = 0; k < K; k++)
        for (int bi = 0; bi < B; bi++) {
            float *yk = y + ((size_t)bi * K + k) * PQ;
            float *r = yr + (size_t)k * ld + (size_t)bi * n;
            for (int t = 0; t < n; t++) {
                int p, q;
                ring_pixel(t, P, Q, &p, &q);
                r[t] = yk[(size_t)p * Q + q];
                yk[(size_t)p * Q + q] = 0.0f;
            }
        }
}

/* ---- CCAM ---- */

void avs_cpu_l2norm_rows(float *y, const float *x, int rows, int cols, float eps)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *a = x + (size_t)r * cols;
        double ss = 0;
        for (int c = 0; c < cols; c++)
            ss += (double)a[c] * a[c];
        float nrm = (float)sqrt(ss);
        if (nrm < eps)
            nrm = eps;
        for (int c = 0; c < cols; c++)
            y[(size_t)r * cols + c] = a[c] / nrm;
    }
}

/* ws[n,i] = sm(1-sm)/C sum_c dout x1 (the gradient of the channel mean, in C order in double);
 * then dx += (dout sm + ws) s */
void avs_cpu_ccam_bwd(float *dx, const float *dout, const float *s, const float *x1,
                      const float *sm, int N, int C, int HW, float *ws)
{
    size_t tot = (size_t)N * C * HW;
#pragma omp parallel for collapse(2) schedule(static) if (tot > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            double acc = 0;
            for (int c = 0; c < C; c++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                acc += (double)dout[k] * x1[k];
            }
            size_t j = (size_t)n * HW + i;
            ws[j] = (float)acc * (sm[j] * (1.0f - sm[j]) / (float)C);
        }
#pragma omp parallel for collapse(2) schedule(static) if (tot > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float sc = s[(size_t)n * C + c];
            const float *g = dout + ((size_t)n * C + c) * HW, *q = sm + (size_t)n * HW;
            const float *dm = ws + (size_t)n * HW;
            float *d = dx + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++)
                d[i] += (g[i] * q[i] + dm[i]) * sc;
        }
}
