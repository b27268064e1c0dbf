/* synth/mp4.c: write an mp4 like a YouTube download: H.264 (libx264, yuv420p BT.601 limited
 * range, constant frame rate, time base 1/fps) and AAC-LC stereo (FFmpeg's native encoder) at
 * AVS_SYNTH_RATE (ref: FFmpeg doc/examples/mux.c).
 * Determinism: bit-exact flags keep the file free of version strings and dates; libx264 runs
 * with one thread and without its AVX-512 code (see open_video); RGB -> YUV is done here in
 * integer arithmetic (no dependence on the swscale version) and the frames' row padding is
 * always initialised (see fill_padding). */
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/cpu.h>
#include <libavutil/opt.h>

#include "core/av.h"
#include "synth/synth.h"

struct avs_mp4 {
    AVFormatContext *fmt;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVFrame *vframe, *aframe;
    AVPacket *pkt;
    int w, h;
    int64_t next_vpts, next_apts;
    int failed;
    char *path;
};

/* Send one frame (or NULL to flush) and write every packet it yields. */
static int encode(struct avs_mp4 *m, AVCodecContext *enc, AVStream *st, AVFrame *frame,
                  struct avs_err *err)
{
    return avs_av_encode(m->fmt, enc, st, frame, m->pkt, m->path, err);
}

static int open_video(struct avs_mp4 *m, int fps, int crf, struct avs_err *err)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        return avs_err_set(err, "%s: libavcodec has no libx264 encoder: install Debian's "
                           "libavcodec (bash scripts/deps.sh)", m->path);
    AVCodecContext *c = m->venc = avcodec_alloc_context3(codec);
    AVS_ASSERT(c);
    c->width = m->w;
    c->height = m->h;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->colorspace = AVCOL_SPC_SMPTE170M;
    c->color_primaries = AVCOL_PRI_SMPTE170M;
    c->color_trc = AVCOL_TRC_SMPTE170M;
    c->color_range = AVCOL_RANGE_MPEG;
    c->time_base = (AVRational){1, fps};
    c->framerate = (AVRational){fps, 1};
    c->gop_size = 2 * fps;
    c->thread_count = 1;
    c->flags |= AV_CODEC_FLAG_BITEXACT;
    if (m->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(c->priv_data, "preset", "fast", 0);
    av_opt_set_int(c->priv_data, "crf", crf, 0);
    /* libx264's AVX-512 code makes the bitstream depend on heap history (same input, other
     * bytes after other clips or on another thread); AVX2 and below are deterministic. */
    if (av_get_cpu_flags() & AV_CPU_FLAG_AVX512)
        av_opt_set(c->priv_data, "x264-params", "asm=avx2,fma3,bmi2,lzcnt", 0);
    int rc = avcodec_open2(c, codec, NULL);
    if (rc < 0) return avs_av_fail(err, m->path, "opening libx264", rc);
    if (avs_av_new_stream(&m->vst, m->fmt, c, m->path, err)) return -1;
    m->vst->avg_frame_rate = c->framerate;
    m->vframe = av_frame_alloc();
    m->vframe->format = c->pix_fmt;
    m->vframe->width = c->width;
    m->vframe->height = c->height;
    if ((rc = av_frame_get_buffer(m->vframe, 0)) < 0) return avs_av_fail(err, m->path, "frame", rc);
    return 0;
}

static int open_audio(struct avs_mp4 *m, int rate, struct avs_err *err)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec) return avs_err_set(err, "%s: libavcodec has no AAC encoder", m->path);
    AVCodecContext *c = m->aenc = avcodec_alloc_context3(codec);
    AVS_ASSERT(c);
    AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
    av_channel_layout_copy(&c->ch_layout, &stereo);
    c->sample_rate = rate;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->bit_rate = 128000;
    c->time_base = (AVRational){1, rate};
    c->flags |= AV_CODEC_FLAG_BITEXACT;
    if (m->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(c, codec, NULL);
    if (rc < 0) return avs_av_fail(err, m->path, "opening the AAC encoder", rc);
    if (avs_av_new_stream(&m->ast, m->fmt, c, m->path, err)) return -1;
    m->aframe = av_frame_alloc();
    m->aframe->format = c->sample_fmt;
    m->aframe->nb_samples = c->frame_size;
    m->aframe->sample_rate = rate;
    av_channel_layout_copy(&m->aframe->ch_layout, &c->ch_layout);
    if ((rc = av_frame_get_buffer(m->aframe, 0)) < 0) return avs_av_fail(err, m->path, "frame", rc);
    return 0;
}

static void mp4_free(struct avs_mp4 *m)
{
    avs_av_close_output(&m->fmt);
    avcodec_free_context(&m->venc);
    avcodec_free_context(&m->aenc);
    av_frame_free(&m->vframe);
    av_frame_free(&m->aframe);
    av_packet_free(&m->pkt);
    free(m->path);
    free(m);
}

