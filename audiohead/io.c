/* audiohead/io.c: the head file (audiohead.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "core/safetensors.h"

static const char *const names[4] = {"audiohead.cla.weight", "audiohead.cla.bias",
                                     "audiohead.att.weight", "audiohead.att.bias"};

/* W' = s W E, b' = b + W (c 1 - s E mu): the head on q = s E (x - mu) + c as one on x, with
 * s = 255/512 and c = -1/256 from q = ((E(x-mu) + 2) * 255/4 - 128) / 128 (no clip, no rounding) */
static void fold(const struct avs_ah_head *h, const struct avs_ah_pca *p, float *W2, float *b2)
{
    const double s = 255.0 / 512.0, c = -1.0 / 256.0;
    int D = AVS_AH_EMB;
    for (int k = 0; k < h->K; k++) {
        const float *w = h->W + (size_t)k * D;
        double bias = h->b[k];
        for (int j = 0; j < D; j++) {
            double acc = 0;
            for (int i = 0; i < D; i++)
                acc += (double)w[i] * p->E[i * D + j];
            W2[(size_t)k * D + j] = (float)(s * acc);
            bias -= s * acc * p->mu[j];
        }
        for (int i = 0; i < D; i++)
            bias += c * w[i];
        b2[k] = (float)bias;
    }
}

int avs_ah_save(const struct avs_ah_head *h, const char *space, const struct avs_ah_pca *pca,
                const char *path, const char *const *meta_kv, struct avs_err *err)
{
    int K = h->K, D = h->D, folded = !strcmp(space, "audioset-pca-uint8");
    if (folded && !(pca && pca->have))
        return avs_err_set(err, "%s: the head was trained on AudioSet's PCA'd embeddings; give "
                           "the VGGish PCA parameters (--pca FILE) to turn it into the head on "
                           "raw embeddings that avs-features loads", path);
    float *W2 = folded ? avs_malloc((size_t)K * D * sizeof *W2) : NULL;
    float *b2 = folded ? avs_malloc((size_t)K * sizeof *b2) : NULL;
    if (folded)
        fold(h, pca, W2, b2);
    struct avs_st_writer *w = avs_st_writer_new();
    int ws[2] = {K, D}, bs[1] = {K};
    avs_st_writer_add_f32(w, "head.weight", 2, ws, folded ? W2 : h->W);
    avs_st_writer_add_f32(w, "head.bias", 1, bs, folded ? b2 : h->b);
    const float *parts[4] = {h->W, h->b, h->V, h->c};
    for (int i = 0; i < 4; i++)
        avs_st_writer_add_f32(w, names[i], i % 2 ? 1 : 2, i % 2 ? bs : ws, parts[i]);
    avs_st_writer_meta(w, "format", "avs-audiohead 1");
    avs_st_writer_meta(w, "space", space);
    avs_st_writer_meta(w, "head", folded ? "folded through the VGGish PCA + quantisation"
                                         : "as trained (raw embeddings)");
    for (int i = 0; meta_kv && meta_kv[i]; i += 2)
        avs_st_writer_meta(w, meta_kv[i], meta_kv[i + 1]);
    int rc = avs_st_writer_check_finite(w, path, err) || avs_st_writer_save(w, path, err) ? -1 : 0;
    avs_st_writer_free(&w);
    free(W2);
    free(b2);
    return rc;
}

int avs_ah_load(struct avs_ah_head *h, const char *path, char *space, size_t spacelen,
                struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    const struct avs_st_tensor *t[4];
    int rc = -1;
    memset(h, 0, sizeof *h);
    if (avs_st_open(path, &f, err))
        return -1;
    for (int i = 0; i < 4; i++)
        if (!(t[i] = avs_st_find(f, names[i]))) {
            avs_err_set(err, "%s: no tensor %s: not a head written by avs-audiohead train",
                        path, names[i]);
            goto out;
        }
    if (t[0]->ndim != 2 || t[0]->shape[0] < 1 || t[0]->shape[0] > 100000 || t[0]->shape[1] < 1 ||
        t[0]->shape[1] > 100000 || t[2]->numel != t[0]->numel ||
        t[1]->numel != (size_t)t[0]->shape[0] || t[3]->numel != t[1]->numel) {
        avs_err_set(err, "%s: audiohead tensors of inconsistent shapes", path);
        goto out;
    }
    avs_ah_head_init(h, (int)t[0]->shape[1], (int)t[0]->shape[0], 0);
    float *dst[4] = {h->W, h->b, h->V, h->c};
    for (int i = 0; i < 4; i++)
        if (avs_st_read_f32(t[i], dst[i], t[i]->numel, err))
            goto out;
    const char *sp = avs_st_meta(f, "space");
    snprintf(space, spacelen, "%s", sp ? sp : "raw");
    rc = 0;
out:
    if (rc)
        avs_ah_head_free(h);
    avs_st_close(&f);
    return rc;
}
