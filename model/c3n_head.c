/* model/c3n_head.c: the C3N head, forward and backward (see c3n_head.h).
 * ref: official AVSBench avs_s4/model/PVT_AVSModel.py (FeatureFusionBlock, ResidualConvUnit,
 * output_conv), TPAVI.py (TPAVIModule, mode "dot"), and the C3N head's ASPP (DeepLabv3).
 * Parameters and buffers are tables (avs_tensor_spec) built here, their indices resolved
 * once (struct avs_c3n_idx); loading goes through model/params.h; blocks are in
 * c3n_blocks.c, c3n_aspp.c and c3n_output.c. */
#include "model/c3n_head.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/c3n_blocks.h"
#include "model/params.h"

void avs_c3n_cfg_default(struct avs_c3n_cfg *cfg, int image_size)
{
    static const int ch[4] = {64, 128, 320, 512};
    memset(cfg, 0, sizeof *cfg);
    cfg->T = 5;
    for (int s = 0; s < 4; s++) {
        cfg->C[s] = ch[s];
        cfg->H[s] = cfg->W[s] = image_size >> (s + 2);
    }
    cfg->D = 256;
    cfg->Ci = 128;
    cfg->A = 128;
    cfg->O1 = 128;
    cfg->O2 = 32;
    cfg->tpavi = 15;
    cfg->K = 1;
}

const char *avs_c3n_tpavi_prefix(const struct avs_c3n_cfg *cfg)
{
    return cfg->avsbench ? "tpavi_b" : "tpavi_";
}

/* ---- the size tables ---- */

/* name.weight [shape] and name.bias [shape[0]] */
static void conv_spec(struct avs_spec_list *l, int ndim, const int *shape, const char *name)
{
    avs_spec_add(l, ndim, shape, "%s.weight", name);
    avs_spec_add(l, 1, shape, "%s.bias", name);
}

static void build_specs(struct avs_c3n_head *h, struct avs_spec_list *p, struct avs_spec_list *b)
{
    const struct avs_c3n_cfg *c = &h->cfg;
    int D = c->D, Ci = c->Ci;
    char nm[128];
    static const char *aspp[4] = {"atrous_block1", "atrous_block6", "atrous_block12", "atrous_block18"};
    const char *tp = avs_c3n_tpavi_prefix(c);
    for (int s = 0; s < 4 && c->avsbench; s++)
        for (int a = 0; a < 4; a++) {
            int k3[4] = {D, c->C[s], 3, 3};
            snprintf(nm, sizeof nm, "conv%d.conv2d_list.%d", s + 1, a);
            conv_spec(p, 4, k3, nm);
        }
    for (int s = 0; s < 4 && !c->avsbench; s++) {
        int i = s + 1, k1[4] = {D, c->C[s], 1, 1}, k3[4] = {D, c->C[s], 3, 3}, ko[4] = {D, 5 * D, 1, 1};
        snprintf(nm, sizeof nm, "conv%d.conv", i);
        conv_spec(p, 4, k1, nm);
        for (int a = 0; a < 4; a++) {
            snprintf(nm, sizeof nm, "conv%d.%s", i, aspp[a]);
            conv_spec(p, 4, a ? k3 : k1, nm);
        }
        snprintf(nm, sizeof nm, "conv%d.conv_1x1_output", i);
        conv_spec(p, 4, ko, nm);
    }
    for (int s = 0; s < 4; s++) {
        if (!(c->tpavi >> s & 1))
            continue;
        int i = s + 1, al[2] = {D, c->A}, dn[1] = {D}, in3[5] = {Ci, D, 1, 1, 1}, out3[5] = {D, Ci, 1, 1, 1};
        snprintf(nm, sizeof nm, "%s%d.align_channel", tp, i);
        conv_spec(p, 2, al, nm);
        snprintf(nm, sizeof nm, "%s%d.norm_layer", tp, i);
        conv_spec(p, 1, dn, nm);
        snprintf(nm, sizeof nm, "%s%d.g", tp, i);
        conv_spec(p, 5, in3, nm);
        snprintf(nm, sizeof nm, "%s%d.W_z.0", tp, i);
        conv_spec(p, 5, out3, nm);
        snprintf(nm, sizeof nm, "%s%d.W_z.1", tp, i);
        conv_spec(p, 1, dn, nm);
        snprintf(nm, sizeof nm, "%s%d.theta", tp, i);
        conv_spec(p, 5, in3, nm);
        snprintf(nm, sizeof nm, "%s%d.phi", tp, i);
        conv_spec(p, 5, in3, nm);
        avs_spec_add(b, 1, dn, "%s%d.W_z.1.running_mean", tp, i);
        avs_spec_add(b, 1, dn, "%s%d.W_z.1.running_var", tp, i);
    }
    int k[4] = {D, D, 3, 3};
    /* path4 has a resConfUnit1 too (the official FeatureFusionBlock always builds both); it is
     * never used, so its gradients stay zero */
    for (int s = 3; s >= 0; s--)
        for (int u = 1; u <= 2; u++)
            for (int cv = 1; cv <= 2; cv++) {
                snprintf(nm, sizeof nm, "path%d.resConfUnit%d.conv%d", s + 1, u, cv);
                conv_spec(p, 4, k, nm);
            }
    int o0[4] = {c->O1, D, 3, 3}, o2[4] = {c->O2, c->O1, 3, 3}, o4[4] = {c->K, c->O2, 1, 1};
    conv_spec(p, 4, o0, "output_conv.0");
    conv_spec(p, 4, o2, "output_conv.2");
    conv_spec(p, 4, o4, "output_conv.4");
}

