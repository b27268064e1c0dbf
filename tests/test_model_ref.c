/* tests/test_model_ref.c: the reference C3N (model/c3n_ref.h) and its primitive.
 *
 *  1. l2norm_rows against a double-precision reference on every registered backend (the
 *     same bits on each, and for 1 and 2 threads).
 *  2. The reference against the PyTorch fixtures tests/fixtures/model/head_{eval,train} (the
 *     official modules in float64, tests/gen/model_head.py): logits, every parameter gradient,
 *     dx, daudio, BN running stats, relative L2 <= 1e-5 per tensor (as tests/test_model_head.c),
 *     on every backend, bit-identical across them.
 *  3. Fresh random configurations (stage sizes 16/8/4/2 or 8/4/2/1, square or not; small
 *     widths, and the official widths on tiny maps; T 2..5; 1-2 videos; train and eval; TPAVI
 *     on all, some or no stages; CCAM on and off): the fused fast path (avs_c3n_head_fwd/bwd,
 *     avs_c3n_fwd/bwd with CCAM) and the reference agree within a relative L2 of TOL_FAST per
 *     tensor; the reference gives the same bits on cpu and guard, and for 1 and 2 threads.
 *     AVS_TEST_REF_CASES=n runs n small cases instead of 12 (soak runs).
 *
 * TOL_FAST: both are float32 with different summation orders (the fast path composes ASPP into
 * one tap conv, computes TPAVI's g and phi in reduced form, and the output conv through a
 * composed upsampling). Most tensors agree to ~1e-6 (the worst is printed), but gradients that
 * are sums of nearly cancelling terms (TPAVI's behind a train-mode BatchNorm of few values,
 * small widths) are ill-conditioned: moving this reference's inputs by one ulp moves them by
 * up to 1.1e-4 (measured), and over 250 random configurations the fast path's worst was 8e-5.
 * So the bound is 2e-4; a wrong term (an eps, a scale, a corner convention) gives 1e-3 and more.
 * BatchNorm of 2 values per channel has a zero input gradient (its output is +-1 whatever the
 * input): configurations keep 4 or more, and gradients that are zero in exact arithmetic are
 * held to their norm over the largest gradient norm (analytically_zero). A ReLU input within
 * rounding of 0 can take
 * different sides in the two paths and move a gradient by a whole term, so inputs are redrawn
 * until every ReLU input of the reference is at least RELU_MARGIN (relative to its tensor's
 * RMS) away from 0, as tests/gen/model_head.py does for the fixtures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/common.h"
#include "core/safetensors.h"
#include "model/c3n.h"
#include "model/c3n_head.h"
#include "model/c3n_ref.h"
#include "tests/check.h"

/* 1: the fast path also runs on the guard backend (bit-identical to its cpu run, and compared
 * with the reference): it never touches tensor memory on the host. */
#define FAST_PATH_ON_GUARD 1

#define FIX "tests/fixtures/model/"
#define TOL_FIX 1e-5
#define TOL_FAST 2e-4
#define RELU_MARGIN 1e-6

/* ---- host data ---- */

/* splitmix64 -> uniform [lo, hi) */
static float urand(unsigned long long *s, float lo, float hi)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((double)(z >> 11) / 9007199254740992.0);
}

static float *host_rand(size_t n, unsigned long long *s, float lo, float hi)
{
    float *p = avs_malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = urand(s, lo, hi);
    return p;
}

static int irand(unsigned long long *s, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(urand(s, 0.0f, 1.0f) * (float)(hi - lo + 1)) % (hi - lo + 1);
}

/* relative L2 error of got against want */
static double rel_l2(const float *got, const float *want, size_t n)
{
    double e2 = 0, w2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        e2 += d * d, w2 += (double)want[i] * want[i];
    }
    return e2 == 0 ? 0 : sqrt(e2 / w2);
}

static double norm2(const float *p, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)p[i] * p[i];
    return sqrt(s);
}

/* ---- 1. the primitive ---- */

