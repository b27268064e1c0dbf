/* tests/test_backend_head.c: the C3N head's primitives (backend/ops.h, "head" section) on every
 * registered backend, each against a double-precision reference of its contract:
 *  - taps_split / pixel_shuffle2 / pixel_unshuffle2 / pad_replicate: exact permutations/copies;
 *  - up2conv_compose + pad_replicate + pixel_shuffle2: the interior of the composed conv is the
 *    3x3 conv of the x2 bilinear upsampling U (computed directly, in double);
 *  - up2_ring_cols: the columns are U's 3x3 patches at the ring pixels;
 *  - the backwards (taps_merge, up2conv_decompose, pad_replicate_bwd, up2_ring_cols_bwd) are
 *    the adjoints of their forwards (<dy, f(x)> = <f^T(dy), x> in double), adding into dx;
 *  - ring_set / ring_take against the ring enumerated by hand; l2norm_rows against double;
 *  - ccam_bwd against central differences of CCAM's forward in double.
 * Every backend must give the cpu backend's bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/check.h"

static unsigned long long rng = 12345;

static float urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

static float *rand_host(size_t n)
{
    float *p = avs_malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = urand();
    return p;
}

/* device copy of host[n]; host copy of dev[n] */
static float *up(const float *h, size_t n)
{
    return avs_dev_from_host(h, n);
}

static float *down(const float *d, size_t n)
{
    return avs_host_from_dev(d, n);
}

static double rel_err(const float *got, const double *want, size_t n)
{
    double e = 0, w = 0;
    for (size_t i = 0; i < n; i++)
        e += (got[i] - want[i]) * (got[i] - want[i]), w += want[i] * want[i];
    return sqrt(e / (w > 0 ? w : 1));
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Results of one backend, compared bit for bit with the cpu backend's. */
#define MAXOUT 32
struct outs {
    float *p[MAXOUT];
    size_t n[MAXOUT];
    const char *what[MAXOUT];
    int k;
};

static void keep(struct outs *o, const char *what, float *host, size_t n)
{
    AVS_ASSERT(o->k < MAXOUT);
    o->what[o->k] = what, o->p[o->k] = host, o->n[o->k++] = n;
}

/* ---- geometry helpers of the references ---- */

static const double up_c[2][3] = {{0.25, 0.75, 0.0}, {0.0, 0.75, 0.25}};

/* U[m][l] of the x2 bilinear upsampling (align_corners false) of x [H,W]; 0 outside U */
static double up2(const float *x, int H, int W, int m, int l)
{
    if (m < 0 || m >= 2 * H || l < 0 || l >= 2 * W)
        return 0;
    double v = 0;
    for (int u = -1; u <= 1; u++)
        for (int w = -1; w <= 1; w++) {
            int i = (m >> 1) + u, j = (l >> 1) + w;
            i = i < 0 ? 0 : i >= H ? H - 1 : i;
            j = j < 0 ? 0 : j >= W ? W - 1 : j;
            v += up_c[m & 1][u + 1] * up_c[l & 1][w + 1] * x[i * W + j];
        }
    return v;
}

static int on_ring(int p, int q, int P, int Q)
{
    return p == 0 || q == 0 || p == P - 1 || q == Q - 1;
}

/* the P*Q indices of the ring pixels of a P x Q map, row-major; returns their count */
static int ring_list(int *pq, int P, int Q)
{
    int n = 0;
    for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++)
            if (on_ring(p, q, P, Q))
                pq[n++] = p * Q + q;
    return n;
}

/* ---- the tests, one backend at a time ---- */

static void t_taps(const struct avs_ops *op, struct outs *o)
{
    enum { K = 5, C = 7, T = 9 };
    float *w = rand_host(K * C * T), *dwt = rand_host(T * K * C), *dw0 = rand_host(K * C * T);
    float *dw_ = up(w, K * C * T), *dwt_ = up(dwt, T * K * C), *wt_ = avs_dev_alloc(T * K * C, "wt");
    float *acc_ = up(dw0, K * C * T);
    op->taps_split(wt_, dw_, K, C, T);
    op->taps_merge(acc_, dwt_, K, C, T);
    float *wt = down(wt_, T * K * C), *acc = down(acc_, K * C * T);
    int bad = 0;
    double ref[K * C * T];
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++) {
                bad += wt[(t * K + k) * C + c] != w[(k * C + c) * T + t];
                ref[(k * C + c) * T + t] = (double)dw0[(k * C + c) * T + t] + dwt[(t * K + k) * C + c];
            }
    CHECK(!bad, "%s taps_split: %d elements misplaced", op->name, bad);
    CHECK(rel_err(acc, ref, K * C * T) < 1e-7, "%s taps_merge: rel err %g", op->name,
          rel_err(acc, ref, K * C * T));
    keep(o, "taps_split", wt, T * K * C);
    keep(o, "taps_merge", acc, K * C * T);
    free(w), free(dwt), free(dw0);
    avs_dev_free(&dw_), avs_dev_free(&dwt_), avs_dev_free(&wt_), avs_dev_free(&acc_);
}

