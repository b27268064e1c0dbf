/* predict/overlay.c: re-encode a clip with its predicted masks drawn on (predict/overlay.h).
 *
 * Flow (ref: FFmpeg doc/examples/transcode.c, mux.c, remux.c, encode_audio.c):
 *
 *   av_read_frame ──video──▶ decoder ─▶ sws RGB24 ─▶ draw map k ─▶ sws YUV ─▶ libx264 ─┐
 *        │                                     └─▶ <frames_dir>/<k>.png (picked frames) │
 *        ├──audio, codec fits──▶ packet copy (timestamps rescaled) ─────────────────────┤
 *        └──audio, else──▶ decoder ─▶ swr (AAC's FLTP) ─▶ FIFO ─▶ AAC frames ─▶ encoder ─┴▶ mux
 *
 * Timestamps: the video encoder works in the input stream's time base and each frame keeps its
 * decoded timestamp, so the frame count, rate and duration are the input's.
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/av.h"
#include "core/fs.h"
#include "core/image.h"
#include "backend/backend.h"
#include "predict/overlay.h"

/* ---- drawing ------------------------------------------------------------------------------ */

/* mask [H,W] = (bilinear resize of map [mh,mw] to H x W) > 0.5, with the model's own resize
 * (align_corners false: pixel centres as OpenCV INTER_LINEAR) on the active backend: the map
 * (host memory) goes up, the resized one comes back. H, W <= AVS_OVERLAY_MAXW. */
static void map_mask(uint8_t *mask, int H, int W, const float *map, int mh, int mw)
{
    size_t n = (size_t)H * W;
    float *dmap = avs_dev_from_host(map, (size_t)mh * mw), *dp = avs_dev_alloc(n, "an overlay mask");
    avs_ops()->resize_fwd(dp, dmap, 1, mh, mw, H, W, 0);
    float *p = avs_host_from_dev(dp, n);
    for (size_t i = 0; i < n; i++)
        mask[i] = p[i] > 0.5f; /* NaN: not in the mask */
    free(p);
    avs_dev_free(&dmap);
    avs_dev_free(&dp);
}

/* Tint the mask, paint its edge (a pixel with an 8-neighbour of the other kind). */
static void draw_mask(uint8_t *rgb, int H, int W, const uint8_t *mask)
{
    static const uint8_t tint[3] = AVS_OVERLAY_TINT, edge[3] = AVS_OVERLAY_EDGE;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t m = mask[(size_t)y * W + x], *px = rgb + ((size_t)y * W + x) * 3;
            int is_edge = 0;
            for (int dy = -1; dy <= 1 && !is_edge; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy >= 0 && yy < H && xx >= 0 && xx < W && mask[(size_t)yy * W + xx] != m) {
                        is_edge = 1;
                        break;
                    }
                }
            if (is_edge)
                memcpy(px, edge, 3);
            else if (m)
                for (int c = 0; c < 3; c++)
                    px[c] = (uint8_t)((px[c] + tint[c] + 1) / 2);
        }
}

void avs_overlay_draw(uint8_t *rgb, int H, int W, const float *map, int mh, int mw)
{
    uint8_t *mask = avs_malloc((size_t)H * W);
    map_mask(mask, H, W, map, mh, mw);
    draw_mask(rgb, H, W, mask);
    free(mask);
}

/* ---- state -------------------------------------------------------------------------------- */

struct ov {
    const char *in, *out, *frames_dir;
    const float *prob;
    int n, mh, mw;
    char *tmp;                    /* output temp name */
    AVFormatContext *ifmt, *ofmt;
    int vi, ai;                   /* input stream indices (ai -1: no audio) */
    AVStream *vst, *ast;          /* output streams */
    AVCodecContext *vdec, *venc, *adec, *aenc;
    int audio_copy;
    struct SwsContext *to_rgb, *to_yuv;
    SwrContext *swr;
    AVAudioFifo *fifo;
    int64_t a_next;               /* next AAC frame pts (1/sample_rate) */
    AVPacket *pkt, *opkt;
    AVFrame *frame, *yuv, *afr, *aout;
    int W, H;
    uint8_t *rgb, *last;          /* [H,W,3] current frame, last frame before drawing */
    uint8_t *mask;                /* [H,W] of map `cur` */
    int cur;                      /* map index the mask holds (0: none) */
    int64_t first_pts, prev_pts, nframes;
    int F;                        /* round(average frame rate): the picked frames */
    int *png_done;                /* [n] */
};

