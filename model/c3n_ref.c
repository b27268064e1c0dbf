/* model/c3n_ref.c: the reference C3N (see c3n_ref.h), forward and backward, one function pair
 * per official module. ref: AVSBench avs_s4/model/PVT_AVSModel.py (FeatureFusionBlock,
 * ResidualConvUnit, output_conv), TPAVI.py (TPAVIModule, mode "dot", dimension 3); the C3N
 * head's ASPP (DeepLabv3); C3N Eq. 6-7 (CCAM); tests/gen/model_c3n_ref.py is the same model in
 * PyTorch. Shapes: B = N*T frames (a video's T frames adjacent), HW = H_s*W_s of the stage. */
#include "model/c3n_ref.h"

#include <string.h>

static const int aspp_dil[4] = {1, 6, 12, 18};
static const char *aspp_name[4] = {"atrous_block1", "atrous_block6", "atrous_block12",
                                   "atrous_block18"};

static int has_tpavi(const struct avs_c3n_ref *r, int s)
{
    return r->cfg.tpavi >> s & 1;
}

static int HW(const struct avs_c3n_ref *r, int s)
{
    return r->cfg.H[s] * r->cfg.W[s];
}

/* Layouts are counted and carved by one function (backend/backend.h). */
static float *take(struct avs_carver *c, size_t n)
{
    return avs_carve(c, n);
}

/* ---- the size table: one function for counting and for carving ---- */


static void carve_stage(const struct avs_c3n_ref *r, int s, struct avs_c3n_ref_stage *st,
                        struct avs_carver *c)
{
    size_t B = (size_t)r->B, C = (size_t)r->cfg.C[s], D = (size_t)r->cfg.D;
    size_t Ci = (size_t)r->cfg.Ci, hw = (size_t)HW(r, s), map = B * D * hw, imap = B * Ci * hw;
    if (r->ccam) {
        st->cn = take(c, B * C), st->cs = take(c, B * C), st->x1 = take(c, B * C * hw);
        st->m = take(c, B * hw), st->sm = take(c, B * hw), st->xc = take(c, B * C * hw);
    }
    st->pool = take(c, B * C), st->ip = take(c, B * D);
    for (int i = 0; i < 5; i++)
        st->br[i] = take(c, map);
    st->cat = take(c, 5 * map), st->a = take(c, map);
    if (has_tpavi(r, s)) {
        st->af = take(c, B * D), st->am = take(c, map);
        st->th = take(c, imap), st->ph = take(c, imap), st->g = take(c, imap);
        st->M = take(c, (size_t)r->N * Ci * Ci), st->y = take(c, imap), st->wz = take(c, map);
        st->bnm = take(c, D), st->bnr = take(c, D), st->bn = take(c, map), st->z = take(c, map);
        st->lnm = take(c, B * hw), st->lnr = take(c, B * hw), st->t = take(c, map);
    }
    for (int u = s < 3 ? 0 : 1; u < 2; u++) {
        st->r0[u] = take(c, map), st->c1[u] = take(c, map), st->r1[u] = take(c, map);
        st->c2[u] = take(c, map), st->ro[u] = take(c, map);
    }
    if (s < 3)
        st->sum = take(c, map);
    st->up = take(c, 4 * map);
}

static void carve(const struct avs_c3n_ref *r, struct avs_c3n_ref_acts *a, struct avs_carver *c)
{
    memset(a, 0, sizeof *a);
    for (int s = 0; s < 4; s++)
        carve_stage(r, s, &a->st[s], c);
    size_t B = (size_t)r->B, n2 = 4 * (size_t)HW(r, 0), n4 = 4 * n2;
    a->h1 = take(c, B * r->cfg.O1 * n2), a->hu = take(c, B * r->cfg.O1 * n4);
    a->h2 = take(c, B * r->cfg.O2 * n4), a->h3 = take(c, B * r->cfg.O2 * n4);
    a->logits = take(c, B * r->cfg.K * n4);
}

/* both arenas from the same table: dact[i] is the gradient of act[i] */
static void carve_all(struct avs_c3n_ref *r)
{
    struct avs_carver c = {0};
    carve(r, &r->act, &c);
    avs_arena_init(&r->acts, c.total);
    avs_arena_init(&r->dacts, c.total);
    c.a = &r->acts;
    carve(r, &r->act, &c);
    c.a = &r->dacts;
    carve(r, &r->dact, &c);
}

