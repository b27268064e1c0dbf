/* model/pvt.c: PVTv2's configurations, size table (with the parameter indices every pass
 * uses), loading and random init (pvt.h). The workspace is model/pvt_ws.c, the passes
 * model/pvt_pass.c. */
#include "model/pvt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/params.h"
#include "model/randinit.h"

int avs_pvt_cfg_variant(struct avs_pvt_cfg *c, const char *name)
{
    static const int depths[6][4] = {{2, 2, 2, 2}, {2, 2, 2, 2}, {3, 4, 6, 3},
                                     {3, 4, 18, 3}, {3, 8, 27, 3}, {3, 6, 40, 3}};
    if (!strncmp(name, "pvt_v2_", 7))
        name += 7;
    if (name[0] != 'b' || name[1] < '0' || name[1] > '5' || name[2])
        return -1;
    int v = name[1] - '0';
    static const int d0[4] = {32, 64, 160, 256}, d1[4] = {64, 128, 320, 512};
    for (int s = 0; s < 4; s++) {
        c->dims[s] = v == 0 ? d0[s] : d1[s];
        c->heads[s] = (int[]){1, 2, 5, 8}[s];
        c->mlp[s] = v == 5 ? 4 : (int[]){8, 8, 4, 4}[s];
        c->depths[s] = depths[v][s];
        c->sr[s] = (int[]){8, 4, 2, 1}[s];
    }
    c->classes = 1000;
    return 0;
}

int avs_pvt_side(int side, int s)
{
    int x = (side + 2 * 3 - 7) / 4 + 1; /* 7x7 stride 4 pad 3 */
    for (int i = 1; i <= s; i++)
        x = (x + 2 - 3) / 2 + 1; /* 3x3 stride 2 pad 1 */
    return x;
}

/* ---- size table: official names in state_dict order, indices noted as they are added ---- */

/* "<pfx><mod>.weight" of shape wshape[wnd], "<pfx><mod>.bias" [nb]: ix = their indices */
static void add_wb(struct avs_spec_list *l, int ix[2], const char *pfx, const char *mod, int wnd,
                   const int *wshape, int nb)
{
    ix[0] = l->n;
    avs_spec_add(l, wnd, wshape, "%s%s.weight", pfx, mod);
    ix[1] = l->n;
    avs_spec_add(l, 1, &nb, "%s%s.bias", pfx, mod);
}

/* LayerNorm weight and bias [C] */
static void add_norm(struct avs_spec_list *l, int ix[2], const char *pfx, const char *mod, int C)
{
    add_wb(l, ix, pfx, mod, 1, &C, C);
}

static void add_block(struct avs_spec_list *l, struct avs_pvt_block_ix *b,
                      const struct avs_pvt_cfg *c, int s, int i)
{
    int C = c->dims[s], hid = C * c->mlp[s], sr = c->sr[s];
    char p[48];
    snprintf(p, sizeof p, "block%d.%d.", s + 1, i);
    add_norm(l, b->norm1, p, "norm1", C);
    add_wb(l, b->q, p, "attn.q", 2, (int[]){C, C}, C);
    add_wb(l, b->kv, p, "attn.kv", 2, (int[]){2 * C, C}, 2 * C);
    add_wb(l, b->proj, p, "attn.proj", 2, (int[]){C, C}, C);
    b->sr[0] = b->sr[1] = b->srnorm[0] = b->srnorm[1] = -1;
    if (sr > 1) {
        add_wb(l, b->sr, p, "attn.sr", 4, (int[]){C, C, sr, sr}, C);
        add_norm(l, b->srnorm, p, "attn.norm", C);
    }
    add_norm(l, b->norm2, p, "norm2", C);
    add_wb(l, b->fc1, p, "mlp.fc1", 2, (int[]){hid, C}, hid);
    add_wb(l, b->dw, p, "mlp.dwconv.dwconv", 4, (int[]){hid, 1, 3, 3}, hid);
    add_wb(l, b->fc2, p, "mlp.fc2", 2, (int[]){C, hid}, C);
}

