/* tests/test_backend_rows.c: the row primitives of the backend table (backend/ops.h "rows":
 * gather_rows, scatter_rows_add) against references written here from their contracts: a
 * gather by a permutation and by a map with repeats (the relative-position bias lookup has
 * them, C = 1), a scatter-add into a non-zero output with repeated targets (added in index
 * order), on every registered backend (tests/backends.h), 1 thread against 2. Sizes large
 * enough for the parallel paths. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "tests/backends.h"
#include "tests/check.h"

enum { R = 3001, C = 97, RS = 40000 };

static uint64_t rs = 11;
static uint32_t next(void)
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rs >> 33);
}

static float *x, *ybase, *xs;
static int *perm, *rep;

static int *dev_ints(const int *h, size_t n)
{
    int *d = (int *)avs_dev_alloc(n, "idx");
    avs_ops()->upload(d, h, n * sizeof(int));
    return d;
}

static void test_rows(void)
{
    const struct avs_ops *op = avs_ops();
    float *dx = avs_dev_from_host(x, (size_t)R * C), *dy = avs_dev_alloc((size_t)R * C, "y");
    float *dxs = avs_dev_from_host(xs, RS), *dys = avs_dev_alloc(RS, "ys");
    int *dp = dev_ints(perm, R), *dr = dev_ints(rep, RS);
    /* gather by a permutation, C = 97 */
    op->gather_rows(dy, dx, dp, R, C);
    float *h = avs_host_from_dev(dy, (size_t)R * C);
    int ok = 1;
    for (int i = 0; i < R && ok; i++)
        ok = !memcmp(h + (size_t)i * C, x + (size_t)perm[i] * C, C * sizeof(float));
    CHECK(ok, "gather_rows by a permutation");
    same_bits("gather_rows", h, (size_t)R * C);
    free(h);
    /* gather with repeats, C = 1 */
    op->gather_rows(dys, dx, dr, RS, 1);
    h = avs_host_from_dev(dys, RS);
    ok = 1;
    for (int i = 0; i < RS && ok; i++)
        ok = h[i] == x[rep[i]];
    CHECK(ok, "gather_rows with repeats, C = 1");
    same_bits("gather_rows C=1", h, RS);
    free(h);
    /* scatter-add by the permutation into ybase */
    avs_dev_upload(dy, ybase, (size_t)R * C);
    op->scatter_rows_add(dy, dx, dp, R, C);
    h = avs_host_from_dev(dy, (size_t)R * C);
    ok = 1;
    for (int i = 0; i < R && ok; i++)
        for (int c = 0; c < C && ok; c++)
            ok = h[(size_t)perm[i] * C + c] == ybase[(size_t)perm[i] * C + c] + x[(size_t)i * C + c];
    CHECK(ok, "scatter_rows_add by a permutation adds into y");
    same_bits("scatter_rows_add", h, (size_t)R * C);
    free(h);
    /* scatter-add with repeated targets, C = 1: added in index order */
    avs_dev_upload(dx, ybase, (size_t)R * C);
    op->scatter_rows_add(dx, dxs, dr, RS, 1);
    h = avs_host_from_dev(dx, R);
    float *ref = malloc(R * sizeof(float));
    memcpy(ref, ybase, R * sizeof(float));
    for (int i = 0; i < RS; i++)
        ref[rep[i]] += xs[i];
    CHECK(!memcmp(h, ref, R * sizeof(float)), "scatter_rows_add with repeats sums in index order");
    same_bits("scatter_rows_add repeats", h, R);
    free(h), free(ref);
    /* 1 thread gives the bits of 2 (the C = 97 scatter runs column slices in parallel) */
    avs_dev_upload(dy, ybase, (size_t)R * C);
    avs_ops_set_threads(1);
    op->scatter_rows_add(dy, dx, dp, R, C);
    avs_ops_set_threads(2);
    float *h1 = avs_host_from_dev(dy, (size_t)R * C);
    avs_dev_upload(dy, ybase, (size_t)R * C);
    op->scatter_rows_add(dy, dx, dp, R, C);
    float *h2 = avs_host_from_dev(dy, (size_t)R * C);
    CHECK(!memcmp(h1, h2, (size_t)R * C * sizeof(float)), "1 thread gives the bits of 2");
    free(h1), free(h2);
    avs_dev_free(&dx), avs_dev_free(&dy), avs_dev_free(&dxs), avs_dev_free(&dys);
    avs_dev_free((float **)&dp), avs_dev_free((float **)&dr);
}

int main(void)
{
    x = malloc((size_t)R * C * sizeof(float)), ybase = malloc((size_t)R * C * sizeof(float));
    xs = malloc(RS * sizeof(float));
    perm = malloc(R * sizeof(int)), rep = malloc(RS * sizeof(int));
    for (size_t i = 0; i < (size_t)R * C; i++)
        x[i] = (float)(next() % 2001) / 1000.0f - 1.0f, ybase[i] = (float)(next() % 2001) / 1000.0f;
    for (int i = 0; i < RS; i++)
        xs[i] = (float)(next() % 2001) / 1000.0f - 1.0f, rep[i] = (int)(next() % R);
    for (int i = 0; i < R; i++)
        perm[i] = i;
    for (int i = R - 1; i > 0; i--) {
        int j = (int)(next() % (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    avs_ops_set_threads(2);
    on_every_backend("row gather/scatter", test_rows);
    free(x), free(ybase), free(xs), free(perm), free(rep);
    return check_summary("test_backend_rows");
}
