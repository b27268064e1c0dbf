/* tests/test_features_logmel.c: the VGGish log-mel front end against the numpy reference
 * (tests/gen/features_logmel.py: synthetic tones and a real recording, both policies,
 * <= 1e-4 absolute; the AVX2 and plain-C paths both), the frame/example counts, "repeat the
 * last" padding and the short-wave error. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "core/safetensors.h"
#include "features/logmel.h"
#include "tests/check.h"

#define FIX "tests/fixtures/features/"

static float *load(const struct avs_st_file *f, const char *name, size_t *n)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    struct avs_err err;
    CHECK(t != NULL, "%s: no tensor %s", f->path, name);
    if (!t)
        return NULL;
    float *p = malloc(t->numel * sizeof(float));
    CHECK(avs_st_read_f32(t, p, t->numel, &err) == 0, "%s", err.msg);
    *n = t->numel;
    return p;
}

static void check_case(struct avs_logmel *m, const char *file)
{
    struct avs_st_file *f = NULL;
    struct avs_err err;
    if (avs_st_open(file, &f, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    size_t S, ns, nx;
    float *wave = load(f, "wave", &S);
    const char *pol[2] = {"stream", "second"};
    for (int p = 0; p < 2 && wave; p++) {
        float *ref = load(f, pol[p], &nx);
        ns = nx / AVS_LOGMEL_EXAMPLE;
        CHECK(avs_logmel_count((int64_t)S, (enum avs_logmel_policy)p) == (int64_t)ns,
              "%s %s: count %lld, numpy %zu", file, pol[p],
              (long long)avs_logmel_count((int64_t)S, (enum avs_logmel_policy)p), ns);
        float *got = malloc(nx * sizeof(float));
        CHECK(avs_logmel_examples(m, got, (int64_t)ns, wave, (int64_t)S, (enum avs_logmel_policy)p,
                                  &err) == 0, "%s", err.msg);
        double worst = 0;
        size_t wi = 0;
        for (size_t i = 0; i < nx; i++) {
            double d = fabs((double)got[i] - ref[i]);
            if (d > worst)
                worst = d, wi = i;
        }
        printf("%s %s: %zu examples, max |C - numpy| = %.3g at %zu (C %.7g numpy %.7g)\n", file,
               pol[p], ns, worst, wi, got[wi], ref[wi]);
        CHECK(worst <= 1e-4, "%s %s: max abs error %.3g > 1e-4 at %zu", file, pol[p], worst, wi);
        /* the plain-C path (CPUs without AVX2) agrees as well */
        if (m->avx2) {
            float *plain = malloc(nx * sizeof(float));
            m->avx2 = 0;
            avs_logmel_examples(m, plain, (int64_t)ns, wave, (int64_t)S, (enum avs_logmel_policy)p, &err);
            m->avx2 = 1;
            double wp = 0, wa = 0;
            for (size_t i = 0; i < nx; i++) {
                wp = fmax(wp, fabs((double)plain[i] - ref[i]));
                wa = fmax(wa, fabs((double)plain[i] - got[i]));
            }
            printf("%s %s: plain C path: max |C - numpy| = %.3g, |plain - AVX2| = %.3g\n", file,
                   pol[p], wp, wa);
            CHECK(wp <= 1e-4 && wa <= 1e-5, "%s %s: plain path %.3g from numpy, %.3g from AVX2",
                  file, pol[p], wp, wa);
            free(plain);
        }
        /* one thread gives the same bits as several */
        float *one = malloc(nx * sizeof(float));
        int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        avs_logmel_examples(m, one, (int64_t)ns, wave, (int64_t)S, (enum avs_logmel_policy)p, &err);
        omp_set_num_threads(nt);
        CHECK(memcmp(one, got, nx * sizeof(float)) == 0, "%s %s: 1 thread == %d threads", file, pol[p], nt);
        free(one);
        free(got);
        free(ref);
    }
    free(wave);
    avs_st_close(&f);
}

