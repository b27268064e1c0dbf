/* ingest/plan.c: what to ingest: folder trees of clips and AVSBench CSV trees. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fs.h"
#include "core/names.h"
#include "core/csv.h"
#include "ingest/ingest.h"

static const char *const VIDEO_EXTS[] = {"mp4", "mkv", "webm", "avi", "mov", "m4v", "flv", "mpg",
                                         "mpeg", "ts", "3gp", "ogv", "wmv", "mts", NULL};

static int has_video_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (int i = 0; VIDEO_EXTS[i]; i++)
        if (!strcasecmp(dot + 1, VIDEO_EXTS[i]))
            return 1;
    return 0;
}

struct avs_ingest_item *avs_ingest_plan_add(struct avs_ingest_plan *plan, const char *source,
                                            const char *subset)
{
    if (plan->n == plan->cap) {
        plan->cap = plan->cap ? 2 * plan->cap : 64;
        plan->items = avs_realloc(plan->items, plan->cap * sizeof *plan->items);
    }
    struct avs_ingest_item *it = &plan->items[plan->n++];
    memset(it, 0, sizeof *it);
    it->source = avs_strdup(source);
    it->subset = subset;
    return it;
}

int avs_ingest_item_name(struct avs_ingest_item *it, const char *name, const char *where)
{
    char *uid = NULL, *why = NULL;
    int rc = avs_name_for_uid(name, &uid, &why);
    free(it->uid), free(it->name);
    it->name = NULL;
    if (rc) {
        it->uid = avs_name_refused_uid(it->source); /* the source is unique, the name may not be */
        it->problem = avs_sprintf("%s: %s", where, why);
        free(why);
    } else {
        it->uid = uid;
    }
    if (rc || strcmp(it->uid, name))
        it->name = avs_strdup(name);
    return rc;
}

/* A refused row of a dataset's table: a failed input keyed by "<table> row <r>". */
struct avs_ingest_item *avs_ingest_plan_refused(struct avs_ingest_plan *plan, const char *table,
                                                size_t row, const char *subset, const char *name,
                                                const char *why)
{
    char *src = avs_sprintf("%s row %zu", table, row);
    struct avs_ingest_item *it = avs_ingest_plan_add(plan, src, subset);
    if (avs_ingest_item_name(it, name, src) == 0) {
        free(it->uid), free(it->name);
        it->uid = avs_name_refused_uid(src);
        it->name = avs_strdup(name);
        it->problem = avs_sprintf("%s: %s", src, why);
    }
    free(src);
    return it;
}

void avs_ingest_item_free(struct avs_ingest_item *it)
{
    free(it->source), free(it->uid), free(it->category), free(it->split), free(it->video);
    free(it->frame_pattern), free(it->mask_pattern), free(it->audio_file), free(it->problem);
    free(it->classes_file), free(it->name);
    memset(it, 0, sizeof *it);
}

void avs_ingest_plan_free(struct avs_ingest_plan *plan)
{
    for (size_t i = 0; plan && i < plan->n; i++)
        avs_ingest_item_free(&plan->items[i]);
    for (int i = 0; plan && i < plan->n_classes; i++)
        free(plan->classes[i]);
    if (plan) {
        free(plan->classes), free(plan->classes_file);
        free(plan->items);
        memset(plan, 0, sizeof *plan);
    }
}

