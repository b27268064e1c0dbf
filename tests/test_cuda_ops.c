/* tests/test_cuda_ops.c: every primitive of the backend table, the cuda backend against the cpu
 * backend (the reference), on random shapes (odd sizes, 1x1 maps, single images and channels),
 * forward and every gradient.
 *
 * Each case lists its tensors (size, how they start, whether they are results); the same host
 * data goes to both backends, the op runs on each, and the results come back and are compared:
 *   |cuda - cpu| <= rtol |cpu| + atol max|cpu|          (per result tensor; default 1e-4, 1e-4)
 * and the double a loss returns within 1e-5 relative. Where fp32 rounding of a long reduction
 * matters (GEMMs and convolutions) both backends are also held to a float64 recomputation:
 *   |v - ref| <= 1e-5 * sum |terms| + 1e-6
 * which is the bound of a sum of K products in fp32 in any order (K eps, eps = 6e-8, K < 200).
 * Without a GPU (or without a CUDA build) it prints SKIP and exits 77.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/check.h"
#ifdef AVS_USE_CUDA
#include "backend/cuda/cuda_ctx.h"

enum init { RAND, ZERO, POS, UNIT, LABEL, WS };

#define MAXA 10
struct kase;
typedef double (*call_fn)(const struct avs_ops *op, float **p, const struct kase *k);
typedef size_t (*ws_fn)(const struct avs_ops *op, const struct kase *k);

struct arg {
    size_t n;   /* floats; 0: a NULL pointer */
    int init;   /* enum init */
    int out;    /* compared after the call */
    ws_fn ws;   /* init WS: the size on this backend */
};

struct kase {
    const char *op;
    char shape[160];
    int na;
    struct arg a[MAXA];
    int d[12];
    float f[6];
    struct avs_conv2d cg;
    struct avs_tapconv tg;
    struct avs_bcast bc;
    call_fn call;
    int returns; /* the call returns a loss to compare */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static int irand(int lo, int hi) { return lo + (int)(urand() * (hi - lo + 1)); }
static int pick(const int *v, int n) { return v[irand(0, n - 1)]; }

static void fill_host(float *h, const struct arg *a, int classes)
{
    for (size_t i = 0; i < a->n; i++) {
        switch (a->init) {
        case RAND: h[i] = (float)(2 * urand() - 1); break;
        case POS: h[i] = (float)(0.2 + urand()); break;
        case UNIT: h[i] = (float)(0.02 + 0.96 * urand()); break;
        case LABEL: h[i] = urand() < 0.05 ? 255.0f : (float)irand(0, classes - 1); break;
        default: h[i] = 0; break;
        }
    }
}

/* ---- running one case on one backend ---- */

struct result {
    float *v[MAXA]; /* host copies of the results */
    double ret;
};

static void run_on(const struct avs_ops *op, struct kase *k, float **host, struct result *r)
{
    float *p[MAXA] = {0};
    avs_backend_set(op);
    for (int i = 0; i < k->na; i++) {
        size_t n = k->a[i].init == WS ? k->a[i].ws(op, k) : k->a[i].n;
        if (!n)
            continue;
        p[i] = op->alloc(n * sizeof(float), k->a[i].init == WS);
        AVS_ASSERT(p[i]);
        if (k->a[i].init != WS)
            op->upload(p[i], host[i], n * sizeof(float));
    }
    r->ret = k->call(op, p, k);
    op->sync();
    for (int i = 0; i < k->na; i++) {
        r->v[i] = NULL;
        if (k->a[i].out && p[i]) {
            r->v[i] = malloc(k->a[i].n * sizeof(float));
            op->download(r->v[i], p[i], k->a[i].n * sizeof(float));
        }
        op->free(p[i]);
    }
    avs_backend_set(avs_backend_cpu());
}

/* The first element of v outside the tolerance of ref, or n. */
static size_t first_off(const float *v, const float *ref, size_t n, double rtol, double atol)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, isfinite(ref[i]) ? fabs(ref[i]) : 0);
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)v[i] - ref[i]) <= rtol * fabs(ref[i]) + atol * scale + 1e-30))
            return i;
    return n;
}

static const struct avs_ops *gpu;
static int cases_run;

/* k on both backends; results compared; each backend's results left in r[0] (cpu), r[1]. */
static void run_case(struct kase *k, struct result r[2])
{
    float *host[MAXA] = {0};
    int classes = k->d[11] > 1 ? k->d[11] : 2;
    for (int i = 0; i < k->na; i++)
        if (k->a[i].init != WS && k->a[i].n) {
            host[i] = malloc(k->a[i].n * sizeof(float));
            fill_host(host[i], &k->a[i], classes);
        }
    run_on(avs_backend_cpu(), k, host, &r[0]);
    run_on(gpu, k, host, &r[1]);
    for (int i = 0; i < k->na; i++) {
        if (!r[0].v[i])
            continue;
        size_t n = k->a[i].n, j = first_off(r[1].v[i], r[0].v[i], n, 1e-4, 1e-4);
        CHECK(j == n, "%s %s: result #%d element %zu of %zu: cuda %.9g, cpu %.9g", k->op, k->shape,
              i, j, n, j < n ? r[1].v[i][j] : 0.0f, j < n ? r[0].v[i][j] : 0.0f);
    }
    if (k->returns)
        CHECK(fabs(r[1].ret - r[0].ret) <= 1e-5 * fabs(r[0].ret) + 1e-7,
              "%s %s: returns cuda %.12g, cpu %.12g", k->op, k->shape, r[1].ret, r[0].ret);
    for (int i = 0; i < k->na; i++)
        free(host[i]);
    cases_run++;
}

static void free_results(struct result r[2], int na)
{
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < na; i++)
            free(r[b].v[i]);
}

static void check(struct kase *k)
{
    struct result r[2];
    run_case(k, r);
    free_results(r, k->na);
}