static void t_shuffle_pad(const struct avs_ops *op, struct outs *o)
{
    enum { NC = 3, H = 5, W = 6 };
    size_t n = (size_t)4 * NC * H * W, np = (size_t)NC * (H + 2) * (W + 2);
    float *x = rand_host(n), *x_ = up(x, n), *y_ = avs_dev_alloc(n, "y"), *z_ = avs_dev_alloc(n, "z");
    op->pixel_shuffle2(y_, x_, NC, H, W);
    op->pixel_unshuffle2(z_, y_, NC, H, W);
    float *y = down(y_, n), *z = down(z_, n);
    int bad = 0;
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < 2 * H; i++)
            for (int j = 0; j < 2 * W; j++)
                bad += y[((size_t)c * 2 * H + i) * 2 * W + j] !=
                       x[(((size_t)c * 4 + 2 * (i & 1) + (j & 1)) * H + i / 2) * W + j / 2];
    CHECK(!bad, "%s pixel_shuffle2: %d misplaced", op->name, bad);
    CHECK(!memcmp(z, x, n * sizeof(float)), "%s pixel_unshuffle2 is not the inverse", op->name);
    /* replicate padding of the first NC*4 planes of x as [4NC, H, W] */
    float *p_ = avs_dev_alloc(4 * np, "pad"), *dy = rand_host(4 * np), *dy_ = up(dy, 4 * np);
    float *dx_ = up(x, n);
    op->pad_replicate(p_, x_, 4 * NC, H, W);
    op->pad_replicate_bwd(dx_, dy_, 4 * NC, H, W);
    float *p = down(p_, 4 * np), *dx = down(dx_, n);
    double *ref = calloc(n, sizeof(double));
    bad = 0;
    for (int c = 0; c < 4 * NC; c++)
        for (int i = 0; i < H + 2; i++)
            for (int j = 0; j < W + 2; j++) {
                int si = i < 1 ? 0 : i > H ? H - 1 : i - 1, sj = j < 1 ? 0 : j > W ? W - 1 : j - 1;
                size_t src = ((size_t)c * H + si) * W + sj, at = ((size_t)c * (H + 2) + i) * (W + 2) + j;
                bad += p[at] != x[src];
                ref[src] += dy[at];
            }
    for (size_t i = 0; i < n; i++)
        ref[i] += x[i];
    CHECK(!bad, "%s pad_replicate: %d wrong", op->name, bad);
    CHECK(rel_err(dx, ref, n) < 1e-6, "%s pad_replicate_bwd: rel err %g", op->name, rel_err(dx, ref, n));
    keep(o, "pixel_shuffle2", y, n);
    keep(o, "pad_replicate", p, 4 * np);
    keep(o, "pad_replicate_bwd", dx, n);
    free(x), free(z), free(dy), free(ref);
    avs_dev_free(&x_), avs_dev_free(&y_), avs_dev_free(&z_), avs_dev_free(&p_), avs_dev_free(&dy_);
    avs_dev_free(&dx_);
}

/* compose + pad + conv + shuffle (conv done here in double from the device's kc and hp) against
 * the direct 3x3 conv of U, off the ring; decompose as compose's adjoint */
