/* core/av.c: the shared libav* steps (core/av.h). */
#include <stdio.h>
#include <string.h>

#include "core/av.h"

/* libav's last error-level message on this thread ("" when none since the last clear). */
static __thread char last_av_msg[512];

static void av_log_to_buffer(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_ERROR && avs_log_level() < 3)
        return;
    char line[512];
    int prefix = 0; /* no "[demuxer @ 0x...]": addresses would make stored errors differ per run */
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (level <= AV_LOG_ERROR && n)
        snprintf(last_av_msg, sizeof last_av_msg, "%s", line);
    if (avs_log_level() >= 3)
        fprintf(stderr, "libav: %s\n", line);
}

void avs_av_log_init(void) { av_log_set_callback(av_log_to_buffer); }

void avs_av_log_clear(void) { last_av_msg[0] = '\0'; }

int avs_av_fail(struct avs_err *err, const char *file, const char *what, int ret)
{
    char buf[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(ret, buf, sizeof buf);
    if (last_av_msg[0])
        return avs_err_set(err, "%s: %s: %s [%s]", file, what, buf, last_av_msg);
    return avs_err_set(err, "%s: %s: %s", file, what, buf);
}

int avs_av_open_input(AVFormatContext **fmt, const char *path, struct avs_err *err)
{
    avs_av_log_clear();
    int ret = avformat_open_input(fmt, path, NULL, NULL);
    if (ret < 0)
        return avs_av_fail(err, path, "cannot open as a media file", ret);
    if ((ret = avformat_find_stream_info(*fmt, NULL)) < 0)
        return avs_av_fail(err, path, "cannot read stream information", ret);
    return 0;
}

int avs_av_open_decoder(AVCodecContext **dec, const AVFormatContext *fmt, int stream, int threads,
                        const char *path, struct avs_err *err)
{
    const AVStream *st = fmt->streams[stream];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        return avs_err_set(err, "%s: no decoder for codec %s in this libavcodec build", path,
                           avcodec_get_name(st->codecpar->codec_id));
    AVCodecContext *d = avcodec_alloc_context3(codec);
    if (!d)
        return avs_err_set(err, "%s: out of memory for the decoder", path);
    int ret = avcodec_parameters_to_context(d, st->codecpar);
    d->pkt_timebase = st->time_base;
    d->thread_count = threads > 0 ? threads : 1;
    if (ret >= 0)
        ret = avcodec_open2(d, codec, NULL);
    if (ret < 0) {
        avcodec_free_context(&d);
        return avs_av_fail(err, path, "cannot open the decoder", ret);
    }
    *dec = d;
    return 0;
}

double avs_av_fps(const AVStream *st)
{
    AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    return fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 25.0;
}

int avs_av_new_stream(AVStream **st, AVFormatContext *ofmt, const AVCodecContext *enc,
                      const char *path, struct avs_err *err)
{
    AVStream *s = avformat_new_stream(ofmt, NULL);
    if (!s)
        return avs_err_set(err, "%s: out of memory for a stream", path);
    int ret = avcodec_parameters_from_context(s->codecpar, enc);
    if (ret < 0)
        return avs_av_fail(err, path, "stream parameters", ret);
    s->time_base = enc->time_base;
    *st = s;
    return 0;
}

int avs_av_encode(AVFormatContext *ofmt, AVCodecContext *enc, AVStream *st, AVFrame *f,
                  AVPacket *pkt, const char *path, struct avs_err *err)
{
    int ret = avcodec_send_frame(enc, f);
    if (ret < 0)
        return avs_av_fail(err, path, "encoding", ret);
    for (;;) {
        ret = avcodec_receive_packet(enc, pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return avs_av_fail(err, path, "encoding", ret);
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        if ((ret = av_interleaved_write_frame(ofmt, pkt)) < 0)
            return avs_av_fail(err, path, "writing a packet", ret);
    }
}

void avs_av_close_output(AVFormatContext **ofmt)
{
    AVFormatContext *o = ofmt ? *ofmt : NULL;
    if (!o)
        return;
    if (o->pb && !(o->oformat->flags & AVFMT_NOFILE))
        avio_closep(&o->pb);
    avformat_free_context(o);
    *ofmt = NULL;
}
