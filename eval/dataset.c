/* eval/dataset.c: which frames to evaluate: AVSBench GT trees, the store index, and finding
 * each frame's prediction file. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/db.h"
#include "core/fs.h"
#include "eval/eval.h"
#include "store/store.h"

/* ---- growing the set ------------------------------------------------------------------- */

static int add_video(struct avs_eval_set *s, const char *name, const char *category)
{
    if ((s->n_videos & (s->n_videos - 1)) == 0)
        s->videos = avs_realloc(s->videos, sizeof *s->videos * (size_t)(s->n_videos ? 2 * s->n_videos : 8));
    struct avs_eval_video *v = &s->videos[s->n_videos];
    v->name = avs_strdup(name);
    v->category = category ? avs_strdup(category) : NULL;
    v->first = s->n_frames;
    v->n = 0;
    return s->n_videos++;
}

static void add_frame(struct avs_eval_set *s, int video, int k, char *gt, char *image)
{
    if ((s->n_frames & (s->n_frames - 1)) == 0)
        s->frames = avs_realloc(s->frames, sizeof *s->frames * (size_t)(s->n_frames ? 2 * s->n_frames : 8));
    struct avs_eval_frame *f = &s->frames[s->n_frames++];
    memset(f, 0, sizeof *f);
    f->gt = gt;
    f->image = image;
    f->video = video;
    f->k = k;
    s->videos[video].n++;
}

void avs_eval_set_free(struct avs_eval_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_videos; i++) {
        free(s->videos[i].name);
        free(s->videos[i].category);
    }
    for (int i = 0; i < s->n_frames; i++) {
        free(s->frames[i].gt);
        free(s->frames[i].pred);
        free(s->frames[i].want);
        free(s->frames[i].image);
    }
    free(s->videos);
    free(s->frames);
    free(s->subset);
    free(s->split);
    memset(s, 0, sizeof *s);
}

/* ---- folder trees ---------------------------------------------------------------------- */

