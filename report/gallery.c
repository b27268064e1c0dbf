/* report/gallery.c: qualitative thumbnails: frame | frame + GT (green) | frame + prediction (red). */
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "eval/eval.h"
#include "report/report.h"

/* The frame as RGB at size x size; gray when there is none or it cannot be read. */
static void load_frame(const char *path, int size, struct avs_image *out)
{
    struct avs_image src = {0}, rgb = {0};
    struct avs_err err;
    avs_image_alloc(out, size, size, 3);
    memset(out->data, 96, (size_t)size * size * 3);
    if (!path || avs_png_read(path, &src, NULL, &err))
        return;
    avs_image_alloc(&rgb, src.w, src.h, 3);
    for (int i = 0; i < src.w * src.h; i++)
        for (int ch = 0; ch < 3; ch++)
            rgb.data[i * 3 + ch] = src.data[i * src.c + (src.c >= 3 ? ch : 0)];
    avs_image_resize_bilinear(&rgb, out);
    avs_image_free(&rgb);
    avs_image_free(&src);
}

/* A binary mask at size x size (nearest sample); NULL when unreadable. */
static uint8_t *load_mask(const char *path, enum avs_eval_role role, int size)
{
    uint8_t *plane = NULL;
    float *x = NULL;
    int w = 0, h = 0;
    struct avs_err err;
    size_t n = strlen(path ? path : "");
    if (!path)
        return NULL;
    if (n > 7 && !strcmp(path + n - 7, ".logits")) {
        if (avs_logits_read(path, &x, &w, &h, &err))
            return NULL;
        plane = avs_malloc((size_t)w * h);
        for (int i = 0; i < w * h; i++)
            plane[i] = avs_eval_sigmoid(x[i]) > 0.5f ? 255 : 0;
        free(x);
    } else if (avs_eval_png_read(path, role, &plane, &w, &h, &err)) {
        return NULL;
    }
    uint8_t *m = avs_malloc((size_t)size * size);
    for (int y = 0; y < size; y++)
        for (int xx = 0; xx < size; xx++) {
            int sy = (int)((y + 0.5) * h / size), sx = (int)((xx + 0.5) * w / size);
            m[y * size + xx] = plane[sy * w + sx] >= 128;
        }
    free(plane);
    return m;
}

static void paste(struct avs_image *dst, int x0, const struct avs_image *frame, const uint8_t *mask,
                  const uint8_t colour[3])
{
    int s = frame->w;
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            const uint8_t *p = frame->data + (y * s + x) * 3;
            uint8_t *q = dst->data + (y * dst->w + x0 + x) * 3;
            for (int ch = 0; ch < 3; ch++)
                q[ch] = mask && mask[y * s + x] ? (uint8_t)((p[ch] + colour[ch]) / 2) : p[ch];
        }
}

int avs_report_thumbnail(const char *image, const char *gt, const char *pred, int size,
                         uint8_t **png, size_t *len, struct avs_err *err)
{
    static const uint8_t GREEN[3] = {0, 230, 60}, RED[3] = {255, 30, 30};
    const int gap = 2;
    struct avs_image frame = {0}, out = {0};
    load_frame(image, size, &frame);
    uint8_t *g = load_mask(gt, AVS_EVAL_GT, size), *p = load_mask(pred, AVS_EVAL_PRED, size);
    avs_image_alloc(&out, 3 * size + 2 * gap, size, 3);
    memset(out.data, 255, (size_t)out.w * out.h * 3);
    paste(&out, 0, &frame, NULL, NULL);
    paste(&out, size + gap, &frame, g, GREEN);
    paste(&out, 2 * (size + gap), &frame, p, RED);
    int rc = avs_png_write_mem(&out, png, len, err);
    avs_image_free(&frame);
    avs_image_free(&out);
    free(g);
    free(p);
    return rc;
}
