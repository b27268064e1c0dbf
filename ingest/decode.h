/* ingest/decode.h: one pass over a clip with libav*: the frames DESIGN §3 picks, and the audio
 * as 16 kHz mono s16.
 *
 *   struct avs_decode_opts o = {.out_w = 224, .out_h = 224};
 *   struct avs_decode_result r;
 *   if (avs_decode_clip(path, &o, on_frame, ctx, &r, &err)) { record err.msg as the failure }
 *   ... r.audio [r.n_seconds * 16000] ...
 *   avs_decode_result_free(&r);
 *
 * Frame choice (ref: AVSBench preprocess_s4.py video_frame_sample): second k = 1..n,
 * n = floor(duration) capped by max_seconds, takes the decoded frame with index
 * floor((k-1)*F + 15*F/16), F = round(average frame rate), counting decoded frames from the
 * first; past the end, the last decoded frame.
 *
 * Speed: frames are ranked in presentation order from packet timestamps while demuxing (a packet
 * with pts P can be ranked once a packet with dts >= P has been read), so the decoder is told to
 * skip non-reference frames that are not targets (skip_frame = AVDISCARD_NONREF per packet),
 * only target frames are converted and resized, and video decoding stops after the last target.
 * Streams without timestamps fall back to decoding and counting every frame.
 */
#ifndef AVS_INGEST_DECODE_H
#define AVS_INGEST_DECODE_H

#include <stdint.h>

#include "core/common.h"
#include "core/image.h"

#define AVS_AUDIO_RATE 16000

/* seconds.flags bits (sql/schema.sql). */
enum {
    AVS_SEC_AUDIO_PADDED = 1,  /* short last second, zero-padded */
    AVS_SEC_NO_AUDIO = 2,      /* the clip has no audio: silence written */
    AVS_SEC_FRAME_PAST_END = 4,/* target past the last decoded frame: last frame used */
    AVS_SEC_IMPORTED = 8       /* frame imported as it was (AVSBench release) */
};

enum avs_frame_rule {
    AVS_FRAME_AVSBENCH = 0, /* decoded frame floor((k-1)F + 15F/16) (default) */
    AVS_FRAME_TIMESTAMP     /* first frame with timestamp >= (k-1) + 15/16 s (variable rate) */
};

struct avs_decode_opts {
    int out_w, out_h;    /* frame size; 0, 0 = keep the source size */
    int max_seconds;     /* 0 = no cap */
    int frame_rule;      /* enum avs_frame_rule */
    int threads;         /* decoder threads; 0 or 1 = single-threaded */
    int decode_all;      /* 1 = never skip frames (for tests and comparisons) */
};

struct avs_decode_result {
    double duration, fps;
    int src_w, src_h;
    char video_codec[32], audio_codec[32];
    int audio_rate, audio_channels, has_audio;
    int n_seconds;
    int decode_errors;     /* packets or frames the decoders rejected */
    int frames_decoded;    /* frames the video decoder returned */
    int packets_skipped;   /* video packets not decoded (skipped or after the last target) */
    int16_t *audio;        /* [n_seconds * 16000], zero-padded */
    int *flags;            /* [n_seconds] AVS_SEC_* bits */
};

/* Called once per second k (1-based) with the chosen frame, in order of k. Return 0 to go on,
 * non-zero to abort (the value is returned by avs_decode_clip). img is only valid during the call. */
typedef int (*avs_frame_fn)(void *ctx, int k, const struct avs_image *img);

int avs_decode_clip(const char *path, const struct avs_decode_opts *opts, avs_frame_fn on_frame,
                    void *ctx, struct avs_decode_result *res, struct avs_err *err);
/* Audio only (e.g. an AVSBench .wav), n_seconds given: fills res->audio and flags. */
int avs_decode_audio_file(const char *path, int n_seconds, struct avs_decode_result *res,
                          struct avs_err *err);
void avs_decode_result_free(struct avs_decode_result *res);

#endif