/* ---- parameters: indices by name once; shapes checked against the configuration ---- */

/* the index of <layer>.weight, a weight of K*C*R*R floats whose bias [K] follows it (a
 * Linear: R = 1; a norm's affine: C = R = 1) */
static int layer(const struct avs_c3n_ref *r, const char *name, int K, int C, int R)
{
    int k = avs_tensor_set_findf(r->params, "%s.weight", name);
    AVS_ASSERT(avs_tensor_numel(&r->params->t[k]) == (size_t)K * C * R * R);
    AVS_ASSERT(k + 1 < r->params->n && avs_tensor_numel(&r->params->t[k + 1]) == (size_t)K);
    return k;
}

static int tpavi_layer(const struct avs_c3n_ref *r, int s, const char *sub, int K, int C)
{
    char nm[64];
    snprintf(nm, sizeof nm, "tpavi_%d.%s", s + 1, sub);
    return layer(r, nm, K, C, 1);
}

static void resolve_tpavi(struct avs_c3n_ref *r, int s)
{
    struct avs_c3n_ref_idx *k = &r->k;
    int D = r->cfg.D, Ci = r->cfg.Ci;
    k->align[s] = tpavi_layer(r, s, "align_channel", D, r->cfg.A);
    k->theta[s] = tpavi_layer(r, s, "theta", Ci, D);
    k->phi[s] = tpavi_layer(r, s, "phi", Ci, D);
    k->g[s] = tpavi_layer(r, s, "g", Ci, D);
    k->wz[s] = tpavi_layer(r, s, "W_z.0", D, Ci);
    k->bn[s] = tpavi_layer(r, s, "W_z.1", D, 1);
    k->ln[s] = tpavi_layer(r, s, "norm_layer", D, 1);
    k->rmean[s] = avs_tensor_set_findf(r->bufs, "tpavi_%d.W_z.1.running_mean", s + 1);
    k->rvar[s] = avs_tensor_set_findf(r->bufs, "tpavi_%d.W_z.1.running_var", s + 1);
    AVS_ASSERT(avs_tensor_numel(&r->bufs->t[k->rmean[s]]) == (size_t)D &&
               avs_tensor_numel(&r->bufs->t[k->rvar[s]]) == (size_t)D);
}

static void resolve_stage(struct avs_c3n_ref *r, int s)
{
    struct avs_c3n_ref_idx *k = &r->k;
    int C = r->cfg.C[s], D = r->cfg.D, i = s + 1;
    char nm[64];
    snprintf(nm, sizeof nm, "conv%d.conv", i);
    k->pool[s] = layer(r, nm, D, C, 1);
    for (int a = 0; a < 4; a++) {
        snprintf(nm, sizeof nm, "conv%d.%s", i, aspp_name[a]);
        k->br[s][a] = layer(r, nm, D, C, a ? 3 : 1);
    }
    snprintf(nm, sizeof nm, "conv%d.conv_1x1_output", i);
    k->out[s] = layer(r, nm, D, 5 * D, 1);
    k->align[s] = k->theta[s] = k->phi[s] = k->g[s] = k->wz[s] = k->bn[s] = k->ln[s] = -1;
    k->rmean[s] = k->rvar[s] = -1;
    if (has_tpavi(r, s))
        resolve_tpavi(r, s);
    for (int u = 0; u < 2; u++)
        for (int c = 0; c < 2; c++) {
            snprintf(nm, sizeof nm, "path%d.resConfUnit%d.conv%d", i, u + 1, c + 1);
            k->rcu[s][u][c] = layer(r, nm, D, D, 3);
        }
}

static void resolve(struct avs_c3n_ref *r)
{
    for (int s = 0; s < 4; s++)
        resolve_stage(r, s);
    r->k.oc[0] = layer(r, "output_conv.0", r->cfg.O1, r->cfg.D, 3);
    r->k.oc[1] = layer(r, "output_conv.2", r->cfg.O2, r->cfg.O1, 3);
    r->k.oc[2] = layer(r, "output_conv.4", r->cfg.K, r->cfg.O2, 1);
}

/* ---- geometry ---- */

static struct avs_conv2d geom(int N, int C, int H, int W, int K, int R, int dil)
{
    struct avs_conv2d g;
    avs_conv2d_geom(&g, N, C, H, W, K, R, R, 1, R == 3 ? dil : 0, dil, 1);
    return g;
}

