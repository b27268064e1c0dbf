/* features/run.h: internal to features/: the pieces of avs-features (features/features.h)
 * that its files share: loading the encoders, the record layout, one video's records (store
 * path, run_video.c) and the compute routine the store and clip paths share.
 */
#ifndef AVS_FEATURES_RUN_H
#define AVS_FEATURES_RUN_H

#include <sqlite3.h>
#include <stdint.h>

#include "features/features.h"

/* The encoders by name and files (NULL file: random from seed, PyTorch-style init); the visual
 * ImageNet head and the AudioSet head are required. Sets V, A, E. 0 or -1 (err names the file). */
int avs_feat_enc_load(struct avs_feat_enc *e, const char *visual, const char *visual_file,
                      const char *audio, const char *audio_file, const char *audio_head,
                      uint64_t seed, struct avs_err *err);
/* The log-mel front ends the loaded audio encoder needs (sets have_mel / have_pmel). */
int avs_feat_frontend_init(struct avs_feat_enc *e, struct avs_err *err);
/* Free avs_feat_compute's buffers (device memory, the PVTv2 workspace); NULL-safe
 * (avs_feat_enc_close calls it). */
void avs_feat_bufs_free(struct avs_feat_bufs **b);
/* The random S [V,A] of `--random-init seed` without --vectors (V, A set). */
void avs_feat_sim_random(struct avs_feat_enc *e, uint64_t seed);
/* The record layout (features/features.h) from the loaded encoders and H, W. */
void avs_feat_fields(struct avs_feat_enc *e);
/* One video of the store (its seconds, frames and wave through store/store.h), in two halves
 * so that ranks can compute videos that rank 0 writes (features/run.c, dist/ranks.h):
 * _make computes it into a message (malloc'd, *bytes): its records and targets, or why it
 * failed (an input problem: the run goes on); _take, on the writing process, appends the
 * message's records to the set's cache (synced) and commits the video's rows: 0 done, 1 the
 * video failed (err: the message's reason), -1 fatal (cache or index write failed, or a
 * message that is not this set's). Records and rows are those of one process computing it. */
void *avs_feat_video_make(struct avs_feat_enc *e, const struct avs_features_opts *o, sqlite3 *db,
                          int64_t video_id, int n, size_t *bytes);
int avs_feat_video_take(const struct avs_feat_enc *e, sqlite3 *db, struct avs_cache_writer *cw,
                        int64_t set_id, int64_t video_id, int n, const void *buf, size_t bytes,
                        struct avs_err *err);
/* The one compute routine of a video's records, shared by the store path (avs_feat_video) and
 * the in-memory clip path (features/clip.c): wave [n*16000] -> log-mel by `policy`, VGGish
 * (or PANNs' log-mel of each second, CNN14);
 * frames from get_frame(ctx, k 1..n, flip, dst [3,H,W] normalised) in chunks -> PVTv2, C3IM,
 * Grad-CAM CC and CC-V; put(ctx, i, rec [AVS_FEAT_NFIELDS] in field order, CC, CC-V) for record
 * i = 0..B-1 (B = n, or 2n with flip: i >= n are the mirrored frames of second i-n+1), in order.
 * wave, dst and rec are host memory: the encoders run on the active backend in buffers made
 * once per encoder (e->bufs), and what the records need is downloaded per chunk.
 * Callbacks return 0, or -1 with err set. Returns 0; 1 when get_frame or the log-mel failed
 * (an input problem); -1 when put failed. */
typedef int (*avs_feat_frame_fn)(void *ctx, int k, int flip, float *dst, struct avs_err *err);
typedef int (*avs_feat_record_fn)(void *ctx, int i, const float *const *rec, int target,
                                  int target_v, struct avs_err *err);
int avs_feat_compute(struct avs_feat_enc *e, enum avs_logmel_policy policy, const float *wave,
                     int n, int flip, avs_feat_frame_fn get_frame, avs_feat_record_fn put,
                     void *ctx, struct avs_err *err);
/* A usable set name: letters, digits, '-', '_', '.', not starting with '.', < 100 chars. */
int avs_feat_set_name_ok(const char *s);
/* feature_sets.status of the set: 'complete' when every ok video of the store has rows. */
void avs_feat_set_status(sqlite3 *db, int64_t set_id);

#endif
