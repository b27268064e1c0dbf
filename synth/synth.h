/* synth/synth.h: avs-synth, the built-in dataset. Composes AVSBench-shaped clips from real
 * media (photo cut-outs whose alpha is the object mask, their recorded sounds, background
 * photos) and writes them like a YouTube clip folder plus AVSBench annotations.
 *
 *   struct avs_synth_media *m;
 *   if (avs_synth_media_load(media_dir, &m, &err)) fail(err.msg);
 *   struct avs_synth_opts o;
 *   avs_synth_opts_default(&o);
 *   o.subset = AVS_SYNTH_MS3; o.videos = 20;
 *   rc = avs_synth_run(out_dir, m, &o, &err);     0 ok, -1 failed (err says why)
 *   avs_synth_media_free(&m);
 *
 * Media folder (scripts/fetch-media.sh fills ~/.cache/avs/media; tests use small fixtures):
 *   objects/<category>/<name>.png       RGBA cut-outs (alpha = object mask)
 *   sounds/<category>/<name>.<ogg|wav|flac|mp3>
 *   backgrounds/<name>.<jpg|png>
 *   categories.csv                      category,imagenet_index,imagenet_name,audioset_index,
 *                                       audioset_name (optional; -1 / empty when unknown)
 * A category needs at least one object and one sound.
 *
 * Output folder (what `avs-ingest --avsbench DIR` reads):
 *   raw_videos/<split>/<category>/<uid>.mp4     H.264 + AAC, 25 or 30 fps
 *   gt_masks/<split>/<category>/<uid>/<uid>_<k>.png   S4 (train: k = 1 only, as AVSBench)
 *   gt_masks/<split>/<uid>/<uid>_<k>.png              MS3 (every second)
 *   s4_meta_data.csv | ms3_meta_data.csv        name,category,split (+ fps,seconds,objects)
 *   categories.csv                              every category of the media, class indices
 *   s4_synth_seconds.csv | ms3_synth_seconds.csv  name,k,frame,sounding (per second: which
 *                                               objects are heard; frame = decoded frame index)
 * Masks are the composited alpha (>= 0.5) of the objects heard in second k at the frame that
 * DESIGN §3 picks for second k, 8-bit gray 0/255 at the video size.
 *
 * AVSS subset (AVSBench-semantic layout, docs/avss.md; what `avs-ingest --avsbench DIR` reads):
 *   metadata.csv          vid,uid,s_min,s_sec,a_obj,split,label (the release's header)
 *   label2idx.json        {"background": 0, <category>: 1, ...}: the media's categories in
 *                         name order (as media_load sorts them), class c = category c - 1
 *   <set>/<uid>/frames/<i>.jpg       i = 0..n-1, the frame of second i + 1 (JPEG, 4:2:0)
 *   <set>/<uid>/labels_rgb/<i>.png   class of each sounding object's visible alpha (>= 0.5),
 *                                    in palette colours (core/avss.h); v1s train: 0.png only
 *   <set>/<uid>/audio.wav            the soundtrack, mono s16 at AVS_SYNTH_RATE
 * Sets by clip index: i % 3 = 0 v1s (one object heard all along, 5 frames), 1 v1m (2-3
 * objects, MS3-like schedule, 5 frames), 2 v2 (as v1m, 10 frames); --seconds is ignored.
 */
#ifndef AVS_SYNTH_SYNTH_H
#define AVS_SYNTH_SYNTH_H

#include <stdint.h>

#include "core/common.h"
#include "core/image.h"

#define AVS_SYNTH_RATE 44100     /* audio sample rate of the clips (and of loaded sounds) */
#define AVS_SYNTH_MAX_LAYERS 3   /* objects visible in one clip */
#define AVS_SYNTH_MAX_SECONDS 60

enum avs_synth_subset { AVS_SYNTH_S4 = 0, AVS_SYNTH_MS3 = 1, AVS_SYNTH_AVSS = 2 };
enum avs_synth_avss_set { AVS_SYNTH_V1S = 0, AVS_SYNTH_V1M = 1, AVS_SYNTH_V2 = 2 };
enum avs_synth_split { AVS_SYNTH_TRAIN = 0, AVS_SYNTH_VAL = 1, AVS_SYNTH_TEST = 2 };

struct avs_synth_sound {
    char *path;
    float *pcm;   /* [n] mono at AVS_SYNTH_RATE, peak-normalised to 0.5 */
    int64_t n;
};

struct avs_synth_category {
    char *name;
    int imagenet_index, audioset_index; /* -1 when unknown */
    char *imagenet_name, *audioset_name; /* "" when unknown */
    int n_objects, n_sounds;
    char **object_paths;
    struct avs_image *objects;          /* [n_objects] RGBA, premultiplied-free straight alpha */
    struct avs_synth_sound *sounds;     /* [n_sounds] */
};

struct avs_synth_media {
    char *dir;
    int n_categories, n_backgrounds;
    struct avs_synth_category *categories; /* sorted by name */
    char **background_paths;
    struct avs_image *backgrounds;         /* [n_backgrounds] RGB */
};

int avs_synth_media_load(const char *dir, struct avs_synth_media **media, struct avs_err *err);
void avs_synth_media_free(struct avs_synth_media **media);

