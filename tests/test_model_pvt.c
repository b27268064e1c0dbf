/* tests/test_model_pvt.c: PVTv2 forward against PyTorch (tests/gen/features_pvt.py: a
 * reduced b0-like config with the official names, float64 reference): the four stage maps after
 * the stage norms, the logits and the Grad-CAM weights of the four stages (PyTorch autograd on
 * the last block outputs); the official variant table; 1- vs 2-thread bit identity; load
 * errors that name the tensor. */
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/pvt.h"
#include "backend/ops.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FIX "tests/fixtures/features/pvt_small."

static const struct avs_pvt_cfg small = {
    {8, 16, 24, 32}, {1, 2, 3, 4}, {2, 2, 2, 2}, {1, 1, 2, 1}, {8, 4, 2, 1}, 10};

/* relative L2 error and worst element */
static void compare(const char *name, const float *got, const float *ref, size_t n)
{
    double num = 0, den = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d, den += (double)ref[i] * ref[i];
        if (fabs(d) > worst)
            worst = fabs(d), at = i;
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    printf("%s: rel L2 %.3g, worst |d| %.3g at %zu (%.7g vs %.7g)\n", name, rel, worst, at, got[at], ref[at]);
    CHECK(rel <= 1e-5, "%s: rel L2 error %.3g > 1e-5 (worst %.7g vs %.7g at %zu)", name, rel, got[at],
          ref[at], at);
}

static void check_fixture(void)
{
    struct avs_pvt m;
    struct avs_err err;
    if (avs_pvt_load(&m, &small, FIX "weights.safetensors", &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    struct avs_st_file *io = NULL;
    CHECK(avs_st_open(FIX "io.safetensors", &io, &err) == 0, "%s", err.msg);
    if (!io) {
        avs_pvt_free(&m);
        return;
    }
    size_t nx, ns[4], nl;
    float *x = fixture_f32(io, "image", &nx), *ref[4], *lref = fixture_f32(io, "logits", &nl), *st[4], *st1[4];
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        ref[s] = fixture_f32(io, nm, &ns[s]);
        st[s] = calloc(ns[s], sizeof(float));
        st1[s] = calloc(ns[s], sizeof(float));
    }
    float *lg = calloc(nl, sizeof(float)), *lg1 = calloc(nl, sizeof(float));
    int N = 2;
    CHECK(avs_pvt_side(64, 0) == 16 && avs_pvt_side(64, 3) == 2 && avs_pvt_side(224, 3) == 7, "sides");
    avs_ops_set_threads(2);
    avs_pvt_fwd(&m, st, lg, x, N, 64, 64);
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        if (ref[s])
            compare(nm, st[s], ref[s], ns[s]);
    }
    if (lref)
        compare("logits", lg, lref, nl);
    avs_ops_set_threads(1);
    avs_pvt_fwd(&m, st1, lg1, x, N, 64, 64);
    avs_ops_set_threads(2);
    int same = memcmp(lg, lg1, nl * sizeof(float)) == 0;
    for (int s = 0; s < 4; s++)
        same &= memcmp(st[s], st1[s], ns[s] * sizeof(float)) == 0;
    CHECK(same, "1 thread gives the same bits as 2");
    /* Grad-CAM: forward outputs unchanged, weights vs autograd */
    const struct avs_st_tensor *tt = avs_st_find(io, "target");
    CHECK(tt && tt->numel == 2, "fixture target");
    if (tt && tt->numel == 2) {
        int64_t t64[2];
        memcpy(t64, tt->data, sizeof t64);
        int target[2] = {(int)t64[0], (int)t64[1]};
        float *gc[4], *gref[4];
        size_t ng[4];
        for (int s = 0; s < 4; s++) {
            char nm[16];
            snprintf(nm, sizeof nm, "gradcam%d", s + 1);
            gref[s] = fixture_f32(io, nm, &ng[s]);
            gc[s] = calloc(ng[s] ? ng[s] : 1, sizeof(float));
        }
        avs_pvt_gradcam(&m, gc, st1, lg1, x, target, N, 64, 64);
        int fsame = memcmp(lg, lg1, nl * sizeof(float)) == 0;
        for (int s = 0; s < 4; s++)
            fsame &= memcmp(st[s], st1[s], ns[s] * sizeof(float)) == 0;
        CHECK(fsame, "gradcam's forward equals the plain forward");
        for (int s = 0; s < 4; s++) {
            char nm[16];
            snprintf(nm, sizeof nm, "gradcam%d", s + 1);
            if (gref[s])
                compare(nm, gc[s], gref[s], ng[s]);
            free(gc[s]), free(gref[s]);
        }
    }
    for (int s = 0; s < 4; s++)
        free(ref[s]), free(st[s]), free(st1[s]);
    free(x), free(lref), free(lg), free(lg1);
    avs_st_close(&io);
    avs_pvt_free(&m);
}

