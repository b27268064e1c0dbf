/* ingest/run.c: the worker pool and the per-video pipeline:
 *
 *   check (size, mtime, hash, options) ──unchanged──▶ skip
 *        │ changed
 *        ▼
 *   decode clip / import frames ──▶ PNG + WAV (+ masks) under temp names ──▶ rename all
 *        ──▶ one transaction: old rows out, video + seconds + masks in ──▶ drop stale files
 *   any failure: temp files removed, the video recorded as failed with the reason.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "core/av.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/wav.h"
#include "ingest/avss.h"
#include "ingest/index.h"
#include "store/store.h"

struct run {
    const struct avs_ingest_opts *o;
    struct avs_ingest_plan *plan;
    sqlite3 *db;
    pthread_mutex_t db_lock, stats_lock;
    size_t next;
    int fatal;
    struct avs_err fatal_err;
    char options[96];
    struct avs_ingest_stats *stats;
    struct avs_progress progress;
};

/* Files written under temp names in the video's confined folders, renamed into place together. */
struct staged {
    struct avs_fs_out *f;
    size_t n, cap;
};

/* The video's folders: frames/<uid>, audio/<uid>, masks/<uid>, released/<uid> and (AVSS)
 * released/<uid>/frames, released/<uid>/masks. */
enum { D_FRAMES, D_AUDIO, D_MASKS, D_RELEASED, D_REL_FRAMES, D_REL_MASKS, N_DIRS };

/* One video in flight. */
struct job {
    struct run *r;
    const struct avs_ingest_item *it;
    struct staged files;
    char *rel[N_DIRS];   /* the folders, relative to the root */
    char *shown[N_DIRS]; /* root/rel, for messages */
    int fd[N_DIRS];      /* opened confined (core/fs.h), -1 until then */
    struct avs_store_lock lock; /* the video's, while its files and rows change */
    int width, height;
    /* AVSS */
    int64_t *unknown;    /* [n] masks.unknown_pixels */
    uint8_t present[256];/* class indices seen in the labels */
    int store_failed;    /* a write into the store failed (disk full, I/O error): fatal */
    struct avs_err err;
};

/* rc of a write into the store: a failure is the store's, not the input's (the run stops). */
static int store_write(struct job *j, int rc)
{
    if (rc)
        j->store_failed = 1;
    return rc ? -1 : 0;
}

/* The temp file for <k>.<ext> in folder d, opened for writing (the earlier one again when that
 * file is already staged: a clip decoded twice, see decode.c, rewrites the same files). Write
 * through its path, then stage_done. NULL with j->err on failure. */
static struct avs_fs_out *stage_open(struct job *j, int d, int k, const char *ext)
{
    struct staged *s = &j->files;
    char *name = avs_sprintf("%d.%s", k, ext);
    struct avs_fs_out *o = NULL;
    for (size_t i = 0; i < s->n && !o; i++)
        if (s->f[i].dir == j->fd[d] && !strcmp(s->f[i].name, name))
            o = avs_fs_out_reopen(&s->f[i], &j->err) ? NULL : &s->f[i];
    if (!o) {
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 32;
            s->f = avs_realloc(s->f, s->cap * sizeof *s->f);
        }
        if (avs_fs_out_open_at(&s->f[s->n], j->fd[d], j->shown[d], name, &j->err) == 0)
            o = &s->f[s->n++];
    }
    free(name);
    if (!o)
        store_write(j, -1);
    return o;
}

/* The writer's status, after closing the temp file (kept for the commit). */
static int stage_done(struct job *j, struct avs_fs_out *o, int rc)
{
    if (rc) /* the writer named the temp file by its descriptor path, /proc/self/fd/<fd> */
        avs_err_replace(&j->err, o->path, "its temp file");
    avs_fs_out_close_file(o);
    if (rc)
        avs_err_wrap(&j->err, "writing %s", o->shown);
    return store_write(j, rc);
}

/* The video's lock (store/store.h), exclusive: from renaming its files into place until its
 * rows have committed and the old version's leftovers are gone, so that readers see one
 * version whole. Taken with no SQLite lock held (readers never wait for SQLite); released by
 * free_dirs. */
