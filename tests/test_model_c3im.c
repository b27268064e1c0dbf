/* tests/test_model_c3im.c: C3IM against the PyTorch fixture (tests/gen/features_c3im.py:
 * random frames, constant logits where the first of two equal maxima of S wins, a tie at the
 * visual maximum), on logits that went through each backend's memory (C3IM itself is host
 * code: callers download the logits), and hand-made cases. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/safetensors.h"
#include "model/c3im.h"
#include "tests/check.h"

static void check_fixture(void)
{
    struct avs_st_file *f = NULL;
    struct avs_err err;
    if (avs_st_open("tests/fixtures/features/c3im.safetensors", &f, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    const struct avs_st_tensor *tv = avs_st_find(f, "vlogits"), *ta = avs_st_find(f, "alogits"),
                               *ts = avs_st_find(f, "sim"), *tt = avs_st_find(f, "target"),
                               *ttv = avs_st_find(f, "target_v"), *tw = avs_st_find(f, "wmax");
    CHECK(tv && ta && ts && tt && ttv && tw, "fixture tensors present");
    if (!(tv && ta && ts && tt && ttv && tw)) {
        avs_st_close(&f);
        return;
    }
    int N = (int)tv->shape[0], V = (int)tv->shape[1], A = (int)ta->shape[1];
    CHECK(tt->dtype == AVS_ST_I64 && tt->numel == (size_t)N, "target int64 [N]");
    float *vl = malloc(tv->numel * 4), *al = malloc(ta->numel * 4), *S = malloc(ts->numel * 4),
          *wm = malloc((size_t)N * 4), *wref = malloc((size_t)N * 4);
    avs_st_read_f32(tv, vl, tv->numel, &err);
    avs_st_read_f32(ta, al, ta->numel, &err);
    avs_st_read_f32(ts, S, ts->numel, &err);
    avs_st_read_f32(tw, wref, (size_t)N, &err);
    int64_t *t = malloc((size_t)N * 8), *t_v = malloc((size_t)N * 8);
    memcpy(t, tt->data, (size_t)N * 8);
    memcpy(t_v, ttv->data, (size_t)N * 8);
    int *got = malloc((size_t)N * sizeof(int)), *got_v = malloc((size_t)N * sizeof(int));
    for (int b = 0; avs_backend_at(b); b++) {
        /* as the callers do: logits from the backend's memory, downloaded, C3IM on the host */
        avs_backend_set(avs_backend_at(b));
        float *dv = avs_dev_from_host(vl, tv->numel), *da = avs_dev_from_host(al, ta->numel);
        float *hv = avs_host_from_dev(dv, tv->numel), *ha = avs_host_from_dev(da, ta->numel);
        avs_c3im(got, got_v, wm, hv, ha, S, N, V, A);
        for (int n = 0; n < N; n++) {
            CHECK(got[n] == t[n], "%s frame %d: target %d, PyTorch %lld", avs_ops()->name, n, got[n],
                  (long long)t[n]);
            CHECK(got_v[n] == t_v[n], "frame %d: target_v %d, PyTorch %lld", n, got_v[n],
                  (long long)t_v[n]);
            CHECK_NEAR(wm[n], wref[n], 1e-6, 1e-5, "max of W");
        }
        CHECK(got[6] == 3 && got_v[7] == 11, "first maxima: %d %d", got[6], got_v[7]);
        avs_dev_free(&dv), avs_dev_free(&da);
        free(hv), free(ha);
    }
    avs_backend_set(avs_backend_cpu());
    free(vl), free(al), free(S), free(wm), free(wref), free(t), free(t_v), free(got), free(got_v);
    avs_st_close(&f);
}

static void check_hand_made(void)
{
    /* V=2, A=3: visual favours class 1, audio class 2, but S links 0 with 2 strongly */
    float vl[2] = {0.0f, 1.0f}, al[3] = {0.0f, 0.0f, 4.0f};
    float S[6] = {0.1f, 0.1f, 1.0f, 0.1f, 0.1f, 0.2f};
    int t, tv;
    float wm;
    avs_c3im(&t, &tv, &wm, vl, al, S, 1, 2, 3);
    CHECK(t == 0 && tv == 1, "consensus picks the linked class: %d %d", t, tv);
    float y[3];
    avs_c3im_softpow(y, al, 3, 0.1f);
    double e = exp(4.0), s = 2 + e;
    CHECK_NEAR(y[2], pow(e / s, 0.1), 1e-6, 0, "softmax^0.1");
    CHECK_NEAR(y[0], pow(1 / s, 0.1), 1e-6, 0, "softmax^0.1 small");
    /* negative similarities everywhere: the least negative wins, not 0 */
    float Sn[6] = {-0.5f, -0.4f, -0.9f, -0.3f, -0.8f, -0.7f}, z[3] = {0, 0, 0}, zv[2] = {0, 0};
    avs_c3im(&t, &tv, &wm, zv, z, Sn, 1, 2, 3);
    CHECK(t == 1 && tv == 0 && wm < 0, "all negative: %d %d %g", t, tv, wm);
}

int main(void)
{
    check_fixture();
    check_hand_made();
    return check_summary("test_model_c3im");
}