static void test_l2norm(void)
{
    unsigned long long seed = 5;
    const int rows = 37, cols = 301; /* > 8 lanes, not a multiple; row 3 all zero (eps) */
    size_t n = (size_t)rows * cols;
    float *x = host_rand(n, &seed, -2.0f, 2.0f), *want = avs_malloc(n * sizeof(float));
    memset(x + 3 * cols, 0, cols * sizeof(float));
    x[5 * cols + 7] = 1e-30f; /* a row far from 1 */
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int c = 0; c < cols; c++)
            ss += (double)x[(size_t)r * cols + c] * x[(size_t)r * cols + c];
        double nrm = fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < cols; c++)
            want[(size_t)r * cols + c] = (float)(x[(size_t)r * cols + c] / nrm);
    }
    float *first = NULL;
    for (int i = 0; avs_backend_at(i); i++) {
        const struct avs_ops *be = avs_backend_at(i);
        avs_backend_set(be);
        for (int th = 1; th <= 2; th++) {
            avs_ops_set_threads(th);
            float *dx = avs_dev_from_host(x, n), *dy = avs_dev_alloc(n, "l2norm y");
            be->l2norm_rows(dy, dx, rows, cols, 1e-12f);
            be->l2norm_rows(dx, dx, rows, cols, 1e-12f); /* in place */
            float *y = avs_host_from_dev(dy, n), *y2 = avs_host_from_dev(dx, n);
            double worst = 0;
            for (size_t k = 0; k < n; k++)
                worst = fmax(worst, fabs((double)y[k] - want[k]) / (fabs(want[k]) + 1e-30));
            CHECK(worst <= 4e-7, "%s -j %d: l2norm_rows max rel error %.3g", be->name, th, worst);
            CHECK(!memcmp(y, y2, n * sizeof(float)), "%s: l2norm_rows in place differs", be->name);
            if (!first)
                first = y;
            else {
                CHECK(!memcmp(first, y, n * sizeof(float)), "%s -j %d: l2norm_rows bits differ "
                      "from cpu -j 1", be->name, th);
                free(y);
            }
            free(y2);
            avs_dev_free(&dx), avs_dev_free(&dy);
        }
    }
    avs_ops_set_threads(0);
    avs_backend_set(avs_backend_cpu());
    free(x), free(want), free(first);
}

/* ---- a model's tensors on the host, and runs on a backend ---- */

/* what a run is given: the spec table (a cpu head), parameters and buffers, inputs */
struct setup {
    struct avs_c3n_cfg cfg;
    int N, B, ccam, train;
    struct avs_c3n_head spec;  /* on cpu: its tables name the tensors (its memory unused) */
    float **p, **b;            /* [np], [nb] host values */
    float *x[4], *gc[4], *audio, *dl;
    size_t nx[4], ngc[4], na, nl;
};

/* what a run gives */
struct result {
    float *logits, **grad, *dx[4], *daudio, **buf;
    long bnb[4];
    double relu_margin; /* reference runs: the smallest |ReLU input| / RMS of its tensor */
};

static size_t spec_numel(const struct avs_tensor_spec *s)
{
    return avs_tensor_spec_numel(s);
}

static void setup_free(struct setup *su)
{
    for (int i = 0; i < su->spec.np; i++)
        free(su->p[i]);
    for (int i = 0; i < su->spec.nb; i++)
        free(su->b[i]);
    free(su->p), free(su->b);
    for (int s = 0; s < 4; s++)
        free(su->x[s]), free(su->gc[s]);
    free(su->audio), free(su->dl);
    avs_c3n_head_free(&su->spec);
}

static void result_free(struct result *r, const struct setup *su)
{
    for (int i = 0; i < su->spec.np; i++)
        free(r->grad[i]);
    for (int i = 0; i < su->spec.nb; i++)
        free(r->buf[i]);
    free(r->grad), free(r->buf), free(r->logits), free(r->daudio);
    for (int s = 0; s < 4; s++)
        free(r->dx[s]);
    memset(r, 0, sizeof *r);
}

static void set_upload(struct avs_tensor_set *set, float **host)
{
    for (int i = 0; i < set->n; i++)
        avs_tensor_set_upload(set, i, host[i]);
}

static float **set_download(const struct avs_tensor_set *set)
{
    float **h = avs_calloc((size_t)set->n + 1, sizeof *h);
    for (int i = 0; i < set->n; i++) {
        h[i] = avs_malloc((spec_numel(&set->spec[i]) + 1) * sizeof(float));
        avs_tensor_set_download(set, i, h[i]);
    }
    return h;
}