static int lock_video(struct job *j)
{
    if (j->lock.fd >= 0)
        return 0;
    return store_write(j, avs_store_lock_writer(&j->lock, j->r->o->root, j->it->uid, &j->err));
}

/* The lock, and the mark that stays if we are killed before the new rows commit. */
static int lock_and_mark(struct job *j)
{
    return lock_video(j) || store_write(j, avs_store_mark(&j->lock, &j->err)) ? -1 : 0;
}

static int stage_commit(struct staged *s, struct avs_err *err)
{
    for (size_t i = 0; i < s->n; i++)
        if (avs_fs_out_commit(&s->f[i], err))
            return -1;
    return 0;
}

static void stage_free(struct staged *s)
{
    for (size_t i = 0; i < s->n; i++)
        avs_fs_out_free(&s->f[i]); /* removes the temp files of an uncommitted video */
    free(s->f);
    memset(s, 0, sizeof *s);
}

static int on_frame(void *ctx, int k, const struct avs_image *img)
{
    struct job *j = ctx;
    struct avs_fs_out *o = stage_open(j, D_FRAMES, k, "png");
    j->width = img->w;
    j->height = img->h;
    return o ? stage_done(j, o, avs_png_write(o->path, img, 1, &j->err)) : -1;
}

/* src copied byte for byte to <k>.<ext> in folder d, through a staged temp file. */
static int copy_to(struct job *j, const char *src, int d, int k, const char *ext)
{
    char *data;
    size_t len;
    if (avs_fs_read_all(src, &data, &len, &j->err))
        return -1;
    struct avs_fs_out *o = stage_open(j, d, k, ext);
    int rc = o ? avs_fs_write_file(o->path, data, len, &j->err) : -1;
    free(data);
    return o ? stage_done(j, o, rc) : -1;
}

static int copy_file(struct job *j, const char *src, int d, int k)
{
    return copy_to(j, src, d, k, "png");
}

/* img as PNG <k>.png in folder d, through a staged temp file. */
static int stage_png(struct job *j, int d, int k, const struct avs_image *img)
{
    struct avs_fs_out *o = stage_open(j, d, k, "png");
    return o ? stage_done(j, o, avs_png_write(o->path, img, 1, &j->err)) : -1;
}

static int write_audio(struct job *j, const struct avs_decode_result *res)
{
    for (int k = 1; k <= res->n_seconds; k++) {
        struct avs_fs_out *o = stage_open(j, D_AUDIO, k, "wav");
        if (!o || stage_done(j, o, avs_wav_write_s16(o->path, AVS_AUDIO_RATE,
                                                     res->audio + (size_t)(k - 1) * AVS_AUDIO_RATE,
                                                     AVS_AUDIO_RATE, &j->err)))
            return -1;
    }
    return 0;
}

/* Masks k = 1..n that exist in the dataset, copied as they are. has_mask [n] out. */
static int import_masks(struct job *j, int n, int *has_mask)
{
    for (int k = 1; j->it->mask_pattern && k <= n; k++) {
        char *src = avs_sprintf(j->it->mask_pattern, k);
        if (avs_fs_exists(src)) {
            if (copy_file(j, src, D_MASKS, k)) {
                free(src);
                return -1;
            }
            has_mask[k - 1] = 1;
        }
        free(src);
    }
    return 0;
}

static void name_dirs(struct job *j)
{
    static const char *const kinds[N_DIRS] = {"frames", "audio", "masks", "released",
                                              "released", "released"};
    static const char *const sub[N_DIRS] = {"", "", "", "", "/frames", "/masks"};
    for (int i = 0; i < N_DIRS; i++) {
        j->rel[i] = avs_sprintf("%s/%s%s", kinds[i], j->it->uid, sub[i]);
        j->shown[i] = avs_fs_join(j->r->o->root, j->rel[i]);
        j->fd[i] = -1;
    }
    j->lock.fd = -1;
}

