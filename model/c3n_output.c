/* model/c3n_output.c: the C3N head's output_conv (ref: AVSBench/C3N output_conv: conv 3x3
 * D->O1, bilinear x2 with align_corners=False, conv 3x3 O1->O2, ReLU, conv 1x1 O2->1), forward
 * and backward, with the upsampling composed into the second conv.
 *
 * x2 bilinear upsampling (align_corners=False) of a row h [n] is
 *     U[2i] = .25 h[i-1] + .75 h[i],   U[2i+1] = .75 h[i] + .25 h[i+1]
 * with h replicated past its ends (h[-1] = h[0], h[n] = h[n-1]): PyTorch's clamped indices.
 * So the 3x3 conv of U at output (2i+a, 2j+b) is a 3x3 conv of the replicate-padded h at (i, j)
 * with the kernel K_ab[u,v] = sum_rs C[a][r][u] C[b][s][v] w[r,s] (C: which h rows the U row of
 * tap r of parity a reads): the four parities are 4*O2 output channels of one conv on the
 * 112x112 map instead of O2 channels on the 224x224 one -- the same multiplies on a quarter of
 * the data, and the upsampled [B, O1, 224, 224] map is never made. The outputs are put back in
 * place by a pixel shuffle. Only the conv's zero padding of U differs (there U[-1] = 0, not
 * h[0]): the ring of border outputs is computed directly from U (one GEMM over the im2col
 * columns of the ring), and its gradients flow back the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "model/c3n_blocks.h"

/* U[2i+a] = sum_u up_c[a][u+1] h[i+u] */
static const float up_c[2][3] = {{0.25f, 0.75f, 0.0f}, {0.0f, 0.75f, 0.25f}};

/* C[a][r+1][u+1]: the weight of h[i+u] in U[2i+a+r] */
static float tap_c(int a, int r, int u)
{
    int m = a + r, d = m < 0 ? -1 : m / 2, ap = m - 2 * d; /* U[2(i+d) + ap] */
    int up = u - d;
    return up < -1 || up > 1 ? 0.0f : up_c[ap][up + 1];
}

/* T[a][r][u] = tap_c(a, r-1, u-1) */
static void tap_table(float T[2][3][3])
{
    for (int a = 0; a < 2; a++)
        for (int r = 0; r < 3; r++)
            for (int u = 0; u < 3; u++)
                T[a][r][u] = tap_c(a, r - 1, u - 1);
}

/* kc [O2][4][O1][3][3] (output channel k*4 + 2a+b, the pixel-shuffle order) and bc [O2*4]
 * from w [O2][O1][3][3] and b [O2] */
static void compose(float *kc, float *bc, const float *w, const float *b, int O2, int O1)
{
    float T[2][3][3];
    tap_table(T);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < O2; k++)
        for (int p = 0; p < 4; p++) {
            int a = p >> 1, bb = p & 1;
            bc[k * 4 + p] = b[k];
            for (int c = 0; c < O1; c++) {
                const float *wk = w + ((size_t)k * O1 + c) * 9;
                float *o = kc + (((size_t)k * 4 + p) * O1 + c) * 9;
                for (int u = 0; u < 3; u++)
                    for (int v = 0; v < 3; v++) {
                        float sum = 0.0f;
                        for (int r = 0; r < 3; r++)
                            for (int s = 0; s < 3; s++)
                                sum += T[a][r][u] * T[bb][s][v] * wk[r * 3 + s];
                        o[u * 3 + v] = sum;
                    }
            }
        }
}

/* dw [O2][O1][3][3] += the chain rule of compose() applied to dkc; db [O2] += dbc summed */
static void decompose(float *dw, float *db, const float *dkc, const float *dbc, int O2, int O1)
{
    float T[2][3][3];
    tap_table(T);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < O2; k++) {
        for (int p = 0; p < 4; p++)
            db[k] += dbc[k * 4 + p];
        for (int c = 0; c < O1; c++)
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) {
                    float sum = 0.0f;
                    for (int p = 0; p < 4; p++) {
                        const float *d = dkc + (((size_t)k * 4 + p) * O1 + c) * 9;
                        for (int u = 0; u < 3; u++)
                            for (int v = 0; v < 3; v++)
                                sum += T[p >> 1][r][u] * T[p & 1][s][v] * d[u * 3 + v];
                    }
                    dw[((size_t)k * O1 + c) * 9 + r * 3 + s] += sum;
                }
    }
}

