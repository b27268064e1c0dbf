/* tests/test_model_resnet.c: ResNet-50 (model/resnet.h) against torchvision
 * (tests/gen/model_resnet.py): stage maps, logits and Grad-CAM weights of the reduced-width
 * model on every backend, each within max(1e-4, 3 x PyTorch float32's own distance) of the
 * float64 reference (relative L2); the kept forward equals the plain one; the 3x3 stride-2
 * max-pool primitive against a direct loop; bad checkpoints refused with the tensor named;
 * the random init's forward finite and deterministic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "model/resnet.h"
#include "tests/backends.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FIX "tests/fixtures/model/resnet_small."

static double rel_l2(const float *a, const float *ref, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* ours against ref.<name>, with t32.<name>'s distance as the yardstick */
static void judge(const struct avs_st_file *f, const char *name, const float *ours, size_t n)
{
    char a[32], b[32];
    size_t nr = 0, nt = 0;
    snprintf(a, sizeof a, "ref.%s", name);
    snprintf(b, sizeof b, "t32.%s", name);
    float *ref = fixture_f32(f, a, &nr), *t32 = fixture_f32(f, b, &nt);
    if (ref && t32 && nr == n && nt == n) {
        double dus = rel_l2(ours, ref, n), dpt = rel_l2(t32, ref, n);
        double lim = fmax(1e-4, 3 * dpt);
        CHECK(dus <= lim, "%s on %s: relative L2 %.3g from float64, limit %.3g (PyTorch fp32 %.3g)",
              name, backend_now()->name, dus, lim, dpt);
        if (backends_.pass == 0)
            printf("  %-9s ours %.3g  pytorch-fp32 %.3g (relative L2 from float64)\n", name, dus, dpt);
    } else
        CHECK(0, "%s: fixture sizes %zu/%zu, ours %zu", name, nr, nt, n);
    free(ref), free(t32);
}

static void test_fixture(void)
{
    struct avs_err err;
    struct avs_resnet m;
    struct avs_st_file *f = NULL;
    CHECK(avs_st_open(FIX "io.safetensors", &f, &err) == 0, "%s", err.msg);
    CHECK(avs_resnet_load(&m, FIX "weights.safetensors", &err) == 0, "%s", err.msg);
    if (!f || check_failed)
        return;
    CHECK(m.width == 8 && m.depths[2] == 6 && m.dims[3] == 256 && m.classes == 10,
          "shapes from the file: width %d depths %d dims %d classes %d", m.width, m.depths[2],
          m.dims[3], m.classes);
    size_t nx = 0;
    float *xh = fixture_f32(f, "image", &nx);
    const int N = 2, H = 64, W = 64, target[2] = {3, 7};
    float *x = avs_dev_from_host(xh, nx), *st[4], *gc[4], *st1[4], *lg, *lg1;
    size_t ns[4], ng[4];
    for (int s = 0; s < 4; s++) {
        int side = avs_resnet_side(H, s);
        ns[s] = (size_t)N * m.dims[s] * side * side, ng[s] = (size_t)N * m.dims[s];
        st[s] = avs_dev_alloc(ns[s], "st"), st1[s] = avs_dev_alloc(ns[s], "st1");
        gc[s] = avs_dev_alloc(ng[s], "gc");
    }
    lg = avs_dev_alloc((size_t)N * 10, "lg"), lg1 = avs_dev_alloc((size_t)N * 10, "lg1");
    struct avs_resnet_ws ws;
    avs_resnet_ws_init(&ws, &m, N, H, W);
    avs_resnet_gradcam(&m, &ws, gc, st, lg, x, target, N);
    avs_resnet_fwd(&m, &ws, st1, lg1, x, N);
    for (int s = 0; s < 4; s++) {
        char nm[16];
        float *h = avs_host_from_dev(st[s], ns[s]), *h1 = avs_host_from_dev(st1[s], ns[s]);
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        judge(f, nm, h, ns[s]);
        CHECK(!memcmp(h, h1, ns[s] * sizeof(float)), "%s: kept forward = plain forward", nm);
        same_bits(nm, h, ns[s]);
        free(h), free(h1);
        h = avs_host_from_dev(gc[s], ng[s]);
        snprintf(nm, sizeof nm, "gradcam%d", s + 1);
        judge(f, nm, h, ng[s]);
        same_bits(nm, h, ng[s]);
        free(h);
    }
    float *l = avs_host_from_dev(lg, (size_t)N * 10);
    judge(f, "logits", l, (size_t)N * 10);
    same_bits("logits", l, (size_t)N * 10);
    free(l);
    avs_resnet_ws_free(&ws);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&st[s]), avs_dev_free(&st1[s]), avs_dev_free(&gc[s]);
    avs_dev_free(&lg), avs_dev_free(&lg1), avs_dev_free(&x);
    free(xh);
    avs_resnet_free(&m);
    avs_st_close(&f);
}

