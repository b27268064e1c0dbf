/* bench/fuzz/fuzz_png.c: frame and mask PNGs through every reader the programs use: core/png.c
 * (frames, AVSS colour labels -> class indices), store/frame.c (training's mask readers),
 * eval/png_index.c (avs-eval's GT and prediction masks), eval/avss_read.c (AVSS labels). */
#include "bench/fuzz/fuzz.h"
#include "core/avss.h"
#include "core/image.h"
#include "eval/avss.h"
#include "eval/eval.h"
#include "store/store.h"

/* The class map of an RGB(A) label and its 224x224 PIL-nearest resize (ingest's AVSS path). */
static void class_map(const struct avs_image *img)
{
    struct avs_image idx = {0}, small = {0};
    int64_t unknown = 0;
    if (avs_avss_map_colours(img, AVS_AVSS_CLASSES, &idx, &unknown) == 0 &&
        avs_image_alloc(&small, 224, 224, 1) == 0)
        avs_avss_resize_nearest(&idx, &small);
    avs_image_free(&idx);
    avs_image_free(&small);
}

static int eval_readers(const char *path, struct avs_err *err)
{
    uint8_t *plane = NULL, *px = NULL;
    int w, h, c, rc = 0;
    for (int role = AVS_EVAL_GT; role <= AVS_EVAL_PRED && rc == 0; role++) {
        rc = avs_eval_png_read(path, (enum avs_eval_role)role, &plane, &w, &h, err);
        free(plane);
        plane = NULL;
    }
    if (rc == 0 && (rc = avs_avss_png_read(path, &px, &w, &h, &c, err)) == 0)
        AVS_ASSERT(c == 1 || c == 3);
    free(px);
    return rc;
}

int avs_fuzz_png(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_png(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.png", data, size);
    struct avs_image img = {0};
    int bits = 0;
    if (avs_png_read(path, &img, &bits, err))
        return -1;
    AVS_ASSERT(img.c >= 1 && img.c <= 4 && (bits == 8 || bits == 16));
    class_map(&img);
    uint8_t *mask = NULL;
    int rc = avs_store_mask_read(&mask, path, img.h, img.w, err);
    free(mask);
    mask = NULL;
    if (rc == 0)
        rc = avs_store_class_mask_read(&mask, path, img.h, img.w, AVS_AVSS_CLASSES, err);
    free(mask);
    avs_image_free(&img);
    return rc ? rc : eval_readers(path, err);
}
AVS_FUZZ_ENTRY(avs_fuzz_png)