/* device copies of the inputs and zeroed input gradients */
struct dev_io {
    float *x[4], *gc[4], *audio, *dl, *dx[4], *daudio;
};

static void dev_io_init(struct dev_io *d, const struct setup *su)
{
    memset(d, 0, sizeof *d);
    for (int s = 0; s < 4; s++) {
        d->x[s] = avs_dev_from_host(su->x[s], su->nx[s]);
        d->gc[s] = avs_dev_from_host(su->gc[s], su->ngc[s]);
        d->dx[s] = avs_dev_alloc(su->nx[s], "dx");
    }
    d->audio = avs_dev_from_host(su->audio, su->na);
    d->daudio = avs_dev_alloc(su->na, "daudio");
    d->dl = avs_dev_from_host(su->dl, su->nl);
}

static void dev_io_result(const struct dev_io *d, const struct setup *su, struct result *out)
{
    for (int s = 0; s < 4; s++)
        out->dx[s] = avs_host_from_dev(d->dx[s], su->nx[s]);
    out->daudio = avs_host_from_dev(d->daudio, su->na);
}

static void dev_io_free(struct dev_io *d)
{
    for (int s = 0; s < 4; s++)
        avs_dev_free(&d->x[s]), avs_dev_free(&d->gc[s]), avs_dev_free(&d->dx[s]);
    avs_dev_free(&d->audio), avs_dev_free(&d->daudio), avs_dev_free(&d->dl);
}

/* smallest |v| / RMS(v) of a device tensor */
static double margin_of(const float *dev, size_t n)
{
    float *h = avs_host_from_dev(dev, n);
    double rms = norm2(h, n) / sqrt((double)n), m = INFINITY;
    for (size_t i = 0; i < n; i++)
        m = fmin(m, fabs(h[i]));
    free(h);
    return rms > 0 ? m / rms : INFINITY;
}

/* every ReLU input of the reference: the RCUs' inputs and conv1 outputs, output_conv.2's */
static double relu_margin(const struct avs_c3n_ref *r)
{
    double m = INFINITY;
    size_t B = (size_t)r->B, D = (size_t)r->cfg.D;
    for (int s = 0; s < 4; s++) {
        const struct avs_c3n_ref_stage *st = &r->act.st[s];
        size_t map = B * D * r->cfg.H[s] * r->cfg.W[s];
        const float *skip = (r->cfg.tpavi >> s & 1) ? st->t : st->a;
        m = fmin(m, margin_of(skip, map));
        if (s < 3)
            m = fmin(m, margin_of(st->sum, map));
        for (int u = s < 3 ? 0 : 1; u < 2; u++)
            m = fmin(m, margin_of(st->c1[u], map));
    }
    return fmin(m, margin_of(r->act.h2, B * r->cfg.O2 * 16 * r->cfg.H[0] * r->cfg.W[0]));
}

static void run_ref(const struct setup *su, const struct avs_ops *be, struct result *out)
{
    avs_backend_set(be);
    memset(out, 0, sizeof *out);
    struct avs_tensor_set p, g, b;
    avs_tensor_set_init(&p, su->spec.pspec, su->spec.np);
    avs_tensor_set_init(&g, su->spec.pspec, su->spec.np);
    avs_tensor_set_init(&b, su->spec.bspec, su->spec.nb);
    set_upload(&p, su->p);
    set_upload(&b, su->b);
    struct dev_io d;
    dev_io_init(&d, su);
    struct avs_c3n_ref r;
    avs_c3n_ref_init(&r, &su->cfg, su->N, su->ccam, &p, &g, &b);
    avs_c3n_ref_fwd(&r, (const float *const *)d.x, su->ccam ? (const float *const *)d.gc : NULL,
                    su->cfg.tpavi ? d.audio : NULL, su->train);
    avs_c3n_ref_bwd(&r, d.dl, d.dx, d.daudio);
    out->logits = avs_host_from_dev(r.act.logits, su->nl);
    out->grad = set_download(&g);
    out->buf = set_download(&b);
    dev_io_result(&d, su, out);
    memcpy(out->bnb, r.bn_batches, sizeof out->bnb);
    out->relu_margin = relu_margin(&r);
    avs_c3n_ref_free(&r);
    dev_io_free(&d);
    avs_tensor_set_free(&p), avs_tensor_set_free(&g), avs_tensor_set_free(&b);
    avs_backend_set(avs_backend_cpu());
}

