/* model/swin_ws.c: the workspace of Swin passes (swin.h, struct avs_swin_ws): every tensor a
 * forward keeps, the scratch of one stage at a time (sized for stage 1, the largest), the
 * backward's buffers, and the index maps of each stage (window partition with and without
 * the cyclic shift and their inverses, patch merging's gather and its inverse, the relative-
 * position bias lookup) with the shifted-window mask: made on the host once, uploaded.
 * The layout code runs twice: counting, then carving, so sizes and carving cannot disagree.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/swin_internal.h"

void swin_geo(struct swin_geo *g, const struct avs_swin_cfg *c, int N, int H, int W, int s)
{
    memset(g, 0, sizeof *g);
    g->N = N, g->s = s, g->C = avs_swin_dim(c, s);
    g->H = avs_swin_side(H, s), g->W = avs_swin_side(W, s), g->L = g->H * g->W;
    g->M = (size_t)N * g->L, g->nh = c->heads[s], g->hd = g->C / g->nh;
    g->ws = c->window, g->WL = g->ws * g->ws, g->nW = (g->H / g->ws) * (g->W / g->ws);
    /* official: a stage no larger than one window is not shifted */
    g->shift = (g->H <= g->ws || g->W <= g->ws) ? 0 : g->ws / 2;
}

struct carver {
    struct avs_arena *a;
    size_t used;
};

static float *take(struct carver *c, size_t n)
{
    c->used += avs_arena_round(n);
    return c->a ? avs_arena_take(c->a, n) : NULL;
}

static void blk_carve(struct swin_blk *b, struct carver *k, const struct swin_geo *g, int train)
{
    size_t M = g->M, MC = M * g->C;
    b->xin = take(k, MC), b->mean1 = take(k, M), b->rstd1 = take(k, M);
    b->qkv = take(k, 3 * MC), b->P = take(k, M * g->nh * g->WL);
    b->xmid = take(k, MC), b->mean2 = take(k, M), b->rstd2 = take(k, M);
    b->h1 = take(k, 4 * MC);
    b->yw = b->ow = b->y2 = b->h3 = NULL;
    if (train)
        b->yw = take(k, MC), b->ow = take(k, MC), b->y2 = take(k, MC), b->h3 = take(k, 4 * MC);
}

static void maps_carve(struct swin_maps *mp, struct carver *k, const struct swin_geo *g)
{
    for (int i = 0; i < 2; i++) {
        mp->part[i] = (int *)take(k, g->M);
        mp->rev[i] = (int *)take(k, g->M);
    }
    mp->merge = mp->merge_inv = NULL;
    if (g->s < 3)
        mp->merge = (int *)take(k, g->M), mp->merge_inv = (int *)take(k, g->M);
    mp->rpb = (int *)take(k, (size_t)g->nh * g->WL * g->WL);
    mp->mask = g->shift ? take(k, (size_t)g->nW * g->nh * g->WL * g->WL) : NULL;
}

static void scratch_carve(struct avs_swin_keep *K, struct carver *k, const struct avs_swin *m,
                          const struct avs_swin_ws *w)
{
    struct swin_geo g;
    swin_geo(&g, &m->cfg, w->N, w->H, w->W, 0);
    /* stage 1 holds the most tokens x channels (and scores: tokens / 4, heads x 2 per stage);
     * the bias of one window grows with the heads: the largest over the stages */
    size_t MC = g.M * g.C, MP = g.M * g.nh * g.WL, B = 0;
    for (int s = 0; s < 4; s++) {
        size_t b = (size_t)m->cfg.heads[s] * g.WL * g.WL;
        B = b > B ? b : B;
    }
    struct avs_conv2d pe;
    avs_conv2d_geom(&pe, w->N, 3, w->H, w->W, g.C, 4, 4, 4, 0, 1, 1);
    K->conv_cap = avs_conv2d_ws(&pe) + MC; /* workspace, then the conv output */
    K->conv = take(k, K->conv_cap);
    K->yw = take(k, MC), K->ow = take(k, MC), K->t1 = take(k, MC), K->t2 = take(k, MC);
    K->y2 = take(k, MC), K->h3 = take(k, 4 * MC);
    K->bias = take(k, B), K->bm = take(k, (size_t)g.nh * g.WL * g.WL * g.nW);
    if (w->mode == AVS_SWIN_FWD)
        return;
    int C4 = avs_swin_dim(&m->cfg, 3), cls = m->cfg.classes ? m->cfg.classes : 1;
    K->dx = take(k, MC), K->da = take(k, MC), K->db = take(k, MC), K->dqkv = take(k, 3 * MC);
    K->dP = take(k, MP), K->dS = take(k, MP), K->dh1 = take(k, 4 * MC), K->dh3 = take(k, 4 * MC);
    K->dl = take(k, (size_t)w->N * cls), K->dmt = take(k, (size_t)w->N * C4);
    K->dbias = K->dbm = NULL;
    if (w->mode == AVS_SWIN_TRAIN)
        K->dbias = take(k, B), K->dbm = take(k, (size_t)g.nh * g.WL * g.WL * g.nW);
}

