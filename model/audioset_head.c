/* model/audioset_head.c: the AudioSet attention head's tensors: size tables, Kong's init,
 * loading by the official names, saving, the PCA (audioset_head.h). The passes are in
 * model/audioset_head_pass.c. */
#include "model/audioset_head.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/params.h"
#include "model/randinit.h"

static const char *const bn_names[AVS_ASH_NBN] = {"emb.bn0", "emb.bn1", "emb.bn2", "emb.bn3",
                                                  "bn_attention"};

/* The size tables, in the official state_dict's order (parameters; buffers apart). */
static void add_specs(struct avs_ash *m)
{
    int D = m->D, H = m->H, K = m->K;
    int c1[4] = {H, D, 1, 1}, cH[4] = {H, H, 1, 1}, vD[1] = {D}, vH[1] = {H};
    int fw[2] = {K, H}, fb[1] = {K};
    for (int l = 0; l < 3; l++)
        avs_spec_add(&m->specs, 4, l ? cH : c1, "emb.conv%d.weight", l + 1);
    for (int b = 0; b < 4; b++) {
        avs_spec_add(&m->specs, 1, b ? vH : vD, "%s.weight", bn_names[b]);
        avs_spec_add(&m->specs, 1, b ? vH : vD, "%s.bias", bn_names[b]);
    }
    avs_spec_add(&m->specs, 4, cH, "attention.att.weight");
    avs_spec_add(&m->specs, 1, vH, "attention.att.bias");
    avs_spec_add(&m->specs, 4, cH, "attention.cla.weight");
    avs_spec_add(&m->specs, 1, vH, "attention.cla.bias");
    avs_spec_add(&m->specs, 2, fw, "fc_final.weight");
    avs_spec_add(&m->specs, 1, fb, "fc_final.bias");
    avs_spec_add(&m->specs, 1, vH, "bn_attention.weight");
    avs_spec_add(&m->specs, 1, vH, "bn_attention.bias");
    AVS_ASSERT(m->specs.n == AVS_ASH_NPARAMS);
    for (int b = 0; b < AVS_ASH_NBN; b++) {
        avs_spec_add(&m->bspecs, 1, b ? vH : vD, "%s.running_mean", bn_names[b]);
        avs_spec_add(&m->bspecs, 1, b ? vH : vD, "%s.running_var", bn_names[b]);
    }
}

static void setup(struct avs_ash *m, int D, int H, int K, float drop)
{
    memset(m, 0, sizeof *m);
    m->D = D, m->H = H, m->K = K, m->drop = drop;
    add_specs(m);
    avs_tensor_set_init(&m->params, m->specs.v, m->specs.n);
    avs_tensor_set_init(&m->bufs, m->bspecs.v, m->bspecs.n);
}

/* tensor i of s set to v everywhere */
static void fill_tensor(struct avs_tensor_set *s, int i, float v)
{
    size_t n = avs_tensor_spec_numel(&s->spec[i]);
    float *h = avs_malloc(n * sizeof *h);
    for (size_t k = 0; k < n; k++)
        h[k] = v;
    avs_tensor_set_upload(s, i, h);
    free(h);
}

void avs_ash_init(struct avs_ash *m, int D, int H, int K, float drop, uint64_t seed)
{
    setup(m, D, H, K, drop); /* the arenas start zeroed: biases and BN biases are 0 */
    static const int weights[] = {AVS_ASH_CONV1, AVS_ASH_CONV2, AVS_ASH_CONV3, AVS_ASH_ATT_W,
                                  AVS_ASH_CLA_W, AVS_ASH_FC_W};
    for (size_t j = 0; j < sizeof weights / sizeof *weights; j++) {
        const struct avs_tensor_spec *t = &m->specs.v[weights[j]];
        size_t n = avs_tensor_spec_numel(t), fan_in = n / (size_t)t->shape[0];
        float *h = avs_malloc(n * sizeof *h);
        /* init_layer: std sqrt(2/fan_in), uniform of that std */
        avs_randinit_uniform(h, n, (float)sqrt(6.0 / (double)fan_in), seed, (uint64_t)weights[j]);
        avs_tensor_set_upload(&m->params, weights[j], h);
        free(h);
    }
    for (int b = 0; b < AVS_ASH_NBN; b++) {
        fill_tensor(&m->params, b < 4 ? AVS_ASH_BN0_W + 2 * b : AVS_ASH_BNA_W, 1.0f);
        fill_tensor(&m->bufs, 2 * b + 1, 1.0f);
    }
}

void avs_ash_free(struct avs_ash *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    if (m->bufs.t)
        avs_tensor_set_free(&m->bufs);
    avs_spec_list_free(&m->specs);
    avs_spec_list_free(&m->bspecs);
    avs_dev_free(&m->pca_E), avs_dev_free(&m->pca_mu), avs_dev_free(&m->pca_b);
    memset(m, 0, sizeof *m);
}

int avs_ash_is_head(const struct avs_st_file *f)
{
    return f && (avs_st_find(f, "fc_final.weight") || avs_st_find(f, "module.fc_final.weight")) &&
           (avs_st_find(f, "attention.att.weight") ||
            avs_st_find(f, "module.attention.att.weight"));
}

void avs_ash_set_pca(struct avs_ash *m, const float *E, const float *mu)
{
    enum { P = AVS_ASH_PCA };
    float b[P];
    for (int i = 0; i < P; i++) { /* -E mu, in double: the bias of the PCA as one linear */
        double s = 0;
        for (int j = 0; j < P; j++)
            s += (double)E[i * P + j] * mu[j];
        b[i] = (float)-s;
    }
    avs_dev_free(&m->pca_E), avs_dev_free(&m->pca_mu), avs_dev_free(&m->pca_b);
    m->pca_E = avs_dev_from_host(E, (size_t)P * P);
    m->pca_mu = avs_dev_from_host(mu, P);
    m->pca_b = avs_dev_from_host(b, P);
    m->have_pca = 1;
}