/* the fast path: avs_c3n (CCAM + head) with CCAM, else the head alone (TPAVI on any stages,
 * and daudio) */
static void run_fast(const struct setup *su, const struct avs_ops *be, struct result *out)
{
    avs_backend_set(be);
    memset(out, 0, sizeof *out);
    struct avs_c3n m;
    struct avs_c3n_head hh, *h = &hh;
    if (su->ccam) {
        struct avs_switches sw = {su->cfg.tpavi != 0, 1, 0};
        avs_c3n_init(&m, &su->cfg, &sw, su->N);
        h = &m.head;
    } else
        avs_c3n_head_init(h, &su->cfg, su->N);
    AVS_ASSERT(h->np == su->spec.np && h->nb == su->spec.nb);
    set_upload(&h->params, su->p);
    set_upload(&h->bufs, su->b);
    struct dev_io d;
    dev_io_init(&d, su);
    if (su->ccam)
        avs_c3n_fwd(&m, (const float *const *)d.x, (const float *const *)d.gc, d.audio, su->train);
    else
        avs_c3n_head_fwd(h, (const float *const *)d.x, su->cfg.tpavi ? d.audio : NULL, su->train);
    avs_c3n_head_zero_grad(h);
    if (su->ccam)
        avs_c3n_bwd(&m, d.dl, d.dx);
    else
        avs_c3n_head_bwd(h, d.dl, d.dx, d.daudio);
    out->logits = avs_host_from_dev(h->logits, su->nl);
    out->grad = set_download(&h->grads);
    out->buf = set_download(&h->bufs);
    dev_io_result(&d, su, out);
    memcpy(out->bnb, h->bn_batches, sizeof out->bnb);
    dev_io_free(&d);
    if (su->ccam)
        avs_c3n_free(&m);
    else
        avs_c3n_head_free(h);
    avs_backend_set(avs_backend_cpu());
}

/* ---- comparing two results ---- */

/* tensor j of a result: 0 logits, then the parameter gradients, dx1..4, daudio, the buffers;
 * NULL past the last. Its name into name, its size into *n. */
static const float *tensor_at(const struct setup *su, const struct result *r, int j, char *name,
                              size_t len, size_t *n)
{
    int np = su->spec.np, nb = su->spec.nb;
    if (j == 0)
        return snprintf(name, len, "logits"), *n = su->nl, r->logits;
    if ((j -= 1) < np)
        return snprintf(name, len, "grad.%s", su->spec.pspec[j].name),
               *n = spec_numel(&su->spec.pspec[j]), r->grad[j];
    if ((j -= np) < 4)
        return snprintf(name, len, "grad.x%d", j + 1), *n = su->nx[j], r->dx[j];
    if ((j -= 4) == 0)
        return snprintf(name, len, "grad.audio"), *n = su->na, r->daudio;
    if ((j -= 1) < nb)
        return snprintf(name, len, "buf.%s", su->spec.bspec[j].name),
               *n = spec_numel(&su->spec.bspec[j]), r->buf[j];
    return NULL;
}

/* Gradients that are zero in exact arithmetic, so both sides hold rounding noise only:
 * path4's resConfUnit1 (built, never used, as in the official FeatureFusionBlock); in train
 * mode the bias of TPAVI's W_z conv (BatchNorm on batch statistics removes it), and with one
 * video also theta's bias (its gradient is M/(THW) times the sum of dy over the batch, which
 * that BatchNorm makes zero; M is per video, so with two videos it is not). */
static int analytically_zero(const char *name, const struct setup *su)
{
    return !strncmp(name, "grad.path4.resConfUnit1.", 24) ||
           (su->train && strstr(name, "W_z.0.bias")) ||
           (su->train && su->N == 1 && strstr(name, ".theta.bias"));
}

struct cmp {
    const char *what;  /* the case */
    double tol, worst; /* bound on the relative L2 error; the worst error seen */
    char worst_name[200];
};

/* every tensor of got against want (daudio only if with_daudio and TPAVI runs); an
 * analytically zero gradient is measured as max(|got|, |want|) / the largest gradient norm */
