/* tests/test_backend_ops.c: every primitive of the backend table (backend/ops.h) and the
 * layers of model/nn.h, forward and backward, on every registered backend (tests/backends.h):
 *  - against PyTorch (tests/fixtures/model/prims.safetensors from tests/gen/model_prims.py,
 *    float64 references): relative L2 error <= 1e-5 per tensor;
 *  - against central finite differences in double precision on the same tiny shapes;
 *  - bit-identical results for 1 and 2 threads;
 *  - every backend's results bit-identical to the cpu backend's.
 * Inputs live in the backend's memory (uploaded from the fixtures) and results come back by
 * download, so on the guard backend an op that touches host memory aborts the test.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/common.h"
#include "core/safetensors.h"
#include "model/nn.h"
#include "tests/backends.h"
#include "tests/check.h"

#define FIX "tests/fixtures/model/prims.safetensors"

static struct avs_st_file *fx;

/* A copy of fixture tensor "<case>.<what>" (numel in *n); NULL if absent. */
static float *fget(const char *cs, const char *what, size_t *n)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, what);
    const struct avs_st_tensor *t = avs_st_find(fx, name);
    if (!t)
        return NULL;
    float *p = avs_malloc(t->numel * sizeof(float) + 4);
    struct avs_err err;
    AVS_ASSERT(avs_st_read_f32(t, p, t->numel, &err) == 0);
    if (n)
        *n = t->numel;
    return p;
}

/* rel L2 error <= tol; prints the worst element on failure */
static void compare(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double num = 0, den = 0, worst = -1;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
        if (fabs(d) > worst)
            worst = fabs(d), wi = i;
    }
    double e = den > 0 ? sqrt(num / den) : sqrt(num);
    CHECK(e <= tol, "%s: rel L2 error %.3g > %.1g; worst element %zu: got %.9g want %.9g", what, e,
          tol, wi, n ? got[wi] : 0.0f, n ? want[wi] : 0.0f);
}

/* ---- a primitive under test: up to 3 inputs, one output, all in the backend's memory ---- */

struct prim {
    const char *name;
    int nin;
    float *in[3];  /* [n_in[k]] on the backend */
    float *hin[3]; /* the same on the host: finite differences change these and upload */
    size_t n_in[3];
    const char *in_name[3];
    int no_grad[3]; /* input without a gradient (e.g. BCE targets) */
    float *out;     /* [n_out] on the backend */
    float *hout;    /* [n_out] host copy */
    size_t n_out;
    void (*fwd)(struct prim *p);
    /* dy and din: backend memory */
    void (*bwd)(struct prim *p, const float *dy, float *const din[3]);
    /* extra state, backend memory */
    struct avs_conv2d g;
    float *ws, *s1, *s2, *s3;
    int i[8];
    float f[4];
};

static float *dev(size_t n)
{
    return avs_dev_alloc(n, "a test tensor");
}

/* output [n] on the backend and its host copy */
static void prim_out(struct prim *p, size_t n)
{
    p->n_out = n;
    p->out = dev(n);
    p->hout = avs_malloc(n * sizeof(float));
}

static void prim_free(struct prim *p)
{
    for (int k = 0; k < p->nin; k++)
        free(p->hin[k]), avs_dev_free(&p->in[k]);
    avs_dev_free(&p->out), free(p->hout);
    avs_dev_free(&p->ws), avs_dev_free(&p->s1), avs_dev_free(&p->s2), avs_dev_free(&p->s3);
}

/* L = sum(out * r) in double */
static double loss_of(struct prim *p, const float *r)
{
    p->fwd(p);
    avs_dev_download(p->hout, p->out, p->n_out);
    double L = 0;
    for (size_t i = 0; i < p->n_out; i++)
        L += (double)p->hout[i] * r[i];
    return L;
}

static unsigned long long rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* din[k]: zeroed gradients on the backend, one per input */
static void grads_alloc(const struct prim *p, float *din[3])
{
    for (int k = 0; k < 3; k++)
        din[k] = k < p->nin ? dev(p->n_in[k]) : NULL;
}