/* Folders from..to-1 created and opened, confined to the store (core/fs.h). */
static int open_dirs(struct job *j, int from, int to)
{
    for (int i = from; i < to; i++)
        if (avs_fs_open_under(j->r->o->root, j->rel[i], 1, &j->fd[i], &j->err))
            return -1;
    return 0;
}

static void free_dirs(struct job *j)
{
    for (int i = 0; i < N_DIRS; i++) {
        if (j->fd[i] >= 0)
            close(j->fd[i]);
        free(j->rel[i]), free(j->shown[i]);
    }
    avs_store_unlock(&j->lock);
}

/* Imported AVSBench frames: copy <name>_<k>.png for k = 1.. while they exist. */
static int import_frames(struct job *j, int *n_out)
{
    int n = 0, cap = j->r->o->dec.max_seconds;
    for (int k = 1; cap <= 0 || k <= cap; k++) {
        char *src = avs_sprintf(j->it->frame_pattern, k);
        int have = avs_fs_exists(src);
        if (have && k == 1) {
            struct avs_image img = {0};
            if (avs_png_read(src, &img, NULL, &j->err)) {
                free(src);
                return -1;
            }
            j->width = img.w, j->height = img.h;
            avs_image_free(&img);
        }
        if (have && copy_file(j, src, D_FRAMES, k)) {
            free(src);
            return -1;
        }
        free(src);
        if (!have)
            break;
        n = k;
    }
    *n_out = n;
    if (n == 0)
        return avs_err_set(&j->err, "no frames found for %s", j->it->source);
    return 0;
}

/* ---- signatures -------------------------------------------------------------------------- */

/* For imported frames: total size, newest mtime, and a hash of the listing (file k, size,
 * mtime) of the released frames, masks and audio. */
static int listing_signature(const struct avs_ingest_item *it, struct avs_signature *sig, struct avs_err *err)
{
    struct avs_hash h;
    avs_hash_init(&h);
    sig->size = 0, sig->mtime_ns = 0;
    const char *pats[3] = {it->frame_pattern, it->mask_pattern, it->audio_file};
    int rc = 0;
    for (int p = 0; p < 3 && rc == 0; p++)
        for (int k = 1; pats[p] && k < 1000000; k++) {
            char *f = p == 2 ? avs_strdup(pats[p]) : avs_sprintf(pats[p], k);
            int64_t sz, mt;
            int have = avs_fs_exists(f);
            if (have && (rc = avs_fs_stat(f, &sz, &mt, err)) == 0) {
                char line[96];
                int n = snprintf(line, sizeof line, "%d:%d:%lld:%lld;", p, k, (long long)sz, (long long)mt);
                avs_hash_update(&h, line, (size_t)n);
                sig->size += sz;
                sig->mtime_ns = mt > sig->mtime_ns ? mt : sig->mtime_ns;
            }
            free(f);
            if (!have || rc || p == 2)
                break;
        }
    avs_hash_final(&h, sig->hash);
    return rc;
}

static int signature(const struct job *j, struct avs_signature *sig, struct avs_err *err)
{
    memset(sig, 0, sizeof *sig);
    sig->options = j->r->options;
    if (j->it->avss_set)
        return avs_ingest_avss_signature(j->it, sig, err);
    if (j->it->frame_pattern)
        return listing_signature(j->it, sig, err);
    if (j->it->video)
        return avs_fs_stat(j->it->video, &sig->size, &sig->mtime_ns, err);
    return 0;
}

/* ---- one video --------------------------------------------------------------------------- */

static void fill_rows(const struct job *j, const struct avs_decode_result *res, const int *has_mask,
                      struct avs_video_rows *rows)
{
    memset(rows, 0, sizeof *rows);
    rows->duration = res->duration > 0 ? res->duration : res->n_seconds;
    rows->fps = res->fps;
    rows->src_w = res->src_w ? res->src_w : j->width;
    rows->src_h = res->src_h ? res->src_h : j->height;
    rows->width = j->width;
    rows->height = j->height;
    rows->video_codec = res->video_codec;
    rows->audio_codec = res->audio_codec;
    rows->audio_rate = res->audio_rate;
    rows->audio_channels = res->audio_channels;
    rows->has_audio = res->has_audio;
    rows->decode_errors = res->decode_errors;
    rows->n_seconds = res->n_seconds;
    rows->flags = res->flags;
    rows->has_mask = has_mask;
    rows->avss = j->it->avss_set != NULL;
    rows->unknown = j->unknown;
}

