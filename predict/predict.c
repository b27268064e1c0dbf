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

/* Store mode for a finetuned run: each video's first T seconds through its backbone. */
static int finetuned_videos(struct avs_run_model *rm, sqlite3 *db, int64_t run_id, const char *root,
                            const struct avs_predict_opts *o, const char *out, const char *subset,
                            const char *split, struct avs_predict_stats *stats, struct avs_err *err);

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

/* A video's n seconds of logits [n,K,H*W] as files and predictions rows. */
static int write_video(sqlite3 *db, int64_t run_id, const char *root, const char *out,
                       const char *subset, const struct pvideo *v, const float *lg, int n, int W,
                       int H, const struct out_form *form, struct avs_predict_stats *stats,
                       struct avs_err *err)
{
    size_t fr = (size_t)form->K * W * H;
    char *rel = video_rel(subset, v, err), **paths = avs_calloc((size_t)n, sizeof *paths);
    char *dir = rel ? avs_fs_join(out, rel) : NULL, wdir[40];
    int fd = -1, rc = rel ? open_video_dir(root, out, rel, &fd, err) : -1;
    if (rc == 0)
        avs_fs_fd_path(fd, wdir);
    for (int k = 0; k < n && rc == 0; k++)
        rc = form->K > 1 ? avs_predict_write_classes(wdir, dir, v->uid, k + 1, lg + k * fr, form->K,
                                                      W, H, form->color, &paths[k], err)
                         : write_second(wdir, dir, v->uid, k + 1, lg + k * fr, W, H, &paths[k], err);
    if (fd >= 0)
        close(fd);
    free(rel);
    if (rc == 0 && run_id > 0)
        rc = record_rows(db, run_id, v->id, paths, n, root, err);
    if (rc == 0)
        stats->videos++, stats->seconds += n;
    for (int k = 0; k < n; k++)
        free(paths[k]);
    free(paths), free(dir);
    return rc;
}