static void grads_free(float *din[3])
{
    for (int k = 0; k < 3; k++)
        avs_dev_free(&din[k]);
}

/* Finite differences (central, h) of every input element against the analytic backward. */
static void fd_check(struct prim *p, float h, double tol)
{
    float *r = avs_malloc(p->n_out * sizeof(float));
    for (size_t i = 0; i < p->n_out; i++)
        r[i] = frand();
    float *dr = avs_dev_from_host(r, p->n_out), *din[3];
    grads_alloc(p, din);
    p->fwd(p);
    p->bwd(p, dr, din);
    for (int k = 0; k < p->nin; k++) {
        if (p->no_grad[k])
            continue;
        float *g = avs_host_from_dev(din[k], p->n_in[k]);
        char what[96];
        snprintf(what, sizeof what, "%s backward d%s (random dy)", p->name, p->in_name[k]);
        same_bits(what, g, p->n_in[k]);
        double *num = avs_malloc(p->n_in[k] * sizeof(double));
        double e2 = 0, n2 = 0;
        for (size_t i = 0; i < p->n_in[k]; i++) {
            float *x = &p->hin[k][i], x0 = *x;
            *x = x0 + h;
            avs_dev_upload(p->in[k] + i, x, 1);
            double lp = loss_of(p, r);
            *x = x0 - h;
            avs_dev_upload(p->in[k] + i, x, 1);
            double lm = loss_of(p, r);
            *x = x0;
            avs_dev_upload(p->in[k] + i, x, 1);
            num[i] = (lp - lm) / (2.0 * h);
            e2 += (num[i] - g[i]) * (num[i] - g[i]);
            n2 += num[i] * num[i];
        }
        double e = n2 > 0 ? sqrt(e2 / n2) : sqrt(e2);
        CHECK(e <= tol, "%s on %s: finite differences vs backward for %s: rel L2 error %.3g",
              p->name, backend_now()->name, p->in_name[k], e);
        free(num), free(g);
    }
    grads_free(din);
    avs_dev_free(&dr);
    free(r);
}

/* Forward and backward against the PyTorch fixture "<case>.{y,dy,d<input>}". */
static void torch_check(struct prim *p, const char *cs)
{
    size_t n;
    float *y = fget(cs, "y", &n), *dy = fget(cs, "dy", NULL);
    CHECK(y && dy && n == p->n_out, "%s: fixture has %s.y [%zu], expected %zu", p->name, cs, n, p->n_out);
    if (!y || !dy || n != p->n_out) {
        free(y), free(dy);
        return;
    }
    p->fwd(p);
    avs_dev_download(p->hout, p->out, n);
    char what[160];
    snprintf(what, sizeof what, "%s forward on %s", p->name, backend_now()->name);
    compare(what, p->hout, y, n, 1e-5);
    snprintf(what, sizeof what, "%s forward", p->name);
    same_bits(what, p->hout, n);
    float *ddy = avs_dev_from_host(dy, n), *din[3];
    grads_alloc(p, din);
    p->bwd(p, ddy, din);
    for (int k = 0; k < p->nin; k++) {
        char dn[32];
        snprintf(dn, sizeof dn, "d%s", p->in_name[k]);
        float *want = fget(cs, dn, &n);
        if (!want || p->no_grad[k]) {
            free(want);
            continue;
        }
        float *got = avs_host_from_dev(din[k], p->n_in[k]);
        snprintf(what, sizeof what, "%s gradient %s", p->name, dn);
        same_bits(what, got, p->n_in[k]);
        snprintf(what, sizeof what, "%s gradient %s on %s", p->name, dn, backend_now()->name);
        CHECK(n == p->n_in[k], "%s: size %zu vs %zu", what, n, p->n_in[k]);
        if (n == p->n_in[k])
            compare(what, got, want, n, 1e-5);
        free(want), free(got);
    }
    grads_free(din);
    avs_dev_free(&ddy);
    free(y), free(dy);
}

