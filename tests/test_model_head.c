/* tests/test_model_head.c: the C3N head (model/c3n_head.h) against PyTorch fixtures
 * (tests/gen/model_head.py: the official-form model in float64), eval and train mode: logits,
 * every parameter gradient, input gradients and updated BN running stats, relative L2 error
 * <= 1e-5 per tensor. Also: loading errors name the tensor; results are bit-identical for 1
 * and 2 threads; training steps repeat exactly; the loss goes down. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "model/c3n_head.h"
#include "backend/ops.h"
#include "tests/check.h"

#define FIX "tests/fixtures/model/"

static void small_cfg(struct avs_c3n_cfg *cfg)
{
    static const int ch[4] = {4, 6, 8, 10};
    avs_c3n_cfg_default(cfg, 64);
    cfg->T = 2;
    memcpy(cfg->C, ch, sizeof ch);
    cfg->D = 8, cfg->Ci = 4, cfg->A = 6, cfg->O1 = 8, cfg->O2 = 4;
}

static float *read_t(struct avs_st_file *f, const char *name, size_t *n)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    if (!t)
        return NULL;
    float *p = avs_malloc(t->numel * sizeof(float));
    struct avs_err err;
    AVS_ASSERT(avs_st_read_f32(t, p, t->numel, &err) == 0);
    *n = t->numel;
    return p;
}

/* rel L2 <= 1e-5; a reference that is zero up to rounding (analytically zero gradient) is held
 * to 1e-5 of the largest reference norm instead (see tests/gen/model_compare.py) */
static void compare(const char *name, const float *got, const float *want, size_t n, double big)
{
    double e2 = 0, w2 = 0, g2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        e2 += d * d, w2 += (double)want[i] * want[i], g2 += (double)got[i] * got[i];
    }
    double e = sqrt(w2) > 1e-7 * big ? sqrt(e2 / w2) : sqrt(g2) / big;
    CHECK(e <= 1e-5, "%s: rel L2 error %.3g", name, e);
}

static void fixture_case(const char *nm, int train)
{
    char p[256];
    struct avs_err err = {0};
    struct avs_st_file *in = NULL, *dout = NULL, *exp = NULL;
    snprintf(p, sizeof p, FIX "%s.inputs.safetensors", nm);
    AVS_ASSERT(avs_st_open(p, &in, &err) == 0);
    snprintf(p, sizeof p, FIX "%s.dout.safetensors", nm);
    AVS_ASSERT(avs_st_open(p, &dout, &err) == 0);
    snprintf(p, sizeof p, FIX "%s.expect.safetensors", nm);
    AVS_ASSERT(avs_st_open(p, &exp, &err) == 0);
    struct avs_c3n_cfg cfg;
    small_cfg(&cfg);
    struct avs_c3n_head h;
    avs_c3n_head_init(&h, &cfg, 2);
    snprintf(p, sizeof p, FIX "%s.weights.safetensors", nm);
    CHECK(avs_c3n_head_load(&h, p, &err) == 0, "load: %s", err.msg);
    float *x[4], *dx[4];
    size_t n, nx[4];
    for (int s = 0; s < 4; s++) {
        char xn[8];
        snprintf(xn, sizeof xn, "x%d", s + 1);
        x[s] = read_t(in, xn, &nx[s]);
        dx[s] = avs_calloc(nx[s], sizeof(float));
    }
    float *audio = read_t(in, "audio", &n), *daudio = avs_calloc(n, sizeof(float));
    float *dl = read_t(dout, "logits", &n);
    avs_c3n_head_fwd(&h, (const float *const *)x, audio, train);
    avs_c3n_head_zero_grad(&h);
    avs_c3n_head_bwd(&h, dl, dx, daudio);
    double big = 0;
    for (int i = 0; i < exp->n; i++) {
        float *w = read_t(exp, exp->t[i].name, &n);
        double s2 = 0;
        for (size_t k = 0; k < n; k++)
            s2 += (double)w[k] * w[k];
        big = fmax(big, sqrt(s2));
        free(w);
    }
    int checked = 0;
    for (int i = 0; i < exp->n; i++) {
        const char *name = exp->t[i].name;
        const float *got = NULL;
        size_t gn = 0;
        int k;
        if (!strcmp(name, "logits"))
            got = h.logits, gn = (size_t)h.B * 16 * cfg.H[0] * cfg.W[0];
        else if (!strncmp(name, "grad.x", 6))
            k = name[6] - '1', got = dx[k], gn = nx[k];
        else if (!strcmp(name, "grad.audio"))
            got = daudio, gn = (size_t)h.B * cfg.A;
        else if (!strncmp(name, "grad.", 5) && (k = avs_tensor_set_find(&h.grads, name + 5)) >= 0)
            got = h.grads.t[k].data, gn = avs_tensor_numel(&h.grads.t[k]);
        else if (!strncmp(name, "buf.", 4) && (k = avs_tensor_set_find(&h.bufs, name + 4)) >= 0)
            got = h.bufs.t[k].data, gn = avs_tensor_numel(&h.bufs.t[k]);
        CHECK(got != NULL, "%s: expected tensor %s has no counterpart", nm, name);
        float *w = read_t(exp, name, &n);
        CHECK(!got || gn == n, "%s: %s has %zu elements, expected %zu", nm, name, gn, n);
        if (got && gn == n) {
            char what[200];
            snprintf(what, sizeof what, "%s %s", nm, name);
            compare(what, got, w, n, big);
            checked++;
        }
        free(w);
    }
    CHECK(checked == exp->n && checked > 100, "%s: compared %d tensors", nm, checked);
    for (int s = 0; s < 4; s++)
        free(x[s]), free(dx[s]);
    free(audio), free(daudio), free(dl);
    avs_c3n_head_free(&h);
    avs_st_close(&in), avs_st_close(&dout), avs_st_close(&exp);
}

