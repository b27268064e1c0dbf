/* tests/test_model_c3im.c: C3IM against the PyTorch fixture (tests/gen/features_c3im.py:
 * random frames, constant logits where the first of two equal maxima of S wins, a tie at the
 * visual maximum), on logits that went through each backend's memory (C3IM itself is host
 * code: callers download the logits), at the official exponents 0.1/0.1 and at seven other
 * (alpha, beta) pairs (targets equal to PyTorch's; the maximum of W within 3x PyTorch
 * float32's own distance from a float64 recomputation), hand-made cases, and the parsing of
 * --alpha/--beta values. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/safetensors.h"
#include "model/c3im.h"
#include "tests/check.h"

struct fixture {
    struct avs_st_file *f;
    int N, V, A, K;
    float *vl, *al, *S, *wref, *wrefs; /* [N,V] [N,A] [V,A] [N] [K,N] */
    int64_t *t, *t_v, *ts;              /* [N] [N] [K,N] */
    double *ab, *w64;                   /* [K,2] [K+1,N] */
};

static void *copy_of(const struct avs_st_tensor *t, size_t bytes)
{
    void *p = malloc(bytes);
    memcpy(p, t->data, bytes);
    return p;
}

static int fixture_open(struct fixture *x)
{
    struct avs_err err;
    memset(x, 0, sizeof *x);
    if (avs_st_open("tests/fixtures/features/c3im.safetensors", &x->f, &err)) {
        CHECK(0, "%s", err.msg);
        return -1;
    }
    const char *names[10] = {"vlogits", "alogits", "sim", "target", "target_v", "wmax", "ab",
                             "targets", "wmaxes", "wmax64"};
    const struct avs_st_tensor *t[10];
    for (int i = 0; i < 10; i++)
        if (!(t[i] = avs_st_find(x->f, names[i]))) {
            CHECK(0, "fixture tensor %s missing: run tests/gen/features_c3im.py", names[i]);
            avs_st_close(&x->f);
            return -1;
        }
    x->N = (int)t[0]->shape[0], x->V = (int)t[0]->shape[1], x->A = (int)t[1]->shape[1];
    x->K = (int)t[6]->shape[0];
    CHECK(t[3]->dtype == AVS_ST_I64 && t[3]->numel == (size_t)x->N, "target int64 [N]");
    CHECK(t[6]->dtype == AVS_ST_F64 && t[9]->dtype == AVS_ST_F64 && t[7]->dtype == AVS_ST_I64 &&
          t[9]->numel == (size_t)(x->K + 1) * x->N, "ab, wmax64 F64; targets I64");
    float **fl[5] = {&x->vl, &x->al, &x->S, &x->wref, &x->wrefs};
    const int fi[5] = {0, 1, 2, 5, 8};
    for (int i = 0; i < 5; i++) {
        *fl[i] = malloc(t[fi[i]]->numel * sizeof(float));
        avs_st_read_f32(t[fi[i]], *fl[i], t[fi[i]]->numel, &err);
    }
    x->t = copy_of(t[3], (size_t)x->N * 8), x->t_v = copy_of(t[4], (size_t)x->N * 8);
    x->ts = copy_of(t[7], (size_t)x->K * x->N * 8);
    x->ab = copy_of(t[6], (size_t)x->K * 2 * 8);
    x->w64 = copy_of(t[9], (size_t)(x->K + 1) * x->N * 8);
    return 0;
}

static void fixture_close(struct fixture *x)
{
    free(x->vl), free(x->al), free(x->S), free(x->wref), free(x->wrefs);
    free(x->t), free(x->t_v), free(x->ts), free(x->ab), free(x->w64);
    avs_st_close(&x->f);
}

/* wm [N] against PyTorch float32 wref [N] and float64 w64 [N]: within 3x PyTorch's own
 * distance from float64 (at least 4 float32 ulps of the value). Returns the worst ratio. */
static double check_wmax(const float *wm, const float *wref, const double *w64, int N,
                         const char *what)
{
    double worst = 0;
    for (int n = 0; n < N; n++) {
        double tol = fmax(3 * fabs((double)wref[n] - w64[n]), 4 * FLT_EPSILON * fabs(w64[n]));
        double d = fabs((double)wm[n] - w64[n]);
        worst = fmax(worst, d / tol);
        CHECK(d <= tol, "%s frame %d: max of W %.9g, float64 %.12g (PyTorch float32 %.9g): "
              "distance %.3g > tolerance %.3g", what, n, wm[n], w64[n], wref[n], d, tol);
    }
    return worst;
}

