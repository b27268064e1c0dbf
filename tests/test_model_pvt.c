/* tests/test_model_pvt.c: PVTv2 against PyTorch (tests/gen/features_pvt.py: a reduced b0-like
 * config with the official names, float64 reference): the four stage maps after the stage
 * norms, the logits, the Grad-CAM weights of the four stages (PyTorch autograd on the last
 * block outputs) and every parameter's gradient from upstream gradients; on every registered
 * backend (cpu and guard give the same bits: the guard catches host access to tensor memory),
 * 1 vs 2 threads bit identity, a workspace made for more images than a pass uses; the
 * official variant table; load errors that name the tensor. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/safetensors.h"
#include "model/pvt.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FIX "tests/fixtures/features/pvt_small."
#define N 2
#define SIDE 64

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
    printf("  %s: rel L2 %.3g, worst |d| %.3g at %zu (%.7g vs %.7g)\n", name, rel, worst, at, got[at],
           ref[at]);
    CHECK(rel <= 1e-5, "%s: rel L2 error %.3g > 1e-5 (worst %.7g vs %.7g at %zu)", name, rel, got[at],
          ref[at], at);
}

/* Everything one backend computed, downloaded: stage maps, logits, Grad-CAM weights (plain
 * forward; forward of the Grad-CAM pass), parameter gradients. */
struct outputs {
    float *st[4], *lg, *st1[4], *lg1, *gc[4], *grads;
    size_t ns[4], nl, ng[4], ngrads;
};

static void outputs_free(struct outputs *o)
{
    for (int s = 0; s < 4; s++)
        free(o->st[s]), free(o->st1[s]), free(o->gc[s]);
    free(o->lg), free(o->lg1), free(o->grads);
    memset(o, 0, sizeof *o);
}

static int same(const float *a, const float *b, size_t n)
{
    return a && b && !memcmp(a, b, n * sizeof(float));
}

/* Device buffers of the outputs. */
struct dev {
    float *x, *st[4], *lg, *gc[4];
};

static void dev_init(struct dev *d, const struct avs_pvt *m, const float *x)
{
    d->x = avs_dev_from_host(x, (size_t)N * 3 * SIDE * SIDE);
    for (int s = 0; s < 4; s++) {
        int side = avs_pvt_side(SIDE, s);
        d->st[s] = avs_dev_alloc((size_t)N * m->cfg.dims[s] * side * side, "stage");
        d->gc[s] = avs_dev_alloc((size_t)N * m->cfg.dims[s], "gradcam");
    }
    d->lg = avs_dev_alloc((size_t)N * m->cfg.classes, "logits");
}

static void dev_free(struct dev *d)
{
    for (int s = 0; s < 4; s++)
        avs_dev_free(&d->st[s]), avs_dev_free(&d->gc[s]);
    avs_dev_free(&d->x), avs_dev_free(&d->lg);
}