static int open_input(struct ov *o, struct avs_err *err)
{
    if (avs_av_open_input(&o->ifmt, o->in, err))
        return -1;
    o->vi = av_find_best_stream(o->ifmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (o->vi < 0)
        return avs_err_set(err, "%s: no video stream to draw on", o->in);
    o->ai = av_find_best_stream(o->ifmt, AVMEDIA_TYPE_AUDIO, -1, o->vi, NULL, 0);
    if (o->ai < 0)
        o->ai = -1;
    AVStream *st = o->ifmt->streams[o->vi];
    if (avs_av_open_decoder(&o->vdec, o->ifmt, o->vi, 1, o->in, err))
        return -1;
    o->W = o->vdec->width, o->H = o->vdec->height;
    if (o->W < 1 || o->H < 1)
        return avs_err_set(err, "%s: video stream without a frame size", o->in);
    if (o->W > AVS_OVERLAY_MAXW)
        return avs_err_set(err, "%s: %d pixels wide; overlays are drawn up to %d: scale the clip "
                           "down first (ffmpeg -vf scale=%d:-2)", o->in, o->W, AVS_OVERLAY_MAXW,
                           AVS_OVERLAY_MAXW);
    o->F = (int)lrint(avs_av_fps(st));
    if (o->F < 1)
        o->F = 1;
    return 0;
}

static int open_video_encoder(struct ov *o, struct avs_err *err)
{
    AVStream *ist = o->ifmt->streams[o->vi];
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        return avs_err_set(err, "%s: libavcodec has no libx264 encoder: install an FFmpeg build "
                           "with libx264 (Debian: libavcodec59 + libx264)", o->out);
    o->venc = avcodec_alloc_context3(codec);
    if (!o->venc)
        return avs_err_set(err, "%s: out of memory for the encoder", o->out);
    AVCodecContext *e = o->venc;
    e->width = o->W, e->height = o->H;
    e->pix_fmt = (o->W % 2 || o->H % 2) ? AV_PIX_FMT_YUV444P : AV_PIX_FMT_YUV420P;
    if (e->pix_fmt != AV_PIX_FMT_YUV420P)
        avs_log_warn("%s: odd frame size %dx%d: encoding yuv444p (4:2:0 needs even sides)", o->in,
                     o->W, o->H);
    e->sample_aspect_ratio = o->vdec->sample_aspect_ratio;
    e->time_base = ist->time_base;
    e->framerate = av_guess_frame_rate(o->ifmt, ist, NULL);
    if (o->ofmt->oformat->flags & AVFMT_GLOBALHEADER)
        e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int ret;
    if ((ret = av_opt_set(e->priv_data, "preset", "veryfast", 0)) < 0 ||
        (ret = av_opt_set(e->priv_data, "crf", "18", 0)) < 0)
        return avs_av_fail(err, o->out, "libx264 options", ret);
    if ((ret = avcodec_open2(e, codec, NULL)) < 0)
        return avs_av_fail(err, o->out, "opening the libx264 encoder", ret);
    if (avs_av_new_stream(&o->vst, o->ofmt, e, o->out, err))
        return -1;
    o->vst->avg_frame_rate = ist->avg_frame_rate;
    o->vst->r_frame_rate = ist->r_frame_rate;
    o->vst->sample_aspect_ratio = e->sample_aspect_ratio;
    return 0;
}

static int aac_rate(const AVCodec *c, int want)
{
    if (!c->supported_samplerates)
        return want;
    for (const int *r = c->supported_samplerates; *r; r++)
        if (*r == want)
            return want;
    return 48000;
}

/* The AAC encoder and its converter for an audio stream the container cannot take as it is. */
static int open_audio_encoder(struct ov *o, struct avs_err *err)
{
    if (avs_av_open_decoder(&o->adec, o->ifmt, o->ai, 1, o->in, err))
        return -1;
    if (o->adec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        int nc = o->adec->ch_layout.nb_channels;
        av_channel_layout_uninit(&o->adec->ch_layout);
        av_channel_layout_default(&o->adec->ch_layout, nc > 0 ? nc : 1);
    }
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec)
        return avs_err_set(err, "%s: libavcodec has no AAC encoder", o->out);
    o->aenc = avcodec_alloc_context3(codec);
    if (!o->aenc)
        return avs_err_set(err, "%s: out of memory for the encoder", o->out);
    AVCodecContext *e = o->aenc;
    int ret = av_channel_layout_copy(&e->ch_layout, &o->adec->ch_layout);
    if (ret < 0)
        return avs_av_fail(err, o->out, "audio channel layout", ret);
    e->sample_rate = aac_rate(codec, o->adec->sample_rate);
    e->sample_fmt = AV_SAMPLE_FMT_FLTP;
    e->bit_rate = 64000 * (int64_t)e->ch_layout.nb_channels;
    e->time_base = (AVRational){1, e->sample_rate};
    if (o->ofmt->oformat->flags & AVFMT_GLOBALHEADER)
        e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(e, codec, NULL)) < 0)
        return avs_av_fail(err, o->out, "opening the AAC encoder", ret);
    if ((ret = swr_alloc_set_opts2(&o->swr, &e->ch_layout, e->sample_fmt, e->sample_rate,
                                   &o->adec->ch_layout, o->adec->sample_fmt,
                                   o->adec->sample_rate, 0, NULL)) < 0 ||
        (ret = swr_init(o->swr)) < 0)
        return avs_av_fail(err, o->in, "audio resampler", ret);
    o->fifo = av_audio_fifo_alloc(e->sample_fmt, e->ch_layout.nb_channels, 4 * e->frame_size);
    if (!o->fifo)
        return avs_err_set(err, "%s: out of memory for the audio FIFO", o->out);
    o->a_next = AV_NOPTS_VALUE;
    return avs_av_new_stream(&o->ast, o->ofmt, e, o->out, err);
}