/* hp [NC, H+2, W+2] = x [NC, H, W] replicated one pixel past each edge */
static void pad_replicate(float *hp, const float *x, int NC, int H, int W)
{
    int Wp = W + 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > 32768)
    for (int nc = 0; nc < NC; nc++)
        for (int i = -1; i <= H; i++) {
            const float *s = x + ((size_t)nc * H + (i < 0 ? 0 : i >= H ? H - 1 : i)) * W;
            float *d = hp + ((size_t)nc * (H + 2) + i + 1) * Wp;
            d[0] = s[0];
            memcpy(d + 1, s, (size_t)W * sizeof(float));
            d[W + 1] = s[W - 1];
        }
}

/* dx [NC, H, W] += the padded gradient dp [NC, H+2, W+2] folded back onto the pixels it copied */
static void fold_replicate(float *dx, const float *dp, int NC, int H, int W)
{
    int Wp = W + 2;
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > 32768)
    for (int nc = 0; nc < NC; nc++)
        for (int i = -1; i <= H; i++) {
            float *d = dx + ((size_t)nc * H + (i < 0 ? 0 : i >= H ? H - 1 : i)) * W;
            const float *s = dp + ((size_t)nc * (H + 2) + i + 1) * Wp;
            d[0] += s[0];
            for (int j = 0; j < W; j++)
                d[j] += s[j + 1];
            d[W - 1] += s[W + 1];
        }
}

/* y [NC, 2H, 2W] (y[c][2i+a][2j+b] = z[c*4 + 2a+b][i][j]) and back (unshuffle) */
static void shuffle(float *y, float *z, int NC, int H, int W, int back)
{
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > 8192)
    for (int c = 0; c < NC; c++)
        for (int p = 0; p < 4; p++) {
            float *zp = z + ((size_t)c * 4 + p) * H * W;
            float *yc = y + (size_t)c * 4 * H * W + (size_t)(p >> 1) * 2 * W + (p & 1);
            for (int i = 0; i < H; i++) {
                float *yr = yc + (size_t)i * 4 * W, *zr = zp + (size_t)i * W;
                if (back)
                    for (int j = 0; j < W; j++)
                        zr[j] = yr[2 * j];
                else
                    for (int j = 0; j < W; j++)
                        yr[2 * j] = zr[j];
            }
        }
}

/* ---- the ring of border outputs, directly from U ---- */

/* Output pixels of a 2H x 2W map on its border ring, row-major (n <= 8H + 8W). */
static int ring_pixels(int *pq, int H2, int W2)
{
    int n = 0;
    for (int P = 0; P < H2; P++)
        for (int Q = 0; Q < W2; Q++)
            if (P == 0 || P == H2 - 1 || Q == 0 || Q == W2 - 1)
                pq[n++] = P * W2 + Q;
    return n;
}

/* The (up to 4) taps of U[c][m][l] into hp [H+2][W+2] (a plane): offsets and weights. */
static int u_taps(int m, int l, int Wp, int *off, float *wt)
{
    int i = m >> 1, a = m & 1, j = l >> 1, b = l & 1, n = 0;
    for (int u = -1; u <= 1; u++)
        for (int v = -1; v <= 1; v++) {
            float cw = up_c[a][u + 1] * up_c[b][v + 1];
            if (cw != 0.0f)
                off[n] = (i + u + 1) * Wp + (j + v + 1), wt[n++] = cw;
        }
    return n;
}

struct avs_c3n_ring {
    int n;      /* ring pixels per image */
    int *pq;    /* their P*2W + Q */
    int H, W;   /* the low-resolution map (output 2H x 2W) */
    int *nt;    /* [9][n]: taps of U at (P + r, Q + s) into a padded plane (0: outside U) */
    int *off;   /* [9][n][4] their offsets */
    float *wt;  /* [9][n][4] and weights */
};

