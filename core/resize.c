/* core/resize.c: bilinear resize with OpenCV INTER_LINEAR conventions, as the official AVSBench
 * frames were made (cv2.resize(img, (224, 224)) on 8-bit RGB).
 *
 * ref: OpenCV imgproc/src/resize.cpp, resizeGeneric_ with HResizeLinear (8u->32s) and
 * VResizeLinear with VResizeLinearVec_32s8u. Conventions reproduced here:
 *  - pixel centres at +0.5: f = (d + 0.5) * (src/dst) - 0.5 computed in double, then float;
 *    s = floor(f), a = f - s; s < 0 -> (s, a) = (0, 0); s >= size-1 -> (size-1, 0).
 *  - no antialiasing when shrinking (only the two nearest samples contribute).
 *  - fixed point: weights round((1-a)*2048) and 2048 minus that (11 bits); the horizontal
 *    pass keeps int sums (value*2048); the vertical pass computes, as OpenCV's SIMD path,
 *    ((r0>>4)*b0 >> 16) + ((r1>>4)*b1 >> 16), then (+2) >> 2; rows clamped to the image.
 * Agreement with cv2.resize is checked by tests/test_resize.c on a fixture made with cv2.
 */
#include <math.h>
#include <stdlib.h>

#include "core/image.h"

#define COEF_BITS 11
#define COEF_ONE (1 << COEF_BITS)

/* Source index and fixed-point weights for each destination index along one axis. */
static void axis_table(int ssize, int dsize, int *ofs, short *w0, short *w1)
{
    double scale = (double)ssize / (double)dsize;
    for (int d = 0; d < dsize; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (s < 0)
            s = 0, f = 0.f;
        if (s >= ssize - 1)
            s = ssize - 1, f = 0.f;
        ofs[d] = s;
        w0[d] = (short)lrintf((1.f - f) * COEF_ONE);
        w1[d] = (short)(COEF_ONE - w0[d]);
    }
}

/* One source row -> int row of dst width (values scaled by 2048). */
static void hresize_row(const uint8_t *src, int sw, int c, int dw, const int *xofs,
                        const short *a0, const short *a1, int *out)
{
    for (int dx = 0; dx < dw; dx++) {
        int sx = xofs[dx];
        int sx1 = sx + 1 < sw ? sx + 1 : sx;
        for (int ch = 0; ch < c; ch++)
            out[dx * c + ch] = src[sx * c + ch] * a0[dx] + src[sx1 * c + ch] * a1[dx];
    }
}

static uint8_t vmix(int r0, int r1, short b0, short b1)
{
    int y = (((r0 >> 4) * b0) >> 16) + (((r1 >> 4) * b1) >> 16);
    y = (y + 2) >> 2;
    return (uint8_t)(y < 0 ? 0 : y > 255 ? 255 : y);
}

void avs_image_resize_bilinear(const struct avs_image *src, struct avs_image *dst)
{
    AVS_ASSERT(src->c == dst->c && src->w > 0 && src->h > 0 && dst->w > 0 && dst->h > 0);
    int c = src->c, dw = dst->w, dh = dst->h;
    int *xofs = avs_malloc(sizeof(int) * (size_t)dw), *yofs = avs_malloc(sizeof(int) * (size_t)dh);
    short *a0 = avs_malloc(sizeof(short) * (size_t)dw), *a1 = avs_malloc(sizeof(short) * (size_t)dw);
    short *b0 = avs_malloc(sizeof(short) * (size_t)dh), *b1 = avs_malloc(sizeof(short) * (size_t)dh);
    int *r0 = avs_malloc(sizeof(int) * (size_t)dw * (size_t)c);
    int *r1 = avs_malloc(sizeof(int) * (size_t)dw * (size_t)c);
    axis_table(src->w, dw, xofs, a0, a1);
    /* Rows: OpenCV clamps the second row index rather than the weight. */
    double scale = (double)src->h / (double)dh;
    for (int dy = 0; dy < dh; dy++) {
        float f = (float)((dy + 0.5) * scale - 0.5);
        int sy = (int)floorf(f);
        f -= (float)sy;
        yofs[dy] = sy;
        b0[dy] = (short)lrintf((1.f - f) * COEF_ONE);
        b1[dy] = (short)(COEF_ONE - b0[dy]);
    }
    size_t stride = (size_t)src->w * (size_t)c;
    for (int dy = 0; dy < dh; dy++) {
        int y0 = yofs[dy], y1 = yofs[dy] + 1;
        y0 = y0 < 0 ? 0 : y0 >= src->h ? src->h - 1 : y0;
        y1 = y1 < 0 ? 0 : y1 >= src->h ? src->h - 1 : y1;
        hresize_row(src->data + (size_t)y0 * stride, src->w, c, dw, xofs, a0, a1, r0);
        hresize_row(src->data + (size_t)y1 * stride, src->w, c, dw, xofs, a0, a1, r1);
        uint8_t *out = dst->data + (size_t)dy * (size_t)dw * (size_t)c;
        for (int i = 0; i < dw * c; i++)
            out[i] = vmix(r0[i], r1[i], b0[dy], b1[dy]);
    }
    free(xofs), free(yofs), free(a0), free(a1), free(b0), free(b1), free(r0), free(r1);
}
