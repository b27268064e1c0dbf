/* model/c3n_head.c: the C3N head, forward and backward (see c3n_head.h).
 * ref: official AVSBench avs_s4/model/PVT_AVSModel.py (FeatureFusionBlock, ResidualConvUnit,
 * output_conv), TPAVI.py (TPAVIModule, mode "dot"), and the C3N head's ASPP (DeepLabv3).
 * Parameters and buffers are tables (avs_tensor_spec) built here; blocks are in
 * c3n_blocks.c. */
#include "model/c3n_head.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/c3n_blocks.h"
#include "model/nn.h"

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
}

/* ---- the size tables ---- */

struct spec_list {
    struct avs_tensor_spec *v;
    int n, cap;
};

static void spec_add(struct spec_list *l, int ndim, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void spec_add(struct spec_list *l, int ndim, const int *shape, const char *fmt, ...)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 128;
        l->v = avs_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct avs_tensor_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    s->name = avs_strdup(buf);
    s->ndim = ndim;
    memcpy(s->shape, shape, (size_t)ndim * sizeof(int));
}

/* name.weight [shape] and name.bias [shape[0]] */
static void conv_spec(struct spec_list *l, int ndim, const int *shape, const char *name)
{
    spec_add(l, ndim, shape, "%s.weight", name);
    spec_add(l, 1, shape, "%s.bias", name);
}

