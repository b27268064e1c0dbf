/* model/swin_files.c: Swin on safetensors files (avs-model run swin_*; tests, reference
 * comparisons and bench/swin.sh): images in, stage maps and logits out, with Grad-CAM weights
 * for given targets. See model/swin.h. Files are read into host memory and uploaded; results
 * are downloaded to be written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/swin.h"

struct run {
    struct avs_swin m;
    int have_m, N, H, W;
    int ss[4][4];
    float *xh, *x, *st[4], *lg, *gc[4];
    int *target;
    struct avs_swin_ws ws;
};

static int load(struct run *r, const struct avs_swin_files *f, struct avs_err *err)
{
    struct avs_swin_cfg cfg;
    struct avs_st_file *in = NULL;
    const struct avs_st_tensor *t;
    if ((!f->weights && !f->random_init) || !f->inputs || !f->out ||
        avs_swin_cfg_variant(&cfg, f->variant))
        return avs_err_set(err, "run %s needs --weights (or --random-init), --inputs and --out; "
                           "variants are swin_t, swin_s, swin_b, swin_b_w12, swin_t_w4 (see --help)", f->variant);
    if (avs_st_open(f->inputs, &in, err))
        return -1;
    int rc = -1;
    if (!(t = avs_st_find(in, "image")) || t->ndim != 4 || t->shape[1] != 3 || t->shape[0] < 1 ||
        t->shape[0] > 4096 || t->shape[2] > 4096 || t->shape[3] > 4096 ||
        avs_swin_check_size(&cfg, (int)t->shape[2], (int)t->shape[3], err)) {
        avs_err_wrap(err, "%s: tensor \"image\" must be [N,3,H,W]", f->inputs);
        goto out;
    }
    r->N = (int)t->shape[0], r->H = (int)t->shape[2], r->W = (int)t->shape[3];
    r->xh = avs_malloc(t->numel * sizeof(float));
    if (avs_st_read_f32(t, r->xh, t->numel, err)) {
        avs_err_wrap(err, "%s", f->inputs);
        goto out;
    }
    if (f->random_init)
        avs_swin_init_random(&r->m, &cfg, f->init_seed);
    else if (avs_swin_load(&r->m, &cfg, f->weights, err))
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

static int save(struct run *r, const char *path, struct avs_err *err)
{
    struct avs_st_writer *wr = avs_st_writer_new();
    float *h[9] = {0};
    for (int s = 0; s < 4; s++) {
        char nm[16];
        int gs[2] = {r->N, r->ss[s][1]};
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        h[s] = avs_host_from_dev(r->st[s], (size_t)r->N * r->ss[s][1] * r->ss[s][2] * r->ss[s][3]);
        avs_st_writer_add_f32(wr, nm, 4, r->ss[s], h[s]);
        if (r->gc[s]) {
            snprintf(nm, sizeof nm, "gradcam%d", s + 1);
            h[4 + s] = avs_host_from_dev(r->gc[s], (size_t)gs[0] * gs[1]);
            avs_st_writer_add_f32(wr, nm, 2, gs, h[4 + s]);
        }
    }
    int ls[2] = {r->N, r->m.cfg.classes};
    if (r->lg) {
        h[8] = avs_host_from_dev(r->lg, (size_t)ls[0] * ls[1]);
        avs_st_writer_add_f32(wr, "logits", 2, ls, h[8]);
    }
    int rc = avs_st_writer_save(wr, path, err);
    avs_st_writer_free(&wr);
    for (int i = 0; i < 9; i++)
        free(h[i]);
    return rc;
}

static void run_free(struct run *r)
{
    for (int s = 0; s < 4; s++)
        avs_dev_free(&r->st[s]), avs_dev_free(&r->gc[s]);
    avs_dev_free(&r->x), avs_dev_free(&r->lg);
    free(r->xh), free(r->target);
    avs_swin_ws_free(&r->ws);
    if (r->have_m)
        avs_swin_free(&r->m);
}

int avs_swin_run_files(const struct avs_swin_files *f, struct avs_err *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    int rc = -1;
    if (load(&r, f, err))
        goto out;
    for (int s = 0; s < 4; s++) {
        int *ss = r.ss[s];
        ss[0] = r.N, ss[1] = avs_swin_dim(&r.m.cfg, s);
        ss[2] = avs_swin_side(r.H, s), ss[3] = avs_swin_side(r.W, s);
        r.st[s] = avs_dev_alloc((size_t)r.N * ss[1] * ss[2] * ss[3], "Swin stage map");
    }
    r.x = avs_dev_from_host(r.xh, (size_t)r.N * 3 * r.H * r.W);
    r.lg = r.m.cfg.classes ? avs_dev_alloc((size_t)r.N * r.m.cfg.classes, "Swin logits") : NULL;
    if (f->target && !r.m.cfg.classes) {
        avs_err_set(err, "%s: no head (head.weight): Grad-CAM needs the logits", f->weights);
        goto out;
    }
    if (avs_swin_ws_init(&r.ws, &r.m, r.N, r.H, r.W, f->target ? AVS_SWIN_GRADCAM : AVS_SWIN_FWD,
                         err))
        goto out;
    if (f->target) {
        if (read_targets(&r, f->target, err))
            goto out;
        for (int s = 0; s < 4; s++)
            r.gc[s] = avs_dev_alloc((size_t)r.N * r.ss[s][1], "Grad-CAM weights");
        avs_swin_gradcam(&r.m, &r.ws, r.gc, r.st, r.lg, r.x, r.target, r.N);
    } else
        avs_swin_fwd(&r.m, &r.ws, r.st, r.lg, r.x, r.N);
    rc = save(&r, f->out, err);
out:
    run_free(&r);
    return rc;
}