/* inputs from the fixture (names in in_name), on the host and on the backend */
static void load_inputs(struct prim *p, const char *cs)
{
    for (int k = 0; k < p->nin; k++) {
        p->hin[k] = fget(cs, p->in_name[k], &p->n_in[k]);
        AVS_ASSERT(p->hin[k]);
        p->in[k] = avs_dev_from_host(p->hin[k], p->n_in[k]);
    }
}

/* ---- conv2d ---- */

static void conv_fwd(struct prim *p)
{
    avs_ops()->conv2d_fwd(p->out, p->in[0], p->in[1], p->in[2], &p->g, p->ws);
}

static void conv_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_ops()->conv2d_bwd_data(din[0], dy, p->in[1], &p->g, p->ws);
    avs_ops()->conv2d_bwd_filter(din[1], din[2], dy, p->in[0], &p->g, p->ws);
}

static const struct {
    const char *name;
    int N, C, H, W, K, R, stride, pad, dil, groups;
} convs[] = {
    {"conv_3x3", 2, 3, 6, 5, 4, 3, 1, 1, 1, 1}, {"conv_1x1", 2, 5, 4, 3, 3, 1, 1, 0, 1, 1},
    {"conv_dil2", 1, 3, 7, 7, 2, 3, 1, 2, 2, 1}, {"conv_dil6", 2, 2, 4, 4, 3, 3, 1, 6, 6, 1},
    {"conv_s2", 2, 3, 9, 8, 4, 3, 2, 1, 1, 1},  {"conv_7s4", 1, 3, 15, 13, 4, 7, 4, 3, 1, 1},
    {"conv_g2", 2, 4, 5, 5, 6, 3, 1, 1, 1, 2},  {"conv_dw", 2, 4, 5, 6, 4, 3, 1, 1, 1, 4},
};

static void test_convs(void)
{
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        struct prim p = {.name = convs[i].name, .nin = 3, .in_name = {"x", "w", "b"}};
        load_inputs(&p, p.name);
        avs_conv2d_geom(&p.g, convs[i].N, convs[i].C, convs[i].H, convs[i].W, convs[i].K,
                        convs[i].R, convs[i].R, convs[i].stride, convs[i].pad, convs[i].dil,
                        convs[i].groups);
        prim_out(&p, (size_t)p.g.N * p.g.K * p.g.P * p.g.Q);
        p.ws = dev(avs_conv2d_ws(&p.g));
        p.fwd = conv_fwd, p.bwd = conv_bwd;
        torch_check(&p, p.name);
        fd_check(&p, 1e-2f, 1e-3);
        prim_free(&p);
    }
}

/* ---- linear ---- */

static void lin_fwd(struct prim *p)
{
    avs_linear_fwd(p->out, p->in[0], p->in[1], p->in[2], 3, 5, 4);
}

static void lin_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_linear_bwd(din[0], din[1], din[2], dy, p->in[0], p->in[1], 3, 5, 4);
}

/* ---- elementwise ---- */

static void act_fwd(struct prim *p)
{
    const struct avs_ops *op = avs_ops();
    void (*f[3])(float *, const float *, size_t) = {op->relu_fwd, op->gelu_fwd, op->sigmoid_fwd};
    f[p->i[0]](p->out, p->in[0], p->n_out);
}

static void act_bwd(struct prim *p, const float *dy, float *const din[3])
{
    const struct avs_ops *op = avs_ops();
    if (p->i[0] == 0)
        op->relu_bwd(din[0], dy, p->in[0], p->n_out);
    else if (p->i[0] == 1)
        op->gelu_bwd(din[0], dy, p->in[0], p->n_out);
    else
        op->sigmoid_bwd(din[0], dy, p->out, p->n_out);
}

static void smax_fwd(struct prim *p)
{
    avs_ops()->softmax_fwd(p->out, p->in[0], 3, 7);
}

static void smax_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_ops()->softmax_bwd(din[0], dy, p->out, 3, 7);
}

/* i: outer, C, inner; f[0] eps */
static void ln_fwd(struct prim *p)
{
    avs_ops()->layernorm_fwd(p->out, p->s1, p->s2, p->in[0], p->in[1], p->in[2], p->i[0], p->i[1],
                             p->i[2], p->f[0]);
}

