/* eval/png_index.c: mask PNGs as one 8-bit value per pixel, through libpng's low-level API.
 *
 * core/png.c (simplified API) expands palettes to colours; the official MS3 loader instead
 * reads palette images as their INDEX (PIL mode 'P', torchvision ToTensor -> index/255), so
 * masks need the indices. Reading rows straight into the value plane also avoids an RGB copy:
 * PNG decoding is the evaluator's floor.
 */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/image.h"
#include "eval/eval.h"
#include "eval/png_in.h"

struct reader {
    struct avs_png_in in;
    const char *path;
    enum avs_eval_role role;
    uint8_t *plane; /* [h][w] result */
    uint8_t *row;   /* one decoded row, channels interleaved */
};

static void on_error(png_structp png, png_const_charp msg)
{
    struct avs_png_in *in = png_get_error_ptr(png);
    snprintf(in->msg, sizeof in->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int avs_png_in_open(struct avs_png_in *in, const char *path, struct avs_err *err)
{
    memset(in, 0, sizeof *in);
    if (!(in->f = fopen(path, "rb")))
        return avs_err_set(err, "cannot open %s: %m (check the path)", path);
    uint8_t sig[8];
    if (fread(sig, 1, 8, in->f) != 8 || png_sig_cmp(sig, 0, 8)) {
        avs_png_in_close(in);
        return avs_err_set(err, "%s is not a PNG file (bad signature)", path);
    }
    in->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, in, on_error, on_warning);
    AVS_ASSERT(in->png);
    in->info = png_create_info_struct(in->png);
    AVS_ASSERT(in->info);
    png_set_sig_bytes(in->png, 8);
    png_init_io(in->png, in->f);
    return 0;
}

int avs_png_in_holds(struct avs_png_in *in, png_uint_32 w, png_uint_32 h)
{
    struct stat st;
    if (fstat(fileno(in->f), &st) || avs_png_size_plausible((uint64_t)st.st_size, w, h))
        return 1;
    snprintf(in->msg, sizeof in->msg, "its header says %ux%u pixels, more than its %lld bytes can "
             "hold: the file is damaged (re-copy or re-export it)", w, h, (long long)st.st_size);
    return 0;
}

void avs_png_in_close(struct avs_png_in *in)
{
    if (in->png)
        png_destroy_read_struct(&in->png, &in->info, NULL);
    if (in->f)
        fclose(in->f);
    memset(in, 0, sizeof *in);
}

/* Collapse one decoded row of `c` channels to values; -1 for a colour prediction pixel. */
static int collapse_row(const uint8_t *row, int c, int w, enum avs_eval_role role, uint8_t *out)
{
    if (c <= 2) {
        for (int x = 0; x < w; x++)
            out[x] = row[x * c];
        return 0;
    }
    for (int x = 0; x < w; x++) {
        const uint8_t *p = row + x * c;
        if (role == AVS_EVAL_GT) {
            out[x] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2]) / 1000);
        } else {
            if (p[0] != p[1] || p[1] != p[2])
                return -1;
            out[x] = p[0];
        }
    }
    return 0;
}

/* A palette mask whose indices are all below 128 (say 0/1) has no foreground under the
 * official loader's reading (index/255 >= 0.5); say so once, it is probably not intended. */
static void warn_low_indices(const char *path, const uint8_t *plane, size_t n)
{
    static int warned;
    uint8_t max = 0;
    for (size_t i = 0; i < n; i++)
        max = plane[i] > max ? plane[i] : max;
    if (max > 0 && max < 128 && !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
        avs_log_warn("%s: palette mask with indices 0..%d only: foreground is index >= 128 (the "
                     "official loader reads index/255), so it counts as empty; remap the indices "
                     "(e.g. 1 -> 255) if that is not intended", path, max);
}

/* The part of the read that may longjmp; every object it creates hangs off `r`. */
static int decode(struct reader *r, int *w_out, int *h_out)
{
    if (setjmp(png_jmpbuf(r->in.png)))
        return -1;
    png_read_info(r->in.png, r->in.info);
    png_uint_32 w = png_get_image_width(r->in.png, r->in.info);
    png_uint_32 h = png_get_image_height(r->in.png, r->in.info);
    int depth = png_get_bit_depth(r->in.png, r->in.info);
    int type = png_get_color_type(r->in.png, r->in.info);
    if (depth == 16) {
        snprintf(r->in.msg, sizeof r->in.msg, "16-bit PNG; masks must be 8-bit (convert it, e.g. "
                                        "`convert in.png -depth 8 out.png`)");
        return -1;
    }
    if (png_get_interlace_type(r->in.png, r->in.info) != PNG_INTERLACE_NONE) {
        snprintf(r->in.msg, sizeof r->in.msg, "interlaced PNG is not supported; re-save it "
                                        "without interlacing");
        return -1;
    }
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_packing(r->in.png); /* indices stay indices, one byte each */
    else if (depth < 8)
        png_set_expand_gray_1_2_4_to_8(r->in.png);
    png_read_update_info(r->in.png, r->in.info);
    int c = png_get_channels(r->in.png, r->in.info);
    size_t rowbytes = png_get_rowbytes(r->in.png, r->in.info), n;
    if (w == 0 || h == 0 || w > 65535 || h > 65535 || rowbytes != (size_t)w * (size_t)c ||
        avs_size_mul(w, h, &n)) {
        snprintf(r->in.msg, sizeof r->in.msg, "unsupported PNG layout (%ux%u, %d channels)", w, h, c);
        return -1;
    }
    if (!avs_png_in_holds(&r->in, w, h))
        return -1;
    r->plane = avs_malloc(n);
    r->row = avs_malloc(rowbytes);
    for (png_uint_32 y = 0; y < h; y++) {
        png_read_row(r->in.png, r->row, NULL);
        if (collapse_row(r->row, c, (int)w, r->role, r->plane + (size_t)y * w)) {
            snprintf(r->in.msg, sizeof r->in.msg, "colour PNG (R, G, B differ at row %u): a "
                                            "prediction must be a gray probability map", y);
            return -1;
        }
    }
    png_read_end(r->in.png, NULL);
    if (type == PNG_COLOR_TYPE_PALETTE && r->role == AVS_EVAL_GT)
        warn_low_indices(r->path, r->plane, n);
    *w_out = (int)w;
    *h_out = (int)h;
    return 0;
}

int avs_eval_png_read(const char *path, enum avs_eval_role role, uint8_t **plane, int *w, int *h,
                      struct avs_err *err)
{
    struct reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.role = role;
    int rc = -1, ww = 0, hh = 0;
    if (avs_png_in_open(&r.in, path, err))
        return -1;
    if (decode(&r, &ww, &hh)) {
        avs_err_set(err, "cannot read PNG %s: %s", path, r.in.msg[0] ? r.in.msg : "decode error");
        goto out;
    }
    *plane = r.plane;
    r.plane = NULL;
    *w = ww;
    *h = hh;
    rc = 0;
out:
    avs_png_in_close(&r.in);
    free(r.plane);
    free(r.row);
    return rc;
}
