/* eval/avss_read.c: AVSS labels and predictions as 224x224 class maps (docs/avss.md).
 *
 * PNGs are decoded with libpng's low-level API and no colour management, as PIL reads them;
 * nearest-neighbour resizing follows Pillow's ImagingScaleAffine (source coordinate
 * (x + 0.5) * src/dst accumulated in double and truncated); colours map through the palette
 * of core/avss.h. Logits ([71][224][224]) are reduced by argmax, the first index on ties.
 */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/avss.h"
#include "core/image.h"
#include "eval/avss.h"
#include "eval/png_in.h"

#define NPIX ((int64_t)AVS_AVSS_SIZE * AVS_AVSS_SIZE)

struct png_rd {
    struct avs_png_in in;
    uint8_t *px;
};

/* The part that may longjmp: 8-bit gray or RGB rows into r->px. */
static int png_decode(struct png_rd *r, int *w_out, int *h_out, int *c_out)
{
    if (setjmp(png_jmpbuf(r->in.png)))
        return -1;
    png_read_info(r->in.png, r->in.info);
    png_uint_32 w = png_get_image_width(r->in.png, r->in.info), h = png_get_image_height(r->in.png, r->in.info);
    int type = png_get_color_type(r->in.png, r->in.info);
    if (png_get_bit_depth(r->in.png, r->in.info) == 16) {
        snprintf(r->in.msg, sizeof r->in.msg, "16-bit PNG; labels and masks must be 8-bit");
        return -1;
    }
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(r->in.png);
    else if (type == PNG_COLOR_TYPE_GRAY)
        png_set_expand_gray_1_2_4_to_8(r->in.png);
    png_set_strip_alpha(r->in.png);
    png_set_interlace_handling(r->in.png);
    png_read_update_info(r->in.png, r->in.info);
    int c = png_get_channels(r->in.png, r->in.info);
    size_t n;
    if (w == 0 || h == 0 || w > 65535 || h > 65535 || (c != 1 && c != 3) ||
        png_get_rowbytes(r->in.png, r->in.info) != (size_t)w * (size_t)c ||
        avs_size_mul((size_t)w * h, (size_t)c, &n)) {
        snprintf(r->in.msg, sizeof r->in.msg, "unsupported PNG layout (%ux%u, %d channels)", w, h, c);
        return -1;
    }
    if (!avs_png_in_holds(&r->in, w, h))
        return -1;
    r->px = avs_malloc(n);
    png_bytep *rows = avs_malloc(sizeof *rows * h);
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = r->px + (size_t)y * w * (size_t)c;
    png_read_image(r->in.png, rows);
    free(rows);
    png_read_end(r->in.png, NULL);
    *w_out = (int)w, *h_out = (int)h, *c_out = c;
    return 0;
}

int avs_avss_png_read(const char *path, uint8_t **px, int *w, int *h, int *c, struct avs_err *err)
{
    struct png_rd r;
    memset(&r, 0, sizeof r);
    int rc = -1, ww = 0, hh = 0, cc = 0;
    if (avs_png_in_open(&r.in, path, err))
        return -1;
    if (png_decode(&r, &ww, &hh, &cc)) {
        avs_err_set(err, "cannot read PNG %s: %s", path, r.in.msg[0] ? r.in.msg : "decode error");
        goto out;
    }
    *px = r.px;
    r.px = NULL;
    *w = ww, *h = hh, *c = cc;
    rc = 0;
out:
    avs_png_in_close(&r.in);
    free(r.px);
    return rc;
}

/* The class of a palette colour among the table's n classes, -1 when none. */
static int class_of_rgb(uint8_t r, uint8_t g, uint8_t b, int n)
{
    int k = avs_avss_colour_index(r, g, b, n);
    return k == AVS_AVSS_UNKNOWN ? -1 : k;
}

