/* model/c3n_blocks.c: the C3N head's blocks, forward and backward, in llm.c's form: each
 * block's forward calls primitives and saves what its backward needs in the activation arena;
 * the backward calls the same primitives' backwards in reverse order, taking temporaries from
 * the scratch arena (stack discipline) and ADDING into parameter gradients.
 *
 *   ASPP   (ref: DeepLabv3 ASPP as in C3N): pool->1x1->broadcast | 1x1 | 3x3 d6 | d12 | d18
 *          -> concat [5D] -> 1x1 -> D, computed composed (model/c3n_aspp.c).
 *   TPAVI  (ref: AVSBench TPAVI.py, mode "dot"), exact low-rank form (DESIGN §6):
 *          y_t = M^T theta_t / T, M = sum_t phi_t G_t^T [Ci,Ci], G_t = mean_HW g_t (the sum
 *          of g over frame t's positions, divided by the H*W of the official 1/(T*H*W));
 *          z = BN(W_z y) + x; out = LayerNorm over channels (eps 1e-5).
 *          Numerics: the sums over positions (dM = sum theta dy^T, the theta/g/phi bias
 *          gradients) stay float32 GEMMs and the library's double-lane bias sums. Measured
 *          (issue 12) against float64: at D 64 and the official widths, with exact convs, every
 *          gradient is within float32's own spread (PyTorch's official and low-rank float32
 *          runs differ from each other by 2-4x on a few of these cancelling sums on every fresh
 *          case, and so do we); recomputing dM, theta's weight or bias gradient in double, or
 *          M in double-float, moved nothing beyond that noise. The gradients 5-10x over it came
 *          from Winograd's backward-data path (backend/cpu/winograd.c) upstream, not from here.
 *   fusion (ref: AVSBench FeatureFusionBlock/ResidualConvUnit with in-place ReLU):
 *          RCU(x) = conv2(relu(conv1(relu(x)))) + relu(x); path(p, s) = up2(RCU2(p + RCU1(s))),
 *          up2 = bilinear x2, align_corners=True.
 *   output (ref: output_conv): conv3x3 D->O1 (128), bilinear x2 (align_corners=False),
 *          conv3x3 O1->O2 (32), ReLU, conv1x1 O2->1.
 */
#include "model/c3n_blocks.h"

#include <stdio.h>

#include "model/nn.h"

/* ---- geometry ---- */

static int HW(const struct avs_c3n_head *h, int s)
{
    return h->cfg.H[s] * h->cfg.W[s];
}

static struct avs_conv2d geom(int N, int C, int H, int W, int K, int R, int pad, int dil)
{
    struct avs_conv2d g;
    avs_conv2d_geom(&g, N, C, H, W, K, R, R, 1, pad, dil, 1);
    return g;
}

/* Layouts are counted and carved by one function (backend/backend.h). */
static float *take(struct avs_carver *c, size_t n)
{
    return avs_carve(c, n);
}

/* ---- carving the activation arena (one function for counting and for taking) ---- */


