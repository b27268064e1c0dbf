/* tests/test_model_vggish.c: VGGish (reduced widths, torchvggish names and layout) plus the
 * linear head against PyTorch (tests/gen/features_vggish.py), batch-size independence, and
 * load errors that name the tensor. */
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/vggish.h"
#include "backend/ops.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FIX "tests/fixtures/features/vggish_small."

static double worst(const float *a, const float *b, size_t n, size_t *at)
{
    double w = -1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1e-5 + 1e-4 * fabs((double)b[i]));
        if (d > w)
            w = d, *at = i;
    }
    return w;
}

static void check_fixture(void)
{
    struct avs_vggish m;
    struct avs_err err;
    if (avs_vggish_load(&m, FIX "weights.safetensors", FIX "head.safetensors", &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    CHECK(m.ch[0] == 4 && m.ch[5] == 16 && m.fc[0] == 32 && m.fc[2] == 16 && m.classes == 20,
          "widths from shapes: %d %d %d %d %d", m.ch[0], m.ch[5], m.fc[0], m.fc[2], m.classes);
    struct avs_st_file *io = NULL;
    CHECK(avs_st_open(FIX "io.safetensors", &io, &err) == 0, "%s", err.msg);
    size_t nx = 0, ne = 0, nl = 0, at = 0;
    float *x = io ? fixture_f32(io, "examples", &nx) : NULL, *e = io ? fixture_f32(io, "embedding", &ne) : NULL,
          *l = io ? fixture_f32(io, "logits", &nl) : NULL;
    if (x && e && l) {
        int N = (int)(nx / (96 * 64));
        float *ws = malloc(avs_vggish_ws(&m, N) * sizeof(float));
        float *emb = malloc(ne * sizeof(float)), *lg = malloc(nl * sizeof(float));
        avs_vggish_fwd(&m, emb, lg, x, N, ws);
        double w = worst(emb, e, ne, &at);
        printf("embedding: worst |d|/(1e-5+1e-4|ref|) = %.3g at %zu (%.7g vs %.7g)\n", w, at, emb[at], e[at]);
        CHECK(w <= 1.0, "embedding vs PyTorch: %.7g vs %.7g at %zu", emb[at], e[at], at);
        w = worst(lg, l, nl, &at);
        printf("logits: worst %.3g at %zu (%.7g vs %.7g)\n", w, at, lg[at], l[at]);
        CHECK(w <= 1.0, "logits vs PyTorch: %.7g vs %.7g at %zu", lg[at], l[at], at);
        /* one example at a time gives the same numbers as the batch */
        float *ws1 = malloc(avs_vggish_ws(&m, 1) * sizeof(float)), e1[16];
        for (int n = 0; n < N; n++) {
            avs_vggish_fwd(&m, e1, NULL, x + (size_t)n * 96 * 64, 1, ws1);
            for (int i = 0; i < 16; i++) /* GEMM kernels may differ by row count: rounding only */
                CHECK_NEAR(e1[i], emb[n * 16 + i], 1e-6, 1e-5, "example alone equals batch");
        }
        free(ws1), free(ws), free(emb), free(lg);
    }
    free(x), free(e), free(l);
    avs_st_close(&io);
    avs_vggish_free(&m);
    /* without a head: embedding only */
    CHECK(avs_vggish_load(&m, FIX "weights.safetensors", NULL, &err) == 0 && m.classes == 0, "no head");
    avs_vggish_free(&m);
}

static void check_errors(void)
{
    struct avs_vggish m;
    struct avs_err err;
    CHECK(avs_vggish_load(&m, FIX "head.safetensors", NULL, &err) == -1 &&
              strstr(err.msg, "features.0.weight"), "weights missing: %s", err.msg);
    CHECK(avs_vggish_load(&m, FIX "weights.safetensors", FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "head.weight"), "head missing: %s", err.msg);
    CHECK(avs_vggish_load(&m, "/nonexistent.safetensors", NULL, &err) == -1 &&
              strstr(err.msg, "/nonexistent.safetensors"), "no file: %s", err.msg);
}

int main(void)
{
    avs_ops_set_threads(2);
    check_fixture();
    check_errors();
    return check_summary("test_model_vggish");
}
