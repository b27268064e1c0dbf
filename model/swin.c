/* model/swin.c: Swin's configurations, size table (with the parameter indices every pass
 * uses), loading and random init (swin.h). The workspace is model/swin_ws.c, the passes
 * model/swin_pass.c. */
#include "model/swin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/params.h"
#include "model/randinit.h"

int avs_swin_cfg_variant(struct avs_swin_cfg *c, const char *name)
{
    static const struct {
        const char *name;
        int embed, depth3, heads0, window;
    } v[] = {{"swin_t", 96, 6, 3, 7}, {"swin_s", 96, 18, 3, 7}, {"swin_b", 128, 18, 4, 7},
             {"swin_b_w12", 128, 18, 4, 12}, {"swin_t_w4", 96, 6, 3, 4}};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (!strcmp(name, v[i].name)) {
            c->embed = v[i].embed, c->window = v[i].window, c->classes = 1000;
            for (int s = 0; s < 4; s++)
                c->depths[s] = s == 2 ? v[i].depth3 : 2, c->heads[s] = v[i].heads0 << s;
            return 0;
        }
    return -1;
}

int avs_swin_side(int side, int s)
{
    return side / 4 >> s;
}

int avs_swin_check_size(const struct avs_swin_cfg *c, int H, int W, struct avs_err *err)
{
    int unit = 32 * c->window;
    if (H <= 0 || W <= 0 || H % unit || W % unit)
        return avs_err_set(err, "Swin with window %d takes images whose sides are multiples of "
                           "%d (every stage a whole number of windows, as the official model "
                           "without padding), not %dx%d: ingest or resize to e.g. %dx%d", c->window,
                           unit, W, H, unit, unit);
    return 0;
}

/* ---- size table: official names in state_dict order ---- */

static void add_wb(struct avs_spec_list *l, int ix[2], const char *pfx, const char *mod, int wnd,
                   const int *wshape, int nb)
{
    ix[0] = l->n;
    avs_spec_add(l, wnd, wshape, "%s%s.weight", pfx, mod);
    ix[1] = -1;
    if (nb) {
        ix[1] = l->n;
        avs_spec_add(l, 1, &nb, "%s%s.bias", pfx, mod);
    }
}

static void add_norm(struct avs_spec_list *l, int ix[2], const char *pfx, const char *mod, int C)
{
    add_wb(l, ix, pfx, mod, 1, &C, C);
}

static void add_block(struct avs_spec_list *l, struct avs_swin_block_ix *b,
                      const struct avs_swin_cfg *c, int s, int i)
{
    int C = avs_swin_dim(c, s), nh = c->heads[s], t = (2 * c->window - 1) * (2 * c->window - 1);
    char p[48];
    snprintf(p, sizeof p, "layers.%d.blocks.%d.", s, i);
    add_norm(l, b->norm1, p, "norm1", C);
    b->rpb = l->n;
    avs_spec_add(l, 2, (int[]){t, nh}, "%sattn.relative_position_bias_table", p);
    add_wb(l, b->qkv, p, "attn.qkv", 2, (int[]){3 * C, C}, 3 * C);
    add_wb(l, b->proj, p, "attn.proj", 2, (int[]){C, C}, C);
    add_norm(l, b->norm2, p, "norm2", C);
    add_wb(l, b->fc1, p, "mlp.fc1", 2, (int[]){4 * C, C}, 4 * C);
    add_wb(l, b->fc2, p, "mlp.fc2", 2, (int[]){C, 4 * C}, C);
}

