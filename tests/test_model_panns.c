/* tests/test_model_panns.c: PANNs Cnn14_16k against the PyTorch reference of
 * tests/gen/model_panns.py (the official code re-stated, float64 with PyTorch float32's own
 * distance as the yardstick): the Slaney mel filters, the log-mel front end of 1-second chunks,
 * the network (reduced widths, official names, eval BatchNorm) to embedding and clipwise output,
 * within max(1e-4, 3x PyTorch float32's distance from float64); every backend gives the cpu's
 * bits; load errors name the tensor and the fix. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/safetensors.h"
#include "features/panns_mel.h"
#include "model/panns.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FIX "tests/fixtures/model/panns_small."

static double max_diff(const float *a, const float *b, size_t n, size_t *at)
{
    double w = 0;
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > w)
            w = d, *at = i;
    }
    return w;
}

/* ours within max(1e-4, 3 d32) of the float64 reference */
static void judge(const char *what, const float *ours, const float *ref, size_t n, float d32)
{
    size_t at;
    double d = max_diff(ours, ref, n, &at), tol = fmax(1e-4, 3.0 * d32);
    printf("%-16s max |ours - float64| %.3g (PyTorch float32: %.3g; bound %.3g)\n", what, d, d32, tol);
    CHECK(d <= tol, "%s: %.7g vs %.7g at %zu (|d| %.3g > %.3g)", what, ours[at], ref[at], at, d, tol);
}

static void check_filters(const struct avs_st_file *io)
{
    size_t n = 0, at = 0;
    float *ref = fixture_f32(io, "melW", &n); /* [257,64] */
    double *fb = malloc(64 * 257 * sizeof(double));
    float *t = malloc(64 * 257 * sizeof(float));
    avs_panns_mel_filters(fb, 16000, 512, 64, 50.0, 8000.0);
    for (int k = 0; k < 257; k++)
        for (int b = 0; b < 64; b++)
            t[k * 64 + b] = (float)fb[b * 257 + k];
    CHECK(n == 257 * 64 && max_diff(t, ref, n, &at) == 0, "Slaney mel filters: %.9g vs %.9g at %zu",
          t[at], ref[at], at);
    free(ref), free(fb), free(t);
}

static void check_frontend(const struct avs_st_file *io)
{
    size_t nw = 0, nl = 0, nd = 0;
    float *wave = fixture_f32(io, "wave", &nw), *ref = fixture_f32(io, "logmel64", &nl);
    float *d32 = fixture_f32(io, "logmel_d32", &nd);
    struct avs_panns_mel m;
    struct avs_err err;
    CHECK(avs_panns_mel_init(&m, &err) == 0, "%s", err.msg);
    int n = (int)(nw / 16000);
    float *lm = malloc((size_t)n * AVS_PANNS_MEL_EXAMPLE * sizeof(float));
    CHECK(n == 2 && nl == (size_t)n * AVS_PANNS_MEL_EXAMPLE, "fixture sizes %zu %zu", nw, nl);
    avs_panns_mel_seconds(&m, lm, wave, n);
    judge("log-mel", lm, ref, nl, d32[0]);
    avs_panns_mel_free(&m);
    free(wave), free(ref), free(d32), free(lm);
}

/* The network on every backend: against float64 (cpu), the cpu's bits (others). */
static void check_network(const struct avs_st_file *io)
{
    size_t nx = 0, ne = 0, nc = 0, n1 = 0, n2 = 0;
    float *x = fixture_f32(io, "logmel_in", &nx), *e64 = fixture_f32(io, "emb64", &ne);
    float *c64 = fixture_f32(io, "clip64", &nc), *ed = fixture_f32(io, "emb_d32", &n1);
    float *cd = fixture_f32(io, "clip_d32", &n2), *emb[2] = {0}, *clip[2] = {0};
    int N = (int)(nx / AVS_PANNS_MEL_EXAMPLE), T = AVS_PANNS_MEL_FRAMES;
    for (int b = 0; avs_backend_at(b); b++) {
        avs_backend_set(avs_backend_at(b));
        struct avs_panns m;
        struct avs_err err;
        if (avs_panns_load(&m, FIX "weights.safetensors", &err)) {
            CHECK(0, "%s", err.msg);
            break;
        }
        CHECK(m.ch[0] == 4 && m.ch[5] == 32 && m.emb == 32 && m.classes == 527,
              "widths from shapes: %d %d %d %d", m.ch[0], m.ch[5], m.emb, m.classes);
        float *xd = avs_dev_from_host(x, nx), *ws = avs_dev_alloc(avs_panns_ws(&m, N, T), "ws");
        float *edv = avs_dev_alloc(ne, "emb"), *cdv = avs_dev_alloc(nc, "clip");
        avs_panns_fwd(&m, edv, cdv, xd, N, T, ws);
        int k = b > 0;
        free(emb[k]), free(clip[k]);
        emb[k] = avs_host_from_dev(edv, ne), clip[k] = avs_host_from_dev(cdv, nc);
        avs_dev_free(&xd), avs_dev_free(&ws), avs_dev_free(&edv), avs_dev_free(&cdv);
        avs_panns_free(&m);
        if (k)
            CHECK(!memcmp(emb[0], emb[1], ne * sizeof(float)) && !memcmp(clip[0], clip[1], nc * sizeof(float)),
                  "%s gives the cpu's bits", avs_ops()->name);
        else {
            judge("embedding", emb[0], e64, ne, ed[0]);
            judge("clipwise_output", clip[0], c64, nc, cd[0]);
        }
    }
    avs_backend_set(avs_backend_cpu());
    free(x), free(e64), free(c64), free(ed), free(cd);
    free(emb[0]), free(emb[1]), free(clip[0]), free(clip[1]);
}

