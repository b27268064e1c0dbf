/* model/pvt.c: PVTv2 forward (pvt.h; ref: pvt_v2.py). Tokens are [N,L,C] row-major
 * (L = H*W of the stage grid), maps NCHW; every step is a backend primitive (model/ops.h). */
#include "model/pvt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/randinit.h"
#include "model/nn.h"
#include "backend/ops.h"

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

void avs_pvt_init_random(struct avs_pvt *m, const struct avs_pvt_cfg *cfg, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    build_spec(m);
    avs_tensor_set_init(&m->params, m->spec, m->np);
    for (int i = 0; i < m->np; i++) {
        const struct avs_tensor_spec *t = &m->spec[i];
        float *d = m->params.t[i].data;
        size_t n = avs_tensor_spec_numel(t);
        const char *nm = t->name, *leaf = strrchr(nm, '.');
        int is_norm = strstr(nm, "norm") && !strstr(nm, ".proj.") && !strstr(nm, ".sr.");
        if (!strcmp(leaf, ".bias"))
            avs_randinit_const(d, n, 0.0f);
        else if (is_norm)
            avs_randinit_const(d, n, 1.0f);
        else if (t->ndim == 4) { /* conv: fan_out = k*k*out/groups (groups = out for dwconv) */
            int groups = strstr(nm, "dwconv") ? t->shape[0] : 1;
            double fan_out = (double)t->shape[2] * t->shape[3] * t->shape[0] / groups;
            avs_randinit_normal(d, n, (float)sqrt(2.0 / fan_out), seed, (uint64_t)i);
        } else
            avs_randinit_normal(d, n, 0.02f, seed, (uint64_t)i);
    }
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

/* parameter by official name, printf-style */
#define prm(m, ...) ((const float *)(m)->params.t[avs_tensor_set_findf(&(m)->params, __VA_ARGS__)].data)

/* parameter "block<s+1>.<i>.<leaf>" */
#define BP(leaf) prm(m, "block%d.%d.%s", s + 1, i, leaf)

/* Gradient tensor of a parameter in g (same table as the parameters), or NULL without g. */
/* gradient of a parameter by official name (same layout as params); NULL without g */
#define grd(m, g, ...) ((g) ? (g)->t[avs_tensor_set_findf(&(m)->params, __VA_ARGS__)].data : NULL)
#define BG(leaf) grd(m, g, "block%d.%d.%s", s + 1, i, leaf)

/* Depthwise 3x3 weights [C,1,3,3] as [9][C] (contiguous per tap); malloc'd. */
static float *taps_major(const float *w, int C)
{
    float *wt = avs_malloc((size_t)9 * C * sizeof(float));
    for (int c = 0; c < C; c++)
        for (int t = 0; t < 9; t++)
            wt[(size_t)t * C + c] = w[c * 9 + t];
    return wt;
}

/* Depthwise 3x3 conv, stride 1, padding 1, on tokens: y, x [N,H,W,C] (channels innermost, so
 * the token layout needs no transpose and the loop runs along contiguous channels); w [C,1,3,3],
 * b [C]. Same sum as nn.Conv2d(C, C, 3, 1, 1, groups=C) on the NCHW view (order: bias, then
 * taps row by row). */
static void dwconv3_tokens(float *y, const float *x, const float *w, const float *b, int N, int H,
                           int W, int C)
{
    float *wt = taps_major(w, C);
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
    free(wt);
}

/* Backward of dwconv3_tokens w.r.t. its input: dx [N,H,W,C] += sum over the taps that read
 * each input token (the same taps, mirrored). */
static void dwconv3_tokens_bwd(float *dx, const float *dy, const float *w, int N, int H, int W,
                               int C)
{
    float *wt = taps_major(w, C);
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
    free(wt);
}

/* Filter gradients of dwconv3_tokens: dw [C,1,3,3] += sum dy * shifted x, db [C] += sum dy.
 * Each token row (n, i) sums its 10 products per channel in double along the contiguous
 * channels (one pass over dy and x, vectorised); the rows' partial sums are then added in row
 * order, so the result does not depend on the thread count. (A loop per channel strided
 * through the whole map, one cache line per product: 7% of a fine-tuning step.) */
static void dwconv3_tokens_bwd_filter(float *dw, float *db, const float *dy, const float *x, int N,
                                      int H, int W, int C)
{
    int rows = N * H;
    double *part = avs_calloc((size_t)rows * 10 * C, sizeof(double));
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int n = r / H, i = r % H;
        double *acc = part + (size_t)r * 10 * C; /* [10][C]: the 9 taps, then the bias */
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
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double acc[10] = {0};
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < 10; t++)
                acc[t] += part[((size_t)r * 10 + t) * C + c];
        for (int t = 0; t < 9; t++)
            dw[c * 9 + t] += (float)acc[t];
        db[c] += (float)acc[9];
    }
    free(part);
}