static void compare(struct cmp *c, const struct setup *su, const struct result *got,
                    const struct result *want, int with_daudio)
{
    char nm[200];
    size_t n;
    double big = 0;
    for (int j = 1; tensor_at(su, want, j, nm, sizeof nm, &n); j++)
        if (!strncmp(nm, "grad.", 5))
            big = fmax(big, norm2(tensor_at(su, want, j, nm, sizeof nm, &n), n));
    for (int j = 0; tensor_at(su, want, j, nm, sizeof nm, &n); j++) {
        const float *w = tensor_at(su, want, j, nm, sizeof nm, &n);
        const float *g = tensor_at(su, got, j, nm, sizeof nm, &n);
        if (!strcmp(nm, "grad.audio") && (!with_daudio || !su->cfg.tpavi))
            continue;
        int zero = analytically_zero(nm, su);
        double e = zero ? fmax(norm2(g, n), norm2(w, n)) / big : rel_l2(g, w, n);
        CHECK(e <= c->tol, "%s: %s %s %.3g > %.0e", c->what, nm,
              zero ? "(zero up to rounding) norm / largest gradient norm" : "rel L2 error", e,
              c->tol);
        if (e > c->worst || !c->worst_name[0]) {
            c->worst = e;
            snprintf(c->worst_name, sizeof c->worst_name, "%s", nm);
        }
    }
    CHECK(!memcmp(got->bnb, want->bnb, sizeof got->bnb), "%s: num_batches_tracked differ", c->what);
}

static void check_same_bits(const char *what, const struct setup *su, const struct result *a,
                            const struct result *b)
{
    char nm[200];
    size_t n;
    for (int j = 0; tensor_at(su, a, j, nm, sizeof nm, &n); j++)
        CHECK(!memcmp(tensor_at(su, a, j, nm, sizeof nm, &n),
                      tensor_at(su, b, j, nm, sizeof nm, &n), n * sizeof(float)),
              "%s: %s is not bit-identical", what, nm);
    CHECK(!memcmp(a->bnb, b->bnb, sizeof a->bnb), "%s: num_batches_tracked differ", what);
}

/* ---- 2. the PyTorch fixtures ---- */

static float *read_t(struct avs_st_file *f, const char *name, size_t *n)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    AVS_ASSERT(t);
    float *p = avs_malloc(t->numel * sizeof(float));
    struct avs_err err;
    AVS_ASSERT(avs_st_read_f32(t, p, t->numel, &err) == 0);
    *n = t->numel;
    return p;
}

static struct avs_st_file *open_fix(const char *nm, const char *part)
{
    char p[256];
    struct avs_err err = {0};
    struct avs_st_file *f = NULL;
    snprintf(p, sizeof p, FIX "%s.%s.safetensors", nm, part);
    if (avs_st_open(p, &f, &err))
        fprintf(stderr, "%s\n", err.msg);
    AVS_ASSERT(f);
    return f;
}

/* the setup of a fixture (tests/gen/model_head.py's defaults: N 2, T 2, 16/8/4/2) */
static void fixture_setup(struct setup *su, const char *nm, int train)
{
    static const int ch[4] = {4, 6, 8, 10};
    memset(su, 0, sizeof *su);
    avs_c3n_cfg_default(&su->cfg, 64);
    su->cfg.T = 2;
    memcpy(su->cfg.C, ch, sizeof ch);
    su->cfg.D = 8, su->cfg.Ci = 4, su->cfg.A = 6, su->cfg.O1 = 8, su->cfg.O2 = 4;
    su->N = 2, su->B = 4, su->train = train;
    avs_c3n_head_init(&su->spec, &su->cfg, su->N);
    char p[256];
    struct avs_err err = {0};
    snprintf(p, sizeof p, FIX "%s.weights.safetensors", nm);
    CHECK(avs_c3n_head_load(&su->spec, p, &err) == 0, "load %s: %s", p, err.msg);
    su->p = set_download(&su->spec.params);
    su->b = set_download(&su->spec.bufs);
    struct avs_st_file *in = open_fix(nm, "inputs"), *dout = open_fix(nm, "dout");
    for (int s = 0; s < 4; s++) {
        char xn[8];
        snprintf(xn, sizeof xn, "x%d", s + 1);
        su->x[s] = read_t(in, xn, &su->nx[s]);
        su->gc[s] = avs_calloc(1, sizeof(float)), su->ngc[s] = 1;
    }
    su->audio = read_t(in, "audio", &su->na);
    su->dl = read_t(dout, "logits", &su->nl);
    avs_st_close(&in), avs_st_close(&dout);
}

