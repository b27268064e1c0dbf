/* store/store.h: one video of the store read the way every program takes it (DESIGN §2): the
 * files of its seconds from the index, a frame as the network's input (or as float RGB for
 * augmentation), the joined audio wave, ground-truth masks. avs-ingest (ingest/) writes the
 * store; avs-features (features/), avs-train (train/) and avs-predict (predict/, through
 * train/) read it only through here, so they see the same numbers.
 *
 *   struct avs_store_seconds s;
 *   if (avs_store_seconds(&s, db, video_id, n, &err)) ...;       paths of seconds 1..n
 *   avs_store_frame(x, root, s.frame[k - 1], H, W, flip, &err);  x [3,H,W] network input
 *   avs_store_wave(wave, root, s.audio, n, &err);                 wave [n * AVS_STORE_RATE]
 *   avs_store_mask_read(&m, path, H, W, &err);                   m [H,W] 0/1
 *   avs_store_mask_place(y, m, H, W, flip);                      y [H,W] float 0/1
 *   avs_store_seconds_free(&s);
 * Augmenting callers (fine-tuning's colour jitter) take avs_store_frame_rgb (float RGB in
 * [0,1]), change it, then avs_store_norm: without a change that is avs_store_frame's input to
 * the bit.
 *
 * Network input (ref: AVSBench's transforms.ToTensor() then Normalize((0.485, 0.456, 0.406),
 * (0.229, 0.224, 0.225))): x[c,y,x] = (v/255 - mean[c]) / std[c] in float, v the byte of
 * channel c of pixel (y, x) (of pixel (y, W-1-x) when flipped); a gray PNG (1 or 2 channels)
 * repeats its gray value in all three, an RGBA one drops alpha.
 * Masks (the evaluator's reader, eval/eval.h): foreground = value >= 128.
 * Sizes are checked against the caller's H, W (the feature set's frame size): a store ingested
 * at another size is an error naming the file and the fix (re-ingest with --size).
 * All of this is host memory: callers upload what they read to the backend (backend/backend.h).
 */
#ifndef AVS_STORE_STORE_H
#define AVS_STORE_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"
#include "core/db.h"

#define AVS_STORE_RATE 16000 /* audio samples per stored second (mono, 16 kHz) */

/* A video's files and rows change together only under its lock: avs-ingest holds it
 * exclusively from renaming a new version's files into place until its rows have committed
 * (and the old version's leftover files are gone); a reader holds it shared from before it reads
 * the video's rows until it has read the files they name, so it sees one version whole. The
 * lock is a flock on the video's folder frames/<uid> (every ingested video has one).
 *   struct avs_store_lock lk = AVS_STORE_UNLOCKED;
 *   if (avs_store_lock(&lk, db, root, video_id, &err)) ...;   then avs_store_seconds, files
 *   avs_store_unlock(&lk);
 * A writer holds it for about its index's busy timeout at most, a reader only while it reads
 * the files (not while it computes on them); either waits AVS_STORE_LOCK_WAIT_MS for the other,
 * then fails saying so (a stopped process holds it). Readers cannot starve a writer: a writer
 * waiting for a video holds the store's gate (a flock on frames/) for up to 5 s, and new
 * readers queue there while it waits for the readers already in; the gate's wait counts in
 * the AVS_STORE_LOCK_WAIT_MS. A process takes one video's lock at a time. */
struct avs_store_lock {
    int fd;   /* frames/<uid> while locked, else -1 */
    int torn; /* avs_store_lock refused the video for the mark below */
};
#define AVS_STORE_UNLOCKED {-1, 0}
#define AVS_STORE_LOCK_WAIT_MS (2 * AVS_DB_BUSY_MS)
/* Shared lock of the video with row id video_id. 0, or -1 with err (the video is no longer in
 * the index: re-ingested or removed since the caller listed it; its folder is missing; the lock
 * stayed held; it carries the mark of a stopped writer: l->torn set). */
int avs_store_lock(struct avs_store_lock *l, sqlite3 *db, const char *root, int64_t video_id,
                   struct avs_err *err);
/* The writers' side (avs-ingest, its merge): the exclusive lock of the video with this uid.
 * A video with no folder yet has no reader to keep out: l stays unlocked, 0. -1 with err when
 * the lock stayed held by a reader or cannot be taken. */
