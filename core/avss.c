/* core/avss.c: see avss.h. */
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

/* Source index for each destination index: floor((d + 0.5) * s / n) = floor((2d+1) s / 2n). */
static int nearest_src(int d, int src, int dst)
{
    int64_t v = ((int64_t)2 * d + 1) * src / ((int64_t)2 * dst);
    return v < src ? (int)v : src - 1;
}

void avs_avss_resize_nearest(const struct avs_image *src, struct avs_image *dst)
{
    AVS_ASSERT(src->c == dst->c);
    size_t c = (size_t)src->c;
    for (int y = 0; y < dst->h; y++) {
        const uint8_t *row = src->data + (size_t)nearest_src(y, src->h, dst->h) * (size_t)src->w * c;
        uint8_t *o = dst->data + (size_t)y * (size_t)dst->w * c;
        for (int x = 0; x < dst->w; x++)
            memcpy(o + (size_t)x * c, row + (size_t)nearest_src(x, src->w, dst->w) * c, c);
    }
}
