/* core/avss.h: AVSBench-semantic (AVSS) label maps: the class palette, colour -> class index,
 * and PIL's NEAREST resize (docs/avss.md). Shared by ingest (released colour labels), synth
 * (writing them) and eval (colour predictions).
 *
 *   uint8_t rgb[3];
 *   avs_avss_palette(5, rgb);                                  colour of class 5
 *   struct avs_image idx = {0};
 *   int64_t unknown;
 *   avs_avss_map_colours(&label_rgb, 71, &idx, &unknown);      class indices, 255 = unknown
 *   avs_avss_resize_nearest(&idx, &small);                     PIL Image.NEAREST rule
 *
 * Palette (ref: AVSBench avs_scripts/avss/utils/vis_mask.py get_v2_pallete): class j's colour
 * takes the base-8 digits of j, lowest first; digit i puts its bit 0 into R, bit 1 into G and
 * bit 2 into B at bit position 7 - i. The map is a bijection on 24-bit colours, so a colour is
 * a palette colour of an n-class table iff its inverse is < n.
 */
#ifndef AVS_CORE_AVSS_H
#define AVS_CORE_AVSS_H

#include <stdint.h>

#include "core/csv.h"
#include "core/image.h"

#define AVS_AVSS_CLASSES 71     /* classes of the AVSS release, 0 = background */
#define AVS_AVSS_MAX_CLASSES 255 /* 8-bit class-index masks: 255 is "unknown colour" */
#define AVS_AVSS_UNKNOWN 255

/* Colour of class idx (0 <= idx < 2^24) into rgb[3]. */
void avs_avss_palette(int idx, uint8_t rgb[3]);
/* Class index whose palette colour is (r, g, b) among the first n_classes, else
 * AVS_AVSS_UNKNOWN. */
int avs_avss_colour_index(uint8_t r, uint8_t g, uint8_t b, int n_classes);

/* Colour label (c = 3 or 4: RGB(A), alpha ignored; c = 1 or 2: gray g is (g, g, g), as PIL's
 * convert("RGB")) -> 1-channel class indices, allocated into *idx. *unknown = number of pixels
 * whose colour is not one of the n_classes palette colours (they get AVS_AVSS_UNKNOWN). */
int avs_avss_map_colours(const struct avs_image *label, int n_classes, struct avs_image *idx,
                         int64_t *unknown);
/* Class indices (channel 0 of idx) -> palette colours, allocated into *rgb (c = 3). */
int avs_avss_colourise(const struct avs_image *idx, struct avs_image *rgb);

/* Nearest-neighbour resize with PIL's Image.NEAREST rule: destination x takes source
 * floor((x + 0.5) * src / dst) per axis, computed as Pillow does (a running double sum, so
 * at exact ties it can take the pixel before; see avss.c). dst is allocated by the caller
 * with the target size and src's channel count. */
void avs_avss_resize_nearest(const struct avs_image *src, struct avs_image *dst);

/* label2idx.json -> names[idx] for idx = 0..n-1 (*names: AVS_AVSS_MAX_CLASSES entries,
 * malloc'd, each freed by the caller). 0, or -1 with err naming the file and saying what a
 * valid one looks like (each index 0..n-1 exactly once, names unique, n <= 255). */
int avs_avss_read_classes(const char *path, char ***names, int *n, struct avs_err *err);
/* metadata.csv's columns: uid, split, label (v1s|v1m|v2) by name, else the release's positions
 * (vid,uid,s_min,s_sec,a_obj,split,label); split may stay -1. 0, or -1 naming the file. */
int avs_avss_meta_columns(const struct avs_csv *t, const char *csv, int *uid, int *split,
                          int *label, struct avs_err *err);

#endif
