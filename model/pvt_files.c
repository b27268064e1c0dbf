/* model/pvt_files.c: PVTv2 on safetensors files (avs-model run pvt_v2_bX; tests and
 * reference comparisons): images in, stage maps and logits out, with Grad-CAM weights for
 * given targets and parameter gradients for given upstream gradients. See model/pvt.h.
 * Files are read into host memory and uploaded; results are downloaded to be written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/params.h"
#include "model/pvt.h"

/* What one run holds (freed by run_free). Tensors are device memory, xh the host image. */
struct run {
    struct avs_pvt m;
    int have_m, N, H, W;
    int ss[4][4];                            /* stage shapes */
    float *xh, *x, *st[4], *lg, *gc[4], *dst[4], *dlg;
    int *target;
    struct avs_pvt_ws ws;
    struct avs_tensor_set grads;
    int have_g;
};

/* image [N,3,H,W] (H, W multiples of 32) from the inputs file, and the model */
static int load(struct run *r, const struct avs_pvt_files *f, struct avs_err *err)
{
    struct avs_pvt_cfg cfg;
    struct avs_st_file *in = NULL;
    const struct avs_st_tensor *t;
    if ((!f->weights && !f->random_init) || !f->inputs || !f->out || avs_pvt_cfg_variant(&cfg, f->variant))
        return avs_err_set(err, "run %s needs --weights (or --random-init), --inputs and --out; "
                           "variants are pvt_v2_b0..pvt_v2_b5 (see --help)", f->variant);
    if (avs_st_open(f->inputs, &in, err))
        return -1;
    int rc = -1;
    if (!(t = avs_st_find(in, "image")) || t->ndim != 4 || t->shape[1] != 3 || t->shape[2] < 32 ||
        t->shape[3] < 32 || t->shape[2] % 32 || t->shape[3] % 32 || t->shape[2] > 4096 ||
        t->shape[3] > 4096 || t->shape[0] < 1 || t->shape[0] > 4096) {
        avs_err_set(err, "%s: tensor \"image\" must be [N,3,H,W] with H and W multiples of 32", f->inputs);
        goto out;
    }
    r->N = (int)t->shape[0], r->H = (int)t->shape[2], r->W = (int)t->shape[3];
    r->xh = avs_malloc(t->numel * sizeof(float));
    if (avs_st_read_f32(t, r->xh, t->numel, err)) {
        avs_err_wrap(err, "%s", f->inputs);
        goto out;
    }
    if (f->random_init)
        avs_pvt_init_random(&r->m, &cfg, f->init_seed);
    else if (avs_pvt_load(&r->m, &cfg, f->weights, err))
        goto out;
    r->have_m = 1;
    rc = 0;
out:
    avs_st_close(&in);
    return rc;
}

/* target [N] (int64 or int32 class indices) from the targets file */
static int read_targets(struct run *r, const char *path, struct avs_err *err)
{
    struct avs_st_file *tf = NULL;
    if (avs_st_open(path, &tf, err))
        return -1;
    int got = r->m.cfg.classes ? avs_st_read_classes(tf, "target", r->N, r->m.cfg.classes,
                                                     &r->target, err)
                               : avs_err_set(err, "%s: targets need weights with a head", path);
    if (got == 0)
        avs_err_set(err, "%s: expected tensor \"target\" [%d] of class indices", path, r->N);
    avs_st_close(&tf);
    return got == 1 ? 0 : -1;
}

/* upstream gradients dstage1..4 / dlogits (any of them) from the file, then the backward */
static int backward(struct run *r, const char *path, struct avs_err *err)
{
    struct avs_st_file *df = NULL;
    if (avs_st_open(path, &df, err))
        return -1;
    int rc = -1, got = 0;
    for (int s = 0; s < 5; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, s < 4 ? "dstage%d" : "dlogits", s + 1);
        const struct avs_st_tensor *t = avs_st_find(df, nm);
        size_t want = s < 4 ? (size_t)r->N * r->ss[s][1] * r->ss[s][2] * r->ss[s][3]
                            : (size_t)r->N * r->m.cfg.classes;
        if (!t)
            continue;
        if (t->numel != want) {
            avs_err_set(err, "%s: tensor \"%s\" has %zu elements, the output has %zu", path, nm, t->numel, want);
            goto out;
        }
        float *p = avs_malloc(want * sizeof(float));
        int bad = avs_st_read_f32(t, p, want, err);
        if (!bad)
            *(s < 4 ? &r->dst[s] : &r->dlg) = avs_dev_from_host(p, want);
        free(p);
        if (bad)
            goto out;
        got++;
    }
    if (!got) {
        avs_err_set(err, "%s: no upstream gradient (tensors dstage1..4, dlogits)", path);
        goto out;
    }
    avs_tensor_set_init(&r->grads, r->m.spec, r->m.np);
    r->have_g = 1;
    avs_pvt_bwd(&r->m, &r->ws, &r->grads, r->st, r->lg, r->x, (const float *const *)r->dst, r->dlg,
                r->N);
    rc = 0;