static void plan(struct avs_c3n_ref *r)
{
    const struct avs_c3n_cfg *c = &r->cfg;
    struct avs_c3n_ref_geom *g = &r->g;
    int B = r->B, D = c->D;
    for (int s = 0; s < 4; s++) {
        int H = c->H[s], W = c->W[s];
        g->pool[s] = geom(B, c->C[s], 1, 1, D, 1, 1);
        for (int a = 0; a < 4; a++)
            g->br[s][a] = geom(B, c->C[s], H, W, D, a ? 3 : 1, aspp_dil[a]);
        g->out[s] = geom(B, 5 * D, H, W, D, 1, 1);
        g->tin[s] = geom(B, D, H, W, c->Ci, 1, 1);
        g->tout[s] = geom(B, c->Ci, H, W, D, 1, 1);
        g->rcu[s] = geom(B, D, H, W, D, 3, 1);
    }
    int H2 = 2 * c->H[0], W2 = 2 * c->W[0];
    g->oc[0] = geom(B, D, H2, W2, c->O1, 3, 1);
    g->oc[1] = geom(B, c->O1, 2 * H2, 2 * W2, c->O2, 3, 1);
    g->oc[2] = geom(B, c->O2, 2 * H2, 2 * W2, c->K, 1, 1);
    /* the convs' workspace: the largest any of them needs (the struct holds only geometries) */
    const struct avs_conv2d *all = &g->pool[0];
    size_t n = 1;
    for (size_t i = 0; i < sizeof *g / sizeof *all; i++) {
        size_t w = avs_conv2d_ws(&all[i]);
        n = w > n ? w : n;
    }
    avs_arena_init_lazy(&r->scratch, n);
    r->ws = avs_arena_take(&r->scratch, n);
}

/* ---- init / free ---- */

void avs_c3n_ref_init(struct avs_c3n_ref *r, const struct avs_c3n_cfg *cfg, int n_videos,
                      int ccam, const struct avs_tensor_set *params, struct avs_tensor_set *grads,
                      struct avs_tensor_set *bufs)
{
    AVS_ASSERT(!cfg->avsbench); /* the reference is C3N's head (ASPP), not AVSBench's */
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->N = n_videos;
    r->B = n_videos * cfg->T;
    r->ccam = ccam;
    r->params = params, r->grads = grads, r->bufs = bufs;
    for (int s = 0; s < 3; s++)
        AVS_ASSERT(cfg->H[s] == 2 * cfg->H[s + 1] && cfg->W[s] == 2 * cfg->W[s + 1]);
    AVS_ASSERT(!grads || grads->n == params->n);
    resolve(r);
    plan(r);
    carve_all(r);
}

void avs_c3n_ref_free(struct avs_c3n_ref *r)
{
    avs_arena_free(&r->acts);
    avs_arena_free(&r->dacts);
    avs_arena_free(&r->scratch);
    memset(r, 0, sizeof *r);
}

/* ---- conv with the parameters at index k (weight, bias next) ---- */

static const float *P(const struct avs_c3n_ref *r, int k)
{
    return r->params->t[k].data;
}

/* the gradient of parameter k */
static float *GR(const struct avs_c3n_ref *r, int k)
{
    return r->grads->t[k].data;
}

static void conv_fwd(struct avs_c3n_ref *r, float *out, const float *in, int k,
                     const struct avs_conv2d *g)
{
    avs_ops()->conv2d_fwd(out, in, P(r, k), P(r, k + 1), g, r->ws);
}

/* din (NULL: not wanted) += conv^T dout; the weight and bias gradients += */
static void conv_bwd(struct avs_c3n_ref *r, float *din, const float *dout, const float *in, int k,
                     const struct avs_conv2d *g)
{
    const struct avs_ops *op = avs_ops();
    if (din)
        op->conv2d_bwd_data(din, dout, P(r, k), g, r->ws);
    op->conv2d_bwd_filter(GR(r, k), GR(r, k + 1), dout, in, g, r->ws);
}

/* y = a + b (n floats) and its backward: da += dy, db += dy */
static void add_fwd(float *y, const float *a, const float *b, size_t n)
{
    avs_ops()->copy(y, a, n * sizeof(float));
    avs_ops()->axpy(y, 1.0f, b, n);
}

static void add_bwd(float *da, float *db, const float *dy, size_t n)
{
    avs_ops()->axpy(da, 1.0f, dy, n);
    avs_ops()->axpy(db, 1.0f, dy, n);
}

