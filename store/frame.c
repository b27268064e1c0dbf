/* store/frame.c: frames as network input and ground-truth masks (store/store.h). */
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/image.h"
#include "eval/eval.h"
#include "store/store.h"

/* ref: AVSBench's transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)). */
static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};

/* The one formula of both paths (bytes and float RGB), so they give the same bits. */
static inline float imagenet(float v01, int ch)
{
    return (v01 - MEAN[ch]) / STD[ch];
}

/* ToTensor's v / 255 of channel ch of pixel p (c channels; gray repeated). */
static inline float unit(const uint8_t *p, int c, int ch)
{
    return (float)(c >= 3 ? p[ch] : p[0]) / 255.0f;
}

void avs_store_norm(float *dst, const float *rgb, int H, int W, int flip)
{
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < H; y++) {
            const float *src = rgb + ((size_t)ch * H + y) * W;
            float *d = dst + ((size_t)ch * H + y) * W;
            for (int x = 0; x < W; x++)
                d[x] = imagenet(src[flip ? W - 1 - x : x], ch);
        }
}

void avs_store_norm_u8(float *dst, const uint8_t *px, int c, int H, int W, int flip)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = px + ((size_t)y * W + (flip ? W - 1 - x : x)) * c;
            for (int ch = 0; ch < 3; ch++)
                dst[((size_t)ch * H + y) * W + x] = imagenet(unit(p, c, ch), ch);
        }
}

/* The PNG of a second's frame, checked to be H x W. */
static int read_frame(struct avs_image *img, const char *root, const char *rel, int H, int W,
                      struct avs_err *err)
{
    if (!rel)
        return avs_err_set(err, "second without a frame in the index: re-ingest the video");
    char *p = avs_fs_join(root, rel);
    int rc = avs_png_read(p, img, NULL, err);
    if (rc == 0 && (img->w != W || img->h != H))
        rc = avs_err_set(err, "%s: frame is %dx%d, the feature set uses %dx%d: re-ingest with "
                         "--size %dx%d", p, img->w, img->h, W, H, W, H);
    free(p);
    return rc;
}

int avs_store_frame(float *dst, const char *root, const char *rel, int H, int W, int flip,
                    struct avs_err *err)
{
    struct avs_image img = {0};
    int rc = read_frame(&img, root, rel, H, W, err);
    if (rc == 0)
        avs_store_norm_u8(dst, img.data, img.c, H, W, flip);
    avs_image_free(&img);
    return rc;
}

int avs_store_frame_rgb(float *rgb, const char *root, const char *rel, int H, int W,
                        struct avs_err *err)
{
    struct avs_image img = {0};
    int rc = read_frame(&img, root, rel, H, W, err);
    size_t n = (size_t)H * W;
    for (size_t i = 0; rc == 0 && i < n; i++)
        for (int ch = 0; ch < 3; ch++)
            rgb[ch * n + i] = unit(img.data + i * img.c, img.c, ch);
    avs_image_free(&img);
    return rc;
}

/* The 8-bit plane of the mask PNG at path, which must be H x W; what: for the message. */
static int mask_plane(uint8_t **plane, const char *path, const char *what, int H, int W,
                      struct avs_err *err)
{
    int w = 0, h = 0;
    if (avs_eval_png_read(path, AVS_EVAL_GT, plane, &w, &h, err))
        return -1;
    if (w != W || h != H) {
        free(*plane);
        *plane = NULL;
        return avs_err_set(err, "%s: %s is %dx%d, the model's output is %dx%d (the frame size of "
                           "the feature set): re-ingest with --size %dx%d", path, what, w, h, W, H,
                           W, H);
    }
    return 0;
}

int avs_store_mask_read(uint8_t **mask, const char *path, int H, int W, struct avs_err *err)
{
    uint8_t *plane = NULL;
    if (mask_plane(&plane, path, "mask", H, W, err))
        return -1;
    for (size_t i = 0; i < (size_t)W * H; i++)
        plane[i] = plane[i] >= 128;
    *mask = plane;
    return 0;
}

int avs_store_class_mask_read(uint8_t **mask, const char *path, int H, int W, int K,
                              struct avs_err *err)
{
    uint8_t *plane = NULL;
    if (mask_plane(&plane, path, "class mask", H, W, err))
        return -1;
    for (size_t i = 0; i < (size_t)W * H; i++)
        plane[i] = plane[i] < K ? plane[i] : 0;
    *mask = plane;
    return 0;
}

void avs_store_mask_place(float *dst, const uint8_t *mask, int H, int W, int flip)
{
    if (!mask) {
        memset(dst, 0, (size_t)H * W * sizeof(float));
        return;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            dst[(size_t)y * W + x] = mask[(size_t)y * W + (flip ? W - 1 - x : x)];
}
