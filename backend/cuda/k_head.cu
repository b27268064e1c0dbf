/* backend/cuda/k_head.cu: the C3N head's primitives on the GPU (backend/ops.h, "head"):
 * tap-major weights, output_conv.2 composed with the x2 upsampling, replicate padding, pixel
 * (un)shuffle, the border ring of the upsampled map, and CCAM's backward. A thread per output
 * element everywhere; the backward passes that the cpu does as scatters (pad_replicate_bwd,
 * up2_ring_cols_bwd) are gathers here that add the same terms in the cpu's order
 * (backend/cuda/k_math.h), so no two threads write one element and nothing is atomic. */
#include "backend/cuda/k_reduce.cuh"

/* ---- tap-major weights: wt [T,K,C] <-> w [K,C,T] ---- */

__global__ static void taps_split_k(float *wt, const float *w, int K, int C, int T)
{
    AVS_K_FOR(e, (size_t)T * K * C) {
        size_t c = e % C, k = e / C % K, t = e / ((size_t)C * K);
        wt[e] = w[(k * C + c) * T + t];
    }
}

__global__ static void taps_merge_k(float *dw, const float *dwt, int K, int C, int T)
{
    AVS_K_FOR(e, (size_t)K * C * T) {
        size_t t = e % T, c = e / T % C, k = e / ((size_t)T * C);
        dw[e] += dwt[(t * K + k) * C + c];
    }
}

void avs_cu_taps_split(float *wt, const float *w, int K, int C, int T)
{
    size_t n = (size_t)K * C * T;
    if (n == 0)
        return;
    AVS_K_GO(taps_split_k, n)(wt, w, K, C, T);
    AVS_CU_LAUNCHED("taps_split", "K=%d C=%d T=%d", K, C, T);
}

void avs_cu_taps_merge(float *dw, const float *dwt, int K, int C, int T)
{
    size_t n = (size_t)K * C * T;
    if (n == 0)
        return;
    AVS_K_GO(taps_merge_k, n)(dw, dwt, K, C, T);
    AVS_CU_LAUNCHED("taps_merge", "K=%d C=%d T=%d", K, C, T);
}

/* ---- up2conv: kc [4K,C,3,3], kcb [4K] from w [K,C,3,3], b [K] ---- */

__global__ static void up2_compose_k(float *kc, float *kcb, const float *w, const float *b, int K,
                                     int C)
{
    AVS_K_FOR(e, (size_t)K * 4 * C * 9) {
        int uv = (int)(e % 9);
        size_t c = e / 9 % C, kp = e / ((size_t)9 * C), k = kp / 4;
        kc[e] = avs_k_compose(w + (k * C + c) * 9, (int)(kp % 4), uv / 3, uv % 3);
        if (c == 0 && uv == 0)
            kcb[kp] = b[k];
    }
}

__global__ static void up2_decompose_k(float *dw, float *db, const float *dkc, const float *dkcb,
                                       int K, int C)
{
    AVS_K_FOR(e, (size_t)K * C * 9) {
        int rs = (int)(e % 9);
        size_t c = e / 9 % C, k = e / ((size_t)9 * C);
        dw[e] += avs_k_decompose(dkc + (k * 4 * C + c) * 9, (size_t)C * 9, rs / 3, rs % 3);
        if (c == 0 && rs == 0)
            for (int p = 0; p < 4; p++)
                db[k] += dkcb[k * 4 + p];
    }
}

void avs_cu_up2conv_compose(float *kc, float *kcb, const float *w, const float *b, int K, int C)
{
    if ((size_t)K * C == 0)
        return;
    AVS_K_GO(up2_compose_k, (size_t)K * 4 * C * 9)(kc, kcb, w, b, K, C);
    AVS_CU_LAUNCHED("up2conv_compose", "K=%d C=%d", K, C);
}

void avs_cu_up2conv_decompose(float *dw, float *db, const float *dkc, const float *dkcb, int K,
                              int C)
{
    if ((size_t)K * C == 0)
        return;
    AVS_K_GO(up2_decompose_k, (size_t)K * C * 9)(dw, db, dkc, dkcb, K, C);
    AVS_CU_LAUNCHED("up2conv_decompose", "K=%d C=%d", K, C);
}

/* ---- replicate padding: y [NC,H+2,W+2] from x [NC,H,W] ---- */