/* n seconds of audio from `audio` (a wav or a video; NULL: none): else silence, flagged. */
static void import_audio(struct job *j, const char *audio, int n, struct avs_decode_result *res)
{
    struct avs_err aerr = {0};
    if (!audio || avs_decode_audio_file(audio, n, res, &aerr)) {
        if (audio)
            avs_log_warn("%s: audio not usable (%s): silence written", j->it->source, aerr.msg);
        avs_decode_result_free(res);
        res->n_seconds = n;
        res->audio = avs_calloc((size_t)n * AVS_AUDIO_RATE, sizeof(int16_t));
        res->flags = avs_calloc((size_t)n, sizeof(int));
        for (int k = 0; k < n; k++)
            res->flags[k] |= AVS_SEC_NO_AUDIO;
    } else {
        res->has_audio = 1;
    }
    for (int k = 0; k < n; k++)
        res->flags[k] |= AVS_SEC_IMPORTED;
}

/* Frames imported as released; audio from the dataset's wav, else from the video, else silence. */
static int import_item(struct job *j, struct avs_decode_result *res)
{
    int n = 0;
    if (import_frames(j, &n))
        return -1;
    import_audio(j, j->it->audio_file ? j->it->audio_file : j->it->video, n, res);
    return 0;
}

/* AVSS second k = i + 1 (docs/avss.md): release frame i -> frames/<uid>/<k>.png (model copy)
 * and released/<uid>/frames/<k>.jpg (bytes unchanged); its colour label, if any ->
 * masks/<uid>/<k>.png (class indices, NEAREST to the model size) and
 * released/<uid>/masks/<k>.png (class indices at the released size). */
static int avss_second(struct job *j, int k, int *has_mask, struct avs_decode_result *res)
{
    const struct avs_decode_opts *d = &j->r->o->dec;
    char *fsrc = avs_ingest_avss_frame_path(j->it, k - 1), *lsrc = avs_ingest_avss_label_path(j->it, k - 1);
    struct avs_image rel = {0}, model = {0}, lrel = {0}, lmodel = {0};
    int rc = avs_ingest_avss_frame(fsrc, d->out_w, d->out_h, &rel, &model, &j->err);
    if (!rc && k == 1)
        res->src_w = rel.w, res->src_h = rel.h, j->width = model.w, j->height = model.h;
    if (!rc)
        rc = stage_png(j, D_FRAMES, k, &model);
    if (!rc)
        rc = copy_to(j, fsrc, D_REL_FRAMES, k, "jpg");
    if (!rc && avs_fs_exists(lsrc)) {
        rc = avs_ingest_avss_label(lsrc, j->it->n_classes, rel.w, rel.h, d->out_w, d->out_h, &lrel,
                                   &lmodel, &j->unknown[k - 1], j->present, &j->err);
        if (!rc && j->unknown[k - 1])
            avs_log_warn("%s: %lld pixels of colours not in the palette of %d classes: stored as "
                         "255 (the official loader reads them as background)", lsrc,
                         (long long)j->unknown[k - 1], j->it->n_classes);
        if (!rc)
            rc = stage_png(j, D_MASKS, k, &lmodel);
        if (!rc)
            rc = stage_png(j, D_REL_MASKS, k, &lrel);
        has_mask[k - 1] = rc == 0;
    }
    avs_image_free(&rel), avs_image_free(&model), avs_image_free(&lrel), avs_image_free(&lmodel);
    free(fsrc), free(lsrc);
    return rc;
}

