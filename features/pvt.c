/* features/pvt.c: PVTv2 forward (pvt.h; ref: pvt_v2.py). Tokens are [N,L,C] row-major
 * (L = H*W of the stage grid), maps NCHW; every step is a backend primitive (model/ops.h). */
#include "features/pvt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/nn.h"
#include "model/ops.h"

#define EPS_BLOCK 1e-6f /* blocks and stage norms: partial(nn.LayerNorm, eps=1e-6) */
#define EPS_EMBED 1e-5f /* patch-embedding norm and attention's sr norm: nn.LayerNorm default */

int avs_pvt_cfg_variant(struct avs_pvt_cfg *c, const char *name)
{
    static const int depths[6][4] = {{2, 2, 2, 2}, {2, 2, 2, 2}, {3, 4, 6, 3},
                                     {3, 4, 18, 3}, {3, 8, 27, 3}, {3, 6, 40, 3}};
    if (!strncmp(name, "pvt_v2_", 7))
        name += 7;
    if (name[0] != 'b' || name[1] < '0' || name[1] > '5' || name[2])
        return -1;
    int v = name[1] - '0';
    static const int d0[4] = {32, 64, 160, 256}, d1[4] = {64, 128, 320, 512};
    for (int s = 0; s < 4; s++) {
        c->dims[s] = v == 0 ? d0[s] : d1[s];
        c->heads[s] = (int[]){1, 2, 5, 8}[s];
        c->mlp[s] = v == 5 ? 4 : (int[]){8, 8, 4, 4}[s];
        c->depths[s] = depths[v][s];
        c->sr[s] = (int[]){8, 4, 2, 1}[s];
    }
    c->classes = 1000;
    return 0;
}

int avs_pvt_side(int side, int s)
{
    int x = (side + 2 * 3 - 7) / 4 + 1; /* 7x7 stride 4 pad 3 */
    for (int i = 1; i <= s; i++)
        x = (x + 2 - 3) / 2 + 1; /* 3x3 stride 2 pad 1 */
    return x;
}

/* ---- size table ---- */

static void add(struct avs_pvt *m, int *cap, int ndim, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add(struct avs_pvt *m, int *cap, int ndim, const int *shape, const char *fmt, ...)
{
    if (m->np == *cap)
        m->spec = avs_realloc(m->spec, (size_t)(*cap = *cap ? 2 * *cap : 64) * sizeof *m->spec);
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct avs_tensor_spec *t = &m->spec[m->np++];
    t->name = avs_strdup(buf);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
}

#define ADD(nd, ...) add(m, &cap, nd, (int[]){__VA_ARGS__}, "%s", nm)

static void build_spec(struct avs_pvt *m)
{
    const struct avs_pvt_cfg *c = &m->cfg;
    int cap = 0;
    char nm[128];
    for (int s = 0; s < 4; s++) {
        int C = c->dims[s], Ci = s ? c->dims[s - 1] : 3, k = s ? 3 : 7, hid = C * c->mlp[s];
        snprintf(nm, sizeof nm, "patch_embed%d.proj.weight", s + 1), ADD(4, C, Ci, k, k);
        snprintf(nm, sizeof nm, "patch_embed%d.proj.bias", s + 1), ADD(1, C);
        snprintf(nm, sizeof nm, "patch_embed%d.norm.weight", s + 1), ADD(1, C);
        snprintf(nm, sizeof nm, "patch_embed%d.norm.bias", s + 1), ADD(1, C);
        for (int i = 0; i < c->depths[s]; i++) {
            char p[48];
            snprintf(p, sizeof p, "block%d.%d.", s + 1, i);
            snprintf(nm, sizeof nm, "%snorm1.weight", p), ADD(1, C);
            snprintf(nm, sizeof nm, "%snorm1.bias", p), ADD(1, C);
            snprintf(nm, sizeof nm, "%sattn.q.weight", p), ADD(2, C, C);
            snprintf(nm, sizeof nm, "%sattn.q.bias", p), ADD(1, C);
            snprintf(nm, sizeof nm, "%sattn.kv.weight", p), ADD(2, 2 * C, C);
            snprintf(nm, sizeof nm, "%sattn.kv.bias", p), ADD(1, 2 * C);
            snprintf(nm, sizeof nm, "%sattn.proj.weight", p), ADD(2, C, C);
            snprintf(nm, sizeof nm, "%sattn.proj.bias", p), ADD(1, C);
            if (c->sr[s] > 1) {
                snprintf(nm, sizeof nm, "%sattn.sr.weight", p), ADD(4, C, C, c->sr[s], c->sr[s]);
                snprintf(nm, sizeof nm, "%sattn.sr.bias", p), ADD(1, C);
                snprintf(nm, sizeof nm, "%sattn.norm.weight", p), ADD(1, C);
                snprintf(nm, sizeof nm, "%sattn.norm.bias", p), ADD(1, C);
            }
            snprintf(nm, sizeof nm, "%snorm2.weight", p), ADD(1, C);
            snprintf(nm, sizeof nm, "%snorm2.bias", p), ADD(1, C);
            snprintf(nm, sizeof nm, "%smlp.fc1.weight", p), ADD(2, hid, C);
            snprintf(nm, sizeof nm, "%smlp.fc1.bias", p), ADD(1, hid);
            snprintf(nm, sizeof nm, "%smlp.dwconv.dwconv.weight", p), ADD(4, hid, 1, 3, 3);
            snprintf(nm, sizeof nm, "%smlp.dwconv.dwconv.bias", p), ADD(1, hid);
            snprintf(nm, sizeof nm, "%smlp.fc2.weight", p), ADD(2, C, hid);
            snprintf(nm, sizeof nm, "%smlp.fc2.bias", p), ADD(1, C);
        }
        snprintf(nm, sizeof nm, "norm%d.weight", s + 1), ADD(1, C);
        snprintf(nm, sizeof nm, "norm%d.bias", s + 1), ADD(1, C);
    }
    if (c->classes) {
        snprintf(nm, sizeof nm, "head.weight"), ADD(2, c->classes, c->dims[3]);
        snprintf(nm, sizeof nm, "head.bias"), ADD(1, c->classes);
    }
}

static const struct avs_st_tensor *find_any(const struct avs_st_file *f, const char *name)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    if (!t) {
        char alt[160];
        snprintf(alt, sizeof alt, "module.%s", name);
        t = avs_st_find(f, alt);
    }
    return t;
}

