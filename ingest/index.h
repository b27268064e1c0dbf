/* ingest/index.h: the index side of ingest: change detection, uids, and the one transaction
 * per video. Internal to ingest/ (callers hold the DB mutex). Readers of the store use
 * store/store.h; the content hash is core/hash.h. */
#ifndef AVS_INGEST_INDEX_H
#define AVS_INGEST_INDEX_H

#include <sqlite3.h>
#include <stdint.h>

#include "ingest/ingest.h"

/* What identifies one version of an input. */
struct avs_signature {
    int64_t size, mtime_ns;
    char hash[33];        /* murmur3-128 hex; "" = not computed yet */
    const char *options;  /* the ingest options that shape the stored files */
};

/* One video's metadata and files, ready to commit. */
struct avs_video_rows {
    double duration, fps;
    int src_w, src_h, width, height;
    const char *video_codec, *audio_codec;
    int audio_rate, audio_channels, has_audio, decode_errors;
    int n_seconds;
    const int *flags;       /* [n_seconds] */
    const int *has_mask;    /* [n_seconds] 1 where masks/<uid>/<k>.png was written */
    /* AVSS (class-index masks, released copies; docs/avss.md) */
    int avss;               /* 1: masks.kind 'class', seconds.released and masks.released set */
    const int64_t *unknown; /* [n_seconds] masks.unknown_pixels (NULL: 0) */
};

enum {
    AVS_INGEST_CHANGED = 0,
    AVS_INGEST_UNCHANGED = 1,
    AVS_INGEST_TOUCHED = 2,
    AVS_INGEST_STILL_FAILED = 3
};

/* Compare with the stored row of `source`. Fills sig->hash when size/mtime differ (hashing
 * hash_path, or the caller-computed hash when hash_path is NULL). Returns UNCHANGED, TOUCHED
 * (same content, mtime updated), STILL_FAILED (unchanged, failed before) or CHANGED; -1 on error. */
int avs_ingest_check(sqlite3 *db, const char *source, const char *hash_path, struct avs_signature *sig,
                    int retry_failed, struct avs_err *err);
/* Give every item without a uid a unique one (file stem, "_2", "_3"... on clashes; a source
 * already in the index keeps its uid). */
int avs_ingest_assign_uids(sqlite3 *db, struct avs_ingest_plan *plan, struct avs_err *err);
int avs_ingest_commit_ok(sqlite3 *db, const struct avs_ingest_item *it, const struct avs_signature *sig,
                        const struct avs_video_rows *rows, struct avs_err *err);
int avs_ingest_commit_failed(sqlite3 *db, const struct avs_ingest_item *it,
                            const struct avs_signature *sig, const char *why, struct avs_err *err);

/* The class table of `dataset` (classes rows idx = 0..n-1), replaced in one transaction
 * when it differs from the stored one (unchanged: nothing written). */
int avs_ingest_commit_classes(sqlite3 *db, const char *dataset, char *const *names, int n,
                              struct avs_err *err);

/* After a commit: remove files of an older version of a video from its folder root/rel (opened
 * confined, core/fs.h): those whose k is not in 1..n, or (keep != NULL) whose keep[k-1] is 0. */
void avs_ingest_drop_stale(const char *root, const char *rel, int n, const int *keep);

/* Remove temp files left by a killed run (call while holding the store lock). */
void avs_ingest_sweep(const char *root);

#endif
