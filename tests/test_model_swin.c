/* tests/test_model_swin.c: Swin against PyTorch (tests/gen/model_swin.py: torchvision's swin
 * renamed to the official names, a reduced config with window 2 on 64x64: shifted windows and
 * their masks in stages 1-3, patch merging, one window in stage 4): the four stage maps (last
 * block outputs), the logits and the Grad-CAM weights, each within max(1e-4, 3x) PyTorch
 * float32's relative L2 distance from the float64 reference; on every registered backend (cpu
 * and guard give the same bits), 1 vs 2 threads bit identity, a workspace made for more images
 * than a pass uses; the variant table, size checks and load errors that name the tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/safetensors.h"
#include "model/swin.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FIX "tests/fixtures/model/swin_small."
#define N 2
#define SIDE 64

static const struct avs_swin_cfg small = {8, {2, 2, 4, 2}, {1, 2, 2, 4}, 2, 10};

static double rel_l2(const float *a, const float *ref, size_t n, size_t *at)
{
    double num = 0, den = 0, worst = -1;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d, den += (double)ref[i] * ref[i];
        if (fabs(d) > worst)
            worst = fabs(d), *at = i;
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* ours vs float64 within max(1e-4, 3 x PyTorch float32's distance) */
static void compare(const struct avs_st_file *io, const char *name, const float *got, size_t n)
{
    char t32[32];
    snprintf(t32, sizeof t32, "t32.%s", name);
    size_t nr, nt, at, at32;
    float *ref = fixture_f32(io, name, &nr), *tf = fixture_f32(io, t32, &nt);
    if (ref && tf && nr == n && nt == n) {
        double ours = rel_l2(got, ref, n, &at), torch = rel_l2(tf, ref, n, &at32);
        double lim = fmax(1e-4, 3 * torch);
        printf("  %-8s rel L2 %.3g (PyTorch float32 %.3g), worst at %zu: %.7g vs %.7g\n", name, ours,
               torch, at, got[at], ref[at]);
        CHECK(ours <= lim, "%s: rel L2 %.3g > %.3g (worst %.7g vs %.7g at %zu)", name, ours, lim,
              got[at], ref[at], at);
    } else
        CHECK(0, "%s: fixture size %zu, ours %zu", name, nr, n);
    free(ref), free(tf);
}

struct outputs {
    float *st[4], *lg, *st1[4], *lg1, *gc[4];
    size_t ns[4], nl, ng[4];
};

static void outputs_free(struct outputs *o)
{
    for (int s = 0; s < 4; s++)
        free(o->st[s]), free(o->st1[s]), free(o->gc[s]);
    free(o->lg), free(o->lg1);
    memset(o, 0, sizeof *o);
}

static int same(const float *a, const float *b, size_t n)
{
    return a && b && !memcmp(a, b, n * sizeof(float));
}