static void carve(struct avs_c3n_head *h, struct avs_carver *c)
{
    size_t B = (size_t)h->B, D = (size_t)h->cfg.D, Ci = (size_t)h->cfg.Ci;
    for (int s = 0; s < 4; s++) {
        struct avs_c3n_stage *st = &h->st[s];
        size_t hw = (size_t)HW(h, s);
        st->pool = take(c, B * h->cfg.C[s]);
        st->ip = take(c, B * D);
        st->pt = take(c, B * D);
        st->wc = take(c, D * st->tc.n * h->cfg.C[s]);
        st->bc = take(c, D);
        st->a = take(c, B * D * hw);
        if (h->cfg.tpavi >> s & 1) {
            st->af = take(c, B * D);
            st->phi = take(c, B * Ci);
            st->th = take(c, B * Ci * hw);
            st->G = take(c, B * Ci);
            st->am = take(c, B * D);
            st->M = take(c, (size_t)h->N * Ci * Ci);
            st->y = take(c, B * Ci * hw);
            st->wz = take(c, B * D * hw);
            st->bnm = take(c, D);
            st->bnr = take(c, D);
            st->z = take(c, B * D * hw);
            st->lnm = take(c, B * hw);
            st->lnr = take(c, B * hw);
            st->t = take(c, B * D * hw);
        }
        if (s < 3) {
            st->r0a = take(c, B * D * hw);
            st->r1a = take(c, B * D * hw);
        }
        st->r0b = take(c, B * D * hw);
        st->r1b = take(c, B * D * hw);
        st->up = take(c, B * D * hw * 4);
        if (h->cfg.av_match && (h->cfg.tpavi >> s & 1)) {
            st->avm_m = take(c, B * hw);
            st->avm_u = take(c, B * D);
            st->avm_dv = take(c, B * D * hw);
            st->avm_daf = take(c, B * D);
        }
    }
    size_t n0 = (size_t)HW(h, 0);
    size_t H2 = 2 * (size_t)h->cfg.H[0], W2 = 2 * (size_t)h->cfg.W[0];
    h->hp = take(c, B * h->cfg.O1 * (H2 + 2) * (W2 + 2));
    h->kc = take(c, (size_t)h->cfg.O2 * 4 * h->cfg.O1 * 9);
    h->kcb = take(c, (size_t)h->cfg.O2 * 4);
    h->ringcol = take(c, avs_c3n_output_ring_floats(h));
    h->h3 = take(c, B * h->cfg.O2 * n0 * 16);
    h->logits = take(c, B * h->cfg.K * n0 * 16);
    if (h->cfg.av_match)
        h->avm_p = take(c, B * n0 * 16);
    h->ws = take(c, h->ws_n);
}

static void ws_max(struct avs_c3n_head *h, struct avs_conv2d g)
{
    size_t n = avs_conv2d_ws(&g);
    if (n > h->ws_n)
        h->ws_n = n;
}

/* conv scratch: the largest of all convs (h->ws_n floats) */
static void size_ws(struct avs_c3n_head *h)
{
    for (int s = 0; s < 4; s++) {
        size_t n = avs_tapconv_ws(&h->st[s].tc);
        if (n > h->ws_n)
            h->ws_n = n;
        ws_max(h, geom(h->B, h->cfg.D, h->cfg.H[s], h->cfg.W[s], h->cfg.D, 3, 1, 1));
    }
    ws_max(h, geom(h->B, h->cfg.D, 2 * h->cfg.H[0], 2 * h->cfg.W[0], h->cfg.O1, 3, 1, 1));
    ws_max(h, geom(h->B, h->cfg.O1, 2 * h->cfg.H[0] + 2, 2 * h->cfg.W[0] + 2, 4 * h->cfg.O2, 3, 0, 1));
}

void avs_c3n_blocks_carve(struct avs_c3n_head *h)
{
    for (int s = 0; s < 4; s++)
        avs_c3n_aspp_plan(h, s);
    size_ws(h);
    struct avs_carver c = {0};
    carve(h, &c);
    avs_arena_init_lazy(&h->acts, c.total);
    c.a = &h->acts;
    c.total = 0;
    carve(h, &c);
    /* scratch: the largest backward stack (output head) bounds all others, plus stage temps */
    size_t B = (size_t)h->B, D = (size_t)h->cfg.D, n0 = (size_t)HW(h, 0);
    size_t out_need = avs_c3n_output_scratch(h) + B * D * n0 * 4 * 2;
    size_t stage_need = 0;
    for (int s = 0; s < 4; s++) {
        size_t hw = (size_t)HW(h, s);
        size_t need = B * D * hw * 4 * 2 + B * D * hw * 12 + avs_c3n_aspp_scratch(h, s) +
                      (size_t)h->N * h->cfg.Ci * h->cfg.Ci + B * h->cfg.Ci * hw * 3 + 4096;
        if (need > stage_need)
            stage_need = need;
    }
    avs_arena_init_lazy(&h->scratch, out_need + stage_need + 4 * B * D * n0 * 4);
}

