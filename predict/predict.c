/* predict/predict.c: see predict.h. */
#include "predict/predict.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "core/names.h"
#include "core/progress.h"
#include "dist/ranks.h"
#include "dist/session.h"
#include "eval/eval.h"
#include "predict/classes.h"
#include "predict/overlay.h"
#include "train/ckpt.h"
#include "train/data.h"
#include "train/finetune.h"
#include "train/runs.h"

/* Per-second model inputs of one video, [n,...] each. */
struct seconds {
    int n;
    float *stage[4], *gc[4], *audio;
};

static void seconds_alloc(struct seconds *s, const struct avs_tset *t, int n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    for (int i = 0; i < 4; i++) {
        s->stage[i] = avs_malloc((size_t)n * t->C[i] * t->Hs[i] * t->Ws[i] * sizeof(float));
        s->gc[i] = avs_malloc((size_t)n * t->C[i] * sizeof(float));
    }
    s->audio = avs_malloc((size_t)n * t->A * sizeof(float));
}

static void seconds_free(struct seconds *s)
{
    for (int i = 0; i < 4; i++)
        free(s->stage[i]), free(s->gc[i]);
    free(s->audio);
    memset(s, 0, sizeof *s);
}

/* logits [n, K, H*W]: windows of T seconds through the model (N = 1), the last one padded
 * by repeating its last second (S4/MS3) or with zero frames (AVSS, as in training). */
static void infer(struct avs_c3n *m, const struct avs_tset *t, const struct seconds *in,
                  float *logits)
{
    struct avs_tbatch b;
    avs_tbatch_init(&b, t, 1);
    size_t fr = (size_t)t->K * t->H * t->W;
    for (int w0 = 0; w0 < in->n; w0 += t->T) {
        for (int j = 0; j < t->T; j++) {
            if (t->avss && w0 + j >= in->n) {
                avs_tbatch_put_zeros(&b, t, j);
                continue;
            }
            int k = w0 + j < in->n ? w0 + j : in->n - 1;
            const float *st[4], *gc[4];
            for (int s = 0; s < 4; s++) {
                st[s] = in->stage[s] + (size_t)k * t->C[s] * t->Hs[s] * t->Ws[s];
                gc[s] = in->gc[s] + (size_t)k * t->C[s];
            }
            avs_tbatch_put(&b, t, j, st, gc, in->audio + (size_t)k * t->A);
        }
        avs_c3n_fwd(m, (const float *const *)b.stage, (const float *const *)b.gc, b.audio, 0);
        int nk = in->n - w0 < t->T ? in->n - w0 : t->T;
        avs_dev_download(logits + (size_t)w0 * fr, m->head.logits, (size_t)nk * fr);
    }
    avs_tbatch_free(&b);
}

/* ---- finetuned runs ---- */

static int is_finetuned(const struct avs_run_model *rm)
{
    cJSON *j = cJSON_Parse(rm->config);
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "mode"));
    int r = m && !strcmp(m, "finetune");
    cJSON_Delete(j);
    return r;
}

/* The backbone file of a finetuned run's checkpoint. */
static char *backbone_file(const char *root, const char *run, const char *which, struct avs_err *err)
{
    char *dir = avs_run_dir(root, run), *p = NULL;
    if (!strcmp(which, "best"))
        p = avs_fs_join(dir, "backbone_best.safetensors");
    else {
        char *last = avs_fs_join(dir, "last.safetensors");
        struct avs_train_state st;
        if (avs_ckpt_state(last, &st, err) == 0) {
            char *nm = avs_sprintf("backbone-%ld.safetensors", st.adam_step);
            p = avs_fs_join(dir, nm);
            free(nm);
        }
        free(last);
    }
    free(dir);
    return p;
}


/* ---- store mode ---- */

struct pvideo {
    int64_t id;
    char *uid, *category;
};

static int list_videos(sqlite3 *db, const char *subset, const char *split, struct pvideo **out,
                       int *n, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_tset_videos(db, subset, split, &st, err))
        return -1;
    int cap = 0;
    *out = NULL, *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *out = avs_realloc(*out, (size_t)cap * sizeof **out);
        }
        struct pvideo *v = &(*out)[(*n)++];
        v->id = sqlite3_column_int64(st, 0);
        v->uid = avs_strdup((const char *)sqlite3_column_text(st, 1));
        const char *c = (const char *)sqlite3_column_text(st, 2);
        v->category = c ? avs_strdup(c) : NULL;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Records committed after the cache was mapped (an avs-features run beside this one, appending
 * to the set) lie past the mapped end: map the file again, as it is now. */