#define A(n_, init_, out_) ((struct arg){(size_t)(n_), (init_), (out_), NULL})
#define AWS(f) ((struct arg){1, WS, 0, (f)})
#define ARGS(k, ...)                                                                               \
    do {                                                                                          \
        struct arg list_[] = {__VA_ARGS__};                                                       \
        (k)->na = (int)(sizeof list_ / sizeof list_[0]);                                          \
        memcpy((k)->a, list_, sizeof list_);                                                      \
    } while (0)

static struct kase new_case(const char *op, call_fn call)
{
    struct kase k;
    memset(&k, 0, sizeof k);
    k.op = op;
    k.call = call;
    return k;
}

/* ---- GEMM, with the float64 check ---- */

static double call_gemm(const struct avs_ops *op, float **p, const struct kase *k)
{
    const int *d = k->d;
    op->gemm(d[0], d[1], d[2], d[3], d[4], k->f[0], p[0], d[5], p[1], d[6], k->f[1], p[2], d[7]);
    return 0;
}

static void gemm_f64(const struct kase *k, float *const *host, const float *got, const char *be)
{
    const int *d = k->d;
    int M = d[2], N = d[3], K = d[4];
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0, bound = 0;
            for (int q = 0; q < K; q++) {
                double a = d[0] ? host[0][(size_t)q * d[5] + m] : host[0][(size_t)m * d[5] + q];
                double b = d[1] ? host[1][(size_t)n * d[6] + q] : host[1][(size_t)q * d[6] + n];
                s += a * b, bound += fabs(a * b);
            }
            double c0 = host[2][(size_t)m * d[7] + n];
            double ref = k->f[0] * s + k->f[1] * c0;
            bound = fabs(k->f[0]) * bound + fabs(k->f[1] * c0);
            double v = got[(size_t)m * d[7] + n];
            if (!(fabs(v - ref) <= 1e-5 * bound + 1e-6)) {
                CHECK(0, "gemm %s on %s: C[%d,%d] = %.9g, float64 %.9g", k->shape, be, m, n, v, ref);
                return;
            }
        }
}

static void test_gemm(void)
{
    static const int sizes[] = {1, 3, 17, 64, 129};
    for (int t = 0; t < 12; t++) {
        struct kase k = new_case("gemm", call_gemm);
        int ta = t & 1, tb = (t >> 1) & 1, M = pick(sizes, 5), N = pick(sizes, 5), K = pick(sizes, 5);
        int lda = (ta ? M : K) + (t % 3 == 0), ldb = (tb ? K : N) + (t % 5 == 0), ldc = N + (t % 4 == 0);
        int d[] = {ta, tb, M, N, K, lda, ldb, ldc};
        memcpy(k.d, d, sizeof d);
        k.f[0] = t % 3 ? 1.0f : 0.7f;
        k.f[1] = t % 2 ? 0.0f : 1.0f;
        snprintf(k.shape, sizeof k.shape, "ta=%d tb=%d M=%d N=%d K=%d beta=%g", ta, tb, M, N, K, k.f[1]);
        ARGS(&k, A((size_t)(ta ? K : M) * lda, RAND, 0), A((size_t)(tb ? N : K) * ldb, RAND, 0),
             A((size_t)M * ldc, RAND, 1));
        /* the host inputs again, for the float64 recomputation (same RNG state) */
        uint64_t saved = rng;
        float *host[3];
        for (int i = 0; i < 3; i++) {
            host[i] = malloc(k.a[i].n * sizeof(float));
            fill_host(host[i], &k.a[i], 2);
        }
        rng = saved;
        struct result r[2];
        run_case(&k, r);
        gemm_f64(&k, host, r[0].v[2], "cpu");
        gemm_f64(&k, host, r[1].v[2], "cuda");
        free_results(r, k.na);
        for (int i = 0; i < 3; i++)
            free(host[i]);
    }
}

/* ---- conv2d ---- */

static size_t ws_conv(const struct avs_ops *op, const struct kase *k) { return op->conv2d_ws(&k->cg); }

static double call_conv_fwd(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->conv2d_fwd(p[0], p[1], p[2], p[3], &k->cg, p[4]);
    return 0;
}
static double call_conv_bwd_data(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->conv2d_bwd_data(p[0], p[1], p[2], &k->cg, p[3]);
    return 0;
}
static double call_conv_bwd_data_set(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->conv2d_bwd_data_set(p[0], p[1], p[2], &k->cg, p[3]);
    return 0;
}
static double call_conv_bwd_filter(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->conv2d_bwd_filter(p[0], p[1], p[2], p[3], &k->cg, p[4]);
    return 0;
}

static void conv_f64(const struct kase *k, float *const *host, const float *got, const char *be)
{
    const struct avs_conv2d *g = &k->cg;
    int Cg = g->C / g->groups, Kg = g->K / g->groups;
    for (int n = 0; n < g->N; n++)
        for (int o = 0; o < g->K; o++)
            for (int p = 0; p < g->P; p++)
                for (int q = 0; q < g->Q; q++) {
                    double s = host[3] ? host[3][o] : 0, bound = fabs(s);
                    for (int c = 0; c < Cg; c++)
                        for (int r = 0; r < g->R; r++)
                            for (int u = 0; u < g->S; u++) {
                                int h = p * g->stride - g->pad + r * g->dil;
                                int w = q * g->stride - g->pad + u * g->dil;
                                if (h < 0 || h >= g->H || w < 0 || w >= g->W)
                                    continue;
                                int ci = (o / Kg) * Cg + c;
                                double x = host[1][(((size_t)n * g->C + ci) * g->H + h) * g->W + w];
                                double wt = host[2][(((size_t)o * Cg + c) * g->R + r) * g->S + u];
                                s += x * wt, bound += fabs(x * wt);
                            }
                    double v = got[(((size_t)n * g->K + o) * g->P + p) * g->Q + q];
                    if (!(fabs(v - s) <= 1e-5 * bound + 1e-6)) {
                        CHECK(0, "conv2d_fwd %s on %s: out[%d,%d,%d,%d] = %.9g, float64 %.9g",
                              k->shape, be, n, o, p, q, v, s);
                        return;
                    }
                }
}

