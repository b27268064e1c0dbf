/* core/av.h: the libav* steps every reader and writer of media files shares (ingest/decode.c,
 * synth/media.c, synth/mp4.c, predict/overlay.c): error messages, opening an input and a
 * decoder, adding an encoder's stream, the encode-and-write loop, closing an output.
 * The call sequences follow FFmpeg's doc/examples (demux_decode.c, mux.c, transcode.c).
 *
 *   avs_av_log_init();                                   once at start-up (programs)
 *   AVFormatContext *in = NULL; AVCodecContext *dec = NULL;
 *   if (avs_av_open_input(&in, path, &err) ||
 *       avs_av_open_decoder(&dec, in, stream, 1, path, &err)) ...;
 *   ... avs_av_encode(out, enc, st, frame, pkt, out_path, &err) ...
 *   avcodec_free_context(&dec); avformat_close_input(&in); avs_av_close_output(&out);
 *
 * Errors read "<file>: <what>: <libav's message> [<libav's last logged error>]"; the bracket
 * appears once avs_av_log_init routed libav's log here (the decoder's own words, e.g. "moov
 * atom not found"), and is what avs-ingest records for a failed clip.
 */
#ifndef AVS_CORE_AV_H
#define AVS_CORE_AV_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "core/common.h"

/* Route libav's log through a per-thread buffer (its last error is quoted by avs_av_fail);
 * messages reach stderr only at log level 3 (debug). */
void avs_av_log_init(void);
/* Forget the last logged error of this thread (before a new file). */
void avs_av_log_clear(void);

/* err = "<file>: <what>: <av_strerror(ret)> [<last logged error>]". Returns -1. */
int avs_av_fail(struct avs_err *err, const char *file, const char *what, int ret);

/* avformat_open_input + avformat_find_stream_info. On failure *fmt may be left open (close
 * it with avformat_close_input, which takes NULL). Clears the last logged error first. */
int avs_av_open_input(AVFormatContext **fmt, const char *path, struct avs_err *err);
/* The decoder of stream `stream` of fmt, opened (packet time base set, threads <= 1: one
 * thread). *dec untouched on failure. */
int avs_av_open_decoder(AVCodecContext **dec, const AVFormatContext *fmt, int stream, int threads,
                        const char *path, struct avs_err *err);
/* Average frame rate of a video stream (its r_frame_rate when the average is unknown; 25 when
 * both are). */
double avs_av_fps(const AVStream *st);

/* A new stream of ofmt with the parameters and time base of the opened encoder enc. */
int avs_av_new_stream(AVStream **st, AVFormatContext *ofmt, const AVCodecContext *enc,
                      const char *path, struct avs_err *err);
/* Send f (NULL: flush) to enc and write every packet it yields to st of ofmt (timestamps
 * rescaled from enc's time base to st's), through pkt. */
int avs_av_encode(AVFormatContext *ofmt, AVCodecContext *enc, AVStream *st, AVFrame *f,
                  AVPacket *pkt, const char *path, struct avs_err *err);
/* Close the output's file (when it has one) and free the context; takes NULL and *ofmt NULL. */
void avs_av_close_output(AVFormatContext **ofmt);

#endif