/* What one block keeps from its forward (for its backward); a plain forward reuses one. */
struct blk {
    int N, L, Lk, C, hid, nh;
    float *xin, *y1, *mean1, *rstd1; /* [M,C] block input, LN1 out; [M] */
    float *q;                        /* [M,C] */
    float *srin, *srpre, *srmean, *srrstd, *srtok; /* sr>1: [N,C,L], [N*Lk,C], [N*Lk] x2, [N*Lk,C] */
    float *kv;                       /* [N*Lk,2C]: k then v per token */
    float *P;                        /* [N,nh,L,Lk] attention probabilities */
    float *o;                        /* [M,C] attention output before proj */
    float *xmid, *y2, *mean2, *rstd2; /* [M,C] after attention, LN2 out; [M] */
    float *h1, *h2, *h3;             /* [M,hid]: fc1 out, dwconv out, GELU out */
    float *mem;
};

static void blk_alloc(struct blk *b, int N, int L, int Lk, int C, int hid, int nh)
{
    size_t M = (size_t)N * L, K = (size_t)N * Lk, off = 0;
    size_t sizes[] = {M * C, M * C, M, M, M * C, (size_t)N * C * L, K * C, K, K, K * C, K * 2 * C,
                      (size_t)N * nh * L * Lk, M * C, M * C, M * C, M, M, M * hid, M * hid, M * hid};
    float **dst[] = {&b->xin, &b->y1, &b->mean1, &b->rstd1, &b->q, &b->srin, &b->srpre, &b->srmean,
                     &b->srrstd, &b->srtok, &b->kv, &b->P, &b->o, &b->xmid, &b->y2, &b->mean2,
                     &b->rstd2, &b->h1, &b->h2, &b->h3};
    size_t total = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        total += (sizes[k] + 15) / 16 * 16;
    b->mem = avs_malloc(total * sizeof(float));
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        *dst[k] = b->mem + off;
        off += (sizes[k] + 15) / 16 * 16;
    }
    b->N = N, b->L = L, b->Lk = Lk, b->C = C, b->hid = hid, b->nh = nh;
}

/* Scratch of a stage: [M,C] twice, attention scores [L,Lk], conv workspace, [M,hid]. */
struct scratch {
    float *t1, *t2, *att, *conv, *hbuf, *mem;
};

