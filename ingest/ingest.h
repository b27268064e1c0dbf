/* ingest/ingest.h: clip folders and AVSBench trees into the store (DESIGN §2-3).
 *
 *   struct avs_ingest_plan plan = {0};
 *   avs_ingest_plan_paths(&plan, paths, n, category, split, &err);   folders/files of clips
 *   avs_ingest_plan_avsbench(&plan, "AVSBench/", &err);              s4/ms3/avss trees
 *   avs_ingest_run(&opts, &plan, &stats, &err);                      decode, write, index
 *   avs_ingest_plan_free(&plan);
 *
 * Store: frames/<uid>/<k>.png, audio/<uid>/<k>.wav, masks/<uid>/<k>.png, index avs.db; AVSS
 * videos also released/<uid>/frames/<k>.jpg and released/<uid>/masks/<k>.png (docs/avss.md).
 * Crash safety: every file is written under a temp name in its final folder and renamed; a
 * video's rows commit in one transaction after all its files exist; the store is locked
 * (flock on <root>/.avs-ingest.lock) so a second writer is told the store is busy; stale temp
 * files are swept at start. Unchanged inputs (same size and mtime, or same content hash, and
 * same options) are skipped without decoding.
 */
#ifndef AVS_INGEST_INGEST_H
#define AVS_INGEST_INGEST_H

#include <stddef.h>

#include "core/common.h"
#include "ingest/decode.h"

struct avs_ingest_item {
    char *source;      /* absolute path: the clip, or the AVSBench frame folder */
    char *uid;         /* store name (assigned by avs_ingest_run if NULL), a valid name
                        * (core/names.h) */
    char *name;        /* the dataset's own name when uid differs from it (videos.name) */
    char *category;    /* may be NULL */
    char *split;       /* may be NULL */
    const char *subset;/* "s4", "ms3", "avss" or "other" */
    char *video;       /* clip to decode; NULL when frames are imported */
    char *frame_pattern; /* AVSBench released frames: printf pattern with one %d for k */
    char *mask_pattern;  /* AVSBench masks: printf pattern with one %d for k; NULL = none */
    char *audio_file;    /* AVSBench audio_wav file; NULL = from the video */
    char *problem;       /* set when planning already knows the item cannot be ingested */
    /* AVSS (subset "avss"): source is the release folder <set>/<uid> (frames/<i>.jpg,
     * labels_rgb/<i>.png, audio.wav; i = k - 1) */
    const char *avss_set;  /* "v1s", "v1m" or "v2"; NULL for other subsets */
    int n_classes;         /* classes of label2idx.json: other colours are unknown */
    char *classes_file;    /* that label2idx.json (its stat is part of the signature) */
};

struct avs_ingest_plan {
    struct avs_ingest_item *items;
    size_t n, cap;
    char **classes;        /* AVSS class names in label2idx.json's index order, NULL if none */
    int n_classes;
    char *classes_file;
};

int avs_ingest_plan_paths(struct avs_ingest_plan *plan, char *const *paths, int n,
                          const char *category, const char *split, struct avs_err *err);
/* S4/MS3 (s4_meta_data.csv, ms3_meta_data.csv) and AVSS (metadata.csv + label2idx.json) trees
 * in root, root/Single-source, root/Multi-sources, root/AVSBench-semantic... */
int avs_ingest_plan_avsbench(struct avs_ingest_plan *plan, const char *root, struct avs_err *err);
/* The AVSS release in dir, if dir has a metadata.csv (*found incremented). A label2idx.json
 * that is not a name -> index object with indices 0..n-1 (n <= 255) makes every row of the
 * tree fail with the reason; a row without its folder fails alone. -1 only for an unreadable
 * metadata.csv, or a second tree whose label2idx.json differs from the first's. */
int avs_ingest_plan_avss(struct avs_ingest_plan *plan, const char *dir, int *found,
                         struct avs_err *err);
void avs_ingest_plan_free(struct avs_ingest_plan *plan);
/* it->uid from a dataset's name (core/names.h): the name itself when valid, its safe form (the
 * name kept in it->name) when it holds '/', '%' or a leading '.' or '-'; a refused name gives
 * uid "refused-<hash of it->source>" and it->problem "<where>: why and the fix". 0, or -1 when refused. */
int avs_ingest_item_name(struct avs_ingest_item *it, const char *name, const char *where);
/* Add row `row` of a dataset's table that cannot be taken (why: the reason and the fix) as an
 * item that fails: source "<table> row <row>", uid "refused-<hash>". */
struct avs_ingest_item *avs_ingest_plan_refused(struct avs_ingest_plan *plan, const char *table,
                                                size_t row, const char *subset, const char *name,
                                                const char *why);
void avs_ingest_item_free(struct avs_ingest_item *it);
/* Add one item (copies strings). Used by the planners. */
struct avs_ingest_item *avs_ingest_plan_add(struct avs_ingest_plan *plan, const char *source,
                                            const char *subset);

struct avs_ingest_opts {
    const char *root;         /* store root */
    const char *db_path;      /* index; NULL = root/avs.db */
    int jobs;                 /* worker threads */
    struct avs_decode_opts dec;
    int retry_failed;         /* redo unchanged inputs that failed before */
    int shard_i, shard_n;     /* this process takes items i, i+N, ... (after sorting) */
    int progress;             /* draw a progress bar when stderr is a TTY */
};

struct avs_ingest_stats {
    int total, ingested, unchanged, failed, no_audio, decode_errors;
    int still_failed;     /* unchanged inputs that failed before (counted in unchanged too) */
    double seconds;
};

/* 0 when every item is ingested or unchanged, 2 when some failed now or before and are
 * unchanged (each recorded), -1 fatal. */
int avs_ingest_run(const struct avs_ingest_opts *opts, struct avs_ingest_plan *plan,
                   struct avs_ingest_stats *stats, struct avs_err *err);

/* Merge stores made by shards (--shard i/N, each with its own --root) into `root`: files
 * linked or copied, rows copied, one transaction per video; unchanged videos skipped; a uid
 * already used by another source is a conflict (counted as failed). Same return as run. */
int avs_ingest_merge(const char *root, const char *db_path, char *const *sources, int n,
                     struct avs_ingest_stats *stats, struct avs_err *err);

#endif