int avs_mp4_open(const char *path, int w, int h, int fps, int rate, int crf,
                 struct avs_mp4 **mp4, struct avs_err *err)
{
    av_log_set_level(AV_LOG_ERROR);
    struct avs_mp4 *m = avs_calloc(1, sizeof(*m));
    m->path = avs_strdup(path);
    m->w = w;
    m->h = h;
    m->pkt = av_packet_alloc();
    int rc = avformat_alloc_output_context2(&m->fmt, NULL, "mp4", path);
    if (rc < 0 || !m->fmt) { avs_av_fail(err, path, "creating the mp4 muxer", rc); goto fail; }
    m->fmt->flags |= AVFMT_FLAG_BITEXACT;
    if (open_video(m, fps, crf, err) || open_audio(m, rate, err)) goto fail;
    if ((rc = avio_open(&m->fmt->pb, path, AVIO_FLAG_WRITE)) < 0) {
        avs_av_fail(err, path, "opening for writing", rc);
        goto fail;
    }
    if ((rc = avformat_write_header(m->fmt, NULL)) < 0) {
        avs_av_fail(err, path, "writing the mp4 header", rc);
        goto fail;
    }
    *mp4 = m;
    return 0;
fail:
    mp4_free(m);
    return -1;
}

/* Each row's padding [w, linesize) repeats the last pixel: libx264 copies rows in SIMD-wide
 * chunks, so uninitialised padding would leak heap garbage into its decisions (seen as
 * different clips when encoded on another thread). */
static void fill_padding(AVFrame *f, int plane, int w, int h)
{
    for (int y = 0; y < h; y++) {
        uint8_t *row = f->data[plane] + (size_t)y * f->linesize[plane];
        memset(row + w, row[w - 1], (size_t)(f->linesize[plane] - w));
    }
}

/* BT.601 limited range in 8.8 fixed point (Y 16..235, Cb/Cr 16..240); chroma from the mean
 * of each 2x2 block (w and h are even). */
static void rgb_to_yuv420(const uint8_t *rgb, int w, int h, AVFrame *f)
{
    for (int y = 0; y < h; y++) {
        uint8_t *Y = f->data[0] + (size_t)y * f->linesize[0];
        for (int x = 0; x < w; x++) {
            const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            Y[x] = (uint8_t)((66 * p[0] + 129 * p[1] + 25 * p[2] + 128 + (16 << 8)) >> 8);
        }
    }
    for (int y = 0; y < h / 2; y++) {
        uint8_t *U = f->data[1] + (size_t)y * f->linesize[1];
        uint8_t *V = f->data[2] + (size_t)y * f->linesize[2];
        for (int x = 0; x < w / 2; x++) {
            int r = 0, g = 0, b = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    const uint8_t *p = rgb + ((size_t)(2 * y + dy) * w + 2 * x + dx) * 3;
                    r += p[0];
                    g += p[1];
                    b += p[2];
                }
            /* sums of 4: scale the coefficients by 1/4 through the shift (>> 10) */
            U[x] = (uint8_t)((-38 * r - 74 * g + 112 * b + 512 + (128 << 10)) >> 10);
            V[x] = (uint8_t)((112 * r - 94 * g - 18 * b + 512 + (128 << 10)) >> 10);
        }
    }
    fill_padding(f, 0, w, h);
    fill_padding(f, 1, w / 2, h / 2);
    fill_padding(f, 2, w / 2, h / 2);
}

int avs_mp4_video(struct avs_mp4 *m, const uint8_t *rgb, struct avs_err *err)
{
    int rc = av_frame_make_writable(m->vframe);
    if (rc < 0) return avs_av_fail(err, m->path, "frame", rc);
    rgb_to_yuv420(rgb, m->w, m->h, m->vframe);
    m->vframe->pts = m->next_vpts++;
    if (encode(m, m->venc, m->vst, m->vframe, err)) { m->failed = 1; return -1; }
    return 0;
}

int avs_mp4_audio(struct avs_mp4 *m, const float *pcm, int64_t n, struct avs_err *err)
{
    int fs = m->aenc->frame_size;
    for (int64_t pos = 0; pos < n; pos += fs) {
        int rc = av_frame_make_writable(m->aframe);
        if (rc < 0) return avs_av_fail(err, m->path, "frame", rc);
        int cnt = n - pos < fs ? (int)(n - pos) : fs;
        float *l = (float *)m->aframe->data[0], *r = (float *)m->aframe->data[1];
        for (int i = 0; i < fs; i++) {
            l[i] = i < cnt ? pcm[2 * (pos + i)] : 0;
            r[i] = i < cnt ? pcm[2 * (pos + i) + 1] : 0;
        }
        m->aframe->nb_samples = cnt;
        m->aframe->pts = m->next_apts;
        m->next_apts += cnt;
        if (encode(m, m->aenc, m->ast, m->aframe, err)) { m->failed = 1; return -1; }
        m->aframe->nb_samples = fs;
    }
    return 0;
}

int avs_mp4_close(struct avs_mp4 **mp4, struct avs_err *err)
{
    struct avs_mp4 *m = *mp4;
    if (!m) return 0;
    int rc = m->failed ? -1 : 0;
    if (!m->failed) {
        if (encode(m, m->venc, m->vst, NULL, err) || encode(m, m->aenc, m->ast, NULL, err)) rc = -1;
        int r = av_write_trailer(m->fmt);
        if (rc == 0 && r < 0) rc = avs_av_fail(err, m->path, "writing the mp4 trailer", r);
    }
    mp4_free(m);
    *mp4 = NULL;
    return rc;
}