/* the fixture's expected tensors into a result (by name) */
static void fixture_expect(const struct setup *su, const char *nm, struct result *w)
{
    struct avs_st_file *exp = open_fix(nm, "expect");
    size_t n;
    memset(w, 0, sizeof *w);
    w->logits = read_t(exp, "logits", &n);
    w->grad = avs_calloc((size_t)su->spec.np + 1, sizeof *w->grad);
    w->buf = avs_calloc((size_t)su->spec.nb + 1, sizeof *w->buf);
    char name[200];
    for (int i = 0; i < su->spec.np; i++) {
        snprintf(name, sizeof name, "grad.%s", su->spec.pspec[i].name);
        w->grad[i] = read_t(exp, name, &n);
    }
    for (int i = 0; i < su->spec.nb; i++) {
        snprintf(name, sizeof name, "buf.%s", su->spec.bspec[i].name);
        if (avs_st_find(exp, name))
            w->buf[i] = read_t(exp, name, &n);
        else { /* eval: the running stats are unchanged */
            size_t nb = spec_numel(&su->spec.bspec[i]);
            w->buf[i] = avs_malloc(nb * sizeof(float));
            memcpy(w->buf[i], su->b[i], nb * sizeof(float));
        }
    }
    for (int s = 0; s < 4; s++) {
        snprintf(name, sizeof name, "grad.x%d", s + 1);
        w->dx[s] = read_t(exp, name, &n);
    }
    w->daudio = read_t(exp, "grad.audio", &n);
    for (int s = 0; s < 4; s++)
        w->bnb[s] = su->train;
    avs_st_close(&exp);
}

static void fixture_case(const char *nm, int train)
{
    struct setup su;
    fixture_setup(&su, nm, train);
    struct result want, first = {0};
    fixture_expect(&su, nm, &want);
    for (int i = 0; avs_backend_at(i); i++) {
        const struct avs_ops *be = avs_backend_at(i);
        struct result got;
        run_ref(&su, be, &got);
        char what[160];
        snprintf(what, sizeof what, "reference on %s vs PyTorch fixture %s", be->name, nm);
        struct cmp c = {what, TOL_FIX, 0, ""};
        compare(&c, &su, &got, &want, 1);
        printf("%s: worst %s %.2g\n", what, c.worst_name, c.worst);
        if (i == 0)
            first = got;
        else {
            snprintf(what, sizeof what, "%s: reference on %s vs cpu", nm, be->name);
            check_same_bits(what, &su, &got, &first);
            result_free(&got, &su);
        }
    }
    result_free(&first, &su);
    result_free(&want, &su);
    setup_free(&su);
}

/* ---- 3. random configurations: fast path vs reference ---- */

/* BN and LN affine parameters and running stats drawn so that every path carries signal (the
 * default init zeroes TPAVI's BN weight), W_z's conv bias zero (see tests/gen/model_c3n_ref.py:
 * BatchNorm of a large mean with a tiny spread would test rounding, not code) */
static void randomize_norms(struct setup *su, unsigned long long *seed)
{
    for (int i = 0; i < su->spec.np; i++) {
        const char *nm = su->spec.pspec[i].name;
        size_t n = spec_numel(&su->spec.pspec[i]);
        int norm = strstr(nm, "norm_layer") || strstr(nm, "W_z.1"), w = !!strstr(nm, ".weight");
        for (size_t k = 0; norm && k < n; k++)
            su->p[i][k] = w ? urand(seed, 0.5f, 1.5f) : urand(seed, -0.5f, 0.5f);
        if (strstr(nm, "W_z.0.bias"))
            memset(su->p[i], 0, n * sizeof(float));
    }
    for (int i = 0; i < su->spec.nb; i++) {
        int var = !!strstr(su->spec.bspec[i].name, "running_var");
        for (size_t k = 0; k < spec_numel(&su->spec.bspec[i]); k++)
            su->b[i][k] = var ? urand(seed, 0.5f, 2.0f) : urand(seed, -0.2f, 0.2f);
    }
}