/* The PCA of f when it has one: 1 taken, 0 none, -1 error. */
static int pca_from(struct avs_ash *m, const struct avs_st_file *f, struct avs_err *err)
{
    const struct avs_st_tensor *e = avs_st_find(f, "pca_eigen_vectors"), *u = avs_st_find(f, "pca_means");
    if (!e || !u)
        e = avs_st_find(f, "pproc._pca_matrix"), u = avs_st_find(f, "pproc._pca_means");
    if (!e || !u)
        return 0;
    if (e->numel != AVS_ASH_PCA * AVS_ASH_PCA || u->numel != AVS_ASH_PCA)
        return avs_err_set(err, "%s: PCA tensors of %zu and %zu values, need 128x128 and 128",
                           f->path, e->numel, u->numel);
    float *E = avs_malloc(e->numel * sizeof *E), mu[AVS_ASH_PCA];
    int rc = avs_st_read_f32(e, E, e->numel, err) || avs_st_read_f32(u, mu, u->numel, err) ? -1 : 1;
    if (rc == 1)
        avs_ash_set_pca(m, E, mu);
    free(E);
    return rc;
}

/* widths from the shapes of f */
static int widths(const struct avs_st_file *f, int *D, int *H, int *K, struct avs_err *err)
{
    const char *names[2] = {"emb.conv1.weight", "fc_final.weight"};
    const struct avs_st_tensor *t[2];
    for (int i = 0; i < 2; i++) {
        char pre[64];
        snprintf(pre, sizeof pre, "module.%s", names[i]);
        if (!(t[i] = avs_st_find(f, names[i])) && !(t[i] = avs_st_find(f, pre)))
            return avs_err_set(err, "%s: missing tensor \"%s\" (expected Kong's "
                               "FeatureLevelSingleAttention names: emb.conv1.weight, ..., "
                               "fc_final.weight; a file of avs-audiohead train --model attention)",
                               f->path, names[i]);
        if (t[i]->ndim < 2 || t[i]->shape[0] < 1 || t[i]->shape[0] > 1 << 20 ||
            t[i]->shape[1] < 1 || t[i]->shape[1] > 1 << 20)
            return avs_err_set(err, "%s: tensor \"%s\" of an impossible shape", f->path, names[i]);
    }
    *H = (int)t[0]->shape[0], *D = (int)t[0]->shape[1], *K = (int)t[1]->shape[0];
    return 0;
}

int avs_ash_load(struct avs_ash *m, const char *path, const char *pca_path, struct avs_err *err)
{
    struct avs_st_file *f = NULL, *pf = NULL;
    int D = 0, H = 0, K = 0, rc = -1, ignored = 0, got = 0;
    memset(m, 0, sizeof *m);
    if (avs_st_open(path, &f, err) || widths(f, &D, &H, &K, err))
        goto out;
    const char *dr = avs_st_meta(f, "dropout");
    setup(m, D, H, K, dr ? (float)atof(dr) : 0.5f);
    struct avs_params_io io = {.sets = {&m->params, &m->bufs}, .nsets = 2, .ignored = &ignored,
                               .what = "the AudioSet attention head"};
    if (avs_params_load(f, &io, err) || (got = pca_from(m, f, err)) < 0)
        goto out;
    if (!got && pca_path &&
        (avs_st_open(pca_path, &pf, err) || pca_from(m, pf, err) < 0))
        goto out;
    rc = 0;
out:
    avs_st_close(&f);
    avs_st_close(&pf);
    if (rc)
        avs_ash_free(m);
    return rc;
}

int avs_ash_save(const struct avs_ash *m, const char *path, const char *const *meta_kv,
                 struct avs_err *err)
{
    struct avs_st_writer *w = avs_st_writer_new();
    struct avs_params_stage st = {0};
    avs_params_stage_add(&st, w, &m->params, NULL);
    avs_params_stage_add(&st, w, &m->bufs, NULL);
    float *E = NULL, mu[AVS_ASH_PCA];
    if (m->have_pca) {
        int es[2] = {AVS_ASH_PCA, AVS_ASH_PCA}, ms[1] = {AVS_ASH_PCA};
        E = avs_malloc((size_t)AVS_ASH_PCA * AVS_ASH_PCA * sizeof *E);
        avs_dev_download(E, m->pca_E, (size_t)AVS_ASH_PCA * AVS_ASH_PCA);
        avs_dev_download(mu, m->pca_mu, AVS_ASH_PCA);
        avs_st_writer_add_f32(w, "pca_eigen_vectors", 2, es, E);
        avs_st_writer_add_f32(w, "pca_means", 1, ms, mu);
    }
    char dr[32], hd[32];
    snprintf(dr, sizeof dr, "%g", m->drop), snprintf(hd, sizeof hd, "%d", m->H);
    avs_st_writer_meta(w, "format", "avs-audiohead attention 1");
    avs_st_writer_meta(w, "model", "FeatureLevelSingleAttention (Kong et al., audioset_classification)");
    avs_st_writer_meta(w, "dropout", dr);
    avs_st_writer_meta(w, "hidden", hd);
    for (int i = 0; meta_kv && meta_kv[i]; i += 2)
        avs_st_writer_meta(w, meta_kv[i], meta_kv[i + 1]);
    int rc = avs_st_writer_check_finite(w, path, err) || avs_st_writer_save(w, path, err) ? -1 : 0;
    avs_st_writer_free(&w);
    avs_params_stage_free(&st);
    free(E);
    return rc;
}