out:
    avs_st_close(&df);
    return rc;
}

static int save(struct run *r, const char *path, struct avs_err *err)
{
    static const char *names[4] = {"stage1", "stage2", "stage3", "stage4"};
    static const char *gnames[4] = {"gradcam1", "gradcam2", "gradcam3", "gradcam4"};
    struct avs_st_writer *wr = avs_st_writer_new();
    struct avs_params_stage stg = {0};
    float *h[9] = {0};
    if (r->have_g)
        avs_params_stage_add(&stg, wr, &r->grads, "grad.");
    for (int s = 0; s < 4; s++) {
        int gs[2] = {r->N, r->m.cfg.dims[s]};
        h[s] = avs_host_from_dev(r->st[s], (size_t)r->N * r->ss[s][1] * r->ss[s][2] * r->ss[s][3]);
        avs_st_writer_add_f32(wr, names[s], 4, r->ss[s], h[s]);
        if (r->gc[s]) {
            h[4 + s] = avs_host_from_dev(r->gc[s], (size_t)gs[0] * gs[1]);
            avs_st_writer_add_f32(wr, gnames[s], 2, gs, h[4 + s]);
        }
    }
    int ls[2] = {r->N, r->m.cfg.classes};
    if (r->lg) {
        h[8] = avs_host_from_dev(r->lg, (size_t)ls[0] * ls[1]);
        avs_st_writer_add_f32(wr, "logits", 2, ls, h[8]);
    }
    int rc = avs_st_writer_save(wr, path, err);
    avs_st_writer_free(&wr);
    avs_params_stage_free(&stg);
    for (int i = 0; i < 9; i++)
        free(h[i]);
    return rc;
}

static void run_free(struct run *r)
{
    for (int s = 0; s < 4; s++)
        avs_dev_free(&r->st[s]), avs_dev_free(&r->gc[s]), avs_dev_free(&r->dst[s]);
    avs_dev_free(&r->x), avs_dev_free(&r->lg), avs_dev_free(&r->dlg);
    free(r->xh), free(r->target);
    avs_pvt_ws_free(&r->ws);
    if (r->have_g)
        avs_tensor_set_free(&r->grads);
    if (r->have_m)
        avs_pvt_free(&r->m);
}

int avs_pvt_run_files(const struct avs_pvt_files *f, struct avs_err *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    int rc = -1;
    if (load(&r, f, err))
        goto out;
    for (int s = 0; s < 4; s++) {
        int *ss = r.ss[s];
        ss[0] = r.N, ss[1] = r.m.cfg.dims[s], ss[2] = avs_pvt_side(r.H, s), ss[3] = avs_pvt_side(r.W, s);
        r.st[s] = avs_dev_alloc((size_t)r.N * ss[1] * ss[2] * ss[3], "PVTv2 stage map");
    }
    r.x = avs_dev_from_host(r.xh, (size_t)r.N * 3 * r.H * r.W);
    r.lg = r.m.cfg.classes ? avs_dev_alloc((size_t)r.N * r.m.cfg.classes, "PVTv2 logits") : NULL;
    avs_pvt_ws_init(&r.ws, &r.m, r.N, r.H, r.W,
                    f->grad_out ? AVS_PVT_TRAIN : f->target ? AVS_PVT_GRADCAM : AVS_PVT_FWD);
    if (f->target) {
        if (read_targets(&r, f->target, err))
            goto out;
        for (int s = 0; s < 4; s++)
            r.gc[s] = avs_dev_alloc((size_t)r.N * r.m.cfg.dims[s], "Grad-CAM weights");
        avs_pvt_gradcam(&r.m, &r.ws, r.gc, r.st, r.lg, r.x, r.target, r.N);
    } else
        avs_pvt_fwd(&r.m, &r.ws, r.st, r.lg, r.x, r.N);
    if (f->grad_out && backward(&r, f->grad_out, err))
        goto out;
    rc = save(&r, f->out, err);
out:
    run_free(&r);
    return rc;
}
