/* core/png.c: PNG through libpng's simplified API (png_image). */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/image.h"

int avs_image_alloc(struct avs_image *img, int w, int h, int c)
{
    size_t n;
    AVS_ASSERT(w > 0 && h > 0 && c >= 1 && c <= 4);
    if (avs_size_mul((size_t)w, (size_t)h, &n) || avs_size_mul(n, (size_t)c, &n))
        return -1;
    img->w = w;
    img->h = h;
    img->c = c;
    img->data = avs_calloc(n, 1);
    return 0;
}

void avs_image_free(struct avs_image *img)
{
    if (img) {
        free(img->data);
        img->data = NULL;
        img->w = img->h = img->c = 0;
    }
}

static int format_channels(png_uint_32 format)
{
    return (int)PNG_IMAGE_SAMPLE_CHANNELS(format);
}

int avs_png_size_plausible(uint64_t file_bytes, uint32_t w, uint32_t h)
{
    double raw_min = (double)h * ((double)w / 8.0 + 1.0);
    return raw_min <= 1032.0 * (double)file_bytes + 1024.0;
}

int avs_png_read(const char *path, struct avs_image *img, int *src_bits, struct avs_err *err)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return avs_err_set(err, "cannot read PNG %s: %s", path, pi.message);
    int bits = (pi.format & PNG_FORMAT_FLAG_LINEAR) ? 16 : 8;
    pi.format &= ~(png_uint_32)(PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLORMAP);
    struct avs_image out = {0};
    struct stat st;
    if (stat(path, &st) == 0 && !avs_png_size_plausible((uint64_t)st.st_size, pi.width, pi.height)) {
        png_image_free(&pi);
        return avs_err_set(err, "PNG %s: its header says %ux%u pixels, more than its %lld bytes "
                           "can hold: the file is damaged (re-copy or re-export it)", path,
                           pi.width, pi.height, (long long)st.st_size);
    }
    if (pi.width > INT32_MAX || pi.height > INT32_MAX ||
        avs_image_alloc(&out, (int)pi.width, (int)pi.height, format_channels(pi.format))) {
        png_image_free(&pi);
        return avs_err_set(err, "PNG %s: image size %ux%u too large", path, pi.width, pi.height);
    }
    if (!png_image_finish_read(&pi, NULL, out.data, 0, NULL)) {
        avs_image_free(&out);
        return avs_err_set(err, "cannot decode PNG %s: %s (file truncated or corrupt?)", path,
                           pi.message);
    }
    *img = out;
    if (src_bits)
        *src_bits = bits;
    return 0;
}

static png_uint_32 channels_format(int c)
{
    switch (c) {
    case 1: return PNG_FORMAT_GRAY;
    case 2: return PNG_FORMAT_GA;
    case 3: return PNG_FORMAT_RGB;
    default: return PNG_FORMAT_RGBA;
    }
}

static void setup_write(png_image *pi, const struct avs_image *img, int fast)
{
    memset(pi, 0, sizeof *pi);
    pi->version = PNG_IMAGE_VERSION;
    pi->width = (png_uint_32)img->w;
    pi->height = (png_uint_32)img->h;
    pi->format = channels_format(img->c);
    if (fast)
        pi->flags |= PNG_IMAGE_FLAG_FAST;
}

static int encode(const struct avs_image *img, int fast, uint8_t **out, size_t *len, struct avs_err *err)
{
    png_image pi;
    setup_write(&pi, img, fast);
    png_alloc_size_t n = 0;
    if (!png_image_write_get_memory_size(pi, n, 0, img->data, 0, NULL))
        return avs_err_set(err, "cannot encode PNG: %s", pi.message);
    uint8_t *buf = avs_malloc(n);
    if (!png_image_write_to_memory(&pi, buf, &n, 0, img->data, 0, NULL)) {
        free(buf);
        return avs_err_set(err, "cannot encode PNG: %s", pi.message);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Encoded in memory, then written with write(2) (core/fs.h): a full disk or an I/O error is
 * reported as such (core/fs.h), which libpng's stdio writer does not say reliably. */
int avs_png_write(const char *path, const struct avs_image *img, int fast, struct avs_err *err)
{
    uint8_t *buf;
    size_t len;
    if (encode(img, fast, &buf, &len, err))
        return avs_err_wrap(err, "%s", path);
    int rc = avs_fs_write_file(path, buf, len, err);
    free(buf);
    return rc;
}

int avs_png_write_mem(const struct avs_image *img, uint8_t **out, size_t *len, struct avs_err *err)
{
    return encode(img, 0, out, len, err);
}