static int cover_records(struct avs_tset *t, const int64_t *off, int n, struct avs_err *err)
{
    int64_t end = 0;
    for (int k = 0; k < n; k++)
        if (off[k] + (int64_t)t->cache->record_bytes > end)
            end = off[k] + (int64_t)t->cache->record_bytes;
    return avs_cache_cover(&t->cache, end, err);
}

/* The video's records (flipped = 0), seconds 1..n contiguous; n = 0 when it has none. */
static int read_video(struct avs_tset *t, sqlite3 *db, int64_t vid, int ccv,
                      struct seconds *s, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT k, offset FROM feature_entries WHERE set_id = ?1 AND "
                           "video_id = ?2 AND flipped = 0 ORDER BY k", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, t->set_id);
    sqlite3_bind_int64(st, 2, vid);
    int64_t *off = NULL;
    int n = 0, rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        off = avs_realloc(off, (size_t)(n + 1) * sizeof *off);
        if (sqlite3_column_int(st, 0) != n + 1)
            break;
        off[n++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    memset(s, 0, sizeof *s);
    if (n)
        seconds_alloc(s, t, n);
    rc = cover_records(t, off, n, err);
    for (int k = 0; k < n && rc == 0; k++) {
        for (int i = 0; i < 4 && rc == 0; i++) {
            size_t ns = (size_t)t->C[i] * t->Hs[i] * t->Ws[i];
            rc = avs_cache_read(t->cache, off[k], t->f_stage[i], s->stage[i] + k * ns, err);
            if (rc == 0)
                rc = avs_cache_read(t->cache, off[k], ccv ? t->f_gcv[i] : t->f_gc[i],
                                    s->gc[i] + (size_t)k * t->C[i], err);
        }
        if (rc == 0)
            rc = avs_cache_read(t->cache, off[k], t->f_audio, s->audio + (size_t)k * t->A, err);
        if (rc)
            avs_err_wrap(err, "second %d", k + 1);
    }
    free(off);
    if (rc)
        seconds_free(s);
    return rc;
}

/* <category>/<uid> (S4) or <uid>: the video's folder under the output folder, or NULL with err
 * when the index holds a uid or category that is no valid name (core/names.h). */
static char *video_rel(const char *subset, const struct pvideo *v, struct avs_err *err)
{
    int by_cat = !strcmp(subset, "s4") && v->category;
    if (avs_name_check(v->uid, "uid in the index", err) ||
        (by_cat && avs_name_check(v->category, "category in the index", err))) {
        avs_err_wrap(err, "video %s: re-ingest it with this version", v->uid);
        return NULL;
    }
    return by_cat ? avs_sprintf("%s/%s", v->category, v->uid) : avs_strdup(v->uid);
}

/* The folder out/rel created and opened confined (core/fs.h): to the store root when out lies
 * inside the store (the default runs/<run>/pred-...), else to out. */
static int open_video_dir(const char *root, const char *out, const char *rel, int *fd,
                          struct avs_err *err)
{
    size_t rl = strlen(root);
    if (strncmp(out, root, rl) || out[rl] != '/')
        return avs_fs_open_under(out, rel, 1, fd, err);
    char *r = avs_sprintf("%s/%s", out + rl + 1, rel);
    int rc = avs_fs_open_under(root, r, 1, fd, err);
    free(r);
    return rc;
}

/* x [H,W] as <uid>_<k>.png and .logits in folder dir, written through wdir (the same folder
 * opened confined). *png_path (malloc'd) names the PNG under dir. */