static void random_conv(struct avs_conv2d *g)
{
    static const int ns[] = {1, 2, 3}, cs[] = {1, 3, 8, 16}, hs[] = {1, 2, 5, 7, 12}, rs[] = {1, 3, 5};
    for (;;) {
        int C = pick(cs, 4), K = pick(cs, 4), R = pick(rs, 3), S = urand() < 0.8 ? R : pick(rs, 3);
        int stride = irand(1, 2), dil = urand() < 0.7 ? 1 : 2, pad = urand() < 0.3 ? 0 : R / 2 * dil;
        int groups = urand() < 0.25 ? C : 1;
        if (groups > 1 && K % groups)
            K = C;
        int H = pick(hs, 5), W = pick(hs, 5);
        if (H + 2 * pad < dil * (R - 1) + 1 || W + 2 * pad < dil * (S - 1) + 1)
            continue;
        avs_conv2d_geom(g, pick(ns, 3), C, H, W, K, R, S, stride, pad, dil, groups);
        if (g->P >= 1 && g->Q >= 1)
            return;
    }
}

static void test_conv2d(void)
{
    for (int t = 0; t < 16; t++) {
        struct avs_conv2d g;
        random_conv(&g);
        size_t in = (size_t)g.N * g.C * g.H * g.W, out = (size_t)g.N * g.K * g.P * g.Q;
        size_t w = (size_t)g.K * (g.C / g.groups) * g.R * g.S;
        int bias = t % 3 != 2;
        char shape[160];
        snprintf(shape, sizeof shape, "in [%d,%d,%d,%d] w [%d,%d,%d,%d] s%d p%d d%d g%d%s", g.N, g.C,
                 g.H, g.W, g.K, g.C / g.groups, g.R, g.S, g.stride, g.pad, g.dil, g.groups,
                 bias ? "" : " no bias");

        struct kase k = new_case("conv2d_fwd", call_conv_fwd);
        k.cg = g;
        snprintf(k.shape, sizeof k.shape, "%s", shape);
        ARGS(&k, A(out, ZERO, 1), A(in, RAND, 0), A(w, RAND, 0), A(bias ? g.K : 0, RAND, 0),
             AWS(ws_conv));
        uint64_t saved = rng;
        float *host[4] = {0};
        for (int i = 1; i < 4; i++)
            if (k.a[i].n) {
                host[i] = malloc(k.a[i].n * sizeof(float));
                fill_host(host[i], &k.a[i], 2);
            }
        rng = saved;
        struct result r[2];
        run_case(&k, r);
        conv_f64(&k, host, r[0].v[0], "cpu");
        conv_f64(&k, host, r[1].v[0], "cuda");
        free_results(r, k.na);
        for (int i = 0; i < 4; i++)
            free(host[i]);

        k = new_case("conv2d_bwd_data", call_conv_bwd_data);
        k.cg = g;
        snprintf(k.shape, sizeof k.shape, "%s", shape);
        ARGS(&k, A(in, RAND, 1), A(out, RAND, 0), A(w, RAND, 0), AWS(ws_conv));
        check(&k);
        k.op = "conv2d_bwd_data_set", k.call = call_conv_bwd_data_set;
        check(&k);
        k = new_case("conv2d_bwd_filter", call_conv_bwd_filter);
        k.cg = g;
        snprintf(k.shape, sizeof k.shape, "%s", shape);
        ARGS(&k, A(w, RAND, 1), A(bias ? g.K : 0, RAND, 1), A(out, RAND, 0), A(in, RAND, 0),
             AWS(ws_conv));
        check(&k);
    }
}

/* ---- tap conv ---- */

static size_t ws_tap(const struct avs_ops *op, const struct kase *k) { return op->tapconv_ws(&k->tg); }

static double call_tap_fwd(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->tapconv_fwd(p[0], p[1], p[2], p[3], &k->tg, p[4]);
    return 0;
}
static double call_tap_bwd_data(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->tapconv_bwd_data(p[0], p[1], p[2], &k->tg, p[3]);
    return 0;
}
static double call_tap_bwd_filter(const struct avs_ops *op, float **p, const struct kase *k)
{
    op->tapconv_bwd_filter(p[0], p[1], p[2], p[3], &k->tg, p[4]);
    return 0;
}

static void test_tapconv(void)
{
    static const int ns[] = {1, 2, 5}, cs[] = {1, 4, 9}, hs[] = {1, 3, 7, 14}, taps[] = {1, 5, 9, 19};
    for (int t = 0; t < 10; t++) {
        struct avs_tapconv g;
        memset(&g, 0, sizeof g);
        g.N = pick(ns, 3), g.C = pick(cs, 3), g.K = pick(cs, 3), g.H = pick(hs, 4), g.W = pick(hs, 4);
        g.P = g.H, g.Q = g.W, g.n = pick(taps, 4);
        for (int i = 0; i < g.n; i++)
            g.dy[i] = irand(-6, 6), g.dx[i] = irand(-6, 6);
        size_t in = (size_t)g.N * g.C * g.H * g.W, out = (size_t)g.N * g.K * g.P * g.Q;
        size_t w = (size_t)g.K * g.n * g.C;
        int bias = t % 3 != 1;
        struct kase k = new_case("tapconv_fwd", call_tap_fwd);
        k.tg = g;
        snprintf(k.shape, sizeof k.shape, "in [%d,%d,%d,%d] K %d taps %d%s", g.N, g.C, g.H, g.W, g.K,
                 g.n, bias ? "" : " no bias");
        ARGS(&k, A(out, ZERO, 1), A(in, RAND, 0), A(w, RAND, 0), A(bias ? g.K : 0, RAND, 0),
             AWS(ws_tap));
        check(&k);
        k.op = "tapconv_bwd_data", k.call = call_tap_bwd_data;
        ARGS(&k, A(in, RAND, 1), A(out, RAND, 0), A(w, RAND, 0), AWS(ws_tap));
        check(&k);
        k.op = "tapconv_bwd_filter", k.call = call_tap_bwd_filter;
        ARGS(&k, A(w, RAND, 1), A(bias ? g.K : 0, RAND, 1), A(out, RAND, 0), A(in, RAND, 0),
             AWS(ws_tap));
        check(&k);
    }
}