static void expect_load_error(struct avs_c3n_head *h, struct avs_st_writer *w, const char *needle)
{
    char *p = avs_sprintf("%s/w.safetensors", check_tmpdir());
    struct avs_err err = {0};
    AVS_ASSERT(avs_st_writer_save(w, p, &err) == 0);
    CHECK(avs_c3n_head_load(h, p, &err) == -1 && strstr(err.msg, needle), "expected \"%s\" in \"%s\"",
          needle, err.msg);
    free(p);
}

static void test_load_errors(void)
{
    struct avs_c3n_cfg cfg;
    small_cfg(&cfg);
    struct avs_c3n_head h;
    avs_c3n_head_init(&h, &cfg, 1);
    /* all tensors: loads; then one missing, one extra, one mis-shaped */
    struct avs_st_writer *w = avs_st_writer_new();
    for (int i = 0; i < h.np; i++)
        avs_st_writer_add_f32(w, h.pspec[i].name, h.pspec[i].ndim, h.pspec[i].shape, h.params.t[i].data);
    for (int i = 0; i < h.nb; i++)
        avs_st_writer_add_f32(w, h.bspec[i].name, h.bspec[i].ndim, h.bspec[i].shape, h.bufs.t[i].data);
    char *p = avs_sprintf("%s/w.safetensors", check_tmpdir());
    struct avs_err err = {0};
    AVS_ASSERT(avs_st_writer_save(w, p, &err) == 0);
    CHECK(avs_c3n_head_load(&h, p, &err) == 0, "complete weights load: %s", err.msg);
    avs_st_writer_add_f32(w, "decoder.extra", 1, (int[]){3}, h.params.t[0].data);
    expect_load_error(&h, w, "unknown tensor \"decoder.extra\"");
    avs_st_writer_free(&w);
    w = avs_st_writer_new();
    for (int i = 1; i < h.np; i++)
        avs_st_writer_add_f32(w, h.pspec[i].name, h.pspec[i].ndim, h.pspec[i].shape, h.params.t[i].data);
    for (int i = 0; i < h.nb; i++)
        avs_st_writer_add_f32(w, h.bspec[i].name, h.bspec[i].ndim, h.bspec[i].shape, h.bufs.t[i].data);
    char msg[200];
    snprintf(msg, sizeof msg, "missing tensor \"%s\"", h.pspec[0].name);
    expect_load_error(&h, w, msg);
    int bad[4] = {h.pspec[0].shape[0], h.pspec[0].shape[1] + 1, 1, 1};
    float *junk = avs_calloc(4096, sizeof(float));
    avs_st_writer_add_f32(w, h.pspec[0].name, 4, bad, junk);
    snprintf(msg, sizeof msg, "tensor \"%s\" has shape [8,5,1,1], the model needs [8,4,1,1]", h.pspec[0].name);
    expect_load_error(&h, w, msg);
    avs_st_writer_free(&w);
    free(junk), free(p);
    avs_c3n_head_free(&h);
}