/* Folder name holding `path` (the default category). */
static char *parent_name(const char *path)
{
    char *p = avs_strdup(path);
    char *slash = strrchr(p, '/');
    char *name;
    if (!slash || slash == p) {
        name = avs_strdup("");
    } else {
        *slash = '\0';
        char *s2 = strrchr(p, '/');
        name = avs_strdup(s2 ? s2 + 1 : p);
    }
    free(p);
    return name;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_clip(struct avs_ingest_plan *plan, const char *abs, const char *category,
                     const char *split)
{
    struct avs_ingest_item *it = avs_ingest_plan_add(plan, abs, "other");
    it->video = avs_strdup(abs);
    if (category) {
        it->category = avs_strdup(category);
    } else { /* a folder named in Latin-1 gives its bytes of no UTF-8 character as %XX */
        char *parent = parent_name(abs);
        it->category = avs_name_text(parent);
        free(parent);
    }
    it->split = split ? avs_strdup(split) : NULL;
    struct avs_err e;
    if (*it->category && avs_name_check_label(it->category, "category (the folder's name)", &e))
        it->problem = avs_sprintf("%s: %s", abs, e.msg);
}

/* Walk a folder tree in sorted order, adding every file with a video extension. */
static void walk(struct avs_ingest_plan *plan, const char *dir, const char *category,
                 const char *split)
{
    DIR *d = opendir(dir);
    if (!d) {
        avs_log_warn("cannot read folder %s: skipped", dir);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            names = avs_realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = avs_fs_join(dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (avs_fs_is_dir(names[i]))
            walk(plan, names[i], category, split);
        else if (has_video_ext(names[i]))
            add_clip(plan, names[i], category, split);
        free(names[i]);
    }
    free(names);
}

int avs_ingest_plan_paths(struct avs_ingest_plan *plan, char *const *paths, int n,
                          const char *category, const char *split, struct avs_err *err)
{
    for (int i = 0; i < n; i++) {
        char *abs = avs_fs_realpath(paths[i], err);
        if (!abs)
            return avs_err_wrap(err, "input not found");
        if (avs_fs_is_dir(abs))
            walk(plan, abs, category, split);
        else
            add_clip(plan, abs, category, split); /* an explicit file: try whatever it is */
        free(abs);
    }
    return 0;
}

/* ---- AVSBench ------------------------------------------------------------------------------ */

/* stem -> path of every file under raw_videos/, for finding a video by its CSV name. */
struct video_index {
    char **stems, **paths;
    size_t n, cap;
};

static void index_videos(struct video_index *ix, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = avs_fs_join(dir, e->d_name);
        if (avs_fs_is_dir(p)) {
            index_videos(ix, p);
            free(p);
        } else if (has_video_ext(p)) {
            if (ix->n == ix->cap) {
                ix->cap = ix->cap ? 2 * ix->cap : 256;
                ix->stems = avs_realloc(ix->stems, ix->cap * sizeof *ix->stems);
                ix->paths = avs_realloc(ix->paths, ix->cap * sizeof *ix->paths);
            }
            ix->stems[ix->n] = avs_fs_stem(p);
            ix->paths[ix->n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
}

static const char *find_video(const struct video_index *ix, const char *name)
{
    const char *best = NULL;
    for (size_t i = 0; i < ix->n; i++)
        if (!strcmp(ix->stems[i], name) && (!best || strcmp(ix->paths[i], best) < 0))
            best = ix->paths[i];
    return best;
}

static void video_index_free(struct video_index *ix)
{
    for (size_t i = 0; i < ix->n; i++)
        free(ix->stems[i]), free(ix->paths[i]);
    free(ix->stems), free(ix->paths);
}

/* "%" in names must not reach printf: double them. */
static char *escape_pct(const char *s)
{
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += s[i] == '%';
    char *o = avs_malloc(n + extra + 1), *q = o;
    for (size_t i = 0; i < n; i++) {
        *q++ = s[i];
        if (s[i] == '%')
            *q++ = '%';
    }
    *q = '\0';
    return o;
}

/* Layout of one subset (DESIGN §3; ref: AVSBench avs_s4/dataloader.py, avs_ms3/dataloader.py). */
static void plan_row(struct avs_ingest_plan *plan, const char *data, int ms3, const char *name,
                     const char *category, const char *split, const struct video_index *ix)
{
    char *en = escape_pct(name);
    char *ec = escape_pct(category ? category : "");
    char *ed = escape_pct(data);
    char *es = escape_pct(split ? split : "");
    char *frames_dir = ms3 ? avs_sprintf("%s/visual_frames/%s", data, name)
                           : avs_sprintf("%s/visual_frames/%s/%s/%s", data, split ? split : "",
                                         category ? category : "", name);
    char *frame_pat = ms3 ? avs_sprintf("%s/visual_frames/%s/%s.mp4_%%d.png", ed, en, en)
                          : avs_sprintf("%s/visual_frames/%s/%s/%s/%s_%%d.png", ed, es, ec, en, en);
    char *mask_pat = ms3 ? avs_sprintf("%s/gt_masks/%s/%s/%s_%%d.png", ed, es, en, en)
                         : avs_sprintf("%s/gt_masks/%s/%s/%s/%s_%%d.png", ed, es, ec, en, en);
    char *wav = ms3 ? avs_sprintf("%s/audio_wav/%s/%s.wav", data, split ? split : "", name)
                    : avs_sprintf("%s/audio_wav/%s/%s/%s.wav", data, split ? split : "",
                                  category ? category : "", name);
    char *first = avs_sprintf(frame_pat, 1);
    const char *video = find_video(ix, name);
    int have_frames = avs_fs_exists(first);
    struct avs_ingest_item *it =
        avs_ingest_plan_add(plan, have_frames ? frames_dir : video ? video : frames_dir, ms3 ? "ms3" : "s4");
    avs_ingest_item_name(it, name, "row"); /* row_problem made sure it is taken */
    it->category = category && *category ? avs_strdup(category) : NULL;
    it->split = split && *split ? avs_strdup(split) : NULL;
    it->mask_pattern = mask_pat;
    if (have_frames) {
        it->frame_pattern = frame_pat;
        frame_pat = NULL;
        if (avs_fs_exists(wav))
            it->audio_file = avs_strdup(wav);
        if (video)
            it->video = avs_strdup(video); /* for its audio when no wav exists */
    } else if (video) {
        it->video = avs_strdup(video);
    } else {
        it->problem = avs_sprintf("no frames (%s) and no video named %s.* under %s/raw_videos: "
                                  "check the dataset download", first, name, data);
    }
    free(first), free(wav), free(frame_pat), free(frames_dir), free(en), free(ec), free(ed), free(es);
}

/* Why an S4/MS3 row cannot be taken (NULL: it can): its category and split are folder names
 * of the release tree, so each must be one path component; its name must make a uid
 * (core/names.h: a name with '/' is read from the subfolders it names, and mapped). */
static char *row_problem(const char *name, const char *cat, const char *split)
{
    const char *const what[2] = {"category", "split"};
    const char *const v[2] = {cat, split};
    for (int i = 0; i < 2; i++) {
        struct avs_err e;
        if (v[i] && *v[i] && avs_name_check(v[i], what[i], &e))
            return avs_sprintf("%s; fix the row", e.msg);
    }
    char *uid = NULL, *why = NULL;
    if (avs_name_for_uid(name, &uid, &why))
        return why;
    free(uid);
    return NULL;
}

static int plan_csv(struct avs_ingest_plan *plan, const char *csv, const char *data, int ms3,
                    struct avs_err *err)
{
    struct avs_csv t = {0};
    if (avs_csv_read(csv, &t, err))
        return -1;
    static const char *const name_cols[] = {"name", "vid", "uid", "video_id", "video_name", NULL};
    static const char *const cat_cols[] = {"category", "a_obj", "class", NULL};
    int cn = avs_csv_column(&t, name_cols), cc = avs_csv_column(&t, cat_cols);
    static const char *const split_cols[] = {"split", NULL};
    int cs = avs_csv_column(&t, split_cols);
    /* Official S4 CSV by position: name, start, category, split (ref: preprocess_s4.py). */
    if (cn < 0)
        cn = 0;
    if (!ms3 && cc < 0 && t.n_cols >= 4)
        cc = 2;
    if (cs < 0 && t.n_cols >= 4)
        cs = ms3 ? -1 : 3;
    if (!ms3 && cc < 0) {
        avs_err_set(err, "%s: no 'category' column: S4 rows need one (header: %s)", csv,
                    t.n_cols ? t.cells[0] : "empty");
        avs_csv_free(&t);
        return -1;
    }
    struct video_index ix = {0};
    char *raw = avs_fs_join(data, "raw_videos");
    index_videos(&ix, raw);
    free(raw);
    for (size_t r = 1; r < t.n_rows; r++) {
        const char *name = avs_csv_cell(&t, r, cn);
        if (!name || !*name)
            continue;
        const char *cat = cc >= 0 ? avs_csv_cell(&t, r, cc) : NULL;
        const char *split = cs >= 0 ? avs_csv_cell(&t, r, cs) : NULL;
        char *why = row_problem(name, cat, split);
        if (why)
            avs_ingest_plan_refused(plan, csv, r + 1, ms3 ? "ms3" : "s4", name, why);
        else
            plan_row(plan, data, ms3, name, cat, split, &ix);
        free(why);
    }
    video_index_free(&ix);
    avs_csv_free(&t);
    return 0;
}

/* The CSV may sit next to its data (synthetic sets) or next to "<subset>_data" (the release). */
static int plan_subset(struct avs_ingest_plan *plan, const char *dir, const char *subset,
                       int *found, struct avs_err *err)
{
    char *csv = avs_sprintf("%s/%s_meta_data.csv", dir, subset);
    int rc = 0;
    if (avs_fs_exists(csv)) {
        char *data = avs_sprintf("%s/%s_data", dir, subset);
        if (!avs_fs_is_dir(data)) {
            free(data);
            data = avs_strdup(dir);
        }
        rc = plan_csv(plan, csv, data, !strcmp(subset, "ms3"), err);
        (*found)++;
        free(data);
    }
    free(csv);
    return rc;
}

int avs_ingest_plan_avsbench(struct avs_ingest_plan *plan, const char *root, struct avs_err *err)
{
    char *abs = avs_fs_realpath(root, err);
    if (!abs)
        return avs_err_wrap(err, "--avsbench folder not found");
    static const char *const subdirs[] = {"", "Single-source", "Multi-sources", "s4", "ms3",
                                          "AVSBench-semantic", "avss", NULL};
    int found = 0, rc = 0;
    for (int i = 0; subdirs[i] && rc == 0; i++) {
        char *dir = *subdirs[i] ? avs_fs_join(abs, subdirs[i]) : avs_strdup(abs);
        rc = plan_subset(plan, dir, "s4", &found, err);
        if (rc == 0)
            rc = plan_subset(plan, dir, "ms3", &found, err);
        if (rc == 0)
            rc = avs_ingest_plan_avss(plan, dir, &found, err);
        free(dir);
    }
    if (rc == 0 && found == 0)
        rc = avs_err_set(err, "%s: no s4_meta_data.csv, ms3_meta_data.csv or (AVSS) metadata.csv "
                              "here or in Single-source/, Multi-sources/ or AVSBench-semantic/: "
                              "is this an AVSBench folder?", abs);
    free(abs);
    return rc;
}
