/* model/vggish.c: VGGish forward (vggish.h; ref: torchvggish vggish.VGG.forward). */
#include "model/vggish.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/safetensors.h"
#include "model/nn.h"
#include "model/params.h"
#include "model/randinit.h"

static const char *const conv_names[AVS_VGGISH_NCONV][2] = {
    {"features.0.weight", "features.0.bias"},   {"features.3.weight", "features.3.bias"},
    {"features.6.weight", "features.6.bias"},   {"features.8.weight", "features.8.bias"},
    {"features.11.weight", "features.11.bias"}, {"features.13.weight", "features.13.bias"}};
static const char *const fc_names[AVS_VGGISH_NFC][2] = {{"embeddings.0.weight", "embeddings.0.bias"},
                                                        {"embeddings.2.weight", "embeddings.2.bias"},
                                                        {"embeddings.4.weight", "embeddings.4.bias"}};
/* a 2x2 max-pool follows these convs */
static const int pool_after[AVS_VGGISH_NCONV] = {1, 1, 0, 1, 0, 1};

#define IN_H 96
#define IN_W 64

static const struct avs_st_tensor *find2(const struct avs_st_file *a, const struct avs_st_file *b,
                                         const char *name, const char **where)
{
    const struct avs_st_tensor *t = a ? avs_st_find(a, name) : NULL;
    *where = a ? a->path : "";
    if (!t && b) {
        t = avs_st_find(b, name);
        *where = b->path;
    }
    return t;
}

static void add_spec(struct avs_vggish *m, const char *name, int ndim, const int *shape)
{
    avs_spec_add(&m->specs, ndim, shape, "%s", name);
}

/* Widths from the shapes; fills the spec table. */
static int plan(struct avs_vggish *m, const struct avs_st_file *f, const struct avs_st_file *hf,
                struct avs_err *err)
{
    int cin = 1, h = IN_H, w = IN_W;
    const char *where;
    for (int l = 0; l < AVS_VGGISH_NCONV; l++) {
        const struct avs_st_tensor *t = avs_st_find(f, conv_names[l][0]);
        if (!t)
            return avs_err_set(err, "%s: missing tensor \"%s\" (expected torchvggish names, "
                               "as in vggish-10086976.pth)", f->path,
                               conv_names[l][0]);
        if (t->ndim != 4 || t->shape[1] != cin || t->shape[2] != 3 || t->shape[3] != 3 ||
            t->shape[0] < 1 || t->shape[0] > 65536)
            return avs_err_set(err, "%s: tensor \"%s\" should be [K,%d,3,3]", f->path,
                               conv_names[l][0], cin);
        m->ch[l] = (int)t->shape[0];
        int ws[4] = {m->ch[l], cin, 3, 3}, bs[1] = {m->ch[l]};
        add_spec(m, conv_names[l][0], 4, ws);
        add_spec(m, conv_names[l][1], 1, bs);
        cin = m->ch[l];
        if (pool_after[l])
            h /= 2, w /= 2;
    }
    int in = cin * h * w;
    for (int l = 0; l < AVS_VGGISH_NFC; l++) {
        const struct avs_st_tensor *t = avs_st_find(f, fc_names[l][0]);
        if (!t)
            return avs_err_set(err, "%s: missing tensor \"%s\"", f->path, fc_names[l][0]);
        if (t->ndim != 2 || t->shape[1] != in || t->shape[0] < 1 || t->shape[0] > 1 << 20)
            return avs_err_set(err, "%s: tensor \"%s\" should be [O,%d]", f->path, fc_names[l][0], in);
        m->fc[l] = (int)t->shape[0];
        int ws[2] = {m->fc[l], in}, bs[1] = {m->fc[l]};
        add_spec(m, fc_names[l][0], 2, ws);
        add_spec(m, fc_names[l][1], 1, bs);
        in = m->fc[l];
    }
    const struct avs_st_tensor *t = find2(hf, f, "head.weight", &where);
    m->classes = 0;
    if (t) {
        if (t->ndim != 2 || t->shape[1] != in || t->shape[0] < 1 || t->shape[0] > 1 << 20)
            return avs_err_set(err, "%s: tensor \"head.weight\" should be [K,%d]", where, in);
        m->classes = (int)t->shape[0];
        int ws[2] = {m->classes, in}, bs[1] = {m->classes};
        add_spec(m, "head.weight", 2, ws);
        add_spec(m, "head.bias", 1, bs);
    } else if (hf)
        return avs_err_set(err, "%s: missing tensor \"head.weight\" (the AudioSet head: "
                           "head.weight [K,%d], head.bias [K])", hf->path, in);
    return 0;
}

