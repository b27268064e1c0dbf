/* predict/classes.c: see classes.h. */
#include "predict/classes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/image.h"
#include "eval/eval.h"
#include "train/semantic.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*   offset size  field              (eval/eval.h's layout; 28 was reserved)
 *   0      8     "AVSLOGIT"
 *   8      4     version 1
 *   12     4     header size 32
 *   16     4     W
 *   20     4     H
 *   24     4     dtype 1 = float32 LE
 *   28     4     channels K
 *   32     4*K*W*H  [K][H][W] */
int avs_predict_logits_write(const char *path, const float *x, int K, int W, int H,
                             struct avs_err *err)
{
    AVS_ASSERT(K >= 1 && W > 0 && H > 0);
    size_t n = (size_t)K * W * H, len = AVS_LOGITS_HEADER + 4 * n;
    uint8_t *buf = avs_calloc(len, 1);
    memcpy(buf, AVS_LOGITS_MAGIC, 8);
    put_u32(buf + 8, AVS_LOGITS_VERSION);
    put_u32(buf + 12, AVS_LOGITS_HEADER);
    put_u32(buf + 16, (uint32_t)W);
    put_u32(buf + 20, (uint32_t)H);
    put_u32(buf + 24, 1);
    put_u32(buf + 28, (uint32_t)K);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(buf + AVS_LOGITS_HEADER + 4 * i, u);
    }
    int rc = avs_fs_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

static int write_png(const char *path, const struct avs_image *img, struct avs_err *err)
{
    char *tmp = avs_fs_tmp_name(path);
    int rc = avs_png_write(tmp, img, 1, err) || avs_fs_commit(tmp, path, err) ? -1 : 0;
    free(tmp);
    return rc;
}

int avs_predict_write_classes(const char *dir, const char *uid, int k, const float *x, int K,
                              int W, int H, int color, char **png_path, struct avs_err *err)
{
    size_t HW = (size_t)W * H;
    uint8_t *cls = avs_malloc(HW);
    avs_semantic_argmax(cls, x, K, HW);
    struct avs_image img = {0};
    avs_image_alloc(&img, W, H, color ? 3 : 1);
    for (size_t i = 0; i < HW; i++) {
        if (color)
            avs_semantic_color(cls[i], img.data + 3 * i);
        else
            img.data[i] = cls[i];
    }
    free(cls);
    char *name = avs_sprintf("%s_%d.png", uid, k - 1), *p = avs_fs_join(dir, name);
    int rc = write_png(p, &img, err);
    avs_image_free(&img);
    free(name);
    if (rc == 0) {
        name = avs_sprintf("%s_%d.logits", uid, k - 1);
        char *lp = avs_fs_join(dir, name);
        rc = avs_predict_logits_write(lp, x, K, W, H, err);
        free(lp), free(name);
    }
    if (rc == 0)
        *png_path = p;
    else
        free(p);
    return rc;
}