/* x [N,L,C] += attention(norm1(x)); b keeps what backward needs. */
static void attention_fwd(const struct avs_pvt *m, int s, int i, float *x, int H, int W,
                          struct blk *b, struct scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int N = b->N, C = b->C, L = H * W, sr = m->cfg.sr[s], nh = b->nh, hd = C / nh, M = N * L;
    memcpy(b->xin, x, (size_t)M * C * sizeof(float));
    op->layernorm_fwd(b->y1, b->mean1, b->rstd1, x, BP("norm1.weight"), BP("norm1.bias"), M, C, 1,
                      EPS_BLOCK);
    avs_linear_fwd(b->q, b->y1, BP("attn.q.weight"), BP("attn.q.bias"), M, C, C);
    const float *kvin = b->y1;
    int Lk = L;
    if (sr > 1) {
        struct avs_conv2d g;
        avs_conv2d_geom(&g, N, C, H, W, C, sr, sr, sr, 0, 1, 1);
        tok2map(b->srin, b->y1, N, C, L);
        op->conv2d_fwd(w->t1, b->srin, BP("attn.sr.weight"), BP("attn.sr.bias"), &g, w->conv);
        Lk = g.P * g.Q;
        map2tok(b->srpre, w->t1, N, C, Lk);
        op->layernorm_fwd(b->srtok, b->srmean, b->srrstd, b->srpre, BP("attn.norm.weight"),
                          BP("attn.norm.bias"), N * Lk, C, 1, EPS_EMBED);
        kvin = b->srtok;
    }
    AVS_ASSERT(Lk == b->Lk);
    avs_linear_fwd(b->kv, kvin, BP("attn.kv.weight"), BP("attn.kv.bias"), N * Lk, C, 2 * C);
    float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            const float *q = b->q + (size_t)n * L * C + h * hd;
            const float *k = b->kv + (size_t)n * Lk * 2 * C + h * hd, *v = k + C;
            float *P = b->P + ((size_t)n * nh + h) * L * Lk;
            op->gemm(0, 1, L, Lk, hd, scale, q, C, k, 2 * C, 0.0f, w->att, Lk);
            op->softmax_fwd(P, w->att, L, Lk);
            op->gemm(0, 0, L, hd, Lk, 1.0f, P, Lk, v, 2 * C, 0.0f, b->o + (size_t)n * L * C + h * hd, C);
        }
    avs_linear_fwd(w->t2, b->o, BP("attn.proj.weight"), BP("attn.proj.bias"), M, C, C);
    op->axpy(x, 1.0f, w->t2, (size_t)M * C);
}

/* x [N,L,C] += fc2(gelu(dwconv(fc1(norm2(x))))) */
static void mlp_fwd(const struct avs_pvt *m, int s, int i, float *x, int H, int W, struct blk *b,
                    struct scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int N = b->N, C = b->C, L = H * W, hid = b->hid, M = N * L;
    memcpy(b->xmid, x, (size_t)M * C * sizeof(float));
    op->layernorm_fwd(b->y2, b->mean2, b->rstd2, x, BP("norm2.weight"), BP("norm2.bias"), M, C, 1,
                      EPS_BLOCK);
    avs_linear_fwd(b->h1, b->y2, BP("mlp.fc1.weight"), BP("mlp.fc1.bias"), M, C, hid);
    dwconv3_tokens(b->h2, b->h1, BP("mlp.dwconv.dwconv.weight"), BP("mlp.dwconv.dwconv.bias"), N,
                   H, W, hid);
    op->gelu_fwd(b->h3, b->h2, (size_t)M * hid);
    avs_linear_fwd(w->t2, b->h3, BP("mlp.fc2.weight"), BP("mlp.fc2.bias"), M, hid, C);
    op->axpy(x, 1.0f, w->t2, (size_t)M * C);
}

