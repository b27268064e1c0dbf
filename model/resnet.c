/* model/resnet.c: ResNet-50's size table, loading and random init (model/resnet.h). The
 * passes are in model/resnet_pass.c. */
#include "model/resnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/params.h"
#include "model/randinit.h"

#define EXPANSION 4

static const int official_depths[4] = {3, 4, 6, 3};

static void add_conv(struct avs_resnet *m, int *ix, int K, int C, int k, const char *name)
{
    int sh[4] = {K, C, k, k};
    *ix = m->specs.n;
    avs_spec_add(&m->specs, 4, sh, "%s.weight", name);
}

static void add_bn(struct avs_resnet *m, struct avs_resnet_bn_ix *ix, int C, const char *name)
{
    int sh[1] = {C};
    ix->w = m->specs.n;
    avs_spec_add(&m->specs, 1, sh, "%s.weight", name);
    ix->b = m->specs.n;
    avs_spec_add(&m->specs, 1, sh, "%s.bias", name);
    ix->mean = m->specs.n;
    avs_spec_add(&m->specs, 1, sh, "%s.running_mean", name);
    ix->var = m->specs.n;
    avs_spec_add(&m->specs, 1, sh, "%s.running_var", name);
}

static void add_block(struct avs_resnet *m, int s, int i, int cin)
{
    struct avs_resnet_block_ix *b = &m->blk[s][i];
    int P = m->planes[s];
    char nm[64];
    const int cins[3] = {cin, P, P}, couts[3] = {P, P, EXPANSION * P}, ks[3] = {1, 3, 1};
    for (int c = 0; c < 3; c++) {
        snprintf(nm, sizeof nm, "layer%d.%d.conv%d", s + 1, i, c + 1);
        add_conv(m, &b->conv[c], couts[c], cins[c], ks[c], nm);
        snprintf(nm, sizeof nm, "layer%d.%d.bn%d", s + 1, i, c + 1);
        add_bn(m, &b->bn[c], couts[c], nm);
    }
    b->ds_conv = -1;
    if (i == 0) { /* torchvision: stride != 1 or inplanes != 4 planes, true for every block 0 */
        snprintf(nm, sizeof nm, "layer%d.0.downsample.0", s + 1);
        add_conv(m, &b->ds_conv, EXPANSION * P, cin, 1, nm);
        snprintf(nm, sizeof nm, "layer%d.0.downsample.1", s + 1);
        add_bn(m, &b->ds_bn, EXPANSION * P, nm);
    }
}

/* The size table in state_dict order from width, planes, depths and classes. */
static void build(struct avs_resnet *m)
{
    add_conv(m, &m->conv1, m->width, 3, 7, "conv1");
    add_bn(m, &m->bn1, m->width, "bn1");
    int cin = m->width;
    for (int s = 0; s < 4; s++) {
        m->dims[s] = EXPANSION * m->planes[s];
        for (int i = 0; i < m->depths[s]; i++) {
            add_block(m, s, i, cin);
            cin = m->dims[s];
        }
    }
    m->fc[0] = m->fc[1] = -1;
    if (m->classes) {
        int ws[2] = {m->classes, cin}, bs[1] = {m->classes};
        m->fc[0] = m->specs.n;
        avs_spec_add(&m->specs, 2, ws, "fc.weight");
        m->fc[1] = m->specs.n;
        avs_spec_add(&m->specs, 1, bs, "fc.bias");
    }
    avs_tensor_set_init(&m->params, m->specs.v, m->specs.n);
}

static const struct avs_st_tensor *findf(const struct avs_st_file *f, const char *fmt, int a, int b)
{
    char nm[96], pre[104];
    snprintf(nm, sizeof nm, fmt, a, b);
    const struct avs_st_tensor *t = avs_st_find(f, nm);
    if (!t) {
        snprintf(pre, sizeof pre, "module.%s", nm);
        t = avs_st_find(f, pre);
    }
    return t;
}