float *avs_c3n_stake(struct avs_c3n_head *h, size_t n, int zero)
{
    float *p = avs_arena_take(&h->scratch, n);
    if (zero)
        avs_ops()->zero(p, n);
    return p;
}

static float *stake(struct avs_c3n_head *h, size_t n)
{
    return avs_c3n_stake(h, n, 1);
}

/* ---- TPAVI ---- */

static void tpavi_fwd(struct avs_c3n_head *h, int s, const float *audio)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int B = h->B, T = h->cfg.T, D = h->cfg.D, Ci = h->cfg.Ci, hw = HW(h, s);
    size_t mark = avs_arena_mark(&h->scratch);
    const struct avs_c3n_idx *k = &st->k;
    int kal = k->al, kphi = k->phi, kth = k->th, kg = k->g, kwz = k->wz, kbn = k->bn, kln = k->ln;
    avs_linear_fwd(st->af, audio, PW(kal), PB(kal), B, h->cfg.A, D);
    avs_linear_fwd(st->phi, st->af, PW(kphi), PB(kphi), B, D, Ci);
    struct avs_conv2d gin = geom(B, D, h->cfg.H[s], h->cfg.W[s], Ci, 1, 0, 1);
    struct avs_conv2d gout = geom(B, Ci, h->cfg.H[s], h->cfg.W[s], D, 1, 0, 1);
    op->conv2d_fwd(st->th, st->a, PW(kth), PB(kth), &gin, h->ws);
    /* only the spatial means of g's 1x1 conv are used: G = mean_HW (Wg a + bg) = Wg mean(a) + bg;
     * the sums of the exact form are HW G, and HW/(T*HW) = 1/T is folded into alpha */
    op->mean_fwd(st->am, st->a, B * D, hw);
    avs_linear_fwd(st->G, st->am, PW(kg), PB(kg), B, D, Ci);
    float alpha = 1.0f / (float)T;
    for (int n = 0; n < h->N; n++) {
        float *M = st->M + (size_t)n * Ci * Ci;
        op->gemm(1, 0, Ci, Ci, T, 1.0f, st->phi + (size_t)n * T * Ci, Ci, st->G + (size_t)n * T * Ci,
                 Ci, 0.0f, M, Ci);
        for (int t = 0; t < T; t++) {
            size_t b = (size_t)n * T + t;
            op->gemm(1, 0, Ci, hw, Ci, alpha, M, Ci, st->th + b * Ci * hw, hw, 0.0f,
                     st->y + b * Ci * hw, hw);
        }
    }
    op->conv2d_fwd(st->wz, st->y, PW(kwz), PB(kwz), &gout, h->ws);
    if (h->train && h->bn_sync)
        h->bn_sync->fwd(h->bn_sync->ctx, st->z, st->bnm, st->bnr, st->wz, PW(kbn), PB(kbn),
                        h->bufs.t[k->rmean].data, h->bufs.t[k->rvar].data, B, D, hw, 1e-5f, 0.1f);
    else
        op->batchnorm_fwd(st->z, st->bnm, st->bnr, st->wz, PW(kbn), PB(kbn),
                          h->bufs.t[k->rmean].data, h->bufs.t[k->rvar].data,
                          B, D, hw, 1e-5f, 0.1f, h->train);
    if (h->train)
        h->bn_batches[s]++;
    op->axpy(st->z, 1.0f, st->a, (size_t)B * D * hw);
    op->layernorm_fwd(st->t, st->lnm, st->lnr, st->z, PW(kln), PB(kln), B, D, hw, 1e-5f);
    h->flops_fwd += 3 * avs_conv2d_flops(&gin) + 2.0 * B * Ci * Ci * hw;
    avs_arena_rewind(&h->scratch, mark);
}

