/* ingest/decode.c: one demux pass per clip; video frames picked by presentation rank, audio
 * resampled to 16 kHz mono s16. See decode.h for the rules and the speed design.
 *
 * Flow (ref: FFmpeg doc/examples/demux_decode.c and resample_audio.c):
 *
 *   av_read_frame ──video──▶ rank queue ──(resolved, decode order)──▶ skip? ──▶ video decoder
 *        │                                                                        │ frames in
 *        └──audio──▶ audio decoder ──▶ swr (mono average, 16 kHz, s16) ──▶ buffer  ▼ rank order
 *                                                               targets: swscale RGB24 + resize
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/av.h"
#include "ingest/decode.h"

#define RESTART_COUNTING 9 /* internal: rank mode cannot continue, decode again counting frames */

struct clip {
    const char *path;
    const struct avs_decode_opts *o;
    AVFormatContext *fmt;
    int vi, ai;
    AVCodecContext *vdec, *adec;
    AVPacket *pkt;
    AVFrame *frame, *last; /* last: most recent video frame out of the decoder */
    int64_t last_rank;
    struct SwsContext *sws;
    SwrContext *swr;
    struct avs_image rgb, out;
    uint8_t *scratch;      /* swscale output, padded rows */
    /* targets */
    int n;                 /* seconds */
    int64_t *target;       /* [n] frame rank (AVSBENCH) or pts (TIMESTAMP) per second */
    int filled;            /* seconds delivered so far (in order) */
    int counting;          /* 1: rank = count of frames out of the decoder */
    int64_t frames_out;
    /* presentation ranks from packet timestamps */
    int64_t *pts;          /* sorted pts of the non-discarded video packets read so far */
    size_t n_pts, cap_pts;
    AVPacket **queue;      /* video packets read, not yet sent (decode order) */
    size_t q_head, q_len, q_cap;
    int64_t max_dts;
    int video_done;        /* all targets delivered: stop sending video */
    /* audio */
    int64_t audio_len, audio_want;
    avs_frame_fn on_frame;
    void *ctx;
    int cb_status;
    struct avs_decode_result *res;
};

/* ---- rank bookkeeping -------------------------------------------------------------------- */

