/* model/panns.c: PANNs CNN14 forward (panns.h; ref: audioset_tagging_cnn pytorch/models.py
 * Cnn14_16k.forward, ConvBlock.forward).
 *
 *   x [N,T,64] --transpose--> [N,64,T] --bn0--> --transpose--> [N,1,T,64]
 *   6 x (conv3x3 -> bn -> relu -> conv3x3 -> bn -> relu -> avgpool 2x2 (not after block 6))
 *   [N,C,T',F'] --mean over F'--> [N,C,T'] --max + mean over T'--> [N,C]
 *   --fc1, relu--> emb [N,E] --fc_audioset, sigmoid--> clip [N,K] */
#include "model/panns.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/safetensors.h"
#include "model/nn.h"
#include "model/params.h"
#include "model/randinit.h"

#define BN_EPS 1e-5f
#define NBN 4            /* tensors of a BatchNorm: weight, bias, running_mean, running_var */
#define BLOCK_T 10       /* tensors of a conv block: conv1, bn1 (4), conv2, bn2 (4) */
#define P_BLOCK(b) (NBN + (b) * BLOCK_T)
#define P_FC (NBN + AVS_PANNS_NBLOCK * BLOCK_T)
#define FFT_BINS 257     /* the 512-point FFT of Cnn14_16k's front end */
#define WINDOW 512

static const char *const bn_part[NBN] = {"weight", "bias", "running_mean", "running_var"};

static void add_bn(struct avs_spec_list *l, const char *name, int C)
{
    int s[1] = {C};
    for (int i = 0; i < NBN; i++)
        avs_spec_add(l, 1, s, "%s.%s", name, bn_part[i]);
}

/* The size table from the widths (the same order as the P_* indices). */
static void add_specs(struct avs_panns *m)
{
    add_bn(&m->specs, "bn0", AVS_PANNS_MELS);
    int cin = 1;
    for (int b = 0; b < AVS_PANNS_NBLOCK; b++) {
        int C = m->ch[b], w1[4] = {C, cin, 3, 3}, w2[4] = {C, C, 3, 3};
        char bn[32];
        avs_spec_add(&m->specs, 4, w1, "conv_block%d.conv1.weight", b + 1);
        snprintf(bn, sizeof bn, "conv_block%d.bn1", b + 1);
        add_bn(&m->specs, bn, C);
        avs_spec_add(&m->specs, 4, w2, "conv_block%d.conv2.weight", b + 1);
        snprintf(bn, sizeof bn, "conv_block%d.bn2", b + 1);
        add_bn(&m->specs, bn, C);
        cin = C;
    }
    int f1[2] = {m->emb, cin}, b1[1] = {m->emb}, f2[2] = {m->classes, m->emb}, b2[1] = {m->classes};
    avs_spec_add(&m->specs, 2, f1, "fc1.weight");
    avs_spec_add(&m->specs, 1, b1, "fc1.bias");
    avs_spec_add(&m->specs, 2, f2, "fc_audioset.weight");
    avs_spec_add(&m->specs, 1, b2, "fc_audioset.bias");
}

/* name from f (a "module." prefix allowed); NULL with err naming it and what f holds instead */
static const struct avs_st_tensor *need(const struct avs_st_file *f, const char *name,
                                        struct avs_err *err)
{
    char pre[80];
    snprintf(pre, sizeof pre, "module.%s", name);
    const struct avs_st_tensor *t = avs_st_find(f, name);
    if (!t)
        t = avs_st_find(f, pre);
    if (!t)
        avs_err_set(err, "%s: missing tensor \"%s\" (expected the official PANNs Cnn14_16k names, "
                    "e.g. conv_block1.conv1.weight; the file has %d tensors: %s%s%s%s%s...; "
                    "convert the .pth with tools/convert_checkpoint.py)", f->path, name, f->n,
                    f->n > 0 ? f->t[0].name : "", f->n > 1 ? ", " : "", f->n > 1 ? f->t[1].name : "",
                    f->n > 2 ? ", " : "", f->n > 2 ? f->t[2].name : "");
    return t;
}