/* dx [M,C]: gradient at the block output in, at the block input out. */
static void block_bwd(const struct avs_pvt *m, struct avs_tensor_set *g, int s, int i, float *dx,
                      int H, int W, const struct blk *b, struct scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int N = b->N, C = b->C, L = H * W, hid = b->hid, M = N * L, Lk = b->Lk, nh = b->nh, hd = C / nh;
    int sr = m->cfg.sr[s];
    size_t MC = (size_t)M * C, MH = (size_t)M * hid;
    /* MLP: x_out = xmid + fc2(gelu(dw(fc1(LN2(xmid))))) */
    float *dh3 = w->hbuf, *dh2 = w->hbuf + MH;
    avs_ops()->zero(dh3, MH);
    avs_linear_bwd(dh3, BG("mlp.fc2.weight"), BG("mlp.fc2.bias"), dx, b->h3, BP("mlp.fc2.weight"), M,
                   hid, C);
    avs_ops()->zero(dh2, MH);
    op->gelu_bwd(dh2, dh3, b->h2, MH);
    avs_ops()->zero(dh3, MH); /* now dh1 */
    dwconv3_tokens_bwd(dh3, dh2, BP("mlp.dwconv.dwconv.weight"), N, H, W, hid);
    if (g)
        dwconv3_tokens_bwd_filter(BG("mlp.dwconv.dwconv.weight"), BG("mlp.dwconv.dwconv.bias"), dh2,
                                  b->h1, N, H, W, hid);
    avs_ops()->zero(w->t1, MC); /* dy2 */
    avs_linear_bwd(w->t1, BG("mlp.fc1.weight"), BG("mlp.fc1.bias"), dh3, b->y2, BP("mlp.fc1.weight"),
                   M, C, hid);
    op->layernorm_bwd(dx, BG("norm2.weight"), BG("norm2.bias"), w->t1, b->xmid, b->mean2, b->rstd2,
                      BP("norm2.weight"), M, C, 1);
    /* attention: xmid = xin + proj(attn(LN1(xin))) */
    float *dO = w->t1, *dq = w->t2, *dkv = w->hbuf, *dS = w->hbuf + (size_t)N * Lk * 2 * C,
          *dP = dS + (size_t)L * Lk;
    AVS_ASSERT((size_t)N * Lk * 2 * C + 2 * (size_t)L * Lk <= 2 * MH);
    avs_ops()->zero(dO, MC);
    avs_linear_bwd(dO, BG("attn.proj.weight"), BG("attn.proj.bias"), dx, b->o, BP("attn.proj.weight"),
                   M, C, C);
    float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            const float *q = b->q + (size_t)n * L * C + h * hd;
            const float *k = b->kv + (size_t)n * Lk * 2 * C + h * hd, *v = k + C;
            const float *P = b->P + ((size_t)n * nh + h) * L * Lk;
            const float *dOh = dO + (size_t)n * L * C + h * hd;
            float *dk = dkv + (size_t)n * Lk * 2 * C + h * hd, *dv = dk + C;
            op->gemm(0, 1, L, Lk, hd, 1.0f, dOh, C, v, 2 * C, 0.0f, dP, Lk);
            op->gemm(1, 0, Lk, hd, L, 1.0f, P, Lk, dOh, C, 0.0f, dv, 2 * C);
            avs_ops()->zero(dS, (size_t)L * Lk);
            op->softmax_bwd(dS, dP, P, L, Lk);
            op->gemm(0, 0, L, hd, Lk, scale, dS, Lk, k, 2 * C, 0.0f, dq + (size_t)n * L * C + h * hd, C);
            op->gemm(1, 0, Lk, hd, L, scale, dS, Lk, q, C, 0.0f, dk, 2 * C);
        }
    float *dy1 = w->t1; /* dO is no longer needed */
    avs_ops()->zero(dy1, MC);
    avs_linear_bwd(dy1, BG("attn.q.weight"), BG("attn.q.bias"), dq, b->y1, BP("attn.q.weight"), M, C, C);
    if (sr > 1) {
        float *dsrtok = dq, *dsrpre = dq + (size_t)N * Lk * C; /* dq consumed: reuse */
        AVS_ASSERT(2 * (size_t)N * Lk * C <= MC);
        avs_ops()->zero(dsrtok, (size_t)N * Lk * C);
        avs_linear_bwd(dsrtok, BG("attn.kv.weight"), BG("attn.kv.bias"), dkv, b->srtok,
                       BP("attn.kv.weight"), N * Lk, C, 2 * C);
        avs_ops()->zero(dsrpre, (size_t)N * Lk * C);
        op->layernorm_bwd(dsrpre, BG("attn.norm.weight"), BG("attn.norm.bias"), dsrtok, b->srpre,
                          b->srmean, b->srrstd, BP("attn.norm.weight"), N * Lk, C, 1);
        float *dmap = dkv, *din = w->hbuf + MH; /* [N,C,Lk], [N,C,L] */
        tok2map(dmap, dsrpre, N, C, Lk);
        avs_ops()->zero(din, MC);
        struct avs_conv2d gs;
        avs_conv2d_geom(&gs, N, C, H, W, C, sr, sr, sr, 0, 1, 1);
        op->conv2d_bwd_data(din, dmap, BP("attn.sr.weight"), &gs, w->conv);
        if (g)
            op->conv2d_bwd_filter(BG("attn.sr.weight"), BG("attn.sr.bias"), dmap, b->srin, &gs, w->conv);
        map2tok(dq, din, N, C, L);
        op->axpy(dy1, 1.0f, dq, MC);
    } else
        avs_linear_bwd(dy1, BG("attn.kv.weight"), BG("attn.kv.bias"), dkv, b->y1,
                       BP("attn.kv.weight"), M, C, 2 * C);
    op->layernorm_bwd(dx, BG("norm1.weight"), BG("norm1.bias"), dy1, b->xin, b->mean1, b->rstd1,
                      BP("norm1.weight"), M, C, 1);
}

