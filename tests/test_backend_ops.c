/* tests/test_model_ops.c: every primitive of the CPU backend table (model/ops.h) and the
 * layers of model/nn.h, forward and backward:
 *  - against PyTorch (tests/fixtures/model/prims.safetensors from tests/gen/model_prims.py,
 *    float64 references): relative L2 error <= 1e-5 per tensor;
 *  - against central finite differences in double precision on the same tiny shapes;
 *  - bit-identical results for 1 and 2 threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "model/nn.h"
#include "backend/ops.h"
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

/* ---- a primitive under test: up to 3 inputs, one output ---- */

struct prim {
    const char *name;
    int nin;
    float *in[3];
    size_t n_in[3];
    const char *in_name[3];
    int no_grad[3]; /* input without a gradient (e.g. BCE targets) */
    float *out;
    size_t n_out;
    void (*fwd)(struct prim *p);
    void (*bwd)(struct prim *p, const float *dy, float *const din[3]);
    /* extra state */
    struct avs_conv2d g;
    float *ws, *s1, *s2, *s3;
    int i[8];
    float f[4];
};

static void prim_free(struct prim *p)
{
    for (int k = 0; k < p->nin; k++)
        free(p->in[k]);
    free(p->out);
    free(p->ws), free(p->s1), free(p->s2), free(p->s3);
}

/* L = sum(out * r) in double */
static double loss_of(struct prim *p, const float *r)
{
    p->fwd(p);
    double L = 0;
    for (size_t i = 0; i < p->n_out; i++)
        L += (double)p->out[i] * r[i];
    return L;
}

static unsigned long long rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Finite differences (central, h) of every input element against the analytic backward. */
static void fd_check(struct prim *p, float h, double tol)
{
    float *r = avs_malloc(p->n_out * sizeof(float));
    for (size_t i = 0; i < p->n_out; i++)
        r[i] = frand();
    float *din[3] = {0};
    for (int k = 0; k < p->nin; k++)
        din[k] = avs_calloc(p->n_in[k], sizeof(float));
    p->fwd(p);
    p->bwd(p, r, din);
    for (int k = 0; k < p->nin; k++) {
        if (p->no_grad[k])
            continue;
        double *num = avs_malloc(p->n_in[k] * sizeof(double));
        double e2 = 0, n2 = 0;
        for (size_t i = 0; i < p->n_in[k]; i++) {
            float x0 = p->in[k][i];
            p->in[k][i] = x0 + h;
            double lp = loss_of(p, r);
            p->in[k][i] = x0 - h;
            double lm = loss_of(p, r);
            p->in[k][i] = x0;
            num[i] = (lp - lm) / (2.0 * h);
            e2 += (num[i] - din[k][i]) * (num[i] - din[k][i]);
            n2 += num[i] * num[i];
        }
        double e = n2 > 0 ? sqrt(e2 / n2) : sqrt(e2);
        CHECK(e <= tol, "%s: finite differences vs backward for %s: rel L2 error %.3g", p->name,
              p->in_name[k], e);
        free(num);
    }
    for (int k = 0; k < p->nin; k++)
        free(din[k]);
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
    char what[160];
    snprintf(what, sizeof what, "%s forward", p->name);
    compare(what, p->out, y, n, 1e-5);
    float *din[3] = {0};
    for (int k = 0; k < p->nin; k++)
        din[k] = avs_calloc(p->n_in[k], sizeof(float));
    p->bwd(p, dy, din);
    for (int k = 0; k < p->nin; k++) {
        char dn[32];
        snprintf(dn, sizeof dn, "d%s", p->in_name[k]);
        float *want = fget(cs, dn, &n);
        if (!want || p->no_grad[k]) {
            free(want);
            continue;
        }
        snprintf(what, sizeof what, "%s gradient %s", p->name, dn);
        CHECK(n == p->n_in[k], "%s: size %zu vs %zu", what, n, p->n_in[k]);
        if (n == p->n_in[k])
            compare(what, din[k], want, n, 1e-5);
        free(want);
    }
    for (int k = 0; k < p->nin; k++)
        free(din[k]);
    free(y), free(dy);
}