static void ln_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_ops()->layernorm_bwd(din[0], din[1], din[2], dy, p->in[0], p->s1, p->s2, p->in[1], p->i[0],
                             p->i[1], p->i[2]);
}

/* i[0] train; s3 [12] = running mean|var before (0..5) and after (6..11) the forward: every
 * forward starts from the same running stats (finite differences run it many times) */
static void bn_fwd(struct prim *p)
{
    avs_ops()->copy(p->s3 + 6, p->s3, 6 * sizeof(float));
    avs_ops()->batchnorm_fwd(p->out, p->s1, p->s2, p->in[0], p->in[1], p->in[2], p->s3 + 6,
                             p->s3 + 9, 2, 3, 20, 1e-5f, 0.1f, p->i[0]);
}

static void bn_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_ops()->batchnorm_bwd(din[0], din[1], din[2], dy, p->in[0], p->s1, p->s2, p->in[1], 2, 3,
                             20, p->i[0]);
}

/* i: NC H W OH OW ac */
static void rs_fwd(struct prim *p)
{
    avs_ops()->resize_fwd(p->out, p->in[0], p->i[0], p->i[1], p->i[2], p->i[3], p->i[4], p->i[5]);
}

static void rs_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_ops()->resize_bwd(din[0], dy, p->i[0], p->i[1], p->i[2], p->i[3], p->i[4], p->i[5]);
}

static void gap_fwd(struct prim *p)
{
    avs_ops()->mean_fwd(p->out, p->in[0], 6, 20);
}

static void gap_bwd(struct prim *p, const float *dy, float *const din[3])
{
    (void)p;
    avs_ops()->mean_bwd(din[0], dy, 6, 20);
}

static void chm_fwd(struct prim *p)
{
    avs_ops()->chmean_fwd(p->out, p->in[0], 2, 3, 20);
}

static void chm_bwd(struct prim *p, const float *dy, float *const din[3])
{
    (void)p;
    avs_ops()->chmean_bwd(din[0], dy, 2, 3, 20);
}

static void cat_fwd(struct prim *p)
{
    avs_ops()->concat_fwd(p->out, p->in[0], 2, 3, 4, 5, 0);
    avs_ops()->concat_fwd(p->out, p->in[1], 2, 2, 4, 5, 3);
}

static void cat_bwd(struct prim *p, const float *dy, float *const din[3])
{
    (void)p;
    avs_ops()->concat_bwd(din[0], dy, 2, 3, 4, 5, 0);
    avs_ops()->concat_bwd(din[1], dy, 2, 2, 4, 5, 3);
}

/* i: sN sC sHW, i[3]: 0 add 1 mul */
static void bc_fwd(struct prim *p)
{
    struct avs_bcast bc = {2, 3, 4, p->i[0], p->i[1], p->i[2]};
    (p->i[3] ? avs_ops()->mul_fwd : avs_ops()->add_fwd)(p->out, p->in[0], p->in[1], &bc);
}

static void bc_bwd(struct prim *p, const float *dy, float *const din[3])
{
    struct avs_bcast bc = {2, 3, 4, p->i[0], p->i[1], p->i[2]};
    if (p->i[3])
        avs_ops()->mul_bwd(din[0], din[1], dy, p->in[0], p->in[1], &bc);
    else {
        avs_ops()->axpy(din[0], 1.0f, dy, 24);
        avs_ops()->add_bwd(din[1], dy, &bc);
    }
}

/* loss = BCE + Dice of logits in[0] against targets in[1], [3, 20]; the scalar goes up to out */
static void loss_fwd(struct prim *p)
{
    float L = (float)(avs_ops()->bce_logits(NULL, p->in[0], p->in[1], 3, 20, 1.0f) +
                      avs_ops()->dice(NULL, p->in[0], p->in[1], 3, 20, 1.0f));
    avs_dev_upload(p->out, &L, 1);
}

