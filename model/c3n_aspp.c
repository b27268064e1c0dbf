/* model/c3n_aspp.c: the C3N head's ASPP (conv1..conv4), forward and backward, composed.
 *
 * ASPP (ref: DeepLabv3's ASPP as in C3N) is linear in its input: no norm or activation sits
 * between the branches and the output conv:
 *     out = Wo [ up(Wp mean(x) + bp) ; W1 x + b1 ; W6 *d6 x + b6 ; W12 *d12 x + b12 ; W18 *d18 x + b18 ] + bo
 * so the four conv branches and their slices Wo_1..Wo_4 of the output conv are one tap conv
 * (model/ops.h) over the union of their live taps (the centre is shared: at most 25 taps):
 *     Wc[:, u, :] = sum over the branch taps at offset u of  Wo_b Wb[:, :, tap]     [D, C]
 *     bc = bo + sum_b Wo_b bb,         pooled branch: pt[n] = Wo_0 (Wp mean(x_n) + bp)
 *     out = tapconv(x; Wc) + bc + pt[n]
 * The same function, computed with about half the multiplies (stage 1: 25*64 per output and
 * channel instead of 28*64 + 1280) and without the [B, 5D, HW] concat. The gradients of the
 * official parameters follow by the chain rule from the composed ones:
 *     dWb[:, :, tap] = Wo_b^T dWc[:, u, :],   dWo_b = sum_taps dWc[:, u, :] Wb[:, :, tap]^T + dbc bb^T,
 *     dbb = Wo_b^T dbc,   dbo = dbc = sum of dout,   dWo_0 = sum_n dpt[n] ip[n]^T, ...
 * A tap that only ever reads padding (d12, d18 on small maps) is left out, as its gradient
 * in PyTorch is zero too.
 * With cfg.avsbench the stage's neck is AVSBench's Classifier_Module instead (model/c3n_neck.c).
 */
#include "model/c3n_blocks.h"

static const int aspp_dil[4] = {1, 6, 12, 18};

/* The union of the live taps of stage s (st->tc) and where each branch tap went (tap_of), for
 * four 3x3 branches of dilations dil[] (the first a 1x1 when first_1x1): ASPP's, or AVSBench's
 * neck (model/c3n_neck.c). */
void avs_c3n_taps_plan(struct avs_c3n_head *h, int s, const int dil[4], int first_1x1)
{
    struct avs_c3n_stage *st = &h->st[s];
    struct avs_tapconv *tc = &st->tc;
    int H = h->cfg.H[s], W = h->cfg.W[s];
    tc->N = h->B, tc->C = h->cfg.C[s], tc->H = tc->P = H, tc->W = tc->Q = W, tc->K = h->cfg.D;
    tc->n = 1, tc->dy[0] = tc->dx[0] = 0; /* the centre, shared by all branches */
    for (int a = 0; a < 4; a++)
        for (int t = 0; t < 9; t++) {
            int dy = (t / 3 - 1) * dil[a], dx = (t % 3 - 1) * dil[a];
            if (a == 0 && first_1x1 && t != 4)
                st->tap_of[a][t] = -1; /* the 1x1 branch has the centre only */
            else if (t == 4)
                st->tap_of[a][t] = 0;
            else if (dy <= -H || dy >= H || dx <= -W || dx >= W)
                st->tap_of[a][t] = -1;
            else {
                AVS_ASSERT(tc->n < AVS_TAPS_MAX);
                st->tap_of[a][t] = (signed char)tc->n;
                tc->dy[tc->n] = dy, tc->dx[tc->n] = dx, tc->n++;
            }
        }
}

void avs_c3n_aspp_plan(struct avs_c3n_head *h, int s)
{
    if (h->cfg.avsbench)
        avs_c3n_neck_plan(h, s);
    else
        avs_c3n_taps_plan(h, s, aspp_dil, 1);
}

/* Scratch the ASPP of stage s needs beyond the conv workspace (floats). */
size_t avs_c3n_aspp_scratch(const struct avs_c3n_head *h, int s)
{
    if (h->cfg.avsbench)
        return avs_c3n_neck_scratch(h, s);
    size_t D = (size_t)h->cfg.D, C = (size_t)h->cfg.C[s], B = (size_t)h->B;
    return D * C * 9 * 2 + D * C * h->st[s].tc.n + B * (3 * D + C) + 2 * D + 1024;
}