static void t_up2conv(const struct avs_ops *op, struct outs *o)
{
    enum { K = 3, C = 4, H = 5, W = 4 };
    size_t nw = (size_t)K * C * 9, nk = 4 * nw, nh = (size_t)C * H * W, np = (size_t)C * (H + 2) * (W + 2);
    float *w = rand_host(nw), *b = rand_host(K), *x = rand_host(nh);
    float *w_ = up(w, nw), *b_ = up(b, K), *x_ = up(x, nh);
    float *kc_ = avs_dev_alloc(nk, "kc"), *kcb_ = avs_dev_alloc(4 * K, "kcb"), *hp_ = avs_dev_alloc(np, "hp");
    op->up2conv_compose(kc_, kcb_, w_, b_, K, C);
    op->pad_replicate(hp_, x_, C, H, W);
    float *kc = down(kc_, nk), *kcb = down(kcb_, 4 * K), *hp = down(hp_, np);
    double e2 = 0, r2 = 0;
    for (int k = 0; k < K; k++)
        for (int P = 1; P < 2 * H - 1; P++)
            for (int Q = 1; Q < 2 * W - 1; Q++) {
                double direct = b[k], comp;
                for (int c = 0; c < C; c++)
                    for (int r = 0; r < 3; r++)
                        for (int s = 0; s < 3; s++)
                            direct += w[((k * C + c) * 3 + r) * 3 + s] * up2(x + c * H * W, H, W, P + r - 1, Q + s - 1);
                int p = 2 * (P & 1) + (Q & 1), i = P / 2, j = Q / 2;
                comp = kcb[4 * k + p];
                for (int c = 0; c < C; c++)
                    for (int u = 0; u < 3; u++)
                        for (int v = 0; v < 3; v++)
                            comp += (double)kc[(((size_t)(4 * k + p) * C + c) * 3 + u) * 3 + v] *
                                    hp[((size_t)c * (H + 2) + i + u) * (W + 2) + j + v];
                e2 += (comp - direct) * (comp - direct), r2 += direct * direct;
            }
    CHECK(sqrt(e2 / r2) < 1e-6, "%s up2conv_compose: the interior differs from the conv of U by %g",
          op->name, sqrt(e2 / r2));
    /* decompose: <dkc, kc(w)> + <dkcb, kcb(b)> = <dw, w> + <db, b> with dw, db added to zeros */
    float *dkc = rand_host(nk), *dkcb = rand_host(4 * K), *dkc_ = up(dkc, nk), *dkcb_ = up(dkcb, 4 * K);
    float *dw_ = avs_dev_alloc(nw, "dw"), *db_ = avs_dev_alloc(K, "db");
    op->up2conv_decompose(dw_, db_, dkc_, dkcb_, K, C);
    float *dw = down(dw_, nw), *db = down(db_, K);
    double lhs = dot(dkc, kc, nk) + dot(dkcb, kcb, 4 * K), rhs = dot(dw, w, nw) + dot(db, b, K);
    CHECK(fabs(lhs - rhs) <= 1e-5 * fabs(lhs), "%s up2conv_decompose is not compose's adjoint: %.9g vs %.9g",
          op->name, lhs, rhs);
    keep(o, "up2conv_compose", kc, nk);
    keep(o, "up2conv_decompose", dw, nw);
    free(w), free(b), free(x), free(kcb), free(hp), free(dkc), free(dkcb), free(db);
    avs_dev_free(&w_), avs_dev_free(&b_), avs_dev_free(&x_), avs_dev_free(&kc_), avs_dev_free(&kcb_);
    avs_dev_free(&hp_), avs_dev_free(&dkc_), avs_dev_free(&dkcb_), avs_dev_free(&dw_), avs_dev_free(&db_);
}