/* The size table of m->cfg and the parameter indices (m->ix, m->head). */
static void build_spec(struct avs_pvt *m)
{
    const struct avs_pvt_cfg *c = &m->cfg;
    struct avs_spec_list *l = &m->specs;
    int nblk = 0;
    for (int s = 0; s < 4; s++)
        nblk += c->depths[s];
    struct avs_pvt_block_ix *blk = avs_calloc((size_t)nblk + 1, sizeof *blk);
    for (int s = 0; s < 4; s++) {
        struct avs_pvt_stage_ix *x = &m->ix[s];
        int C = c->dims[s], Ci = s ? c->dims[s - 1] : 3, k = s ? 3 : 7;
        char p[32];
        snprintf(p, sizeof p, "patch_embed%d.", s + 1);
        add_wb(l, x->pe, p, "proj", 4, (int[]){C, Ci, k, k}, C);
        add_norm(l, x->pe_norm, p, "norm", C);
        x->blk = blk;
        for (int i = 0; i < c->depths[s]; i++)
            add_block(l, &blk[i], c, s, i);
        blk += c->depths[s];
        char nm[16];
        snprintf(nm, sizeof nm, "norm%d", s + 1);
        add_norm(l, x->norm, "", nm, C);
    }
    m->head[0] = m->head[1] = -1;
    if (c->classes)
        add_wb(l, m->head, "", "head", 2, (int[]){c->classes, c->dims[3]}, c->classes);
    m->spec = l->v, m->np = l->n;
}

void avs_pvt_free(struct avs_pvt *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    avs_spec_list_free(&m->specs);
    free(m->ix[0].blk);
    memset(m, 0, sizeof *m);
}

int avs_pvt_load(struct avs_pvt *m, const struct avs_pvt_cfg *cfg, const char *path,
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
    struct avs_params_io io = {.sets = {&m->params}, .nsets = 1, .what = "this PVTv2 variant"};
    int rc = avs_params_load(f, &io, err);
    if (rc)
        avs_err_wrap(err, "PVTv2 with dims %d,%d,%d,%d and depths %d,%d,%d,%d", cfg->dims[0],
                     cfg->dims[1], cfg->dims[2], cfg->dims[3], cfg->depths[0], cfg->depths[1],
                     cfg->depths[2], cfg->depths[3]);
    avs_st_close(&f);
    if (rc)
        avs_pvt_free(m);
    return rc ? -1 : 0;
}

/* pvt_v2.py's _init_weights for tensor i of the table into host memory d. */
static void init_tensor(float *d, const struct avs_tensor_spec *t, int i, uint64_t seed)
{
    size_t n = avs_tensor_spec_numel(t);
    const char *nm = t->name, *leaf = strrchr(nm, '.');
    int is_norm = strstr(nm, "norm") && !strstr(nm, ".proj.") && !strstr(nm, ".sr.");
    if (!strcmp(leaf, ".bias"))
        avs_randinit_const(d, n, 0.0f);
    else if (is_norm)
        avs_randinit_const(d, n, 1.0f);
    else if (t->ndim == 4) { /* conv: fan_out = k*k*out/groups (groups = out for dwconv) */
        int groups = strstr(nm, "dwconv") ? t->shape[0] : 1;
        double fan_out = (double)t->shape[2] * t->shape[3] * t->shape[0] / groups;
        avs_randinit_normal(d, n, (float)sqrt(2.0 / fan_out), seed, (uint64_t)i);
    } else
        avs_randinit_normal(d, n, 0.02f, seed, (uint64_t)i);
}

void avs_pvt_init_random(struct avs_pvt *m, const struct avs_pvt_cfg *cfg, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    build_spec(m);
    avs_tensor_set_init(&m->params, m->spec, m->np);
    /* the values on the host in the arena's layout, then one upload */
    float *host = avs_calloc(m->params.arena.used + 1, sizeof(float));
    for (int i = 0; i < m->np; i++)
        init_tensor(host + (m->params.t[i].data - m->params.arena.base), &m->spec[i], i, seed);
    avs_tensor_set_from_host(&m->params, host);
    free(host);
}