static void build_spec(struct avs_swin *m)
{
    const struct avs_swin_cfg *c = &m->cfg;
    struct avs_spec_list *l = &m->specs;
    int nblk = 0;
    for (int s = 0; s < 4; s++)
        nblk += c->depths[s];
    struct avs_swin_block_ix *blk = avs_calloc((size_t)nblk + 1, sizeof *blk);
    add_wb(l, m->pe, "patch_embed.", "proj", 4, (int[]){c->embed, 3, 4, 4}, c->embed);
    add_norm(l, m->pe_norm, "patch_embed.", "norm", c->embed);
    for (int s = 0; s < 4; s++) {
        struct avs_swin_stage_ix *x = &m->ix[s];
        x->blk = blk;
        for (int i = 0; i < c->depths[s]; i++)
            add_block(l, &blk[i], c, s, i);
        blk += c->depths[s];
        x->red = x->mnorm[0] = x->mnorm[1] = -1;
        if (s < 3) {
            int C = avs_swin_dim(c, s), r[2];
            char p[32];
            snprintf(p, sizeof p, "layers.%d.downsample.", s);
            add_wb(l, r, p, "reduction", 2, (int[]){2 * C, 4 * C}, 0);
            x->red = r[0];
            add_norm(l, x->mnorm, p, "norm", 4 * C);
        }
    }
    add_norm(l, m->norm, "", "norm", avs_swin_dim(c, 3));
    m->head[0] = m->head[1] = -1;
    if (c->classes)
        add_wb(l, m->head, "", "head", 2, (int[]){c->classes, avs_swin_dim(c, 3)}, c->classes);
    m->spec = l->v, m->np = l->n;
}

void avs_swin_free(struct avs_swin *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    avs_spec_list_free(&m->specs);
    free(m->ix[0].blk);
    memset(m, 0, sizeof *m);
}

int avs_swin_is_buffer(const char *name)
{
    size_t n = strlen(name);
    static const char *const tail[] = {".relative_position_index", ".attn_mask"};
    for (int i = 0; i < 2; i++) {
        size_t k = strlen(tail[i]);
        if (n > k && !strcmp(name + n - k, tail[i]))
            return 1;
    }
    return 0;
}

/* The official files' recomputed buffers: taken (skipped), anything else is an error. */
static int skip_buffers(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    (void)ctx, (void)err;
    return avs_swin_is_buffer(t->name);
}

int avs_swin_load(struct avs_swin *m, const struct avs_swin_cfg *cfg, const char *path,
                  struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    struct avs_st_file *f = NULL;
    if (avs_st_open(path, &f, err))
        return -1;
    const struct avs_st_tensor *h = avs_st_find(f, "head.weight");
    if (!h)
        h = avs_st_find(f, "module.head.weight");
    m->cfg.classes = h && h->ndim == 2 ? (int)h->shape[0] : 0;
    build_spec(m);
    avs_tensor_set_init(&m->params, m->spec, m->np);
    struct avs_params_io io = {.sets = {&m->params}, .nsets = 1, .extra = skip_buffers,
                               .what = "this Swin variant"};
    int rc = avs_params_load(f, &io, err);
    if (rc)
        avs_err_wrap(err, "Swin with embed %d, depths %d,%d,%d,%d, window %d", cfg->embed,
                     cfg->depths[0], cfg->depths[1], cfg->depths[2], cfg->depths[3], cfg->window);
    avs_st_close(&f);
    if (rc)
        avs_swin_free(m);
    return rc ? -1 : 0;
}

static void init_tensor(float *d, const struct avs_tensor_spec *t, int i, uint64_t seed)
{
    size_t n = avs_tensor_spec_numel(t);
    const char *nm = t->name, *leaf = strrchr(nm, '.');
    if (!strncmp(nm, "patch_embed.proj.", 17)) { /* nn.Conv2d default: kaiming_uniform(a=sqrt5) */
        float bound = 1.0f / sqrtf(3.0f * 4 * 4);
        avs_randinit_uniform(d, n, bound, seed, (uint64_t)i);
    } else if (strstr(nm, "relative_position_bias_table"))
        avs_randinit_normal(d, n, 0.02f, seed, (uint64_t)i);
    else if (!strcmp(leaf, ".bias"))
        avs_randinit_const(d, n, 0.0f);
    else if (t->ndim == 1) /* LayerNorm weights */
        avs_randinit_const(d, n, 1.0f);
    else
        avs_randinit_normal(d, n, 0.02f, seed, (uint64_t)i);
}

void avs_swin_init_random(struct avs_swin *m, const struct avs_swin_cfg *cfg, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    build_spec(m);
    avs_tensor_set_init(&m->params, m->spec, m->np);
    float *host = avs_calloc(m->params.arena.used + 1, sizeof(float));
    for (int i = 0; i < m->np; i++)
        init_tensor(host + (m->params.t[i].data - m->params.arena.base), &m->spec[i], i, seed);
    avs_tensor_set_from_host(&m->params, host);
    free(host);
}