/* ---- init / free ---- */

static const char *aspp_branch[4] = {"atrous_block1", "atrous_block6", "atrous_block12",
                                     "atrous_block18"};

/* Every parameter index the blocks use, looked up by name once (struct avs_c3n_idx). */
static void resolve(struct avs_c3n_head *h)
{
    const struct avs_tensor_set *p = &h->params, *b = &h->bufs;
    const char *tp = avs_c3n_tpavi_prefix(&h->cfg);
    for (int s = 0; s < 4; s++) {
        struct avs_c3n_idx *k = &h->st[s].k;
        int i = s + 1;
        if (h->cfg.avsbench) {
            k->pool = k->out = -1;
            for (int a = 0; a < 4; a++)
                k->br[a] = avs_tensor_set_findf(p, "conv%d.conv2d_list.%d.weight", i, a);
        } else {
            k->pool = avs_tensor_set_findf(p, "conv%d.conv.weight", i);
            for (int a = 0; a < 4; a++)
                k->br[a] = avs_tensor_set_findf(p, "conv%d.%s.weight", i, aspp_branch[a]);
            k->out = avs_tensor_set_findf(p, "conv%d.conv_1x1_output.weight", i);
        }
        k->al = k->phi = k->th = k->g = k->wz = k->bn = k->ln = k->rmean = k->rvar = -1;
        if (h->cfg.tpavi >> s & 1) {
            k->al = avs_tensor_set_findf(p, "%s%d.align_channel.weight", tp, i);
            k->phi = avs_tensor_set_findf(p, "%s%d.phi.weight", tp, i);
            k->th = avs_tensor_set_findf(p, "%s%d.theta.weight", tp, i);
            k->g = avs_tensor_set_findf(p, "%s%d.g.weight", tp, i);
            k->wz = avs_tensor_set_findf(p, "%s%d.W_z.0.weight", tp, i);
            k->bn = avs_tensor_set_findf(p, "%s%d.W_z.1.weight", tp, i);
            k->ln = avs_tensor_set_findf(p, "%s%d.norm_layer.weight", tp, i);
            k->rmean = avs_tensor_set_findf(b, "%s%d.W_z.1.running_mean", tp, i);
            k->rvar = avs_tensor_set_findf(b, "%s%d.W_z.1.running_var", tp, i);
        }
        for (int u = 0; u < 2; u++)
            for (int c = 0; c < 2; c++)
                k->rcu[u][c] = avs_tensor_set_findf(p, "path%d.resConfUnit%d.conv%d.weight", i,
                                                    u + 1, c + 1);
    }
    for (int o = 0; o < 3; o++)
        h->kout[o] = avs_tensor_set_findf(p, "output_conv.%d.weight", 2 * o);
}