/* What a stage keeps for the Grad-CAM backward. */
struct stage_keep {
    int H, W, L, C, Lk, hid;
    int Hin, Win;                      /* input size of the patch embedding */
    float *pe_pre, *pe_mean, *pe_rstd; /* patch-embedding tokens before its LN; [M] x2 */
    float *last, *n_mean, *n_rstd;     /* last block output (before the stage norm); [M] x2 */
    struct blk *blk;                   /* [depth] (stages 2..4) or one reused (stage 1) */
    int nblk;
};

static void scratch_alloc(struct scratch *w, size_t MC, size_t LLk, size_t conv, size_t MH)
{
    size_t t = (MC + 16) * 2 + LLk + 16 + conv + 16 + 2 * MH + 16;
    w->mem = avs_malloc(t * sizeof(float));
    w->t1 = w->mem;
    w->t2 = w->t1 + MC + 16;
    w->att = w->t2 + MC + 16;
    w->conv = w->att + LLk + 16;
    w->hbuf = w->conv + conv + 16;
}

/* Forward of all stages; keep[s] filled (blocks of stages >= keep_from kept one by one). */
static void forward(const struct avs_pvt *m, float *const stage[4], float *logits,
                    const float *image, int N, int H, int W, struct stage_keep keep[4], int keep_from)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_pvt_cfg *c = &m->cfg;
    const float *in = image;
    int Ci = 3, h = H, wd = W;
    for (int s = 0; s < 4; s++) {
        struct stage_keep *k = &keep[s];
        int C = c->dims[s], ks = s ? 3 : 7, st = s ? 2 : 4, hid = C * c->mlp[s], sr = c->sr[s];
        struct avs_conv2d pe, g_sr;
        avs_conv2d_geom(&pe, N, Ci, h, wd, C, ks, ks, st, ks / 2, 1, 1);
        int Hs = pe.P, Ws = pe.Q, L = Hs * Ws, Lk = sr > 1 ? (Hs / sr) * (Ws / sr) : L;
        size_t M = (size_t)N * L, cw = avs_conv2d_ws(&pe);
        if (sr > 1) {
            avs_conv2d_geom(&g_sr, N, C, Hs, Ws, C, sr, sr, sr, 0, 1, 1);
            cw = cw > avs_conv2d_ws(&g_sr) ? cw : avs_conv2d_ws(&g_sr);
        }
        k->H = Hs, k->W = Ws, k->L = L, k->C = C, k->Lk = Lk, k->hid = hid, k->Hin = h, k->Win = wd;
        k->nblk = s >= keep_from ? c->depths[s] : 1;
        k->blk = avs_calloc((size_t)k->nblk, sizeof *k->blk);
        for (int b = 0; b < k->nblk; b++)
            blk_alloc(&k->blk[b], N, L, Lk, C, hid, c->heads[s]);
        k->pe_pre = avs_malloc(M * C * sizeof(float));
        k->last = avs_malloc(M * C * sizeof(float));
        k->pe_mean = avs_malloc(4 * M * sizeof(float));
        k->pe_rstd = k->pe_mean + M, k->n_mean = k->pe_mean + 2 * M, k->n_rstd = k->pe_mean + 3 * M;
        struct scratch w;
        scratch_alloc(&w, M * C, (size_t)L * Lk, cw, M * hid);
        /* patch embedding: conv -> tokens -> LayerNorm (eps 1e-5) */
        float *xs = k->last;
        op->conv2d_fwd(w.hbuf, in, prm(m, "patch_embed%d.proj.weight", s + 1),
                       prm(m, "patch_embed%d.proj.bias", s + 1), &pe, w.conv);
        map2tok(k->pe_pre, w.hbuf, N, C, L);
        op->layernorm_fwd(xs, k->pe_mean, k->pe_rstd, k->pe_pre,
                          prm(m, "patch_embed%d.norm.weight", s + 1),
                          prm(m, "patch_embed%d.norm.bias", s + 1), (int)M, C, 1, EPS_EMBED);
        for (int i = 0; i < c->depths[s]; i++) {
            struct blk *b = &k->blk[k->nblk > 1 ? i : 0];
            attention_fwd(m, s, i, xs, Hs, Ws, b, &w);
            mlp_fwd(m, s, i, xs, Hs, Ws, b, &w);
        }
        op->layernorm_fwd(w.t1, k->n_mean, k->n_rstd, xs, prm(m, "norm%d.weight", s + 1),
                          prm(m, "norm%d.bias", s + 1), (int)M, C, 1, EPS_BLOCK);
        tok2map(stage[s], w.t1, N, C, L);
        if (s == 3 && logits && c->classes) {
            float *mt = w.t2; /* mean token -> head */
            for (int n = 0; n < N; n++)
                for (int ch = 0; ch < C; ch++) {
                    float acc = 0;
                    for (int l = 0; l < L; l++)
                        acc += w.t1[((size_t)n * L + l) * C + ch];
                    mt[(size_t)n * C + ch] = acc / (float)L;
                }
            avs_linear_fwd(logits, mt, prm(m, "head.weight"), prm(m, "head.bias"), N, C, c->classes);
        }
        free(w.mem);
        Ci = C, h = Hs, wd = Ws;
        in = stage[s];
    }
}