static void tpavi_bwd(struct avs_c3n_head *h, int s, const float *dt, float *da, float *daudio)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int B = h->B, T = h->cfg.T, D = h->cfg.D, Ci = h->cfg.Ci, hw = HW(h, s);
    size_t mark = avs_arena_mark(&h->scratch);
    const struct avs_c3n_idx *k = &st->k;
    int kal = k->al, kphi = k->phi, kth = k->th, kg = k->g, kwz = k->wz, kbn = k->bn, kln = k->ln;
    size_t map = (size_t)B * D * hw, imap = (size_t)B * Ci * hw;
    float *dz = stake(h, map);
    op->layernorm_bwd(dz, GW(kln), GB(kln), dt, st->z, st->lnm, st->lnr, PW(kln), B, D, hw);
    op->axpy(da, 1.0f, dz, map);
    float *dwz = stake(h, map);
    if (h->train && h->bn_sync)
        h->bn_sync->bwd(h->bn_sync->ctx, dwz, GW(kbn), GB(kbn), dz, st->wz, st->bnm, st->bnr,
                        PW(kbn), B, D, hw);
    else
        op->batchnorm_bwd(dwz, GW(kbn), GB(kbn), dz, st->wz, st->bnm, st->bnr, PW(kbn), B, D, hw,
                          h->train);
    struct avs_conv2d gin = geom(B, D, h->cfg.H[s], h->cfg.W[s], Ci, 1, 0, 1);
    struct avs_conv2d gout = geom(B, Ci, h->cfg.H[s], h->cfg.W[s], D, 1, 0, 1);
    float *dy = avs_c3n_stake(h, imap, 0);
    op->conv2d_bwd_data_set(dy, dwz, PW(kwz), &gout, h->ws);
    op->conv2d_bwd_filter(GW(kwz), GB(kwz), dwz, st->y, &gout, h->ws);
    float *dth = stake(h, imap), *dM = stake(h, (size_t)h->N * Ci * Ci);
    float *dphi = stake(h, (size_t)B * Ci), *dG = stake(h, (size_t)B * Ci);
    float alpha = 1.0f / (float)T; /* as in the forward (G there is a mean, not a sum) */
    for (int n = 0; n < h->N; n++) {
        const float *M = st->M + (size_t)n * Ci * Ci;
        float *dMn = dM + (size_t)n * Ci * Ci;
        for (int t = 0; t < T; t++) {
            size_t b = (size_t)n * T + t;
            op->gemm(0, 0, Ci, hw, Ci, alpha, M, Ci, dy + b * Ci * hw, hw, 1.0f, dth + b * Ci * hw, hw);
            op->gemm(0, 1, Ci, Ci, hw, alpha, st->th + b * Ci * hw, hw, dy + b * Ci * hw, hw, 1.0f, dMn, Ci);
        }
        op->gemm(0, 1, T, Ci, Ci, 1.0f, st->G + (size_t)n * T * Ci, Ci, dMn, Ci, 0.0f,
                 dphi + (size_t)n * T * Ci, Ci);
        op->gemm(0, 0, T, Ci, Ci, 1.0f, st->phi + (size_t)n * T * Ci, Ci, dMn, Ci, 0.0f,
                 dG + (size_t)n * T * Ci, Ci);
    }
    /* g (through G = Wg mean(a) + bg): its input gradient is the same at every position */
    float *dam = stake(h, (size_t)B * D);
    avs_linear_bwd(dam, GW(kg), GB(kg), dG, st->am, PW(kg), B, D, Ci);
    op->mean_bwd(da, dam, B * D, hw);
    op->conv2d_bwd_data(da, dth, PW(kth), &gin, h->ws);
    op->conv2d_bwd_filter(GW(kth), GB(kth), dth, st->a, &gin, h->ws);
    float *daf = stake(h, (size_t)B * D);
    avs_linear_bwd(daf, GW(kphi), GB(kphi), dphi, st->af, PW(kphi), B, D, Ci);
    if (h->avm_live) /* the matching loss reads af too */
        op->axpy(daf, 1.0f, st->avm_daf, (size_t)B * D);
    avs_linear_bwd(daudio, GW(kal), GB(kal), daf, h->audio, PW(kal), B, h->cfg.A, D);
    avs_arena_rewind(&h->scratch, mark);
}