void avs_c3n_head_init(struct avs_c3n_head *h, const struct avs_c3n_cfg *cfg, int n_videos)
{
    memset(h, 0, sizeof *h);
    h->cfg = *cfg;
    h->N = n_videos;
    h->B = n_videos * cfg->T;
    for (int s = 0; s < 3; s++)
        AVS_ASSERT(cfg->H[s] == 2 * cfg->H[s + 1] && cfg->W[s] == 2 * cfg->W[s + 1]);
    struct avs_spec_list p = {0}, b = {0};
    build_specs(h, &p, &b);
    h->pspec = p.v, h->np = p.n, h->bspec = b.v, h->nb = b.n;
    avs_tensor_set_init(&h->params, h->pspec, h->np);
    avs_tensor_set_init(&h->grads, h->pspec, h->np);
    avs_tensor_set_init(&h->m, h->pspec, h->np);
    avs_tensor_set_init(&h->v, h->pspec, h->np);
    avs_tensor_set_init(&h->bufs, h->bspec, h->nb);
    resolve(h);
    for (int s = 0; s < 4; s++) /* BatchNorm's running variance starts at 1 (PyTorch) */
        if (h->st[s].k.rvar >= 0)
            avs_ops()->fill(h->bufs.t[h->st[s].k.rvar].data, 1.0f, (size_t)cfg->D);
    avs_c3n_blocks_carve(h);
}

void avs_c3n_head_free(struct avs_c3n_head *h)
{
    avs_tensor_set_free(&h->params);
    avs_tensor_set_free(&h->grads);
    avs_tensor_set_free(&h->m);
    avs_tensor_set_free(&h->v);
    avs_tensor_set_free(&h->bufs);
    struct avs_spec_list p = {h->pspec, h->np, h->np}, b = {h->bspec, h->nb, h->nb};
    avs_spec_list_free(&p);
    avs_spec_list_free(&b);
    avs_arena_free(&h->acts);
    avs_arena_free(&h->scratch);
    memset(h, 0, sizeof *h);
}

/* splitmix64 -> uniform [-1,1) */
static double rnd(unsigned long long *s)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