void avs_pvt_free(struct avs_pvt *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    for (int i = 0; i < m->np; i++)
        free((char *)m->spec[i].name);
    avs_freep(&m->spec);
    m->np = 0;
}

int avs_pvt_load(struct avs_pvt *m, const struct avs_pvt_cfg *cfg, const char *path,
                 struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    struct avs_st_file *f = NULL;
    if (avs_st_open(path, &f, err))
        return -1;
    const struct avs_st_tensor *h = find_any(f, "head.weight");
    m->cfg.classes = h && h->ndim == 2 ? (int)h->shape[0] : 0;
    build_spec(m);
    avs_tensor_set_init(&m->params, m->spec, m->np);
    int rc = -1, used = 0;
    for (int i = 0; i < m->np; i++) {
        const struct avs_st_tensor *t = find_any(f, m->spec[i].name);
        char a[64], b[64];
        int sh[AVS_ST_MAXDIM];
        if (!t) {
            avs_err_set(err, "%s: missing tensor \"%s\" (is the checkpoint the variant asked "
                        "for? dims %d,%d,%d,%d depths %d,%d,%d,%d)", path, m->spec[i].name,
                        cfg->dims[0], cfg->dims[1], cfg->dims[2], cfg->dims[3], cfg->depths[0],
                        cfg->depths[1], cfg->depths[2], cfg->depths[3]);
            goto out;
        }
        for (int d = 0; d < t->ndim && d < AVS_ST_MAXDIM; d++)
            sh[d] = (int)t->shape[d];
        if (!avs_tensor_same_shape(t->ndim, sh, m->spec[i].ndim, m->spec[i].shape)) {
            avs_err_set(err, "%s: tensor \"%s\" has shape %s, expected %s", path, m->spec[i].name,
                        avs_tensor_shape_str(t->ndim, sh, a, sizeof a),
                        avs_tensor_shape_str(m->spec[i].ndim, m->spec[i].shape, b, sizeof b));
            goto out;
        }
        if (avs_st_read_f32(t, m->params.t[i].data, t->numel, err)) {
            avs_err_wrap(err, "%s", path);
            goto out;
        }
        used++;
    }
    if (used != f->n) {
        for (int i = 0; i < f->n; i++) {
            const char *n = f->t[i].name;
            if (!strncmp(n, "module.", 7))
                n += 7;
            if (avs_tensor_set_find(&m->params, n) < 0) {
                avs_err_set(err, "%s: unknown tensor \"%s\" (not part of this PVTv2 variant)", path,
                            f->t[i].name);
                goto out;
            }
        }
    }
    rc = 0;
out:
    avs_st_close(&f);
    if (rc)
        avs_pvt_free(m);
    return rc;
}

/* ---- forward ---- */

/* [N,C,L] <-> [N,L,C] */
static void map2tok(float *t, const float *x, int N, int C, int L)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int l = 0; l < L; l++)
                t[((size_t)n * L + l) * C + c] = x[((size_t)n * C + c) * L + l];
}

static void tok2map(float *x, const float *t, int N, int C, int L)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int l = 0; l < L; l++)
            for (int c = 0; c < C; c++)
                x[((size_t)n * C + c) * L + l] = t[((size_t)n * L + l) * C + c];
}