/* ---- elementwise, norms, softmax, reductions ---- */

#define D k->d
#define F k->f
#define CALL(name, body)                                                                           \
    static double call_##name(const struct avs_ops *op, float **p, const struct kase *k)           \
    {                                                                                             \
        (void)k;                                                                                  \
        body;                                                                                     \
        return 0;                                                                                 \
    }
#define CALLD(name, body)                                                                          \
    static double call_##name(const struct avs_ops *op, float **p, const struct kase *k)           \
    {                                                                                             \
        (void)k;                                                                                  \
        return body;                                                                              \
    }

CALL(bias_fwd, op->bias_fwd(p[0], p[1], D[0], D[1]))
CALL(bias_bwd, op->bias_bwd(p[0], p[1], D[0], D[1]))
CALL(relu_fwd, op->relu_fwd(p[0], p[1], (size_t)D[0]))
CALL(relu_bwd, op->relu_bwd(p[0], p[1], p[2], (size_t)D[0]))
CALL(gelu_fwd, op->gelu_fwd(p[0], p[1], (size_t)D[0]))
CALL(gelu_bwd, op->gelu_bwd(p[0], p[1], p[2], (size_t)D[0]))
CALL(sigmoid_fwd, op->sigmoid_fwd(p[0], p[1], (size_t)D[0]))
CALL(sigmoid_bwd, op->sigmoid_bwd(p[0], p[1], p[2], (size_t)D[0]))
CALL(softmax_fwd, op->softmax_fwd(p[0], p[1], D[0], D[1]))
CALL(softmax_bwd, op->softmax_bwd(p[0], p[1], p[2], D[0], D[1]))
CALL(layernorm_fwd, op->layernorm_fwd(p[0], p[1], p[2], p[3], p[4], p[5], D[0], D[1], D[2], F[0]))
CALL(layernorm_bwd, op->layernorm_bwd(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], D[0], D[1], D[2]))
CALL(batchnorm_fwd, op->batchnorm_fwd(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], D[0], D[1],
                                      D[2], F[0], F[1], D[3]))
CALL(batchnorm_bwd, op->batchnorm_bwd(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], D[0], D[1],
                                      D[2], D[3]))