static int write_second(const char *wdir, const char *dir, const char *uid, int k, const float *x,
                        int W, int H, char **png_path, struct avs_err *err)
{
    struct avs_image img = {0};
    avs_image_alloc(&img, W, H, 1);
    for (size_t i = 0; i < (size_t)W * H; i++)
        img.data[i] = (uint8_t)lrintf(255.0f * avs_eval_sigmoid(x[i]));
    char *name = avs_sprintf("%s_%d.png", uid, k), *p = avs_fs_join(dir, name);
    char *wp = avs_fs_join(wdir, name), *tmp = avs_fs_tmp_name(wp);
    int rc = avs_png_write(tmp, &img, 1, err) || avs_fs_commit(tmp, wp, err) ? -1 : 0;
    free(tmp), free(name), free(wp);
    avs_image_free(&img);
    if (rc == 0) {
        name = avs_sprintf("%s_%d.logits", uid, k);
        char *lp = avs_fs_join(wdir, name);
        rc = avs_logits_write(lp, x, W, H, err);
        free(lp), free(name);
    }
    if (rc)
        avs_err_wrap(err, "writing the prediction of %s second %d in %s", uid, k, dir);
    if (rc == 0)
        *png_path = p;
    else
        free(p);
    return rc;
}

static int record_rows(sqlite3 *db, int64_t run_id, int64_t vid, char **paths, int n,
                       const char *root, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_exec(db, "BEGIN IMMEDIATE", err))
        return -1;
    if (avs_db_prepare(db, "INSERT OR REPLACE INTO predictions (run_id, video_id, k, path) "
                           "VALUES (?1, ?2, ?3, ?4)", &st, err))
        goto fail;
    size_t rl = strlen(root);
    for (int k = 0; k < n; k++) {
        const char *p = paths[k];
        if (!strncmp(p, root, rl) && p[rl] == '/')
            p += rl + 1;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, vid);
        sqlite3_bind_int(st, 3, k + 1);
        sqlite3_bind_text(st, 4, p, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            avs_db_error(db, err, "writing predictions");
            sqlite3_finalize(st);
            goto fail;
        }
    }
    sqlite3_finalize(st);
    return avs_db_exec(db, "COMMIT", err);
fail:;
    struct avs_err e2;
    avs_db_exec(db, "ROLLBACK", &e2);
    return -1;
}

/* How a video's frames are written: K maps per frame (1: binary), AVSS colour PNGs. */
struct out_form {
    int K, color;
};

/* A video's n seconds of logits [n,K,H*W] as files; paths[n] (malloc'd) name them. */
static int write_files(const char *root, const char *out, const char *subset,
                       const struct pvideo *v, const float *lg, int n, int W, int H,
                       const struct out_form *form, char **paths, struct avs_err *err)
{
    size_t fr = (size_t)form->K * W * H;
    char *rel = video_rel(subset, v, err);
    char *dir = rel ? avs_fs_join(out, rel) : NULL, wdir[40];
    int fd = -1, rc = rel ? open_video_dir(root, out, rel, &fd, err) : -1;
    if (rc == 0)
        avs_fs_fd_path(fd, wdir);
    for (int k = 0; k < n && rc == 0; k++)
        rc = form->K > 1 ? avs_predict_write_classes(wdir, dir, v->uid, k + 1, lg + k * fr, form->K,
                                                      W, H, form->color, &paths[k], err)
                         : write_second(wdir, dir, v->uid, k + 1, lg + k * fr, W, H, &paths[k], err);
    if (fd >= 0) {
        if (rc) /* the writers named the confined folder by its descriptor path */
            avs_err_replace(err, wdir, dir);
        close(fd);
    }
    free(rel), free(dir);
    return rc;
}

/* ---- one video as a message for rank 0 (dist/ranks.h: avs_ranks_ordered) ----
 * The files are written by the rank that computed them; rank 0 records their rows in video
 * order. A message: int32 status, int32 n, then n paths each ending in '\0' (status 0), or the
 * failure's text (status 1: the run stops there, as one process stops). Status 2: the video
 * has no features (skipped). */
enum { DONE = 0, FATAL = 1, SKIPPED = 2 };
struct pmsg {
    int32_t status, n;
};

static void *pmsg_make(int status, int n, char **paths, const char *text, size_t *bytes)
{
    size_t len = text ? strlen(text) + 1 : 0;
    for (int k = 0; k < n; k++)
        len += strlen(paths[k]) + 1;
    struct pmsg *m = avs_malloc(sizeof *m + len);
    m->status = status, m->n = n;
    char *p = (char *)(m + 1);
    for (int k = 0; k < n; k++)
        p = stpcpy(p, paths[k]) + 1;
    if (text)
        memcpy(p, text, strlen(text) + 1);
    *bytes = sizeof *m + len;
    return m;
}