/* raw [sh][sw][c] -> dst [dh][dw][c] by PIL's NEAREST rule (core/avss.h) */
static void resize_nearest(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh)
{
    struct avs_image a = {sw, sh, c, (uint8_t *)src}, b = {dw, dh, c, dst};
    avs_avss_resize_nearest(&a, &b);
}

/* A PNG at 224x224, 1 or 3 channels per pixel (*px malloc'd); *w, *h: its own size. */
static int png_at_224(const char *path, uint8_t **px, int *c, int *w, int *h, struct avs_err *err)
{
    uint8_t *raw = NULL;
    if (avs_avss_png_read(path, &raw, w, h, c, err))
        return -1;
    if (*w == AVS_AVSS_SIZE && *h == AVS_AVSS_SIZE) {
        *px = raw;
        return 0;
    }
    *px = avs_malloc((size_t)NPIX * (size_t)*c);
    resize_nearest(raw, *w, *h, *c, *px, AVS_AVSS_SIZE, AVS_AVSS_SIZE);
    free(raw);
    return 0;
}

/* Width and height of a JPEG from its first SOF marker; -1 when none is found. */
static int jpeg_size(const char *path, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    uint8_t b[10];
    int rc = -1;
    if (!f)
        return -1;
    if (fread(b, 1, 2, f) != 2 || b[0] != 0xFF || b[1] != 0xD8)
        goto out;
    while (fread(b, 1, 4, f) == 4 && b[0] == 0xFF) {
        int marker = b[1], len = b[2] << 8 | b[3];
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
            marker != 0xCC) {
            if (fread(b, 1, 5, f) == 5) {
                *h = b[1] << 8 | b[2];
                *w = b[3] << 8 | b[4];
                rc = 0;
            }
            break;
        }
        if (len < 2 || fseek(f, len - 2, SEEK_CUR))
            break;
    }
out:
    fclose(f);
    return rc;
}

/* The label's size must be its frame's (release: frames/<i>.jpg; store: videos.src_*). */
static int check_label_size(const struct avs_avss_frame *fr, int w, int h, struct avs_err *err)
{
    int fw = fr->exp_w, fh = fr->exp_h;
    if (fr->image && jpeg_size(fr->image, &fw, &fh))
        fw = fh = 0; /* no readable frame: nothing to compare with */
    if (fw > 0 && fh > 0 && (fw != w || fh != h))
        return avs_err_set(err, "label %s is %dx%d but its frame %s is %dx%d (a label of "
                                "another frame? re-export the label at the frame's size)",
                           fr->gt, w, h, fr->image ? fr->image : "(store)", fw, fh);
    return 0;
}

int avs_avss_read_label(const struct avs_avss_frame *fr, int n_classes, uint8_t *out, int64_t *unknown,
                        struct avs_err *err)
{
    *unknown = 0;
    if (fr->gt_kind == AVS_AVSS_GT_NONE) {
        memset(out, 0, (size_t)NPIX);
        return 0;
    }
    uint8_t *px = NULL;
    int c, w, h, rc = -1;
    if (png_at_224(fr->gt, &px, &c, &w, &h, err) || check_label_size(fr, w, h, err))
        goto out;
    if (fr->gt_kind == AVS_AVSS_GT_INDEX && c != 1) {
        avs_err_set(err, "class mask %s has colour pixels: a store mask holds class "
                         "indices (re-ingest the AVSS release)", fr->gt);
        goto out;
    }
    for (int64_t i = 0; i < NPIX; i++) {
        int k;
        if (fr->gt_kind == AVS_AVSS_GT_INDEX) {
            k = px[i] == 255 ? -1 : px[i];
            if (k >= n_classes) {
                avs_err_set(err, "class mask %s: value %d is no class (0..%d, 255 = unknown)",
                            fr->gt, k, n_classes - 1);
                goto out;
            }
        } else {
            const uint8_t *p = c == 3 ? px + 3 * i : px + i;
            k = c == 3 ? class_of_rgb(p[0], p[1], p[2], n_classes)
                       : class_of_rgb(p[0], p[0], p[0], n_classes);
        }
        *unknown += k < 0; /* ref color_mask_to_label: argmax of all-false -> class 0 */
        out[i] = (uint8_t)(k < 0 ? 0 : k);
    }
    rc = 0;
out:
    free(px);
    return rc;
}