static void draw_cfg(struct setup *su, unsigned long long *seed, int official)
{
    struct avs_c3n_cfg *c = &su->cfg;
    int H0 = irand(seed, 0, 1) ? 16 : 8, W0 = irand(seed, 0, 3) ? H0 : (H0 == 16 ? 8 : 16);
    avs_c3n_cfg_default(c, 4 * H0);
    for (int s = 0; s < 4; s++)
        c->H[s] = H0 >> s, c->W[s] = W0 >> s;
    c->T = irand(seed, 2, 5);
    su->N = irand(seed, 1, 2);
    if (official) { /* the official widths (cfg default) on tiny maps */
        for (int s = 0; s < 4; s++)
            c->H[s] = 8 >> s, c->W[s] = 8 >> s;
        c->T = 2, su->N = 1;
    } else {
        for (int s = 0; s < 4; s++)
            c->C[s] = irand(seed, 2, 12);
        c->D = irand(seed, 4, 16), c->Ci = irand(seed, 2, 8), c->A = irand(seed, 3, 10);
        c->O1 = irand(seed, 4, 12), c->O2 = irand(seed, 2, 6);
    }
    su->B = su->N * c->T;
    su->train = irand(seed, 0, 1);
    su->ccam = irand(seed, 0, 2) == 0;
    int kind = irand(seed, 0, 2); /* TPAVI on all, some, no stages; CCAM runs take all or none */
    c->tpavi = kind == 0 ? 15 : kind == 2 ? 0 : (su->ccam ? 15 : irand(seed, 1, 14));
    if (official) /* one train run of the head with TPAVI on 3 stages, one eval run of the model */
        su->train = official == 1, su->ccam = official == 2, c->tpavi = official == 1 ? 7 : 15;
    /* BatchNorm on batch statistics of 2 values per channel outputs +-1 whatever its input: its
     * input gradient is zero, everything before it rounding noise. At least 4 values. */
    if (su->train && (c->tpavi & 8) && su->N * c->T * c->H[3] * c->W[3] < 4)
        c->T = 4, su->B = su->N * c->T;
    /* a third of the small cases: class maps (AVSS's K-class output_conv.4) */
    c->K = !official && irand(seed, 0, 2) == 0 ? irand(seed, 2, 5) : 1;
}

static void draw_inputs(struct setup *su, unsigned long long *seed)
{
    const struct avs_c3n_cfg *c = &su->cfg;
    for (int s = 0; s < 4; s++) {
        free(su->x[s]), free(su->gc[s]);
        su->nx[s] = (size_t)su->B * c->C[s] * c->H[s] * c->W[s];
        su->ngc[s] = (size_t)su->B * c->C[s];
        su->x[s] = host_rand(su->nx[s], seed, -1.0f, 1.0f);
        su->gc[s] = host_rand(su->ngc[s], seed, -1.0f, 1.0f);
    }
    free(su->audio), free(su->dl);
    su->na = (size_t)su->B * c->A;
    su->nl = (size_t)su->B * c->K * 16 * c->H[0] * c->W[0];
    su->audio = host_rand(su->na, seed, -1.0f, 1.0f);
    su->dl = host_rand(su->nl, seed, -1.0f, 1.0f);
}

static void random_setup(struct setup *su, unsigned long long seed, int official)
{
    memset(su, 0, sizeof *su);
    draw_cfg(su, &seed, official);
    avs_c3n_head_init(&su->spec, &su->cfg, su->N);
    avs_c3n_head_init_random(&su->spec, seed);
    su->p = set_download(&su->spec.params);
    su->b = set_download(&su->spec.bufs);
    randomize_norms(su, &seed);
    draw_inputs(su, &seed);
}

static void case_name(char *buf, size_t len, const struct setup *su, int k)
{
    const struct avs_c3n_cfg *c = &su->cfg;
    snprintf(buf, len, "case %d: %dx%d C %d,%d,%d,%d D %d Ci %d A %d O %d,%d N %d T %d %s tpavi "
             "0x%x ccam %d K %d", k, c->H[0], c->W[0], c->C[0], c->C[1], c->C[2], c->C[3], c->D,
             c->Ci, c->A, c->O1, c->O2, su->N, c->T, su->train ? "train" : "eval", c->tpavi, su->ccam,
             c->K);
}