/* Widths, depths and classes from the file's shapes (the rest is checked by the loader). */
static int plan(struct avs_resnet *m, const struct avs_st_file *f, struct avs_err *err)
{
    const struct avs_st_tensor *t = findf(f, "conv1.weight", 0, 0);
    if (!t || t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 65536)
        return avs_err_set(err, "%s: no tensor \"conv1.weight\" [64,3,7,7]: not a torchvision "
                           "ResNet checkpoint (convert the .pth with tools/convert_checkpoint.py)",
                           f->path);
    m->width = (int)t->shape[0];
    for (int s = 0; s < 4; s++) {
        t = findf(f, "layer%d.%d.conv1.weight", s + 1, 0);
        if (!t || t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 65536)
            return avs_err_set(err, "%s: missing tensor \"layer%d.0.conv1.weight\" (a torchvision "
                               "ResNet-50 has layer1..layer4)", f->path, s + 1);
        m->planes[s] = (int)t->shape[0];
        int d = 0;
        while (d < AVS_RESNET_MAXDEPTH && findf(f, "layer%d.%d.conv1.weight", s + 1, d))
            d++;
        if (findf(f, "layer%d.%d.conv3.weight", s + 1, 0) == NULL)
            return avs_err_set(err, "%s: no \"layer%d.0.conv3.weight\": a ResNet of BasicBlocks "
                               "(ResNet-18/34)? only Bottleneck ResNets (ResNet-50) are built",
                               f->path, s + 1);
        m->depths[s] = d;
    }
    t = findf(f, "fc.weight", 0, 0);
    m->classes = t && t->ndim == 2 && t->shape[0] >= 1 && t->shape[0] <= 1 << 20 ? (int)t->shape[0] : 0;
    return 0;
}

/* num_batches_tracked (int64 counters of training) are taken and ignored */
static int take_counter(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    (void)ctx, (void)err;
    size_t n = strlen(t->name), k = strlen(".num_batches_tracked");
    return n > k && !strcmp(t->name + n - k, ".num_batches_tracked");
}

int avs_resnet_load(struct avs_resnet *m, const char *path, struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    struct avs_st_file *f = NULL;
    int rc = -1;
    if (avs_st_open(path, &f, err) || plan(m, f, err))
        goto out;
    build(m);
    struct avs_params_io io = {.sets = {&m->params}, .nsets = 1, .extra = take_counter,
                               .what = "this ResNet (torchvision names)"};
    rc = avs_params_load(f, &io, err);
out:
    avs_st_close(&f);
    if (rc)
        avs_resnet_free(m);
    return rc;
}

/* host values of tensor i (in the arena's layout) */
static float *at(const struct avs_resnet *m, float *host, int i)
{
    return host + (m->params.t[i].data - m->params.arena.base);
}

static void init_bn(const struct avs_resnet *m, float *host, const struct avs_resnet_bn_ix *b)
{
    size_t C = (size_t)m->params.t[b->w].shape[0];
    avs_randinit_const(at(m, host, b->w), C, 1.0f);
    avs_randinit_const(at(m, host, b->var), C, 1.0f);
    /* bias and running_mean stay 0 (the host block is zeroed) */
}

void avs_resnet_init_random(struct avs_resnet *m, int width, int classes, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->width = width, m->classes = classes;
    for (int s = 0; s < 4; s++)
        m->planes[s] = width << s, m->depths[s] = official_depths[s];
    build(m);
    float *host = avs_calloc(m->params.arena.used + 1, sizeof(float));
    for (int i = 0; i < m->specs.n; i++) {
        const struct avs_tensor_spec *t = &m->specs.v[i];
        if (t->ndim != 4)
            continue;
        double fan_out = (double)t->shape[0] * t->shape[2] * t->shape[3];
        avs_randinit_normal(at(m, host, i), avs_tensor_spec_numel(t),
                                 (float)sqrt(2.0 / fan_out), seed, (uint64_t)i);
    }
    init_bn(m, host, &m->bn1);
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < m->depths[s]; i++) {
            for (int c = 0; c < 3; c++)
                init_bn(m, host, &m->blk[s][i].bn[c]);
            if (m->blk[s][i].ds_conv >= 0)
                init_bn(m, host, &m->blk[s][i].ds_bn);
        }
    if (classes) {
        float bound = (float)(1.0 / sqrt((double)m->dims[3]));
        avs_randinit_uniform(at(m, host, m->fc[0]), (size_t)classes * m->dims[3], bound, seed,
                             (uint64_t)m->fc[0]);
        avs_randinit_uniform(at(m, host, m->fc[1]), (size_t)classes, bound, seed,
                             (uint64_t)m->fc[1]);
    }
    avs_tensor_set_from_host(&m->params, host);
    free(host);
}

void avs_resnet_free(struct avs_resnet *m)
{
    if (!m)
        return;
    if (m->params.t)
        avs_tensor_set_free(&m->params);
    avs_spec_list_free(&m->specs);
}

int avs_resnet_side(int side, int s)
{
    side = (side - 1) / 2 + 1; /* conv1 7x7/2 pad 3 */
    side = (side - 1) / 2 + 1; /* max-pool 3x3/2 pad 1 */
    for (int k = 1; k <= s; k++)
        side = (side - 1) / 2 + 1; /* 3x3/2 pad 1 */
    return side;
}