/* The values are made on the host, in table order, and uploaded tensor by tensor. */
void avs_c3n_head_init_random(struct avs_c3n_head *h, unsigned long long seed)
{
    for (int i = 0; i < h->np; i++) {
        const struct avs_tensor_spec *s = &h->pspec[i];
        size_t n = avs_tensor_spec_numel(s);
        float *d = avs_malloc((n ? n : 1) * sizeof(float));
        int is_norm = strstr(s->name, "norm_layer") || strstr(s->name, "W_z.1");
        if (is_norm) {
            /* LayerNorm: weight 1, bias 0; TPAVI's W_z BatchNorm: 0 and 0 (official init) */
            float v = strstr(s->name, "norm_layer") && strstr(s->name, ".weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < n; k++)
                d[k] = v;
        } else {
            /* fan_in of the weight of this layer (bias: of its weight, the previous entry) */
            const struct avs_tensor_spec *w = strstr(s->name, ".bias") ? &h->pspec[i - 1] : s;
            size_t fan_in = avs_tensor_spec_numel(w) / (size_t)w->shape[0];
            double bound = 1.0 / sqrt((double)fan_in);
            for (size_t k = 0; k < n; k++)
                d[k] = (float)(bound * rnd(&seed));
        }
        avs_tensor_set_upload(&h->params, i, d);
        free(d);
    }
}

/* ---- load ---- */

struct load_ctx {
    struct avs_c3n_head *h;
    avs_c3n_extra_fn extra; /* the caller's */
    void *ctx;
};

/* Tensors of the file outside params and bufs: tpavi_<s>.W_z.1.num_batches_tracked (I64, a
 * host counter), else the caller's extra. */
static int load_extra(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    struct load_ctx *c = ctx;
    const char *name = strncmp(t->name, "module.", 7) ? t->name : t->name + 7;
    for (int s = 0; s < 4; s++) {
        char nbt[64];
        snprintf(nbt, sizeof nbt, "%s%d.W_z.1.num_batches_tracked",
                 avs_c3n_tpavi_prefix(&c->h->cfg), s + 1);
        if (!strcmp(name, nbt) && t->dtype == AVS_ST_I64 && t->numel == 1) {
            int64_t v;
            memcpy(&v, t->data, 8);
            c->h->bn_batches[s] = (long)v;
            return 1;
        }
    }
    return c->extra ? c->extra(c->ctx, t, err) : 0;
}

int avs_c3n_head_load_from(struct avs_c3n_head *h, const struct avs_st_file *f,
                           avs_c3n_extra_fn extra, void *ctx, int *ignored, struct avs_err *err)
{
    struct load_ctx c = {h, extra, ctx};
    struct avs_params_io io = {.sets = {&h->params, &h->bufs}, .nsets = 2, .extra = load_extra,
                               .ctx = &c, .ignored = ignored, .what = "the C3N head"};
    return avs_params_load(f, &io, err);
}

int avs_c3n_head_load(struct avs_c3n_head *h, const char *path, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = avs_st_open(path, &f, err) ? -1 : avs_c3n_head_load_from(h, f, NULL, NULL, NULL, err);
    avs_st_close(&f);
    return rc;
}

/* ---- training helpers ---- */

/* grads_zero: set by avs_c3n_head_adam (its pass zeroed the gradients), used up here */
void avs_c3n_head_zero_grad(struct avs_c3n_head *h)
{
    if (!h->grads_zero)
        avs_arena_zero(&h->grads.arena);
    h->grads_zero = 0;
}

void avs_c3n_head_adam(struct avs_c3n_head *h, double lr)
{
    h->adam_step++;
    /* one loop over the whole arena: params, grads and moments share one layout; the
     * gradients are zeroed in the same pass */
    avs_ops()->adam_zero(h->params.arena.base, h->grads.arena.base, h->m.arena.base,
                         h->v.arena.base, h->params.arena.used, lr, 0.9, 0.999, 1e-8, 0.0,
                         h->adam_step);
    h->grads_zero = 1;
}

double avs_c3n_head_loss(const struct avs_c3n_head *h, const float *mask, const int *frame_mask,
                         float *dlogits, float *sl, float *sm)
{
    const struct avs_ops *op = avs_ops();
    size_t n = (size_t)16 * h->cfg.H[0] * h->cfg.W[0], bytes = n * sizeof(float);
    int nb = 0;
    AVS_ASSERT(h->cfg.K == 1);
    for (int b = 0; b < h->B; b++)
        if (!frame_mask || frame_mask[b]) {
            op->copy(sl + nb * n, h->logits + b * n, bytes);
            op->copy(sm + nb * n, mask + b * n, bytes);
            nb++;
        }
    if (!nb)
        return 0;
    float *d1 = dlogits;
    double loss = op->bce_logits(sl + (size_t)nb * n, sl, sm, nb, (int)n, 1.0f);
    if (h->cfg.avsbench) /* AVSBench's loss: BCE alone */
        op->copy(d1, sl + (size_t)nb * n, (size_t)nb * bytes);
    else {
        /* dice gradient goes to sm's tail: reuse dlogits as a second buffer */
        loss += op->dice(d1, sl, sm, nb, (int)n, 1.0f);
        op->axpy(d1, 1.0f, sl + (size_t)nb * n, (size_t)nb * n);
    }
    /* scatter back to frame order (from the end so nothing is overwritten early) */
    int k = nb;
    for (int b = h->B - 1; b >= 0; b--) {
        if (!frame_mask || frame_mask[b]) {
            k--;
            if (k != b)
                op->copy(dlogits + b * n, d1 + k * n, bytes);
        } else
            op->zero(dlogits + b * n, n);
    }
    return loss;
}

double avs_c3n_head_loss_ce(const struct avs_c3n_head *h, const float *labels,
                            const int *frame_mask, float *dlogits, float *sl, float *sm)
{
    const struct avs_ops *op = avs_ops();
    int K = h->cfg.K;
    size_t n = (size_t)16 * h->cfg.H[0] * h->cfg.W[0], fr = (size_t)K * n;
    int nb = 0;
    for (int b = 0; b < h->B; b++)
        nb += !frame_mask || frame_mask[b];
    if (nb == h->B) /* every frame counts: straight on the logits */
        return op->softmax_ce(dlogits, h->logits, labels, h->B, K, (int)n, 1.0f);
    nb = 0;
    /* the counted frames, packed: the loss is a mean over their pixels only */
    for (int b = 0; b < h->B; b++)
        if (!frame_mask || frame_mask[b]) {
            op->copy(sl + nb * fr, h->logits + b * fr, fr * sizeof(float));
            op->copy(sm + nb * n, labels + b * n, n * sizeof(float));
            nb++;
        }
    if (!nb) {
        op->zero(dlogits, (size_t)h->B * fr);
        return 0;
    }
    float *d = sl + (size_t)nb * fr;
    double loss = op->softmax_ce(d, sl, sm, nb, K, (int)n, 1.0f);
    int k = nb;
    for (int b = h->B - 1; b >= 0; b--) {
        if (!frame_mask || frame_mask[b])
            op->copy(dlogits + b * fr, d + --k * fr, fr * sizeof(float));
        else
            op->zero(dlogits + b * fr, fr);
    }
    return loss;
}

size_t avs_c3n_head_bytes(const struct avs_c3n_head *h)
{
    return 4 * (h->params.arena.cap * 4 + h->bufs.arena.cap + h->acts.cap + h->scratch.peak);
}
