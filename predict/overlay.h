/* predict/overlay.h: a clip re-encoded with predicted masks drawn on it (avs-predict's video).
 *
 *   float *prob;                                   [n, mh, mw] in [0,1], second k = prob + (k-1)*mh*mw
 *   if (avs_overlay_video("in.mp4", "out.mp4", "frames", prob, n, mh, mw, &err)) { err.msg }
 *
 * Output: mp4 (the container is chosen from out's extension, default mp4), H.264 through
 * libavcodec's libx264 (crf 18, yuv420p; yuv444p with a warning when a side is odd, which
 * 4:2:0 cannot hold), the input's size, sample aspect ratio, frame rate and time base, every
 * decoded frame kept with its own timestamp.
 * Drawing: frame t (seconds since the first decoded frame) shows the map of second
 * k = floor(t) + 1, clamped to 1..n (frames past second n keep map n). The map is resized to
 * the frame size bilinearly (OpenCV INTER_LINEAR pixel centres); pixels with p > 0.5 are moved
 * 50% towards AVS_OVERLAY_TINT and the mask's edge (pixels with a differing 8-neighbour, on
 * both sides: 2 px) is painted AVS_OVERLAY_EDGE.
 * Audio (the input's best audio stream): packets copied as they are when the output container
 * takes the codec (aac, mp3, opus, ...), else decoded and re-encoded to AAC (same rate when AAC
 * supports it, else 48 kHz; same channel layout); no audio stream -> no audio.
 * frames_dir (may be NULL): also <frames_dir>/<k>.png for k = 1..n, the overlay (map k) on the
 * frame avs-ingest picks for second k (DESIGN §3: decoded frame floor((k-1)F + 15F/16),
 * F = round(average frame rate), past the end the last frame), at the source size.
 * Crash safety: the video and each PNG are written to a temp name and renamed (core/fs.h).
 * Returns 0, or -1 with err naming the file and the libav message.
 */
#ifndef AVS_PREDICT_OVERLAY_H
#define AVS_PREDICT_OVERLAY_H

#include "core/common.h"

#define AVS_OVERLAY_TINT {255, 0, 64}   /* RGB the mask is blended towards */
#define AVS_OVERLAY_EDGE {255, 255, 0}  /* RGB of the mask's outline */
#define AVS_OVERLAY_MAXW 8192            /* widest frame (the model's resize op's limit) */

int avs_overlay_video(const char *in, const char *out, const char *frames_dir,
                      const float *prob /* [n,mh,mw] in [0,1] */, int n, int mh, int mw,
                      struct avs_err *err);

/* The drawing alone, on one RGB frame in place: rgb [H,W,3] (W <= AVS_OVERLAY_MAXW), map
 * [mh,mw] (e.g. for stills). */
void avs_overlay_draw(uint8_t *rgb, int H, int W, const float *map, int mh, int mw);

#endif
