/* tests/test_backend_tokens.c: the PVT/VGGish primitives of the backend table (backend/ops.h:
 * transpose, dwconv3_fwd/bwd_data/bwd_filter, tokmean_fwd/bwd, maxpool2_fwd) against
 * double-precision references written here from their contracts (including "adds into" on
 * outputs that start non-zero), on every registered backend (tests/backends.h): each gives
 * the cpu's bits, and 1 thread gives the bits of 2. Shapes are odd (tiles cut) and large
 * enough for the parallel paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "tests/backends.h"
#include "tests/check.h"

enum { N = 2, H = 19, W = 21, C = 97, R = 37, CT = 45, NC = 6, PH = 30, PW = 26 };
enum { T_TR, T_FWD, T_BWDD, T_DW, T_DB, T_MEAN, T_MEANB, T_POOL, NOUT };
static const char *const names[NOUT] = {"transpose", "dwconv3_fwd", "dwconv3_bwd_data",
                                        "dwconv3_bwd_filter dw", "dwconv3_bwd_filter db",
                                        "tokmean_fwd", "tokmean_bwd", "maxpool2_fwd"};

static uint64_t rs = 7;
static float frand(void)
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rs >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *rnd(size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

/* the inputs (host), the same for every backend */
static float *tx, *x, *w, *b, *dy, *dx0, *dw0, *db0, *my, *px;
static const size_t ntok = (size_t)N * H * W * C;

/* Outputs of one backend, downloaded. */
struct res {
    float *o[NOUT];
    size_t n[NOUT];
};

static float *run_one(int k, size_t n, const float *init, size_t *nout)
{
    *nout = n;
    return init ? avs_dev_from_host(init, n) : avs_dev_alloc(n, names[k]);
}

static void run_all(struct res *r)
{
    const struct avs_ops *op = avs_ops();
    float *d[NOUT];
    float *dtx = avs_dev_from_host(tx, (size_t)N * R * CT), *dx = avs_dev_from_host(x, ntok);
    float *dwt = avs_dev_from_host(w, (size_t)C * 9), *dbi = avs_dev_from_host(b, C);
    float *ddy = avs_dev_from_host(dy, ntok), *dmy = avs_dev_from_host(my, (size_t)N * C);
    float *dpx = avs_dev_from_host(px, (size_t)NC * PH * PW);
    float *ws = avs_dev_alloc(avs_dwconv3_ws(N, H, C), "dwconv3 scratch");
    d[T_TR] = run_one(T_TR, (size_t)N * R * CT, NULL, &r->n[T_TR]);
    op->transpose(d[T_TR], dtx, N, R, CT);
    d[T_FWD] = run_one(T_FWD, ntok, NULL, &r->n[T_FWD]);
    op->dwconv3_fwd(d[T_FWD], dx, dwt, dbi, N, H, W, C, ws);
    d[T_BWDD] = run_one(T_BWDD, ntok, dx0, &r->n[T_BWDD]);
    op->dwconv3_bwd_data(d[T_BWDD], ddy, dwt, N, H, W, C, ws);
    d[T_DW] = run_one(T_DW, (size_t)C * 9, dw0, &r->n[T_DW]);
    d[T_DB] = run_one(T_DB, C, db0, &r->n[T_DB]);
    op->dwconv3_bwd_filter(d[T_DW], d[T_DB], ddy, dx, N, H, W, C, ws);
    d[T_MEAN] = run_one(T_MEAN, (size_t)N * C, NULL, &r->n[T_MEAN]);
    op->tokmean_fwd(d[T_MEAN], dx, N, H * W, C);
    d[T_MEANB] = run_one(T_MEANB, ntok, dx0, &r->n[T_MEANB]);
    op->tokmean_bwd(d[T_MEANB], dmy, N, H * W, C);
    d[T_POOL] = run_one(T_POOL, (size_t)NC * (PH / 2) * (PW / 2), NULL, &r->n[T_POOL]);
    op->maxpool2_fwd(d[T_POOL], dpx, NC, PH, PW);
    for (int k = 0; k < NOUT; k++) {
        r->o[k] = avs_host_from_dev(d[k], r->n[k]);
        avs_dev_free(&d[k]);
    }
    avs_dev_free(&dtx), avs_dev_free(&dx), avs_dev_free(&dwt), avs_dev_free(&dbi);
    avs_dev_free(&ddy), avs_dev_free(&dmy), avs_dev_free(&dpx), avs_dev_free(&ws);
}

/* ---- double-precision references from the contracts ---- */

static size_t tok(int n, int i, int j, int c)
{
    return (((size_t)n * H + i) * W + j) * C + c;
}