/* The files of a video's logits, and its message. */
static void *write_video(const char *root, const char *out, const char *subset,
                         const struct pvideo *v, const float *lg, int n, int W, int H,
                         const struct out_form *form, size_t *bytes)
{
    struct avs_err err = {0};
    char **paths = avs_calloc((size_t)n, sizeof *paths);
    int rc = write_files(root, out, subset, v, lg, n, W, H, form, paths, &err);
    void *m = rc ? pmsg_make(FATAL, 0, NULL, err.msg, bytes) : pmsg_make(DONE, n, paths, NULL, bytes);
    for (int k = 0; k < n; k++)
        free(paths[k]);
    free(paths);
    return m;
}

/* Rank 0: a video's message into predictions rows and stats. 0, or -1 (err): stop. */
static int take_video(sqlite3 *db, int64_t run_id, int64_t vid, const char *root, const void *buf,
                      size_t bytes, struct avs_predict_stats *stats, struct avs_err *err)
{
    const struct pmsg *m = buf;
    if (bytes < sizeof *m)
        return avs_err_set(err, "a message of %zu bytes: not a video's prediction", bytes);
    const char *p = (const char *)(m + 1), *end = (const char *)buf + bytes;
    if (m->status == SKIPPED) {
        stats->skipped++;
        return 0;
    }
    if (m->status == FATAL)
        return avs_err_set(err, "%.*s", (int)(end - p), p);
    char **paths = avs_calloc((size_t)m->n, sizeof *paths);
    for (int k = 0; k < m->n && p < end; k++, p += strlen(p) + 1)
        paths[k] = (char *)p;
    int rc = m->n > 0 && paths[m->n - 1] ? 0 : avs_err_set(err, "a message of %zu bytes for %d "
                                                           "seconds: paths missing", bytes, m->n);
    if (rc == 0 && run_id > 0)
        rc = record_rows(db, run_id, vid, paths, m->n, root, err);
    if (rc == 0)
        stats->videos++, stats->seconds += m->n;
    free(paths);
    return rc;
}

/* The store-mode run on every rank: video i of the list is predicted on rank i % ranks, which
 * writes its files; rank 0 records every video's rows in list order (as one process). */
struct pjob {
    struct avs_run_model *rm;
    sqlite3 *db;
    int64_t run_id;
    const char *root, *out, *subset;
    struct pvideo *v;        /* the videos (frozen runs) */
    int color;
    struct avs_finetune *ft; /* finetuned runs: the backbone, a batch, logits [T,H,W] */
    struct avs_tbatch b;
    float *lg;
    int use_ccv;
    struct avs_predict_stats *stats;
    struct avs_progress *pr;
    struct avs_err *err;     /* rank 0: why the run stopped */
};

static struct pvideo job_video(const struct pjob *j, int i)
{
    if (j->ft) {
        const struct avs_tset *t = &j->rm->set;
        return (struct pvideo){t->v[i].id, t->v[i].uid, t->v[i].category};
    }
    return j->v[i];
}

static void *fatal_msg(const char *uid, const char *why, size_t *bytes)
{
    char *text = avs_sprintf("video %s: %s", uid, why);
    void *m = pmsg_make(FATAL, 0, NULL, text, bytes);
    free(text);
    return m;
}

/* A frozen run's video: its records through the head, the files written. */
static int make_frozen(void *ctx, int i, void **buf, size_t *bytes)
{
    struct pjob *j = ctx;
    struct avs_tset *t = &j->rm->set;
    struct seconds s;
    struct avs_err err = {0};
    if (read_video(t, j->db, j->v[i].id, j->rm->model.sw.ccv, &s, &err)) {
        *buf = fatal_msg(j->v[i].uid, err.msg, bytes);
        return -1;
    }
    if (!s.n) {
        *buf = pmsg_make(SKIPPED, 0, NULL, NULL, bytes);
        return 0;
    }
    size_t fr = (size_t)t->K * t->H * t->W;
    float *lg = avs_malloc((size_t)s.n * fr * sizeof(float));
    infer(&j->rm->model, t, &s, lg);
    struct out_form form = {t->K, j->color};
    *buf = write_video(j->root, j->out, j->subset, &j->v[i], lg, s.n, t->W, t->H, &form, bytes);
    free(lg);
    seconds_free(&s);
    return ((struct pmsg *)*buf)->status == FATAL ? -1 : 0;
}