/* s1, s2 [60]: the two losses' gradients; din += s1 + s2 (their sum first, as one term) */
static void loss_bwd(struct prim *p, const float *dy, float *const din[3])
{
    const struct avs_ops *op = avs_ops();
    float scale;
    avs_dev_download(&scale, dy, 1);
    op->bce_logits(p->s1, p->in[0], p->in[1], 3, 20, scale);
    op->dice(p->s2, p->in[0], p->in[1], 3, 20, scale);
    op->axpy(p->s1, 1.0f, p->s2, 60);
    op->axpy(din[0], 1.0f, p->s1, 60);
}

/* s1 [8], s2 [72], s3 [18]: what the forward saves; ws [18]: the backward's scratch */
static void ccam_fwd(struct prim *p)
{
    avs_ccam_fwd(p->out, p->s1, p->s2, p->s3, p->in[0], p->in[1], 2, 4, 9);
}

static void ccam_bwd(struct prim *p, const float *dy, float *const din[3])
{
    avs_ccam_bwd(din[0], dy, p->s1, p->s2, p->s3, 2, 4, 9, p->ws);
}

static void run_prim(struct prim *p, const char *cs, int nout, float h, double tol)
{
    load_inputs(p, cs);
    prim_out(p, (size_t)nout);
    torch_check(p, cs);
    fd_check(p, h, tol);
    prim_free(p);
}