/* Parameter gradients from random upstream gradients of the stage maps and logits. */
static void check_param_grads(void)
{
    struct avs_pvt m;
    struct avs_err err;
    struct avs_st_file *io = NULL, *gf = NULL;
    if (avs_pvt_load(&m, &small, FIX "weights.safetensors", &err) ||
        avs_st_open(FIX "io.safetensors", &io, &err) || avs_st_open(FIX "grads.safetensors", &gf, &err)) {
        CHECK(0, "%s", err.msg);
        avs_st_close(&io);
        return;
    }
    size_t nx, nd[4], nl, ns;
    float *x = fixture_f32(io, "image", &nx), *ds[4], *dl = fixture_f32(gf, "dlogits", &nl), *st[4], lg[20];
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "dstage%d", s + 1);
        ds[s] = fixture_f32(gf, nm, &nd[s]);
        st[s] = calloc(nd[s] ? nd[s] : 1, sizeof(float));
    }
    struct avs_tensor_set g;
    avs_tensor_set_init(&g, m.spec, m.np);
    if (x && dl && ds[0] && ds[3])
        avs_pvt_bwd(&m, &g, st, lg, x, (const float *const *)ds, dl, 2, 64, 64);
    int compared = 0;
    double worst = 0;
    const char *wname = "";
    for (int i = 0; i < m.np; i++) {
        char nm[200];
        snprintf(nm, sizeof nm, "grad.%s", m.spec[i].name);
        float *ref = fixture_f32(gf, nm, &ns);
        if (!ref)
            continue;
        CHECK(ns == avs_tensor_spec_numel(&m.spec[i]), "%s size", nm);
        double num = 0, den = 0;
        for (size_t k = 0; k < ns; k++) {
            double d = (double)g.t[i].data[k] - ref[k];
            num += d * d, den += (double)ref[k] * ref[k];
        }
        double rel = sqrt(num / (den > 1e-30 ? den : 1e-30));
        if (rel > worst)
            worst = rel, wname = m.spec[i].name;
        CHECK(rel <= 1e-5, "%s: rel L2 error %.3g", nm, rel);
        compared++;
        free(ref);
    }
    printf("parameter gradients: %d tensors, worst rel L2 %.3g (%s)\n", compared, worst, wname);
    CHECK(compared == m.np, "every parameter has a reference gradient (%d of %d)", compared, m.np);
    for (int s = 0; s < 4; s++)
        free(ds[s]), free(st[s]);
    free(x), free(dl);
    avs_tensor_set_free(&g);
    avs_st_close(&io);
    avs_st_close(&gf);
    avs_pvt_free(&m);
}

static void check_cfg_and_errors(void)
{
    struct avs_pvt_cfg c;
    CHECK(avs_pvt_cfg_variant(&c, "pvt_v2_b0") == 0 && c.dims[0] == 32 && c.dims[3] == 256 &&
              c.heads[2] == 5 && c.mlp[0] == 8 && c.depths[1] == 2, "b0 table");
    CHECK(avs_pvt_cfg_variant(&c, "b2") == 0 && c.dims[0] == 64 && c.depths[2] == 6, "b2 table");
    CHECK(avs_pvt_cfg_variant(&c, "pvt_v2_b5") == 0 && c.mlp[0] == 4 && c.depths[2] == 40, "b5 table");
    CHECK(avs_pvt_cfg_variant(&c, "b6") == -1 && avs_pvt_cfg_variant(&c, "vit") == -1, "unknown");
    struct avs_pvt m;
    struct avs_err err;
    avs_pvt_cfg_variant(&c, "b0");
    CHECK(avs_pvt_load(&m, &c, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "patch_embed1.proj.weight") && strstr(err.msg, "expected [32,3,7,7]"),
          "wrong variant: %s", err.msg);
    struct avs_pvt_cfg deeper = small;
    deeper.depths[0] = 2;
    CHECK(avs_pvt_load(&m, &deeper, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "missing tensor \"block1.1.norm1.weight\""), "missing: %s", err.msg);
    struct avs_pvt_cfg shallower = small;
    shallower.depths[2] = 1;
    CHECK(avs_pvt_load(&m, &shallower, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "unknown tensor \"block3.1."), "extra: %s", err.msg);
}

int main(void)
{
    check_fixture();
    check_param_grads();
    check_cfg_and_errors();
    return check_summary("test_model_pvt");
}
