/* tests/test_model_vggish.c: VGGish (reduced widths, torchvggish names and layout) plus the
 * linear head against PyTorch (tests/gen/features_vggish.py), batch-size independence, on
 * every backend (cpu and guard give the same bits), and load errors that name the tensor. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/safetensors.h"
#include "model/vggish.h"
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

/* The fixture's embeddings and logits on the active backend (host copies out: emb [ne], lg
 * [nl]); one example at a time against the batch. */
static void run_fixture(const struct avs_vggish *m, const float *x, int N, float *emb, size_t ne,
                        float *lg, size_t nl)
{
    float *xd = avs_dev_from_host(x, (size_t)N * 96 * 64), *ws = avs_dev_alloc(avs_vggish_ws(m, N), "ws");
    float *ed = avs_dev_alloc(ne, "emb"), *ld = avs_dev_alloc(nl, "logits"), e1[16];
    avs_vggish_fwd(m, ed, ld, xd, N, ws);
    avs_dev_download(emb, ed, ne);
    avs_dev_download(lg, ld, nl);
    /* one example at a time gives the same numbers as the batch */
    for (int n = 0; n < N; n++) {
        avs_vggish_fwd(m, ed, NULL, xd + (size_t)n * 96 * 64, 1, ws);
        avs_dev_download(e1, ed, 16);
        for (int i = 0; i < 16; i++) /* GEMM kernels may differ by row count: rounding only */
            CHECK_NEAR(e1[i], emb[n * 16 + i], 1e-6, 1e-5, "example alone equals batch");
    }
    avs_dev_free(&xd), avs_dev_free(&ws), avs_dev_free(&ed), avs_dev_free(&ld);
}

static void check_fixture(void)
{
    struct avs_st_file *io = NULL;
    struct avs_err err;
    CHECK(avs_st_open(FIX "io.safetensors", &io, &err) == 0, "%s", err.msg);
    size_t nx = 0, ne = 0, nl = 0, at = 0;
    float *x = io ? fixture_f32(io, "examples", &nx) : NULL, *e = io ? fixture_f32(io, "embedding", &ne) : NULL,
          *l = io ? fixture_f32(io, "logits", &nl) : NULL, *emb[2] = {0}, *lg[2] = {0};
    for (int b = 0; x && e && l && avs_backend_at(b); b++) { /* cpu, then guard */
        avs_backend_set(avs_backend_at(b));
        struct avs_vggish m;
        if (avs_vggish_load(&m, FIX "weights.safetensors", FIX "head.safetensors", &err)) {
            CHECK(0, "%s", err.msg);
            break;
        }
        CHECK(m.ch[0] == 4 && m.ch[5] == 16 && m.fc[0] == 32 && m.fc[2] == 16 && m.classes == 20,
              "widths from shapes: %d %d %d %d %d", m.ch[0], m.ch[5], m.fc[0], m.fc[2], m.classes);
        int N = (int)(nx / (96 * 64));
        emb[b > 0] = malloc(ne * sizeof(float)), lg[b > 0] = malloc(nl * sizeof(float));
        run_fixture(&m, x, N, emb[b > 0], ne, lg[b > 0], nl);
        avs_vggish_free(&m);
        if (b) {
            CHECK(!memcmp(emb[0], emb[1], ne * sizeof(float)) && !memcmp(lg[0], lg[1], nl * sizeof(float)),
                  "%s gives the cpu's bits", avs_ops()->name);
            continue;
        }
        double w = worst(emb[0], e, ne, &at);
        printf("embedding: worst |d|/(1e-5+1e-4|ref|) = %.3g at %zu (%.7g vs %.7g)\n", w, at, emb[0][at], e[at]);
        CHECK(w <= 1.0, "embedding vs PyTorch: %.7g vs %.7g at %zu", emb[0][at], e[at], at);
        w = worst(lg[0], l, nl, &at);
        printf("logits: worst %.3g at %zu (%.7g vs %.7g)\n", w, at, lg[0][at], l[at]);
        CHECK(w <= 1.0, "logits vs PyTorch: %.7g vs %.7g at %zu", lg[0][at], l[at], at);
    }
    avs_backend_set(avs_backend_cpu());
    free(x), free(e), free(l), free(emb[0]), free(emb[1]), free(lg[0]), free(lg[1]);
    avs_st_close(&io);
    /* without a head: embedding only */
    struct avs_vggish m;
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