static double *references(size_t n[NOUT])
{
    double *ref = calloc(ntok * 4 + (size_t)N * R * CT + (size_t)C * 10 + (size_t)N * C + 4096,
                         sizeof(double));
    double *tr = ref, *fw = tr + (size_t)N * R * CT, *bd = fw + ntok, *dw = bd + ntok,
           *db = dw + (size_t)C * 9, *mn = db + C, *mb = mn + (size_t)N * C, *pl = mb + ntok;
    for (int k = 0; k < N; k++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < CT; c++)
                tr[((size_t)k * CT + c) * R + r] = tx[((size_t)k * R + r) * CT + c];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int c = 0; c < C; c++) {
                    double s = b[c];
                    for (int t = 0; t < 9; t++) {
                        int ii = i + t / 3 - 1, jj = j + t % 3 - 1;
                        if (ii < 0 || ii >= H || jj < 0 || jj >= W)
                            continue;
                        s += (double)w[c * 9 + t] * x[tok(k, ii, jj, c)];
                        /* backward: output (i,j) read input (ii,jj) through tap t */
                        bd[tok(k, ii, jj, c)] += (double)w[c * 9 + t] * dy[tok(k, i, j, c)];
                        dw[c * 9 + t] += (double)dy[tok(k, i, j, c)] * x[tok(k, ii, jj, c)];
                    }
                    fw[tok(k, i, j, c)] = s;
                    db[c] += dy[tok(k, i, j, c)];
                    mn[(size_t)k * C + c] += (double)x[tok(k, i, j, c)] / (H * W);
                    mb[tok(k, i, j, c)] = dx0[tok(k, i, j, c)] + (double)my[(size_t)k * C + c] / (H * W);
                }
    for (size_t i = 0; i < ntok; i++)
        bd[i] += dx0[i];
    for (int i = 0; i < C * 9; i++)
        dw[i] += dw0[i];
    for (int i = 0; i < C; i++)
        db[i] += db0[i];
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < PH / 2; i++)
            for (int j = 0; j < PW / 2; j++) {
                const float *p = px + ((size_t)c * PH + 2 * i) * PW + 2 * j;
                pl[((size_t)c * (PH / 2) + i) * (PW / 2) + j] =
                    fmax(fmax(p[0], p[1]), fmax(p[PW], p[PW + 1]));
            }
    size_t sz[NOUT] = {(size_t)N * R * CT, ntok, ntok, (size_t)C * 9, C, (size_t)N * C, ntok,
                       (size_t)NC * (PH / 2) * (PW / 2)};
    memcpy(n, sz, sizeof sz);
    return ref;
}

static void check_refs(const struct res *r)
{
    size_t n[NOUT];
    double *ref = references(n), *p = ref;
    for (int k = 0; k < NOUT; k++) {
        double num = 0, den = 0, worst = 0;
        CHECK(r->n[k] == n[k], "%s: %zu values, expected %zu", names[k], r->n[k], n[k]);
        for (size_t i = 0; i < n[k] && r->n[k] == n[k]; i++) {
            double e = r->o[k][i] - p[i];
            num += e * e, den += p[i] * p[i], worst = fmax(worst, fabs(e));
        }
        double rel = sqrt(num / (den > 0 ? den : 1));
        /* exact ones: data movement and max; the sums: float accumulation (double in the
         * filter gradient and the mean) */
        double tol = k == T_TR || k == T_POOL ? 0 : k == T_FWD || k == T_BWDD || k == T_MEANB ? 1e-6 : 1e-7;
        printf("%-24s rel L2 %.3g, worst |d| %.3g\n", names[k], rel, worst);
        CHECK(rel <= tol, "%s: rel L2 error %.3g > %.1g vs the double reference", names[k], rel, tol);
        p += n[k]; /* the references lie in output order */
    }
    free(ref);
}

static void res_free(struct res *r)
{
    for (int k = 0; k < NOUT; k++)
        free(r->o[k]);
}

/* the same bits in r1 and r2 (1 thread vs 2) */
static void same_threads(const struct res *r1, const struct res *r2)
{
    for (int k = 0; k < NOUT; k++)
        CHECK(r1->n[k] == r2->n[k] && !memcmp(r1->o[k], r2->o[k], r1->n[k] * sizeof(float)),
              "%s on %s: 1 thread differs from 2 in bits", names[k], backend_now()->name);
}

/* One pass on the active backend: against the references, bits against cpu's, 1 vs 2 threads. */
static void test_tokens(void)
{
    struct res r = {0}, r1 = {0};
    avs_ops_set_threads(2);
    run_all(&r);
    check_refs(&r);
    for (int k = 0; k < NOUT; k++)
        same_bits(names[k], r.o[k], r.n[k]);
    avs_ops_set_threads(1);
    run_all(&r1);
    avs_ops_set_threads(2);
    same_threads(&r, &r1);
    res_free(&r), res_free(&r1);
}

int main(void)
{
    tx = rnd((size_t)N * R * CT), x = rnd(ntok), w = rnd((size_t)C * 9), b = rnd(C);
    dy = rnd(ntok), dx0 = rnd(ntok), dw0 = rnd((size_t)C * 9), db0 = rnd(C), my = rnd((size_t)N * C);
    px = rnd((size_t)NC * PH * PW);
    on_every_backend("PVT/VGGish token primitives", test_tokens);
    free(tx), free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0), free(my), free(px);
    return check_summary("test_backend_tokens");
}
