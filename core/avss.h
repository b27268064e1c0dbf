/* core/avss.h: the AVSBench-semantic (AVSS) colour palette, the one shared definition.
 *
 *   uint8_t rgb[3]; avs_avss_palette(7, rgb);      class 7 -> (128, 128, 128)
 *   int c = avs_avss_class_of_rgb(r, g, b);        -1 when (r, g, b) is no class colour
 *
 * ref: AVSBench avs_scripts/avss/color_dataloader.py get_v2_pallete (the VOC bit-interleaved
 * palette): for octal digit i of the class index j (j >> 3i), bit 0 goes to R, bit 1 to G,
 * bit 2 to B, each at bit position 7 - i. 71 classes, 0 = background = black (docs/avss.md).
 */
#ifndef AVS_CORE_AVSS_H
#define AVS_CORE_AVSS_H

#include <stdint.h>

#define AVS_AVSS_CLASSES 71

/* The colour of class idx (any idx >= 0; the release uses 0..70). */
static inline void avs_avss_palette(int idx, uint8_t rgb[3])
{
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int i = 0; idx > 0; i++, idx >>= 3) {
        rgb[0] |= (uint8_t)(((idx >> 0) & 1) << (7 - i));
        rgb[1] |= (uint8_t)(((idx >> 1) & 1) << (7 - i));
        rgb[2] |= (uint8_t)(((idx >> 2) & 1) << (7 - i));
    }
}

/* The inverse: the palette is a bijection between 24-bit colours and 24-bit indices, so the
 * index is read back bit by bit; only indices < AVS_AVSS_CLASSES are classes. */
static inline int avs_avss_class_of_rgb(uint8_t r, uint8_t g, uint8_t b)
{
    int idx = 0;
    for (int i = 0; i < 8; i++) {
        int digit = ((r >> (7 - i)) & 1) | ((g >> (7 - i)) & 1) << 1 | ((b >> (7 - i)) & 1) << 2;
        idx |= digit << (3 * i);
    }
    return idx < AVS_AVSS_CLASSES ? idx : -1;
}

#endif