__global__ static void pad_k(float *y, const float *x, int NC, int H, int W)
{
    int Hp = H + 2, Wp = W + 2;
    AVS_K_FOR(e, (size_t)NC * Hp * Wp) {
        int jp = (int)(e % Wp), ip = (int)(e / Wp % Hp);
        size_t nc = e / ((size_t)Wp * Hp);
        y[e] = x[(nc * H + avs_k_clampi(ip - 1, 0, H - 1)) * W + avs_k_clampi(jp - 1, 0, W - 1)];
    }
}

/* dx gathers the padded pixels that copied it: rows, then columns, ascending (the cpu's
 * order of adding them) */
__global__ static void pad_bwd_k(float *dx, const float *dy, int NC, int H, int W)
{
    int Wp = W + 2;
    AVS_K_FOR(e, (size_t)NC * H * W) {
        int j = (int)(e % W), i = (int)(e / W % H), ri[3], ci[3];
        size_t nc = e / ((size_t)W * H);
        int nr = avs_k_pad_sources(i, H, ri), ncl = avs_k_pad_sources(j, W, ci);
        const float *s = dy + nc * (H + 2) * Wp;
        float acc = dx[e];
        for (int a = 0; a < nr; a++)
            for (int b = 0; b < ncl; b++)
                acc += s[(size_t)ri[a] * Wp + ci[b]];
        dx[e] = acc;
    }
}

void avs_cu_pad_replicate(float *y, const float *x, int NC, int H, int W)
{
    if ((size_t)NC * H * W == 0)
        return;
    AVS_K_GO(pad_k, (size_t)NC * (H + 2) * (W + 2))(y, x, NC, H, W);
    AVS_CU_LAUNCHED("pad_replicate", "NC=%d H=%d W=%d", NC, H, W);
}

void avs_cu_pad_replicate_bwd(float *dx, const float *dy, int NC, int H, int W)
{
    if ((size_t)NC * H * W == 0)
        return;
    AVS_K_GO(pad_bwd_k, (size_t)NC * H * W)(dx, dy, NC, H, W);
    AVS_CU_LAUNCHED("pad_replicate_bwd", "NC=%d H=%d W=%d", NC, H, W);
}

/* ---- pixel shuffle by 2 ---- */

__global__ static void shuffle2_k(float *y, const float *x, size_t n, int H, int W)
{
    AVS_K_FOR(e, n) y[e] = x[avs_k_shuffle2_src(e, H, W)];
}

__global__ static void unshuffle2_k(float *y, const float *x, size_t n, int H, int W)
{
    AVS_K_FOR(e, n) y[e] = x[avs_k_unshuffle2_src(e, H, W)];
}

void avs_cu_pixel_shuffle2(float *y, const float *x, int NC, int H, int W)
{
    size_t n = (size_t)NC * 4 * H * W;
    if (n == 0)
        return;
    AVS_K_GO(shuffle2_k, n)(y, x, n, H, W);
    AVS_CU_LAUNCHED("pixel_shuffle2", "NC=%d H=%d W=%d", NC, H, W);
}

void avs_cu_pixel_unshuffle2(float *y, const float *x, int NC, int H, int W)
{
    size_t n = (size_t)NC * 4 * H * W;
    if (n == 0)
        return;
    AVS_K_GO(unshuffle2_k, n)(y, x, n, H, W);
    AVS_CU_LAUNCHED("pixel_unshuffle2", "NC=%d H=%d W=%d", NC, H, W);
}

/* ---- the border ring of the x2 upsampled map ---- */

/* col [C*9, B*n]: entry (c*9 + rs, b*n + t) */
__global__ static void ring_cols_k(float *col, const float *hp, int B, int C, int H, int W, int n)
{
    size_t ld = (size_t)B * n, plane = (size_t)(H + 2) * (W + 2);
    AVS_K_FOR(e, (size_t)C * 9 * ld) {
        size_t bt = e % ld, crs = e / ld, b = bt / n, c = crs / 9;
        col[e] = avs_k_ring_col_at(hp + (b * C + c) * plane, (int)(bt % n), (int)(crs % 9), H, W);
    }
}

/* dhp [B,C,H+2,W+2] gathers its ring columns */
__global__ static void ring_cols_bwd_k(float *dhp, const float *col, int B, int C, int H, int W,
                                       int n)
{
    int Hp = H + 2, Wp = W + 2;
    size_t ld = (size_t)B * n;
    AVS_K_FOR(e, (size_t)B * C * Hp * Wp) {
        int j = (int)(e % Wp), i = (int)(e / Wp % Hp);
        size_t bc = e / ((size_t)Wp * Hp), b = bc / C, c = bc % C;
        dhp[e] = avs_k_ring_gather(dhp[e], col + c * 9 * ld + b * n, ld, i, j, H, W);
    }
}