/* the max-pool primitive at odd and even sizes against a direct loop */
static void test_maxpool(void)
{
    const int NC = 3, sizes[2][2] = {{7, 10}, {8, 5}};
    for (int t = 0; t < 2; t++) {
        int H = sizes[t][0], W = sizes[t][1], OH = (H + 1) / 2, OW = (W + 1) / 2;
        float *x = malloc(sizeof(float) * NC * H * W), *want = malloc(sizeof(float) * NC * OH * OW);
        for (int i = 0; i < NC * H * W; i++)
            x[i] = (float)((i * 37) % 23) - 15.0f; /* negatives: padding must never win */
        for (int c = 0; c < NC; c++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    float mx = -INFINITY;
                    for (int r = 2 * i - 1; r <= 2 * i + 1; r++)
                        for (int s = 2 * j - 1; s <= 2 * j + 1; s++)
                            if (r >= 0 && r < H && s >= 0 && s < W && x[(c * H + r) * W + s] > mx)
                                mx = x[(c * H + r) * W + s];
                    want[(c * OH + i) * OW + j] = mx;
                }
        float *xd = avs_dev_from_host(x, (size_t)NC * H * W), *yd = avs_dev_alloc((size_t)NC * OH * OW, "y");
        avs_ops()->maxpool3s2_fwd(yd, xd, NC, H, W);
        float *y = avs_host_from_dev(yd, (size_t)NC * OH * OW);
        CHECK(!memcmp(y, want, sizeof(float) * NC * OH * OW), "maxpool3s2 %dx%d", H, W);
        free(x), free(want), free(y);
        avs_dev_free(&xd), avs_dev_free(&yd);
    }
}

static void test_bad_files(void)
{
    struct avs_err err;
    struct avs_resnet m;
    CHECK(avs_resnet_load(&m, "tests/fixtures/features/pvt_small.weights.safetensors", &err) != 0,
          "a PVTv2 checkpoint is refused");
    CHECK(strstr(err.msg, "conv1.weight") != NULL, "message names the tensor: %s", err.msg);
}

static void test_random(void)
{
    struct avs_resnet m, m2;
    avs_resnet_init_random(&m, 8, 5, 11);
    avs_resnet_init_random(&m2, 8, 5, 11);
    CHECK(m.dims[0] == 32 && m.dims[3] == 256 && m.depths[3] == 3, "random-init shapes");
    float *a = avs_tensor_set_to_host(&m.params), *b = avs_tensor_set_to_host(&m2.params);
    CHECK(!memcmp(a, b, m.params.arena.used * sizeof(float)), "same seed, same weights");
    free(a), free(b);
    const int H = 96, W = 64;
    float *xh = malloc(sizeof(float) * 3 * H * W);
    for (int i = 0; i < 3 * H * W; i++)
        xh[i] = (float)sin(i * 0.37);
    float *x = avs_dev_from_host(xh, (size_t)3 * H * W), *lg = avs_dev_alloc(5, "lg");
    struct avs_resnet_ws ws;
    avs_resnet_ws_init(&ws, &m, 1, H, W);
    avs_resnet_fwd(&m, &ws, NULL, lg, x, 1);
    float *l = avs_host_from_dev(lg, 5);
    int finite = 1;
    for (int i = 0; i < 5; i++)
        finite &= isfinite(l[i]) != 0;
    CHECK(finite, "random-init logits finite (%g ...)", l[0]);
    CHECK(avs_resnet_side(H, 3) == 3 && avs_resnet_side(W, 3) == 2, "stage sides 96x64 -> 3x2");
    free(l), free(xh);
    avs_resnet_ws_free(&ws);
    avs_dev_free(&x), avs_dev_free(&lg);
    avs_resnet_free(&m), avs_resnet_free(&m2);
}

int main(void)
{
    on_every_backend("resnet fixture", test_fixture);
    on_every_backend("maxpool3s2", test_maxpool);
    test_bad_files();
    test_random();
    return check_summary("test_model_resnet");
}
