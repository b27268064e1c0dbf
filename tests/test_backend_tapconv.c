/* tests/test_backend_tapconv.c: the tap conv primitive (backend/ops.h tapconv_*, CPU backend
 * in backend/cpu/tapconv.c) against a direct computation in double: forward (with bias),
 * backward data and backward filter (with bias gradient), on random tap sets (offsets past the
 * map, repeated offsets, output larger or smaller than the input), on maps small enough that
 * images are batched into one GEMM and large enough that they are not; and bit identity of
 * 1 and 2 threads. On every registered backend (tests/backends.h), bits equal to cpu's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/common.h"
#include "tests/backends.h"
#include "tests/check.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;

static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24) * 2.0 - 1.0);
}

static float *rnd(size_t n)
{
    float *p = avs_malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static double rel_err(const float *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
    return sqrt(num / (den > 0 ? den : 1));
}

/* in(n, c, p + dy, q + dx) or 0 outside */
static double at(const float *x, const struct avs_tapconv *g, int n, int c, int h, int w)
{
    if (h < 0 || h >= g->H || w < 0 || w >= g->W)
        return 0.0;
    return x[(((size_t)n * g->C + c) * g->H + h) * g->W + w];
}

static void reference(double *y, double *dx, double *dw, double *db, const float *x, const float *w,
                      const float *b, const float *dy, const struct avs_tapconv *g)
{
    for (int n = 0; n < g->N; n++)
        for (int k = 0; k < g->K; k++)
            for (int p = 0; p < g->P; p++)
                for (int q = 0; q < g->Q; q++) {
                    size_t o = (((size_t)n * g->K + k) * g->P + p) * g->Q + q;
                    double s = b[k];
                    db[k] += dy[o];
                    for (int i = 0; i < g->n; i++)
                        for (int c = 0; c < g->C; c++) {
                            int h = p + g->dy[i], v = q + g->dx[i];
                            size_t wi = ((size_t)k * g->n + i) * g->C + c;
                            s += w[wi] * at(x, g, n, c, h, v);
                            dw[wi] += dy[o] * at(x, g, n, c, h, v);
                            if (h >= 0 && h < g->H && v >= 0 && v < g->W)
                                dx[(((size_t)n * g->C + c) * g->H + h) * g->W + v] += dy[o] * w[wi];
                        }
                    y[o] = s;
                }
}

/* the three passes on the backend: y = fwd, dx (from 0) += bwd_data, dw, db (from 0) +=
 * bwd_filter; returned on the host */
struct tap_result {
    float *y, *dx, *dw, *db;
};

static struct tap_result run(const float *x, const float *w, const float *b, const float *dy,
                             const struct avs_tapconv *g)
{
    size_t nx = (size_t)g->N * g->C * g->H * g->W, ny = (size_t)g->N * g->K * g->P * g->Q;
    size_t nw = (size_t)g->K * g->n * g->C;
    const struct avs_ops *op = avs_ops();
    float *xd = avs_dev_from_host(x, nx), *wd = avs_dev_from_host(w, nw);
    float *bd = avs_dev_from_host(b, (size_t)g->K), *dyd = avs_dev_from_host(dy, ny);
    float *y = avs_dev_alloc(ny, "y"), *dx = avs_dev_alloc(nx, "dx"), *dw = avs_dev_alloc(nw, "dw");
    float *db = avs_dev_alloc((size_t)g->K, "db"), *ws = avs_dev_alloc(avs_tapconv_ws(g), "scratch");
    op->tapconv_fwd(y, xd, wd, bd, g, ws);
    op->tapconv_bwd_data(dx, dyd, wd, g, ws);
    op->tapconv_bwd_filter(dw, db, dyd, xd, g, ws);
    struct tap_result r = {avs_host_from_dev(y, ny), avs_host_from_dev(dx, nx),
                           avs_host_from_dev(dw, nw), avs_host_from_dev(db, (size_t)g->K)};
    avs_dev_free(&xd), avs_dev_free(&wd), avs_dev_free(&bd), avs_dev_free(&dyd);
    avs_dev_free(&y), avs_dev_free(&dx), avs_dev_free(&dw), avs_dev_free(&db), avs_dev_free(&ws);
    return r;
}