struct stage_ws {
    float *y, *q, *kv, *srmap, *srtok, *att, *p, *o, *h1, *h2, *mean, *rstd, *conv;
};

static const float *prm(const struct avs_pvt *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const float *prm(const struct avs_pvt *m, const char *fmt, ...)
{
    char nm[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nm, sizeof nm, fmt, ap);
    va_end(ap);
    int i = avs_tensor_set_find(&m->params, nm);
    AVS_ASSERT(i >= 0);
    return m->params.t[i].data;
}

/* parameter "block<s+1>.<i>.<leaf>" */
#define BP(leaf) prm(m, "block%d.%d.%s", s + 1, i, leaf)

/* x [N,L,C] += attention(norm1(x)) */
static void attention(const struct avs_pvt *m, int s, int i, float *x, int N, int H, int W,
                      struct stage_ws *w)
{
    const struct avs_ops *op = avs_ops();
    int C = m->cfg.dims[s], L = H * W, sr = m->cfg.sr[s], nh = m->cfg.heads[s], hd = C / nh;
    int M = N * L;
    op->layernorm_fwd(w->y, w->mean, w->rstd, x, BP("norm1.weight"),
                      BP("norm1.bias"), M, C, 1, EPS_BLOCK);
    avs_linear_fwd(w->q, w->y, BP("attn.q.weight"), BP("attn.q.bias"),
                   M, C, C);
    const float *kvin = w->y;
    int Lk = L;
    if (sr > 1) {
        struct avs_conv2d g;
        avs_conv2d_geom(&g, N, C, H, W, C, sr, sr, sr, 0, 1, 1);
        tok2map(w->o, w->y, N, C, L); /* o is free until the attention output */
        op->conv2d_fwd(w->srmap, w->o, BP("attn.sr.weight"),
                       BP("attn.sr.bias"), &g, w->conv);
        Lk = g.P * g.Q;
        map2tok(w->srtok, w->srmap, N, C, Lk);
        op->layernorm_fwd(w->srtok, w->mean, w->rstd, w->srtok, BP("attn.norm.weight"),
                          BP("attn.norm.bias"), N * Lk, C, 1, EPS_EMBED);
        kvin = w->srtok;
    }
    avs_linear_fwd(w->kv, kvin, BP("attn.kv.weight"),
                   BP("attn.kv.bias"), N * Lk, C, 2 * C);
    float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            const float *q = w->q + (size_t)n * L * C + h * hd;
            const float *k = w->kv + (size_t)n * Lk * 2 * C + h * hd, *v = k + C;
            op->gemm(0, 1, L, Lk, hd, scale, q, C, k, 2 * C, 0.0f, w->att, Lk);
            op->softmax_fwd(w->p, w->att, L, Lk);
            op->gemm(0, 0, L, hd, Lk, 1.0f, w->p, Lk, v, 2 * C, 0.0f, w->o + (size_t)n * L * C + h * hd, C);
        }
    avs_linear_fwd(w->y, w->o, BP("attn.proj.weight"),
                   BP("attn.proj.bias"), M, C, C);
    op->axpy(x, 1.0f, w->y, (size_t)M * C);
}

/* Depthwise 3x3 conv, stride 1, padding 1, on tokens: y, x [N,H,W,C] (channels innermost, so
 * the token layout needs no transpose and the loop runs along contiguous channels); w [C,1,3,3],
 * b [C]. Same sum as nn.Conv2d(C, C, 3, 1, 1, groups=C) on the NCHW view (order: bias, then
 * taps row by row). */
static void dwconv3_tokens(float *y, const float *x, const float *w, const float *b, int N, int H,
                           int W, int C)
{
    float *wt = avs_malloc((size_t)9 * C * sizeof(float)); /* [9][C]: contiguous per tap */
    for (int c = 0; c < C; c++)
        for (int t = 0; t < 9; t++)
            wt[(size_t)t * C + c] = w[c * 9 + t];
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *restrict o = y + (((size_t)n * H + i) * W + j) * C;
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
                        for (int c = 0; c < C; c++)
                            o[c] += wk[c] * p[c];
                    }
                }
            }
    free(wt);
}