void avs_cu_up2_ring_cols(float *col, const float *hp, int B, int C, int H, int W)
{
    int n = avs_ring_n(2 * H, 2 * W);
    if ((size_t)B * C * n == 0)
        return;
    AVS_K_GO(ring_cols_k, (size_t)C * 9 * B * n)(col, hp, B, C, H, W, n);
    AVS_CU_LAUNCHED("up2_ring_cols", "B=%d C=%d H=%d W=%d", B, C, H, W);
}

void avs_cu_up2_ring_cols_bwd(float *dhp, const float *col, int B, int C, int H, int W)
{
    int n = avs_ring_n(2 * H, 2 * W);
    if ((size_t)B * C * n == 0)
        return;
    AVS_K_GO(ring_cols_bwd_k, (size_t)B * C * (H + 2) * (W + 2))(dhp, col, B, C, H, W, n);
    AVS_CU_LAUNCHED("up2_ring_cols_bwd", "B=%d C=%d H=%d W=%d", B, C, H, W);
}

/* yr [K, B*n] entry (k, b*n + t) <-> ring pixel t of y [B,K,P,Q] map (b, k) */
static __device__ size_t ring_at(size_t e, int B, int K, int P, int Q, int n, int *k)
{
    size_t ld = (size_t)B * n, bt = e % ld;
    int p, q;
    *k = (int)(e / ld);
    avs_k_ring_pixel((int)(bt % n), P, Q, &p, &q);
    return ((bt / n) * K + *k) * (size_t)P * Q + (size_t)p * Q + q;
}

__global__ static void ring_set_k(float *y, const float *yr, const float *b, int B, int K, int P,
                                  int Q, int n)
{
    AVS_K_FOR(e, (size_t)K * B * n) {
        int k;
        size_t at = ring_at(e, B, K, P, Q, n, &k);
        y[at] = yr[e] + (b ? b[k] : 0.0f);
    }
}

__global__ static void ring_take_k(float *yr, float *y, int B, int K, int P, int Q, int n)
{
    AVS_K_FOR(e, (size_t)K * B * n) {
        int k;
        size_t at = ring_at(e, B, K, P, Q, n, &k);
        yr[e] = y[at];
        y[at] = 0.0f;
    }
}

void avs_cu_ring_set(float *y, const float *yr, const float *b, int B, int K, int P, int Q)
{
    int n = avs_ring_n(P, Q);
    if ((size_t)K * B * n == 0)
        return;
    AVS_K_GO(ring_set_k, (size_t)K * B * n)(y, yr, b, B, K, P, Q, n);
    AVS_CU_LAUNCHED("ring_set", "B=%d K=%d P=%d Q=%d", B, K, P, Q);
}

void avs_cu_ring_take(float *yr, float *y, int B, int K, int P, int Q)
{
    int n = avs_ring_n(P, Q);
    if ((size_t)K * B * n == 0)
        return;
    AVS_K_GO(ring_take_k, (size_t)K * B * n)(yr, y, B, K, P, Q, n);
    AVS_CU_LAUNCHED("ring_take", "B=%d K=%d P=%d Q=%d", B, K, P, Q);
}

/* ---- CCAM backward ---- */

/* ws[j] = sum_c dout x1 (in double) * sm(1-sm)/C */
struct ccam_fin {
    float *ws;
    const float *sm;
    int C;
    __device__ void operator()(size_t j, double s) const
    {
        ws[j] = (float)s * (sm[j] * (1.0f - sm[j]) / (float)C);
    }
};

__global__ static void ccam_dx_k(float *dx, const float *dout, const float *s, const float *sm,
                                 const float *dm, int C, int HW, size_t tot)
{
    AVS_K_FOR(e, tot) {
        size_t i = e % HW, nc = e / HW, j = nc / C * HW + i;
        dx[e] += (dout[e] * sm[j] + dm[j]) * s[nc];
    }
}

void avs_cu_ccam_bwd(float *dx, const float *dout, const float *s, const float *x1,
                     const float *sm, int N, int C, int HW, float *ws)
{
    size_t tot = (size_t)N * C * HW;
    if (tot == 0)
        return;
    avs_k_col_sum(N, C, HW, avs_k_ld2{dout, x1}, ccam_fin{ws, sm, C}, "ccam_bwd");
    AVS_K_GO(ccam_dx_k, tot)(dx, dout, s, sm, ws, C, HW, tot);
    AVS_CU_LAUNCHED("ccam_bwd", "N=%d C=%d HW=%d", N, C, HW);
}