static size_t lower_bound(const int64_t *a, size_t n, int64_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void pts_insert(struct clip *c, int64_t v)
{
    if (c->n_pts == c->cap_pts) {
        c->cap_pts = c->cap_pts ? 2 * c->cap_pts : 1024;
        c->pts = avs_realloc(c->pts, c->cap_pts * sizeof *c->pts);
    }
    /* Nearly sorted input (reorder depth of a few frames): insertion from the end. */
    size_t i = c->n_pts++;
    while (i > 0 && c->pts[i - 1] > v) {
        c->pts[i] = c->pts[i - 1];
        i--;
    }
    c->pts[i] = v;
}

static void queue_push(struct clip *c, AVPacket *p)
{
    if (c->q_head + c->q_len == c->q_cap) {
        if (c->q_head > 0) {
            memmove(c->queue, c->queue + c->q_head, c->q_len * sizeof *c->queue);
            c->q_head = 0;
        } else {
            c->q_cap = c->q_cap ? 2 * c->q_cap : 64;
            c->queue = avs_realloc(c->queue, c->q_cap * sizeof *c->queue);
        }
    }
    c->queue[c->q_head + c->q_len++] = p;
}

/* ---- frame delivery ---------------------------------------------------------------------- */

/* swscale's SIMD writes whole vectors: it gets rows padded to 64 bytes plus slack, then the
 * rows are packed into c->rgb. */
static int convert_frame(struct clip *c, const AVFrame *f)
{
    int stride = (3 * f->width + 63) & ~63;
    if (!c->rgb.data || c->rgb.w != f->width || c->rgb.h != f->height) {
        avs_image_free(&c->rgb);
        free(c->scratch);
        c->scratch = avs_malloc((size_t)stride * (size_t)(f->height + 1) + 64);
        if (avs_image_alloc(&c->rgb, f->width, f->height, 3))
            return -1;
    }
    /* SWS_BICUBIC: the flags of the ffmpeg CLI's auto-inserted converter (and so of the
     * official frames, decoded through the CLI by imageio); at equal size they only matter
     * for chroma. */
    c->sws = sws_getCachedContext(c->sws, f->width, f->height, f->format, f->width, f->height,
                                  AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (!c->sws)
        return -1;
    uint8_t *dst[4] = {c->scratch, NULL, NULL, NULL};
    int strides[4] = {stride, 0, 0, 0};
    sws_scale(c->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, strides);
    for (int y = 0; y < f->height; y++)
        memcpy(c->rgb.data + (size_t)y * 3 * (size_t)f->width, c->scratch + (size_t)y * (size_t)stride,
               3 * (size_t)f->width);
    return 0;
}

/* Deliver frame f for the seconds filled .. k_end-1 (1-based k = filled + 1 ...). */
static int deliver(struct clip *c, const AVFrame *f, int k_end, int flags)
{
    if (convert_frame(c, f)) {
        c->cb_status = -1;
        return -1;
    }
    const struct avs_image *img = &c->rgb;
    int ow = c->o->out_w, oh = c->o->out_h;
    if (ow > 0 && oh > 0 && (ow != c->rgb.w || oh != c->rgb.h)) {
        if (!c->out.data && avs_image_alloc(&c->out, ow, oh, 3))
            return c->cb_status = -1;
        avs_image_resize_bilinear(&c->rgb, &c->out);
        img = &c->out;
    }
    for (; c->filled < k_end; c->filled++) {
        c->res->flags[c->filled] |= flags;
        int rc = c->on_frame ? c->on_frame(c->ctx, c->filled + 1, img) : 0;
        if (rc)
            return c->cb_status = rc;
    }
    if (c->filled == c->n)
        c->video_done = 1;
    return 0;
}

/* The key a frame is compared with targets by: its rank, or its pts (TIMESTAMP rule). */
static int frame_key(struct clip *c, const AVFrame *f, int64_t *key)
{
    int64_t pts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
    if (c->o->frame_rule == AVS_FRAME_TIMESTAMP) {
        *key = pts != AV_NOPTS_VALUE ? pts : c->frames_out;
        return 0;
    }
    if (c->counting) {
        *key = c->frames_out;
        return 0;
    }
    if (pts == AV_NOPTS_VALUE)
        return RESTART_COUNTING;
    *key = (int64_t)lower_bound(c->pts, c->n_pts, pts);
    return 0;
}

static int on_video_frame(struct clip *c, AVFrame *f)
{
    int64_t key;
    int rc = frame_key(c, f, &key);
    if (rc)
        return rc;
    c->frames_out++;
    c->res->frames_decoded++;
    int k_end = c->filled;
    while (k_end < c->n && c->target[k_end] <= key)
        k_end++;
    if (k_end > c->filled && (rc = deliver(c, f, k_end, 0)))
        return rc;
    av_frame_unref(c->last);
    av_frame_ref(c->last, f);
    c->last_rank = key;
    return 0;
}

static int drain_video(struct clip *c)
{
    int ret;
    while ((ret = avcodec_receive_frame(c->vdec, c->frame)) >= 0) {
        int rc = c->video_done ? 0 : on_video_frame(c, c->frame);
        av_frame_unref(c->frame);
        if (rc)
            return rc;
    }
    if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
        c->res->decode_errors++;
    return 0;
}

static int send_video(struct clip *c, const AVPacket *p, int needed)
{
    c->vdec->skip_frame = needed ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
    int ret = avcodec_send_packet(c->vdec, p);
    if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
        c->res->decode_errors++;
    return drain_video(c);
}

static int is_target(const struct clip *c, int64_t rank)
{
    for (int k = c->filled; k < c->n && c->target[k] <= rank; k++)
        if (c->target[k] == rank)
            return 1;
    return 0;
}

/* A queued packet can be ranked once no packet still unread can have a smaller pts: with
 * dts <= pts, that holds when a packet with dts >= its pts has been read. Without dts
 * (e.g. Matroska), a lookahead of REORDER_MAX packets bounds the reordering. */
#define REORDER_MAX 32
static int resolvable(const struct clip *c, const AVPacket *p, int eof)
{
    if (eof || (p->flags & AV_PKT_FLAG_DISCARD))
        return 1;
    if (c->max_dts != AV_NOPTS_VALUE)
        return c->max_dts >= p->pts || c->q_len > REORDER_MAX;
    return c->q_len > REORDER_MAX;
}

static int flush_queue(struct clip *c, int eof)
{
    while (c->q_len > 0) {
        AVPacket *p = c->queue[c->q_head];
        if (!resolvable(c, p, eof))
            break;
        c->q_head++;
        c->q_len--;
        int rc = 0;
        if (c->video_done) {
            c->res->packets_skipped++;
        } else {
            int needed = c->o->decode_all;
            if (!(p->flags & AV_PKT_FLAG_DISCARD))
                needed |= is_target(c, (int64_t)lower_bound(c->pts, c->n_pts, p->pts));
            if (!needed)
                c->res->packets_skipped++; /* counted as skippable; references still decode */
            rc = send_video(c, p, needed);
        }
        av_packet_free(&p);
        if (rc)
            return rc;
    }
    return 0;
}

static int on_video_packet(struct clip *c, AVPacket *pkt)
{
    if (c->video_done) {
        c->res->packets_skipped++;
        return 0;
    }
    if (c->counting)
        return send_video(c, pkt, 1);
    if (pkt->pts == AV_NOPTS_VALUE)
        return RESTART_COUNTING;
    if (!(pkt->flags & AV_PKT_FLAG_DISCARD))
        pts_insert(c, pkt->pts);
    if (pkt->dts != AV_NOPTS_VALUE && (c->max_dts == AV_NOPTS_VALUE || pkt->dts > c->max_dts))
        c->max_dts = pkt->dts;
    queue_push(c, av_packet_clone(pkt));
    return flush_queue(c, 0);
}

/* ---- audio ------------------------------------------------------------------------------- */

static int init_resampler(struct clip *c, const AVFrame *f)
{
    AVChannelLayout in = {0}, out = AV_CHANNEL_LAYOUT_MONO;
    if (f->ch_layout.nb_channels > 0)
        av_channel_layout_copy(&in, &f->ch_layout);
    else
        av_channel_layout_default(&in, c->adec->ch_layout.nb_channels > 0 ? c->adec->ch_layout.nb_channels : 1);
    int nch = in.nb_channels, ret;
    ret = swr_alloc_set_opts2(&c->swr, &out, AV_SAMPLE_FMT_S16, AVS_AUDIO_RATE, &in, f->format,
                              f->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in);
    if (ret < 0)
        return ret;
    /* DESIGN §3: all channels averaged (not a downmix with centre/surround levels). */
    double *m = avs_malloc(sizeof(double) * (size_t)nch);
    for (int i = 0; i < nch; i++)
        m[i] = 1.0 / nch;
    ret = swr_set_matrix(c->swr, m, nch);
    free(m);
    if (ret >= 0)
        ret = swr_init(c->swr);
    return ret;
}

/* Resample frame f (NULL = flush) into the result buffer. */
static int resample(struct clip *c, const AVFrame *f)
{
    if (!c->swr) {
        if (!f)
            return 0;
        int ret = init_resampler(c, f);
        if (ret < 0) {
            c->res->has_audio = 0;
            return 0;
        }
    }
    int in_n = f ? f->nb_samples : 0;
    int room = swr_get_out_samples(c->swr, in_n);
    if (room <= 0)
        return 0;
    int16_t *tmp = avs_malloc(sizeof(int16_t) * (size_t)room);
    uint8_t *outp[1] = {(uint8_t *)tmp};
    int got = swr_convert(c->swr, outp, room, f ? (const uint8_t **)f->extended_data : NULL, in_n);
    if (got < 0)
        c->res->decode_errors++;
    for (int i = 0; i < got && c->audio_len < c->audio_want; i++)
        c->res->audio[c->audio_len++] = tmp[i];
    free(tmp);
    return 0;
}

static void on_audio_packet(struct clip *c, const AVPacket *pkt)
{
    if (c->audio_len >= c->audio_want || !c->res->has_audio)
        return;
    int ret = avcodec_send_packet(c->adec, pkt);
    if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
        c->res->decode_errors++;
    while ((ret = avcodec_receive_frame(c->adec, c->frame)) >= 0) {
        if (c->frame->format != c->adec->sample_fmt && c->swr)
            c->res->decode_errors++; /* format change mid-stream: frame dropped */
        else
            resample(c, c->frame);
        av_frame_unref(c->frame);
    }
}

/* ---- setup ------------------------------------------------------------------------------- */

static int find_video(struct clip *c, struct avs_err *err)
{
    c->vi = av_find_best_stream(c->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (c->vi >= 0 && (c->fmt->streams[c->vi]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        c->vi = -1;
    if (c->vi < 0)
        return avs_err_set(err, "%s: no video stream (audio-only or not a video file)", c->path);
    AVStream *st = c->fmt->streams[c->vi];
    if (st->codecpar->width <= 0 || st->codecpar->height <= 0)
        return avs_err_set(err, "%s: video stream has no frame size (corrupt header?)", c->path);
    return avs_av_open_decoder(&c->vdec, c->fmt, c->vi, c->o->threads, c->path, err);
}

static void find_audio(struct clip *c)
{
    struct avs_err ignore;
    c->ai = av_find_best_stream(c->fmt, AVMEDIA_TYPE_AUDIO, -1, c->vi, NULL, 0);
    if (c->ai >= 0 && avs_av_open_decoder(&c->adec, c->fmt, c->ai, 1, c->path, &ignore) == 0) {
        AVCodecParameters *p = c->fmt->streams[c->ai]->codecpar;
        c->res->has_audio = 1;
        c->res->audio_rate = p->sample_rate;
        c->res->audio_channels = p->ch_layout.nb_channels;
        snprintf(c->res->audio_codec, sizeof c->res->audio_codec, "%s", avcodec_get_name(p->codec_id));
    } else {
        c->ai = -1;
    }
}

static double clip_duration(const struct clip *c)
{
    if (c->fmt->duration > 0 && c->fmt->duration != AV_NOPTS_VALUE)
        return (double)c->fmt->duration / AV_TIME_BASE;
    const AVStream *st = c->fmt->streams[c->vi];
    if (st->duration > 0 && st->duration != AV_NOPTS_VALUE)
        return (double)st->duration * av_q2d(st->time_base);
    return 0;
}

static int plan_targets(struct clip *c, struct avs_err *err)
{
    AVStream *st = c->fmt->streams[c->vi];
    c->res->fps = avs_av_fps(st);
    int F = (int)lrint(c->res->fps);
    if (F < 1)
        F = 1;
    c->res->duration = clip_duration(c);
    c->n = (int)floor(c->res->duration + 1e-6);
    if (c->o->max_seconds > 0 && c->n > c->o->max_seconds)
        c->n = c->o->max_seconds;
    if (c->n < 1)
        return avs_err_set(err, "%s: shorter than one second (%.3f s) or duration unknown: "
                                "nothing to ingest", c->path, c->res->duration);
    c->target = avs_malloc(sizeof(int64_t) * (size_t)c->n);
    int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    for (int k = 0; k < c->n; k++) {
        if (c->o->frame_rule == AVS_FRAME_TIMESTAMP)
            c->target[k] = start + av_rescale_q(16 * k + 15, (AVRational){1, 16}, st->time_base);
        else
            c->target[k] = (int64_t)k * F + (15 * F) / 16;
    }
    c->counting = c->o->frame_rule == AVS_FRAME_TIMESTAMP;
    c->audio_want = (int64_t)c->n * AVS_AUDIO_RATE;
    c->res->n_seconds = c->n;
    c->res->audio = avs_calloc((size_t)c->audio_want, sizeof(int16_t));
    c->res->flags = avs_calloc((size_t)c->n, sizeof(int));
    return 0;
}

static void close_clip(struct clip *c)
{
    while (c->q_len > 0) {
        av_packet_free(&c->queue[c->q_head++]);
        c->q_len--;
    }
    free(c->queue);
    free(c->pts);
    free(c->target);
    av_packet_free(&c->pkt);
    av_frame_free(&c->frame);
    av_frame_free(&c->last);
    avcodec_free_context(&c->vdec);
    avcodec_free_context(&c->adec);
    avformat_close_input(&c->fmt);
    sws_freeContext(c->sws);
    swr_free(&c->swr);
    avs_image_free(&c->rgb);
    avs_image_free(&c->out);
    free(c->scratch);
}

/* ---- the pass ---------------------------------------------------------------------------- */

static int finish_video(struct clip *c, struct avs_err *err)
{
    int rc = 0;
    if (!c->video_done) {
        if (!c->counting && (rc = flush_queue(c, 1)))
            return rc;
        if (!c->video_done && (rc = send_video(c, NULL, 1)))
            return rc;
    }
    if (c->filled == c->n)
        return 0;
    if (c->frames_out == 0)
        return avs_av_fail(err, c->path, "no video frame could be decoded", AVERROR_INVALIDDATA);
    /* Targets past the end take the last frame, if it really is the last one. */
    if (!c->counting && c->last_rank != (int64_t)c->n_pts - 1)
        return RESTART_COUNTING;
    return deliver(c, c->last, c->n, AVS_SEC_FRAME_PAST_END);
}

static void finish_audio(struct clip *c)
{
    if (c->ai < 0 || !c->res->has_audio)
        return;
    if (c->audio_len < c->audio_want) {
        on_audio_packet(c, NULL);
        resample(c, NULL);
    }
}

static int read_pass(struct clip *c, struct avs_err *err)
{
    int rc = 0;
    for (;;) {
        int audio_done = c->ai < 0 || c->audio_len >= c->audio_want || !c->res->has_audio;
        if (c->video_done && audio_done)
            break;
        int ret = av_read_frame(c->fmt, c->pkt);
        if (ret < 0) {
            if (ret != AVERROR_EOF)
                c->res->decode_errors++; /* truncated or corrupt: keep what was read */
            break;
        }
        if (c->pkt->stream_index == c->vi)
            rc = on_video_packet(c, c->pkt);
        else if (c->pkt->stream_index == c->ai)
            on_audio_packet(c, c->pkt);
        av_packet_unref(c->pkt);
        if (rc)
            return rc;
    }
    if (c->vi >= 0 && (rc = finish_video(c, err)))
        return rc;
    finish_audio(c);
    return 0;
}

static void result_reset(struct avs_decode_result *res)
{
    free(res->audio);
    free(res->flags);
    memset(res, 0, sizeof *res);
}

static int decode_once(const char *path, const struct avs_decode_opts *o, int counting,
                       avs_frame_fn on_frame, void *ctx, struct avs_decode_result *res,
                       struct avs_err *err)
{
    struct clip c = {.path = path, .o = o, .vi = -1, .ai = -1, .on_frame = on_frame, .ctx = ctx,
                     .res = res, .max_dts = AV_NOPTS_VALUE, .last_rank = -1};
    result_reset(res);
    c.pkt = av_packet_alloc();
    c.frame = av_frame_alloc();
    c.last = av_frame_alloc();
    int rc = avs_av_open_input(&c.fmt, path, err);
    if (!rc)
        rc = find_video(&c, err);
    if (!rc) {
        AVStream *st = c.fmt->streams[c.vi];
        res->src_w = st->codecpar->width;
        res->src_h = st->codecpar->height;
        snprintf(res->video_codec, sizeof res->video_codec, "%s", avcodec_get_name(st->codecpar->codec_id));
        find_audio(&c);
        rc = plan_targets(&c, err);
    }
    if (!rc) {
        c.counting |= counting;
        rc = read_pass(&c, err);
    }
    if (c.cb_status && rc == c.cb_status && rc < 0 && !err->msg[0])
        avs_err_set(err, "%s: cannot convert a decoded frame to RGB", path);
    if (!c.res->has_audio && res->flags)
        for (int k = 0; k < res->n_seconds; k++)
            res->flags[k] |= AVS_SEC_NO_AUDIO;
    else if (res->flags)
        for (int k = 0; k < res->n_seconds; k++)
            if ((int64_t)(k + 1) * AVS_AUDIO_RATE > c.audio_len)
                res->flags[k] |= AVS_SEC_AUDIO_PADDED;
    close_clip(&c);
    return rc;
}

int avs_decode_clip(const char *path, const struct avs_decode_opts *o, avs_frame_fn on_frame,
                    void *ctx, struct avs_decode_result *res, struct avs_err *err)
{
    memset(res, 0, sizeof *res);
    err->msg[0] = '\0';
    int rc = decode_once(path, o, 0, on_frame, ctx, res, err);
    if (rc == RESTART_COUNTING) {
        avs_log_debug("%s: timestamps unusable for ranking; decoding every frame", path);
        err->msg[0] = '\0';
        rc = decode_once(path, o, 1, on_frame, ctx, res, err);
    }
    if (rc && !err->msg[0])
        avs_err_set(err, "%s: stopped (status %d)", path, rc);
    avs_log_debug("%s: %d seconds, %d frames out of the video decoder, %d video packets not "
                  "needed, %d decode errors", path, res->n_seconds, res->frames_decoded,
                  res->packets_skipped, res->decode_errors);
    return rc ? -1 : 0;
}

int avs_decode_audio_file(const char *path, int n_seconds, struct avs_decode_result *res,
                          struct avs_err *err)
{
    struct avs_decode_opts o = {0};
    struct clip c = {.path = path, .o = &o, .vi = -1, .ai = -1, .res = res, .video_done = 1};
    memset(res, 0, sizeof *res);
    c.pkt = av_packet_alloc();
    c.frame = av_frame_alloc();
    c.last = av_frame_alloc();
    int rc = avs_av_open_input(&c.fmt, path, err);
    if (!rc) {
        find_audio(&c);
        if (c.ai < 0)
            rc = avs_err_set(err, "%s: no decodable audio stream", path);
    }
    if (!rc) {
        c.n = n_seconds;
        c.audio_want = (int64_t)n_seconds * AVS_AUDIO_RATE;
        res->n_seconds = n_seconds;
        res->audio = avs_calloc((size_t)c.audio_want + 1, sizeof(int16_t));
        res->flags = avs_calloc((size_t)n_seconds + 1, sizeof(int));
        rc = read_pass(&c, err);
        for (int k = 0; k < n_seconds; k++)
            if ((int64_t)(k + 1) * AVS_AUDIO_RATE > c.audio_len)
                res->flags[k] |= AVS_SEC_AUDIO_PADDED;
    }
    close_clip(&c);
    return rc ? -1 : 0;
}

void avs_decode_result_free(struct avs_decode_result *res)
{
    if (res)
        result_reset(res);
}