/* k training steps on random data; returns losses in out[k]; logits of the last forward and
 * all parameters copied to *state if non-NULL. */
static void train_steps(int threads, int k, double *out, float **state, size_t *state_n)
{
    avs_ops_set_threads(threads);
    struct avs_c3n_cfg cfg;
    small_cfg(&cfg);
    cfg.C[0] = 16, cfg.D = 32, cfg.Ci = 16;
    struct avs_c3n_head h;
    avs_c3n_head_init(&h, &cfg, 2);
    avs_c3n_head_init_random(&h, 42);
    unsigned long long s = 9;
    float *x[4];
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)h.B * cfg.C[i] * cfg.H[i] * cfg.W[i];
        x[i] = avs_malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i][j] = (float)(s >> 40) / 8388608.0f - 1.0f;
        }
    }
    size_t nl = (size_t)h.B * 16 * cfg.H[0] * cfg.W[0];
    float *audio = avs_calloc((size_t)h.B * cfg.A, sizeof(float)), *mask = avs_malloc(nl * 4);
    float *dl = avs_malloc(nl * 4), *sl = avs_malloc(2 * nl * 4), *sm = avs_malloc(nl * 4);
    for (size_t i = 0; i < (size_t)h.B * cfg.A; i++)
        audio[i] = (float)sin((double)i);
    for (size_t i = 0; i < nl; i++)
        mask[i] = (i % 64) < 24 && (i / 64) % 64 < 30 ? 1.0f : 0.0f;
    int frames[4] = {1, 0, 1, 0}; /* S4-style: loss on the first frame of each video */
    for (int i = 0; i < k; i++) {
        avs_c3n_head_zero_grad(&h);
        avs_c3n_head_fwd(&h, (const float *const *)x, audio, 1);
        out[i] = avs_c3n_head_loss(&h, mask, frames, dl, sl, sm);
        avs_c3n_head_bwd(&h, dl, NULL, NULL);
        avs_c3n_head_adam(&h, 1e-3);
    }
    if (state) {
        *state_n = h.params.arena.used + nl;
        *state = avs_malloc(*state_n * sizeof(float));
        memcpy(*state, h.params.arena.base, h.params.arena.used * sizeof(float));
        memcpy(*state + h.params.arena.used, h.logits, nl * sizeof(float));
    }
    for (int i = 0; i < 4; i++)
        free(x[i]);
    free(audio), free(mask), free(dl), free(sl), free(sm);
    avs_c3n_head_free(&h);
}

static void test_determinism(void)
{
    double a[6], b[6], c[6];
    float *sa, *sb, *sc;
    size_t na, nb, nc;
    train_steps(1, 6, a, &sa, &na);
    train_steps(1, 6, b, &sb, &nb);
    train_steps(2, 6, c, &sc, &nc);
    CHECK(!memcmp(a, b, sizeof a), "same inputs, same thread count: losses differ");
    CHECK(!memcmp(a, c, sizeof a), "1 vs 2 threads: losses differ (%.17g vs %.17g)", a[5], c[5]);
    CHECK(na == nb && na == nc && !memcmp(sa, sb, na * 4) && !memcmp(sa, sc, na * 4),
          "parameters and logits after 6 steps are not bit-identical");
    CHECK(a[5] < a[0], "loss does not go down: %g -> %g", a[0], a[5]);
    free(sa), free(sb), free(sc);
    avs_ops_set_threads(0);
}

int main(void)
{
    avs_ops_set_threads(0);
    fixture_case("head_eval", 0);
    fixture_case("head_train", 1);
    test_load_errors();
    test_determinism();
    return check_summary("test_model_head");
}