/* ---- CCAM (C3N Eq. 6-7): on the backbone's stage map x [B,C,HW] with Grad-CAM weights
 * w [B,C], constants of the step (no gradient) ---- */

static void ccam_fwd(struct avs_c3n_ref *r, int s, const float *x, const float *w)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_stage *A = &r->act.st[s];
    int B = r->B, C = r->cfg.C[s], hw = HW(r, s);
    struct avs_bcast per_chan = {B, C, hw, 1, 1, 0}, per_pos = {B, C, hw, 1, 0, 1};
    op->l2norm_rows(A->cn, w, B, C, 1e-12f);
    op->sigmoid_fwd(A->cs, A->cn, (size_t)B * C);
    op->mul_fwd(A->x1, x, A->cs, &per_chan);
    op->chmean_fwd(A->m, A->x1, B, C, hw);
    op->sigmoid_fwd(A->sm, A->m, (size_t)B * hw);
    op->mul_fwd(A->xc, A->x1, A->sm, &per_pos);
}

static void ccam_bwd(struct avs_c3n_ref *r, int s, const float *x, float *dx)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_stage *A = &r->act.st[s], *G = &r->dact.st[s];
    int B = r->B, C = r->cfg.C[s], hw = HW(r, s);
    struct avs_bcast per_chan = {B, C, hw, 1, 1, 0}, per_pos = {B, C, hw, 1, 0, 1};
    op->mul_bwd(G->x1, G->sm, G->xc, A->x1, A->sm, &per_pos);
    op->sigmoid_bwd(G->m, G->sm, A->sm, (size_t)B * hw);
    op->chmean_bwd(G->x1, G->m, B, C, hw);
    op->mul_bwd(dx, NULL, G->x1, x, A->cs, &per_chan);
}

/* ---- ASPP: x [B,C,HW] -> a [B,D,HW] ---- */

static void aspp_fwd(struct avs_c3n_ref *r, int s, const float *x)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_stage *A = &r->act.st[s];
    int B = r->B, C = r->cfg.C[s], D = r->cfg.D, H = r->cfg.H[s], W = r->cfg.W[s];
    op->mean_fwd(A->pool, x, B * C, H * W); /* AdaptiveAvgPool2d((1, 1)) */
    conv_fwd(r, A->ip, A->pool, r->k.pool[s], &r->g.pool[s]);
    op->resize_fwd(A->br[0], A->ip, B * D, 1, 1, H, W, 0);
    for (int a = 0; a < 4; a++)
        conv_fwd(r, A->br[a + 1], x, r->k.br[s][a], &r->g.br[s][a]);
    for (int i = 0; i < 5; i++)
        op->concat_fwd(A->cat, A->br[i], B, D, H * W, 5 * D, i * D);
    conv_fwd(r, A->a, A->cat, r->k.out[s], &r->g.out[s]);
}

/* the gradient of a in dact; dx NULL: not wanted */
static void aspp_bwd(struct avs_c3n_ref *r, int s, const float *x, float *dx)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_stage *A = &r->act.st[s], *G = &r->dact.st[s];
    int B = r->B, C = r->cfg.C[s], D = r->cfg.D, H = r->cfg.H[s], W = r->cfg.W[s];
    conv_bwd(r, G->cat, G->a, A->cat, r->k.out[s], &r->g.out[s]);
    for (int i = 0; i < 5; i++)
        op->concat_bwd(G->br[i], G->cat, B, D, H * W, 5 * D, i * D);
    for (int a = 0; a < 4; a++)
        conv_bwd(r, dx, G->br[a + 1], x, r->k.br[s][a], &r->g.br[s][a]);
    op->resize_bwd(G->ip, G->br[0], B * D, 1, 1, H, W, 0);
    conv_bwd(r, G->pool, G->ip, A->pool, r->k.pool[s], &r->g.pool[s]);
    if (dx)
        op->mean_bwd(dx, G->pool, B * C, H * W);
}

/* ---- TPAVI ("dot"): a [B,D,HW], audio [B,A] -> t [B,D,HW] ---- */

