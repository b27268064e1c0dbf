/* eval/avss_data.c: which AVSS frames to evaluate: the release tree (metadata.csv,
 * label2idx.json, <set>/<uid>/labels_rgb/<i>.png), the store index, and each frame's
 * prediction file. Every video has AVS_AVSS_T frames as officially (docs/avss.md). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "eval/avss.h"
#include "store/store.h"

static int add_video(struct avs_avss_set *s, const char *name, const char *set)
{
    if ((s->n_videos & (s->n_videos - 1)) == 0)
        s->videos = avs_realloc(s->videos, sizeof *s->videos * (size_t)(s->n_videos ? 2 * s->n_videos : 8));
    struct avs_avss_video *v = &s->videos[s->n_videos];
    v->name = avs_strdup(name);
    v->set = set ? avs_strdup(set) : NULL;
    v->first = s->n_frames;
    v->n = 0;
    return s->n_videos++;
}

static struct avs_avss_frame *add_frame(struct avs_avss_set *s, int video, int i)
{
    if ((s->n_frames & (s->n_frames - 1)) == 0)
        s->frames = avs_realloc(s->frames, sizeof *s->frames * (size_t)(s->n_frames ? 2 * s->n_frames : 8));
    struct avs_avss_frame *f = &s->frames[s->n_frames++];
    memset(f, 0, sizeof *f);
    f->video = video;
    f->i = i;
    s->videos[video].n++;
    return f;
}

void avs_avss_set_free(struct avs_avss_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_videos; i++) {
        free(s->videos[i].name);
        free(s->videos[i].set);
    }
    for (int i = 0; i < s->n_frames; i++) {
        free(s->frames[i].gt);
        free(s->frames[i].pred);
        free(s->frames[i].want);
        free(s->frames[i].image);
    }
    for (int c = 0; c < AVS_AVSS_MAX_CLASSES; c++)
        free(s->names[c]);
    free(s->videos);
    free(s->frames);
    free(s->split);
    memset(s, 0, sizeof *s);
}

/* Real frames of a release set: v1s/v1m videos have 5, v2 (and unknown sets) 10. */
static int real_frames(const char *set)
{
    return set && (!strcmp(set, "v1s") || !strcmp(set, "v1m")) ? 5 : AVS_AVSS_T;
}

/* The class count is the table's (highest named index + 1; the release: 71, and 71 when no
 * table is known); classes without a name below it get one. */
static void default_names(struct avs_avss_set *s)
{
    s->n_classes = 0;
    for (int c = 0; c < AVS_AVSS_MAX_CLASSES; c++)
        if (s->names[c])
            s->n_classes = c + 1;
    if (!s->n_classes)
        s->n_classes = AVS_AVSS_CLASSES;
    for (int c = 0; c < s->n_classes; c++)
        if (!s->names[c])
            s->names[c] = c ? avs_sprintf("class%d", c) : avs_strdup("background");
}

/* ---- the release tree ------------------------------------------------------------------ */

int avs_avss_is_release(const char *dir)
{
    char *a = avs_fs_join(dir, "metadata.csv"), *b = avs_fs_join(dir, "label2idx.json");
    int yes = avs_fs_exists(a) && avs_fs_exists(b);
    free(a);
    free(b);
    return yes;
}

/* The release's class table (core/avss.h: the reader ingest uses) into s->names. */
static int read_label2idx(const char *dir, struct avs_avss_set *s, struct avs_err *err)
{
    char *path = avs_fs_join(dir, "label2idx.json"), **names = NULL;
    int n = 0, rc = avs_avss_read_classes(path, &names, &n, err);
    free(path);
    if (rc)
        return -1;
    for (int c = 0; c < AVS_AVSS_MAX_CLASSES; c++)
        s->names[c] = names[c];
    free(names);
    return 0;
}