/* Forward and Grad-CAM of the fixture on the active backend; threads: the forward's. */
static void run_fixture(struct outputs *o, const float *x, const int *target, int threads)
{
    struct avs_pvt m;
    struct avs_err err;
    if (avs_pvt_load(&m, &small, FIX "weights.safetensors", &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    struct dev d;
    dev_init(&d, &m, x);
    struct avs_pvt_ws ws;
    /* made for more images than the passes use: they take the leading part of each buffer */
    avs_pvt_ws_init(&ws, &m, N + 1, SIDE, SIDE, AVS_PVT_GRADCAM);
    avs_ops_set_threads(threads);
    avs_pvt_fwd(&m, &ws, d.st, d.lg, d.x, N);
    avs_ops_set_threads(2);
    o->nl = (size_t)N * m.cfg.classes;
    o->lg = avs_host_from_dev(d.lg, o->nl);
    for (int s = 0; s < 4; s++) {
        o->ns[s] = (size_t)N * m.cfg.dims[s] * avs_pvt_side(SIDE, s) * avs_pvt_side(SIDE, s);
        o->ng[s] = (size_t)N * m.cfg.dims[s];
        o->st[s] = avs_host_from_dev(d.st[s], o->ns[s]);
        avs_ops()->zero(d.st[s], o->ns[s]);
    }
    avs_pvt_gradcam(&m, &ws, d.gc, d.st, d.lg, d.x, target, N);
    o->lg1 = avs_host_from_dev(d.lg, o->nl);
    for (int s = 0; s < 4; s++)
        o->st1[s] = avs_host_from_dev(d.st[s], o->ns[s]), o->gc[s] = avs_host_from_dev(d.gc[s], o->ng[s]);
    avs_pvt_ws_free(&ws);
    dev_free(&d);
    avs_pvt_free(&m);
}

/* Parameter gradients from the fixture's upstream gradients (all in one host block). */
static void run_grads(struct outputs *o, const float *x, float *const ds[4], const float *dl)
{
    struct avs_pvt m;
    struct avs_err err;
    if (avs_pvt_load(&m, &small, FIX "weights.safetensors", &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    struct dev d;
    dev_init(&d, &m, x);
    float *dsd[4], *dld = avs_dev_from_host(dl, (size_t)N * m.cfg.classes);
    for (int s = 0; s < 4; s++)
        dsd[s] = avs_dev_from_host(ds[s], o->ns[s]);
    struct avs_tensor_set g;
    avs_tensor_set_init(&g, m.spec, m.np);
    struct avs_pvt_ws ws;
    avs_pvt_ws_init(&ws, &m, N, SIDE, SIDE, AVS_PVT_TRAIN);
    avs_pvt_bwd(&m, &ws, &g, d.st, d.lg, d.x, (const float *const *)dsd, dld, N);
    o->grads = avs_tensor_set_to_host(&g);
    o->ngrads = g.arena.used;
    avs_pvt_ws_free(&ws);
    avs_tensor_set_free(&g);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&dsd[s]);
    avs_dev_free(&dld);
    dev_free(&d);
    avs_pvt_free(&m);
}

static void check_against_torch(const struct outputs *o, const struct avs_st_file *io)
{
    size_t n;
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        float *ref = fixture_f32(io, nm, &n);
        if (ref && n == o->ns[s])
            compare(nm, o->st[s], ref, n);
        snprintf(nm, sizeof nm, "gradcam%d", s + 1);
        free(ref);
        ref = fixture_f32(io, nm, &n);
        if (ref && n == o->ng[s])
            compare(nm, o->gc[s], ref, n);
        free(ref);
    }
    float *lref = fixture_f32(io, "logits", &n);
    if (lref && n == o->nl)
        compare("logits", o->lg, lref, n);
    free(lref);
    int fsame = same(o->lg, o->lg1, o->nl);
    for (int s = 0; s < 4; s++)
        fsame &= same(o->st[s], o->st1[s], o->ns[s]);
    CHECK(fsame, "gradcam's forward equals the plain forward");
}

/* Every parameter's gradient against autograd (o->grads in the arena layout of m). */
static void check_grads(const struct outputs *o, const struct avs_st_file *gf)
{
    struct avs_pvt m;
    struct avs_err err;
    if (!o->grads || avs_pvt_load(&m, &small, FIX "weights.safetensors", &err))
        return;
    int compared = 0;
    double worst = 0;
    const char *wname = "";
    for (int i = 0; i < m.np; i++) {
        char nm[200];
        size_t ns;
        snprintf(nm, sizeof nm, "grad.%s", m.spec[i].name);
        float *ref = fixture_f32(gf, nm, &ns);
        if (!ref)
            continue;
        CHECK(ns == avs_tensor_spec_numel(&m.spec[i]), "%s size", nm);
        const float *got = o->grads + (m.params.t[i].data - m.params.arena.base);
        double num = 0, den = 0;
        for (size_t k = 0; k < ns; k++) {
            double d = (double)got[k] - ref[k];
            num += d * d, den += (double)ref[k] * ref[k];
        }
        double rel = sqrt(num / (den > 1e-30 ? den : 1e-30));
        if (rel > worst)
            worst = rel, wname = m.spec[i].name;
        CHECK(rel <= 1e-5, "%s: rel L2 error %.3g", nm, rel);
        compared++;
        free(ref);
    }
    printf("  parameter gradients: %d tensors, worst rel L2 %.3g (%s)\n", compared, worst, wname);
    CHECK(compared == m.np, "every parameter has a reference gradient (%d of %d)", compared, m.np);
    avs_pvt_free(&m);
}

static void check_backends(void)
{
    struct avs_st_file *io = NULL, *gf = NULL;
    struct avs_err err;
    if (avs_st_open(FIX "io.safetensors", &io, &err) || avs_st_open(FIX "grads.safetensors", &gf, &err)) {
        CHECK(0, "%s", err.msg);
        avs_st_close(&io);
        return;
    }
    size_t nx, nd, nl;
    float *x = fixture_f32(io, "image", &nx), *dl = fixture_f32(gf, "dlogits", &nl), *ds[4];
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "dstage%d", s + 1);
        ds[s] = fixture_f32(gf, nm, &nd);
    }
    const struct avs_st_tensor *tt = avs_st_find(io, "target");
    int target[N] = {0, 0};
    CHECK(tt && tt->numel == N, "fixture target");
    if (tt && tt->numel == N) {
        int64_t t64[N];
        memcpy(t64, tt->data, sizeof t64);
        target[0] = (int)t64[0], target[1] = (int)t64[1];
    }
    struct outputs ref = {0};
    for (int b = 0; x && dl && ds[0] && ds[3] && avs_backend_at(b); b++) {
        avs_backend_set(avs_backend_at(b));
        printf("backend %s:\n", avs_ops()->name);
        struct outputs o = {0};
        run_fixture(&o, x, target, 2);
        run_grads(&o, x, ds, dl);
        if (b == 0) {
            check_against_torch(&o, io);
            check_grads(&o, gf);
            struct outputs o1 = {0};
            run_fixture(&o1, x, target, 1);
            int s1 = same(o.lg, o1.lg, o.nl);
            for (int s = 0; s < 4; s++)
                s1 &= same(o.st[s], o1.st[s], o.ns[s]);
            CHECK(s1, "1 thread gives the same bits as 2");
            outputs_free(&o1);
            ref = o;
            continue;
        }
        int sb = same(o.lg, ref.lg, o.nl) && same(o.grads, ref.grads, o.ngrads);
        for (int s = 0; s < 4; s++)
            sb &= same(o.st[s], ref.st[s], o.ns[s]) && same(o.gc[s], ref.gc[s], o.ng[s]);
        CHECK(sb, "%s gives the cpu's bits (stage maps, logits, Grad-CAM, gradients)", avs_ops()->name);
        outputs_free(&o);
    }
    avs_backend_set(avs_backend_cpu());
    outputs_free(&ref);
    for (int s = 0; s < 4; s++)
        free(ds[s]);
    free(x), free(dl);
    avs_st_close(&io);
    avs_st_close(&gf);
}