/* col [O1*9][B*n]: the 3x3 patches of U (zero outside) at the ring pixels, from hp
 * [B, O1, H+2, W+2] (back == 0); or (back == 1) the transpose: dhp += the patches in col. */
static void ring_cols(float *col, float *hp, const struct avs_c3n_ring *rg, int B, int O1, int back)
{
    size_t ld = (size_t)B * rg->n, plane = (size_t)(rg->H + 2) * (rg->W + 2);
#pragma omp parallel for schedule(static) if ((size_t)B * O1 * rg->n > 4096)
    for (int c = 0; c < O1; c++)
        for (int bi = 0; bi < B; bi++) {
            float *pc = hp + ((size_t)bi * O1 + c) * plane;
            for (int rs = 0; rs < 9; rs++) {
                float *cv = col + ((size_t)c * 9 + rs) * ld + (size_t)bi * rg->n;
                const int *nt = rg->nt + (size_t)rs * rg->n, *off = rg->off + (size_t)rs * rg->n * 4;
                const float *wt = rg->wt + (size_t)rs * rg->n * 4;
                for (int t = 0; t < rg->n; t++) {
                    const int *o = off + 4 * t;
                    const float *w = wt + 4 * t;
                    if (back)
                        for (int e = 0; e < nt[t]; e++)
                            pc[o[e]] += w[e] * cv[t];
                    else {
                        float v = 0.0f;
                        for (int e = 0; e < nt[t]; e++)
                            v += w[e] * pc[o[e]];
                        cv[t] = v;
                    }
                }
            }
        }
}

/* y [B, O2, 2H, 2W] at the ring pixels -> yr [O2][B*n] (back == 0), or back (back == 1; yr
 * NULL: zeros) */
static void ring_values(float *y, float *yr, const struct avs_c3n_ring *rg, int B, int O2, int back)
{
    size_t HW4 = (size_t)4 * rg->H * rg->W, ld = (size_t)B * rg->n;
    for (int k = 0; k < O2; k++)
        for (int bi = 0; bi < B; bi++)
            for (int t = 0; t < rg->n; t++) {
                float *v = y + ((size_t)bi * O2 + k) * HW4 + rg->pq[t];
                float *r = yr ? yr + (size_t)k * ld + (size_t)bi * rg->n + t : NULL;
                if (back)
                    *v = r ? *r : 0.0f;
                else
                    *r = *v;
            }
}

/* ---- forward and backward ---- */

/* The ring's pixels and their U taps: geometry only, made once with the head. */
void avs_c3n_output_init(struct avs_c3n_head *h)
{
    struct avs_c3n_ring *rg = h->ring = avs_calloc(1, sizeof *rg);
    rg->H = 2 * h->cfg.H[0], rg->W = 2 * h->cfg.W[0];
    int H2 = 2 * rg->H, W2 = 2 * rg->W, cap = 4 * (H2 + W2);
    rg->pq = avs_malloc((size_t)cap * sizeof(int));
    rg->n = ring_pixels(rg->pq, H2, W2);
    rg->nt = avs_malloc((size_t)9 * rg->n * sizeof(int));
    rg->off = avs_malloc((size_t)9 * rg->n * 4 * sizeof(int));
    rg->wt = avs_malloc((size_t)9 * rg->n * 4 * sizeof(float));
    for (int rs = 0; rs < 9; rs++)
        for (int t = 0; t < rg->n; t++) {
            int m = rg->pq[t] / W2 + rs / 3 - 1, l = rg->pq[t] % W2 + rs % 3 - 1;
            size_t i = (size_t)rs * rg->n + t;
            rg->nt[i] = m < 0 || m >= H2 || l < 0 || l >= W2
                            ? 0
                            : u_taps(m, l, rg->W + 2, rg->off + 4 * i, rg->wt + 4 * i);
        }
}