static void run_fixture(struct outputs *o, const float *x, const int *target, int threads)
{
    struct avs_swin m;
    struct avs_err err;
    if (avs_swin_load(&m, &small, FIX "weights.safetensors", &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    float *dx = avs_dev_from_host(x, (size_t)N * 3 * SIDE * SIDE), *st[4], *gc[4];
    for (int s = 0; s < 4; s++) {
        int side = avs_swin_side(SIDE, s), C = avs_swin_dim(&m.cfg, s);
        o->ns[s] = (size_t)N * C * side * side, o->ng[s] = (size_t)N * C;
        st[s] = avs_dev_alloc(o->ns[s], "stage"), gc[s] = avs_dev_alloc(o->ng[s], "gradcam");
    }
    o->nl = (size_t)N * m.cfg.classes;
    float *lg = avs_dev_alloc(o->nl, "logits");
    struct avs_swin_ws ws;
    /* made for more images than the passes use: they take the leading part of each buffer */
    CHECK(avs_swin_ws_init(&ws, &m, N + 1, SIDE, SIDE, AVS_SWIN_GRADCAM, &err) == 0, "ws");
    avs_ops_set_threads(threads);
    avs_swin_fwd(&m, &ws, st, lg, dx, N);
    avs_ops_set_threads(2);
    o->lg = avs_host_from_dev(lg, o->nl);
    for (int s = 0; s < 4; s++) {
        o->st[s] = avs_host_from_dev(st[s], o->ns[s]);
        avs_ops()->zero(st[s], o->ns[s]);
    }
    avs_swin_gradcam(&m, &ws, gc, st, lg, dx, target, N);
    o->lg1 = avs_host_from_dev(lg, o->nl);
    for (int s = 0; s < 4; s++) {
        o->st1[s] = avs_host_from_dev(st[s], o->ns[s]);
        o->gc[s] = avs_host_from_dev(gc[s], o->ng[s]);
        avs_dev_free(&st[s]), avs_dev_free(&gc[s]);
    }
    avs_dev_free(&lg), avs_dev_free(&dx);
    avs_swin_ws_free(&ws);
    avs_swin_free(&m);
}

static void check_against_torch(const struct outputs *o, const struct avs_st_file *io)
{
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        compare(io, nm, o->st[s], o->ns[s]);
        snprintf(nm, sizeof nm, "gradcam%d", s + 1);
        compare(io, nm, o->gc[s], o->ng[s]);
    }
    compare(io, "logits", o->lg, o->nl);
    int fsame = same(o->lg, o->lg1, o->nl);
    for (int s = 0; s < 4; s++)
        fsame &= same(o->st[s], o->st1[s], o->ns[s]);
    CHECK(fsame, "gradcam's forward equals the plain forward");
}

static void check_backends(void)
{
    struct avs_st_file *io = NULL;
    struct avs_err err;
    if (avs_st_open(FIX "io.safetensors", &io, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    size_t nx;
    float *x = fixture_f32(io, "image", &nx);
    const struct avs_st_tensor *tt = avs_st_find(io, "target");
    int target[N] = {0, 0};
    CHECK(tt && tt->numel == N, "fixture target");
    if (tt && tt->numel == N) {
        int64_t t64[N];
        memcpy(t64, tt->data, sizeof t64);
        target[0] = (int)t64[0], target[1] = (int)t64[1];
    }
    struct outputs ref = {0};
    for (int b = 0; x && avs_backend_at(b); b++) {
        avs_backend_set(avs_backend_at(b));
        printf("backend %s:\n", avs_ops()->name);
        struct outputs o = {0};
        run_fixture(&o, x, target, 2);
        if (b == 0) {
            check_against_torch(&o, io);
            struct outputs o1 = {0};
            run_fixture(&o1, x, target, 1);
            int s1 = same(o.lg, o1.lg, o.nl);
            for (int s = 0; s < 4; s++)
                s1 &= same(o.st[s], o1.st[s], o.ns[s]) && same(o.gc[s], o1.gc[s], o.ng[s]);
            CHECK(s1, "1 thread gives the same bits as 2");
            outputs_free(&o1);
            ref = o;
            continue;
        }
        int sb = same(o.lg, ref.lg, o.nl);
        for (int s = 0; s < 4; s++)
            sb &= same(o.st[s], ref.st[s], o.ns[s]) && same(o.gc[s], ref.gc[s], o.ng[s]);
        CHECK(sb, "%s gives the cpu's bits (stage maps, logits, Grad-CAM)", avs_ops()->name);
        outputs_free(&o);
    }
    avs_backend_set(avs_backend_cpu());
    outputs_free(&ref);
    free(x);
    avs_st_close(&io);
}

static void check_cfg_and_errors(void)
{
    struct avs_swin_cfg c;
    struct avs_err err;
    CHECK(avs_swin_cfg_variant(&c, "swin_b") == 0 && c.embed == 128 && c.depths[2] == 18 &&
              c.heads[0] == 4 && c.heads[3] == 32 && c.window == 7 && avs_swin_dim(&c, 3) == 1024,
          "swin_b table");
    CHECK(avs_swin_cfg_variant(&c, "swin_t") == 0 && c.embed == 96 && c.depths[2] == 6 &&
              c.heads[1] == 6, "swin_t table");
    CHECK(avs_swin_cfg_variant(&c, "swin_b_w12") == 0 && c.window == 12, "swin_b_w12 table");
    CHECK(avs_swin_cfg_variant(&c, "swin_t_w4") == 0 && c.window == 4 && c.embed == 96 &&
          c.depths[2] == 6, "swin_t_w4 table");
    CHECK(avs_swin_cfg_variant(&c, "swin_x") == -1, "unknown variant");
    avs_swin_cfg_variant(&c, "swin_b");
    CHECK(avs_swin_check_size(&c, 224, 448, &err) == 0, "224 x 448 fits window 7");
    CHECK(avs_swin_check_size(&c, 224, 256, &err) == -1 && strstr(err.msg, "multiples of 224"),
          "256 wide: %s", err.msg);
    struct avs_swin m;
    CHECK(avs_swin_load(&m, &c, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "patch_embed.proj.weight") && strstr(err.msg, "[128,3,4,4]"),
          "wrong variant: %s", err.msg);
    struct avs_swin_cfg deeper = small;
    deeper.depths[0] = 3;
    CHECK(avs_swin_load(&m, &deeper, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "layers.0.blocks.2.norm1.weight"), "missing: %s", err.msg);
    struct avs_swin_cfg shallower = small;
    shallower.depths[2] = 3;
    CHECK(avs_swin_load(&m, &shallower, FIX "weights.safetensors", &err) == -1 &&
              strstr(err.msg, "layers.2.blocks.3."), "extra: %s", err.msg);
}

/* Every parameter's gradient from the fixture's upstream gradients (avs_swin_bwd), each within
 * max(1e-4, 3x) PyTorch float32's distance; on every backend the cpu's bits. */
static float *run_grads(const float *x, const struct avs_st_file *gf, size_t *ng)
{
    struct avs_swin m;
    struct avs_err err;
    if (avs_swin_load(&m, &small, FIX "weights.safetensors", &err)) {
        CHECK(0, "%s", err.msg);
        return NULL;
    }
    float *dx = avs_dev_from_host(x, (size_t)N * 3 * SIDE * SIDE), *st[4], *ds[4];
    for (int s = 0; s < 4; s++) {
        char nm[16];
        size_t n = 0, want = (size_t)N * avs_swin_dim(&m.cfg, s) * avs_swin_side(SIDE, s) * avs_swin_side(SIDE, s);
        snprintf(nm, sizeof nm, "dstage%d", s + 1);
        float *h = fixture_f32(gf, nm, &n);
        CHECK(h && n == want, "%s size", nm);
        ds[s] = h && n == want ? avs_dev_from_host(h, n) : NULL;
        st[s] = avs_dev_alloc(want, "stage");
        free(h);
    }
    size_t nl = 0;
    float *hl = fixture_f32(gf, "dlogits", &nl);
    float *dl = hl ? avs_dev_from_host(hl, nl) : NULL, *lg = avs_dev_alloc((size_t)N * 10, "logits");
    free(hl);
    struct avs_tensor_set g;
    avs_tensor_set_init(&g, m.spec, m.np);
    struct avs_swin_ws ws;
    CHECK(avs_swin_ws_init(&ws, &m, N, SIDE, SIDE, AVS_SWIN_TRAIN, &err) == 0, "ws");
    avs_swin_bwd(&m, &ws, &g, st, lg, dx, (const float *const *)ds, dl, N);
    float *out = avs_tensor_set_to_host(&g);
    *ng = g.arena.used;
    avs_swin_ws_free(&ws);
    avs_tensor_set_free(&g);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&st[s]), avs_dev_free(&ds[s]);
    avs_dev_free(&dx), avs_dev_free(&dl), avs_dev_free(&lg);
    avs_swin_free(&m);
    return out;
}

static void check_grads(void)
{
    struct avs_st_file *io = NULL, *gf = NULL;
    struct avs_err err;
    if (avs_st_open(FIX "io.safetensors", &io, &err) || avs_st_open(FIX "grads.safetensors", &gf, &err)) {
        CHECK(0, "%s", err.msg);
        avs_st_close(&io);
        return;
    }
    size_t nx, ng = 0, ng2 = 0;
    float *x = fixture_f32(io, "image", &nx), *ref = NULL;
    struct avs_swin m;
    avs_swin_init_random(&m, &small, 1); /* the size table, for names and offsets */
    for (int b = 0; x && avs_backend_at(b); b++) {
        avs_backend_set(avs_backend_at(b));
        float *got = run_grads(x, gf, b ? &ng2 : &ng);
        if (b) {
            CHECK(got && ref && ng2 == ng && !memcmp(got, ref, ng * sizeof(float)),
                  "%s gives the cpu's parameter gradients bit for bit", avs_ops()->name);
            free(got);
            continue;
        }
        ref = got;
        int compared = 0;
        double worst = 0, wrel = 0, wtorch = 0;
        const char *wname = "";
        for (int i = 0; got && i < m.np; i++) {
            char nm[200], n32[210];
            size_t n1 = 0, n2 = 0, at;
            snprintf(nm, sizeof nm, "grad.%s", m.spec[i].name);
            snprintf(n32, sizeof n32, "t32.%s", nm);
            float *r = fixture_f32(gf, nm, &n1), *t = fixture_f32(gf, n32, &n2);
            size_t n = avs_tensor_spec_numel(&m.spec[i]);
            if (r && t && n1 == n && n2 == n) {
                const float *mine = got + (m.params.t[i].data - m.params.arena.base);
                double ours = rel_l2(mine, r, n, &at), torch = rel_l2(t, r, n, &at);
                double lim = fmax(1e-4, 3 * torch);
                if (ours / fmax(torch, 1e-30) > worst)
                    worst = ours / fmax(torch, 1e-30), wrel = ours, wtorch = torch, wname = m.spec[i].name;
                CHECK(ours <= lim, "%s: rel L2 %.3g > %.3g (PyTorch float32 %.3g)", nm, ours, lim, torch);
                compared++;
            }
            free(r), free(t);
        }
        printf("  parameter gradients: %d tensors, largest ratio to PyTorch float32's distance %.3g "
               "(%s: %.3g vs %.3g)\n", compared, worst, wname, wrel, wtorch);
        CHECK(compared == m.np, "every parameter has a reference gradient (%d of %d)", compared, m.np);
    }
    avs_backend_set(avs_backend_cpu());
    avs_swin_free(&m);
    free(x), free(ref);
    avs_st_close(&io);
    avs_st_close(&gf);
}

/* Random init: official init's statistics, and a forward that runs. */
static void check_random(void)
{
    struct avs_swin m;
    avs_swin_init_random(&m, &small, 5);
    int ix = m.ix[1].blk[0].qkv[0], nb = m.ix[1].blk[0].qkv[1], ln = m.ix[1].blk[0].norm1[0];
    size_t n = avs_tensor_spec_numel(&m.spec[ix]);
    float *w = malloc(n * sizeof(float)), b[1], g[1];
    avs_tensor_set_download(&m.params, ix, w);
    double s2 = 0;
    for (size_t i = 0; i < n; i++)
        s2 += (double)w[i] * w[i];
    double sd = sqrt(s2 / n);
    CHECK(sd > 0.015 && sd < 0.02, "qkv weight std %.4f (trunc normal 0.02)", sd);
    avs_ops()->download(b, m.params.t[nb].data, sizeof b);
    avs_ops()->download(g, m.params.t[ln].data, sizeof g);
    CHECK(b[0] == 0.0f && g[0] == 1.0f, "bias 0, LayerNorm weight 1");
    free(w);
    avs_swin_free(&m);
}

int main(void)
{
    avs_ops_set_threads(2);
    check_backends();
    check_grads();
    check_cfg_and_errors();
    check_random();
    return check_summary("test_model_swin");
}