static int one_video(struct avs_run_model *rm, sqlite3 *db, int64_t run_id, const char *root,
                     const char *out, const char *subset, const struct pvideo *v, int color,
                     struct avs_predict_stats *stats, struct avs_err *err)
{
    struct seconds s;
    struct avs_tset *t = &rm->set;
    if (read_video(t, db, v->id, rm->model.sw.ccv, &s, err))
        return avs_err_wrap(err, "video %s", v->uid);
    if (!s.n) {
        stats->skipped++;
        return 0;
    }
    size_t fr = (size_t)t->K * t->H * t->W;
    float *lg = avs_malloc((size_t)s.n * fr * sizeof(float));
    infer(&rm->model, t, &s, lg);
    struct out_form form = {t->K, color};
    int rc = write_video(db, run_id, root, out, subset, v, lg, s.n, t->W, t->H, &form, stats, err);
    free(lg);
    seconds_free(&s);
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

int avs_predict_store(const struct avs_predict_opts *o, struct avs_predict_stats *stats,
                      struct avs_err *err)
{
    memset(stats, 0, sizeof *stats);
    char *dbp = o->db_path ? avs_strdup(o->db_path) : avs_db_path_for_root(o->root);
    char *root = NULL, *out = NULL;
    sqlite3 *db = NULL;
    struct avs_run_model rm;
    memset(&rm, 0, sizeof rm);
    struct pvideo *v = NULL;
    int nv = 0, rc = -1;
    int64_t run_id = 0;
    if (avs_db_open(dbp, &db, err) || !(root = avs_fs_realpath(o->root, err)))
        goto out;
    if (avs_run_find(db, o->run, &run_id, NULL, NULL, err) != 0) {
        avs_err_set(err, "no run \"%s\" in %s: train it with avs-train --run %s", o->run, dbp, o->run);
        goto out;
    }
    if (avs_run_model_open(&rm, db, root, o->run, o->checkpoint ? o->checkpoint : "best", err) ||
        check_c3im(o, &rm, err))
        goto out;
    const char *subset = o->subset ? o->subset : rm.subset, *split = o->split ? o->split : "test";
    if (o->out)
        out = avs_strdup(o->out);
    else {
        char *d = avs_run_dir(root, o->run), *nm = avs_sprintf("pred-%s-%s", subset, split);
        out = avs_fs_join(d, nm);
        free(d), free(nm);
    }
    if (rm.set.avss != !strcmp(subset, "avss")) {
        avs_err_set(err, "run \"%s\" was trained on %s: it predicts %s videos only (--subset)",
                    o->run, rm.subset, rm.set.avss ? "avss" : "s4/ms3");
        goto out;
    }
    if (rm.set.avss && o->record) {
        avs_err_set(err, "--record: AVSS predictions are evaluated with avs-eval --semantic --pred DIR");
        goto out;
    }
    if (o->color && !rm.set.avss) {
        avs_err_set(err, "--color: for AVSS runs only (binary runs write probability PNGs)");
        goto out;
    }
    if (o->out ? avs_fs_mkdirs(out, err) : make_pred_dir(root, o->run, subset, split, err))
        goto out;
    if (list_videos(db, subset, split, &v, &nv, err))
        goto out;
    if (!nv) {
        avs_err_set(err, "no ok %s videos in split \"%s\" of %s", subset, split, dbp);
        goto out;
    }
    struct avs_progress p;
    avs_progress_init(&p, "predict", "videos", nv);
    p.enabled = p.enabled && o->progress;
    if (is_finetuned(&rm))
        rc = finetuned_videos(&rm, db, run_id, root, o, out, subset, split, stats, err);
    else {
        rc = 0;
        for (int i = 0; i < nv && rc == 0; i++) {
            rc = one_video(&rm, db, run_id, root, out, subset, &v[i], o->color, stats, err);
            avs_progress_add(&p, 1);
        }
    }
    avs_progress_end(&p);
    struct avs_predict_opts oo = *o;
    oo.split = split;
    if (rc == 0 && o->record)
        rc = evaluate(db, root, &oo, subset, &rm, out, stats, err);
    snprintf(stats->out, sizeof stats->out, "%s", out);
out:
    for (int i = 0; i < nv; i++)
        free(v[i].uid), free(v[i].category);
    free(v);
    avs_run_model_close(&rm);
    avs_db_close(&db);
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

static int finetuned_videos(struct avs_run_model *rm, sqlite3 *db, int64_t run_id, const char *root,
                            const struct avs_predict_opts *o, const char *out, const char *subset,
                            const char *split, struct avs_predict_stats *stats, struct avs_err *err)
{
    struct avs_tset *t = &rm->set;
    struct avs_finetune *ft = NULL;
    struct avs_tbatch b;
    memset(&b, 0, sizeof b);
    char *bp = backbone_file(root, o->run, o->checkpoint ? o->checkpoint : "best", err);
    int rc = -1;
    if (!bp || avs_tset_load(t, db, root, subset, split, AVS_TSET_LOSS_ALL, err) ||
        avs_finetune_open(&ft, db, root, t, &o->files, err) || avs_finetune_load(ft, bp, 0, err))
        goto out;
    avs_tbatch_init(&b, t, 1);
    float *lg = avs_malloc((size_t)AVS_T * t->H * t->W * sizeof(float));
    const struct avs_switches *sw = &rm->model.sw;
    int use_ccv = sw->cc || sw->ccv ? sw->ccv : -1;
    rc = 0;
    for (int i = 0; i < t->n && rc == 0; i++) {
        rc = avs_finetune_batch(ft, t, &i, NULL, 0, 0, use_ccv, &b, err);
        if (rc)
            break;
        avs_c3n_fwd(&rm->model, (const float *const *)b.stage, (const float *const *)b.gc, b.audio, 0);
        avs_dev_download(lg, rm->model.head.logits, (size_t)AVS_T * t->H * t->W);
        struct pvideo v = {t->v[i].id, t->v[i].uid, t->v[i].category};
        struct out_form form = {1, 0};
        rc = write_video(db, run_id, root, out, subset, &v, lg, AVS_T, t->W, t->H, &form, stats, err);
    }
    stats->skipped += t->n_nofeat + t->n_short;
    free(lg);
out:
    avs_tbatch_free(&b);
    avs_finetune_close(&ft);
    free(bp);
    return rc;
}