static int produce_avss(struct job *j, struct avs_decode_result *res, int **has_mask)
{
    int n = avs_ingest_avss_count_frames(j->it, j->r->o->dec.max_seconds);
    if (n == 0)
        return avs_err_set(&j->err, "%s/frames/0.jpg: no frames in this AVSS folder: re-extract "
                                    "the release", j->it->source);
    if (open_dirs(j, D_RELEASED, N_DIRS))
        return -1;
    char *audio = avs_ingest_avss_audio_path(j->it);
    import_audio(j, avs_fs_exists(audio) ? audio : NULL, n, res);
    free(audio);
    *has_mask = avs_calloc((size_t)n + 1, sizeof(int));
    j->unknown = avs_calloc((size_t)n + 1, sizeof(int64_t));
    for (int k = 1; k <= n; k++)
        if (avss_second(j, k, *has_mask, res))
            return -1;
    return write_audio(j, res);
}

/* AVSS category: the names of the non-background classes in the labels, in index order,
 * joined by '+' (NULL when none). */
static char *avss_category(const struct job *j)
{
    const struct avs_ingest_plan *p = j->r->plan;
    char *cat = NULL;
    for (int c = 1; c < p->n_classes; c++) {
        if (!j->present[c])
            continue;
        char *next = cat ? avs_sprintf("%s+%s", cat, p->classes[c]) : avs_strdup(p->classes[c]);
        free(cat);
        cat = next;
    }
    return cat;
}

static int produce(struct job *j, struct avs_decode_result *res, int **has_mask)
{
    if (open_dirs(j, D_FRAMES, D_RELEASED))
        return -1;
    if (j->it->avss_set)
        return produce_avss(j, res, has_mask);
    if (j->it->frame_pattern) {
        if (import_item(j, res))
            return -1;
    } else if (avs_decode_clip(j->it->video, &j->r->o->dec, on_frame, j, res, &j->err)) {
        return -1;
    }
    *has_mask = avs_calloc((size_t)res->n_seconds + 1, sizeof(int));
    if (write_audio(j, res) || import_masks(j, res->n_seconds, *has_mask))
        return -1;
    return 0;
}

enum { DONE_INGESTED, DONE_UNCHANGED, DONE_FAILED, DONE_STILL_FAILED, DONE_FATAL };

/* A write into the store failed: the video keeps what the index has (its temp files are gone),
 * and the run stops with the reason. */
static int store_failure(struct job *j)
{
    avs_err_wrap(&j->err, "ingesting %s", j->it->source);
    pthread_mutex_lock(&j->r->db_lock); /* as avs_ingest_commit_ok's writer of fatal_err */
    j->r->fatal_err = j->err;
    pthread_mutex_unlock(&j->r->db_lock);
    return DONE_FATAL;
}

/* The video failed (j->err says why): its rows and files of an older version go, under its
 * lock; it is recorded as failed with the reason. */
static int record_failure(struct job *j, const struct avs_signature *sig)
{
    struct run *r = j->r;
    struct avs_err err = {0};
    if (lock_video(j))
        return store_failure(j);
    pthread_mutex_lock(&r->db_lock);
    int rc = avs_ingest_commit_failed(r->db, j->it, sig, j->err.msg, &err);
    pthread_mutex_unlock(&r->db_lock);
    for (int i = 0; i < 4 && rc == 0; i++) /* the old version's files, once its rows are gone */
        avs_fs_rm_rf_under(r->o->root, j->rel[i], NULL);
    if (rc) {
        r->fatal_err = err;
        return DONE_FATAL;
    }
    avs_log_warn("failed: %s", j->err.msg);
    return DONE_FAILED;
}

/* After a commit: files of an older version of this video that the new one lacks. */
static void drop_stale(struct job *j, int n, const int *has_mask)
{
    const char *root = j->r->o->root;
    avs_ingest_drop_stale(root, j->rel[D_FRAMES], n, NULL);
    avs_ingest_drop_stale(root, j->rel[D_AUDIO], n, NULL);
    avs_ingest_drop_stale(root, j->rel[D_MASKS], n, has_mask);
    if (!j->it->avss_set) {
        avs_fs_rm_rf_under(root, j->rel[D_RELEASED], NULL);
        return;
    }
    avs_ingest_drop_stale(root, j->rel[D_REL_FRAMES], n, NULL);
    avs_ingest_drop_stale(root, j->rel[D_REL_MASKS], n, has_mask);
}