static void tpavi_fwd(struct avs_c3n_ref *r, int s)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_c3n_ref_idx *k = &r->k;
    struct avs_c3n_ref_stage *A = &r->act.st[s];
    int B = r->B, T = r->cfg.T, D = r->cfg.D, Ci = r->cfg.Ci, Ad = r->cfg.A, hw = HW(r, s);
    size_t map = (size_t)B * D * hw;
    /* align_channel: af = audio W^T + b, then audio.repeat(1, 1, 1, H, W) */
    op->gemm(0, 1, B, D, Ad, 1.0f, r->audio, Ad, P(r, k->align[s]), Ad, 0.0f, A->af, D);
    op->bias_fwd(A->af, P(r, k->align[s] + 1), B, D);
    struct avs_bcast rep = {B, D, hw, 1, 1, 0};
    op->zero(A->am, map);
    op->add_fwd(A->am, A->am, A->af, &rep);
    conv_fwd(r, A->th, A->a, k->theta[s], &r->g.tin[s]);
    conv_fwd(r, A->ph, A->am, k->phi[s], &r->g.tin[s]);
    conv_fwd(r, A->g, A->a, k->g[s], &r->g.tin[s]);
    /* y = (f / THW) g with f = theta^T phi over a video's THW positions, associated the other
     * way (exact, and the [THW,THW] matrix f is never made): M = phi g^T = sum_t phi_t g_t^T
     * [Ci,Ci], then per frame y_t = M^T theta_t / (THW) */
    size_t fr = (size_t)Ci * hw;
    float alpha = 1.0f / (float)(T * hw);
    for (int n = 0; n < r->N; n++) {
        float *M = A->M + (size_t)n * Ci * Ci;
        for (int t = 0; t < T; t++) {
            size_t b = (size_t)n * T + t;
            op->gemm(0, 1, Ci, Ci, hw, 1.0f, A->ph + b * fr, hw, A->g + b * fr, hw, t ? 1.0f : 0.0f,
                     M, Ci);
        }
        for (int t = 0; t < T; t++) {
            size_t b = (size_t)n * T + t;
            op->gemm(1, 0, Ci, hw, Ci, alpha, M, Ci, A->th + b * fr, hw, 0.0f, A->y + b * fr, hw);
        }
    }
    conv_fwd(r, A->wz, A->y, k->wz[s], &r->g.tout[s]);
    op->batchnorm_fwd(A->bn, A->bnm, A->bnr, A->wz, P(r, k->bn[s]), P(r, k->bn[s] + 1),
                      r->bufs->t[k->rmean[s]].data, r->bufs->t[k->rvar[s]].data, B, D, hw, 1e-5f,
                      0.1f, r->train);
    if (r->train)
        r->bn_batches[s]++;
    add_fwd(A->z, A->bn, A->a, map);
    op->layernorm_fwd(A->t, A->lnm, A->lnr, A->z, P(r, k->ln[s]), P(r, k->ln[s] + 1), B, D, hw,
                      1e-5f);
}

static void tpavi_bwd(struct avs_c3n_ref *r, int s, float *daudio)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_c3n_ref_idx *k = &r->k;
    struct avs_c3n_ref_stage *A = &r->act.st[s], *G = &r->dact.st[s];
    int B = r->B, T = r->cfg.T, D = r->cfg.D, Ci = r->cfg.Ci, Ad = r->cfg.A, hw = HW(r, s);
    size_t map = (size_t)B * D * hw, fr = (size_t)Ci * hw;
    op->layernorm_bwd(G->z, GR(r, k->ln[s]), GR(r, k->ln[s] + 1), G->t, A->z, A->lnm, A->lnr,
                      P(r, k->ln[s]), B, D, hw);
    add_bwd(G->bn, G->a, G->z, map);
    op->batchnorm_bwd(G->wz, GR(r, k->bn[s]), GR(r, k->bn[s] + 1), G->bn, A->wz, A->bnm, A->bnr,
                      P(r, k->bn[s]), B, D, hw, r->train);
    conv_bwd(r, G->y, G->wz, A->y, k->wz[s], &r->g.tout[s]);
    float alpha = 1.0f / (float)(T * hw);
    for (int n = 0; n < r->N; n++) {
        const float *M = A->M + (size_t)n * Ci * Ci;
        float *dM = G->M + (size_t)n * Ci * Ci;
        for (int t = 0; t < T; t++) { /* y_t = alpha M^T theta_t */
            size_t b = (size_t)n * T + t;
            op->gemm(0, 0, Ci, hw, Ci, alpha, M, Ci, G->y + b * fr, hw, 1.0f, G->th + b * fr, hw);
            op->gemm(0, 1, Ci, Ci, hw, alpha, A->th + b * fr, hw, G->y + b * fr, hw, 1.0f, dM, Ci);
        }
        for (int t = 0; t < T; t++) { /* M = sum_t phi_t g_t^T */
            size_t b = (size_t)n * T + t;
            op->gemm(0, 0, Ci, hw, Ci, 1.0f, dM, Ci, A->g + b * fr, hw, 1.0f, G->ph + b * fr, hw);
            op->gemm(1, 0, Ci, hw, Ci, 1.0f, dM, Ci, A->ph + b * fr, hw, 1.0f, G->g + b * fr, hw);
        }
    }
    conv_bwd(r, G->a, G->th, A->a, k->theta[s], &r->g.tin[s]);
    conv_bwd(r, G->am, G->ph, A->am, k->phi[s], &r->g.tin[s]);
    conv_bwd(r, G->a, G->g, A->a, k->g[s], &r->g.tin[s]);
    struct avs_bcast rep = {B, D, hw, 1, 1, 0};
    op->add_bwd(G->af, G->am, &rep);
    int ka = k->align[s];
    if (daudio)
        op->gemm(0, 0, B, Ad, D, 1.0f, G->af, D, P(r, ka), Ad, 1.0f, daudio, Ad);
    op->gemm(1, 0, D, Ad, B, 1.0f, G->af, D, r->audio, Ad, 1.0f, GR(r, ka), Ad);
    op->bias_bwd(GR(r, ka + 1), G->af, B, D);
}