struct names {
    char **v;
    int n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *n)
{
    for (int i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
    n->v = NULL;
    n->n = 0;
}

/* Entries of `dir` (sorted): want_dirs 1 = sub-folders, 0 = regular files. */
static int list_dir(const char *dir, int want_dirs, struct names *out, struct avs_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return avs_err_set(err, "cannot list %s: %m", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = avs_fs_join(dir, e->d_name);
        int is_dir = avs_fs_is_dir(p);
        free(p);
        if (is_dir != want_dirs)
            continue;
        out->v = avs_realloc(out->v, sizeof *out->v * (size_t)(out->n + 1));
        out->v[out->n++] = avs_strdup(e->d_name);
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* k of "<video>_<k>.png", or -1. */
static int frame_k(const char *file, const char *video)
{
    size_t lv = strlen(video), lf = strlen(file);
    if (lf < lv + 6 || strncmp(file, video, lv) || file[lv] != '_' || strcmp(file + lf - 4, ".png"))
        return -1;
    long k = 0;
    const char *p = file + lv + 1;
    if (p == file + lf - 4)
        return -1;
    for (; p < file + lf - 4; p++) {
        if (!isdigit((unsigned char)*p) || k > 100000)
            return -1;
        k = 10 * k + (*p - '0');
    }
    return (int)k;
}

struct kpath {
    int k;
    char *path;
};

static int cmp_k(const void *a, const void *b)
{
    return ((const struct kpath *)a)->k - ((const struct kpath *)b)->k;
}

/* One video folder: its "<video>_<k>.png" masks, by k. */
static int add_video_dir(struct avs_eval_set *s, const char *dir, const char *video,
                         const char *category, struct avs_err *err)
{
    struct names files = {0};
    if (list_dir(dir, 0, &files, err))
        return -1;
    struct kpath *kp = avs_calloc((size_t)files.n + 1, sizeof *kp);
    int n = 0;
    for (int i = 0; i < files.n; i++) {
        int k = frame_k(files.v[i], video);
        if (k < 0)
            continue;
        kp[n].k = k;
        kp[n++].path = avs_fs_join(dir, files.v[i]);
    }
    qsort(kp, (size_t)n, sizeof *kp, cmp_k);
    if (n > 0) {
        int vi = add_video(s, video, category);
        for (int i = 0; i < n; i++)
            add_frame(s, vi, kp[i].k, kp[i].path, NULL);
    } else {
        avs_log_warn("%s: no <video>_<k>.png masks named after the folder; skipped", dir);
    }
    free(kp);
    names_free(&files);
    return 0;
}

static int has_png(const char *dir)
{
    struct names f = {0};
    struct avs_err e;
    int yes = 0;
    if (list_dir(dir, 0, &f, &e) == 0)
        for (int i = 0; i < f.n && !yes; i++)
            yes = strlen(f.v[i]) > 4 && !strcmp(f.v[i] + strlen(f.v[i]) - 4, ".png");
    names_free(&f);
    return yes;
}

int avs_eval_list_folder(const char *dir, const char *split, const char *subset,
                         struct avs_eval_set *set, struct avs_err *err)
{
    struct avs_eval_set s = {0};
    struct names top = {0}, sub = {0};
    int rc = -1;
    char *base = split ? avs_fs_join(dir, split) : NULL;
    if (!base || !avs_fs_is_dir(base)) {
        free(base);
        base = avs_strdup(dir);
    }
    if (!avs_fs_is_dir(base)) {
        avs_err_set(err, "ground-truth folder %s does not exist (give the AVSBench gt_masks "
                         "folder or its <split> sub-folder)", base);
        goto out;
    }
    if (list_dir(base, 1, &top, err))
        goto out;
    if (!subset) {
        char *first = top.n ? avs_fs_join(base, top.v[0]) : NULL;
        subset = first && has_png(first) ? "ms3" : "s4";
        free(first);
    }
    for (int i = 0; i < top.n; i++) {
        char *d1 = avs_fs_join(base, top.v[i]);
        if (!strcmp(subset, "ms3")) {
            rc = add_video_dir(&s, d1, top.v[i], NULL, err);
        } else {
            names_free(&sub);
            rc = list_dir(d1, 1, &sub, err);
            for (int j = 0; rc == 0 && j < sub.n; j++) {
                char *d2 = avs_fs_join(d1, sub.v[j]);
                rc = add_video_dir(&s, d2, sub.v[j], top.v[i], err);
                free(d2);
            }
        }
        free(d1);
        if (rc)
            goto out;
    }
    rc = -1;
    if (s.n_frames == 0) {
        avs_err_set(err, "no ground-truth masks under %s (expected %s)", base,
                    !strcmp(subset, "ms3") ? "<video>/<video>_<k>.png"
                                           : "<category>/<video>/<video>_<k>.png");
        goto out;
    }
    s.subset = avs_strdup(subset);
    s.split = split ? avs_strdup(split) : NULL;
    *set = s;
    memset(&s, 0, sizeof s);
    rc = 0;
out:
    avs_eval_set_free(&s);
    names_free(&top);
    names_free(&sub);
    free(base);
    return rc;
}

/* ---- the store index ------------------------------------------------------------------- */

int avs_eval_list_db(sqlite3 *db, const char *root, const char *split, const char *subset,
                     struct avs_eval_set *set, struct avs_err *err)
{
    static const char *SQL =
        "SELECT v.id, v.uid, v.category, m.k, m.path, s.frame FROM masks m "
        "JOIN videos v ON v.id = m.video_id "
        "LEFT JOIN seconds s ON s.video_id = m.video_id AND s.k = m.k "
        "WHERE v.status = 'ok' AND (?1 IS NULL OR v.split = ?1) AND (?2 IS NULL OR v.subset = ?2) "
        "ORDER BY v.id, m.k";
    sqlite3_stmt *st = NULL;
    struct avs_eval_set s = {0};
    if (avs_db_prepare(db, SQL, &st, err))
        return -1;
    sqlite3_bind_text(st, 1, split, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subset, -1, SQLITE_STATIC);
    int64_t last = -1;
    int vi = -1, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id != last && avs_store_unmarked(root, (const char *)sqlite3_column_text(st, 1), err))
            goto fail; /* avs-ingest left it half replaced (store/store.h) */
        if (id != last) {
            const char *cat = (const char *)sqlite3_column_text(st, 2);
            vi = add_video(&s, (const char *)sqlite3_column_text(st, 1), cat);
            last = id;
        }
        const char *frame = (const char *)sqlite3_column_text(st, 5);
        add_frame(&s, vi, sqlite3_column_int(st, 3),
                  avs_fs_join(root, (const char *)sqlite3_column_text(st, 4)),
                  frame ? avs_fs_join(root, frame) : NULL);
    }
    if (rc != SQLITE_DONE) {
        avs_err_set(err, "reading masks from %s: %s", sqlite3_db_filename(db, "main"),
                    sqlite3_errmsg(db));
        goto fail;
    }
    sqlite3_finalize(st);
    if (s.n_frames == 0) {
        avs_err_set(err, "the index %s has no ground-truth masks%s%s%s%s (ingest an annotated "
                    "dataset first, or widen the filter: --split all)",
                    sqlite3_db_filename(db, "main"), split ? " for split " : "",
                    split ? split : "", subset ? " in subset " : "", subset ? subset : "");
        avs_eval_set_free(&s);
        return -1;
    }
    s.subset = avs_strdup(subset ? subset : "other");
    s.split = split ? avs_strdup(split) : NULL;
    s.from_db = 1;
    *set = s;
    return 0;
fail:
    sqlite3_finalize(st);
    avs_eval_set_free(&s);
    return -1;
}

/* ---- ordering by a metadata CSV -------------------------------------------------------- */

/* Field `col` of a simple CSV line (no embedded commas), quotes stripped, into buf. */
static void csv_field(const char *line, int col, char *buf, size_t len)
{
    const char *p = line;
    for (int c = 0; c < col && p; c++)
        if ((p = strchr(p, ',')))
            p++;
    buf[0] = '\0';
    if (!p)
        return;
    size_t n = strcspn(p, ",\r\n");
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"')
        p++, n -= 2;
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

struct vref {
    const char *name;
    int index;
};

static int cmp_vref(const void *a, const void *b)
{
    return strcmp(((const struct vref *)a)->name, ((const struct vref *)b)->name);
}

int avs_eval_order_by_csv(struct avs_eval_set *set, const char *csv, int *dropped,
                          struct avs_err *err)
{
    char *data = NULL;
    size_t len;
    if (avs_fs_read_all(csv, &data, &len, err))
        return -1;
    int col = 0;
    char buf[512];
    for (int c = 0; c < 16; c++) {
        csv_field(data, c, buf, sizeof buf);
        if (!strcmp(buf, "name") || !strcmp(buf, "uid") || !strcmp(buf, "vid") ||
            !strcmp(buf, "video_id")) {
            col = c;
            break;
        }
    }
    struct vref *refs = avs_malloc(sizeof *refs * (size_t)(set->n_videos + 1));
    for (int i = 0; i < set->n_videos; i++)
        refs[i] = (struct vref){set->videos[i].name, i};
    qsort(refs, (size_t)set->n_videos, sizeof *refs, cmp_vref);
    int *order = avs_malloc(sizeof(int) * (size_t)(set->n_videos + 1));
    uint8_t *used = avs_calloc((size_t)set->n_videos + 1, 1);
    int n = 0;
    for (char *line = strchr(data, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        csv_field(line + 1, col, buf, sizeof buf);
        struct vref key = {buf, 0}, *hit;
        hit = bsearch(&key, refs, (size_t)set->n_videos, sizeof *refs, cmp_vref);
        if (hit && !used[hit->index]) {
            used[hit->index] = 1;
            order[n++] = hit->index;
        }
    }
    /* rebuild videos and frames in CSV order */
    struct avs_eval_set out = {0};
    for (int a = 0; a < n; a++) {
        struct avs_eval_video *v = &set->videos[order[a]];
        int vi = add_video(&out, v->name, v->category);
        for (int f = v->first; f < v->first + v->n; f++) {
            struct avs_eval_frame *fr = &set->frames[f];
            add_frame(&out, vi, fr->k, fr->gt, fr->image);
            out.frames[out.n_frames - 1].pred = fr->pred;
            out.frames[out.n_frames - 1].want = fr->want;
            fr->gt = fr->image = fr->pred = fr->want = NULL;
        }
    }
    *dropped = set->n_videos - n;
    out.subset = set->subset;
    out.split = set->split;
    out.from_db = set->from_db;
    set->subset = set->split = NULL;
    avs_eval_set_free(set);
    *set = out;
    free(refs);
    free(order);
    free(used);
    free(data);
    if (n == 0)
        return avs_err_set(err, "%s names none of the ground-truth videos (column %d)", csv, col);
    return 0;
}

/* ---- predictions ----------------------------------------------------------------------- */

/* "<dir>/<file>.logits" if it exists, else ".png" if it exists, else NULL. */
static char *find_pred(const char *dir, const char *stem)
{
    char *p = avs_sprintf("%s/%s.logits", dir, stem);
    if (avs_fs_exists(p))
        return p;
    free(p);
    p = avs_sprintf("%s/%s.png", dir, stem);
    if (avs_fs_exists(p))
        return p;
    free(p);
    return NULL;
}

static char *stem_for(const struct avs_eval_video *v, int store_naming, int k)
{
    return store_naming ? avs_sprintf("%d", k) : avs_sprintf("%s_%d", v->name, k);
}

/* How many of the video's frames exist under dir with this naming and k offset. */
static int count_hits(const struct avs_eval_set *s, const struct avs_eval_video *v,
                      const char *dir, int store_naming, int off)
{
    int hits = 0;
    for (int f = v->first; f < v->first + v->n; f++) {
        char *stem = stem_for(v, store_naming, s->frames[f].k + off);
        char *p = find_pred(dir, stem);
        hits += p != NULL;
        free(p);
        free(stem);
    }
    return hits;
}

int avs_eval_attach_pred(struct avs_eval_set *s, const char *dir)
{
    int missing = 0;
    for (int vi = 0; vi < s->n_videos; vi++) {
        struct avs_eval_video *v = &s->videos[vi];
        const char *cat = v->category ? v->category : "";
        char *cand[5] = {
            avs_sprintf("%s/%s", dir, v->name),
            s->split && v->category ? avs_sprintf("%s/%s/%s/%s", dir, s->split, cat, v->name) : NULL,
            v->category ? avs_sprintf("%s/%s/%s", dir, cat, v->name) : NULL,
            s->split ? avs_sprintf("%s/%s/%s", dir, s->split, v->name) : NULL,
            avs_sprintf("%s/%s", dir, v->name),
        };
        int store_naming[5] = {1, 0, 0, 0, 0};
        int best = -1, best_off = 0, best_hits = 0;
        for (int c = 0; c < 5; c++) {
            if (!cand[c] || !avs_fs_is_dir(cand[c]))
                continue;
            for (int off = 0; off >= (store_naming[c] ? 0 : -1); off--) {
                int h = count_hits(s, v, cand[c], store_naming[c], off);
                if (h > best_hits)
                    best = c, best_off = off, best_hits = h;
            }
            if (best_hits == v->n)
                break;
        }
        if (best_off)
            avs_log_info("%s: predictions numbered from 0 (official save_mask); shifted by one",
                         cand[best]);
        /* where a missing file was expected: the chosen folder, else the GT-like layout */
        int shown = best >= 0 ? best : s->from_db ? 0 : v->category ? 2 : 4;
        for (int f = v->first; f < v->first + v->n; f++) {
            struct avs_eval_frame *fr = &s->frames[f];
            char *stem = stem_for(v, store_naming[shown], fr->k + (best >= 0 ? best_off : 0));
            fr->pred = best >= 0 ? find_pred(cand[best], stem) : NULL;
            if (!fr->pred) {
                fr->want = avs_sprintf("%s/%s.png", cand[shown], stem);
                missing++;
            }
            free(stem);
        }
        for (int c = 0; c < 5; c++)
            free(cand[c]);
    }
    return missing;
}

int avs_eval_attach_frames(struct avs_eval_set *s, const char *dir)
{
    int found = 0;
    for (int f = 0; f < s->n_frames; f++) {
        struct avs_eval_frame *fr = &s->frames[f];
        const struct avs_eval_video *v = &s->videos[fr->video];
        const char *cat = v->category ? v->category : "";
        char *cand[4] = {
            s->split && v->category ? avs_sprintf("%s/%s/%s/%s/%s_%d.png", dir, s->split, cat,
                                                  v->name, v->name, fr->k) : NULL,
            v->category ? avs_sprintf("%s/%s/%s/%s_%d.png", dir, cat, v->name, v->name, fr->k) : NULL,
            avs_sprintf("%s/%s/%s.mp4_%d.png", dir, v->name, v->name, fr->k),
            avs_sprintf("%s/%s/%s_%d.png", dir, v->name, v->name, fr->k),
        };
        for (int c = 0; c < 4; c++) {
            if (!fr->image && cand[c] && avs_fs_exists(cand[c])) {
                fr->image = cand[c];
                cand[c] = NULL;
                found++;
            }
            free(cand[c]);
        }
    }
    return found;
}