/* ---- fusion ---- */

/* out = conv2(relu(conv1(relu(x)))) + relu(x); saves r0 = relu(x), r1 = relu(conv1(r0)) */
static void rcu_fwd(struct avs_c3n_head *h, int s, int u, float *out, float *r0, float *r1,
                    const float *x)
{
    const struct avs_ops *op = avs_ops();
    size_t map = (size_t)h->B * h->cfg.D * HW(h, s);
    struct avs_conv2d g = geom(h->B, h->cfg.D, h->cfg.H[s], h->cfg.W[s], h->cfg.D, 3, 1, 1);
    int k1 = h->st[s].k.rcu[u - 1][0], k2 = h->st[s].k.rcu[u - 1][1];
    op->relu_fwd(r0, x, map);
    op->conv2d_fwd(r1, r0, PW(k1), PB(k1), &g, h->ws);
    op->relu_fwd(r1, r1, map);
    op->conv2d_fwd(out, r1, PW(k2), PB(k2), &g, h->ws);
    op->axpy(out, 1.0f, r0, map);
    h->flops_fwd += 2 * avs_conv2d_flops(&g);
}

static void rcu_bwd(struct avs_c3n_head *h, int s, int u, float *dx, const float *dout,
                    const float *r0, const float *r1)
{
    const struct avs_ops *op = avs_ops();
    size_t map = (size_t)h->B * h->cfg.D * HW(h, s), mark = avs_arena_mark(&h->scratch);
    struct avs_conv2d g = geom(h->B, h->cfg.D, h->cfg.H[s], h->cfg.W[s], h->cfg.D, 3, 1, 1);
    int k1 = h->st[s].k.rcu[u - 1][0], k2 = h->st[s].k.rcu[u - 1][1];
    float *dr1 = avs_c3n_stake(h, map, 0), *dc1 = stake(h, map), *dr0 = avs_c3n_stake(h, map, 0);
    op->conv2d_bwd_data_set(dr1, dout, PW(k2), &g, h->ws);
    op->conv2d_bwd_filter(GW(k2), GB(k2), dout, r1, &g, h->ws);
    op->relu_bwd(dc1, dr1, r1, map);
    op->conv2d_bwd_data_set(dr0, dc1, PW(k1), &g, h->ws);
    op->conv2d_bwd_filter(GW(k1), GB(k1), dc1, r0, &g, h->ws);
    op->axpy(dr0, 1.0f, dout, map);
    op->relu_bwd(dx, dr0, r0, map); /* relu(x) > 0 exactly where x > 0 */
    avs_arena_rewind(&h->scratch, mark);
}

/* path s: up = resize2x(RCU2(prev + RCU1(skip))); prev NULL for path4 (then skip alone). */
static void path_fwd(struct avs_c3n_head *h, int s, const float *prev, const float *skip)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    size_t map = (size_t)h->B * h->cfg.D * HW(h, s), mark = avs_arena_mark(&h->scratch);
    float *sum = avs_c3n_stake(h, map, 0), *u = avs_c3n_stake(h, map, 0);
    if (prev) {
        rcu_fwd(h, s, 1, sum, st->r0a, st->r1a, skip);
        op->axpy(sum, 1.0f, prev, map);
    }
    rcu_fwd(h, s, 2, u, st->r0b, st->r1b, prev ? sum : skip);
    op->resize_fwd(st->up, u, h->B * h->cfg.D, h->cfg.H[s], h->cfg.W[s], 2 * h->cfg.H[s],
                   2 * h->cfg.W[s], 1);
    avs_arena_rewind(&h->scratch, mark);
}

