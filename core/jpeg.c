/* core/jpeg.c: JPEG stills through libav* (FFmpeg's mjpeg decoder and encoder): the frames of
 * the AVSS release (read) and of avs-synth's AVSS folders (write). Declared in core/image.h.
 *
 * Reading converts the decoded YUV to RGB24 with swscale using full-resolution chroma
 * interpolation and accurate rounding; libjpeg's "fancy upsampling" (what PIL uses) differs by
 * at most a few levels at colour edges. Writing: baseline JPEG, 4:2:0, full range (yuvj420p),
 * fixed quantiser, bit-exact flags (same pixels, same bytes).
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/av.h"
#include "core/fs.h"
#include "core/image.h"

static int frame_to_rgb(const AVFrame *f, struct avs_image *img, const char *path,
                        struct avs_err *err)
{
    int flags = SWS_BILINEAR | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP | SWS_ACCURATE_RND;
    struct SwsContext *sws = sws_getContext(f->width, f->height, f->format, f->width, f->height,
                                            AV_PIX_FMT_RGB24, flags, NULL, NULL, NULL);
    if (!sws)
        return avs_err_set(err, "%s: cannot convert pixel format %s to RGB", path,
                           av_get_pix_fmt_name(f->format));
    struct avs_image out = {0};
    if (avs_image_alloc(&out, f->width, f->height, 3)) {
        sws_freeContext(sws);
        return avs_err_set(err, "%s: image size %dx%d too large", path, f->width, f->height);
    }
    /* swscale's SIMD may write past a packed row: convert into padded rows, then pack. */
    int stride = (3 * f->width + 63) & ~63;
    uint8_t *tmp = avs_malloc((size_t)stride * (size_t)(f->height + 1) + 64);
    uint8_t *dst[4] = {tmp, NULL, NULL, NULL};
    int strides[4] = {stride, 0, 0, 0};
    sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, strides);
    sws_freeContext(sws);
    for (int y = 0; y < f->height; y++)
        memcpy(out.data + (size_t)y * 3 * (size_t)f->width, tmp + (size_t)y * (size_t)stride,
               3 * (size_t)f->width);
    free(tmp);
    *img = out;
    return 0;
}

/* The first picture of the file's video stream. */
static int decode_first(AVFormatContext *fmt, AVCodecContext *dec, int stream, AVFrame *f,
                        const char *path, struct avs_err *err)
{
    AVPacket *pkt = av_packet_alloc();
    int ret = 0, got = 0;
    while (!got && (ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == stream && (ret = avcodec_send_packet(dec, pkt)) >= 0)
            got = avcodec_receive_frame(dec, f) >= 0;
        av_packet_unref(pkt);
        if (ret < 0)
            break;
    }
    if (!got && avcodec_send_packet(dec, NULL) >= 0)
        got = avcodec_receive_frame(dec, f) >= 0;
    av_packet_free(&pkt);
    if (!got)
        return avs_av_fail(err, path, "no picture could be decoded (truncated or not an image?)",
                           ret < 0 && ret != AVERROR_EOF ? ret : AVERROR_INVALIDDATA);
    return 0;
}

int avs_jpeg_read(const char *path, struct avs_image *img, struct avs_err *err)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVFrame *f = av_frame_alloc();
    int rc = avs_av_open_input(&fmt, path, err), stream = -1;
    if (!rc && (stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0)) < 0)
        rc = avs_av_fail(err, path, "not an image", stream);
    if (!rc)
        rc = avs_av_open_decoder(&dec, fmt, stream, 1, path, err);
    if (!rc)
        rc = decode_first(fmt, dec, stream, f, path, err);
    if (!rc)
        rc = frame_to_rgb(f, img, path, err);
    av_frame_free(&f);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return rc ? -1 : 0;
}

static int fill_yuv(AVFrame *f, const struct avs_image *img)
{
    struct SwsContext *sws = sws_getContext(img->w, img->h, AV_PIX_FMT_RGB24, img->w, img->h,
                                            AV_PIX_FMT_YUVJ420P, SWS_BILINEAR | SWS_ACCURATE_RND |
                                            SWS_BITEXACT, NULL, NULL, NULL);
    if (!sws)
        return -1;
    /* swscale's SIMD reads whole vectors past a packed row: give it padded rows. */
    int stride = (3 * img->w + 63) & ~63;
    uint8_t *pad = avs_calloc((size_t)stride * (size_t)(img->h + 1) + 64, 1);
    for (int y = 0; y < img->h; y++)
        memcpy(pad + (size_t)y * (size_t)stride, img->data + (size_t)y * 3 * (size_t)img->w,
               3 * (size_t)img->w);
    const uint8_t *src[4] = {pad, NULL, NULL, NULL};
    int strides[4] = {stride, 0, 0, 0};
    sws_scale(sws, src, strides, 0, img->h, f->data, f->linesize);
    sws_freeContext(sws);
    free(pad);
    return 0;
}

/* One picture through the mjpeg encoder; *pkt gets the whole JFIF file. */
static int encode_jpeg(const struct avs_image *img, int quality, AVPacket *pkt, const char *path,
                       struct avs_err *err)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return avs_err_set(err, "%s: libavcodec has no MJPEG encoder", path);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    c->width = f->width = img->w;
    c->height = f->height = img->h;
    c->pix_fmt = f->format = AV_PIX_FMT_YUVJ420P;
    c->color_range = f->color_range = AVCOL_RANGE_JPEG;
    c->time_base = (AVRational){1, 25};
    c->flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT;
    c->global_quality = f->quality = FF_QP2LAMBDA * quality;
    int ret = avcodec_open2(c, codec, NULL);
    if (ret >= 0)
        ret = av_frame_get_buffer(f, 0);
    if (ret >= 0 && fill_yuv(f, img))
        ret = AVERROR(EINVAL);
    if (ret >= 0)
        ret = avcodec_send_frame(c, f);
    if (ret >= 0)
        ret = avcodec_receive_packet(c, pkt);
    av_frame_free(&f);
    avcodec_free_context(&c);
    return ret < 0 ? avs_av_fail(err, path, "encoding JPEG", ret) : 0;
}

int avs_jpeg_write(const char *path, const struct avs_image *img, int quality, struct avs_err *err)
{
    AVS_ASSERT(img->c == 3 && quality >= 1 && quality <= 31);
    AVPacket *pkt = av_packet_alloc();
    int rc = encode_jpeg(img, quality, pkt, path, err);
    if (!rc)
        rc = avs_fs_write_atomic(path, pkt->data, (size_t)pkt->size, err);
    av_packet_free(&pkt);
    return rc;
}
