/* features/run.c: avs_features_run (features/features.h): the store's seconds through the encoders
 * into one feature set. The per-video work is in run_video.c. */
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/names.h"
#include "core/progress.h"
#include "dist/ranks.h"
#include "dist/session.h"
#include "features/labelsim.h"
#include "model/c3im.h"
#include "model/randinit.h"
#include "features/run.h"

#define SIM_STREAM 0x5351ull /* random S: its own generator stream */

int avs_feat_set_name_ok(const char *s)
{
    if (avs_name_problem(s) || strlen(s) >= 100) /* core/names.h, then our narrower set */
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

/* Frame size of the store (every ok video must have it). */
static int store_size(sqlite3 *db, int *H, int *W, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT width, height, uid FROM videos WHERE status = 'ok' AND "
                           "n_seconds > 0 ORDER BY uid LIMIT 1", &st, err))
        return -1;
    int rc = -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        avs_err_set(err, "%s: the store has no ok videos: add clips with `avs-ingest --root DIR "
                    "CLIPS...` first", sqlite3_db_filename(db, "main"));
        goto out;
    }
    *W = sqlite3_column_int(st, 0), *H = sqlite3_column_int(st, 1);
    if (*W < 32 || *H < 32 || *W % 32 || *H % 32 || *W > 4096 || *H > 4096) {
        avs_err_set(err, "video %s: frames are %dx%d; PVTv2 needs sides that are multiples of 32: "
                    "re-ingest with --size 224x224", (const char *)sqlite3_column_text(st, 2), *W, *H);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

int avs_feat_audio_parse(const char *name)
{
    return !name || !strcmp(name, "vggish") ? 0 : !strcmp(name, "panns_cnn14") ? 1 : -1;
}

/* PANNs CNN14 (Cnn14_16k) as the audio encoder: its own AudioSet head (fc_audioset). */
static int load_panns(struct avs_feat_enc *e, const char *audio_file, const char *audio_head,
                      uint64_t seed, struct avs_err *err)
{
    if (audio_head)
        return avs_err_set(err, "--audio-head %s: PANNs CNN14 has its own AudioSet head "
                           "(fc_audioset): give only --audio panns_cnn14=FILE", audio_head);
    if (audio_file) {
        if (avs_panns_load(&e->pn, audio_file, err))
            return avs_err_wrap(err, "loading the audio encoder (check --audio panns_cnn14=FILE)");
    } else
        avs_panns_init_random(&e->pn, seed);
    e->have_pn = e->panns = 1;
    e->A = e->pn.classes, e->E = e->pn.emb, e->mel_T = AVS_PANNS_MEL_FRAMES;
    return 0;
}

int avs_feat_frontend_init(struct avs_feat_enc *e, struct avs_err *err)
{
    if (avs_logmel_init(&e->mel, err))
        return -1;
    e->have_mel = 1;
    if (e->panns) {
        if (avs_panns_mel_init(&e->pmel, err))
            return -1;
        e->have_pmel = 1;
    }
    return 0;
}

int avs_feat_enc_load(struct avs_feat_enc *e, const char *visual, const char *visual_file,
                      const char *audio, const char *audio_file, const char *audio_head,
                      uint64_t seed, struct avs_err *err)
{
    if (avs_feat_vis_load(&e->vis, visual, visual_file, seed, e->H, e->W, err))
        return -1;
    e->have_vis = 1;
    if (!e->vis.classes)
        return avs_err_set(err, "%s: no ImageNet head (head.* or, for resnet50, fc.*): C3IM needs the "
                           "visual logits; convert the full classification checkpoint",
                           visual_file);
    int kind = avs_feat_audio_parse(audio);
    if (kind < 0)
        return avs_err_set(err, "--audio %s: unknown encoder (vggish or panns_cnn14)", audio);
    if (kind == 1) {
        e->V = e->vis.classes;
        return load_panns(e, audio_file, audio_head, seed, err);
    }
    if (audio_file) {
        if (avs_vggish_load(&e->vg, audio_file, audio_head, err))
            return avs_err_wrap(err, "loading the audio encoder (check --audio / --audio-head)");
    } else
        avs_vggish_init_random(&e->vg, 527, seed);
    e->have_vg = 1;
    if (!e->vg.classes)
        return avs_err_set(err, "%s: no AudioSet head: give the 527-way head with --audio-head "
                           "H.safetensors (head.weight [527,128], head.bias [527])", audio_file);
    e->V = e->vis.classes, e->A = e->vg.classes, e->E = e->vg.fc[2];
    e->mel_T = AVS_LOGMEL_FRAMES;
    return 0;
}

void avs_feat_sim_random(struct avs_feat_enc *e, uint64_t seed)
{
    free(e->S);
    e->S = avs_malloc((size_t)e->V * e->A * sizeof(float));
    avs_randinit_uniform(e->S, (size_t)e->V * e->A, 1.0f, seed, SIM_STREAM);
}

/* S [V,A] from --vectors (stored in the index by the writer, rank 0) or a deterministic random
 * one. */
static int load_similarity(struct avs_feat_enc *e, sqlite3 *db, const struct avs_features_opts *o,
                           int writer, char hash[33], struct avs_err *err)
{
    if (!o->vectors) {
        avs_feat_sim_random(e, o->seed);
        return 0;
    }
    e->S = avs_malloc((size_t)e->V * e->A * sizeof(float));
    const char *fv = o->classes_visual ? o->classes_visual : "features/data/imagenet1k_classes.txt";
    const char *fa = o->classes_audio ? o->classes_audio : "features/data/audioset_class_labels_indices.csv";
    char **vis = NULL, **aud = NULL;
    int nv = 0, na = 0, rc = -1;
    struct avs_wordset ws = {0};
    struct avs_wordvec *wv = NULL;
    if (avs_labels_read(fv, &vis, &nv, err) || avs_labels_read(fa, &aud, &na, err)) {
        avs_err_wrap(err, "class lists (give them with --classes-visual/--classes-audio)");
        goto out;
    }
    if (nv != e->V || na != e->A) {
        avs_err_set(err, "wrong shapes: the class lists give S %d x %d (%s, %s) but the encoders "
                    "give %d visual and %d audio logits", nv, na, fv, fa, e->V, e->A);
        goto out;
    }
    avs_wordset_from_labels(&ws, (const char *const *)vis, nv, (const char *const *)aud, na);
    if (avs_wordvec_load(&wv, o->vectors, &ws, err))
        goto out;
    avs_labelsim_build(e->S, wv, (const char *const *)vis, nv, (const char *const *)aud, na);
    if (avs_hash_file(o->vectors, hash, err) ||
        (writer && avs_labelsim_store(db, o->vectors, e->S, nv, na, NULL, err)))
        goto out;
    rc = 0;
out:
    avs_wordvec_free(&wv);
    avs_wordset_free(&ws);
    avs_labels_free(&vis, nv);
    avs_labels_free(&aud, na);
    return rc;
}

static void add_encoder(cJSON *root, const char *key, const char *name, const char *path,
                        const char *head, const struct avs_features_opts *o, struct avs_err *err)
{
    cJSON *j = cJSON_AddObjectToObject(root, key);
    cJSON_AddStringToObject(j, "name", name);
    char hex[33];
    if (!path) {
        char *s = avs_sprintf("random-init %llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(j, "weights", s);
        free(s);
        return;
    }
    const char *files[2] = {path, head};
    const char *keys[2][2] = {{"weights", "weights_hash"}, {"head", "head_hash"}};
    for (int i = 0; i < 2; i++) {
        if (!files[i])
            continue;
        const char *b = strrchr(files[i], '/');
        cJSON_AddStringToObject(j, keys[i][0], b ? b + 1 : files[i]);
        if (avs_hash_file(files[i], hex, err) == 0)
            cJSON_AddStringToObject(j, keys[i][1], hex);
    }
}

/* The set's configuration as JSON (compared on every later run: a different one is refused). */
static char *config_json(const struct avs_features_opts *o, const struct avs_feat_enc *e,
                         const char *sim_hash)
{
    struct avs_err err;
    cJSON *root = cJSON_CreateObject();
    add_encoder(root, "visual", o->visual, o->visual_weights, NULL, o, &err);
    add_encoder(root, "audio", e->panns ? "panns_cnn14" : "vggish", o->audio_weights,
                o->audio_head, o, &err);
    cJSON *s = cJSON_AddObjectToObject(root, "similarity");
    if (o->vectors) {
        const char *b = strrchr(o->vectors, '/');
        cJSON_AddStringToObject(s, "vectors", b ? b + 1 : o->vectors);
        cJSON_AddStringToObject(s, "vectors_hash", sim_hash);
    } else {
        char *r = avs_sprintf("random-init %llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(s, "vectors", r);
        free(r);
    }
    /* PANNs takes each second alone: the `second` policy, whatever o->policy says */
    cJSON_AddStringToObject(root, "logmel_policy",
                            avs_logmel_policy_name(e->panns ? AVS_LOGMEL_SECOND : o->policy));
    cJSON_AddStringToObject(root, "image_norm", "imagenet mean/std");
    cJSON *sz = cJSON_AddArrayToObject(root, "image_size");
    cJSON_AddItemToArray(sz, cJSON_CreateNumber(e->H));
    cJSON_AddItemToArray(sz, cJSON_CreateNumber(e->W));
    if (o->alpha != AVS_C3IM_ALPHA || o->beta != AVS_C3IM_BETA) {
        cJSON *c = cJSON_AddObjectToObject(root, "c3im"); /* absent: 0.1, 0.1 (c3im_cfg.c) */
        cJSON_AddNumberToObject(c, "alpha", o->alpha);
        cJSON_AddNumberToObject(c, "beta", o->beta);
    }
    cJSON_AddBoolToObject(root, "flip", o->flip);
    cJSON_AddStringToObject(root, "dtype", o->fp16 ? "f16" : "f32");
    cJSON *f = cJSON_AddArrayToObject(root, "fields");
    for (int i = 0; i < e->nf; i++)
        cJSON_AddItemToArray(f, cJSON_CreateString(e->fields[i].name));
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt;
}

/* Find or create the set's row; an existing row must have the same configuration. */
static int register_set(sqlite3 *db, const char *name, const char *path, const char *config,
                        int random_init, int64_t *id, struct avs_err *err)
{
    sqlite3_stmt *st;
    int rc = -1;
    if (avs_db_prepare(db, "SELECT id, config, version FROM feature_sets WHERE name = ?1", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        const char *old = (const char *)sqlite3_column_text(st, 1);
        int ver = sqlite3_column_int(st, 2);
        if (ver != AVS_CACHE_VERSION)
            avs_err_set(err, "feature set \"%s\" is feature cache v%d, need v%d: run avs-features "
                        "--rebuild --set %s (with the options that made it) to recompute it", name,
                        ver, AVS_CACHE_VERSION, name);
        else if (!old || strcmp(old, config))
            avs_err_set(err, "feature set \"%s\" exists with another configuration (%s); this run "
                        "asks for %s: choose another --set NAME", name, old ? old : "?", config);
        else
            rc = 0;
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    if (avs_db_prepare(db, "INSERT INTO feature_sets (name, path, config, version, random_init) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, AVS_CACHE_VERSION);
    sqlite3_bind_int(st, 5, random_init);
    if (sqlite3_step(st) != SQLITE_DONE)
        avs_db_error(db, err, "registering the feature set");
    else {
        *id = sqlite3_last_insert_rowid(db);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The configuration without its field list (what the code version decides). */
static char *config_sans_fields(const char *config)
{
    cJSON *j = cJSON_Parse(config);
    if (!j)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "fields");
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

/* --rebuild: the set's rows go and its row is reset (same id and name; config and version
 * as this run writes them, which must describe the same encoders and options: only the field
 * list may differ), then the file goes. Rows first: a rebuild killed in between leaves a set
 * with no rows (rebuild again) rather than rows naming a missing file. */
static int rebuild_reset(sqlite3 *db, const char *name, const char *bin, const char *config,
                         int random_init, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT id, config FROM feature_sets WHERE name = ?1", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = 0, found = sqlite3_step(st) == SQLITE_ROW;
    int64_t id = found ? sqlite3_column_int64(st, 0) : 0;
    char *a = found ? config_sans_fields((const char *)sqlite3_column_text(st, 1)) : NULL;
    char *b = config_sans_fields(config);
    sqlite3_finalize(st);
    if (found && (!a || !b || strcmp(a, b)))
        rc = avs_err_set(err, "--rebuild: feature set \"%s\" was made with another configuration "
                         "(%s) than this run's (%s): give the options that made it (avs-features "
                         "show --set %s prints them)", name, a ? a : "?", b ? b : "?", name);
    cJSON_free(a), cJSON_free(b);
    if (rc || !found)
        return rc;
    struct avs_err e2;
    if (avs_db_exec(db, "BEGIN IMMEDIATE", err))
        return -1;
    const char *sql[2] = {"DELETE FROM feature_entries WHERE set_id = ?1",
                          "UPDATE feature_sets SET config = ?2, version = ?3, random_init = ?4, "
                          "status = 'building' WHERE id = ?1"};
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (avs_db_prepare(db, sql[i], &st, err)) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        if (i == 1) {
            sqlite3_bind_text(st, 2, config, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 3, AVS_CACHE_VERSION);
            sqlite3_bind_int(st, 4, random_init);
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = avs_err_set(err, "--rebuild %s: %s", name, sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    if (rc || avs_db_exec(db, "COMMIT", err)) {
        avs_db_exec(db, "ROLLBACK", &e2);
        return -1;
    }
    if (unlink(bin) != 0 && errno != ENOENT)
        return avs_err_set(err, "--rebuild: cannot remove %s: %s", bin, strerror(errno));
    return 0;
}

struct video { int64_t id; char *uid; int n; };

/* Selected ok videos not yet in the set; *total = all selected. */
static int pending_videos(sqlite3 *db, int64_t set_id, const struct avs_features_opts *o,
                          struct video **out, int *n, int *total, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT v.id, v.uid, v.n_seconds, (SELECT count(*) FROM feature_entries e "
                           "WHERE e.set_id = ?1 AND e.video_id = v.id) FROM videos v WHERE "
                           "v.status = 'ok' AND v.n_seconds > 0 AND (?2 IS NULL OR v.split = ?2) "
                           "AND (?3 IS NULL OR v.subset = ?3) ORDER BY v.uid", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, set_id);
    if (o->split)
        sqlite3_bind_text(st, 2, o->split, -1, SQLITE_TRANSIENT);
    if (o->subset)
        sqlite3_bind_text(st, 3, o->subset, -1, SQLITE_TRANSIENT);
    int cap = 16, idx = 0;
    *out = avs_malloc((size_t)cap * sizeof **out);
    *n = *total = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int i = idx++;
        if (o->shard_n > 1 && i % o->shard_n != o->shard_i)
            continue;
        (*total)++;
        int nsec = sqlite3_column_int(st, 2), have = sqlite3_column_int(st, 3);
        if (have == nsec * (o->flip ? 2 : 1))
            continue;
        if (*n == cap)
            *out = avs_realloc(*out, (size_t)(cap *= 2) * sizeof **out);
        (*out)[*n].id = sqlite3_column_int64(st, 0);
        (*out)[*n].uid = avs_strdup((const char *)sqlite3_column_text(st, 1));
        (*out)[(*n)++].n = nsec;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Records past the last one an index row names (a killed run's, or a failed video's) go, so
 * that a re-run appends exactly what an uninterrupted run would have. */
static int drop_unindexed(sqlite3 *db, struct avs_cache_writer *cw, int64_t set_id,
                          struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT coalesce(max(offset), -1) FROM feature_entries WHERE set_id = ?1",
                       &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, set_id);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : avs_db_error(db, err, "reading feature_entries");
    int64_t last = rc ? 0 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc ? -1 : avs_cache_keep_through(cw, last, err);
}

void avs_feat_set_status(sqlite3 *db, int64_t set_id)
{
    sqlite3_stmt *st;
    struct avs_err err;
    if (avs_db_prepare(db, "UPDATE feature_sets SET status = CASE WHEN EXISTS (SELECT 1 FROM videos v "
                           "WHERE v.status = 'ok' AND v.n_seconds > 0 AND NOT EXISTS (SELECT 1 FROM "
                           "feature_entries e WHERE e.set_id = ?1 AND e.video_id = v.id)) THEN "
                           "'building' ELSE 'complete' END WHERE id = ?1", &st, &err))
        return;
    sqlite3_bind_int64(st, 1, set_id);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

void avs_feat_enc_close(struct avs_feat_enc *e)
{
    avs_feat_bufs_free(&e->bufs);
    if (e->have_vis)
        avs_feat_vis_free(&e->vis);
    if (e->have_vg)
        avs_vggish_free(&e->vg);
    if (e->have_mel)
        avs_logmel_free(&e->mel);
    if (e->have_pn)
        avs_panns_free(&e->pn);
    if (e->have_pmel)
        avs_panns_mel_free(&e->pmel);
    free(e->S);
    memset(e, 0, sizeof *e);
}

static char *default_set_name(const struct avs_features_opts *o)
{
    char rnd[48] = "";
    if (o->random_init)
        snprintf(rnd, sizeof rnd, "-random%llu", (unsigned long long)o->seed);
    char ab[64] = "";
    if (o->alpha != AVS_C3IM_ALPHA || o->beta != AVS_C3IM_BETA)
        snprintf(ab, sizeof ab, "-a%g-b%g", o->alpha, o->beta);
    int panns = avs_feat_audio_parse(o->audio) == 1;
    return avs_sprintf("%s-%s%s%s%s%s%s", o->visual, panns ? "panns_cnn14" : "vggish", rnd,
                       !panns && o->policy == AVS_LOGMEL_SECOND ? "-second" : "",
                       o->flip ? "-flip" : "", o->fp16 ? "-fp16" : "", ab);
}

/* The run on every rank: the store, encoders and set (rank 0 alone writes: the set's row, lock,
 * file and session), the videos to do (the same list on every rank). */
struct job {
    const struct avs_features_opts *o;
    struct avs_features_stats *stats;
    int rank, ranks;
    sqlite3 *db;
    struct avs_feat_enc e;
    struct avs_fs_lock *lock;
    struct avs_cache_writer *cw;
    struct video *vids;
    int nv;
    struct avs_progress pr;
    struct avs_err *err; /* rank 0: the fatal error that stopped the loop */
};

/* The store and the encoders, on every rank: rank 0 opens the index first (it may migrate
 * it), the others then read it. */
static int open_encoders(struct job *j, const char *dbp, char *sim_hash, struct avs_err *err)
{
    const struct avs_features_opts *o = j->o;
    struct avs_feat_enc *e = &j->e;
    int rc = 0;
    if (j->rank == 0)
        rc = avs_db_open(dbp, &j->db, err);
    if (avs_ranks_failed(rc, err))
        return -1;
    if (j->rank > 0)
        rc = avs_db_open_readonly(dbp, &j->db, err);
    if (rc == 0)
        rc = store_size(j->db, &e->H, &e->W, err) ||
             avs_feat_enc_load(e, o->visual, o->visual_weights, o->audio, o->audio_weights,
                               o->audio_head, o->seed, err) ||
             load_similarity(e, j->db, o, j->rank == 0, sim_hash, err) ? -1 : 0;
    e->alpha = (float)o->alpha, e->beta = (float)o->beta;
    if (rc == 0)
        rc = avs_feat_frontend_init(e, err);
    if (rc == 0)
        avs_feat_fields(e);
    return avs_ranks_failed(rc, err) ? -1 : 0;
}

/* Rank 0: the set's lock, row (rebuilt first with --rebuild) and cache file. */
static int open_set(struct job *j, const char *name, const char *config, struct avs_err *err)
{
    const struct avs_features_opts *o = j->o;
    char *rel = avs_sprintf("features/%s.bin", name), *bin = avs_fs_join(o->root, rel);
    char *lockp = avs_sprintf("%s/features/.%s.lock", o->root, name);
    char *lockrel = avs_sprintf("features/.%s.lock", name);
    int rc = -1;
    if (avs_fs_check_under(o->root, rel, err) || avs_fs_check_under(o->root, lockrel, err))
        goto out; /* features/ or the set's files are links out of the store */
    int lr = avs_fs_lock_try(lockp, &j->lock, err);
    if (lr) {
        if (lr > 0)
            avs_err_wrap(err, "feature set %s is being written by another avs-features (or use "
                         "another --set)", name);
        goto out;
    }
    int random_init = !o->visual_weights || !o->audio_weights || !o->vectors;
    if (o->rebuild && rebuild_reset(j->db, name, bin, config, random_init, err))
        goto out;
    if (register_set(j->db, name, rel, config, random_init, &j->stats->set_id, err))
        goto out;
    if (avs_cache_open_append(&j->cw, bin, j->e.fields, j->e.nf,
                              o->fp16 ? AVS_CACHE_F16 : AVS_CACHE_F32, err) ||
        drop_unindexed(j->db, j->cw, j->stats->set_id, err))
        goto out;
    rc = 0;
out:
    free(rel), free(bin), free(lockp), free(lockrel);
    return rc;
}

/* Video i on this rank: its records (or why it failed) as a message for rank 0. */
static int make_video(void *ctx, int i, void **buf, size_t *bytes)
{
    struct job *j = ctx;
    *buf = avs_feat_video_make(&j->e, j->o, j->db, j->vids[i].id, j->vids[i].n, bytes);
    return 0;
}

/* Rank 0, videos in order: the message's records appended and rows committed, as one process. */
static int take_video(void *ctx, int i, const void *buf, size_t bytes)
{
    struct job *j = ctx;
    struct avs_err verr = {0};
    const struct video *v = &j->vids[i];
    int r = avs_feat_video_take(&j->e, j->db, j->cw, j->stats->set_id, v->id, v->n, buf, bytes,
                                &verr);
    if (r == 0) {
        j->stats->done++;
        j->stats->records += (int64_t)v->n * (j->o->flip ? 2 : 1);
    } else if (r == 1) {
        j->stats->failed++;
        avs_log_error("video %s: %s", v->uid, verr.msg);
    } else {
        avs_err_set(j->err, "video %s: %s", v->uid, verr.msg);
        drop_unindexed(j->db, j->cw, j->stats->set_id, &verr); /* its records, if the disk lets us */
        return -1;
    }
    avs_progress_add(&j->pr, v->n);
    return 0;
}

/* Every rank: the set's id from rank 0, the same list of videos to do; then rank 0 may write. */
static int plan(struct job *j, struct avs_err *err)
{
    int rc = pending_videos(j->db, j->stats->set_id, j->o, &j->vids, &j->nv, &j->stats->videos, err);
    if (avs_ranks_failed(rc, err)) /* also: every rank has its list before rank 0 commits */
        return -1;
    j->stats->unchanged = j->stats->videos - j->nv;
    int64_t todo = 0;
    for (int i = 0; i < j->nv; i++)
        todo += j->vids[i].n;
    avs_progress_init(&j->pr, "features", "seconds", j->o->progress && j->rank == 0 ? todo : 0);
    if (!j->o->progress || j->rank > 0)
        j->pr.enabled = 0;
    return 0;
}

static void job_free(struct job *j)
{
    for (int i = 0; i < j->nv; i++)
        free(j->vids[i].uid);
    free(j->vids);
    avs_cache_close_writer(&j->cw);
    avs_fs_unlock(&j->lock);
    avs_db_close(&j->db);
    avs_feat_enc_close(&j->e);
}

/* Under ranks (dist/ranks.h) video i of the list is computed on rank i % ranks and rank 0
 * writes every video's records and rows in list order: the set's file and rows are those of
 * one process. Only rank 0's stats count; every rank returns rank 0's status. */
int avs_features_run(const struct avs_features_opts *given, struct avs_features_stats *stats,
                     struct avs_err *err)
{
    struct avs_features_opts oc = *given, *o = &oc;
    oc.alpha = oc.alpha ? oc.alpha : AVS_C3IM_ALPHA; /* 0: the official exponents */
    oc.beta = oc.beta ? oc.beta : AVS_C3IM_BETA;
    if (!avs_c3im_exponent_ok(oc.alpha) || !avs_c3im_exponent_ok(oc.beta))
        return avs_err_set(err, "C3IM %s %g: must be a number > 0 (default 0.1)",
                           avs_c3im_exponent_ok(oc.alpha) ? "beta" : "alpha",
                           avs_c3im_exponent_ok(oc.alpha) ? oc.beta : oc.alpha);
    int rc = -1;
    double t0 = avs_now();
    struct job j;
    memset(&j, 0, sizeof j);
    memset(stats, 0, sizeof *stats);
    j.o = o, j.stats = stats, j.err = err;
    j.rank = avs_ranks_rank(), j.ranks = avs_ranks_size();
    char *dbp = o->db_path ? avs_strdup(o->db_path) : avs_db_path_for_root(o->root);
    char *name = o->set ? avs_strdup(o->set) : default_set_name(o);
    char *config = NULL, sim_hash[33] = "";
    if (!avs_feat_set_name_ok(name)) {
        avs_err_set(err, "--set %s: use letters, digits, '-', '_' and '.' (at most 99)", name);
        goto out;
    }
    if (!avs_fs_exists(dbp)) {
        avs_err_set(err, "%s: no store index here: ingest clips first (avs-ingest --root %s CLIPS...)"
                    " or give --root/--db", dbp, o->root);
        goto out;
    }
    if (open_encoders(&j, dbp, sim_hash, err))
        goto out;
    config = config_json(o, &j.e, sim_hash);
    int r = j.rank == 0 ? open_set(&j, name, config, err) : 0;
    if (avs_ranks_failed(r, err))
        goto out;
    avs_ranks_bcast(&stats->set_id, sizeof stats->set_id, 0);
    r = avs_session_record(j.db, "avs-features", 0, j.stats->set_id, err);
    if (avs_ranks_failed(r, err) || plan(&j, err))
        goto out;
    snprintf(stats->set, sizeof stats->set, "%s", name);
    double c0 = avs_ranks_comm_seconds();
    r = avs_ranks_ordered(j.nv, make_video, take_video, &j);
    stats->wait_seconds = avs_ranks_comm_seconds() - c0;
    avs_progress_end(&j.pr);
    if (r == 0 && j.rank == 0)
        avs_feat_set_status(j.db, stats->set_id);
    rc = r ? -1 : stats->failed ? 2 : 0;
out:
    stats->seconds = avs_now() - t0;
    avs_ranks_bcast(&rc, sizeof rc, 0); /* rank 0's status is the job's */
    if (rc < 0 && !err->msg[0])
        avs_err_set(err, "rank %d of %d: rank 0 stopped the run (its message names the cause)",
                    j.rank, j.ranks);
    job_free(&j);
    free(dbp), free(name);
    cJSON_free(config);
    return rc;
}