CALL(resize_fwd, op->resize_fwd(p[0], p[1], D[0], D[1], D[2], D[3], D[4], D[5]))
CALL(resize_bwd, op->resize_bwd(p[0], p[1], D[0], D[1], D[2], D[3], D[4], D[5]))
CALL(mean_fwd, op->mean_fwd(p[0], p[1], D[0], D[1]))
CALL(mean_bwd, op->mean_bwd(p[0], p[1], D[0], D[1]))
CALL(chmean_fwd, op->chmean_fwd(p[0], p[1], D[0], D[1], D[2]))
CALL(chmean_bwd, op->chmean_bwd(p[0], p[1], D[0], D[1], D[2]))
CALL(concat_fwd, op->concat_fwd(p[0], p[1], D[0], D[1], D[2], D[3], D[4]))
CALL(concat_bwd, op->concat_bwd(p[0], p[1], D[0], D[1], D[2], D[3], D[4]))
CALL(add_fwd, op->add_fwd(p[0], p[1], p[2], &k->bc))
CALL(add_bwd, op->add_bwd(p[0], p[1], &k->bc))
CALL(mul_fwd, op->mul_fwd(p[0], p[1], p[2], &k->bc))
CALL(mul_bwd, op->mul_bwd(p[0], p[1], p[2], p[3], p[4], &k->bc))
CALL(axpy, op->axpy(p[0], F[0], p[1], (size_t)D[0]))
CALLD(bce_logits, op->bce_logits(p[0], p[1], p[2], D[0], D[1], F[0]))
CALLD(dice, op->dice(p[0], p[1], p[2], D[0], D[1], F[0]))
CALLD(softmax_ce, op->softmax_ce(p[0], p[1], p[2], D[0], D[11], D[1], F[0]))
CALLD(softmax_kl, op->softmax_kl(p[0], p[1], p[2], p[3], D[0], D[1], F[0]))
CALL(adam, op->adam(p[0], p[1], p[2], p[3], (size_t)D[0], 1e-3, 0.9, 0.999, 1e-8, F[0], D[1]))
CALL(adam_zero, op->adam_zero(p[0], p[1], p[2], p[3], (size_t)D[0], 1e-3, 0.9, 0.999, 1e-8, F[0], D[1]))
CALL(transpose, op->transpose(p[0], p[1], D[0], D[1], D[2]))
CALL(dwconv3_fwd, op->dwconv3_fwd(p[0], p[1], p[2], p[3], D[0], D[1], D[2], D[3], p[4]))
CALL(dwconv3_bwd_data, op->dwconv3_bwd_data(p[0], p[1], p[2], D[0], D[1], D[2], D[3], p[3]))
CALL(dwconv3_bwd_filter, op->dwconv3_bwd_filter(p[0], p[1], p[2], p[3], D[0], D[1], D[2], D[3], p[4]))
CALL(tokmean_fwd, op->tokmean_fwd(p[0], p[1], D[0], D[1], D[2]))
CALL(tokmean_bwd, op->tokmean_bwd(p[0], p[1], D[0], D[1], D[2]))
CALL(maxpool2_fwd, op->maxpool2_fwd(p[0], p[1], D[0], D[1], D[2]))
CALL(maxpool3s2_fwd, op->maxpool3s2_fwd(p[0], p[1], D[0], D[1], D[2]))
CALL(maxpool3s2_bwd, op->maxpool3s2_bwd(p[0], p[1], p[2], D[0], D[1], D[2]))
CALL(avgpool2_fwd, op->avgpool2_fwd(p[0], p[1], D[0], D[1], D[2]))
CALL(rowmax_fwd, op->rowmax_fwd(p[0], p[1], D[0], D[1]))
CALL(adapool_fwd, op->adapool_fwd(p[0], p[1], D[0], D[1], D[2], D[3], D[4]))
CALL(adapool_bwd, op->adapool_bwd(p[0], p[1], D[0], D[1], D[2], D[3], D[4]))
CALL(taps_split, op->taps_split(p[0], p[1], D[0], D[1], D[2]))
CALL(taps_merge, op->taps_merge(p[0], p[1], D[0], D[1], D[2]))
CALL(up2conv_compose, op->up2conv_compose(p[0], p[1], p[2], p[3], D[0], D[1]))
CALL(up2conv_decompose, op->up2conv_decompose(p[0], p[1], p[2], p[3], D[0], D[1]))
CALL(pad_replicate, op->pad_replicate(p[0], p[1], D[0], D[1], D[2]))
CALL(pad_replicate_bwd, op->pad_replicate_bwd(p[0], p[1], D[0], D[1], D[2]))
CALL(pixel_shuffle2, op->pixel_shuffle2(p[0], p[1], D[0], D[1], D[2]))
CALL(pixel_unshuffle2, op->pixel_unshuffle2(p[0], p[1], D[0], D[1], D[2]))
CALL(up2_ring_cols, op->up2_ring_cols(p[0], p[1], D[0], D[1], D[2], D[3]))
CALL(up2_ring_cols_bwd, op->up2_ring_cols_bwd(p[0], p[1], D[0], D[1], D[2], D[3]))
CALL(ring_set, op->ring_set(p[0], p[1], p[2], D[0], D[1], D[2], D[3]))
CALL(ring_take, op->ring_take(p[0], p[1], D[0], D[1], D[2], D[3]))
CALL(l2norm_rows, op->l2norm_rows(p[0], p[1], D[0], D[1], F[0]))
CALL(ccam_bwd, op->ccam_bwd(p[0], p[1], p[2], p[3], p[4], D[0], D[1], D[2], p[5]))

static size_t ws_dw(const struct avs_ops *op, const struct kase *k)
{
    (void)op;
    return avs_dwconv3_ws(k->d[0], k->d[1], k->d[3]);
}
static size_t ws_ccam(const struct avs_ops *op, const struct kase *k)
{
    (void)op;
    return (size_t)k->d[0] * k->d[2];
}

static struct kase with_dims(const char *op, call_fn call, const int *d, int nd)
{
    struct kase k = new_case(op, call);
    memcpy(k.d, d, (size_t)nd * sizeof(int));
    int m = snprintf(k.shape, sizeof k.shape, "dims");
    for (int i = 0; i < nd && m < (int)sizeof k.shape - 12; i++)
        m += snprintf(k.shape + m, sizeof k.shape - m, " %d", d[i]);
    return k;
}

static const int small[] = {1, 2, 3, 7, 16, 33}, maps[] = {1, 2, 5, 8, 13};

static void test_elementwise(void)
{
    for (int t = 0; t < 4; t++) {
        int n = t == 0 ? 1 : irand(2, 5000), rows = pick(small, 6), cols = pick(small, 6);
        struct kase k;
        k = with_dims("bias_fwd", call_bias_fwd, (int[]){rows, cols}, 2);
        ARGS(&k, A(rows * cols, RAND, 1), A(cols, RAND, 0)); check(&k);
        k = with_dims("bias_bwd", call_bias_bwd, (int[]){rows, cols}, 2);
        ARGS(&k, A(cols, RAND, 1), A(rows * cols, RAND, 0)); check(&k);
        static const struct { const char *name; call_fn f, b; int bwd_on_y; } acts[] = {
            {"relu", call_relu_fwd, call_relu_bwd, 0},
            {"gelu", call_gelu_fwd, call_gelu_bwd, 0},
            {"sigmoid", call_sigmoid_fwd, call_sigmoid_bwd, 1},
        };
        for (int a = 0; a < 3; a++) {
            k = with_dims(acts[a].name, acts[a].f, (int[]){n}, 1);
            ARGS(&k, A(n, ZERO, 1), A(n, RAND, 0)); check(&k);
            k = with_dims(acts[a].name, acts[a].b, (int[]){n}, 1);
            ARGS(&k, A(n, RAND, 1), A(n, RAND, 0), A(n, acts[a].bwd_on_y ? UNIT : RAND, 0)); check(&k);
        }
        k = with_dims("axpy", call_axpy, (int[]){n}, 1);
        k.f[0] = -0.37f;
        ARGS(&k, A(n, RAND, 1), A(n, RAND, 0)); check(&k);
        k = with_dims("softmax_fwd", call_softmax_fwd, (int[]){rows, cols}, 2);
        ARGS(&k, A(rows * cols, ZERO, 1), A(rows * cols, RAND, 0)); check(&k);
        k = with_dims("softmax_bwd", call_softmax_bwd, (int[]){rows, cols}, 2);
        ARGS(&k, A(rows * cols, RAND, 1), A(rows * cols, RAND, 0), A(rows * cols, UNIT, 0)); check(&k);
        k = with_dims("l2norm_rows", call_l2norm_rows, (int[]){rows, cols}, 2);
        k.f[0] = 1e-12f;
        ARGS(&k, A(rows * cols, ZERO, 1), A(rows * cols, RAND, 0)); check(&k);
        k = with_dims("mean_fwd", call_mean_fwd, (int[]){rows, cols}, 2);
        ARGS(&k, A(rows, ZERO, 1), A(rows * cols, RAND, 0)); check(&k);
        k = with_dims("mean_bwd", call_mean_bwd, (int[]){rows, cols}, 2);
        ARGS(&k, A(rows * cols, RAND, 1), A(rows, RAND, 0)); check(&k);
    }
}