/* wt [9][D][C] = the taps of w [D][C][9] (w itself for a 1x1 branch: [1][D][C]) */
static const float *taps_major(float *wt, const float *w, int D, int C, int a)
{
    if (a == 0)
        return w;
    avs_ops()->taps_split(wt, w, D, C, 9);
    return wt;
}

/* dw [D][C][9] += dwt [9][D][C] (a 1x1 branch: dwt is [1][D][C]) */
static void add_taps_back(float *dw, const float *dwt, int D, int C, int a)
{
    if (a == 0)
        avs_ops()->axpy(dw, 1.0f, dwt, (size_t)D * C);
    else
        avs_ops()->taps_merge(dw, dwt, D, C, 9);
}

/* st->wc [D][n][C] and st->bc [D] from the parameters */
static void compose(struct avs_c3n_head *h, int s)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int D = h->cfg.D, C = h->cfg.C[s], n = st->tc.n, ko = st->k.out;
    size_t mark = avs_arena_mark(&h->scratch);
    float *wt = avs_c3n_stake(h, (size_t)9 * D * C, 0);
    op->zero(st->wc, (size_t)D * n * C);
    op->copy(st->bc, PB(ko), (size_t)D * sizeof(float));
    for (int a = 0; a < 4; a++) {
        int k = st->k.br[a];
        const float *wo = PW(ko) + (size_t)(a + 1) * D, *w = taps_major(wt, PW(k), D, C, a);
        for (int t = 0; t < 9; t++) {
            int u = st->tap_of[a][t];
            if (u >= 0)
                op->gemm(0, 0, D, C, D, 1.0f, wo, 5 * D, w + (size_t)(a ? t : 0) * D * C, C, 1.0f,
                         st->wc + (size_t)u * C, n * C);
        }
        op->gemm(0, 0, D, 1, D, 1.0f, wo, 5 * D, PB(k), 1, 1.0f, st->bc, 1);
    }
    avs_arena_rewind(&h->scratch, mark);
}

void avs_c3n_aspp_fwd(struct avs_c3n_head *h, int s, const float *x)
{
    if (h->cfg.avsbench) {
        avs_c3n_neck_fwd(h, s, x);
        return;
    }
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int B = h->B, C = h->cfg.C[s], D = h->cfg.D, hw = h->cfg.H[s] * h->cfg.W[s];
    int kp = st->k.pool, ko = st->k.out;
    /* pooled branch: ip = Wp mean(x) + bp, pt = Wo_0 ip */
    op->mean_fwd(st->pool, x, B * C, hw);
    op->gemm(0, 1, B, D, C, 1.0f, st->pool, C, PW(kp), C, 0.0f, st->ip, D);
    op->bias_fwd(st->ip, PB(kp), B, D);
    op->gemm(0, 1, B, D, D, 1.0f, st->ip, D, PW(ko), 5 * D, 0.0f, st->pt, D);
    /* the rest: one tap conv */
    compose(h, s);
    op->tapconv_fwd(st->a, x, st->wc, st->bc, &st->tc, h->ws);
    struct avs_bcast bc = {B, D, hw, 1, 1, 0};
    op->add_fwd(st->a, st->a, st->pt, &bc);
    h->flops_fwd += avs_tapconv_flops(&st->tc);
}

/* The gradients of branch a's weight and bias and of its slice of the output conv, from the
 * composed gradients dwc [D][n][C] and dbc [D]. */