/* A finetuned run's video: its first T seconds through the backbone and the head. */
static int make_finetuned(void *ctx, int i, void **buf, size_t *bytes)
{
    struct pjob *j = ctx;
    struct avs_tset *t = &j->rm->set;
    struct avs_err err = {0};
    struct pvideo v = job_video(j, i);
    if (avs_finetune_batch(j->ft, t, &i, NULL, 0, 0, j->use_ccv, &j->b, &err)) {
        *buf = fatal_msg(v.uid, err.msg, bytes);
        return -1;
    }
    struct avs_c3n *m = &j->rm->model;
    avs_c3n_fwd(m, (const float *const *)j->b.stage, (const float *const *)j->b.gc, j->b.audio, 0);
    avs_dev_download(j->lg, m->head.logits, (size_t)AVS_T * t->H * t->W);
    struct out_form form = {1, 0};
    *buf = write_video(j->root, j->out, j->subset, &v, j->lg, AVS_T, t->W, t->H, &form, bytes);
    return ((struct pmsg *)*buf)->status == FATAL ? -1 : 0;
}

static int take(void *ctx, int i, const void *buf, size_t bytes)
{
    struct pjob *j = ctx;
    int rc = take_video(j->db, j->run_id, job_video(j, i).id, j->root, buf, bytes, j->stats, j->err);
    avs_progress_add(j->pr, 1);
    return rc;
}

/* The default output folder runs/<run>/pred-<subset>-<split> inside the store, created
 * confined (core/fs.h); below it each video's folder is opened confined to it. */
static int make_pred_dir(const char *root, const char *run, const char *subset, const char *split,
                         struct avs_err *err)
{
    if (avs_name_check(run, "--run", err) || avs_name_check(split, "--split", err) ||
        avs_name_check(subset, "--subset", err))
        return -1;
    char *rel = avs_sprintf("runs/%s/pred-%s-%s", run, subset, split);
    int rc = avs_fs_mkdirs_under(root, rel, err);
    free(rel);
    return rc;
}

static int evaluate(sqlite3 *db, const char *root, const struct avs_predict_opts *o,
                    const char *subset, const struct avs_run_model *rm, const char *out,
                    struct avs_predict_stats *stats, struct avs_err *err)
{
    struct avs_eval_set set = {0};
    struct avs_eval_result res = {0};
    struct avs_eval_options eo = {0, 0, 0};
    int rc = -1;
    if (avs_eval_list_db(db, root, o->split, subset, &set, err))
        goto out;
    int missing = avs_eval_attach_pred(&set, out);
    if (missing) {
        avs_err_set(err, "%d of %d ground-truth frames have no prediction in %s (videos without "
                    "features in the run's set?): nothing recorded", missing, set.n_frames, out);
        goto out;
    }
    if (avs_eval_run(&set, &eo, &res, err))
        goto out;
    cJSON *j = cJSON_Parse(rm->config);
    const char *sw = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "switches"));
    const char *bb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "backbone"));
    struct avs_eval_meta meta = {o->record, out, "store index", sw, bb};
    rc = avs_eval_record(db, &set, &res, &meta, NULL, err);
    cJSON_Delete(j);
    stats->miou = res.all.miou, stats->fscore = res.all.fscore;
out:
    avs_eval_result_free(&res);
    avs_eval_set_free(&set);
    return rc;
}

/* --alpha/--beta, when given, must be the exponents of the run's feature set (its targets CC,
 * and clip mode's, come from them). */
static int check_c3im(const struct avs_predict_opts *o, const struct avs_run_model *rm,
                      struct avs_err *err)
{
    return avs_feat_c3im_check(rm->set.set_name, rm->set.set_config, o->alpha_given, o->alpha,
                               o->beta_given, o->beta, "avs-predict", err);
}

/* A finetuned run's videos (the run's set loaded for the split) over the ranks. */
static int finetuned_videos(struct pjob *j, const struct avs_predict_opts *o, const char *split,
                            struct avs_err *err)
{
    struct avs_tset *t = &j->rm->set;
    char *bp = backbone_file(j->root, o->run, o->checkpoint ? o->checkpoint : "best", err);
    int rc = !bp || avs_tset_load(t, j->db, j->root, j->subset, split, AVS_TSET_LOSS_NONE, err) ||
             avs_finetune_open(&j->ft, j->db, j->root, t, &o->files, err) ||
             avs_finetune_load(j->ft, bp, 0, err) ? -1 : 0;
    free(bp);
    if (avs_ranks_failed(rc, err)) {
        avs_finetune_close(&j->ft);
        return -1;
    }
    avs_tbatch_init(&j->b, t, 1);
    j->lg = avs_malloc((size_t)AVS_T * t->H * t->W * sizeof(float));
    const struct avs_switches *sw = &j->rm->model.sw;
    j->use_ccv = sw->cc || sw->ccv ? sw->ccv : -1;
    rc = avs_ranks_ordered(t->n, make_finetuned, take, j);
    j->stats->skipped += t->n_nofeat + t->n_short;
    free(j->lg);
    avs_tbatch_free(&j->b);
    avs_finetune_close(&j->ft);
    return rc;
}