static void test_norms(void)
{
    for (int t = 0; t < 6; t++) {
        int outer = pick(small, 6), C = pick(small, 6), inner = t % 2 ? 1 : pick(maps, 5);
        size_t n = (size_t)outer * C * inner, s = (size_t)outer * inner;
        struct kase k = with_dims("layernorm_fwd", call_layernorm_fwd, (int[]){outer, C, inner}, 3);
        k.f[0] = t % 3 ? 1e-6f : 1e-5f;
        ARGS(&k, A(n, ZERO, 1), A(s, ZERO, 1), A(s, ZERO, 1), A(n, RAND, 0), A(C, RAND, 0), A(C, RAND, 0));
        check(&k);
        k = with_dims("layernorm_bwd", call_layernorm_bwd, (int[]){outer, C, inner}, 3);
        ARGS(&k, A(n, RAND, 1), A(C, RAND, 1), A(C, RAND, 1), A(n, RAND, 0), A(n, RAND, 0), A(s, RAND, 0),
             A(s, POS, 0), A(C, RAND, 0));
        check(&k);
        int N = pick(small, 6), HW = pick(maps, 5) * pick(maps, 5), train = t % 2;
        n = (size_t)N * C * HW;
        k = with_dims("batchnorm_fwd", call_batchnorm_fwd, (int[]){N, C, HW, train}, 4);
        k.f[0] = 1e-5f, k.f[1] = 0.1f;
        ARGS(&k, A(n, ZERO, 1), A(C, ZERO, train), A(C, ZERO, train), A(n, RAND, 0), A(C, RAND, 0),
             A(C, RAND, 0), A(C, RAND, 1), A(C, POS, 1));
        check(&k);
        k = with_dims("batchnorm_bwd", call_batchnorm_bwd, (int[]){N, C, HW, train}, 4);
        ARGS(&k, A(n, RAND, 1), A(C, RAND, 1), A(C, RAND, 1), A(n, RAND, 0), A(n, RAND, 0), A(C, RAND, 0),
             A(C, POS, 0), A(C, RAND, 0));
        check(&k);
    }
}

static void test_maps(void)
{
    for (int t = 0; t < 6; t++) {
        int N = pick(small, 4), C = pick(small, 6), H = pick(maps, 5), W = pick(maps, 5);
        int HW = H * W, NC = N * C, ac = t % 2;
        int OH = t == 0 ? 1 : pick(maps, 5) * 3, OW = t == 0 ? 1 : pick(maps, 5) * 2 + 1;
        struct kase k = with_dims("resize_fwd", call_resize_fwd, (int[]){NC, H, W, OH, OW, ac}, 6);
        ARGS(&k, A(NC * OH * OW, ZERO, 1), A(NC * HW, RAND, 0)); check(&k);
        k = with_dims("resize_bwd", call_resize_bwd, (int[]){NC, H, W, OH, OW, ac}, 6);
        ARGS(&k, A(NC * HW, RAND, 1), A(NC * OH * OW, RAND, 0)); check(&k);
        k = with_dims("chmean_fwd", call_chmean_fwd, (int[]){N, C, HW}, 3);
        ARGS(&k, A(N * HW, ZERO, 1), A(NC * HW, RAND, 0)); check(&k);
        k = with_dims("chmean_bwd", call_chmean_bwd, (int[]){N, C, HW}, 3);
        ARGS(&k, A(NC * HW, RAND, 1), A(N * HW, RAND, 0)); check(&k);
        int Cy = C + irand(0, 5), c0 = irand(0, Cy - C);
        k = with_dims("concat_fwd", call_concat_fwd, (int[]){N, C, HW, Cy, c0}, 5);
        ARGS(&k, A(N * Cy * HW, RAND, 1), A(NC * HW, RAND, 0)); check(&k);
        k = with_dims("concat_bwd", call_concat_bwd, (int[]){N, C, HW, Cy, c0}, 5);
        ARGS(&k, A(NC * HW, RAND, 1), A(N * Cy * HW, RAND, 0)); check(&k);
        for (int b = 0; b < 8; b++) {
            struct avs_bcast bc = {N, C, HW, b & 1, (b >> 1) & 1, (b >> 2) & 1};
            size_t sn = (size_t)(bc.sN ? N : 1) * (bc.sC ? C : 1) * (bc.sHW ? HW : 1), xn = (size_t)NC * HW;
            k = with_dims("add_fwd", call_add_fwd, (int[]){N, C, HW, bc.sN, bc.sC, bc.sHW}, 6);
            k.bc = bc;
            ARGS(&k, A(xn, ZERO, 1), A(xn, RAND, 0), A(sn, RAND, 0)); check(&k);
            k.op = "add_bwd", k.call = call_add_bwd;
            ARGS(&k, A(sn, RAND, 1), A(xn, RAND, 0)); check(&k);
            k.op = "mul_fwd", k.call = call_mul_fwd;
            ARGS(&k, A(xn, ZERO, 1), A(xn, RAND, 0), A(sn, RAND, 0)); check(&k);
            k.op = "mul_bwd", k.call = call_mul_bwd;
            ARGS(&k, A(b == 3 ? 0 : xn, RAND, 1), A(b == 5 ? 0 : sn, RAND, 1), A(xn, RAND, 0),
                 A(xn, RAND, 0), A(sn, RAND, 0));
            check(&k);
        }
        k = with_dims("ccam_bwd", call_ccam_bwd, (int[]){N, C, HW}, 3);
        ARGS(&k, A(NC * HW, RAND, 1), A(NC * HW, RAND, 0), A(NC, UNIT, 0), A(NC * HW, RAND, 0),
             A(N * HW, UNIT, 0), AWS(ws_ccam));
        check(&k);
    }
}

