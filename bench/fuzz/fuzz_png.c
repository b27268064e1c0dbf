/* bench/fuzz/fuzz_png.c: frame and mask PNGs through every reader the programs use: core/png.c
 * (frames, AVSS colour labels -> class indices), store/frame.c (training's mask readers),
 * eval/png_index.c (avs-eval's GT and prediction masks), eval/avss_read.c (AVSS labels). */
#include <libavutil/crc.h>

#include "bench/fuzz/fuzz.h"
#include "core/avss.h"
#include "core/image.h"
#include "eval/avss.h"
#include "eval/eval.h"
#include "store/store.h"

/* libpng refuses a chunk whose CRC is wrong, which would stop nearly every mutation at the
 * first chunk: the copy gets each whole chunk's CRC recomputed (zlib's CRC-32, via libavutil). */
static uint8_t *fix_crcs(const uint8_t *data, size_t size)
{
    uint8_t *p = avs_malloc(size ? size : 1);
    if (size)
        memcpy(p, data, size);
    const AVCRC *tab = av_crc_get_table(AV_CRC_32_IEEE_LE);
    for (size_t at = 8; at + 12 <= size;) {
        size_t len = (size_t)p[at] << 24 | (size_t)p[at + 1] << 16 | (size_t)p[at + 2] << 8 | p[at + 3];
        if (len > size - at - 12)
            break;
        uint32_t crc = av_crc(tab, UINT32_MAX, p + at + 4, len + 4) ^ UINT32_MAX;
        for (int i = 0; i < 4; i++)
            p[at + 8 + len + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
        at += len + 12;
    }
    return p;
}

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

/* avs-eval's readers: GT and prediction masks, AVSS labels; 0, or -1 at the first refusal. */
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
    uint8_t *out = avs_malloc(AVS_AVSS_SIZE * AVS_AVSS_SIZE);
    if (rc == 0)
        rc = avs_avss_read_pred(path, AVS_AVSS_CLASSES, out, err);
    struct avs_avss_frame fr = {0};
    fr.gt = (char *)path;
    int64_t unknown;
    for (int kind = AVS_AVSS_GT_COLOUR; kind <= AVS_AVSS_GT_INDEX && rc == 0; kind++) {
        fr.gt_kind = kind;
        rc = avs_avss_read_label(&fr, AVS_AVSS_CLASSES, out, &unknown, err);
    }
    free(out);
    return rc;
}

/* core/png.c and training's mask readers (which take the size the store expects). */
static int core_readers(const char *path, struct avs_err *err)
{
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
    return rc;
}

/* Every reader sees the file (one refusing does not hide the others' bugs); -1 if any refused,
 * err holding the first refusal. */
int avs_fuzz_png(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_png(const uint8_t *data, size_t size, struct avs_err *err)
{
    uint8_t *fixed = fix_crcs(data, size);
    const char *path = avs_fuzz_file("in.png", fixed, size);
    free(fixed);
    struct avs_err second = {{0}};
    int rc = core_readers(path, err);
    if (eval_readers(path, rc ? &second : err))
        rc = -1;
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_png)