/* inputs from the fixture (names in in_name) */
static void load_inputs(struct prim *p, const char *cs)
{
    for (int k = 0; k < p->nin; k++) {
        p->in[k] = fget(cs, p->in_name[k], &p->n_in[k]);
        AVS_ASSERT(p->in[k]);
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
        p.n_out = (size_t)p.g.N * p.g.K * p.g.P * p.g.Q;
        p.out = avs_malloc(p.n_out * sizeof(float));
        p.ws = avs_malloc(avs_conv2d_ws(&p.g) * sizeof(float));
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

/* i[0] train; s3 = running mean|var (2C), restored before each forward for FD */
static void bn_fwd(struct prim *p)
{
    float rm[3], rv[3];
    memcpy(rm, p->s3, sizeof rm), memcpy(rv, p->s3 + 3, sizeof rv);
    avs_ops()->batchnorm_fwd(p->out, p->s1, p->s2, p->in[0], p->in[1], p->in[2], rm, rv, 2, 3, 20,
                             1e-5f, 0.1f, p->i[0]);
    memcpy(p->s3 + 6, rm, sizeof rm), memcpy(p->s3 + 9, rv, sizeof rv);
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

/* loss = BCE + Dice of logits in[0] against targets in[1], [3, 20] */
static void loss_fwd(struct prim *p)
{
    p->out[0] = (float)(avs_ops()->bce_logits(NULL, p->in[0], p->in[1], 3, 20, 1.0f) +
                        avs_ops()->dice(NULL, p->in[0], p->in[1], 3, 20, 1.0f));
}

static void loss_bwd(struct prim *p, const float *dy, float *const din[3])
{
    float a[60], b[60];
    avs_ops()->bce_logits(a, p->in[0], p->in[1], 3, 20, dy[0]);
    avs_ops()->dice(b, p->in[0], p->in[1], 3, 20, dy[0]);
    for (int i = 0; i < 60; i++)
        din[0][i] += a[i] + b[i];
}

static void ccam_fwd(struct prim *p)
{
    avs_ccam_fwd(p->out, p->s1, p->s2, p->s3, p->in[0], p->in[1], 2, 4, 9);
}

static void ccam_bwd(struct prim *p, const float *dy, float *const din[3])
{
    float scratch[18];
    avs_ccam_bwd(din[0], dy, p->s1, p->s2, p->s3, 2, 4, 9, scratch);
}

static void run_prim(struct prim *p, const char *cs, int nout, float h, double tol)
{
    load_inputs(p, cs);
    p->n_out = (size_t)nout;
    p->out = avs_calloc(p->n_out, sizeof(float));
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
    p.s1 = avs_malloc(64), p.s2 = avs_malloc(64);
    run_prim(&p, "ln_last", 24, 1e-2f, 2e-3);
    p = (struct prim){.name = "layernorm channels", .nin = 3, .in_name = {"x", "w", "b"}, .fwd = ln_fwd,
                      .bwd = ln_bwd, .i = {2, 5, 12}, .f = {1e-5f}};
    p.s1 = avs_malloc(128), p.s2 = avs_malloc(128);
    run_prim(&p, "ln_chan", 120, 1e-2f, 2e-3);
    for (int train = 1; train >= 0; train--) {
        const char *cs = train ? "bn_train" : "bn_eval";
        p = (struct prim){.name = cs, .nin = 3, .in_name = {"x", "w", "b"}, .fwd = bn_fwd, .bwd = bn_bwd, .i = {train}};
        p.s1 = avs_malloc(64), p.s2 = avs_malloc(64), p.s3 = avs_calloc(12, sizeof(float));
        float *rm0 = fget(cs, "rm0", NULL), *rv0 = fget(cs, "rv0", NULL);
        float *rm1 = fget(cs, "rm1", NULL), *rv1 = fget(cs, "rv1", NULL);
        memcpy(p.s3, rm0, 12), memcpy(p.s3 + 3, rv0, 12);
        load_inputs(&p, cs);
        p.n_out = 120;
        p.out = avs_calloc(120, sizeof(float));
        p.fwd(&p);
        compare(train ? "bn_train running mean" : "bn_eval running mean", p.s3 + 6, rm1, 3, 1e-6);
        compare(train ? "bn_train running var" : "bn_eval running var", p.s3 + 9, rv1, 3, 1e-6);
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
    run_prim(&p, "loss", 1, 1e-2f, 2e-3);
    p = (struct prim){.name = "ccam", .nin = 2, .in_name = {"x", "cw"}, .no_grad = {0, 1}, .fwd = ccam_fwd, .bwd = ccam_bwd};
    p.s1 = avs_malloc(64), p.s2 = avs_malloc(128 * 4), p.s3 = avs_malloc(64 * 4);
    run_prim(&p, "ccam", 72, 1e-2f, 1e-3);
}

static void test_adam(void)
{
    float *p = fget("adam", "p0", NULL), *g = fget("adam", "g", NULL), *want = fget("adam", "p3", NULL);
    float m[10] = {0}, v[10] = {0};
    for (int k = 0; k < 3; k++)
        avs_ops()->adam(p, g + 10 * k, m, v, 10, 1e-2, 0.9, 0.999, 1e-8, 0.1, k + 1);
    compare("adam 3 steps", p, want, 10, 1e-6);
    free(p), free(g), free(want);
}

/* Bigger convs (all three paths) give the same bits with 1 and 2 threads. */
static void test_threads(void)
{
    struct avs_conv2d g[3];
    avs_conv2d_geom(&g[0], 2, 64, 20, 18, 48, 3, 3, 1, 1, 1, 1);
    avs_conv2d_geom(&g[1], 2, 64, 20, 18, 48, 1, 1, 1, 0, 1, 1);
    avs_conv2d_geom(&g[2], 2, 64, 21, 19, 48, 3, 3, 2, 1, 1, 2);
    for (int c = 0; c < 3; c++) {
        size_t nx = (size_t)g[c].N * g[c].C * g[c].H * g[c].W, nw = (size_t)g[c].K * g[c].C / g[c].groups * g[c].R * g[c].S;
        size_t ny = (size_t)g[c].N * g[c].K * g[c].P * g[c].Q;
        float *x = avs_malloc(nx * 4), *w = avs_malloc(nw * 4), *b = avs_malloc(g[c].K * 4);
        float *ws = avs_malloc(avs_conv2d_ws(&g[c]) * 4), *res[2][4];
        for (size_t i = 0; i < nx; i++)
            x[i] = frand();
        for (size_t i = 0; i < nw; i++)
            w[i] = frand();
        for (int k = 0; k < g[c].K; k++)
            b[k] = frand();
        for (int t = 0; t < 2; t++) {
            avs_ops_set_threads(t + 1);
            res[t][0] = avs_malloc(ny * 4);
            res[t][1] = avs_calloc(nx, 4);
            res[t][2] = avs_calloc(nw, 4);
            res[t][3] = avs_calloc(g[c].K, 4);
            avs_ops()->conv2d_fwd(res[t][0], x, w, b, &g[c], ws);
            avs_ops()->conv2d_bwd_data(res[t][1], res[t][0], w, &g[c], ws);
            avs_ops()->conv2d_bwd_filter(res[t][2], res[t][3], res[t][0], x, &g[c], ws);
        }
        CHECK(!memcmp(res[0][0], res[1][0], ny * 4), "conv %d forward differs between 1 and 2 threads", c);
        CHECK(!memcmp(res[0][1], res[1][1], nx * 4), "conv %d bwd data differs between 1 and 2 threads", c);
        CHECK(!memcmp(res[0][2], res[1][2], nw * 4), "conv %d bwd filter differs between 1 and 2 threads", c);
        CHECK(!memcmp(res[0][3], res[1][3], g[c].K * 4), "conv %d bias grad differs between 1 and 2 threads", c);
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 4; k++)
                free(res[t][k]);
        free(x), free(w), free(b), free(ws);
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
    test_convs();
    test_small_prims();
    test_adam();
    test_threads();
    avs_st_close(&fx);
    return check_summary("test_model_ops");
}