static void test_losses(void)
{
    for (int t = 0; t < 4; t++) {
        int B = pick(small, 4), n = t == 0 ? 1 : irand(2, 3000), C = irand(2, 9);
        struct kase k = with_dims("bce_logits", call_bce_logits, (int[]){B, n}, 2);
        k.f[0] = t % 2 ? 1.0f : 0.25f, k.returns = 1;
        ARGS(&k, A(B * n, ZERO, 1), A(B * n, RAND, 0), A(B * n, UNIT, 0)); check(&k);
        k.op = "dice", k.call = call_dice;
        check(&k);
        int rows = irand(1, 40), cols = irand(1, 300);
        k = with_dims("softmax_kl", call_softmax_kl, (int[]){rows, cols}, 2);
        k.f[0] = 0.125f, k.returns = 1;
        ARGS(&k, A(rows * cols, ZERO, 1), A(t == 1 ? 0 : rows * cols, ZERO, 1),
             A(rows * cols, RAND, 0), A(rows * cols, RAND, 0));
        check(&k);
        k = with_dims("softmax_ce", call_softmax_ce, (int[]){B, n}, 2);
        k.d[11] = C, k.f[0] = 1.0f, k.returns = 1;
        ARGS(&k, A((size_t)B * C * n, ZERO, 1), A((size_t)B * C * n, RAND, 0), A(B * n, LABEL, 0));
        check(&k);
        int m = irand(1, 70000);
        k = with_dims("adam", call_adam, (int[]){m, irand(1, 50)}, 2);
        k.f[0] = t % 2 ? 0.0f : 1e-4f;
        ARGS(&k, A(m, RAND, 1), A(m, RAND, 1), A(m, RAND, 1), A(m, POS, 1)); check(&k);
        k.op = "adam_zero", k.call = call_adam_zero;
        check(&k);
    }
}

static void test_tokens(void)
{
    for (int t = 0; t < 5; t++) {
        int N = pick(small, 3), H = pick(maps, 5), W = pick(maps, 5), C = pick(small, 6), L = H * W;
        size_t n = (size_t)N * L * C;
        struct kase k = with_dims("transpose", call_transpose, (int[]){N, L, C}, 3);
        ARGS(&k, A(n, ZERO, 1), A(n, RAND, 0)); check(&k);
        k = with_dims("dwconv3_fwd", call_dwconv3_fwd, (int[]){N, H, W, C}, 4);
        ARGS(&k, A(n, ZERO, 1), A(n, RAND, 0), A(9 * C, RAND, 0), A(C, RAND, 0), AWS(ws_dw)); check(&k);
        k.op = "dwconv3_bwd_data", k.call = call_dwconv3_bwd_data;
        ARGS(&k, A(n, RAND, 1), A(n, RAND, 0), A(9 * C, RAND, 0), AWS(ws_dw)); check(&k);
        k.op = "dwconv3_bwd_filter", k.call = call_dwconv3_bwd_filter;
        ARGS(&k, A(9 * C, RAND, 1), A(C, RAND, 1), A(n, RAND, 0), A(n, RAND, 0), AWS(ws_dw)); check(&k);
        k = with_dims("tokmean_fwd", call_tokmean_fwd, (int[]){N, L, C}, 3);
        ARGS(&k, A(N * C, ZERO, 1), A(n, RAND, 0)); check(&k);
        k.op = "tokmean_bwd", k.call = call_tokmean_bwd;
        ARGS(&k, A(n, RAND, 1), A(N * C, RAND, 0)); check(&k);
        int NC = N * C, H2 = 2 * H, W2 = 2 * W;
        k = with_dims("maxpool2_fwd", call_maxpool2_fwd, (int[]){NC, H2, W2}, 3);
        ARGS(&k, A(NC * H * W, ZERO, 1), A(NC * H2 * W2, RAND, 0)); check(&k);
        int PH = H2 + (t & 1), PW = W2 + 1 - (t & 1), QH = (PH + 1) / 2, QW = (PW + 1) / 2;
        k = with_dims("maxpool3s2_fwd", call_maxpool3s2_fwd, (int[]){NC, PH, PW}, 3);
        ARGS(&k, A(NC * QH * QW, ZERO, 1), A(NC * PH * PW, RAND, 0)); check(&k);
        k.op = "maxpool3s2_bwd", k.call = call_maxpool3s2_bwd;
        ARGS(&k, A(NC * PH * PW, RAND, 1), A(NC * QH * QW, RAND, 0), A(NC * PH * PW, POS, 0)); check(&k);
        k = with_dims("avgpool2_fwd", call_avgpool2_fwd, (int[]){NC, H2 + 1, W2 + 1}, 3);
        ARGS(&k, A(NC * H * W, ZERO, 1), A(NC * (H2 + 1) * (W2 + 1), RAND, 0)); check(&k);
        k = with_dims("rowmax_fwd", call_rowmax_fwd, (int[]){NC * H, W}, 2);
        ARGS(&k, A(NC * H, ZERO, 1), A(NC * H * W, RAND, 0)); check(&k);
        /* adaptive pool: windows that tile (t even) or overlap (t odd) */
        int OH = t & 1 ? irand(1, H2 + 3) : H, OW = t & 1 ? irand(1, W2 + 3) : W;
        k = with_dims("adapool_fwd", call_adapool_fwd, (int[]){NC, H2, W2, OH, OW}, 5);
        ARGS(&k, A(NC * OH * OW, ZERO, 1), A(NC * H2 * W2, RAND, 0)); check(&k);
        k.op = "adapool_bwd", k.call = call_adapool_bwd;
        ARGS(&k, A(NC * H2 * W2, RAND, 1), A(NC * OH * OW, RAND, 0)); check(&k);
    }
}