/* ---- fusion ---- */

/* the stage's output, the skip input of its path: TPAVI's, else ASPP's */
static float *stage_out(struct avs_c3n_ref *r, struct avs_c3n_ref_acts *a, int s)
{
    return has_tpavi(r, s) ? a->st[s].t : a->st[s].a;
}

/* ResidualConvUnit u of path s+1 on x: the official ReLU is in place, so the skip adds
 * relu(x): ro = conv2(relu(conv1(r0))) + r0, r0 = relu(x) */
static void rcu_fwd(struct avs_c3n_ref *r, int s, int u, const float *x)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_stage *A = &r->act.st[s];
    size_t map = (size_t)r->B * r->cfg.D * HW(r, s);
    op->relu_fwd(A->r0[u], x, map);
    conv_fwd(r, A->c1[u], A->r0[u], r->k.rcu[s][u][0], &r->g.rcu[s]);
    op->relu_fwd(A->r1[u], A->c1[u], map);
    conv_fwd(r, A->c2[u], A->r1[u], r->k.rcu[s][u][1], &r->g.rcu[s]);
    add_fwd(A->ro[u], A->c2[u], A->r0[u], map);
}

static void rcu_bwd(struct avs_c3n_ref *r, int s, int u, const float *x, float *dx)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_stage *A = &r->act.st[s], *G = &r->dact.st[s];
    size_t map = (size_t)r->B * r->cfg.D * HW(r, s);
    add_bwd(G->c2[u], G->r0[u], G->ro[u], map);
    conv_bwd(r, G->r1[u], G->c2[u], A->r1[u], r->k.rcu[s][u][1], &r->g.rcu[s]);
    op->relu_bwd(G->c1[u], G->r1[u], A->c1[u], map);
    conv_bwd(r, G->r0[u], G->c1[u], A->r0[u], r->k.rcu[s][u][0], &r->g.rcu[s]);
    op->relu_bwd(dx, G->r0[u], x, map);
}

/* FeatureFusionBlock path s+1: up = up2(RCU2(prev + RCU1(skip))), align_corners=True; path4
 * (s = 3) has no prev: up = up2(RCU2(skip)) */
static void path_fwd(struct avs_c3n_ref *r, int s)
{
    struct avs_c3n_ref_stage *A = &r->act.st[s];
    const float *skip = stage_out(r, &r->act, s), *in2 = skip;
    int D = r->cfg.D, H = r->cfg.H[s], W = r->cfg.W[s];
    if (s < 3) {
        rcu_fwd(r, s, 0, skip);
        add_fwd(A->sum, r->act.st[s + 1].up, A->ro[0], (size_t)r->B * D * H * W);
        in2 = A->sum;
    }
    rcu_fwd(r, s, 1, in2);
    avs_ops()->resize_fwd(A->up, A->ro[1], r->B * D, H, W, 2 * H, 2 * W, 1);
}