static void keep_free(struct stage_keep keep[4])
{
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < keep[s].nblk; b++)
            free(keep[s].blk[b].mem);
        free(keep[s].blk);
        free(keep[s].pe_pre);
        free(keep[s].last);
        free(keep[s].pe_mean);
    }
}

void avs_pvt_fwd(const struct avs_pvt *m, float *const stage[4], float *logits, const float *image,
                 int N, int H, int W)
{
    struct stage_keep keep[4];
    memset(keep, 0, sizeof keep);
    forward(m, stage, logits, image, N, H, W, keep, 4);
    keep_free(keep);
}

/* Backward from dlogits [N,classes] (may be NULL) and dstage[s] [N,C_s,H_s,W_s] (NULL or NULL
 * entries: none) through the kept forward. g: parameter gradients (added) or NULL; gradcam[s]
 * [N,C_s] (NULL: not wanted); full: also stage 1's blocks and patch embedding (for g). */
static void backward(const struct avs_pvt *m, struct stage_keep keep[4], float *const stage[4],
                     const float *image, struct avs_tensor_set *g, const float *dlogits,
                     const float *const *dstage, float *const *gradcam, int full, int N)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_pvt_cfg *c = &m->cfg;
    struct stage_keep *k = &keep[3];
    size_t M = (size_t)N * k->L;
    float *dtok = avs_calloc(M * k->C, sizeof(float));
    if (dlogits && c->classes) {
        /* logits = head(mean_l tokens): d tokens[n,l,:] = dlogits[n] W / L; head grads */
        const float *hw = prm(m, "head.weight");
        float *mt = avs_malloc((size_t)N * k->C * sizeof(float));
        for (int n = 0; n < N; n++)
            for (int ch = 0; ch < k->C; ch++) {
                double acc = 0, t = 0;
                for (int j = 0; j < c->classes; j++)
                    acc += (double)dlogits[(size_t)n * c->classes + j] * hw[(size_t)j * k->C + ch];
                for (int l = 0; l < k->L; l++) {
                    dtok[((size_t)n * k->L + l) * k->C + ch] = (float)(acc / k->L);
                    t += stage[3][((size_t)n * k->C + ch) * k->L + l];
                }
                mt[(size_t)n * k->C + ch] = (float)(t / k->L);
            }
        if (g)
            avs_linear_bwd(NULL, grd(m, g, "head.weight"), grd(m, g, "head.bias"), dlogits, mt, hw, N,
                           k->C, c->classes);
        free(mt);
    }
    for (int s = 3; s >= 0; s--) {
        k = &keep[s];
        M = (size_t)N * k->L;
        size_t MC = M * k->C;
        if (dstage && dstage[s]) {
            float *t = avs_malloc(MC * sizeof(float));
            map2tok(t, dstage[s], N, k->C, k->L);
            op->axpy(dtok, 1.0f, t, MC);
            free(t);
        }
        float *dx = avs_calloc(MC, sizeof(float));
        op->layernorm_bwd(dx, grd(m, g, "norm%d.weight", s + 1), grd(m, g, "norm%d.bias", s + 1), dtok,
                          k->last, k->n_mean, k->n_rstd, prm(m, "norm%d.weight", s + 1), (int)M, k->C, 1);
        for (int n = 0; gradcam && n < N; n++) /* Grad-CAM weight: spatial mean of the gradient */
            for (int ch = 0; ch < k->C; ch++) {
                double acc = 0;
                for (int l = 0; l < k->L; l++)
                    acc += dx[((size_t)n * k->L + l) * k->C + ch];
                gradcam[s][(size_t)n * k->C + ch] = (float)(acc / k->L);
            }
        free(dtok);
        dtok = NULL;
        if (s == 0 && !full) {
            free(dx);
            break;
        }
        struct avs_conv2d pe, g_sr;
        int Cp = s ? c->dims[s - 1] : 3, ks = s ? 3 : 7;
        int Hp = s ? keep[s - 1].H : 0, Wp = s ? keep[s - 1].W : 0;
        if (!s) { /* the image size back from the stage-1 grid is not unique: recompute it */
            Hp = keep[0].Hin, Wp = keep[0].Win;
        }
        avs_conv2d_geom(&pe, N, Cp, Hp, Wp, k->C, ks, ks, s ? 2 : 4, ks / 2, 1, 1);
        size_t cw = avs_conv2d_ws(&pe);
        if (c->sr[s] > 1) {
            avs_conv2d_geom(&g_sr, N, k->C, k->H, k->W, k->C, c->sr[s], c->sr[s], c->sr[s], 0, 1, 1);
            cw = cw > avs_conv2d_ws(&g_sr) ? cw : avs_conv2d_ws(&g_sr);
        }
        struct scratch w;
        scratch_alloc(&w, MC, (size_t)k->L * k->Lk, cw, M * k->hid);
        for (int i = c->depths[s] - 1; i >= 0; i--)
            block_bwd(m, g, s, i, dx, k->H, k->W, &k->blk[i], &w);
        /* patch embedding: LN, tokens -> map, conv */
        avs_ops()->zero(w.t1, MC);
        op->layernorm_bwd(w.t1, grd(m, g, "patch_embed%d.norm.weight", s + 1),
                          grd(m, g, "patch_embed%d.norm.bias", s + 1), dx, k->pe_pre, k->pe_mean,
                          k->pe_rstd, prm(m, "patch_embed%d.norm.weight", s + 1), (int)M, k->C, 1);
        tok2map(w.t2, w.t1, N, k->C, k->L);
        if (g)
            op->conv2d_bwd_filter(grd(m, g, "patch_embed%d.proj.weight", s + 1),
                                  grd(m, g, "patch_embed%d.proj.bias", s + 1), w.t2,
                                  s ? stage[s - 1] : image, &pe, w.conv);
        if (s) {
            size_t Mp = (size_t)N * keep[s - 1].L;
            float *dmap = avs_calloc(Mp * Cp, sizeof(float));
            op->conv2d_bwd_data(dmap, w.t2, prm(m, "patch_embed%d.proj.weight", s + 1), &pe, w.conv);
            dtok = avs_malloc(Mp * Cp * sizeof(float));
            map2tok(dtok, dmap, N, Cp, keep[s - 1].L);
            free(dmap);
        }
        free(w.mem);
        free(dx);
    }
    free(dtok);
}