struct summary {
    double err; /* the worst error over all cases */
    char where[400];
};

/* case k; official: 0 small random widths, 1 or 2 the official widths (see draw_cfg) */
static void random_case(int k, int official, struct summary *sum)
{
    struct setup su;
    random_setup(&su, 1000003ULL * (unsigned long long)(k + 1), official);
    char what[300];
    case_name(what, sizeof what, &su, k);
    /* the reference on cpu; redraw the inputs while a ReLU input sits within rounding of 0 */
    struct result ref;
    unsigned long long s2 = 77 + (unsigned long long)k;
    int tries = 0;
    for (;;) {
        run_ref(&su, avs_backend_cpu(), &ref);
        if (ref.relu_margin >= RELU_MARGIN || ++tries == 40)
            break;
        result_free(&ref, &su);
        draw_inputs(&su, &s2);
    }
    CHECK(ref.relu_margin >= RELU_MARGIN, "%s: no draw without a ReLU input near 0", what);
    /* the reference on every other backend, and with 1 thread: the same bits (official widths:
     * cpu only; the guard's mprotect of ~150 MB of parameters around every op takes ~10 s, and
     * the code path is the small cases') */
    for (int i = 0; avs_backend_at(i) && !official; i++) {
        const struct avs_ops *be = avs_backend_at(i);
        if (i > 0 || k % 3 == 0) {
            struct result got;
            if (i == 0)
                avs_ops_set_threads(1);
            run_ref(&su, be, &got);
            avs_ops_set_threads(0);
            char w2[400];
            snprintf(w2, sizeof w2, "%s: reference on %s%s vs cpu", what, be->name,
                     i ? "" : " -j 1");
            check_same_bits(w2, &su, &got, &ref);
            result_free(&got, &su);
        }
    }
    /* the fast path, on cpu (and guard once FAST_PATH_ON_GUARD) */
    struct result fast0 = {0};
    for (int i = 0; avs_backend_at(i); i++) {
        const struct avs_ops *be = avs_backend_at(i);
        if (i > 0 && (!FAST_PATH_ON_GUARD || be != avs_backend_guard() || official))
            continue;
        struct result fast;
        run_fast(&su, be, &fast);
        char w2[400];
        snprintf(w2, sizeof w2, "%s: fast path on %s vs reference", what, be->name);
        struct cmp c = {w2, TOL_FAST, 0, ""};
        compare(&c, &su, &fast, &ref, !su.ccam);
        printf("%s (ReLU margin %.1e): worst %s %.2g\n", w2, ref.relu_margin, c.worst_name,
               c.worst);
        if (c.worst > sum->err) {
            sum->err = c.worst;
            snprintf(sum->where, sizeof sum->where, "case %d %s", k, c.worst_name);
        }
        if (i == 0)
            fast0 = fast;
        else {
            snprintf(w2, sizeof w2, "%s: fast path on %s vs cpu", what, be->name);
            check_same_bits(w2, &su, &fast, &fast0);
            result_free(&fast, &su);
        }
    }
    result_free(&fast0, &su);
    result_free(&ref, &su);
    setup_free(&su);
}

int main(void)
{
    avs_ops_set_threads(0);
    printf("fast path runs on: cpu%s (FAST_PATH_ON_GUARD %d); reference on every backend\n",
           FAST_PATH_ON_GUARD ? ", guard" : "", FAST_PATH_ON_GUARD);
    test_l2norm();
    fixture_case("head_eval", 0);
    fixture_case("head_train", 1);
    struct summary sum = {0, ""};
    const char *env = getenv("AVS_TEST_REF_CASES"); /* more small cases (soak runs) */
    int n = env && atoi(env) > 0 ? atoi(env) : 12;
    for (int k = 0; k < n; k++)
        random_case(k < 12 ? k : k + 2, 0, &sum);
    random_case(12, 1, &sum);
    random_case(13, 2, &sum);
    printf("fast path vs reference: worst %s rel L2 %.2g (bound %.0e)\n", sum.where, sum.err,
           TOL_FAST);
    return check_summary("test_model_ref");
}