/* The index: rank 0 opens it first (it may migrate it), the other ranks then read it. */
static int open_index(const char *dbp, sqlite3 **db, struct avs_err *err)
{
    int rc = avs_ranks_rank() == 0 ? avs_db_open(dbp, db, err) : 0;
    if (avs_ranks_any(rc != 0))
        return rc ? -1 : avs_err_set(err, "rank %d: rank 0 could not open %s", avs_ranks_rank(), dbp);
    return avs_ranks_rank() == 0 ? 0 : avs_db_open_readonly(dbp, db, err);
}

/* The run's model and the output folder, checked against the options (every rank). */
static int open_model(struct pjob *j, const struct avs_predict_opts *o, const char *dbp,
                      char **out, const char **split, struct avs_err *err)
{
    struct avs_run_model *rm = j->rm;
    if (avs_run_find(j->db, o->run, &j->run_id, NULL, NULL, err) != 0)
        return avs_err_set(err, "no run \"%s\" in %s: train it with avs-train --run %s", o->run,
                           dbp, o->run);
    if (avs_run_model_open(rm, j->db, j->root, o->run, o->checkpoint ? o->checkpoint : "best", err) ||
        check_c3im(o, rm, err))
        return -1;
    j->subset = o->subset ? o->subset : rm->subset, *split = o->split ? o->split : "test";
    if (o->out)
        *out = avs_strdup(o->out);
    else {
        char *d = avs_run_dir(j->root, o->run), *nm = avs_sprintf("pred-%s-%s", j->subset, *split);
        *out = avs_fs_join(d, nm);
        free(d), free(nm);
    }
    j->out = *out;
    if (rm->set.avss != !strcmp(j->subset, "avss"))
        return avs_err_set(err, "run \"%s\" was trained on %s: it predicts %s videos only "
                           "(--subset)", o->run, rm->subset, rm->set.avss ? "avss" : "s4/ms3");
    if (rm->set.avss && o->record)
        return avs_err_set(err, "--record: AVSS predictions are evaluated with avs-eval --semantic "
                           "--pred DIR");
    if (o->color && !rm->set.avss)
        return avs_err_set(err, "--color: for AVSS runs only (binary runs write probability PNGs)");
    return o->out ? avs_fs_mkdirs(*out, err) : make_pred_dir(j->root, o->run, j->subset, *split, err);
}

/* Under ranks (dist/ranks.h) video i is predicted on rank i % ranks (its files written there)
 * and rank 0 records the rows in video order, then evaluates (--record): files and rows are
 * those of one process. Only rank 0's stats count; every rank returns rank 0's status. */