void avs_c3n_output_free(struct avs_c3n_head *h)
{
    struct avs_c3n_ring *rg = h->ring;
    if (rg)
        free(rg->pq), free(rg->nt), free(rg->off), free(rg->wt), free(rg);
    h->ring = NULL;
}

/* Floats of the ring's im2col columns (kept from the forward for the backward). */
size_t avs_c3n_output_ring_floats(const struct avs_c3n_head *h)
{
    return (size_t)h->cfg.O1 * 9 * h->B * h->ring->n;
}

size_t avs_c3n_output_scratch(const struct avs_c3n_head *h)
{
    size_t B = (size_t)h->B, H = 2 * (size_t)h->cfg.H[0], W = 2 * (size_t)h->cfg.W[0];
    size_t O1 = (size_t)h->cfg.O1, O2 = (size_t)h->cfg.O2, ring = (size_t)h->ring->n;
    size_t big = B * O2 * 4 * H * W; /* one [B, O2, 2H, 2W] map */
    size_t fwd = B * O1 * H * W + big + O2 * B * ring;
    size_t bwd = 3 * big + B * O1 * (H + 2) * (W + 2) + B * O1 * H * W + 2 * O1 * 9 * B * ring +
                 O2 * B * ring + O2 * 4 * O1 * 9 + O2 * 4;
    return (fwd > bwd ? fwd : bwd) + 64 * 16;
}

void avs_c3n_output_fwd(struct avs_c3n_head *h)
{
    const struct avs_ops *op = avs_ops();
    int B = h->B, H = 2 * h->cfg.H[0], W = 2 * h->cfg.W[0], O1 = h->cfg.O1, O2 = h->cfg.O2;
    int k0 = pidx(h, "output_conv.0.weight"), k2 = pidx(h, "output_conv.2.weight");
    int k4 = pidx(h, "output_conv.4.weight");
    size_t mark = avs_arena_mark(&h->scratch);
    struct avs_conv2d g0, gz, g4;
    avs_conv2d_geom(&g0, B, h->cfg.D, H, W, O1, 3, 3, 1, 1, 1, 1);
    avs_conv2d_geom(&gz, B, O1, H + 2, W + 2, 4 * O2, 3, 3, 1, 0, 1, 1);
    avs_conv2d_geom(&g4, B, O2, 2 * H, 2 * W, 1, 1, 1, 1, 0, 1, 1);
    float *h0 = avs_c3n_stake(h, (size_t)B * O1 * H * W, 0);
    op->conv2d_fwd(h0, h->st[0].up, PW(k0), PB(k0), &g0, h->ws);
    pad_replicate(h->hp, h0, B * O1, H, W);
    compose(h->kc, h->kcb, PW(k2), PB(k2), O2, O1);
    float *z = avs_c3n_stake(h, (size_t)B * O2 * 4 * H * W, 0);
    op->conv2d_fwd(z, h->hp, h->kc, h->kcb, &gz, h->ws);
    shuffle(h->h3, z, B * O2, H, W, 0);
    const struct avs_c3n_ring *rg = h->ring;
    size_t nr = (size_t)B * rg->n;
    float *col = h->ringcol, *yr = avs_c3n_stake(h, (size_t)O2 * nr, 0); /* col: kept for the backward */
    ring_cols(col, h->hp, rg, B, O1, 0);
    op->gemm(0, 0, O2, (int)nr, O1 * 9, 1.0f, PW(k2), O1 * 9, col, (int)nr, 0.0f, yr, (int)nr);
    for (int k = 0; k < O2; k++)
        for (size_t t = 0; t < nr; t++)
            yr[k * nr + t] += PB(k2)[k];
    ring_values(h->h3, yr, rg, B, O2, 1);
    op->relu_fwd(h->h3, h->h3, (size_t)B * O2 * 4 * H * W);
    op->conv2d_fwd(h->logits, h->h3, PW(k4), PB(k4), &g4, h->ws);
    struct avs_conv2d g2;
    avs_conv2d_geom(&g2, B, O1, 2 * H, 2 * W, O2, 3, 3, 1, 1, 1, 1);
    h->flops_fwd += avs_conv2d_flops(&g0) + avs_conv2d_flops(&g2) + avs_conv2d_flops(&g4);
    avs_arena_rewind(&h->scratch, mark);
}