static void test_small_prims(void)
{
    struct prim p;
    p = (struct prim){.name = "linear", .nin = 3, .in_name = {"x", "w", "b"}, .fwd = lin_fwd, .bwd = lin_bwd};
    run_prim(&p, "linear", 12, 1e-2f, 1e-3);
    static const char *acts[3] = {"relu", "gelu", "sigmoid"};
    for (int a = 0; a < 3; a++) {
        p = (struct prim){.name = acts[a], .nin = 1, .in_name = {"x"}, .fwd = act_fwd, .bwd = act_bwd, .i = {a}};
        run_prim(&p, acts[a], 40, 1e-3f, 1e-3);
    }
    p = (struct prim){.name = "softmax", .nin = 1, .in_name = {"x"}, .fwd = smax_fwd, .bwd = smax_bwd};
    run_prim(&p, "softmax", 21, 1e-2f, 1e-3);
    p = (struct prim){.name = "layernorm last dim", .nin = 3, .in_name = {"x", "w", "b"}, .fwd = ln_fwd,
                      .bwd = ln_bwd, .i = {4, 6, 1}, .f = {1e-6f}};
    p.s1 = dev(4), p.s2 = dev(4);
    run_prim(&p, "ln_last", 24, 1e-2f, 2e-3);
    p = (struct prim){.name = "layernorm channels", .nin = 3, .in_name = {"x", "w", "b"}, .fwd = ln_fwd,
                      .bwd = ln_bwd, .i = {2, 5, 12}, .f = {1e-5f}};
    p.s1 = dev(24), p.s2 = dev(24);
    run_prim(&p, "ln_chan", 120, 1e-2f, 2e-3);
    for (int train = 1; train >= 0; train--) {
        const char *cs = train ? "bn_train" : "bn_eval";
        p = (struct prim){.name = cs, .nin = 3, .in_name = {"x", "w", "b"}, .fwd = bn_fwd, .bwd = bn_bwd, .i = {train}};
        p.s1 = dev(3), p.s2 = dev(3), p.s3 = dev(12);
        float *rm0 = fget(cs, "rm0", NULL), *rv0 = fget(cs, "rv0", NULL);
        float *rm1 = fget(cs, "rm1", NULL), *rv1 = fget(cs, "rv1", NULL), run[12];
        avs_dev_upload(p.s3, rm0, 3), avs_dev_upload(p.s3 + 3, rv0, 3);
        load_inputs(&p, cs);
        prim_out(&p, 120);
        p.fwd(&p);
        avs_dev_download(run, p.s3, 12);
        compare(train ? "bn_train running mean" : "bn_eval running mean", run + 6, rm1, 3, 1e-6);
        compare(train ? "bn_train running var" : "bn_eval running var", run + 9, rv1, 3, 1e-6);
        same_bits(train ? "bn_train running stats" : "bn_eval running stats", run, 12);
        torch_check(&p, cs);
        fd_check(&p, 1e-2f, 2e-3);
        prim_free(&p);
        free(rm0), free(rv0), free(rm1), free(rv1);
    }
    static const struct { const char *cs; int H, W, OH, OW, ac; } rs[] = {
        {"rs_up_t", 3, 4, 6, 8, 1}, {"rs_up_f", 3, 4, 6, 8, 0}, {"rs_odd_t", 5, 3, 7, 8, 1},
        {"rs_odd_f", 5, 3, 7, 8, 0}, {"rs_down_f", 8, 6, 3, 4, 0}, {"rs_one_f", 1, 1, 3, 2, 0}};
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        p = (struct prim){.name = rs[i].cs, .nin = 1, .in_name = {"x"}, .fwd = rs_fwd, .bwd = rs_bwd,
                          .i = {4, rs[i].H, rs[i].W, rs[i].OH, rs[i].OW, rs[i].ac}};
        run_prim(&p, rs[i].cs, 4 * rs[i].OH * rs[i].OW, 1e-2f, 1e-3);
    }
    p = (struct prim){.name = "gap", .nin = 1, .in_name = {"x"}, .fwd = gap_fwd, .bwd = gap_bwd};
    run_prim(&p, "gap", 6, 1e-2f, 1e-3);
    p = (struct prim){.name = "chmean", .nin = 1, .in_name = {"x"}, .fwd = chm_fwd, .bwd = chm_bwd};
    run_prim(&p, "chmean", 40, 1e-2f, 1e-3);
    p = (struct prim){.name = "concat", .nin = 2, .in_name = {"a", "b"}, .fwd = cat_fwd, .bwd = cat_bwd};
    run_prim(&p, "cat", 40, 1e-2f, 1e-3);
    p = (struct prim){.name = "add bcast C", .nin = 2, .in_name = {"x", "s"}, .fwd = bc_fwd, .bwd = bc_bwd, .i = {0, 1, 0, 0}};
    run_prim(&p, "add_c", 24, 1e-2f, 1e-3);
    p = (struct prim){.name = "mul bcast NC", .nin = 2, .in_name = {"x", "s"}, .fwd = bc_fwd, .bwd = bc_bwd, .i = {1, 1, 0, 1}};
    run_prim(&p, "mul_nc", 24, 1e-2f, 1e-3);
    p = (struct prim){.name = "mul bcast NHW", .nin = 2, .in_name = {"x", "s"}, .fwd = bc_fwd, .bwd = bc_bwd, .i = {1, 0, 1, 1}};
    run_prim(&p, "mul_nhw", 24, 1e-2f, 1e-3);
    p = (struct prim){.name = "BCE+Dice", .nin = 2, .in_name = {"x", "g"}, .no_grad = {0, 1}, .fwd = loss_fwd, .bwd = loss_bwd};
    p.s1 = dev(60), p.s2 = dev(60);
    run_prim(&p, "loss", 1, 1e-2f, 2e-3);
}

/* The CCAM layer (model/nn.h); see main for the backends it runs on. */
static void test_ccam(void)
{
    struct prim p = {.name = "ccam", .nin = 2, .in_name = {"x", "cw"}, .no_grad = {0, 1}, .fwd = ccam_fwd, .bwd = ccam_bwd};
    p.s1 = dev(8), p.s2 = dev(72), p.s3 = dev(18), p.ws = dev(18);
    run_prim(&p, "ccam", 72, 1e-2f, 1e-3);
}

static void test_adam(void)
{
    float *hp = fget("adam", "p0", NULL), *hg = fget("adam", "g", NULL), *want = fget("adam", "p3", NULL);
    float *p = avs_dev_from_host(hp, 10), *g = avs_dev_from_host(hg, 30), *m = dev(10), *v = dev(10);
    for (int k = 0; k < 3; k++)
        avs_ops()->adam(p, g + 10 * k, m, v, 10, 1e-2, 0.9, 0.999, 1e-8, 0.1, k + 1);
    avs_dev_download(hp, p, 10);
    compare("adam 3 steps", hp, want, 10, 1e-6);
    same_bits("adam 3 steps", hp, 10);
    avs_dev_free(&p), avs_dev_free(&g), avs_dev_free(&m), avs_dev_free(&v);
    free(hp), free(hg), free(want);
}