/* A copy of the fixture weights without `drop`, plus `add` [ndim shape] when given. */
static void write_variant(const char *path, const char *drop, const char *add, int ndim,
                          const int *shape)
{
    struct avs_st_file *f = NULL;
    struct avs_err err;
    AVS_ASSERT(avs_st_open(FIX "weights.safetensors", &f, &err) == 0);
    struct avs_st_writer *w = avs_st_writer_new();
    float **bufs = calloc((size_t)f->n + 1, sizeof *bufs);
    for (int i = 0; i < f->n; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        if (!strcmp(t->name, drop) || (add && !strcmp(t->name, add)) || strstr(t->name, "num_batches"))
            continue;
        int sh[8];
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            sh[d] = (int)t->shape[d], n *= (size_t)t->shape[d];
        bufs[i] = malloc(n * sizeof(float) + 4);
        AVS_ASSERT(avs_st_read_f32(t, bufs[i], n, &err) == 0);
        avs_st_writer_add_f32(w, t->name, t->ndim, sh, bufs[i]);
    }
    size_t n = 1;
    for (int d = 0; add && d < ndim; d++)
        n *= (size_t)shape[d];
    float *extra = calloc(n, sizeof(float));
    if (add)
        avs_st_writer_add_f32(w, add, ndim, shape, extra);
    AVS_ASSERT(avs_st_writer_save(w, path, &err) == 0);
    avs_st_writer_free(&w);
    for (int i = 0; i < f->n; i++)
        free(bufs[i]);
    free(bufs), free(extra);
    avs_st_close(&f);
}

static void check_errors(void)
{
    char dir[] = "/tmp/test_panns_XXXXXX", p1[64], p2[64], p3[64];
    AVS_ASSERT(mkdtemp(dir));
    snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/b.safetensors", dir);
    snprintf(p3, sizeof p3, "%s/c.safetensors", dir);
    struct avs_panns m;
    struct avs_err err;
    write_variant(p1, "fc1.weight", NULL, 0, NULL);
    CHECK(avs_panns_load(&m, p1, &err) == -1 && strstr(err.msg, "fc1.weight") &&
              strstr(err.msg, "convert_checkpoint"), "missing tensor: %s", err.msg);
    write_variant(p2, "", "logmel_extractor.melW", 2, (int[]){513, 64});
    CHECK(avs_panns_load(&m, p2, &err) == -1 && strstr(err.msg, "Cnn14_16k"),
          "32 kHz front end refused: %s", err.msg);
    write_variant(p3, "", "head.weight", 2, (int[]){3, 4});
    CHECK(avs_panns_load(&m, p3, &err) == -1 && strstr(err.msg, "head.weight"),
          "unknown tensor named: %s", err.msg);
    CHECK(avs_panns_load(&m, "tests/fixtures/features/vggish_small.weights.safetensors", &err) == -1 &&
              strstr(err.msg, "bn0.weight") && strstr(err.msg, "the file has 18 tensors: features.0.weight"),
          "another network: the first names and the count: %s", err.msg);
    CHECK(avs_panns_load(&m, "/nonexistent.safetensors", &err) == -1 &&
              strstr(err.msg, "/nonexistent.safetensors"), "no file: %s", err.msg);
    unlink(p1), unlink(p2), unlink(p3), rmdir(dir);
}

int main(void)
{
    avs_ops_set_threads(2);
    struct avs_st_file *io = NULL;
    struct avs_err err;
    if (avs_st_open(FIX "io.safetensors", &io, &err)) {
        CHECK(0, "%s", err.msg);
        return check_summary("test_model_panns");
    }
    check_filters(io);
    check_frontend(io);
    check_network(io);
    avs_st_close(&io);
    check_errors();
    return check_summary("test_model_panns");
}
