/* predict/classes.c: see classes.h. */
#include "predict/classes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/avss.h"
#include "core/fs.h"
#include "core/image.h"
#include "eval/eval.h"
#include "train/semantic.h"

static int write_png(const char *path, const struct avs_image *img, struct avs_err *err)
{
    char *tmp = avs_fs_tmp_name(path);
    int rc = avs_png_write(tmp, img, 1, err) || avs_fs_commit(tmp, path, err) ? -1 : 0;
    free(tmp);
    return rc;
}

int avs_predict_write_classes(const char *wdir, const char *dir, const char *uid, int k, const float *x, int K,
                              int W, int H, int color, char **png_path, struct avs_err *err)
{
    size_t HW = (size_t)W * H;
    uint8_t *cls = avs_malloc(HW);
    avs_semantic_argmax(cls, x, K, HW);
    struct avs_image img = {0};
    avs_image_alloc(&img, W, H, color ? 3 : 1);
    for (size_t i = 0; i < HW; i++) {
        if (color)
            avs_avss_palette(cls[i], img.data + 3 * i);
        else
            img.data[i] = cls[i];
    }
    free(cls);
    char *name = avs_sprintf("%s_%d.png", uid, k - 1), *p = avs_fs_join(dir, name);
    char *wp = avs_fs_join(wdir, name);
    int rc = write_png(wp, &img, err);
    avs_image_free(&img);
    free(name), free(wp);
    if (rc == 0) {
        name = avs_sprintf("%s_%d.logits", uid, k - 1);
        char *lp = avs_fs_join(wdir, name);
        rc = avs_logits_write_c(lp, x, K, W, H, err); /* eval/eval.h: byte 28 = K */
        free(lp), free(name);
    }
    if (rc)
        avs_err_wrap(err, "writing the class map of %s second %d in %s", uid, k, dir);
    if (rc == 0)
        *png_path = p;
    else
        free(p);
    return rc;
}
