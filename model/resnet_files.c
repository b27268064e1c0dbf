/* model/resnet_files.c: ResNet-50 on safetensors files (avs-model run resnet50; reference
 * checks, bench/resnet_check.sh): image [N,3,H,W] in, stage1..4 and logits out, with
 * gradcam1..4 for the targets of "target" [N] (int64/int32) when the inputs hold it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/resnet.h"

int avs_resnet_run_files(const char *weights, const char *inputs, const char *out,
                         struct avs_err *err)
{
    struct avs_resnet m;
    struct avs_st_file *in = NULL;
    struct avs_st_writer *w = NULL;
    struct avs_resnet_ws ws = {0};
    float *xh = NULL, *x = NULL, *lg = NULL, *st[4] = {0}, *gc[4] = {0}, *host[9] = {0};
    int *target = NULL, have_m = 0, rc = -1;
    const struct avs_st_tensor *t;
    if (avs_st_open(inputs, &in, err))
        goto out;
    if (!(t = avs_st_find(in, "image")) || t->ndim != 4 || t->shape[1] != 3 || t->shape[2] < 32 ||
        t->shape[3] < 32 || t->shape[2] % 32 || t->shape[3] % 32 || t->shape[2] > 4096 ||
        t->shape[3] > 4096 || t->shape[0] < 1 || t->shape[0] > 4096) {
        avs_err_set(err, "%s: tensor \"image\" must be [N,3,H,W] with H and W multiples of 32", inputs);
        goto out;
    }
    int N = (int)t->shape[0], H = (int)t->shape[2], W = (int)t->shape[3];
    xh = avs_malloc(t->numel * sizeof(float));
    if (avs_st_read_f32(t, xh, t->numel, err) || avs_resnet_load(&m, weights, err))
        goto out;
    have_m = 1;
    int gcam = avs_st_read_classes(in, "target", N, m.classes, &target, err);
    if (gcam < 0)
        goto out;
    x = avs_dev_from_host(xh, t->numel);
    int K = m.classes ? m.classes : 1, shapes[4][4];
    lg = avs_dev_alloc((size_t)N * K, "logits");
    for (int s = 0; s < 4; s++) {
        int hs = avs_resnet_side(H, s), wsd = avs_resnet_side(W, s);
        int sh[4] = {N, m.dims[s], hs, wsd};
        memcpy(shapes[s], sh, sizeof sh);
        st[s] = avs_dev_alloc((size_t)N * m.dims[s] * hs * wsd, "stage map");
        gc[s] = avs_dev_alloc((size_t)N * m.dims[s], "Grad-CAM weights");
    }
    avs_resnet_ws_init(&ws, &m, N, H, W);
    if (gcam)
        avs_resnet_gradcam(&m, &ws, gc, st, lg, x, target, N);
    else
        avs_resnet_fwd(&m, &ws, st, lg, x, N);
    w = avs_st_writer_new();
    char names[9][16];
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)shapes[s][0] * shapes[s][1] * shapes[s][2] * shapes[s][3];
        snprintf(names[s], sizeof names[s], "stage%d", s + 1);
        host[s] = avs_host_from_dev(st[s], n);
        avs_st_writer_add_f32(w, names[s], 4, shapes[s], host[s]);
        if (gcam) {
            int gs[2] = {N, m.dims[s]};
            snprintf(names[4 + s], sizeof names[4 + s], "gradcam%d", s + 1);
            host[4 + s] = avs_host_from_dev(gc[s], (size_t)N * m.dims[s]);
            avs_st_writer_add_f32(w, names[4 + s], 2, gs, host[4 + s]);
        }
    }
    if (m.classes) {
        int ls[2] = {N, m.classes};
        host[8] = avs_host_from_dev(lg, (size_t)N * m.classes);
        avs_st_writer_add_f32(w, "logits", 2, ls, host[8]);
    }
    rc = avs_st_writer_save(w, out, err) ? -1 : 0;
out:
    if (w)
        avs_st_writer_free(&w);
    for (int i = 0; i < 9; i++)
        free(host[i]);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&st[s]), avs_dev_free(&gc[s]);
    avs_dev_free(&x), avs_dev_free(&lg);
    avs_resnet_ws_free(&ws);
    if (have_m)
        avs_resnet_free(&m);
    avs_st_close(&in);
    free(xh), free(target);
    return rc;
}