struct avs_pvt_kept {
    struct stage_keep keep[4];
    float *stage[4];
    const float *image;
    int N;
};

struct avs_pvt_kept *avs_pvt_fwd_kept(const struct avs_pvt *m, float *const stage[4], float *logits,
                                      const float *image, int N, int H, int W)
{
    AVS_ASSERT(m->cfg.classes > 0 && logits);
    struct avs_pvt_kept *k = avs_calloc(1, sizeof *k);
    forward(m, stage, logits, image, N, H, W, k->keep, 1);
    for (int s = 0; s < 4; s++)
        k->stage[s] = stage[s];
    k->image = image, k->N = N;
    return k;
}

void avs_pvt_kept_free(struct avs_pvt_kept *k)
{
    if (!k)
        return;
    keep_free(k->keep);
    free(k);
}

void avs_pvt_gradcam_kept(const struct avs_pvt *m, struct avs_pvt_kept *k, float *const gradcam[4],
                          const int *target)
{
    const struct avs_pvt_cfg *c = &m->cfg;
    float *dl = avs_calloc((size_t)k->N * c->classes, sizeof(float));
    for (int n = 0; n < k->N; n++) {
        AVS_ASSERT(target[n] >= 0 && target[n] < c->classes);
        dl[(size_t)n * c->classes + target[n]] = 1.0f;
    }
    backward(m, k->keep, k->stage, k->image, NULL, dl, NULL, gradcam, 0, k->N);
    free(dl);
    avs_pvt_kept_free(k);
}

void avs_pvt_gradcam(const struct avs_pvt *m, float *const gradcam[4], float *const stage[4],
                     float *logits, const float *image, const int *target, int N, int H, int W)
{
    avs_pvt_gradcam_kept(m, avs_pvt_fwd_kept(m, stage, logits, image, N, H, W), gradcam, target);
}

void avs_pvt_bwd(const struct avs_pvt *m, struct avs_tensor_set *grads, float *const stage[4],
                 float *logits, const float *image, const float *const dstage[4],
                 const float *dlogits, int N, int H, int W)
{
    struct stage_keep keep[4];
    memset(keep, 0, sizeof keep);
    forward(m, stage, logits, image, N, H, W, keep, 0);
    backward(m, keep, stage, image, grads, dlogits, (const float *const *)dstage, NULL, 1, N);
    keep_free(keep);
}