static void build_specs(struct avs_c3n_head *h, struct spec_list *p, struct spec_list *b)
{
    const struct avs_c3n_cfg *c = &h->cfg;
    int D = c->D, Ci = c->Ci;
    char nm[128];
    static const char *aspp[4] = {"atrous_block1", "atrous_block6", "atrous_block12", "atrous_block18"};
    for (int s = 0; s < 4; s++) {
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
        snprintf(nm, sizeof nm, "tpavi_%d.align_channel", i);
        conv_spec(p, 2, al, nm);
        snprintf(nm, sizeof nm, "tpavi_%d.norm_layer", i);
        conv_spec(p, 1, dn, nm);
        snprintf(nm, sizeof nm, "tpavi_%d.g", i);
        conv_spec(p, 5, in3, nm);
        snprintf(nm, sizeof nm, "tpavi_%d.W_z.0", i);
        conv_spec(p, 5, out3, nm);
        snprintf(nm, sizeof nm, "tpavi_%d.W_z.1", i);
        conv_spec(p, 1, dn, nm);
        snprintf(nm, sizeof nm, "tpavi_%d.theta", i);
        conv_spec(p, 5, in3, nm);
        snprintf(nm, sizeof nm, "tpavi_%d.phi", i);
        conv_spec(p, 5, in3, nm);
        spec_add(b, 1, dn, "tpavi_%d.W_z.1.running_mean", i);
        spec_add(b, 1, dn, "tpavi_%d.W_z.1.running_var", i);
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
    int o0[4] = {c->O1, D, 3, 3}, o2[4] = {c->O2, c->O1, 3, 3}, o4[4] = {1, c->O2, 1, 1};
    conv_spec(p, 4, o0, "output_conv.0");
    conv_spec(p, 4, o2, "output_conv.2");
    conv_spec(p, 4, o4, "output_conv.4");
}

/* ---- init / free ---- */

void avs_c3n_head_init(struct avs_c3n_head *h, const struct avs_c3n_cfg *cfg, int n_videos)
{
    memset(h, 0, sizeof *h);
    h->cfg = *cfg;
    h->N = n_videos;
    h->B = n_videos * cfg->T;
    for (int s = 0; s < 3; s++)
        AVS_ASSERT(cfg->H[s] == 2 * cfg->H[s + 1] && cfg->W[s] == 2 * cfg->W[s + 1]);
    struct spec_list p = {0}, b = {0};
    build_specs(h, &p, &b);
    h->pspec = p.v, h->np = p.n, h->bspec = b.v, h->nb = b.n;
    avs_tensor_set_init(&h->params, h->pspec, h->np);
    avs_tensor_set_init(&h->grads, h->pspec, h->np);
    avs_tensor_set_init(&h->m, h->pspec, h->np);
    avs_tensor_set_init(&h->v, h->pspec, h->np);
    avs_tensor_set_init(&h->bufs, h->bspec, h->nb);
    for (int i = 0; i < h->nb; i++)
        if (strstr(h->bspec[i].name, "running_var"))
            for (size_t k = 0; k < avs_tensor_spec_numel(&h->bspec[i]); k++)
                h->bufs.t[i].data[k] = 1.0f;
    avs_c3n_blocks_carve(h);
}

void avs_c3n_head_free(struct avs_c3n_head *h)
{
    avs_tensor_set_free(&h->params);
    avs_tensor_set_free(&h->grads);
    avs_tensor_set_free(&h->m);
    avs_tensor_set_free(&h->v);
    avs_tensor_set_free(&h->bufs);
    for (int i = 0; i < h->np; i++)
        free((char *)h->pspec[i].name);
    for (int i = 0; i < h->nb; i++)
        free((char *)h->bspec[i].name);
    free(h->pspec);
    free(h->bspec);
    avs_arena_free(&h->acts);
    avs_arena_free(&h->scratch);
    free(h->ws);
    avs_c3n_output_free(h);
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

void avs_c3n_head_init_random(struct avs_c3n_head *h, unsigned long long seed)
{
    for (int i = 0; i < h->np; i++) {
        const struct avs_tensor_spec *s = &h->pspec[i];
        float *d = h->params.t[i].data;
        size_t n = avs_tensor_spec_numel(s);
        int is_norm = strstr(s->name, "norm_layer") || strstr(s->name, "W_z.1");
        if (is_norm) {
            /* LayerNorm: weight 1, bias 0; TPAVI's W_z BatchNorm: 0 and 0 (official init) */
            float v = strstr(s->name, "norm_layer") && strstr(s->name, ".weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < n; k++)
                d[k] = v;
            continue;
        }
        /* fan_in of the weight of this layer (bias: of its weight, the previous entry) */
        const struct avs_tensor_spec *w = strstr(s->name, ".bias") ? &h->pspec[i - 1] : s;
        size_t fan_in = avs_tensor_spec_numel(w) / (size_t)w->shape[0];
        double bound = 1.0 / sqrt((double)fan_in);
        for (size_t k = 0; k < n; k++)
            d[k] = (float)(bound * rnd(&seed));
    }
}

/* ---- load ---- */

static const char *strip_module(const char *name)
{
    return strncmp(name, "module.", 7) ? name : name + 7;
}

static int load_one(struct avs_tensor_set *set, int idx, const struct avs_st_tensor *t,
                    const char *path, struct avs_err *err)
{
    struct avs_tensor *dst = &set->t[idx];
    int sh[AVS_ST_MAXDIM];
    for (int d = 0; d < t->ndim; d++)
        sh[d] = (int)t->shape[d];
    if (!avs_tensor_same_shape(t->ndim, sh, dst->ndim, dst->shape)) {
        char a[96], b[96];
        return avs_err_set(err, "%s: tensor \"%s\" has shape %s, the model needs %s", path,
                           t->name, avs_tensor_shape_str(t->ndim, sh, a, sizeof a),
                           avs_tensor_shape_str(dst->ndim, dst->shape, b, sizeof b));
    }
    if (avs_st_read_f32(t, dst->data, avs_tensor_numel(dst), err))
        return avs_err_wrap(err, "%s", path);
    return 0;
}

int avs_c3n_head_load_from(struct avs_c3n_head *h, const struct avs_st_file *f,
                           avs_c3n_extra_fn extra, void *ctx, int *ignored, struct avs_err *err)
{
    const char *path = f->path;
    int rc = -1;
    char *seen = avs_calloc((size_t)(h->np + h->nb + 1), 1);
    if (ignored)
        *ignored = 0;
    for (int i = 0; i < f->n; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        const char *name = strip_module(t->name);
        int k, r;
        if ((k = avs_tensor_set_find(&h->params, name)) >= 0) {
            if (load_one(&h->params, k, t, path, err))
                goto out;
            seen[k] = 1;
        } else if ((k = avs_tensor_set_find(&h->bufs, name)) >= 0) {
            if (load_one(&h->bufs, k, t, path, err))
                goto out;
            seen[h->np + k] = 1;
        } else if (strstr(name, ".W_z.1.num_batches_tracked") && !strncmp(name, "tpavi_", 6) &&
                   t->dtype == AVS_ST_I64 && t->numel == 1 && name[6] >= '1' && name[6] <= '4') {
            int64_t v;
            memcpy(&v, t->data, 8);
            h->bn_batches[name[6] - '1'] = (long)v;
        } else if (extra && (r = extra(ctx, t, err)) != 0) {
            if (r < 0)
                goto out;
        } else if (ignored) {
            (*ignored)++;
        } else {
            avs_err_set(err, "%s: unknown tensor \"%s\": not a parameter of the C3N head with "
                        "this configuration (check the TPAVI stages and channel sizes, or strip "
                        "the backbone's tensors)", path, t->name);
            goto out;
        }
    }
    for (int i = 0; i < h->np + h->nb; i++)
        if (!seen[i]) {
            avs_err_set(err, "%s: missing tensor \"%s\"", path,
                        i < h->np ? h->pspec[i].name : h->bspec[i - h->np].name);
            goto out;
        }
    rc = 0;
out:
    free(seen);
    return rc;
}

int avs_c3n_head_load(struct avs_c3n_head *h, const char *path, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = avs_st_open(path, &f, err) ? -1 : avs_c3n_head_load_from(h, f, NULL, NULL, NULL, err);
    avs_st_close(&f);
    return rc;
}

int avs_c3n_head_load_tensor(struct avs_tensor_set *set, int idx, const struct avs_st_tensor *t,
                             const char *path, struct avs_err *err)
{
    return load_one(set, idx, t, path, err);
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
    size_t n = (size_t)16 * h->cfg.H[0] * h->cfg.W[0];
    int nb = 0;
    for (int b = 0; b < h->B; b++)
        if (!frame_mask || frame_mask[b]) {
            memcpy(sl + nb * n, h->logits + b * n, n * sizeof(float));
            memcpy(sm + nb * n, mask + b * n, n * sizeof(float));
            nb++;
        }
    if (!nb)
        return 0;
    float *d1 = dlogits;
    double loss = op->bce_logits(sl + (size_t)nb * n, sl, sm, nb, (int)n, 1.0f);
    /* dice gradient goes to sm's tail: reuse dlogits as a second buffer */
    loss += op->dice(d1, sl, sm, nb, (int)n, 1.0f);
    op->axpy(d1, 1.0f, sl + (size_t)nb * n, (size_t)nb * n);
    /* scatter back to frame order (from the end so nothing is overwritten early) */
    int k = nb;
    for (int b = h->B - 1; b >= 0; b--) {
        if (!frame_mask || frame_mask[b]) {
            k--;
            memmove(dlogits + b * n, d1 + k * n, n * sizeof(float));
        } else
            memset(dlogits + b * n, 0, n * sizeof(float));
    }
    return loss;
}

size_t avs_c3n_head_bytes(const struct avs_c3n_head *h)
{
    return 4 * (h->params.arena.cap * 4 + h->bufs.arena.cap + h->acts.cap + h->scratch.peak +
                h->ws_n);
}