int avs_predict_store(const struct avs_predict_opts *o, struct avs_predict_stats *stats,
                      struct avs_err *err)
{
    memset(stats, 0, sizeof *stats);
    char *dbp = o->db_path ? avs_strdup(o->db_path) : avs_db_path_for_root(o->root);
    char *root = NULL, *out = NULL;
    struct avs_run_model rm;
    memset(&rm, 0, sizeof rm);
    struct avs_progress p;
    avs_progress_init(&p, "predict", "videos", 0);
    p.enabled = 0;
    struct pjob j = {.rm = &rm, .color = o->color, .stats = stats, .pr = &p, .err = err};
    const char *split = NULL;
    int nv = 0, rc = open_index(dbp, &j.db, err);
    if (rc == 0 && !(root = avs_fs_realpath(o->root, err)))
        rc = -1;
    j.root = root;
    if (rc == 0)
        rc = open_model(&j, o, dbp, &out, &split, err);
    if (rc == 0)
        rc = list_videos(j.db, j.subset, split, &j.v, &nv, err);
    if (rc == 0 && !nv)
        rc = avs_err_set(err, "no ok %s videos in split \"%s\" of %s", j.subset, split, dbp);
    /* the same options and index: every rank fails alike; then the session row (a collective) */
    if (avs_ranks_failed(rc, err) ||
        avs_ranks_failed(avs_session_record(j.db, "avs-predict", j.run_id, 0, err), err)) {
        rc = -1;
        goto out;
    }
    avs_progress_init(&p, "predict", "videos", nv);
    p.enabled = p.enabled && o->progress && avs_ranks_rank() == 0;
    if (is_finetuned(&rm))
        rc = finetuned_videos(&j, o, split, err);
    else
        rc = avs_ranks_ordered(nv, make_frozen, take, &j);
    avs_progress_end(&p);
    struct avs_predict_opts oo = *o;
    oo.split = split;
    if (rc == 0 && o->record && avs_ranks_rank() == 0)
        rc = evaluate(j.db, root, &oo, j.subset, &rm, out, stats, err);
    snprintf(stats->out, sizeof stats->out, "%s", out);
out:
    avs_ranks_bcast(&rc, sizeof rc, 0); /* rank 0's status is the job's */
    if (rc && !err->msg[0])
        avs_err_set(err, "rank %d: rank 0 stopped the run (its message names the cause)",
                    avs_ranks_rank());
    for (int i = 0; i < nv; i++)
        free(j.v[i].uid), free(j.v[i].category);
    free(j.v);
    avs_run_model_close(&rm);
    avs_db_close(&j.db);
    free(dbp), free(root), free(out);
    return rc;
}

/* ---- clip mode ---- */

int avs_predict_clip(const struct avs_predict_opts *o, const char *clip, const char *out_video,
                     const char *frames_dir, struct avs_err *err)
{
    char *dbp = o->db_path ? avs_strdup(o->db_path) : avs_db_path_for_root(o->root);
    sqlite3 *db = NULL;
    struct avs_run_model rm;
    memset(&rm, 0, sizeof rm);
    struct avs_feat_enc e;
    memset(&e, 0, sizeof e);
    struct avs_clip_feat cf;
    memset(&cf, 0, sizeof cf);
    float *lg = NULL;
    int rc = -1;
    if (avs_db_open(dbp, &db, err) ||
        avs_run_model_open(&rm, db, o->root, o->run, o->checkpoint ? o->checkpoint : "best", err) ||
        check_c3im(o, &rm, err))
        goto out;
    if (rm.set.avss) {
        avs_err_set(err, "--clip draws binary masks; run \"%s\" is an AVSS (class) run: predict "
                    "its store videos instead", o->run);
        goto out;
    }
    if (avs_feat_enc_open(&e, db, rm.set.set_name, &o->files, err))
        goto out;
    if (is_finetuned(&rm)) {
        char *bp = backbone_file(o->root, o->run, o->checkpoint ? o->checkpoint : "best", err);
        int r = bp ? avs_finetune_load_vis(&e.vis, bp, err) : -1;
        free(bp);
        if (r)
            goto out;
    }
    if (avs_feat_clip(&e, clip, &cf, err))
        goto out;
    const struct avs_tset *t = &rm.set;
    if (cf.H != t->H || cf.W != t->W || cf.E != t->A) {
        avs_err_set(err, "%s: the encoders give %dx%d frames / %d-d audio, the run expects %dx%d / %d",
                    clip, cf.W, cf.H, cf.E, t->W, t->H, t->A);
        goto out;
    }
    struct seconds s = {cf.n, {0}, {0}, cf.audio_emb};
    for (int i = 0; i < 4; i++)
        s.stage[i] = cf.stage[i], s.gc[i] = rm.model.sw.ccv ? cf.gradcam_v[i] : cf.gradcam[i];
    size_t HW = (size_t)t->H * t->W;
    lg = avs_malloc((size_t)cf.n * HW * sizeof(float));
    infer(&rm.model, t, &s, lg);
    for (size_t i = 0; i < (size_t)cf.n * HW; i++)
        lg[i] = avs_eval_sigmoid(lg[i]);
    rc = avs_overlay_video(clip, out_video, frames_dir, lg, cf.n, t->H, t->W, err);
out:
    free(lg);
    avs_clip_feat_free(&cf);
    avs_feat_enc_close(&e);
    avs_run_model_close(&rm);
    avs_db_close(&db);
    free(dbp);
    return rc;
}