static int check_unchanged(struct job *j, struct avs_signature *sig)
{
    struct run *r = j->r;
    struct avs_err err = {0};
    if (signature(j, sig, &err))
        return -1;
    const char *hash_path = j->it->frame_pattern ? NULL : j->it->video;
    pthread_mutex_lock(&r->db_lock);
    int rc = avs_ingest_check(r->db, j->it->source, hash_path, sig, r->o->retry_failed, &err);
    pthread_mutex_unlock(&r->db_lock);
    if (rc < 0)
        r->fatal_err = err;
    return rc;
}

static int ingest_item(struct run *r, const struct avs_ingest_item *it, struct avs_decode_result *res)
{
    struct job j = {.r = r, .it = it};
    struct avs_signature sig;
    int *has_mask = NULL, done;
    int state = check_unchanged(&j, &sig);
    if (state < 0)
        return DONE_FATAL;
    if (state != AVS_INGEST_CHANGED && avs_store_marked(r->o->root, it->uid))
        state = AVS_INGEST_CHANGED; /* killed while replacing it: rows and files disagree */
    if (state == AVS_INGEST_STILL_FAILED)
        return DONE_STILL_FAILED;
    if (state != AVS_INGEST_CHANGED)
        return DONE_UNCHANGED;
    name_dirs(&j);
    if (it->video && !sig.hash[0] && avs_hash_file(it->video, sig.hash, &j.err))
        sig.hash[0] = '\0'; /* unreadable: the decoder will say why */
    if (it->problem) {
        avs_err_set(&j.err, "%s", it->problem);
        done = record_failure(&j, &sig);
    } else if (produce(&j, res, &has_mask) || lock_and_mark(&j) ||
               store_write(&j, stage_commit(&j.files, &j.err))) {
        stage_free(&j.files);
        done = j.store_failed ? store_failure(&j) : record_failure(&j, &sig);
    } else {
        struct avs_video_rows rows;
        struct avs_ingest_item view = *it;
        fill_rows(&j, res, has_mask, &rows);
        if (it->avss_set)
            view.category = avss_category(&j);
        pthread_mutex_lock(&r->db_lock);
        int rc = avs_ingest_commit_ok(r->db, &view, &sig, &rows, &r->fatal_err);
        pthread_mutex_unlock(&r->db_lock);
        if (it->avss_set)
            free(view.category);
        drop_stale(&j, res->n_seconds, has_mask);
        if (rc == 0)
            avs_store_unmark(&j.lock);
        stage_free(&j.files);
        done = rc ? DONE_FATAL : DONE_INGESTED;
    }
    free_dirs(&j);
    free(has_mask);
    free(j.unknown);
    return done;
}

static void count(struct run *r, int done, const struct avs_decode_result *res)
{
    pthread_mutex_lock(&r->stats_lock);
    struct avs_ingest_stats *s = r->stats;
    if (done == DONE_INGESTED) {
        s->ingested++;
        s->no_audio += !res->has_audio;
        s->decode_errors += res->decode_errors;
    } else if (done == DONE_UNCHANGED) {
        s->unchanged++;
    } else if (done == DONE_STILL_FAILED) {
        s->unchanged++;
        s->still_failed++;
    } else if (done == DONE_FAILED) {
        s->failed++;
    } else {
        r->fatal = 1;
    }
    pthread_mutex_unlock(&r->stats_lock);
}

static void *worker(void *arg)
{
    struct run *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->stats_lock);
        size_t i = r->next++;
        int stop = r->fatal;
        pthread_mutex_unlock(&r->stats_lock);
        if (stop || i >= r->plan->n)
            break;
        const struct avs_ingest_item *it = &r->plan->items[i];
        if (r->o->shard_n > 1 && (int)(i % (size_t)r->o->shard_n) != r->o->shard_i)
            continue;
        struct avs_decode_result res = {0};
        count(r, ingest_item(r, it, &res), &res); /* skipped shards above: not counted */
        avs_decode_result_free(&res);
        avs_progress_add(&r->progress, 1);
    }
    return NULL;
}

/* ---- the run ----------------------------------------------------------------------------- */