static void path_bwd(struct avs_c3n_ref *r, int s)
{
    struct avs_c3n_ref_stage *A = &r->act.st[s], *G = &r->dact.st[s];
    int D = r->cfg.D, H = r->cfg.H[s], W = r->cfg.W[s];
    avs_ops()->resize_bwd(G->ro[1], G->up, r->B * D, H, W, 2 * H, 2 * W, 1);
    float *dskip = stage_out(r, &r->dact, s);
    if (s == 3) {
        rcu_bwd(r, s, 1, stage_out(r, &r->act, s), dskip);
        return;
    }
    rcu_bwd(r, s, 1, A->sum, G->sum);
    add_bwd(r->dact.st[s + 1].up, G->ro[0], G->sum, (size_t)r->B * D * H * W);
    rcu_bwd(r, s, 0, stage_out(r, &r->act, s), dskip);
}

/* ---- output_conv: up (path1) [B,D,2H0,2W0] -> logits [B,K,4H0,4W0] ---- */

static void output_fwd(struct avs_c3n_ref *r)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_acts *A = &r->act;
    int B = r->B, O1 = r->cfg.O1, H2 = 2 * r->cfg.H[0], W2 = 2 * r->cfg.W[0];
    conv_fwd(r, A->h1, A->st[0].up, r->k.oc[0], &r->g.oc[0]);
    op->resize_fwd(A->hu, A->h1, B * O1, H2, W2, 2 * H2, 2 * W2, 0); /* Interpolate(x2) */
    conv_fwd(r, A->h2, A->hu, r->k.oc[1], &r->g.oc[1]);
    op->relu_fwd(A->h3, A->h2, (size_t)B * r->cfg.O2 * 4 * H2 * W2);
    conv_fwd(r, A->logits, A->h3, r->k.oc[2], &r->g.oc[2]);
}

static void output_bwd(struct avs_c3n_ref *r, const float *dlogits)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_ref_acts *A = &r->act, *G = &r->dact;
    int B = r->B, O1 = r->cfg.O1, H2 = 2 * r->cfg.H[0], W2 = 2 * r->cfg.W[0];
    conv_bwd(r, G->h3, dlogits, A->h3, r->k.oc[2], &r->g.oc[2]);
    op->relu_bwd(G->h2, G->h3, A->h2, (size_t)B * r->cfg.O2 * 4 * H2 * W2);
    conv_bwd(r, G->hu, G->h2, A->hu, r->k.oc[1], &r->g.oc[1]);
    op->resize_bwd(G->h1, G->hu, B * O1, H2, W2, 2 * H2, 2 * W2, 0);
    conv_bwd(r, G->st[0].up, G->h1, A->st[0].up, r->k.oc[0], &r->g.oc[0]);
}

/* ---- the model ---- */

void avs_c3n_ref_fwd(struct avs_c3n_ref *r, const float *const x[4], const float *const gradcam[4],
                     const float *audio, int train)
{
    AVS_ASSERT(!r->ccam || gradcam);
    AVS_ASSERT(!r->cfg.tpavi || audio);
    r->train = train;
    r->audio = audio;
    for (int s = 0; s < 4; s++) {
        r->x[s] = x[s];
        r->gradcam[s] = r->ccam ? gradcam[s] : NULL;
        if (r->ccam)
            ccam_fwd(r, s, x[s], gradcam[s]);
        aspp_fwd(r, s, r->ccam ? r->act.st[s].xc : x[s]);
        if (has_tpavi(r, s))
            tpavi_fwd(r, s);
    }
    for (int s = 3; s >= 0; s--)
        path_fwd(r, s);
    output_fwd(r);
}

void avs_c3n_ref_bwd(struct avs_c3n_ref *r, const float *dlogits, float *const dx[4], float *daudio)
{
    AVS_ASSERT(r->grads);
    avs_arena_zero(&r->dacts);
    output_bwd(r, dlogits);
    for (int s = 0; s < 4; s++) {
        path_bwd(r, s);
        if (has_tpavi(r, s))
            tpavi_bwd(r, s, daudio);
        float *dxs = dx ? dx[s] : NULL;
        if (r->ccam) {
            aspp_bwd(r, s, r->act.st[s].xc, dxs ? r->dact.st[s].xc : NULL);
            if (dxs)
                ccam_bwd(r, s, r->x[s], dxs);
        } else
            aspp_bwd(r, s, r->x[s], dxs);
    }
}