/* x [N,L,C] += fc2(gelu(dwconv(fc1(norm2(x))))) */
static void mlp(const struct avs_pvt *m, int s, int i, float *x, int N, int H, int W,
                struct stage_ws *w)
{
    const struct avs_ops *op = avs_ops();
    int C = m->cfg.dims[s], L = H * W, hid = C * m->cfg.mlp[s], M = N * L;
    op->layernorm_fwd(w->y, w->mean, w->rstd, x, BP("norm2.weight"),
                      BP("norm2.bias"), M, C, 1, EPS_BLOCK);
    avs_linear_fwd(w->h1, w->y, BP("mlp.fc1.weight"), BP("mlp.fc1.bias"),
                   M, C, hid);
    dwconv3_tokens(w->h2, w->h1, BP("mlp.dwconv.dwconv.weight"), BP("mlp.dwconv.dwconv.bias"), N,
                   H, W, hid);
    op->gelu_fwd(w->h2, w->h2, (size_t)M * hid);
    avs_linear_fwd(w->y, w->h2, BP("mlp.fc2.weight"), BP("mlp.fc2.bias"),
                   M, hid, C);
    op->axpy(x, 1.0f, w->y, (size_t)M * C);
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

void avs_pvt_fwd(const struct avs_pvt *m, float *const stage[4], float *logits, const float *image,
                 int N, int H, int W)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_pvt_cfg *c = &m->cfg;
    const float *in = image;
    int Ci = 3, h = H, wd = W;
    for (int s = 0; s < 4; s++) {
        int C = c->dims[s], k = s ? 3 : 7, st = s ? 2 : 4, hid = C * c->mlp[s], sr = c->sr[s];
        struct avs_conv2d pe;
        avs_conv2d_geom(&pe, N, Ci, h, wd, C, k, k, st, k / 2, 1, 1);
        int Hs = pe.P, Ws = pe.Q, L = Hs * Ws, Lk = sr > 1 ? (Hs / sr) * (Ws / sr) : L;
        size_t NLC = (size_t)N * L * C;
        struct avs_conv2d g_sr;
        size_t cw = max3(avs_conv2d_ws(&pe), 16, 16);
        if (sr > 1) {
            avs_conv2d_geom(&g_sr, N, C, Hs, Ws, C, sr, sr, sr, 0, 1, 1);
            size_t c2 = avs_conv2d_ws(&g_sr);
            cw = cw > c2 ? cw : c2;
        }
        struct stage_ws w;
        float *xs = avs_malloc(NLC * sizeof(float));
        w.y = avs_malloc(NLC * sizeof(float));
        w.q = avs_malloc(NLC * sizeof(float));
        w.o = avs_malloc(NLC * sizeof(float));
        w.kv = avs_malloc((size_t)N * Lk * 2 * C * sizeof(float));
        w.srmap = avs_malloc((size_t)N * Lk * C * sizeof(float));
        w.srtok = avs_malloc((size_t)N * Lk * C * sizeof(float));
        w.att = avs_malloc((size_t)L * Lk * sizeof(float));
        w.p = avs_malloc((size_t)L * Lk * sizeof(float));
        w.h1 = avs_malloc((size_t)N * L * hid * sizeof(float));
        w.h2 = avs_malloc((size_t)N * L * hid * sizeof(float));
        w.mean = avs_malloc((size_t)N * L * sizeof(float));
        w.rstd = avs_malloc((size_t)N * L * sizeof(float));
        w.conv = avs_malloc(cw * sizeof(float));
        /* patch embedding: conv -> tokens -> LayerNorm (eps 1e-5) */
        op->conv2d_fwd(w.h1, in, prm(m, "patch_embed%d.proj.weight", s + 1),
                       prm(m, "patch_embed%d.proj.bias", s + 1), &pe, w.conv);
        map2tok(xs, w.h1, N, C, L);
        op->layernorm_fwd(xs, w.mean, w.rstd, xs, prm(m, "patch_embed%d.norm.weight", s + 1),
                          prm(m, "patch_embed%d.norm.bias", s + 1), N * L, C, 1, EPS_EMBED);
        for (int i = 0; i < c->depths[s]; i++) {
            attention(m, s, i, xs, N, Hs, Ws, &w);
            mlp(m, s, i, xs, N, Hs, Ws, &w);
        }
        op->layernorm_fwd(xs, w.mean, w.rstd, xs, prm(m, "norm%d.weight", s + 1),
                          prm(m, "norm%d.bias", s + 1), N * L, C, 1, EPS_BLOCK);
        tok2map(stage[s], xs, N, C, L);
        if (s == 3 && logits && c->classes) {
            /* mean token -> head */
            float *mt = w.y;
            for (int n = 0; n < N; n++)
                for (int ch = 0; ch < C; ch++) {
                    float acc = 0;
                    for (int l = 0; l < L; l++)
                        acc += xs[((size_t)n * L + l) * C + ch];
                    mt[(size_t)n * C + ch] = acc / (float)L;
                }
            avs_linear_fwd(logits, mt, prm(m, "head.weight"), prm(m, "head.bias"), N, C, c->classes);
        }
        free(xs);
        free(w.y), free(w.q), free(w.o), free(w.kv), free(w.srmap), free(w.srtok), free(w.att);
        free(w.p), free(w.h1), free(w.h2), free(w.mean), free(w.rstd), free(w.conv);
        Ci = C, h = Hs, wd = Ws;
        in = stage[s];
    }
}
