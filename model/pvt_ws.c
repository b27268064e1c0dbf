/* model/pvt_ws.c: the workspace of PVTv2 passes (pvt.h, struct avs_pvt_ws): every tensor a
 * forward keeps and every scratch buffer a pass uses, carved once from two arenas of the
 * active backend for the largest batch. The layout code runs twice: once only counting (the
 * arenas' sizes), once carving, so the sizes and the carving cannot disagree.
 *
 *   keep     per stage: patch-embedding tokens + LN statistics, the last block's output +
 *            the stage norm's statistics, the blocks (depth of them where a backward walks
 *            them, else one reused); the head's mean tokens
 *   scratch  the backward's buffers (dtok x2, dx, dl, dmt), then each stage's scratch
 *            (t1, t2, att, conv, hbuf, dws, dmap) from one mark: one stage at a time
 */
#include <stdlib.h>
#include <string.h>

#include "model/pvt_internal.h"

void pvt_geo(struct pvt_geo *g, const struct avs_pvt_cfg *c, int N, int H, int W, int s)
{
    memset(g, 0, sizeof *g);
    int ks = s ? 3 : 7;
    g->N = N, g->s = s, g->C = c->dims[s], g->Cin = s ? c->dims[s - 1] : 3;
    g->Hin = s ? avs_pvt_side(H, s - 1) : H, g->Win = s ? avs_pvt_side(W, s - 1) : W;
    avs_conv2d_geom(&g->pe, N, g->Cin, g->Hin, g->Win, g->C, ks, ks, s ? 2 : 4, ks / 2, 1, 1);
    g->H = g->pe.P, g->W = g->pe.Q, g->L = g->H * g->W, g->M = (size_t)N * g->L;
    g->hid = g->C * c->mlp[s], g->nh = c->heads[s], g->sr = c->sr[s], g->Lk = g->L;
    if (g->sr > 1) {
        avs_conv2d_geom(&g->srg, N, g->C, g->H, g->W, g->C, g->sr, g->sr, g->sr, 0, 1, 1);
        g->Lk = g->srg.P * g->srg.Q;
    }
}

/* Takes from an arena, or (a == NULL) only counts what it would take. */
struct carver {
    struct avs_arena *a;
    size_t used, peak;
};

static float *take(struct carver *c, size_t n)
{
    c->used += avs_arena_round(n);
    if (c->used > c->peak)
        c->peak = c->used;
    return c->a ? avs_arena_take(c->a, n) : NULL;
}

static void rewind_to(struct carver *c, size_t mark)
{
    c->used = mark;
    if (c->a)
        avs_arena_rewind(c->a, mark);
}

static void blk_carve(struct pvt_blk *b, struct carver *k, const struct pvt_geo *g)
{
    size_t M = g->M, MC = M * g->C, K = (size_t)g->N * g->Lk, MH = M * g->hid;
    memset(b, 0, sizeof *b);
    b->xin = take(k, MC), b->y1 = take(k, MC), b->mean1 = take(k, M), b->rstd1 = take(k, M);
    b->q = take(k, MC);
    if (g->sr > 1) {
        b->srin = take(k, MC), b->srpre = take(k, K * g->C), b->srmean = take(k, K);
        b->srrstd = take(k, K), b->srtok = take(k, K * g->C);
    }
    b->kv = take(k, K * 2 * g->C);
    b->P = take(k, (size_t)g->N * g->nh * g->L * g->Lk);
    b->o = take(k, MC), b->xmid = take(k, MC), b->y2 = take(k, MC);
    b->mean2 = take(k, M), b->rstd2 = take(k, M);
    b->h1 = take(k, MH), b->h2 = take(k, MH), b->h3 = take(k, MH);
}

static void scratch_carve(struct pvt_scratch *w, struct carver *c, const struct pvt_geo *g,
                          const struct pvt_geo *prev, int backward)
{
    size_t MC = g->M * g->C, cw = avs_conv2d_ws(&g->pe);
    if (g->sr > 1 && avs_conv2d_ws(&g->srg) > cw)
        cw = avs_conv2d_ws(&g->srg);
    w->t1 = take(c, MC), w->t2 = take(c, MC);
    w->att = take(c, (size_t)g->L * g->Lk);
    w->conv = take(c, cw), w->conv_cap = cw;
    w->hbuf = take(c, 2 * g->M * g->hid);
    w->dws = take(c, avs_dwconv3_ws(g->N, g->H, g->hid));
    w->dmap = backward && prev ? take(c, prev->M * prev->C) : NULL;
}

