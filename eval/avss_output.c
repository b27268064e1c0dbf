/* eval/avss_output.c: the AVSS report as text, JSON (docs/avss.md "The metrics row and its
 * JSON") and a metrics row. Every number carries the protocol that made it. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "eval/avss.h"

static void add_number(cJSON *arr, const char *name, const char *protocol, double v)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "name", name);
    cJSON_AddStringToObject(r, "protocol", protocol);
    cJSON_AddNumberToObject(r, "value", v);
    cJSON_AddItemToArray(arr, r);
}

static void numbers_json(cJSON *o, const struct avs_avss_result *res)
{
    const char *p = avs_avss_protocol(res);
    cJSON *arr = cJSON_AddArrayToObject(o, "numbers");
    add_number(arr, "mIoU", p, res->miou);
    add_number(arr, "F", p, res->fscore);
    cJSON *vs = cJSON_AddObjectToObject(o, "variants");
    for (int v = 0; v < AVS_AVSS_NVARIANTS; v++) {
        const char *name = avs_avss_variant_name((enum avs_avss_variant)v);
        char a[64], b[64];
        snprintf(a, sizeof a, "mIoU (%s)", name);
        snprintf(b, sizeof b, "F (%s)", name);
        add_number(arr, a, p, res->variant[v][0]);
        add_number(arr, b, p, res->variant[v][1]);
        cJSON *r = cJSON_AddObjectToObject(vs, name);
        cJSON_AddStringToObject(r, "protocol", p);
        cJSON_AddNumberToObject(r, "miou", res->variant[v][0]);
        cJSON_AddNumberToObject(r, "fscore", res->variant[v][1]);
    }
}

static void classes_json(cJSON *o, const struct avs_avss_set *set, const struct avs_avss_result *res)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < res->n_classes; k++) {
        const struct avs_avss_class *c = &res->classes[k];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "idx", k);
        avs_eval_json_text(r, "name", set->names[k]);
        cJSON_AddNumberToObject(r, "iou", c->iou);
        cJSON_AddNumberToObject(r, "fscore", c->fscore);
        cJSON_AddNumberToObject(r, "frames", c->frames);
        cJSON_AddNumberToObject(r, "pooled_iou", c->uni ? (double)c->inter / (double)c->uni : 0.0);
        cJSON_AddItemToArray(arr, r);
    }
}

static void videos_json(cJSON *o, const struct avs_avss_set *set, const struct avs_avss_result *res)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "videos");
    for (int v = 0; v < set->n_videos; v++) {
        cJSON *r = cJSON_CreateObject();
        avs_eval_json_text(r, "name", set->videos[v].name);
        avs_eval_json_text(r, "avss_set", set->videos[v].set);
        cJSON_AddStringToObject(r, "protocol", avs_avss_protocol(res));
        cJSON_AddNumberToObject(r, "miou", res->videos[v].miou);
        cJSON_AddNumberToObject(r, "frames", res->videos[v].frames);
        cJSON_AddNumberToObject(r, "padded", res->videos[v].padded);
        cJSON_AddItemToArray(arr, r);
    }
}

char *avs_avss_json(const struct avs_avss_set *set, const struct avs_avss_result *res,
                    const struct avs_eval_meta *meta)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "avs-eval/1");
    cJSON_AddStringToObject(o, "protocol", avs_avss_protocol(res));
    cJSON_AddNullToObject(o, "group_frames");
    avs_eval_json_text(o, "method", meta->method);
    avs_eval_json_text(o, "source", meta->source);
    avs_eval_json_text(o, "gt", meta->gt);
    cJSON_AddStringToObject(o, "subset", "avss");
    avs_eval_json_text(o, "split", set->split);
    cJSON_AddNumberToObject(o, "miou", res->miou);
    cJSON_AddNumberToObject(o, "fscore", res->fscore);
    numbers_json(o, res);
    classes_json(o, set, res);
    videos_json(o, set, res);
    cJSON_AddNumberToObject(o, "padded_given", res->padded_given);
    cJSON_AddNumberToObject(o, "padded_assumed", res->padded_assumed);
    cJSON_AddNumberToObject(o, "unknown_pixels", (double)res->unknown_pixels);
    cJSON_AddNumberToObject(o, "frames", res->frames);
    cJSON_AddNumberToObject(o, "missing_frames", res->n_missing);
    cJSON_AddNumberToObject(o, "failed_frames", res->n_failed);
    if (meta->backbone)
        avs_eval_json_text(o, "backbone", meta->backbone);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    AVS_ASSERT(s);
    return s;
}

void avs_avss_print(FILE *f, const struct avs_avss_set *set, const struct avs_avss_result *res)
{
    const char *p = avs_avss_protocol(res);
    fprintf(f, "avs-eval: AVSS, %d frames of %d videos (split %s); protocol %s\n", res->frames,
            set->n_videos, set->split ? set->split : "all", p);
    fprintf(f, "  %-34s %8s %8s\n", "", "mIoU", "F");
    fprintf(f, "  %-34s %8.4f %8.4f\n", p, res->miou, res->fscore);
    int last = res->n_classes - 1;
    char nobg[48], off[80];
    snprintf(nobg, sizeof nobg, "classes 1..%d", last);
    snprintf(off, sizeof off, "official code: drops class %d (AVSBench #23)", last);
    const char *what[AVS_AVSS_NVARIANTS] = {nobg, off, "classes with frames > 0",
                                            "sum inter / sum union per class (CAVP)"};
    for (int v = 0; v < AVS_AVSS_NVARIANTS; v++)
        fprintf(f, "  %-34s %8.4f %8.4f   %s\n", avs_avss_variant_name((enum avs_avss_variant)v),
                res->variant[v][0], res->variant[v][1], what[v]);
    fprintf(f, "  padded frames: %d given, %d assumed background; unknown label pixels %lld "
               "(counted as background)", res->padded_given, res->padded_assumed,
            (long long)res->unknown_pixels);
    if (res->n_missing)
        fprintf(f, "; MISSING predictions counted as background: %d", res->n_missing);
    if (res->n_failed)
        fprintf(f, "; FAILED frames excluded: %d", res->n_failed);
    fprintf(f, "\n\nper class (protocol %s; frames = frames with union > 0)\n", p);
    fprintf(f, "  %3s %-28s %8s %8s %6s\n", "idx", "class", "IoU", "F", "frames");
    for (int k = 0; k < res->n_classes; k++)
        fprintf(f, "  %3d %-28s %8.4f %8.4f %6d\n", k, set->names[k], res->classes[k].iou,
                res->classes[k].fscore, res->classes[k].frames);
    fprintf(f, "\nper video (official vid_miou: per frame sum(IoU) / #(IoU != 0), mean over "
               "frames)\n");
    fprintf(f, "  %-28s %-4s %6s %6s %8s\n", "video", "set", "frames", "padded", "mIoU");
    for (int v = 0; v < set->n_videos; v++)
        fprintf(f, "  %-28s %-4s %6d %6d %8.4f\n", set->videos[v].name,
                set->videos[v].set ? set->videos[v].set : "-", res->videos[v].frames,
                res->videos[v].padded, res->videos[v].miou);
}

int avs_avss_record(sqlite3 *db, const struct avs_avss_set *set, const struct avs_avss_result *res,
                    const struct avs_eval_meta *meta, int64_t *row_id, struct avs_err *err)
{
    AVS_ASSERT(meta->method);
    struct avs_eval_row row = {
        .method = meta->method, .subset = "avss", .split = set->split, .source = meta->source,
        .details = avs_avss_json(set, res, meta), .protocol = avs_avss_protocol(res),
        .frames = res->frames, .miou = res->miou, .fscore = res->fscore,
        .dataset_iou = res->variant[AVS_AVSS_POOLED][0]};
    int rc = avs_eval_insert_row(db, &row, row_id, err);
    free((char *)row.details);
    return rc;
}