/* Widths from the shapes of f. */
static int widths(struct avs_panns *m, const struct avs_st_file *f, struct avs_err *err)
{
    const struct avs_st_tensor *t = need(f, "bn0.weight", err);
    if (!t)
        return -1;
    if (t->ndim != 1 || t->shape[0] != AVS_PANNS_MELS)
        return avs_err_set(err, "%s: bn0.weight should be [%d] (64 mel bins, as Cnn14_16k)",
                           f->path, AVS_PANNS_MELS);
    int cin = 1;
    for (int b = 0; b < AVS_PANNS_NBLOCK; b++) {
        char name[48];
        snprintf(name, sizeof name, "conv_block%d.conv1.weight", b + 1);
        if (!(t = need(f, name, err)))
            return -1;
        if (t->ndim != 4 || t->shape[1] != cin || t->shape[2] != 3 || t->shape[3] != 3 ||
            t->shape[0] < 1 || t->shape[0] > 65536)
            return avs_err_set(err, "%s: tensor \"%s\" should be [K,%d,3,3]", f->path, name, cin);
        cin = m->ch[b] = (int)t->shape[0];
    }
    if (!(t = need(f, "fc1.weight", err)))
        return -1;
    if (t->ndim != 2 || t->shape[1] != cin || t->shape[0] < 1 || t->shape[0] > 1 << 20)
        return avs_err_set(err, "%s: tensor \"fc1.weight\" should be [E,%d]", f->path, cin);
    m->emb = (int)t->shape[0];
    if (!(t = need(f, "fc_audioset.weight", err)))
        return -1;
    if (t->ndim != 2 || t->shape[1] != m->emb || t->shape[0] < 1 || t->shape[0] > 1 << 20)
        return avs_err_set(err, "%s: tensor \"fc_audioset.weight\" should be [K,%d]", f->path, m->emb);
    m->classes = (int)t->shape[0];
    return 0;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* The checkpoint's tensors that are not parameters here: BatchNorm counters, and the front
 * end's DFT and mel matrices, whose shapes say which front end the network was trained with. */
static int extra(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    const char *path = ctx, *n = !strncmp(t->name, "module.", 7) ? t->name + 7 : t->name;
    if (ends_with(n, ".num_batches_tracked"))
        return 1;
    int stft = !strcmp(n, "spectrogram_extractor.stft.conv_real.weight") ||
               !strcmp(n, "spectrogram_extractor.stft.conv_imag.weight");
    if (stft && !(t->ndim == 3 && t->shape[0] == FFT_BINS && t->shape[2] == WINDOW))
        return avs_err_set(err, "%s: \"%s\" is a %lld-point STFT: this is not Cnn14_16k (16 kHz, "
                           "512-point window, as C3N's PANNs encoder); use Cnn14_16k_mAP=0.438.pth",
                           path, t->name, t->ndim == 3 ? (long long)t->shape[2] : -1LL);
    if (!strcmp(n, "logmel_extractor.melW") &&
        !(t->ndim == 2 && t->shape[0] == FFT_BINS && t->shape[1] == AVS_PANNS_MELS))
        return avs_err_set(err, "%s: \"%s\" should be [%d,%d] (Cnn14_16k's 512-point FFT, 64 mel "
                           "bins): another PANNs front end; use Cnn14_16k_mAP=0.438.pth", path,
                           t->name, FFT_BINS, AVS_PANNS_MELS);
    return stft || !strcmp(n, "logmel_extractor.melW") ? 1 : 0;
}

int avs_panns_load(struct avs_panns *m, const char *path, struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    struct avs_st_file *f = NULL;
    int rc = -1;
    if (avs_st_open(path, &f, err) || widths(m, f, err))
        goto out;
    add_specs(m);
    avs_tensor_set_init(&m->params, m->specs.v, m->specs.n);
    struct avs_params_io io = {.sets = {&m->params}, .nsets = 1, .extra = extra,
                               .ctx = (void *)f->path, .what = "PANNs Cnn14_16k"};
    rc = avs_params_load(f, &io, err);
out:
    avs_st_close(&f);
    if (rc)
        avs_panns_free(m);
    return rc;
}

/* ref: audioset_tagging_cnn pytorch/models.py init_layer (xavier_uniform_, bias 0), init_bn */
void avs_panns_init_random(struct avs_panns *m, uint64_t seed)
{
    static const int ch[AVS_PANNS_NBLOCK] = {64, 128, 256, 512, 1024, 2048};
    memset(m, 0, sizeof *m);
    memcpy(m->ch, ch, sizeof ch);
    m->emb = 2048, m->classes = 527;
    add_specs(m);
    avs_tensor_set_init(&m->params, m->specs.v, m->specs.n);
    float *host = avs_calloc(m->params.arena.used + 1, sizeof(float));
    for (int i = 0; i < m->specs.n; i++) {
        const struct avs_tensor_spec *t = &m->specs.v[i];
        float *p = host + (m->params.t[i].data - m->params.arena.base);
        size_t n = avs_tensor_spec_numel(t);
        if (t->ndim >= 2) {
            size_t rf = t->ndim == 4 ? (size_t)t->shape[2] * t->shape[3] : 1;
            double fan = (double)t->shape[0] * rf + (double)t->shape[1] * rf;
            avs_randinit_uniform(p, n, (float)sqrt(6.0 / fan), seed, (uint64_t)i);
        } else if (ends_with(t->name, ".weight") || ends_with(t->name, "running_var"))
            avs_randinit_const(p, n, 1.0f);
    }
    avs_tensor_set_from_host(&m->params, host);
    free(host);
}

void avs_panns_free(struct avs_panns *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    avs_spec_list_free(&m->specs);
}

/* Largest activation (floats, rounded to 16) and conv scratch for N inputs of T frames. */
static void sizes(const struct avs_panns *m, int N, int T, size_t *act, size_t *conv)
{
    int h = T, w = AVS_PANNS_MELS, cin = 1;
    *act = (size_t)N * T * AVS_PANNS_MELS, *conv = 0;
    for (int b = 0; b < AVS_PANNS_NBLOCK; b++) {
        struct avs_conv2d g1, g2;
        avs_conv2d_geom(&g1, N, cin, h, w, m->ch[b], 3, 3, 1, 1, 1, 1);
        avs_conv2d_geom(&g2, N, m->ch[b], h, w, m->ch[b], 3, 3, 1, 1, 1, 1);
        size_t a = (size_t)N * m->ch[b] * h * w, c1 = avs_conv2d_ws(&g1), c2 = avs_conv2d_ws(&g2);
        *act = a > *act ? a : *act;
        *conv = c1 > *conv ? c1 : *conv;
        *conv = c2 > *conv ? c2 : *conv;
        cin = m->ch[b];
        if (b < AVS_PANNS_NBLOCK - 1)
            h /= 2, w /= 2;
    }
    size_t fc = (size_t)N * (m->emb > cin ? m->emb : cin) * 2;
    *act = ((*act > fc ? *act : fc) + 15) / 16 * 16;
}

static int max_width(const struct avs_panns *m)
{
    int c = AVS_PANNS_MELS;
    for (int b = 0; b < AVS_PANNS_NBLOCK; b++)
        c = m->ch[b] > c ? m->ch[b] : c;
    return (c + 15) / 16 * 16;
}

size_t avs_panns_ws(const struct avs_panns *m, int N, int T)
{
    size_t act, conv;
    sizes(m, N, T, &act, &conv);
    return 2 * act + conv + 2 * (size_t)max_width(m) + 16;
}

/* BatchNorm with running statistics (eval), tensors p[0..3] of the size table, in place
 * allowed; stats [2*C] scratch (the op's mean/rstd outputs, unused in eval). */
static void bn_eval(float *y, const float *x, const struct avs_tensor *p, int N, int C, int HW,
                    float *stats)
{
    avs_ops()->batchnorm_fwd(y, stats, stats + C, x, p[0].data, p[1].data, p[2].data, p[3].data,
                             N, C, HW, BN_EPS, 0.0f, 0);
}

/* conv (no bias) -> bn -> relu of [N,cin,h,w] into out [N,C,h,w]. */
static void conv_bn_relu(float *out, const float *in, const struct avs_tensor *p, int N, int cin,
                         int C, int h, int w, float *cws, float *stats)
{
    struct avs_conv2d g;
    avs_conv2d_geom(&g, N, cin, h, w, C, 3, 3, 1, 1, 1, 1);
    avs_ops()->conv2d_fwd(out, in, p[0].data, NULL, &g, cws);
    bn_eval(out, out, p + 1, N, C, h * w, stats);
    avs_ops()->relu_fwd(out, out, (size_t)N * C * h * w);
}

void avs_panns_fwd(const struct avs_panns *m, float *emb, float *clip, const float *x, int N, int T,
                   float *ws)
{
    AVS_ASSERT(N >= 1 && T >= 32);
    const struct avs_ops *op = avs_ops();
    const struct avs_tensor *p = m->params.t;
    size_t act, conv;
    sizes(m, N, T, &act, &conv);
    float *a = ws, *b = ws + act, *cws = ws + 2 * act, *stats = cws + conv;
    int M = AVS_PANNS_MELS, h = T, w = M, cin = 1;
    /* bn0 over the mel bins: channels last in x, so BatchNorm runs on the transpose */
    op->transpose(a, x, N, T, M);
    bn_eval(a, a, p, N, M, T, stats);
    op->transpose(b, a, N, M, T);
    float *in = b;
    for (int k = 0; k < AVS_PANNS_NBLOCK; k++) {
        const struct avs_tensor *q = p + P_BLOCK(k);
        int C = m->ch[k];
        float *o = in == a ? b : a;
        conv_bn_relu(o, in, q, N, cin, C, h, w, cws, stats);
        conv_bn_relu(in, o, q + 5, N, C, C, h, w, cws, stats);
        if (k < AVS_PANNS_NBLOCK - 1) {
            op->avgpool2_fwd(o, in, N * C, h, w);
            h /= 2, w /= 2;
            in = o;
        }
        cin = C;
    }
    /* mean over mel, then max + mean over time */
    float *t = in == a ? b : a;
    op->mean_fwd(t, in, N * cin * h, w);
    float *mx = in, *mn = in + (size_t)N * cin;
    op->rowmax_fwd(mx, t, N * cin, h);
    op->mean_fwd(mn, t, N * cin, h);
    op->axpy(mx, 1.0f, mn, (size_t)N * cin);
    avs_linear_fwd(emb, mx, p[P_FC].data, p[P_FC + 1].data, N, cin, m->emb);
    op->relu_fwd(emb, emb, (size_t)N * m->emb);
    if (clip) {
        avs_linear_fwd(clip, emb, p[P_FC + 2].data, p[P_FC + 3].data, N, m->emb, m->classes);
        op->sigmoid_fwd(clip, clip, (size_t)N * m->classes);
    }
}