static void test_head(void)
{
    for (int t = 0; t < 5; t++) {
        int B = pick(small, 3), K = pick(small, 5), C = pick(small, 5), T = irand(1, 9);
        int H = pick(maps, 5), W = pick(maps, 5), NC = B * C;
        struct kase k = with_dims("taps_split", call_taps_split, (int[]){K, C, T}, 3);
        ARGS(&k, A(K * C * T, ZERO, 1), A(K * C * T, RAND, 0)); check(&k);
        k.op = "taps_merge", k.call = call_taps_merge;
        ARGS(&k, A(K * C * T, RAND, 1), A(K * C * T, RAND, 0)); check(&k);
        k = with_dims("up2conv_compose", call_up2conv_compose, (int[]){K, C}, 2);
        ARGS(&k, A(36 * K * C, ZERO, 1), A(4 * K, ZERO, 1), A(9 * K * C, RAND, 0), A(K, RAND, 0)); check(&k);
        k.op = "up2conv_decompose", k.call = call_up2conv_decompose;
        ARGS(&k, A(9 * K * C, RAND, 1), A(K, RAND, 1), A(36 * K * C, RAND, 0), A(4 * K, RAND, 0)); check(&k);
        size_t hp = (size_t)NC * (H + 2) * (W + 2);
        k = with_dims("pad_replicate", call_pad_replicate, (int[]){NC, H, W}, 3);
        ARGS(&k, A(hp, ZERO, 1), A(NC * H * W, RAND, 0)); check(&k);
        k.op = "pad_replicate_bwd", k.call = call_pad_replicate_bwd;
        ARGS(&k, A(NC * H * W, RAND, 1), A(hp, RAND, 0)); check(&k);
        k = with_dims("pixel_shuffle2", call_pixel_shuffle2, (int[]){NC, H, W}, 3);
        ARGS(&k, A(4 * NC * H * W, ZERO, 1), A(4 * NC * H * W, RAND, 0)); check(&k);
        k.op = "pixel_unshuffle2", k.call = call_pixel_unshuffle2;
        check(&k);
        int rn = avs_ring_n(2 * H, 2 * W);
        k = with_dims("up2_ring_cols", call_up2_ring_cols, (int[]){B, C, H, W}, 4);
        ARGS(&k, A((size_t)C * 9 * B * rn, ZERO, 1), A(hp, RAND, 0)); check(&k);
        k.op = "up2_ring_cols_bwd", k.call = call_up2_ring_cols_bwd;
        ARGS(&k, A(hp, RAND, 1), A((size_t)C * 9 * B * rn, RAND, 0)); check(&k);
        int P = pick(maps, 5), Q = pick(maps, 5), pn = avs_ring_n(P, Q);
        k = with_dims("ring_set", call_ring_set, (int[]){B, K, P, Q}, 4);
        ARGS(&k, A((size_t)B * K * P * Q, RAND, 1), A((size_t)K * B * pn, RAND, 0), A(t % 2 ? K : 0, RAND, 0));
        check(&k);
        k.op = "ring_take", k.call = call_ring_take;
        ARGS(&k, A((size_t)K * B * pn, ZERO, 1), A((size_t)B * K * P * Q, RAND, 1)); check(&k);
    }
}

/* Determinism on the device: the same call twice gives the same bits (conv bwd filter and the
 * reductions are where atomics would show). */
static void test_repeat(void)
{
    struct avs_conv2d g;
    avs_conv2d_geom(&g, 4, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1);
    struct kase k = new_case("conv2d_bwd_filter", call_conv_bwd_filter);
    k.cg = g;
    snprintf(k.shape, sizeof k.shape, "repeat");
    size_t in = (size_t)4 * 32 * 28 * 28, w = 32 * 32 * 9;
    ARGS(&k, A(w, ZERO, 1), A(32, ZERO, 1), A(in, RAND, 0), A(in, RAND, 0), AWS(ws_conv));
    uint64_t saved = rng;
    struct result a[2], b[2];
    run_case(&k, a);
    rng = saved;
    run_case(&k, b);
    CHECK(!memcmp(a[1].v[0], b[1].v[0], w * sizeof(float)) && !memcmp(a[1].v[1], b[1].v[1], 32 * sizeof(float)),
          "conv2d_bwd_filter twice on cuda: not the same bits");
    free_results(a, k.na);
    free_results(b, k.na);
}

static int run_all(void)
{
    char why[256];
    if (avs_cu_device_count(why, sizeof why) == 0)
        SKIP("no CUDA device (%s)", why);
    struct avs_err err;
    if (avs_backend_use("cuda:0", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpu = avs_backend_cuda();
    avs_backend_set(avs_backend_cpu());
    printf("cuda:0 %s\n", avs_cu_device_name());
    test_gemm();
    test_conv2d();
    test_tapconv();
    test_elementwise();
    test_norms();
    test_maps();
    test_losses();
    test_tokens();
    test_head();
    test_repeat();
    printf("%d cases\n", cases_run);
    return check_summary("test_cuda_ops");
}
#endif

int main(void)
{
#ifdef AVS_USE_CUDA
    return run_all();
#else
    SKIP("this build has no CUDA backend (make CUDA=1)");
#endif
}