/* The tensors of f (and hf: the head, loaded last so that it wins) into m->params. */
static int load_params(struct avs_vggish *m, const struct avs_st_file *f,
                       const struct avs_st_file *hf, struct avs_err *err)
{
    int ignored = 0, set = 0;
    char *seen = avs_calloc((size_t)m->specs.n + 1, 1);
    struct avs_params_io io = {.sets = {&m->params}, .nsets = 1, .ignored = &ignored,
                               .seen = seen, .what = "VGGish"};
    int rc = avs_params_load(f, &io, err) || (hf && avs_params_load(hf, &io, err)) ? -1 : 0;
    const char *miss = rc ? NULL : avs_params_missing(&io, seen, &set);
    if (miss)
        rc = avs_err_set(err, "%s: missing tensor \"%s\"", hf && !strncmp(miss, "head.", 5) ?
                         hf->path : f->path, miss);
    free(seen);
    return rc;
}

/* An attention head file: its network (PCA from it, else from the VGGish file at path). */
static int load_attention(struct avs_vggish *m, const char *path, const char *head_path,
                          struct avs_err *err)
{
    m->att = avs_calloc(1, sizeof *m->att);
    if (avs_ash_load(m->att, head_path, path, err))
        return -1;
    if (!m->att->have_pca)
        return avs_err_set(err, "%s: an attention head (Kong's FeatureLevelSingleAttention) takes "
                           "postprocessed embeddings, and neither it nor %s has the VGGish PCA "
                           "(pca_eigen_vectors [128,128] + pca_means [128]): train it with "
                           "avs-audiohead --pca, or convert torchvggish's vggish_pca_params",
                           head_path, path);
    if (m->fc[AVS_VGGISH_NFC - 1] != AVS_ASH_PCA || m->att->D != AVS_ASH_PCA)
        return avs_err_set(err, "%s: the attention head takes %d inputs and the VGGish embedding "
                           "has %d; the PCA needs 128 both", head_path, m->att->D,
                           m->fc[AVS_VGGISH_NFC - 1]);
    m->classes = m->att->K;
    return 0;
}

int avs_vggish_load(struct avs_vggish *m, const char *path, const char *head_path,
                    struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    struct avs_st_file *f = NULL, *hf = NULL;
    int rc = -1, att = 0;
    if (avs_st_open(path, &f, err) || (head_path && avs_st_open(head_path, &hf, err)))
        goto out;
    if ((att = avs_ash_is_head(hf)))
        avs_st_close(&hf); /* not a linear head: the encoder alone from path */
    if (plan(m, f, hf, err))
        goto out;
    avs_tensor_set_init(&m->params, m->specs.v, m->specs.n);
    rc = load_params(m, f, hf, err);
    if (!rc && att)
        rc = load_attention(m, path, head_path, err);
out:
    avs_st_close(&f);
    avs_st_close(&hf);
    if (rc)
        avs_vggish_free(m);
    return rc;
}

void avs_vggish_init_random(struct avs_vggish *m, int classes, uint64_t seed)
{
    static const int ch[AVS_VGGISH_NCONV] = {64, 128, 256, 256, 512, 512}, fc[AVS_VGGISH_NFC] = {4096, 4096, 128};
    memset(m, 0, sizeof *m);
    int cin = 1, h = IN_H, w = IN_W;
    for (int l = 0; l < AVS_VGGISH_NCONV; l++) {
        m->ch[l] = ch[l];
        int ws[4] = {ch[l], cin, 3, 3}, bs[1] = {ch[l]};
        add_spec(m, conv_names[l][0], 4, ws);
        add_spec(m, conv_names[l][1], 1, bs);
        cin = ch[l];
        if (pool_after[l])
            h /= 2, w /= 2;
    }
    int in = cin * h * w;
    for (int l = 0; l < AVS_VGGISH_NFC; l++) {
        m->fc[l] = fc[l];
        int ws[2] = {fc[l], in}, bs[1] = {fc[l]};
        add_spec(m, fc_names[l][0], 2, ws);
        add_spec(m, fc_names[l][1], 1, bs);
        in = fc[l];
    }
    m->classes = classes;
    if (classes) {
        int ws[2] = {classes, in}, bs[1] = {classes};
        add_spec(m, "head.weight", 2, ws);
        add_spec(m, "head.bias", 1, bs);
    }
    avs_tensor_set_init(&m->params, m->specs.v, m->specs.n);
    /* made on the host in the arena's layout, then one upload */
    float *host = avs_calloc(m->params.arena.used + 1, sizeof(float));
    for (int i = 0; i < m->specs.n; i += 2) { /* weight, then its bias: both from its fan_in */
        const struct avs_tensor_spec *t = &m->specs.v[i];
        size_t fan_in = avs_tensor_spec_numel(t) / (size_t)t->shape[0];
        float bound = (float)(1.0 / sqrt((double)fan_in));
        float *wt = host + (m->params.t[i].data - m->params.arena.base);
        float *bs = host + (m->params.t[i + 1].data - m->params.arena.base);
        avs_randinit_uniform(wt, avs_tensor_spec_numel(t), bound, seed, (uint64_t)i);
        avs_randinit_uniform(bs, (size_t)t->shape[0], bound, seed, (uint64_t)i + 1);
    }
    avs_tensor_set_from_host(&m->params, host);
    free(host);
}

