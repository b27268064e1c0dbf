/* ingest/avss.c: AVSS release trees (docs/avss.md): planning from metadata.csv and
 * label2idx.json, reading frames and colour labels, change signatures.
 *
 *   DIR/metadata.csv     uid, split, label (v1s|v1m|v2) by name, else the released positions
 *                        (vid,uid,s_min,s_sec,a_obj,split,label: 1, 5, 6)
 *   DIR/label2idx.json   {"background": 0, ...}: the class table, in index order
 *   DIR/<label>/<uid>/   one item each: frames/<i>.jpg, labels_rgb/<i>.png, audio.wav
 */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/avss.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/names.h"
#include "ingest/avss.h"
#include "core/csv.h"

/* ---- planning ------------------------------------------------------------------------------ */

static const char *set_name(const char *label)
{
    static const char *const sets[] = {"v1s", "v1m", "v2", NULL};
    for (int i = 0; label && sets[i]; i++)
        if (!strcmp(label, sets[i]))
            return sets[i];
    return NULL;
}

/* The tree's class table into the plan; a second tree must have the same table. 1 when the
 * file is unusable (*problem set: every row of the tree fails with it). */
static int plan_classes(struct avs_ingest_plan *plan, const char *path, char **problem,
                        struct avs_err *err)
{
    char **names = NULL;
    int n = 0;
    struct avs_err cerr = {0};
    if (avs_avss_read_classes(path, &names, &n, &cerr)) {
        *problem = avs_strdup(cerr.msg);
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (avs_name_check_label(names[i], "class name", &cerr)) {
            *problem = avs_sprintf("%s: %s", path, cerr.msg);
            for (int k = 0; k < n; k++)
                free(names[k]);
            free(names);
            return 1;
        }
    int same = plan->classes && plan->n_classes == n;
    for (int i = 0; same && i < n; i++)
        same = !strcmp(plan->classes[i], names[i]);
    int rc = 0;
    if (!plan->classes) {
        plan->classes = names, plan->n_classes = n, plan->classes_file = avs_strdup(path);
        names = NULL;
    } else if (!same) {
        rc = avs_err_set(err, "%s and %s: two AVSS class tables that differ: ingest each tree "
                              "into its own store (--root)", plan->classes_file, path);
    }
    for (int i = 0; names && i < AVS_AVSS_MAX_CLASSES; i++)
        free(names[i]);
    free(names);
    return rc;
}

struct avss_cols { int uid, split, label; };

static void plan_row(struct avs_ingest_plan *plan, const char *dir, const struct avs_csv *t,
                     size_t r, const struct avss_cols *c, const char *classes, const char *problem)
{
    const char *uid = avs_csv_cell(t, r, c->uid), *label = avs_csv_cell(t, r, c->label);
    const char *split = c->split >= 0 ? avs_csv_cell(t, r, c->split) : NULL;
    const char *set = set_name(label);
    char *src = avs_sprintf("%s/%s/%s", dir, set ? set : label ? label : "", uid);
    char *table = avs_sprintf("%s/metadata.csv", dir);
    char *uid_why = NULL, *safe = NULL;
    int refused = avs_name_for_uid(uid, &safe, &uid_why);
    if (refused)
        avs_ingest_plan_refused(plan, table, r + 1, "avss", uid, uid_why);
    free(safe), free(table), free(uid_why);
    if (refused) {
        free(src);
        return;
    }
    struct avs_ingest_item *it = avs_ingest_plan_add(plan, src, "avss");
    avs_ingest_item_name(it, uid, "row");
    it->split = split && *split ? avs_strdup(split) : NULL;
    it->avss_set = set;
    it->n_classes = plan->n_classes;
    it->classes_file = avs_strdup(classes);
    if (problem)
        it->problem = avs_strdup(problem);
    else if (!set)
        it->problem = avs_sprintf("%s/metadata.csv row %zu (uid %s): label '%s' is not v1s, v1m "
                                  "or v2: fix the row", dir, r + 1, uid, label ? label : "");
    else if (!avs_fs_is_dir(src))
        it->problem = avs_sprintf("%s: no such folder for metadata.csv row %zu (uid %s, label %s): "
                                  "extract the release's %s archive into %s/%s, or remove the row",
                                  src, r + 1, uid, set, set, dir, set);
    free(src);
}

int avs_ingest_plan_avss(struct avs_ingest_plan *plan, const char *dir, int *found,
                         struct avs_err *err)
{
    char *csv = avs_fs_join(dir, "metadata.csv"), *json = avs_fs_join(dir, "label2idx.json");
    char *problem = NULL;
    struct avs_csv t = {0};
    struct avss_cols c;
    int rc = 0;
    if (!avs_fs_exists(csv))
        goto out;
    (*found)++;
    if ((rc = avs_csv_read(csv, &t, err)) || (rc = avs_avss_meta_columns(&t, csv, &c.uid, &c.split, &c.label, err)))
        goto out;
    if ((rc = plan_classes(plan, json, &problem, err)) < 0)
        goto out;
    rc = 0;
    for (size_t r = 1; r < t.n_rows; r++) {
        const char *uid = avs_csv_cell(&t, r, c.uid);
        if (uid && *uid)
            plan_row(plan, dir, &t, r, &c, json, problem);
    }
out:
    avs_csv_free(&t);
    free(csv), free(json), free(problem);
    return rc;
}

/* ---- one video ----------------------------------------------------------------------------- */

char *avs_ingest_avss_frame_path(const struct avs_ingest_item *it, int i)
{
    return avs_sprintf("%s/frames/%d.jpg", it->source, i);
}

char *avs_ingest_avss_label_path(const struct avs_ingest_item *it, int i)
{
    return avs_sprintf("%s/labels_rgb/%d.png", it->source, i);
}

char *avs_ingest_avss_audio_path(const struct avs_ingest_item *it)
{
    return avs_fs_join(it->source, "audio.wav");
}

int avs_ingest_avss_count_frames(const struct avs_ingest_item *it, int max)
{
    int n = 0;
    for (;; n++) {
        if (max > 0 && n >= max)
            break;
        char *p = avs_ingest_avss_frame_path(it, n);
        int have = avs_fs_exists(p);
        free(p);
        if (!have)
            break;
    }
    return n;
}

int avs_ingest_avss_frame(const char *path, int out_w, int out_h, struct avs_image *released,
                          struct avs_image *model, struct avs_err *err)
{
    struct avs_image img = {0}, out = {0};
    if (avs_jpeg_read(path, &img, err))
        return avs_err_wrap(err, "AVSS frame unreadable (re-extract the release)");
    if (out_w <= 0 || (out_w == img.w && out_h == img.h)) {
        avs_image_alloc(&out, img.w, img.h, 3);
        memcpy(out.data, img.data, (size_t)img.w * (size_t)img.h * 3);
    } else {
        avs_image_alloc(&out, out_w, out_h, 3);
        avs_image_resize_bilinear(&img, &out);
    }
    *released = img;
    *model = out;
    return 0;
}

int avs_ingest_avss_label(const char *path, int n_classes, int fw, int fh, int out_w, int out_h,
                          struct avs_image *released, struct avs_image *model, int64_t *unknown,
                          uint8_t *present, struct avs_err *err)
{
    struct avs_image rgb = {0}, idx = {0}, out = {0};
    int bits = 8;
    if (avs_png_read(path, &rgb, &bits, err))
        return -1;
    int rc = 0;
    if (rgb.w != fw || rgb.h != fh)
        rc = avs_err_set(err, "%s: label is %dx%d but its frame is %dx%d: a label must have its "
                              "frame's size (re-extract the release, or remove the label)",
                         path, rgb.w, rgb.h, fw, fh);
    else if (bits != 8)
        rc = avs_err_set(err, "%s: 16-bit PNG: colour labels are 8-bit RGB in palette colours",
                         path);
    else
        rc = avs_avss_map_colours(&rgb, n_classes, &idx, unknown);
    avs_image_free(&rgb);
    if (rc)
        return -1;
    if (out_w <= 0)
        out_w = idx.w, out_h = idx.h;
    avs_image_alloc(&out, out_w, out_h, 1);
    avs_avss_resize_nearest(&idx, &out);
    for (size_t i = 0; present && i < (size_t)idx.w * (size_t)idx.h; i++)
        present[idx.data[i]] = 1;
    *released = idx;
    *model = out;
    return 0;
}

/* ---- signature ----------------------------------------------------------------------------- */

/* Add one file's line "tag:i:size:mtime;" when it exists; 0 absent, 1 added, -1 error. */
static int sign_file(struct avs_hash *h, struct avs_signature *sig, const char *path, char tag,
                     int i, struct avs_err *err)
{
    int64_t sz, mt;
    if (!avs_fs_exists(path))
        return 0;
    if (avs_fs_stat(path, &sz, &mt, err))
        return -1;
    char line[96];
    int n = snprintf(line, sizeof line, "%c:%d:%lld:%lld;", tag, i, (long long)sz, (long long)mt);
    avs_hash_update(h, line, (size_t)n);
    sig->size += sz;
    sig->mtime_ns = mt > sig->mtime_ns ? mt : sig->mtime_ns;
    return 1;
}

int avs_ingest_avss_signature(const struct avs_ingest_item *it, struct avs_signature *sig,
                              struct avs_err *err)
{
    struct avs_hash h;
    avs_hash_init(&h);
    sig->size = 0, sig->mtime_ns = 0;
    int n = avs_ingest_avss_count_frames(it, 0), rc = 0;
    for (int i = 0; i < n && rc >= 0; i++) {
        char *f = avs_ingest_avss_frame_path(it, i), *l = avs_ingest_avss_label_path(it, i);
        rc = sign_file(&h, sig, f, 'f', i, err);
        if (rc >= 0)
            rc = sign_file(&h, sig, l, 'l', i, err);
        free(f), free(l);
    }
    char *a = avs_ingest_avss_audio_path(it);
    if (rc >= 0)
        rc = sign_file(&h, sig, a, 'a', 0, err);
    if (rc >= 0 && it->classes_file)
        rc = sign_file(&h, sig, it->classes_file, 'c', 0, err);
    free(a);
    avs_hash_final(&h, sig->hash);
    return rc < 0 ? -1 : 0;
}
