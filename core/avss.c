/* core/avss.c: see avss.h. */
#include <stdlib.h>
#include <string.h>

#include "core/avss.h"

void avs_avss_palette(int idx, uint8_t rgb[3])
{
    AVS_ASSERT(idx >= 0 && idx < (1 << 24));
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int i = 0, lab = idx; lab > 0; i++, lab >>= 3) {
        rgb[0] |= (uint8_t)(((lab >> 0) & 1) << (7 - i));
        rgb[1] |= (uint8_t)(((lab >> 1) & 1) << (7 - i));
        rgb[2] |= (uint8_t)(((lab >> 2) & 1) << (7 - i));
    }
}

int avs_avss_colour_index(uint8_t r, uint8_t g, uint8_t b, int n_classes)
{
    int idx = 0;
    for (int i = 0; i < 8; i++) {
        int digit = ((r >> (7 - i)) & 1) | (((g >> (7 - i)) & 1) << 1) | (((b >> (7 - i)) & 1) << 2);
        idx |= digit << (3 * i);
    }
    return idx < n_classes ? idx : AVS_AVSS_UNKNOWN;
}

int avs_avss_map_colours(const struct avs_image *label, int n_classes, struct avs_image *idx,
                         int64_t *unknown)
{
    struct avs_image out = {0};
    if (avs_image_alloc(&out, label->w, label->h, 1))
        return -1;
    size_t n = (size_t)label->w * (size_t)label->h;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = label->data + i * (size_t)label->c;
        uint8_t r = p[0], g = label->c >= 3 ? p[1] : p[0], b = label->c >= 3 ? p[2] : p[0];
        int c = avs_avss_colour_index(r, g, b, n_classes);
        bad += c == AVS_AVSS_UNKNOWN;
        out.data[i] = (uint8_t)c;
    }
    *idx = out;
    *unknown = bad;
    return 0;
}

int avs_avss_colourise(const struct avs_image *idx, struct avs_image *rgb)
{
    struct avs_image out = {0};
    if (avs_image_alloc(&out, idx->w, idx->h, 3))
        return -1;
    for (size_t i = 0; i < (size_t)idx->w * (size_t)idx->h; i++)
        avs_avss_palette(idx->data[i * (size_t)idx->c], out.data + 3 * i);
    *rgb = out;
    return 0;
}

/* Source index of each destination index along one axis, as Pillow's ImagingScaleAffine
 * (Geometry.c; Image.resize with NEAREST goes there): xo = 0.5 * s/n, then xo += s/n per
 * index in double, index = (int)xo. Mathematically floor((d + 0.5) * s / n), but the running
 * sum can land just below an exact integer (e.g. 64 -> 224, d = 3: 0.99999...), and Pillow
 * then takes the pixel before; so do we. tab [n] out. */
static void nearest_table(int src, int dst, int *tab)
{
    double scale = (double)src / (double)dst, xo = scale * 0.5;
    for (int d = 0; d < dst; d++, xo += scale) {
        int v = xo < 0.0 ? 0 : (int)xo;
        tab[d] = v < src ? v : src - 1;
    }
}

void avs_avss_resize_nearest(const struct avs_image *src, struct avs_image *dst)
{
    AVS_ASSERT(src->c == dst->c);
    size_t c = (size_t)src->c;
    int *xs = avs_malloc(sizeof(int) * (size_t)dst->w), *ys = avs_malloc(sizeof(int) * (size_t)dst->h);
    nearest_table(src->w, dst->w, xs);
    nearest_table(src->h, dst->h, ys);
    for (int y = 0; y < dst->h; y++) {
        const uint8_t *row = src->data + (size_t)ys[y] * (size_t)src->w * c;
        uint8_t *o = dst->data + (size_t)y * (size_t)dst->w * c;
        for (int x = 0; x < dst->w; x++)
            memcpy(o + (size_t)x * c, row + (size_t)xs[x] * c, c);
    }
    free(xs);
    free(ys);
}
