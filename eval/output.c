/* eval/output.c: the text report, the JSON document and the metrics row. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/names.h"
#include "eval/eval.h"

const char *avs_eval_grouping_text(int group_frames, char *buf, size_t len)
{
    if (group_frames > 0)
        snprintf(buf, len, "%d frames per F-score group", group_frames);
    else
        snprintf(buf, len, "one video per F-score group");
    return buf;
}

/* The protocols a result reports: the headline one first, then (all_protocols) the rest. */
static int protocols_of(const struct avs_eval_result *res, enum avs_eval_protocol out[])
{
    int n = 0;
    out[n++] = res->protocol;
    for (int p = 0; res->all_protocols && p < AVS_EVAL_NPROTOCOLS; p++)
        if (p != (int)res->protocol)
            out[n++] = (enum avs_eval_protocol)p;
    return n;
}

static cJSON *summary_json(const struct avs_eval_summary *s, const struct avs_eval_result *res)
{
    cJSON *o = cJSON_CreateObject();
    double miou, f;
    avs_eval_protocol_numbers(s, res->protocol, &miou, &f);
    cJSON_AddStringToObject(o, "protocol", avs_eval_protocol_name(res->protocol));
    cJSON_AddNumberToObject(o, "miou", miou);
    cJSON_AddNumberToObject(o, "fscore", f);
    cJSON_AddNumberToObject(o, "dataset_iou", s->dataset_iou);
    cJSON_AddNumberToObject(o, "frames", s->frames);
    cJSON_AddNumberToObject(o, "videos", s->videos);
    cJSON_AddNumberToObject(o, "empty_gt_frames", s->empty_gt);
    if (res->all_protocols) {
        enum avs_eval_protocol ps[AVS_EVAL_NPROTOCOLS];
        int n = protocols_of(res, ps);
        cJSON *bp = cJSON_AddObjectToObject(o, "by_protocol");
        for (int i = 0; i < n; i++) {
            cJSON *r = cJSON_AddObjectToObject(bp, avs_eval_protocol_name(ps[i]));
            avs_eval_protocol_numbers(s, ps[i], &miou, &f);
            cJSON_AddNumberToObject(r, "miou", miou);
            cJSON_AddNumberToObject(r, "fscore", f);
        }
    }
    return o;
}

/* "numbers": every headline number with its protocol next to it. */
static void numbers_json(cJSON *o, const struct avs_eval_result *res)
{
    enum avs_eval_protocol ps[AVS_EVAL_NPROTOCOLS];
    int n = protocols_of(res, ps);
    cJSON *arr = cJSON_AddArrayToObject(o, "numbers");
    for (int i = 0; i < n; i++) {
        double v[2];
        avs_eval_protocol_numbers(&res->all, ps[i], &v[0], &v[1]);
        for (int k = 0; k < 2; k++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "name", k ? "F" : "mIoU");
            cJSON_AddStringToObject(r, "protocol", avs_eval_protocol_name(ps[i]));
            cJSON_AddNumberToObject(r, "value", v[k]);
            cJSON_AddItemToArray(arr, r);
        }
    }
}

void avs_eval_json_text(cJSON *o, const char *k, const char *v)
{
    char *t = v ? avs_name_text(v) : NULL;
    if (t)
        cJSON_AddStringToObject(o, k, t);
    else
        cJSON_AddNullToObject(o, k);
    free(t);
}

/* "AF,CC" -> {"AF": true, "CC-V": false, "CC": true}; unknown names are kept as true. */
static cJSON *switches_json(const char *list)
{
    cJSON *o = cJSON_CreateObject();
    static const char *KNOWN[] = {"AF", "CC-V", "CC"};
    for (int i = 0; i < 3; i++)
        cJSON_AddBoolToObject(o, KNOWN[i], 0);
    char *copy = avs_strdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!*t)
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(o, t);
        cJSON_AddBoolToObject(o, t, 1);
    }
    free(copy);
    return o;
}