static int open_audio(struct ov *o, struct avs_err *err)
{
    if (o->ai < 0)
        return 0;
    AVStream *ist = o->ifmt->streams[o->ai];
    if (avformat_query_codec(o->ofmt->oformat, ist->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1)
        return open_audio_encoder(o, err);
    o->audio_copy = 1;
    o->ast = avformat_new_stream(o->ofmt, NULL);
    if (!o->ast)
        return avs_err_set(err, "%s: out of memory for a stream", o->out);
    int ret = avcodec_parameters_copy(o->ast->codecpar, ist->codecpar);
    if (ret < 0)
        return avs_av_fail(err, o->out, "audio stream parameters", ret);
    o->ast->codecpar->codec_tag = 0;
    o->ast->time_base = ist->time_base;
    return 0;
}

static int open_output(struct ov *o, struct avs_err *err)
{
    const AVOutputFormat *fmt = av_guess_format(NULL, o->out, NULL);
    if (!fmt || fmt->video_codec == AV_CODEC_ID_NONE || (fmt->flags & AVFMT_NOFILE))
        fmt = av_guess_format("mp4", NULL, NULL);
    if (avs_fs_mkdirs_parent(o->out, err))
        return -1;
    o->tmp = avs_fs_tmp_name(o->out);
    int ret = avformat_alloc_output_context2(&o->ofmt, fmt, NULL, o->tmp);
    if (ret < 0)
        return avs_av_fail(err, o->out, "output container", ret);
    if (open_video_encoder(o, err) || open_audio(o, err))
        return -1;
    if ((ret = avio_open(&o->ofmt->pb, o->tmp, AVIO_FLAG_WRITE)) < 0)
        return avs_av_fail(err, o->tmp, "cannot create the output (is the folder writable?)", ret);
    if ((ret = avformat_write_header(o->ofmt, NULL)) < 0)
        return avs_av_fail(err, o->out, "writing the container header", ret);
    return 0;
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* Send f (NULL: flush) and write every packet the encoder has. */
static int encode(struct ov *o, AVCodecContext *enc, AVStream *st, AVFrame *f, struct avs_err *err)
{
    return avs_av_encode(o->ofmt, enc, st, f, o->opkt, o->out, err);
}

static int write_png(struct ov *o, int k, const uint8_t *frame_rgb, struct avs_err *err)
{
    struct avs_image img = {0};
    if (avs_image_alloc(&img, o->W, o->H, 3))
        return avs_err_set(err, "out of memory for a %dx%d frame", o->W, o->H);
    memcpy(img.data, frame_rgb, (size_t)o->W * o->H * 3);
    avs_overlay_draw(img.data, o->H, o->W, o->prob + (size_t)(k - 1) * o->mh * o->mw, o->mh, o->mw);
    char name[32];
    snprintf(name, sizeof name, "%d.png", k);
    char *path = avs_fs_join(o->frames_dir, name), *tmp = avs_fs_tmp_name(path);
    int rc = avs_png_write(tmp, &img, 1, err) || avs_fs_commit(tmp, path, err) ? -1 : 0;
    if (rc)
        unlink(tmp);
    else
        o->png_done[k - 1] = 1;
    free(path), free(tmp);
    avs_image_free(&img);
    return rc;
}

/* One decoded video frame: PNGs of the seconds that pick it, the map drawn, encoded. */
static int video_frame(struct ov *o, AVFrame *f, struct avs_err *err)
{
    if (f->width != o->W || f->height != o->H)
        return avs_err_set(err, "%s: the frame size changes mid-stream (%dx%d, then %dx%d): "
                           "re-encode the clip to one size first", o->in, o->W, o->H, f->width, f->height);
    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE)
        pts = o->nframes ? o->prev_pts + 1 : 0;
    if (o->nframes && pts <= o->prev_pts)
        pts = o->prev_pts + 1; /* the encoder needs increasing timestamps */
    if (!o->nframes)
        o->first_pts = pts;
    o->prev_pts = pts;
    o->to_rgb = sws_getCachedContext(o->to_rgb, o->W, o->H, f->format, o->W, o->H, AV_PIX_FMT_RGB24,
                                     SWS_BICUBIC, NULL, NULL, NULL); /* as ingest/decode.c */
    if (!o->to_rgb)
        return avs_err_set(err, "%s: cannot convert %s frames to RGB", o->in,
                           av_get_pix_fmt_name(f->format));
    uint8_t *dst[4] = {o->rgb, NULL, NULL, NULL};
    int ls[4] = {3 * o->W, 0, 0, 0};
    sws_scale(o->to_rgb, (const uint8_t *const *)f->data, f->linesize, 0, o->H, dst, ls);
    memcpy(o->last, o->rgb, (size_t)o->W * o->H * 3);
    for (int k = 1; o->frames_dir && k <= o->n; k++)
        if (!o->png_done[k - 1] && (int64_t)(k - 1) * o->F + (15 * o->F) / 16 == o->nframes &&
            write_png(o, k, o->rgb, err))
            return -1;
    double t = (double)(pts - o->first_pts) * av_q2d(o->ifmt->streams[o->vi]->time_base);
    int k = (int)floor(t + 1e-9) + 1;
    k = k < 1 ? 1 : k > o->n ? o->n : k;
    if (k != o->cur) {
        map_mask(o->mask, o->H, o->W, o->prob + (size_t)(k - 1) * o->mh * o->mw, o->mh, o->mw);
        o->cur = k;
    }
    draw_mask(o->rgb, o->H, o->W, o->mask);
    int ret = av_frame_make_writable(o->yuv);
    if (ret < 0)
        return avs_av_fail(err, o->out, "frame buffer", ret);
    const uint8_t *src[4] = {o->rgb, NULL, NULL, NULL};
    sws_scale(o->to_yuv, src, ls, 0, o->H, o->yuv->data, o->yuv->linesize);
    o->yuv->pts = pts;
    o->yuv->pict_type = AV_PICTURE_TYPE_NONE;
    o->nframes++;
    return encode(o, o->venc, o->vst, o->yuv, err);
}

/* AAC frames out of the FIFO: full ones, and at the end (flush) the rest. */
static int audio_drain(struct ov *o, int flush, struct avs_err *err)
{
    int fs = o->aenc->frame_size;
    while (av_audio_fifo_size(o->fifo) >= fs || (flush && av_audio_fifo_size(o->fifo) > 0)) {
        int ns = FFMIN(fs, av_audio_fifo_size(o->fifo));
        av_frame_unref(o->aout);
        o->aout->nb_samples = ns;
        o->aout->format = o->aenc->sample_fmt;
        o->aout->sample_rate = o->aenc->sample_rate;
        int ret = av_channel_layout_copy(&o->aout->ch_layout, &o->aenc->ch_layout);
        if (ret >= 0)
            ret = av_frame_get_buffer(o->aout, 0);
        if (ret < 0)
            return avs_av_fail(err, o->out, "audio frame", ret);
        if (av_audio_fifo_read(o->fifo, (void **)o->aout->data, ns) < ns)
            return avs_err_set(err, "%s: audio FIFO read short", o->out);
        o->aout->pts = o->a_next;
        o->a_next += ns;
        if (encode(o, o->aenc, o->ast, o->aout, err))
            return -1;
    }
    return 0;
}

/* One decoded audio frame (NULL: flush the resampler) into the FIFO, then whole AAC frames. */
static int audio_frame(struct ov *o, AVFrame *f, struct avs_err *err)
{
    if (o->a_next == AV_NOPTS_VALUE) {
        int64_t p = f && f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : 0;
        o->a_next = av_rescale_q(p, o->ifmt->streams[o->ai]->time_base, o->aenc->time_base);
    }
    if (!f && swr_get_out_samples(o->swr, 0) <= 0)
        return 0; /* nothing buffered in the resampler */
    av_frame_unref(o->afr);
    o->afr->format = o->aenc->sample_fmt;
    o->afr->sample_rate = o->aenc->sample_rate;
    int ret = av_channel_layout_copy(&o->afr->ch_layout, &o->aenc->ch_layout);
    if (ret >= 0)
        ret = swr_convert_frame(o->swr, o->afr, f);
    if (ret < 0)
        return avs_av_fail(err, o->in, "resampling audio", ret);
    if (o->afr->nb_samples > 0 &&
        av_audio_fifo_write(o->fifo, (void **)o->afr->data, o->afr->nb_samples) < o->afr->nb_samples)
        return avs_err_set(err, "%s: out of memory in the audio FIFO", o->out);
    return audio_drain(o, 0, err);
}

/* Send pkt (NULL: flush) to dec and hand every frame to the stream's handler. */
static int decode(struct ov *o, AVCodecContext *dec, const AVPacket *pkt, int video,
                  struct avs_err *err)
{
    int ret = avcodec_send_packet(dec, pkt);
    if (ret < 0 && ret != AVERROR_INVALIDDATA)
        return avs_av_fail(err, o->in, video ? "decoding video" : "decoding audio", ret);
    for (;;) {
        ret = avcodec_receive_frame(dec, o->frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return avs_av_fail(err, o->in, video ? "decoding video" : "decoding audio", ret);
        int rc = video ? video_frame(o, o->frame, err) : audio_frame(o, o->frame, err);
        av_frame_unref(o->frame);
        if (rc)
            return -1;
    }
}

static int copy_packet(struct ov *o, AVPacket *p, struct avs_err *err)
{
    av_packet_rescale_ts(p, o->ifmt->streams[o->ai]->time_base, o->ast->time_base);
    p->stream_index = o->ast->index;
    p->pos = -1;
    int ret = av_interleaved_write_frame(o->ofmt, p);
    return ret < 0 ? avs_av_fail(err, o->out, "writing an audio packet", ret) : 0;
}

static int run(struct ov *o, struct avs_err *err)
{
    int ret;
    while ((ret = av_read_frame(o->ifmt, o->pkt)) >= 0) {
        int rc = 0;
        if (o->pkt->stream_index == o->vi)
            rc = decode(o, o->vdec, o->pkt, 1, err);
        else if (o->pkt->stream_index == o->ai)
            rc = o->audio_copy ? copy_packet(o, o->pkt, err) : decode(o, o->adec, o->pkt, 0, err);
        av_packet_unref(o->pkt);
        if (rc)
            return -1;
    }
    if (ret != AVERROR_EOF)
        return avs_av_fail(err, o->in, "reading", ret);
    if (decode(o, o->vdec, NULL, 1, err) || encode(o, o->venc, o->vst, NULL, err))
        return -1;
    if (o->aenc && o->a_next != AV_NOPTS_VALUE &&
        (decode(o, o->adec, NULL, 0, err) || audio_frame(o, NULL, err) || audio_drain(o, 1, err) ||
         encode(o, o->aenc, o->ast, NULL, err)))
        return -1;
    if (!o->nframes)
        return avs_err_set(err, "%s: no video frame could be decoded", o->in);
    for (int k = 1; o->frames_dir && k <= o->n; k++)  /* picked past the end: the last frame */
        if (!o->png_done[k - 1] && write_png(o, k, o->last, err))
            return -1;
    if ((ret = av_write_trailer(o->ofmt)) < 0)
        return avs_av_fail(err, o->out, "finishing the container", ret);
    return 0;
}

static int alloc_buffers(struct ov *o, struct avs_err *err)
{
    o->pkt = av_packet_alloc(), o->opkt = av_packet_alloc();
    o->frame = av_frame_alloc(), o->yuv = av_frame_alloc();
    o->afr = av_frame_alloc(), o->aout = av_frame_alloc();
    if (!o->pkt || !o->opkt || !o->frame || !o->yuv || !o->afr || !o->aout)
        return avs_err_set(err, "out of memory for libav buffers");
    o->yuv->format = o->venc->pix_fmt, o->yuv->width = o->W, o->yuv->height = o->H;
    int ret = av_frame_get_buffer(o->yuv, 0);
    if (ret < 0)
        return avs_av_fail(err, o->out, "frame buffer", ret);
    o->to_yuv = sws_getContext(o->W, o->H, AV_PIX_FMT_RGB24, o->W, o->H, o->venc->pix_fmt,
                               SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!o->to_yuv)
        return avs_err_set(err, "%s: no RGB -> %s converter", o->out, av_get_pix_fmt_name(o->venc->pix_fmt));
    o->rgb = avs_malloc((size_t)o->W * o->H * 3);
    o->last = avs_malloc((size_t)o->W * o->H * 3);
    o->mask = avs_malloc((size_t)o->W * o->H);
    o->png_done = avs_calloc((size_t)o->n, sizeof(int));
    if (o->frames_dir && avs_fs_mkdirs(o->frames_dir, err))
        return -1;
    return 0;
}

static void close_all(struct ov *o)
{
    avcodec_free_context(&o->vdec);
    avcodec_free_context(&o->venc);
    avcodec_free_context(&o->adec);
    avcodec_free_context(&o->aenc);
    avformat_close_input(&o->ifmt);
    avs_av_close_output(&o->ofmt);
    sws_freeContext(o->to_rgb);
    sws_freeContext(o->to_yuv);
    swr_free(&o->swr);
    if (o->fifo)
        av_audio_fifo_free(o->fifo);
    av_packet_free(&o->pkt);
    av_packet_free(&o->opkt);
    av_frame_free(&o->frame);
    av_frame_free(&o->yuv);
    av_frame_free(&o->afr);
    av_frame_free(&o->aout);
    free(o->rgb), free(o->last), free(o->mask), free(o->png_done), free(o->tmp);
}

int avs_overlay_video(const char *in, const char *out, const char *frames_dir, const float *prob,
                      int n, int mh, int mw, struct avs_err *err)
{
    AVS_ASSERT(prob && n >= 1 && mh >= 1 && mw >= 1);
    struct ov o;
    memset(&o, 0, sizeof o);
    o.in = in, o.out = out, o.frames_dir = frames_dir, o.prob = prob;
    o.n = n, o.mh = mh, o.mw = mw, o.ai = -1;
    int rc = -1;
    if (open_input(&o, err) || open_output(&o, err) || alloc_buffers(&o, err) || run(&o, err))
        goto out;
    if (avio_closep(&o.ofmt->pb) < 0) {
        avs_err_set(err, "%s: closing the output failed (disk full?)", o.tmp);
        goto out;
    }
    if (avs_fs_commit(o.tmp, out, err))
        goto out;
    rc = 0;
out:
    if (rc && o.tmp)
        unlink(o.tmp);
    close_all(&o);
    return rc;
}