void avs_vggish_free(struct avs_vggish *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    avs_spec_list_free(&m->specs);
    if (m->att)
        avs_ash_free(m->att);
    free(m->att);
    m->att = NULL;
}

static void geom(struct avs_conv2d *g, const struct avs_vggish *m, int l, int N, int *h, int *w)
{
    int cin = l ? m->ch[l - 1] : 1;
    *h = IN_H, *w = IN_W;
    for (int k = 0; k < l; k++)
        if (pool_after[k])
            *h /= 2, *w /= 2;
    avs_conv2d_geom(g, N, cin, *h, *w, m->ch[l], 3, 3, 1, 1, 1, 1);
}

/* Largest activation [floats] and largest conv scratch of a batch of N. */
static void sizes(const struct avs_vggish *m, int N, size_t *act, size_t *conv)
{
    *act = *conv = 0;
    for (int l = 0; l < AVS_VGGISH_NCONV; l++) {
        struct avs_conv2d g;
        int h, w;
        geom(&g, m, l, N, &h, &w);
        size_t a = (size_t)N * m->ch[l] * h * w, c = avs_conv2d_ws(&g);
        *act = a > *act ? a : *act;
        *conv = c > *conv ? c : *conv;
    }
    for (int l = 0; l < AVS_VGGISH_NFC; l++)
        *act = (size_t)N * m->fc[l] > *act ? (size_t)N * m->fc[l] : *act;
    *act = (*act + 15) / 16 * 16;
}

size_t avs_vggish_ws(const struct avs_vggish *m, int N)
{
    size_t act, conv;
    sizes(m, N, &act, &conv);
    size_t att = m->att ? (size_t)N * AVS_ASH_PCA + avs_ash_ws_floats(m->att, N, N) + 16 : 0;
    return 2 * act + conv + 16 + att;
}

/* C3N's audio classification: each second's embedding postprocessed, then one clip of one
 * step (eval statistics); logits [N,K] = fc_final's output. ws: the tail of avs_vggish_ws. */
static void attention_logits(const struct avs_vggish *m, float *logits, const float *emb, int N,
                             float *ws)
{
    struct avs_ash_ws w;
    float *q = ws;
    avs_ash_ws_carve(&w, m->att, N, N, ws + ((size_t)N * AVS_ASH_PCA + 15) / 16 * 16);
    avs_ash_postprocess(m->att, q, emb, N);
    avs_ash_fwd(m->att, &w, q, N, NULL, N, 0, 0);
    avs_ops()->copy(logits, w.z, (size_t)N * m->att->K * sizeof *logits);
}

void avs_vggish_fwd(const struct avs_vggish *m, float *emb, float *logits, const float *x, int N,
                    float *ws)
{
    const struct avs_ops *op = avs_ops();
    size_t act, conv_ws;
    sizes(m, N, &act, &conv_ws);
    float *a = ws, *b = ws + act, *cws = ws + 2 * act;
    const float *in = x;
    const struct avs_tensor *p = m->params.t;
    int C = 1, H = IN_H, W = IN_W;
    for (int l = 0; l < AVS_VGGISH_NCONV; l++) {
        struct avs_conv2d g;
        geom(&g, m, l, N, &H, &W);
        float *o = in == a ? b : a;
        op->conv2d_fwd(o, in, p[2 * l].data, p[2 * l + 1].data, &g, cws);
        C = m->ch[l];
        op->relu_fwd(o, o, (size_t)N * C * H * W);
        in = o;
        if (pool_after[l]) {
            float *q = o == a ? b : a;
            op->maxpool2_fwd(q, o, N * C, H, W);
            H /= 2, W /= 2;
            in = q;
        }
    }
    /* [N,C,H,W] -> [N,H,W,C]: the TF layout the embeddings were trained on */
    int HW = H * W;
    float *u = in == a ? b : a;
    op->transpose(u, in, N, C, HW);
    int I = C * HW;
    for (int l = 0; l < AVS_VGGISH_NFC; l++) {
        float *y = l == AVS_VGGISH_NFC - 1 ? emb : (u == a ? b : a);
        const struct avs_tensor *pw = &p[2 * (AVS_VGGISH_NCONV + l)];
        avs_linear_fwd(y, u, pw[0].data, pw[1].data, N, I, m->fc[l]);
        op->relu_fwd(y, y, (size_t)N * m->fc[l]);
        I = m->fc[l];
        u = y;
    }
    if (logits && m->att) {
        attention_logits(m, logits, emb, N, ws + 2 * act + conv_ws + 16);
        return;
    }
    if (logits && m->classes) {
        const struct avs_tensor *ph = &p[2 * (AVS_VGGISH_NCONV + AVS_VGGISH_NFC)];
        avs_linear_fwd(logits, emb, ph[0].data, ph[1].data, N, I, m->classes);
    }
}