static void check_cfg_and_errors(void)
{
    struct avs_pvt_cfg c;
    CHECK(avs_pvt_side(64, 0) == 16 && avs_pvt_side(64, 3) == 2 && avs_pvt_side(224, 3) == 7, "sides");
    CHECK(avs_pvt_cfg_variant(&c, "pvt_v2_b0") == 0 && c.dims[0] == 32 && c.dims[3] == 256 &&
              c.heads[2] == 5 && c.mlp[0] == 8 && c.depths[1] == 2, "b0 table");
    CHECK(avs_pvt_cfg_variant(&c, "b2") == 0 && c.dims[0] == 64 && c.depths[2] == 6, "b2 table");
    CHECK(avs_pvt_cfg_variant(&c, "pvt_v2_b5") == 0 && c.mlp[0] == 4 && c.depths[2] == 40, "b5 table");
    CHECK(avs_pvt_cfg_variant(&c, "b6") == -1 && avs_pvt_cfg_variant(&c, "vit") == -1, "unknown");
    struct avs_pvt m;
    struct avs_err err;
    avs_pvt_cfg_variant(&c, "b0");
    CHECK(avs_pvt_load(&m, &c, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "patch_embed1.proj.weight") && strstr(err.msg, "needs [32,3,7,7]"),
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
    avs_ops_set_threads(2);
    check_backends();
    check_cfg_and_errors();
    return check_summary("test_model_pvt");
}