/* dup: gradient of path s's output; writes dprev (zeroed by caller, NULL for path4) and adds
 * into dskip. */
static void path_bwd(struct avs_c3n_head *h, int s, const float *dup, float *dprev, float *dskip)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    size_t map = (size_t)h->B * h->cfg.D * HW(h, s), mark = avs_arena_mark(&h->scratch);
    float *du = stake(h, map);
    op->resize_bwd(du, dup, h->B * h->cfg.D, h->cfg.H[s], h->cfg.W[s], 2 * h->cfg.H[s],
                   2 * h->cfg.W[s], 1);
    float *dsum = dprev ? dprev : dskip;
    rcu_bwd(h, s, 2, dsum, du, st->r0b, st->r1b);
    if (dprev)
        rcu_bwd(h, s, 1, dskip, dprev, st->r0a, st->r1a);
    avs_arena_rewind(&h->scratch, mark);
}

/* ---- the head ---- */

static const float *stage_out(const struct avs_c3n_head *h, int s)
{
    return (h->cfg.tpavi >> s & 1) ? h->st[s].t : h->st[s].a;
}

void avs_c3n_head_fwd(struct avs_c3n_head *h, const float *const x[4], const float *audio,
                      int train)
{
    h->train = train;
    h->audio = audio;
    h->flops_fwd = 0;
    h->avm_live = 0; /* a matching loss of an earlier forward no longer applies */
    for (int s = 0; s < 4; s++) {
        h->x[s] = x[s];
        avs_c3n_aspp_fwd(h, s, x[s]);
        if (h->cfg.tpavi >> s & 1)
            tpavi_fwd(h, s, audio);
    }
    path_fwd(h, 3, NULL, stage_out(h, 3));
    for (int s = 2; s >= 0; s--)
        path_fwd(h, s, h->st[s + 1].up, stage_out(h, s));
    avs_c3n_output_fwd(h);
}

void avs_c3n_head_bwd(struct avs_c3n_head *h, const float *dlogits, float *const dx[4],
                      float *daudio)
{
    int B = h->B, D = h->cfg.D, H2 = 2 * h->cfg.H[0], W2 = 2 * h->cfg.W[0];
    h->grads_zero = 0; /* the gradients are no longer all zero */
    size_t mark0 = avs_arena_mark(&h->scratch);
    /* two ping-pong buffers for the gradients flowing down the decoder */
    float *dup = avs_c3n_stake(h, (size_t)B * D * H2 * W2, 0);
    float *dprev = avs_c3n_stake(h, (size_t)B * D * H2 * W2, 0); /* cleared per stage */
    avs_c3n_output_bwd(h, dlogits, dup);
    for (int s = 0; s < 4; s++) {
        size_t map = (size_t)B * D * HW(h, s), mark = avs_arena_mark(&h->scratch);
        float *dt = stake(h, map);
        if (s < 3)
            avs_ops()->zero(dprev, map);
        path_bwd(h, s, dup, s < 3 ? dprev : NULL, dt);
        if (h->avm_live && h->st[s].avm_dv) /* the matching loss read relu(t) */
            avs_ops()->relu_bwd(dt, h->st[s].avm_dv, s < 3 ? h->st[s].r0a : h->st[s].r0b, map);
        float *da = dt;
        if (h->cfg.tpavi >> s & 1) {
            da = stake(h, map);
            tpavi_bwd(h, s, dt, da, daudio);
        }
        avs_c3n_aspp_bwd(h, s, da, dx ? dx[s] : NULL);
        avs_arena_rewind(&h->scratch, mark);
        float *tmp = dup;
        dup = dprev, dprev = tmp;
    }
    h->avm_live = 0;
    avs_arena_rewind(&h->scratch, mark0);
}
