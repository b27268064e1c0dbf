/* core/image.h: 8-bit images in memory, PNG files through libpng's simplified png_image API.
 *
 *   struct avs_image img = {0};
 *   if (avs_png_read(path, &img, NULL, &err) == 0) { ... img.data[(y*img.w + x)*img.c + ch] ...
 *   avs_image_free(&img); }
 *
 * Reading keeps the file's own channel layout (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; palettes
 * expanded) and does no colour conversion. 16-bit files are converted by libpng to 8 bits
 * and reported through `src_bits`, so callers that need exact values can refuse them.
 */
#ifndef AVS_CORE_IMAGE_H
#define AVS_CORE_IMAGE_H

#include <stdint.h>

#include "core/common.h"

struct avs_image {
    int w, h, c;   /* width, height, channels (1..4) */
    uint8_t *data; /* [h][w][c], rows packed */
};

int avs_image_alloc(struct avs_image *img, int w, int h, int c);
void avs_image_free(struct avs_image *img);

/* Read any PNG; src_bits (may be NULL) gets 8 or 16, the file's bit depth. */
int avs_png_read(const char *path, struct avs_image *img, int *src_bits, struct avs_err *err);
/* 1 if a PNG file of file_bytes can hold a w x h image, 0 if its header claims more pixels
 * than its zlib data could expand to (deflate's limit is 1032:1; at least 1 bit per pixel and a
 * filter byte per row): readers check this before allocating, so a damaged 100-byte file cannot
 * ask for gigabytes. */
int avs_png_size_plausible(uint64_t file_bytes, uint32_t w, uint32_t h);
/* Write img (c = 1, 3 or 4) as an 8-bit PNG at `path` (written in place: callers wanting
 * crash safety pass a temp name and rename). fast != 0 favours speed over size. */
int avs_png_write(const char *path, const struct avs_image *img, int fast, struct avs_err *err);
/* Same, to memory (for data URIs); *out is malloc'd. */
int avs_png_write_mem(const struct avs_image *img, uint8_t **out, size_t *len, struct avs_err *err);

/* JPEG stills through libav* (core/jpeg.c). Reading: any image libav decodes, as RGB (c = 3).
 * Writing: img c = 3, quantiser 1 (best) .. 31, atomically (temp name + rename). */
int avs_jpeg_read(const char *path, struct avs_image *img, struct avs_err *err);
int avs_jpeg_write(const char *path, const struct avs_image *img, int quality, struct avs_err *err);

/* Bilinear resize with OpenCV INTER_LINEAR conventions (see core/resize.c). dst must be
 * allocated with the target size and the same channel count. */
void avs_image_resize_bilinear(const struct avs_image *src, struct avs_image *dst);

#endif