static void check_counts_and_padding(struct avs_logmel *m)
{
    CHECK(avs_logmel_num_frames(399) == 0, "399 samples: no frame");
    CHECK(avs_logmel_num_frames(400) == 1, "400 samples: one frame");
    CHECK(avs_logmel_num_frames(16000) == 98, "1 s: 98 frames");
    CHECK(avs_logmel_count(80000, AVS_LOGMEL_STREAM) == 5, "5 s: 5 stream examples");
    CHECK(avs_logmel_count(15599, AVS_LOGMEL_STREAM) == 0, "15599 samples: no example");
    CHECK(avs_logmel_count(15600, AVS_LOGMEL_STREAM) == 1, "15600 samples: one example");
    CHECK(avs_logmel_count(31999, AVS_LOGMEL_SECOND) == 1, "1.99 s: one second");
    CHECK(avs_logmel_policy_parse("second") == AVS_LOGMEL_SECOND, "parse second");
    CHECK(avs_logmel_policy_parse("x") == -1, "parse unknown");

    int S = 40000; /* 2.5 s: 2 examples in either policy, ask for 4 */
    float *w = malloc(S * sizeof(float)), *ex = malloc(4 * AVS_LOGMEL_EXAMPLE * sizeof(float));
    for (int i = 0; i < S; i++)
        w[i] = 0.3f * sinf(2 * (float)M_PI * (300 + i / 100) * i / 16000.0f);
    struct avs_err err;
    for (int p = 0; p < 2; p++) {
        CHECK(avs_logmel_examples(m, ex, 4, w, S, (enum avs_logmel_policy)p, &err) == 0, "%s", err.msg);
        CHECK(memcmp(ex + 2 * AVS_LOGMEL_EXAMPLE, ex + AVS_LOGMEL_EXAMPLE, AVS_LOGMEL_EXAMPLE * 4) == 0 &&
              memcmp(ex + 3 * AVS_LOGMEL_EXAMPLE, ex + AVS_LOGMEL_EXAMPLE, AVS_LOGMEL_EXAMPLE * 4) == 0,
              "policy %d: examples 2 and 3 repeat example 1", p);
        CHECK(memcmp(ex, ex + AVS_LOGMEL_EXAMPLE, AVS_LOGMEL_EXAMPLE * 4) != 0, "examples 0 and 1 differ");
    }
    /* a 440 Hz tone peaks in the band whose centre is nearest 440 Hz, away from 0 */
    for (int i = 0; i < 16000; i++)
        w[i] = 0.5f * sinf(2 * (float)M_PI * 440 * i / 16000.0f);
    float fr[AVS_LOGMEL_MELS];
    avs_logmel_frames(m, fr, 1, w + 800, 16000 - 800);
    int best = 0;
    for (int b = 1; b < AVS_LOGMEL_MELS; b++)
        if (fr[b] > fr[best])
            best = b;
    double mel440 = 1127.0 * log(1 + 440 / 700.0), m0 = 1127.0 * log(1 + 125 / 700.0),
           m1 = 1127.0 * log(1 + 7500 / 700.0);
    int want = (int)lround((mel440 - m0) / ((m1 - m0) / 65)) - 1;
    CHECK(abs(best - want) <= 1, "440 Hz peaks in band %d, expected about %d", best, want);
    /* too short */
    CHECK(avs_logmel_examples(m, ex, 1, w, 15000, AVS_LOGMEL_STREAM, &err) == -1 &&
          strstr(err.msg, "15000 samples") != NULL, "short wave error: %s", err.msg);
    CHECK(avs_logmel_examples(m, ex, 1, w, 15999, AVS_LOGMEL_SECOND, &err) == -1, "short second");
    free(w);
    free(ex);
}

int main(void)
{
    struct avs_logmel m;
    struct avs_err err;
    if (avs_logmel_init(&m, &err)) {
        CHECK(0, "%s", err.msg);
        return check_summary("test_features_logmel");
    }
    printf("FFT plan: %s; post-processing: %s\n", m.wisdom ? "stored wisdom" : "FFTW_ESTIMATE",
           m.avx2 ? "AVX2" : "plain C");
    check_case(&m, FIX "logmel_tones.safetensors");
    check_case(&m, FIX "logmel_real.safetensors");
    check_counts_and_padding(&m);
    avs_logmel_free(&m);
    return check_summary("test_features_logmel");
}