/* Bigger convs (all three paths) give the same bits with 1 and 2 threads. */
static void test_threads(void)
{
    struct avs_conv2d g[3];
    avs_conv2d_geom(&g[0], 2, 64, 20, 18, 48, 3, 3, 1, 1, 1, 1);
    avs_conv2d_geom(&g[1], 2, 64, 20, 18, 48, 1, 1, 1, 0, 1, 1);
    avs_conv2d_geom(&g[2], 2, 64, 21, 19, 48, 3, 3, 2, 1, 1, 2);
    static const char *pass[4] = {"forward", "bwd data", "bwd filter", "bias grad"};
    for (int c = 0; c < 3; c++) {
        size_t nx = (size_t)g[c].N * g[c].C * g[c].H * g[c].W, nw = (size_t)g[c].K * g[c].C / g[c].groups * g[c].R * g[c].S;
        size_t ny = (size_t)g[c].N * g[c].K * g[c].P * g[c].Q, n[4] = {ny, nx, nw, (size_t)g[c].K};
        float *hx = avs_malloc(nx * 4), *hw = avs_malloc(nw * 4), *hb = avs_malloc(g[c].K * 4);
        float *res[2][4];
        for (size_t i = 0; i < nx; i++)
            hx[i] = frand();
        for (size_t i = 0; i < nw; i++)
            hw[i] = frand();
        for (int k = 0; k < g[c].K; k++)
            hb[k] = frand();
        float *x = avs_dev_from_host(hx, nx), *w = avs_dev_from_host(hw, nw);
        float *b = avs_dev_from_host(hb, (size_t)g[c].K), *ws = dev(avs_conv2d_ws(&g[c]));
        for (int t = 0; t < 2; t++) {
            avs_ops_set_threads(t + 1);
            float *d[4];
            for (int k = 0; k < 4; k++)
                d[k] = dev(n[k]);
            avs_ops()->conv2d_fwd(d[0], x, w, b, &g[c], ws);
            avs_ops()->conv2d_bwd_data(d[1], d[0], w, &g[c], ws);
            avs_ops()->conv2d_bwd_filter(d[2], d[3], d[0], x, &g[c], ws);
            for (int k = 0; k < 4; k++)
                res[t][k] = avs_host_from_dev(d[k], n[k]), avs_dev_free(&d[k]);
        }
        for (int k = 0; k < 4; k++) {
            CHECK(!memcmp(res[0][k], res[1][k], n[k] * 4), "conv %d %s differs between 1 and 2 threads on %s",
                  c, pass[k], backend_now()->name);
            char what[64];
            snprintf(what, sizeof what, "conv %d %s (threads)", c, pass[k]);
            same_bits(what, res[0][k], n[k]);
        }
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 4; k++)
                free(res[t][k]);
        free(hx), free(hw), free(hb);
        avs_dev_free(&x), avs_dev_free(&w), avs_dev_free(&b), avs_dev_free(&ws);
    }
    avs_ops_set_threads(0);
}

int main(void)
{
    struct avs_err err = {0};
    if (avs_st_open(FIX, &fx, &err)) {
        fprintf(stderr, "%s (regenerate with /usr/bin/python3 tests/gen/model_prims.py)\n", err.msg);
        return 1;
    }
    avs_ops_set_threads(0);
    backends_keep(&rng, sizeof rng);
    on_every_backend("convs", test_convs);
    on_every_backend("small primitives", test_small_prims);
    /* model/nn.c's CCAM still reads its tensors on the host (the per-frame norm of the
     * weights, the backward's loops): on the guard backend that crashes, as it should. Until
     * it is made of primitives, it runs on cpu only. */
    on_every_backend("ccam", test_ccam);
    on_every_backend("adam", test_adam);
    on_every_backend("threads", test_threads);
    avs_st_close(&fx);
    return check_summary("test_backend_ops");
}