/* the ring's columns against U's patches; the bwd as the adjoint (added into a non-zero dhp) */
static void t_ring_cols(const struct avs_ops *op, struct outs *o, int H, int W)
{
    enum { B = 2, C = 3 };
    int n = avs_ring_n(2 * H, 2 * W), *pq = avs_malloc((size_t)4 * H * W * sizeof(int));
    CHECK(ring_list(pq, 2 * H, 2 * W) == n, "avs_ring_n(%d, %d) = %d", 2 * H, 2 * W, n);
    size_t nh = (size_t)B * C * H * W, np = (size_t)B * C * (H + 2) * (W + 2), ncol = (size_t)C * 9 * B * n;
    float *x = rand_host(nh), *x_ = up(x, nh), *hp_ = avs_dev_alloc(np, "hp"), *col_ = avs_dev_alloc(ncol, "col");
    op->pad_replicate(hp_, x_, B * C, H, W);
    op->up2_ring_cols(col_, hp_, B, C, H, W);
    float *col = down(col_, ncol), *hp = down(hp_, np);
    double *ref = avs_malloc(ncol * sizeof(double));
    for (int c = 0; c < C; c++)
        for (int rs = 0; rs < 9; rs++)
            for (int bi = 0; bi < B; bi++)
                for (int t = 0; t < n; t++) {
                    int P = pq[t] / (2 * W), Q = pq[t] % (2 * W);
                    ref[((size_t)c * 9 + rs) * B * n + (size_t)bi * n + t] =
                        up2(x + ((size_t)bi * C + c) * H * W, H, W, P + rs / 3 - 1, Q + rs % 3 - 1);
                }
    CHECK(rel_err(col, ref, ncol) < 1e-7, "%s up2_ring_cols %dx%d: rel err %g", op->name, H, W,
          rel_err(col, ref, ncol));
    float *dcol = rand_host(ncol), *dcol_ = up(dcol, ncol), *h0 = rand_host(np), *dhp_ = up(h0, np);
    op->up2_ring_cols_bwd(dhp_, dcol_, B, C, H, W);
    float *dhp = down(dhp_, np);
    double lhs = dot(dcol, col, ncol), rhs = dot(dhp, hp, np) - dot(h0, hp, np);
    CHECK(fabs(lhs - rhs) <= 1e-5 * fabs(lhs), "%s up2_ring_cols_bwd is not the adjoint: %.9g vs %.9g",
          op->name, lhs, rhs);
    keep(o, "up2_ring_cols", col, ncol);
    keep(o, "up2_ring_cols_bwd", dhp, np);
    free(pq), free(x), free(hp), free(ref), free(dcol), free(h0);
    avs_dev_free(&x_), avs_dev_free(&hp_), avs_dev_free(&col_), avs_dev_free(&dcol_), avs_dev_free(&dhp_);
}

static void t_ring_set_take(const struct avs_ops *op, struct outs *o)
{
    enum { B = 2, K = 3, P = 6, Q = 5 };
    int n = avs_ring_n(P, Q), pq[P * Q];
    ring_list(pq, P, Q);
    size_t ny = (size_t)B * K * P * Q, nr = (size_t)K * B * n;
    float *y = rand_host(ny), *yr = rand_host(nr), *b = rand_host(K);
    float *y_ = up(y, ny), *yr_ = up(yr, nr), *b_ = up(b, K), *t_ = avs_dev_alloc(nr, "taken");
    op->ring_set(y_, yr_, b_, B, K, P, Q);
    float *ys = down(y_, ny);
    op->ring_take(t_, y_, B, K, P, Q);
    float *yt = down(y_, ny), *tk = down(t_, nr);
    int bad = 0, r = 0;
    for (int bi = 0; bi < B; bi++)
        for (int k = 0; k < K; k++)
            for (int i = 0; i < P * Q; i++) {
                size_t at = ((size_t)bi * K + k) * P * Q + i;
                int ring = on_ring(i / Q, i % Q, P, Q);
                if (!ring) {
                    bad += ys[at] != y[at] || yt[at] != y[at];
                    continue;
                }
                int t = 0;
                while (pq[t] != i)
                    t++;
                size_t ri = (size_t)k * B * n + (size_t)bi * n + t;
                bad += ys[at] != yr[ri] + b[k] || yt[at] != 0.0f || tk[ri] != ys[at];
                r++;
            }
    CHECK(!bad && r == B * K * n, "%s ring_set/ring_take: %d wrong of %d ring pixels", op->name, bad, r);
    keep(o, "ring_set", ys, ny);
    keep(o, "ring_take", tk, nr);
    free(y), free(yr), free(b), free(yt);
    avs_dev_free(&y_), avs_dev_free(&yr_), avs_dev_free(&b_), avs_dev_free(&t_);
}

/* CCAM's forward in double (model/nn.h): out = x1 * sigmoid(mean_c x1), x1 = x * s */
static double ccam_loss(const double *x, const float *s, const float *dout, int N, int C, int HW)
{
    double L = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            double m = 0;
            for (int c = 0; c < C; c++)
                m += x[((size_t)n * C + c) * HW + i] * s[n * C + c];
            double g = 1 / (1 + exp(-m / C));
            for (int c = 0; c < C; c++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                L += dout[k] * x[k] * s[n * C + c] * g;
            }
        }
    return L;
}