static int cmp_items(const void *a, const void *b)
{
    return strcmp(((const struct avs_ingest_item *)a)->source, ((const struct avs_ingest_item *)b)->source);
}

/* Same source twice (a file given twice, or in two given folders): keep the first. */
static void dedupe(struct avs_ingest_plan *plan)
{
    if (plan->n == 0)
        return; /* no inputs (a run that only opens or migrates the store): items is NULL */
    qsort(plan->items, plan->n, sizeof *plan->items, cmp_items);
    size_t w = 0;
    for (size_t i = 0; i < plan->n; i++) {
        if (w > 0 && !strcmp(plan->items[w - 1].source, plan->items[i].source))
            avs_ingest_item_free(&plan->items[i]);
        else
            plan->items[w++] = plan->items[i];
    }
    plan->n = w;
}

static int open_store(struct run *r, struct avs_fs_lock **lock, struct avs_err *err)
{
    const struct avs_ingest_opts *o = r->o;
    if (avs_fs_mkdirs(o->root, err))
        return -1;
    char *lockp = avs_fs_join(o->root, ".avs-ingest.lock");
    int lr = avs_fs_check_under(o->root, ".avs-ingest.lock", err) ? -1 : avs_fs_lock_try(lockp, lock, err);
    free(lockp);
    if (lr == 1)
        return avs_err_wrap(err, "store %s is busy (one avs-ingest at a time writes a store; or "
                                 "use another --root)", o->root);
    if (lr)
        return -1;
    char *dbp = o->db_path ? avs_strdup(o->db_path) : avs_db_path_for_root(o->root);
    int rc = avs_db_open(dbp, &r->db, err);
    free(dbp);
    if (rc)
        return -1;
    avs_ingest_sweep(o->root);
    return 0;
}

int avs_ingest_run(const struct avs_ingest_opts *o, struct avs_ingest_plan *plan,
                   struct avs_ingest_stats *stats, struct avs_err *err)
{
    struct run r = {.o = o, .plan = plan, .stats = stats};
    struct avs_fs_lock *lock = NULL;
    memset(stats, 0, sizeof *stats);
    double t0 = avs_now();
    snprintf(r.options, sizeof r.options, "rule=%s size=%dx%d max=%d",
             o->dec.frame_rule == AVS_FRAME_TIMESTAMP ? "timestamp" : "avsbench", o->dec.out_w,
             o->dec.out_h, o->dec.max_seconds);
    avs_av_log_init();
    if (open_store(&r, &lock, err)) {
        avs_db_close(&r.db);
        avs_fs_unlock(&lock);
        return -1;
    }
    dedupe(plan);
    int rc = avs_ingest_assign_uids(r.db, plan, err);
    if (rc == 0 && plan->classes)
        rc = avs_ingest_commit_classes(r.db, "avss", plan->classes, plan->n_classes, err);
    if (rc == 0) {
        for (size_t i = 0; i < plan->n; i++)
            stats->total += o->shard_n <= 1 || (int)(i % (size_t)o->shard_n) == o->shard_i;
        pthread_mutex_init(&r.db_lock, NULL);
        pthread_mutex_init(&r.stats_lock, NULL);
        avs_progress_init(&r.progress, "ingest", "clips", stats->total);
        r.progress.enabled &= o->progress;
        int nt = o->jobs < 1 ? 1 : o->jobs;
        pthread_t *th = avs_calloc((size_t)nt, sizeof *th);
        for (int i = 0; i < nt; i++)
            pthread_create(&th[i], NULL, worker, &r);
        for (int i = 0; i < nt; i++)
            pthread_join(th[i], NULL);
        free(th);
        avs_progress_end(&r.progress);
        pthread_mutex_destroy(&r.db_lock);
        pthread_mutex_destroy(&r.stats_lock);
        if (r.fatal) {
            *err = r.fatal_err;
            rc = -1;
        } else {
            rc = stats->failed || stats->still_failed ? 2 : 0;
        }
    }
    stats->seconds = avs_now() - t0;
    avs_db_close(&r.db);
    avs_fs_unlock(&lock);
    return rc;
}