char *avs_eval_json(const struct avs_eval_set *set, const struct avs_eval_result *res,
                    const struct avs_eval_meta *meta, int with_videos)
{
    cJSON *o = cJSON_CreateObject();
    char g[64];
    cJSON_AddStringToObject(o, "schema", "avs-eval/1");
    avs_eval_json_text(o, "method", meta->method);
    avs_eval_json_text(o, "source", meta->source);
    avs_eval_json_text(o, "gt", meta->gt);
    avs_eval_json_text(o, "subset", set->subset);
    avs_eval_json_text(o, "split", set->split);
    cJSON_AddStringToObject(o, "grouping", avs_eval_grouping_text(res->group_frames, g, sizeof g));
    if (res->group_frames > 0)
        cJSON_AddNumberToObject(o, "group_frames", res->group_frames);
    else
        cJSON_AddNullToObject(o, "group_frames");
    double miou, fscore;
    avs_eval_protocol_numbers(&res->all, res->protocol, &miou, &fscore);
    cJSON_AddStringToObject(o, "protocol", avs_eval_protocol_name(res->protocol));
    cJSON_AddNumberToObject(o, "miou", miou);
    cJSON_AddNumberToObject(o, "fscore", fscore);
    cJSON_AddNumberToObject(o, "dataset_iou", res->all.dataset_iou);
    numbers_json(o, res);
    cJSON_AddNumberToObject(o, "frames", res->all.frames);
    cJSON_AddNumberToObject(o, "videos", res->all.videos);
    cJSON_AddNumberToObject(o, "groups", res->all.groups);
    cJSON_AddNumberToObject(o, "empty_gt_frames", res->all.empty_gt);
    cJSON_AddNumberToObject(o, "missing_frames", res->n_missing);
    cJSON_AddNumberToObject(o, "failed_frames", res->n_failed);
    if (meta->switches)
        cJSON_AddItemToObject(o, "switches", switches_json(meta->switches));
    if (meta->backbone)
        avs_eval_json_text(o, "backbone", meta->backbone);
    cJSON *pc = cJSON_AddObjectToObject(o, "per_class");
    for (int c = 0; c < res->n_classes; c++) {
        /* two folder names can share a text form (a literal "d%F6g" and Latin-1 "d\xF6g"):
         * the later key gets " #2", " #3"... so that no key repeats */
        char *base = avs_name_text(res->classes[c].name), *key = avs_strdup(base);
        for (int k = 2; cJSON_GetObjectItemCaseSensitive(pc, key); k++) {
            free(key);
            key = avs_sprintf("%s #%d", base, k);
        }
        cJSON_AddItemToObject(pc, key, summary_json(&res->classes[c].s, res));
        free(key), free(base);
    }
    if (with_videos) {
        cJSON *pv = cJSON_AddArrayToObject(o, "per_video");
        for (int v = 0; v < set->n_videos; v++) {
            const struct avs_eval_video *vd = &set->videos[v];
            const struct avs_eval_frame *f0 = &set->frames[vd->first];
            cJSON *r = summary_json(&res->videos[v], res);
            avs_eval_json_text(r, "video", vd->name);
            avs_eval_json_text(r, "category", vd->category);
            cJSON_AddNumberToObject(r, "k", f0->k);
            avs_eval_json_text(r, "gt_path", f0->gt);
            avs_eval_json_text(r, "pred_path", f0->pred);
            avs_eval_json_text(r, "image_path", f0->image);
            cJSON_AddItemToArray(pv, r);
        }
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    AVS_ASSERT(s);
    return s;
}

/* The headline block: one protocol, or all side by side. */
static void print_headline(FILE *f, const struct avs_eval_result *res)
{
    const struct avs_eval_summary *a = &res->all;
    char g[64];
    enum avs_eval_protocol ps[AVS_EVAL_NPROTOCOLS];
    int n = protocols_of(res, ps);
    fprintf(f, "  %-12s", "protocol");
    for (int i = 0; i < n; i++)
        fprintf(f, " %12s", avs_eval_protocol_name(ps[i]));
    for (int k = 0; k < 2; k++) {
        fprintf(f, "\n  %-12s", k ? "F-score" : "mIoU");
        for (int i = 0; i < n; i++) {
            double v[2];
            avs_eval_protocol_numbers(a, ps[i], &v[0], &v[1]);
            fprintf(f, " %12.4f", v[k]);
        }
    }
    fprintf(f, "\n  official: F grouped %s (%d groups); per-frame: F per non-empty frame;\n"
               "  pooled: IoU and F from counts summed over all frames (docs/avss.md)\n",
            avs_eval_grouping_text(res->group_frames, g, sizeof g), a->groups);
    fprintf(f, "  dataset IoU  %.4f   (= pooled IoU: sum of intersections / sum of unions)\n",
            a->dataset_iou);
}

void avs_eval_print(FILE *f, const struct avs_eval_set *set, const struct avs_eval_result *res)
{
    char g[64];
    const struct avs_eval_summary *a = &res->all;
    const char *pname = avs_eval_protocol_name(res->protocol);
    fprintf(f, "avs-eval: %d frames of %d videos (subset %s, split %s); grouping: %s\n",
            a->frames, a->videos, set->subset ? set->subset : "?",
            set->split ? set->split : "all", avs_eval_grouping_text(res->group_frames, g, sizeof g));
    print_headline(f, res);
    fprintf(f, "  empty-GT frames %d", a->empty_gt);
    if (res->n_missing)
        fprintf(f, "; MISSING predictions counted as empty: %d", res->n_missing);
    if (res->n_failed)
        fprintf(f, "; FAILED frames excluded: %d", res->n_failed);
    fprintf(f, "\n\nper class (our addition: the same metrics over each category's frames; "
               "protocol %s)\n", pname);
    fprintf(f, "  %-28s %6s %6s %8s %8s %8s\n", "category", "videos", "frames", "mIoU", "F",
            "dsIoU");
    for (int c = 0; c < res->n_classes; c++) {
        const struct avs_eval_summary *s = &res->classes[c].s;
        double miou, fs;
        avs_eval_protocol_numbers(s, res->protocol, &miou, &fs);
        fprintf(f, "  %-28s %6d %6d %8.4f %8.4f %8.4f\n", res->classes[c].name, s->videos,
                s->frames, miou, fs, s->dataset_iou);
    }
    fprintf(f, "\nper video (protocol %s; official F: one group per video)\n", pname);
    fprintf(f, "  %-28s %-20s %6s %8s %8s\n", "video", "category", "frames", "mIoU", "F");
    for (int v = 0; v < set->n_videos; v++) {
        const struct avs_eval_summary *s = &res->videos[v];
        const char *cat = set->videos[v].category;
        double miou, fs;
        avs_eval_protocol_numbers(s, res->protocol, &miou, &fs);
        fprintf(f, "  %-28s %-20s %6d %8.4f %8.4f\n", set->videos[v].name, cat ? cat : "-",
                s->frames, miou, fs);
    }
}

int avs_eval_insert_row(sqlite3 *db, const struct avs_eval_row *r, int64_t *row_id,
                        struct avs_err *err)
{
    static const char *SQL =
        "INSERT INTO metrics (method, subset, split, group_frames, miou, fscore, dataset_iou, "
        "frames, source, run_id, details, protocol) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
        "(SELECT id FROM runs WHERE name = ?1), ?10, ?11)";
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(db, SQL, &st, err))
        return -1;
    sqlite3_bind_text(st, 1, r->method, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->subset, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->split, -1, SQLITE_STATIC);
    if (r->group_frames > 0)
        sqlite3_bind_int(st, 4, r->group_frames);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_double(st, 5, r->miou);
    sqlite3_bind_double(st, 6, r->fscore);
    sqlite3_bind_double(st, 7, r->dataset_iou);
    sqlite3_bind_int(st, 8, r->frames);
    sqlite3_bind_text(st, 9, r->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, r->details, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, r->protocol, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc)
        avs_err_set(err, "recording metrics in %s: %s", sqlite3_db_filename(db, "main"),
                    sqlite3_errmsg(db));
    else if (row_id)
        *row_id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    return rc;
}