/* fwd and bwd_filter without a bias gradient, the active thread count: y, dw on the host */
static void run_fwd_filter(float **y, float **dw, const float *x, const float *w, const float *b,
                           const float *dy, const struct avs_tapconv *g)
{
    size_t nx = (size_t)g->N * g->C * g->H * g->W, ny = (size_t)g->N * g->K * g->P * g->Q;
    size_t nw = (size_t)g->K * g->n * g->C;
    const struct avs_ops *op = avs_ops();
    float *xd = avs_dev_from_host(x, nx), *wd = avs_dev_from_host(w, nw);
    float *bd = avs_dev_from_host(b, (size_t)g->K), *dyd = avs_dev_from_host(dy, ny);
    float *yd = avs_dev_alloc(ny, "y"), *dwd = avs_dev_alloc(nw, "dw");
    float *ws = avs_dev_alloc(avs_tapconv_ws(g), "scratch");
    op->tapconv_fwd(yd, xd, wd, bd, g, ws);
    op->tapconv_bwd_filter(dwd, NULL, dyd, xd, g, ws);
    *y = avs_host_from_dev(yd, ny), *dw = avs_host_from_dev(dwd, nw);
    avs_dev_free(&xd), avs_dev_free(&wd), avs_dev_free(&bd), avs_dev_free(&dyd);
    avs_dev_free(&yd), avs_dev_free(&dwd), avs_dev_free(&ws);
}

static void check_case(int N, int C, int H, int W, int K, int P, int Q, int taps, int span)
{
    struct avs_tapconv g = {N, C, H, W, K, P, Q, taps, {0}, {0}};
    for (int i = 0; i < taps; i++) {
        g.dy[i] = (int)((frand() + 1.0f) * span) - span;
        g.dx[i] = (int)((frand() + 1.0f) * span) - span;
    }
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * K * P * Q, nw = (size_t)K * taps * C;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(K), *dy = rnd(ny);
    double *ry = avs_calloc(ny, sizeof(double)), *rdx = avs_calloc(nx, sizeof(double));
    double *rdw = avs_calloc(nw, sizeof(double)), *rdb = avs_calloc(K, sizeof(double));
    reference(ry, rdx, rdw, rdb, x, w, b, dy, &g);
    struct tap_result r = run(x, w, b, dy, &g);
    double e[4] = {rel_err(r.y, ry, ny), rel_err(r.dx, rdx, nx), rel_err(r.dw, rdw, nw), rel_err(r.db, rdb, K)};
    const char *what[4] = {"forward", "backward data", "backward filter", "bias gradient"};
    const float *got[4] = {r.y, r.dx, r.dw, r.db};
    size_t n[4] = {ny, nx, nw, (size_t)K};
    for (int i = 0; i < 4; i++) {
        CHECK(e[i] < 1e-5, "N%d C%d %dx%d K%d -> %dx%d, %d taps on %s: %s rel. L2 error %.2e", N, C, H,
              W, K, P, Q, taps, backend_now()->name, what[i], e[i]);
        char name[96];
        snprintf(name, sizeof name, "N%d C%d %dx%d K%d, %d taps: %s", N, C, H, W, K, taps, what[i]);
        same_bits(name, got[i], n[i]);
    }
    /* bit identity for 1 and 2 threads */
    float *y1, *dw1, *y2, *dw2;
    avs_ops_set_threads(1);
    run_fwd_filter(&y1, &dw1, x, w, b, dy, &g);
    avs_ops_set_threads(2);
    run_fwd_filter(&y2, &dw2, x, w, b, dy, &g);
    CHECK(!memcmp(y1, r.y, ny * sizeof(float)) && !memcmp(y1, y2, ny * sizeof(float)) &&
              !memcmp(dw1, dw2, nw * sizeof(float)),
          "N%d %dx%d on %s: 1 and 2 threads differ", N, H, W, backend_now()->name);
    free(x), free(w), free(b), free(dy), free(r.y), free(r.dx), free(r.dw), free(r.db);
    free(ry), free(rdx), free(rdw), free(rdb), free(y1), free(dw1), free(y2), free(dw2);
}

static void test_cases(void)
{
    avs_ops_set_threads(2);
    check_case(3, 5, 7, 6, 4, 7, 6, 9, 8);       /* small map: the 3 images in one GEMM */
    check_case(5, 8, 3, 3, 6, 3, 3, 25, 4);      /* 3x3 maps, most taps past the map */
    check_case(2, 4, 50, 47, 3, 50, 47, 5, 20);  /* large map: one image per GEMM */
    check_case(2, 6, 9, 8, 5, 11, 5, 7, 3);      /* output larger in rows, smaller in columns */
    check_case(1, 3, 4, 4, 2, 4, 4, 1, 0);       /* a single centre tap: a 1x1 conv */
    check_case(4, 2, 1, 1, 3, 1, 1, 3, 1);       /* 1x1 maps */
}

int main(void)
{
    backends_keep(&rng, sizeof rng);
    on_every_backend("tap convs", test_cases);
    return check_summary("test_backend_tapconv");
}
