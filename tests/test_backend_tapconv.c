/* tests/test_model_tapconv.c: the tap conv primitive (model/ops.h tapconv_*, CPU backend in
 * model/ops_cpu_tapconv.c) against a direct computation in double: forward (with bias),
 * backward data and backward filter (with bias gradient), on random tap sets (offsets past the
 * map, repeated offsets, output larger or smaller than the input), on maps small enough that
 * images are batched into one GEMM and large enough that they are not; and bit identity of
 * 1 and 2 threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "backend/ops.h"
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

static void check_case(int N, int C, int H, int W, int K, int P, int Q, int taps, int span)
{
    struct avs_tapconv g = {N, C, H, W, K, P, Q, taps, {0}, {0}};
    for (int i = 0; i < taps; i++) {
        g.dy[i] = (int)((frand() + 1.0f) * span) - span;
        g.dx[i] = (int)((frand() + 1.0f) * span) - span;
    }
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * K * P * Q, nw = (size_t)K * taps * C;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(K), *dy = rnd(ny);
    float *y = avs_malloc(ny * sizeof(float)), *dx = avs_calloc(nx, sizeof(float));
    float *dw = avs_calloc(nw, sizeof(float)), *db = avs_calloc(K, sizeof(float));
    float *ws = avs_malloc(avs_tapconv_ws(&g) * sizeof(float));
    double *ry = avs_calloc(ny, sizeof(double)), *rdx = avs_calloc(nx, sizeof(double));
    double *rdw = avs_calloc(nw, sizeof(double)), *rdb = avs_calloc(K, sizeof(double));
    reference(ry, rdx, rdw, rdb, x, w, b, dy, &g);
    const struct avs_ops *op = avs_ops();
    op->tapconv_fwd(y, x, w, b, &g, ws);
    op->tapconv_bwd_data(dx, dy, w, &g, ws);
    op->tapconv_bwd_filter(dw, db, dy, x, &g, ws);
    double e[4] = {rel_err(y, ry, ny), rel_err(dx, rdx, nx), rel_err(dw, rdw, nw), rel_err(db, rdb, K)};
    const char *what[4] = {"forward", "backward data", "backward filter", "bias gradient"};
    for (int i = 0; i < 4; i++)
        CHECK(e[i] < 1e-5, "N%d C%d %dx%d K%d -> %dx%d, %d taps: %s rel. L2 error %.2e", N, C, H, W, K,
              P, Q, taps, what[i], e[i]);
    /* bit identity for 1 and 2 threads */
    float *y1 = avs_malloc(ny * sizeof(float)), *dw1 = avs_calloc(nw, sizeof(float));
    avs_ops_set_threads(1);
    op->tapconv_fwd(y1, x, w, b, &g, ws);
    op->tapconv_bwd_filter(dw1, NULL, dy, x, &g, ws);
    avs_ops_set_threads(2);
    float *dw2 = avs_calloc(nw, sizeof(float));
    op->tapconv_bwd_filter(dw2, NULL, dy, x, &g, ws);
    CHECK(!memcmp(y1, y, ny * sizeof(float)) && !memcmp(dw1, dw2, nw * sizeof(float)),
          "N%d %dx%d: 1 and 2 threads differ", N, H, W);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ws);
    free(ry), free(rdx), free(rdw), free(rdb), free(y1), free(dw1), free(dw2);
}

int main(void)
{
    avs_ops_set_threads(2);
    check_case(3, 5, 7, 6, 4, 7, 6, 9, 8);       /* small map: the 3 images in one GEMM */
    check_case(5, 8, 3, 3, 6, 3, 3, 25, 4);      /* 3x3 maps, most taps past the map */
    check_case(2, 4, 50, 47, 3, 50, 47, 5, 20);  /* large map: one image per GEMM */
    check_case(2, 6, 9, 8, 5, 11, 5, 7, 3);      /* output larger in rows, smaller in columns */
    check_case(1, 3, 4, 4, 2, 4, 4, 1, 0);       /* a single centre tap: a 1x1 conv */
    check_case(4, 2, 1, 1, 3, 1, 1, 3, 1);       /* 1x1 maps */
    return check_summary("test_model_tapconv");
}