static int pred_png(const char *path, int n_classes, uint8_t *out, struct avs_err *err)
{
    uint8_t *px = NULL;
    int c, w, h, rc = -1;
    if (png_at_224(path, &px, &c, &w, &h, err))
        return -1;
    for (int64_t i = 0; i < NPIX; i++) {
        int k = c == 1 ? px[i] : class_of_rgb(px[3 * i], px[3 * i + 1], px[3 * i + 2], n_classes);
        if (c == 1 && k >= n_classes) {
            avs_err_set(err, "prediction %s: class index %d at pixel (%d, %d) of the 224x224 "
                             "map; classes are 0..%d", path, k, (int)(i % AVS_AVSS_SIZE),
                        (int)(i / AVS_AVSS_SIZE), n_classes - 1);
            goto out;
        }
        if (k < 0) {
            avs_err_set(err, "prediction %s: colour (%d, %d, %d) at pixel (%d, %d) of the "
                             "224x224 map is not in the AVSS palette (save with the palette, "
                             "no smoothing: resize with NEAREST)", path, px[3 * i],
                        px[3 * i + 1], px[3 * i + 2], (int)(i % AVS_AVSS_SIZE),
                        (int)(i / AVS_AVSS_SIZE));
            goto out;
        }
        out[i] = (uint8_t)k;
    }
    rc = 0;
out:
    free(px);
    return rc;
}

/* Class logits [C][h][w] of any size: the argmax per pixel (the first index wins ties, as
 * torch.argmax), resized NEAREST to 224x224 like a PNG prediction. */
static int pred_logits(const char *path, int n_classes, uint8_t *out, struct avs_err *err)
{
    float *x = NULL;
    int c, w, h;
    if (avs_logits_read_c(path, &x, &c, &w, &h, err))
        return -1;
    if (c != n_classes) {
        free(x);
        return avs_err_set(err, "logits %s have %d channels; this class table has %d classes "
                                "(evaluate against the store or release the run was trained on)",
                           path, c, n_classes);
    }
    size_t np = (size_t)w * h;
    float *best = avs_malloc(sizeof(float) * np);
    uint8_t *arg = avs_calloc(np, 1);
    memcpy(best, x, sizeof(float) * np);
    for (int k = 1; k < n_classes; k++) {
        const float *xk = x + (size_t)k * np;
        for (size_t i = 0; i < np; i++)
            if (xk[i] > best[i]) {
                best[i] = xk[i];
                arg[i] = (uint8_t)k;
            }
    }
    resize_nearest(arg, w, h, 1, out, AVS_AVSS_SIZE, AVS_AVSS_SIZE);
    free(arg);
    free(best);
    free(x);
    return 0;
}

int avs_avss_read_pred(const char *path, int n_classes, uint8_t *out, struct avs_err *err)
{
    size_t n = strlen(path);
    if (n > 7 && !strcmp(path + n - 7, ".logits"))
        return pred_logits(path, n_classes, out, err);
    return pred_png(path, n_classes, out, err);
}

void avs_avss_count(const uint8_t *pred, const uint8_t *lab, int64_t n, struct avs_avss_counts *c)
{
    int64_t unknown = c->unknown;
    memset(c, 0, sizeof *c);
    c->unknown = unknown;
    int32_t joint[AVS_AVSS_MAX_CLASSES][2] = {{0}}; /* [pred class][label == pred] */
    for (int64_t i = 0; i < n; i++) {
        joint[pred[i]][pred[i] == lab[i]]++;
        c->lab[lab[i]]++;
    }
    for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
        c->pred[k] = joint[k][0] + joint[k][1];
        c->inter[k] = joint[k][1];
    }
}