static void branch_bwd(struct avs_c3n_head *h, int s, int a, const float *dwc, const float *dbc)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int D = h->cfg.D, C = h->cfg.C[s], n = st->tc.n, nt = a ? 9 : 1;
    int k = st->k.br[a], ko = st->k.out;
    size_t mark = avs_arena_mark(&h->scratch);
    float *wt = avs_c3n_stake(h, (size_t)9 * D * C, 0), *dwt = avs_c3n_stake(h, (size_t)nt * D * C, 1);
    const float *wo = PW(ko) + (size_t)(a + 1) * D, *w = taps_major(wt, PW(k), D, C, a);
    float *dwo = GW(ko) + (size_t)(a + 1) * D;
    for (int t = 0; t < 9; t++) {
        int u = st->tap_of[a][t], ti = a ? t : 0;
        if (u < 0)
            continue;
        op->gemm(1, 0, D, C, D, 1.0f, wo, 5 * D, dwc + (size_t)u * C, n * C, 0.0f,
                 dwt + (size_t)ti * D * C, C);
        op->gemm(0, 1, D, D, C, 1.0f, dwc + (size_t)u * C, n * C, w + (size_t)ti * D * C, C, 1.0f,
                 dwo, 5 * D);
    }
    add_taps_back(GW(k), dwt, D, C, a);
    op->gemm(1, 0, D, 1, D, 1.0f, wo, 5 * D, dbc, 1, 1.0f, GB(k), 1);   /* dbb += Wo_b^T dbc */
    op->gemm(0, 0, D, D, 1, 1.0f, dbc, 1, PB(k), D, 1.0f, dwo, 5 * D); /* dWo_b += dbc bb^T */
    avs_arena_rewind(&h->scratch, mark);
}

/* The pooled branch: dpt [B,D] (spatial sums of da per image) back to Wo_0, Wp, bp and, with
 * dx, to the input (its mean). */
static void pool_bwd(struct avs_c3n_head *h, int s, const float *dpt, float *dx)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int B = h->B, C = h->cfg.C[s], D = h->cfg.D, hw = h->cfg.H[s] * h->cfg.W[s];
    int kp = st->k.pool, ko = st->k.out;
    size_t mark = avs_arena_mark(&h->scratch);
    float *dip = avs_c3n_stake(h, (size_t)B * D, 0);
    op->gemm(1, 0, D, D, B, 1.0f, dpt, D, st->ip, D, 1.0f, GW(ko), 5 * D); /* dWo_0 */
    op->gemm(0, 0, B, D, D, 1.0f, dpt, D, PW(ko), 5 * D, 0.0f, dip, D);
    op->gemm(1, 0, D, C, B, 1.0f, dip, D, st->pool, C, 1.0f, GW(kp), C);
    op->bias_bwd(GB(kp), dip, B, D);
    if (dx) {
        float *dpool = avs_c3n_stake(h, (size_t)B * C, 0);
        op->gemm(0, 0, B, C, D, 1.0f, dip, D, PW(kp), C, 0.0f, dpool, C);
        op->mean_bwd(dx, dpool, B * C, hw);
    }
    avs_arena_rewind(&h->scratch, mark);
}

void avs_c3n_aspp_bwd(struct avs_c3n_head *h, int s, const float *da, float *dx)
{
    if (h->cfg.avsbench) {
        avs_c3n_neck_bwd(h, s, da, dx);
        return;
    }
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int B = h->B, C = h->cfg.C[s], D = h->cfg.D, hw = h->cfg.H[s] * h->cfg.W[s], n = st->tc.n;
    int ko = st->k.out;
    size_t mark = avs_arena_mark(&h->scratch);
    float *dpt = avs_c3n_stake(h, (size_t)B * D, 1), *dbc = avs_c3n_stake(h, (size_t)D, 1);
    float *dwc = avs_c3n_stake(h, (size_t)D * n * C, 1);
    struct avs_bcast bc = {B, D, hw, 1, 1, 0};
    op->add_bwd(dpt, da, &bc);
    op->bias_bwd(dbc, dpt, B, D);
    op->axpy(GB(ko), 1.0f, dbc, (size_t)D);
    op->tapconv_bwd_filter(dwc, NULL, da, h->x[s], &st->tc, h->ws);
    for (int a = 0; a < 4; a++)
        branch_bwd(h, s, a, dwc, dbc);
    pool_bwd(h, s, dpt, dx);
    if (dx)
        op->tapconv_bwd_data(dx, da, st->wc, &st->tc, h->ws);
    avs_arena_rewind(&h->scratch, mark);
}