struct avs_synth_opts {
    int subset;      /* enum avs_synth_subset */
    int videos;      /* clips to write */
    int seconds;     /* clip length (1..AVS_SYNTH_MAX_SECONDS) */
    uint64_t seed;
    int width, height;
    int fps;         /* 0: each clip picks 25 or 30 */
    int all_masks;   /* 1: S4 train clips get every second's mask, not only the first */
    int crf;         /* x264 quality (default 20) */
    int jobs;        /* clips encoded in parallel */
    int shard_i, shard_n; /* write only clips with index % shard_n == shard_i (n = 0 or 1: all);
                             every shard writes the same complete CSV files */
    int progress;    /* 1: progress bar on a TTY */
    int avss_unknown;/* AVSS, for testing importers: this many pixels of the first label of clip 0
                        get a colour outside the palette (1, 2, 3) */
};

void avs_synth_opts_default(struct avs_synth_opts *o);

/* One visible object and how it moves: centre (x, y) in output pixels and height h in output
 * pixels go from *0 at t = 0 to *1 at the end along a smoothstep, plus a small bob. */
struct avs_synth_layer {
    int category, object, sound;
    int flip;                  /* mirrored horizontally */
    float x0, y0, x1, y1, h0, h1;
    float bob_amp, bob_freq, bob_phase;
    float pan;                 /* -1 left .. 1 right */
    float gap_min, gap_max;    /* seconds of silence between repeats of the recording */
    uint64_t seed;             /* for the repeats' gaps */
};

/* Everything needed to render one clip (no pointers: plans are plain data). */
struct avs_synth_clip {
    char uid[16];
    char label[128];           /* CSV category: S4 the object's, MS3 sounding ones "a+b" */
    int index, split, fps, seconds, width, height;
    int avss_set;              /* AVSS: enum avs_synth_avss_set */
    int background;
    float bg_zoom0, bg_zoom1, bg_cx0, bg_cy0, bg_cx1, bg_cy1; /* Ken Burns pan of the photo */
    int n_layers;              /* back to front */
    struct avs_synth_layer layers[AVS_SYNTH_MAX_LAYERS];
    uint8_t sounding[AVS_SYNTH_MAX_SECONDS]; /* [k-1]: bit l = layer l is heard in second k */
    float noise;               /* std of the added white noise */
    uint64_t seed;
};

/* Plan `o->videos` clips (deterministic for the seed). clips[] is malloc'd. */
int avs_synth_plan(const struct avs_synth_media *m, const struct avs_synth_opts *o,
                   struct avs_synth_clip **clips, struct avs_err *err);

/* DESIGN §3: the decoded frame index shown for second k (1-based) at frame rate fps. */
int avs_synth_frame_for_second(int k, double fps);

/* Render frame `f` (0-based) as RGB into rgb [h][w][3]; if mask is not NULL, also the mask of
 * the layers in bitmask `mask_layers` as 0/255 into mask [h][w]; if alpha is not NULL, the
 * composited visible alpha of those layers in [0,1] into alpha [h][w]. */
void avs_synth_render_frame(const struct avs_synth_media *m, const struct avs_synth_clip *c,
                            int f, uint8_t *rgb, uint8_t *mask, unsigned mask_layers,
                            float *alpha);

/* The soundtrack: interleaved stereo float at AVS_SYNTH_RATE, c->seconds long. If `layer` is
 * >= 0, only that layer's gated track (mono, no noise) instead. *pcm malloc'd, *n frames. */
void avs_synth_render_audio(const struct avs_synth_media *m, const struct avs_synth_clip *c,
                            int layer, float **pcm, int64_t *n);

/* Render and write one clip (mp4 + masks) under out_dir. */
int avs_synth_write_clip(const char *out_dir, const struct avs_synth_media *m,
                         const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                         struct avs_err *err);

/* Plan, write every clip (in parallel) and the CSV files. */
int avs_synth_run(const char *out_dir, const struct avs_synth_media *m,
                  const struct avs_synth_opts *o, struct avs_err *err);

const char *avs_synth_split_name(int split);

/* AVSS (synth/avss.c): one clip's folder <set>/<uid>/ (frames, labels, audio.wav), and the
 * tree's metadata.csv, label2idx.json. */
int avs_synth_avss_write_clip(const char *out_dir, const struct avs_synth_media *m,
                              const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                              struct avs_err *err);
int avs_synth_avss_write_meta(const char *out_dir, const struct avs_synth_media *m,
                              const struct avs_synth_clip *clips, const struct avs_synth_opts *o,
                              struct avs_err *err);
const char *avs_synth_avss_set_name(int set);

/* mp4 writer (synth/mp4.c): H.264 (libx264) + AAC (native), bit-exact flags set. */
struct avs_mp4;
int avs_mp4_open(const char *path, int w, int h, int fps, int rate, int crf,
                 struct avs_mp4 **mp4, struct avs_err *err);
/* One RGB frame [h][w][3]. */
int avs_mp4_video(struct avs_mp4 *mp4, const uint8_t *rgb, struct avs_err *err);
/* All audio: interleaved stereo float, n frames. Call once, before or after the video. */
int avs_mp4_audio(struct avs_mp4 *mp4, const float *pcm, int64_t n, struct avs_err *err);
/* Flush, write the trailer, free. *mp4 = NULL. Returns -1 (err) if any step failed. */
int avs_mp4_close(struct avs_mp4 **mp4, struct avs_err *err);

/* Decoding helpers for media files (synth/media.c), through libavformat/libavcodec. */
int avs_synth_decode_image(const char *path, struct avs_image *rgb, struct avs_err *err);
int avs_synth_decode_audio(const char *path, int rate, float **pcm, int64_t *n,
                           struct avs_err *err);

#endif