static void check_fixture(void)
{
    struct fixture x;
    if (fixture_open(&x))
        return;
    int N = x.N, V = x.V, A = x.A;
    float *wm = malloc((size_t)N * 4);
    int *got = malloc((size_t)N * sizeof(int)), *got_v = malloc((size_t)N * sizeof(int));
    double worst = 0;
    for (int b = 0; avs_backend_at(b); b++) {
        /* as the callers do: logits from the backend's memory, downloaded, C3IM on the host */
        avs_backend_set(avs_backend_at(b));
        float *dv = avs_dev_from_host(x.vl, (size_t)N * V), *da = avs_dev_from_host(x.al, (size_t)N * A);
        float *hv = avs_host_from_dev(dv, (size_t)N * V), *ha = avs_host_from_dev(da, (size_t)N * A);
        avs_c3im(got, got_v, wm, hv, ha, x.S, N, V, A, AVS_C3IM_ALPHA, AVS_C3IM_BETA);
        for (int n = 0; n < N; n++) {
            CHECK(got[n] == x.t[n], "%s frame %d: target %d, PyTorch %lld", avs_ops()->name, n,
                  got[n], (long long)x.t[n]);
            CHECK(got_v[n] == x.t_v[n], "frame %d: target_v %d, PyTorch %lld", n, got_v[n],
                  (long long)x.t_v[n]);
        }
        worst = fmax(worst, check_wmax(wm, x.wref, x.w64, N, "alpha 0.1 beta 0.1"));
        CHECK(got[6] == 3 && got_v[7] == 11, "first maxima: %d %d", got[6], got_v[7]);
        for (int k = 0; k < x.K; k++) {
            float a = (float)x.ab[2 * k], be = (float)x.ab[2 * k + 1];
            char what[64];
            snprintf(what, sizeof what, "%s alpha %g beta %g", avs_ops()->name, a, be);
            avs_c3im(got, got_v, wm, hv, ha, x.S, N, V, A, a, be);
            for (int n = 0; n < N; n++)
                CHECK(got[n] == x.ts[(size_t)k * N + n] && got_v[n] == x.t_v[n],
                      "%s frame %d: target %d, PyTorch %lld", what, n, got[n],
                      (long long)x.ts[(size_t)k * N + n]);
            worst = fmax(worst, check_wmax(wm, x.wrefs + (size_t)k * N, x.w64 + (size_t)(k + 1) * N,
                                           N, what));
        }
        avs_dev_free(&dv), avs_dev_free(&da);
        free(hv), free(ha);
    }
    printf("c3im: %d frames at 1 + %d exponent pairs on every backend: targets equal PyTorch's; "
           "max of W at worst %.2f of its tolerance\n", N, x.K, worst);
    avs_backend_set(avs_backend_cpu());
    free(wm), free(got), free(got_v);
    fixture_close(&x);
}

static void check_hand_made(void)
{
    /* V=2, A=3: visual favours class 1, audio class 2, but S links 0 with 2 strongly */
    float vl[2] = {0.0f, 1.0f}, al[3] = {0.0f, 0.0f, 4.0f};
    float S[6] = {0.1f, 0.1f, 1.0f, 0.1f, 0.1f, 0.2f};
    int t, tv;
    float wm;
    avs_c3im(&t, &tv, &wm, vl, al, S, 1, 2, 3, 0.1f, 0.1f);
    CHECK(t == 0 && tv == 1, "consensus picks the linked class: %d %d", t, tv);
    float y[3];
    avs_c3im_softpow(y, al, 3, 0.1f);
    double e = exp(4.0), s = 2 + e;
    CHECK_NEAR(y[2], pow(e / s, 0.1), 1e-6, 0, "softmax^0.1");
    CHECK_NEAR(y[0], pow(1 / s, 0.1), 1e-6, 0, "softmax^0.1 small");
    avs_c3im_softpow(y, al, 3, 3.0f);
    CHECK(y[2] == (float)pow(e / s, 3), "softmax^3 rounded once: %.9g vs %.9g", y[2], pow(e / s, 3));
    /* negative similarities everywhere: the least negative wins, not 0 */
    float Sn[6] = {-0.5f, -0.4f, -0.9f, -0.3f, -0.8f, -0.7f}, z[3] = {0, 0, 0}, zv[2] = {0, 0};
    avs_c3im(&t, &tv, &wm, zv, z, Sn, 1, 2, 3, 0.1f, 0.1f);
    CHECK(t == 1 && tv == 0 && wm < 0, "all negative: %d %d %g", t, tv, wm);
    /* the exponents balance the modalities: visual favours 0, audio 1, S links 0-0 and 1-1;
     * softmax([2,0]) = (0.881, 0.119). alpha 2, beta 0.05: W00 = 0.776*0.5*0.899 wins;
     * alpha 0.05, beta 2: W11 = 0.899*0.6*0.776 wins. */
    float v2[2] = {2, 0}, a2[2] = {0, 2}, S2[4] = {0.5f, 0.1f, 0.1f, 0.6f};
    avs_c3im(&t, &tv, &wm, v2, a2, S2, 1, 2, 2, 2.0f, 0.05f);
    CHECK(t == 0 && tv == 0, "visual-heavy exponents: target %d", t);
    CHECK_NEAR(wm, 0.5 * pow(1 / (1 + exp(-2.0)), 2) * pow(1 / (1 + exp(2.0)), 0.05), 1e-6, 1e-5,
               "W00");
    avs_c3im(&t, &tv, &wm, v2, a2, S2, 1, 2, 2, 0.05f, 2.0f);
    CHECK(t == 1 && tv == 0, "audio-heavy exponents: target %d", t);
}

static void check_parse(void)
{
    struct avs_err err;
    double x = -1;
    CHECK(avs_c3im_parse("--alpha", "0.2", &x, &err) == 0 && x == 0.2, "0.2 parses");
    CHECK(avs_c3im_parse("--beta", "1e-1", &x, &err) == 0 && x == 0.1, "1e-1 parses");
    const char *bad[] = {"0", "-0.1", "nan", "inf", "-inf", "abc", "", "0.1x", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x = 7;
        int rc = avs_c3im_parse("--beta", bad[i], &x, &err);
        CHECK(rc == -1 && x == 7 && strstr(err.msg, "--beta") && strstr(err.msg, "> 0"),
              "--beta '%s' refused naming the flag: %s", bad[i], rc ? err.msg : "(accepted)");
    }
    CHECK(avs_c3im_exponent_ok(0.1) && !avs_c3im_exponent_ok(0) && !avs_c3im_exponent_ok(NAN) &&
          !avs_c3im_exponent_ok(INFINITY), "exponent_ok");
}

int main(void)
{
    check_fixture();
    check_hand_made();
    check_parse();
    return check_summary("test_model_c3im");
}