int avs_store_lock_writer(struct avs_store_lock *l, const char *root, const char *uid,
                          struct avs_err *err);
/* Release (NULL-safe, twice-safe). */
void avs_store_unlock(struct avs_store_lock *l);
/* The mark a writer holding l leaves in frames/<uid> (".replacing") from before its first
 * rename until the new rows have committed: if it is killed in between, the rows are the old
 * version and some files the new one. avs_store_lock then refuses the video (run avs-ingest
 * again), avs-ingest redoes it whatever its signature says, and merge refuses it as a
 * source. No-ops while l holds no folder (a new video: no rows, no reader). */
int avs_store_mark(const struct avs_store_lock *l, struct avs_err *err);
void avs_store_unmark(const struct avs_store_lock *l);
/* 1 when root/frames/<uid> carries the mark. */
int avs_store_marked(const char *root, const char *uid);
/* 0, or -1 with the refusal in err when it does (avs-eval's store listings). */
int avs_store_unmarked(const char *root, const char *uid, struct avs_err *err);

/* The files of a video's seconds 1..n, paths relative to the store root (rows of the index's
 * `seconds` and `masks` tables). */
struct avs_store_seconds {
    int n;
    char **frame; /* [n] frames/<uid>/<k>.png */
    char **audio; /* [n] audio/<uid>/<k>.wav, NULL: silence */
    char **mask;  /* [n] masks/<uid>/<k>.png, NULL: no ground truth for that second */
};

/* Seconds 1..n of the video with row id video_id; every one must be in the index. 0, or -1
 * (err says to re-ingest); s is untouched on failure. */
int avs_store_seconds(struct avs_store_seconds *s, sqlite3 *db, int64_t video_id, int n,
                      struct avs_err *err);
/* Free the paths and zero s (NULL-safe, twice-safe). */
void avs_store_seconds_free(struct avs_store_seconds *s);
/* Only the masks: rel[k-1] = the mask path of second k (malloc'd), NULL where none, k = 1..n
 * (all NULL first, so rel can be freed after a failure too). */
int avs_store_masks(char **rel, sqlite3 *db, int64_t video_id, int n, struct avs_err *err);

/* dst [3,H,W] = (rgb - mean) / std of rgb [3,H,W] (float RGB in [0,1]), mirrored when flip. */
void avs_store_norm(float *dst, const float *rgb, int H, int W, int flip);
/* dst [3,H,W] = the network input of the bytes px [H,W,c] (c 1..4), mirrored when flip. */
void avs_store_norm_u8(float *dst, const uint8_t *px, int c, int H, int W, int flip);
/* dst [3,H,W]: the network input of frame PNG root/rel (which must be H x W). 0 or -1. */
int avs_store_frame(float *dst, const char *root, const char *rel, int H, int W, int flip,
                    struct avs_err *err);
/* rgb [3,H,W] = v/255 of frame PNG root/rel (H x W; gray repeated), for augmentation. 0 or -1. */
int avs_store_frame_rgb(float *rgb, const char *root, const char *rel, int H, int W,
                        struct avs_err *err);

/* wave [n * AVS_STORE_RATE]: the seconds' WAVs rel[0..n) joined (a NULL path, or a short file's
 * tail, is silence), as libsndfile reads s16 (v / 32768). 0 or -1 (err names the file). */
int avs_store_wave(float *wave, const char *root, char *const *rel, int n, struct avs_err *err);

/* *mask [H*W] (malloc'd) = 1 where the ground-truth PNG at path has value >= 128, else 0; the
 * file must be H x W. 0, or -1 with err naming the file; *mask untouched on failure. */
int avs_store_mask_read(uint8_t **mask, const char *path, int H, int W, struct avs_err *err);
/* The class-index mask at path (AVSS, masks.kind 'class') into *mask [H*W] (malloc'd): an index
 * >= K (255: a colour not in the palette) reads as 0, background, as the official loader has it. */
int avs_store_class_mask_read(uint8_t **mask, const char *path, int H, int W, int K,
                              struct avs_err *err);
/* dst [H,W] = mask [H,W] as float 0/1, mirrored when flip; mask NULL: zeros. */
void avs_store_mask_place(float *dst, const uint8_t *mask, int H, int W, int flip);

#endif