/* dlogits -> parameter gradients of output_conv, and dup (overwritten): the gradient of
 * path1's output. */
void avs_c3n_output_bwd(struct avs_c3n_head *h, const float *dlogits, float *dup)
{
    const struct avs_ops *op = avs_ops();
    int B = h->B, H = 2 * h->cfg.H[0], W = 2 * h->cfg.W[0], O1 = h->cfg.O1, O2 = h->cfg.O2;
    int k0 = pidx(h, "output_conv.0.weight"), k2 = pidx(h, "output_conv.2.weight");
    int k4 = pidx(h, "output_conv.4.weight");
    size_t mark = avs_arena_mark(&h->scratch), big = (size_t)B * O2 * 4 * H * W;
    struct avs_conv2d g0, gz, g4;
    avs_conv2d_geom(&g0, B, h->cfg.D, H, W, O1, 3, 3, 1, 1, 1, 1);
    avs_conv2d_geom(&gz, B, O1, H + 2, W + 2, 4 * O2, 3, 3, 1, 0, 1, 1);
    avs_conv2d_geom(&g4, B, O2, 2 * H, 2 * W, 1, 1, 1, 1, 0, 1, 1);
    float *dh3 = avs_c3n_stake(h, big, 0), *dh2 = avs_c3n_stake(h, big, 1);
    op->conv2d_bwd_data_set(dh3, dlogits, PW(k4), &g4, h->ws);
    op->conv2d_bwd_filter(GW(k4), GB(k4), dlogits, h->h3, &g4, h->ws);
    op->relu_bwd(dh2, dh3, h->h3, big);
    /* the ring: its gradients taken out of dh2 (zeroed there: the main conv did not make them) */
    const struct avs_c3n_ring *rg = h->ring;
    size_t nr = (size_t)B * rg->n;
    float *col = avs_c3n_stake(h, (size_t)O1 * 9 * nr, 0), *dr = avs_c3n_stake(h, (size_t)O2 * nr, 0);
    ring_values(dh2, dr, rg, B, O2, 0);
    ring_values(dh2, NULL, rg, B, O2, 1);
    op->gemm(0, 1, O2, O1 * 9, (int)nr, 1.0f, dr, (int)nr, h->ringcol, (int)nr, 1.0f, GW(k2), O1 * 9);
    for (int k = 0; k < O2; k++) {
        double s = 0;
        for (size_t t = 0; t < nr; t++)
            s += dr[k * nr + t];
        GB(k2)[k] += (float)s;
    }
    op->gemm(1, 0, O1 * 9, (int)nr, O2, 1.0f, PW(k2), O1 * 9, dr, (int)nr, 0.0f, col, (int)nr);
    /* the main conv */
    float *dz = dh3; /* dh3 is spent */
    shuffle(dh2, dz, B * O2, H, W, 1);
    float *dkc = avs_c3n_stake(h, (size_t)O2 * 4 * O1 * 9, 1), *dkb = avs_c3n_stake(h, (size_t)O2 * 4, 1);
    op->conv2d_bwd_filter(dkc, dkb, dz, h->hp, &gz, h->ws);
    decompose(GW(k2), GB(k2), dkc, dkb, O2, O1);
    float *dhp = avs_c3n_stake(h, (size_t)B * O1 * (H + 2) * (W + 2), 0);
    op->conv2d_bwd_data_set(dhp, dz, h->kc, &gz, h->ws);
    ring_cols(col, dhp, rg, B, O1, 1);
    float *dh0 = avs_c3n_stake(h, (size_t)B * O1 * H * W, 1);
    fold_replicate(dh0, dhp, B * O1, H, W);
    op->conv2d_bwd_data_set(dup, dh0, PW(k0), &g0, h->ws);
    op->conv2d_bwd_filter(GW(k0), GB(k0), dh0, h->st[0].up, &g0, h->ws);
    avs_arena_rewind(&h->scratch, mark);
}