static void t_ccam(const struct avs_ops *op, struct outs *o)
{
    enum { N = 2, C = 5, HW = 7, R = 3, L = 6 };
    size_t n = (size_t)N * C * HW;
    float *x = rand_host(n), *s = rand_host(N * C), *dout = rand_host(n), *dx0 = rand_host(n);
    for (int i = 0; i < N * C; i++)
        s[i] = 0.5f + 0.4f * s[i];
    float *x1 = avs_malloc(n * sizeof(float)), sm[N * HW];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < HW; i++) {
            double m = 0;
            for (int c = 0; c < C; c++) {
                size_t j = ((size_t)k * C + c) * HW + i;
                x1[j] = x[j] * s[k * C + c];
                m += x1[j];
            }
            sm[k * HW + i] = (float)(1 / (1 + exp(-m / C)));
        }
    float *dx_ = up(dx0, n), *dout_ = up(dout, n), *s_ = up(s, N * C), *x1_ = up(x1, n);
    float *sm_ = up(sm, N * HW), *ws_ = avs_dev_alloc(N * HW, "ws");
    op->ccam_bwd(dx_, dout_, s_, x1_, sm_, N, C, HW, ws_);
    float *dx = down(dx_, n);
    /* central differences of the double forward (x1 and sm as the primitive sees them) */
    double *xd = avs_malloc(n * sizeof(double)), *ref = avs_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        xd[i] = x[i];
    for (size_t i = 0; i < n; i++) {
        double h = 1e-6, v = xd[i];
        xd[i] = v + h;
        double lp = ccam_loss(xd, s, dout, N, C, HW);
        xd[i] = v - h;
        double lm = ccam_loss(xd, s, dout, N, C, HW);
        xd[i] = v;
        ref[i] = dx0[i] + (lp - lm) / (2 * h);
    }
    CHECK(rel_err(dx, ref, n) < 1e-5, "%s ccam_bwd vs finite differences: rel err %g", op->name,
          rel_err(dx, ref, n));
    /* l2norm_rows: rows of L values, one of them all zero (the eps floor) */
    float *a = rand_host(R * L), *a_, *y_ = avs_dev_alloc(R * L, "y");
    memset(a + L, 0, L * sizeof(float));
    a_ = up(a, R * L);
    op->l2norm_rows(y_, a_, R, L, 1e-12f);
    float *y = down(y_, R * L);
    double yr[R * L];
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int c = 0; c < L; c++)
            ss += (double)a[r * L + c] * a[r * L + c];
        double nrm = fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < L; c++)
            yr[r * L + c] = a[r * L + c] / nrm;
    }
    CHECK(rel_err(y, yr, R * L) < 1e-7, "%s l2norm_rows: rel err %g", op->name, rel_err(y, yr, R * L));
    keep(o, "ccam_bwd", dx, n);
    keep(o, "l2norm_rows", y, R * L);
    free(x), free(s), free(dout), free(dx0), free(x1), free(xd), free(ref), free(a);
    avs_dev_free(&dx_), avs_dev_free(&dout_), avs_dev_free(&s_), avs_dev_free(&x1_);
    avs_dev_free(&sm_), avs_dev_free(&ws_), avs_dev_free(&a_), avs_dev_free(&y_);
}

static void run_all(const struct avs_ops *be, struct outs *o)
{
    avs_backend_set(be);
    const struct avs_ops *op = avs_ops();
    rng = 12345; /* the same inputs on every backend */
    t_taps(op, o);
    t_shuffle_pad(op, o);
    t_up2conv(op, o);
    t_ring_cols(op, o, 5, 4);
    t_ring_cols(op, o, 1, 3); /* maps too small to have an inside: every pixel is ring */
    t_ring_set_take(op, o);
    t_ccam(op, o);
}

int main(void)
{
    avs_ops_set_threads(0);
    struct outs ref = {0};
    run_all(avs_backend_at(0), &ref);
    for (int i = 1; avs_backend_at(i); i++) {
        struct outs o = {0};
        run_all(avs_backend_at(i), &o);
        CHECK(o.k == ref.k, "%s: %d results, cpu %d", avs_backend_at(i)->name, o.k, ref.k);
        for (int k = 0; k < o.k && k < ref.k; k++) {
            CHECK(o.n[k] == ref.n[k] && !memcmp(o.p[k], ref.p[k], o.n[k] * sizeof(float)),
                  "%s %s: not the cpu backend's bits", avs_backend_at(i)->name, o.what[k]);
            free(o.p[k]);
        }
    }
    for (int k = 0; k < ref.k; k++)
        free(ref.p[k]);
    avs_backend_set(avs_backend_cpu());
    return check_summary("test_backend_head");
}