static int record_one(sqlite3 *db, const struct avs_eval_set *set,
                      const struct avs_eval_result *res, const struct avs_eval_meta *meta,
                      enum avs_eval_protocol p, int64_t *row_id, struct avs_err *err)
{
    /* the row's details are the JSON of the row's own protocol */
    struct avs_eval_result one = *res;
    one.protocol = p;
    one.all_protocols = 0;
    struct avs_eval_row row = {
        .method = meta->method, .subset = set->subset, .split = set->split,
        .source = meta->source, .details = avs_eval_json(set, &one, meta, 1),
        .protocol = avs_eval_protocol_name(p),
        .group_frames = p == AVS_EVAL_OFFICIAL ? res->group_frames : 0,
        .frames = res->all.frames, .dataset_iou = res->all.dataset_iou};
    avs_eval_protocol_numbers(&res->all, p, &row.miou, &row.fscore);
    int rc = avs_eval_insert_row(db, &row, row_id, err);
    free((char *)row.details);
    return rc;
}

int avs_eval_record(sqlite3 *db, const struct avs_eval_set *set, const struct avs_eval_result *res,
                    const struct avs_eval_meta *meta, int64_t *row_id, struct avs_err *err)
{
    AVS_ASSERT(meta->method);
    enum avs_eval_protocol ps[AVS_EVAL_NPROTOCOLS];
    int n = protocols_of(res, ps);
    if (avs_db_exec(db, "BEGIN IMMEDIATE", err))
        return -1;
    for (int i = 0; i < n; i++)
        if (record_one(db, set, res, meta, ps[i], row_id, err)) {
            struct avs_err ignored;
            avs_db_exec(db, "ROLLBACK", &ignored);
            return -1;
        }
    return avs_db_exec(db, "COMMIT", err);
}