static void layout(struct avs_swin_keep *K, struct carver *k, const struct avs_swin *m,
                   const struct avs_swin_ws *w)
{
    struct swin_geo g;
    for (int s = 0; s < 4; s++) {
        swin_geo(&g, &m->cfg, w->N, w->H, w->W, s);
        struct swin_stage *st = &K->st[s];
        st->tok = take(k, g.M * g.C);
        st->mg = st->mmean = st->mrstd = NULL;
        if (s < 3)
            st->mg = take(k, g.M * g.C), st->mmean = take(k, g.M / 4), st->mrstd = take(k, g.M / 4);
        st->mgn = s < 3 && w->mode == AVS_SWIN_TRAIN ? take(k, g.M * g.C) : NULL;
        st->nblk = w->mode != AVS_SWIN_FWD ? m->cfg.depths[s] : 1;
        for (int i = 0; i < st->nblk; i++)
            blk_carve(&st->blk[i], k, &g, w->mode == AVS_SWIN_TRAIN);
        maps_carve(&st->map, k, &g);
        if (s == 0)
            K->pe_pre = take(k, g.M * g.C), K->pe_mean = take(k, g.M), K->pe_rstd = take(k, g.M);
        if (s == 3) {
            K->fmean = take(k, g.M), K->frstd = take(k, g.M), K->fout = take(k, g.M * g.C);
            K->mt = take(k, (size_t)w->N * g.C);
        }
    }
    scratch_carve(K, k, m, w);
}

/* ---- index maps (host) ---- */

/* Window order row r -> token row, for a shift (torch.roll by -shift: rolled[h] = x[h+shift]). */
static void part_map(int *part, int *rev, const struct swin_geo *g, int shift)
{
    int ws = g->ws, nw = g->W / ws;
    size_t r = 0;
    for (int n = 0; n < g->N; n++)
        for (int w = 0; w < g->nW; w++)
            for (int i = 0; i < ws; i++)
                for (int j = 0; j < ws; j++, r++) {
                    int h = ((w / nw) * ws + i + shift) % g->H, x = ((w % nw) * ws + j + shift) % g->W;
                    part[r] = (int)((size_t)n * g->L + (size_t)h * g->W + x);
                    rev[part[r]] = (int)r;
                }
}

/* Merged row (n, i, j, q) -> token (n, 2i+di, 2j+dj), q: (0,0), (1,0), (0,1), (1,1) as (di,dj). */
static void merge_map(int *mg, int *inv, const struct swin_geo *g)
{
    int H2 = g->H / 2, W2 = g->W / 2;
    size_t r = 0;
    for (int n = 0; n < g->N; n++)
        for (int i = 0; i < H2; i++)
            for (int j = 0; j < W2; j++)
                for (int q = 0; q < 4; q++, r++) {
                    int di = q & 1, dj = q >> 1;
                    mg[r] = (int)((size_t)n * g->L + (size_t)(2 * i + di) * g->W + 2 * j + dj);
                    inv[mg[r]] = (int)r;
                }
}

/* bias[h][a][b] = table[rpi(a,b)][h] as a gather of single floats: table row rpi*nh + h. */
static void rpb_map(int *idx, const struct swin_geo *g)
{
    int ws = g->ws, WL = g->WL;
    for (int h = 0; h < g->nh; h++)
        for (int a = 0; a < WL; a++)
            for (int b = 0; b < WL; b++) {
                int dh = a / ws - b / ws + ws - 1, dw = a % ws - b % ws + ws - 1;
                idx[((size_t)h * WL + a) * WL + b] = (dh * (2 * ws - 1) + dw) * g->nh + h;
            }
}