/* Blocks a stage keeps one by one: those a backward of the mode walks. */
static int kept_blocks(const struct avs_pvt_cfg *c, int s, enum avs_pvt_mode mode)
{
    return mode == AVS_PVT_TRAIN || (mode == AVS_PVT_GRADCAM && s > 0) ? c->depths[s] : 1;
}

static void layout(struct avs_pvt_keep *k, const struct avs_pvt *m, int N, int H, int W,
                   enum avs_pvt_mode mode, struct carver *kc, struct carver *sc)
{
    const struct avs_pvt_cfg *c = &m->cfg;
    struct pvt_geo g[4];
    size_t maxmc = 0;
    int bwd = mode != AVS_PVT_FWD;
    for (int s = 0; s < 4; s++) {
        pvt_geo(&g[s], c, N, H, W, s);
        maxmc = g[s].M * g[s].C > maxmc ? g[s].M * g[s].C : maxmc;
    }
    for (int s = 0; s < 4; s++) {
        struct pvt_stage *st = &k->st[s];
        size_t M = g[s].M, MC = M * g[s].C;
        st->pe_pre = take(kc, MC), st->last = take(kc, MC);
        st->pe_mean = take(kc, M), st->pe_rstd = take(kc, M);
        st->n_mean = take(kc, M), st->n_rstd = take(kc, M);
        for (int b = 0; b < st->nblk; b++)
            blk_carve(&st->blk[b], kc, &g[s]);
    }
    k->mt = c->classes ? take(kc, (size_t)N * c->dims[3]) : NULL;
    memset(k->dtok, 0, sizeof k->dtok);
    k->dx = k->dl = k->dmt = NULL;
    if (bwd) {
        k->dtok[0] = take(sc, maxmc), k->dtok[1] = take(sc, maxmc), k->dx = take(sc, maxmc);
        if (c->classes)
            k->dl = take(sc, (size_t)N * c->classes), k->dmt = take(sc, (size_t)N * c->dims[3]);
    }
    size_t mark = sc->used;
    for (int s = 0; s < 4; s++) {
        rewind_to(sc, mark);
        scratch_carve(&k->st[s].w, sc, &g[s], s ? &g[s - 1] : NULL, bwd);
    }
}

void avs_pvt_ws_init(struct avs_pvt_ws *w, const struct avs_pvt *m, int N, int H, int W,
                     enum avs_pvt_mode mode)
{
    AVS_ASSERT(N >= 1 && H >= 32 && W >= 32 && H % 32 == 0 && W % 32 == 0);
    memset(w, 0, sizeof *w);
    w->N = N, w->H = H, w->W = W, w->mode = mode;
    struct avs_pvt_keep *k = w->k = avs_calloc(1, sizeof *k);
    for (int s = 0; s < 4; s++) {
        k->st[s].nblk = kept_blocks(&m->cfg, s, mode);
        k->st[s].blk = avs_calloc((size_t)k->st[s].nblk, sizeof *k->st[s].blk);
    }
    struct carver kc = {0}, sc = {0};
    layout(k, m, N, H, W, mode, &kc, &sc);
    /* not zeroed: every pass writes what it reads (untouched pages cost nothing on the CPU) */
    avs_arena_init_lazy(&w->keep, kc.peak);
    avs_arena_init_lazy(&w->scratch, sc.peak);
    struct carver kc2 = {&w->keep, 0, 0}, sc2 = {&w->scratch, 0, 0};
    layout(k, m, N, H, W, mode, &kc2, &sc2);
    AVS_ASSERT(kc2.peak == kc.peak && sc2.peak == sc.peak);
    if (mode != AVS_PVT_FWD && m->cfg.classes)
        w->onehot = avs_calloc((size_t)N * m->cfg.classes, sizeof(float));
}

void avs_pvt_ws_free(struct avs_pvt_ws *w)
{
    if (!w)
        return;
    if (w->k)
        for (int s = 0; s < 4; s++)
            free(w->k->st[s].blk);
    free(w->k);
    free(w->onehot);
    if (w->keep.base)
        avs_arena_free(&w->keep);
    if (w->scratch.base)
        avs_arena_free(&w->scratch);
    memset(w, 0, sizeof *w);
}

size_t avs_pvt_ws_floats(const struct avs_pvt_ws *w)
{
    return w->keep.cap + w->scratch.cap;
}