/* One release video: frames 0..9, labels where labels_rgb/<i>.png exists. */
static void add_release_video(struct avs_avss_set *s, const char *dir, const char *uid,
                              const char *set)
{
    int v = add_video(s, uid, set), real = real_frames(set);
    for (int i = 0; i < AVS_AVSS_T; i++) {
        struct avs_avss_frame *f = add_frame(s, v, i);
        char *gt = avs_sprintf("%s/%s/%s/labels_rgb/%d.png", dir, set, uid, i);
        if (avs_fs_exists(gt)) {
            f->gt = gt;
            f->gt_kind = AVS_AVSS_GT_COLOUR;
            f->image = avs_sprintf("%s/%s/%s/frames/%d.jpg", dir, set, uid, i);
        } else {
            free(gt);
        }
        f->padded = i >= real;
    }
}

int avs_avss_list_release(const char *dir, const char *split, struct avs_avss_set *set,
                          struct avs_err *err)
{
    struct avs_avss_set s = {0};
    struct avs_csv t = {0};
    char *csv = avs_fs_join(dir, "metadata.csv");
    int rc = -1, cu, cs, cl;
    if (read_label2idx(dir, &s, err) || avs_csv_read(csv, &t, err) ||
        avs_avss_meta_columns(&t, csv, &cu, &cs, &cl, err))
        goto out;
    for (size_t r = 1; r < t.n_rows; r++) {
        const char *uid = avs_csv_cell(&t, r, cu), *sp = avs_csv_cell(&t, r, cs);
        const char *set_label = avs_csv_cell(&t, r, cl);
        if (!uid || !*uid || !set_label)
            continue;
        if (!split || (sp && !strcmp(sp, split)))
            add_release_video(&s, dir, uid, set_label);
    }
    if (s.n_videos == 0) {
        avs_err_set(err, "%s lists no videos of split %s (--split all for every split)", csv,
                    split ? split : "(any)");
        goto out;
    }
    default_names(&s);
    s.split = split ? avs_strdup(split) : NULL;
    *set = s;
    memset(&s, 0, sizeof s);
    rc = 0;
out:
    avs_avss_set_free(&s);
    avs_csv_free(&t);
    free(csv);
    return rc;
}

/* ---- the store index ------------------------------------------------------------------- */

int avs_avss_db_count(sqlite3 *db)
{
    return (int)avs_db_scalar_int(db, "SELECT count(*) FROM videos WHERE subset = 'avss' "
                                      "AND status = 'ok'", 0);
}