/* Region of a rolled coordinate: [0, n-ws) 0, [n-ws, n-shift) 1, [n-shift, n) 2. */
static int region(int x, int n, int ws, int shift)
{
    return x < n - ws ? 0 : x < n - shift ? 1 : 2;
}

/* mask[w][h][a][b] = 0 when tokens a and b of window w lie in the same region, else -100. */
static void mask_map(float *mask, const struct swin_geo *g)
{
    int ws = g->ws, WL = g->WL, nw = g->W / ws;
    for (int w = 0; w < g->nW; w++)
        for (int a = 0; a < WL; a++)
            for (int b = 0; b < WL; b++) {
                int ra = 3 * region((w / nw) * ws + a / ws, g->H, ws, g->shift) +
                         region((w % nw) * ws + a % ws, g->W, ws, g->shift);
                int rb = 3 * region((w / nw) * ws + b / ws, g->H, ws, g->shift) +
                         region((w % nw) * ws + b % ws, g->W, ws, g->shift);
                for (int h = 0; h < g->nh; h++)
                    mask[(((size_t)w * g->nh + h) * WL + a) * WL + b] = ra == rb ? 0.0f : AVS_SWIN_MASK;
            }
}

static void up_ints(int *dev, const int *host, size_t n)
{
    avs_ops()->upload(dev, host, n * sizeof(int));
}

static void maps_fill(const struct swin_maps *mp, const struct swin_geo *g)
{
    size_t B = (size_t)g->nh * g->WL * g->WL, n = g->M > B * g->nW ? g->M : B * g->nW;
    int *a = avs_calloc(n, sizeof(int)), *b = avs_calloc(n, sizeof(int));
    for (int i = 0; i < 2; i++) {
        part_map(a, b, g, i ? g->shift : 0);
        up_ints(mp->part[i], a, g->M), up_ints(mp->rev[i], b, g->M);
    }
    if (mp->merge) {
        merge_map(a, b, g);
        up_ints(mp->merge, a, g->M), up_ints(mp->merge_inv, b, g->M);
    }
    rpb_map(a, g);
    up_ints(mp->rpb, a, B);
    if (mp->mask) {
        float *f = (float *)a;
        mask_map(f, g);
        avs_ops()->upload(mp->mask, f, B * g->nW * sizeof(float));
    }
    free(a), free(b);
}

int avs_swin_ws_init(struct avs_swin_ws *w, const struct avs_swin *m, int N, int H, int W,
                     enum avs_swin_mode mode, struct avs_err *err)
{
    memset(w, 0, sizeof *w);
    if (avs_swin_check_size(&m->cfg, H, W, err))
        return -1;
    AVS_ASSERT(N > 0 && (mode == AVS_SWIN_FWD || m->cfg.classes));
    w->N = N, w->H = H, w->W = W, w->mode = mode;
    w->k = avs_calloc(1, sizeof *w->k);
    for (int s = 0; s < 4; s++)
        w->k->st[s].blk = avs_calloc((size_t)m->cfg.depths[s], sizeof(struct swin_blk));
    struct carver count = {0};
    layout(w->k, &count, m, w);
    avs_arena_init_lazy(&w->keep, count.used);
    struct carver carve = {.a = &w->keep};
    layout(w->k, &carve, m, w);
    for (int s = 0; s < 4; s++) {
        struct swin_geo g;
        swin_geo(&g, &m->cfg, N, H, W, s);
        maps_fill(&w->k->st[s].map, &g);
    }
    if (mode != AVS_SWIN_FWD)
        w->onehot = avs_calloc((size_t)N * m->cfg.classes, sizeof(float));
    return 0;
}

void avs_swin_ws_free(struct avs_swin_ws *w)
{
    if (!w)
        return;
    if (w->k)
        for (int s = 0; s < 4; s++)
            free(w->k->st[s].blk);
    free(w->k);
    avs_arena_free(&w->keep);
    free(w->onehot);
    memset(w, 0, sizeof *w);
}

size_t avs_swin_ws_floats(const struct avs_swin_ws *w)
{
    return w->keep.cap;
}
