/* tests/test_backend_pool.c: PANNs CNN14's pooling primitives (backend/ops.h avgpool2_fwd,
 * rowmax_fwd) against double-precision references written here from their contracts, on
 * every registered backend (tests/backends.h: each gives the cpu's bits or, on a GPU, its
 * tolerance). Shapes are odd (the floor of F.avg_pool2d drops the last row and column) and
 * large enough for the parallel paths; a NaN-free input with ties and all-negative rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "tests/backends.h"
#include "tests/check.h"

enum { NC = 37, H = 101, W = 65, ROWS = 3001, LEN = 13 };

static uint64_t rs = 11;
static float frand(void)
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rs >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *px, *rx; /* inputs [NC,H,W], [ROWS,LEN] (host, the same on every backend) */

static void test_avgpool2(void)
{
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * (H / 2) * (W / 2);
    float *x = avs_dev_from_host(px, ni), *y = avs_dev_alloc(no, "avgpool2 out");
    avs_ops()->avgpool2_fwd(y, x, NC, H, W);
    float *hy = avs_host_from_dev(y, no);
    double worst = 0;
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < H / 2; i++)
            for (int j = 0; j < W / 2; j++) {
                const float *p = px + ((size_t)c * H + 2 * i) * W + 2 * j;
                double r = ((double)p[0] + p[1] + p[W] + p[W + 1]) / 4.0;
                worst = fmax(worst, fabs(hy[((size_t)c * (H / 2) + i) * (W / 2) + j] - r));
            }
    printf("avgpool2_fwd on %s: worst |d| %.3g vs double\n", backend_now()->name, worst);
    CHECK(worst <= 2.4e-7, "avgpool2_fwd: worst |d| %.3g vs the double mean of 4 in [-1,1]", worst);
    same_bits("avgpool2_fwd", hy, no);
    free(hy);
    avs_dev_free(&x), avs_dev_free(&y);
}

static void test_rowmax(void)
{
    float *x = avs_dev_from_host(rx, (size_t)ROWS * LEN), *y = avs_dev_alloc(ROWS, "rowmax out");
    avs_ops()->rowmax_fwd(y, x, ROWS, LEN);
    float *hy = avs_host_from_dev(y, ROWS);
    int bad = 0;
    for (int r = 0; r < ROWS; r++) {
        float m = -INFINITY;
        for (int i = 0; i < LEN; i++)
            m = fmaxf(m, rx[(size_t)r * LEN + i]);
        bad += hy[r] != m;
    }
    CHECK(bad == 0, "rowmax_fwd on %s: %d of %d rows differ from the max", backend_now()->name,
          bad, ROWS);
    /* one element per row (n = 1) is the row itself */
    float *y1 = avs_dev_alloc(LEN, "rowmax n=1");
    avs_ops()->rowmax_fwd(y1, x, LEN, 1);
    float *h1 = avs_host_from_dev(y1, LEN);
    CHECK(!memcmp(h1, rx, LEN * sizeof(float)), "rowmax_fwd with n = 1 copies the rows");
    same_bits("rowmax_fwd", hy, ROWS);
    free(hy), free(h1);
    avs_dev_free(&x), avs_dev_free(&y), avs_dev_free(&y1);
}

int main(void)
{
    px = malloc((size_t)NC * H * W * sizeof(float));
    rx = malloc((size_t)ROWS * LEN * sizeof(float));
    for (size_t i = 0; i < (size_t)NC * H * W; i++)
        px[i] = frand();
    for (size_t i = 0; i < (size_t)ROWS * LEN; i++)
        rx[i] = i % 7 == 3 ? 0.5f : frand(); /* ties */
    for (int i = 0; i < LEN; i++)
        rx[(size_t)5 * LEN + i] = -1.0f - (float)i; /* an all-negative row: max is its first */
    on_every_backend("avgpool2_fwd", test_avgpool2);
    on_every_backend("rowmax_fwd", test_rowmax);
    free(px), free(rx);
    return check_summary("test_backend_pool");
}