static int db_names(sqlite3 *db, struct avs_avss_set *s, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(db, "SELECT idx, name FROM classes WHERE dataset = 'avss'", &st, err))
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int idx = sqlite3_column_int(st, 0);
        if (idx >= 0 && idx < AVS_AVSS_MAX_CLASSES && !s->names[idx])
            s->names[idx] = avs_strdup((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    default_names(s);
    return 0;
}

/* Frames 0..9 of the store video just added, from its mask rows (k = i + 1). */
static void db_frame(struct avs_avss_set *s, int v, int k, char *path, int w, int h)
{
    struct avs_avss_video *vd = &s->videos[v];
    while (vd->n < k - 1 && vd->n < AVS_AVSS_T)
        add_frame(s, v, vd->n)->padded = vd->n >= real_frames(vd->set);
    if (k < 1 || k > AVS_AVSS_T || vd->n >= k) {
        free(path);
        return;
    }
    struct avs_avss_frame *f = add_frame(s, v, k - 1);
    f->gt = path;
    f->gt_kind = AVS_AVSS_GT_INDEX;
    f->padded = k - 1 >= real_frames(vd->set);
    f->exp_w = w;
    f->exp_h = h;
}

int avs_avss_list_db(sqlite3 *db, const char *root, const char *split, struct avs_avss_set *set,
                     struct avs_err *err)
{
    static const char *SQL =
        "SELECT v.id, v.uid, v.avss_set, m.k, COALESCE(m.released, m.path), v.src_width, "
        "v.src_height FROM masks m JOIN videos v ON v.id = m.video_id "
        "WHERE v.status = 'ok' AND v.subset = 'avss' AND m.kind = 'class' "
        "AND (?1 IS NULL OR v.split = ?1) ORDER BY v.id, m.k";
    sqlite3_stmt *st = NULL;
    struct avs_avss_set s = {0};
    if (db_names(db, &s, err) || avs_db_prepare(db, SQL, &st, err))
        goto fail;
    sqlite3_bind_text(st, 1, split, -1, SQLITE_STATIC);
    int64_t last = -1;
    int v = -1, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 0) != last &&
            avs_store_unmarked(root, (const char *)sqlite3_column_text(st, 1), err))
            goto fail; /* avs-ingest left it half replaced (store/store.h) */
        if (sqlite3_column_int64(st, 0) != last) {
            if (v >= 0)
                db_frame(&s, v, AVS_AVSS_T + 1, NULL, 0, 0); /* pad the previous video */
            v = add_video(&s, (const char *)sqlite3_column_text(st, 1),
                          (const char *)sqlite3_column_text(st, 2));
            last = sqlite3_column_int64(st, 0);
        }
        const char *rel = (const char *)sqlite3_column_text(st, 4);
        db_frame(&s, v, sqlite3_column_int(st, 3),
                 rel[0] == '/' ? avs_strdup(rel) : avs_fs_join(root, rel),
                 sqlite3_column_int(st, 5), sqlite3_column_int(st, 6));
    }
    if (v >= 0)
        db_frame(&s, v, AVS_AVSS_T + 1, NULL, 0, 0);
    if (rc != SQLITE_DONE) {
        avs_err_set(err, "reading AVSS masks from %s: %s", sqlite3_db_filename(db, "main"),
                    sqlite3_errmsg(db));
        goto fail;
    }
    sqlite3_finalize(st);
    if (s.n_videos == 0) {
        avs_err_set(err, "the index %s has no AVSS class masks%s%s (ingest the AVSS release, or "
                    "--split all)", sqlite3_db_filename(db, "main"), split ? " for split " : "",
                    split ? split : "");
        avs_avss_set_free(&s);
        return -1;
    }
    s.split = split ? avs_strdup(split) : NULL;
    s.from_db = 1;
    *set = s;
    return 0;
fail:
    sqlite3_finalize(st);
    avs_avss_set_free(&s);
    return -1;
}

/* ---- predictions ----------------------------------------------------------------------- */

static char *find_pred(const char *dir, const char *stem)
{
    static const char *EXT[2] = {"logits", "png"};
    for (int e = 0; e < 2; e++) {
        char *p = avs_sprintf("%s/%s.%s", dir, stem, EXT[e]);
        if (avs_fs_exists(p))
            return p;
        free(p);
    }
    return NULL;
}

static char *stem_for(const struct avs_avss_video *v, int store, int i)
{
    return store ? avs_sprintf("%d", i + 1) : avs_sprintf("%s_%d", v->name, i);
}

static int hits(const struct avs_avss_set *s, const struct avs_avss_video *v, const char *dir,
                int store)
{
    int n = 0;
    for (int f = v->first; f < v->first + v->n; f++) {
        char *stem = stem_for(v, store, s->frames[f].i), *p = find_pred(dir, stem);
        n += p != NULL;
        free(p);
        free(stem);
    }
    return n;
}

int avs_avss_attach_pred(struct avs_avss_set *s, const char *dir)
{
    int missing = 0;
    for (int vi = 0; vi < s->n_videos; vi++) {
        struct avs_avss_video *v = &s->videos[vi];
        char *vdir = avs_sprintf("%s/%s", dir, v->name);
        /* the official naming unless the store naming finds more */
        int store = avs_fs_is_dir(vdir) && hits(s, v, vdir, 1) > hits(s, v, vdir, 0);
        for (int f = v->first; f < v->first + v->n; f++) {
            struct avs_avss_frame *fr = &s->frames[f];
            char *stem = stem_for(v, store, fr->i);
            fr->pred = find_pred(vdir, stem);
            if (!fr->pred) {
                fr->want = avs_sprintf("%s/%s.png", vdir, stem);
                missing += !fr->padded;
            }
            free(stem);
        }
        free(vdir);
    }
    return missing;
}
