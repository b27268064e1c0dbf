/* tests/test_eval.c: avs-eval's library against golden numbers from the official algorithm
 * (tests/gen/eval_golden.py, torch), both AVSBench folder layouts, the store index, the
 * logits format and the errors for bad files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "eval/eval.h"
#include "tests/check.h"

#define FIX "tests/fixtures/eval"

static cJSON *golden;

static double gnum(const char *a, const char *b, const char *c, const char *d)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(golden, a);
    if (b)
        o = cJSON_GetObjectItemCaseSensitive(o, b);
    if (c)
        o = cJSON_GetObjectItemCaseSensitive(o, c);
    if (d)
        o = cJSON_GetObjectItemCaseSensitive(o, d);
    AVS_ASSERT(cJSON_IsNumber(o));
    return o->valuedouble;
}

static void check_summary_vs(const struct avs_eval_summary *s, const char *a, const char *b,
                             const char *c, const char *what)
{
    char name[256];
    snprintf(name, sizeof name, "%s miou", what);
    CHECK_NEAR(s->miou, gnum(a, b, c, "miou"), 1e-6, 0, name);
    snprintf(name, sizeof name, "%s fscore", what);
    CHECK_NEAR(s->fscore, gnum(a, b, c, "fscore"), 1e-6, 0, name);
    snprintf(name, sizeof name, "%s dataset_iou", what);
    CHECK_NEAR(s->dataset_iou, gnum(a, b, c, "dataset_iou"), 1e-9, 0, name);
    CHECK(s->frames == (int)gnum(a, b, c, "frames"), "%s frames %d", what, s->frames);
    CHECK(s->groups == (int)gnum(a, b, c, "groups"), "%s groups %d", what, s->groups);
}

static void test_thresholds_and_sigmoid(void)
{
    float t[AVS_EVAL_NTH];
    avs_eval_thresholds(t);
    cJSON *th = cJSON_GetObjectItem(golden, "thresholds_hex");
    CHECK(cJSON_GetArraySize(th) == AVS_EVAL_NTH, "255 thresholds in golden");
    int bad = 0;
    for (int i = 0; i < AVS_EVAL_NTH; i++) {
        float want = (float)strtod(cJSON_GetArrayItem(th, i)->valuestring, NULL);
        if (t[i] != want && bad++ < 3)
            fprintf(stderr, "threshold %d: %a vs torch %a\n", i, t[i], want);
    }
    CHECK(bad == 0, "%d thresholds differ from torch.linspace", bad);
    CHECK(t[254] == 1.0f && t[0] == 0.0f, "end points");
    cJSON *sg = cJSON_GetObjectItem(golden, "sigmoid"), *it;
    int n = 0;
    bad = 0;
    cJSON_ArrayForEach(it, sg) {
        float x = (float)strtod(cJSON_GetArrayItem(it, 0)->valuestring, NULL);
        float p = (float)strtod(cJSON_GetArrayItem(it, 1)->valuestring, NULL);
        if (avs_eval_sigmoid(x) != p && bad++ < 5)
            fprintf(stderr, "sigmoid(%a) = %a, torch %a\n", x, avs_eval_sigmoid(x), p);
        n++;
    }
    CHECK(n > 30 && bad == 0, "%d of %d sigmoids differ from torch", bad, n);
}

static void test_s4_folder(void)
{
    struct avs_err err = {{0}};
    struct avs_eval_set set = {0};
    CHECK(avs_eval_list_folder(FIX "/s4/gt", "test", NULL, &set, &err) == 0, "list: %s", err.msg);
    CHECK(set.subset && !strcmp(set.subset, "s4"), "S4 layout detected");
    CHECK(set.n_videos == 7 && set.n_frames == 33, "7 videos, 33 frames: %d %d", set.n_videos,
          set.n_frames);
    CHECK(set.n_videos > 0 && !strcmp(set.videos[0].name, "v_x_1") &&
          !strcmp(set.videos[0].category, "baby_laughter"), "underscored names parsed");
    int missing = avs_eval_attach_pred(&set, FIX "/s4/pred");
    CHECK(missing == 0, "all predictions found (official layout without split): %d", missing);
    int logits = 0;
    for (int f = 0; f < set.n_frames; f++)
        logits += set.frames[f].pred && strstr(set.frames[f].pred, ".logits") != NULL;
    CHECK(logits == 10, "10 logits frames picked: %d", logits);
    /* the GT tree has the visual_frames layout: good enough to find "frames" */
    CHECK(avs_eval_attach_frames(&set, FIX "/s4/gt") == 33 && set.frames[0].image &&
          strstr(set.frames[0].image, "test/baby_laughter/v_x_1/v_x_1_1.png"), "frames found");
    static const struct { int k; const char *key; } groups[] = {{0, "video"}, {5, "5"}, {20, "20"}};
    for (int g = 0; g < 3; g++) {
        struct avs_eval_options opt = {groups[g].k, 0, 2};
        struct avs_eval_result res;
        CHECK(avs_eval_run(&set, &opt, &res, &err) == 0, "run: %s", err.msg);
        char what[64];
        snprintf(what, sizeof what, "s4 group %s", groups[g].key);
        check_summary_vs(&res.all, "s4", groups[g].key, NULL, what);
        CHECK(res.n_failed == 0 && res.n_missing == 0, "no failures");
        if (groups[g].k == 0 || groups[g].k == 20) {
            CHECK(res.n_classes == 4, "4 classes");
            for (int c = 0; c < res.n_classes; c++) {
                snprintf(what, sizeof what, "class %s group %s", res.classes[c].name, groups[g].key);
                check_summary_vs(&res.classes[c].s, "s4_class", res.classes[c].name, groups[g].key,
                                 what);
            }
        }
        if (groups[g].k == 0)
            for (int v = 0; v < set.n_videos; v++)
                check_summary_vs(&res.videos[v], "s4_video", set.videos[v].name, NULL,
                                 set.videos[v].name);
        if (groups[g].k == 0) {
            char *j = avs_eval_json(&set, &res, &(struct avs_eval_meta){"m", "p", "g", "AF,CC", "b"}, 1);
            cJSON *o = cJSON_Parse(j);
            CHECK(o && cJSON_IsNull(cJSON_GetObjectItem(o, "group_frames")), "json group_frames null");
            cJSON *pc = cJSON_GetObjectItem(o, "per_class");
            cJSON *dog = cJSON_GetObjectItem(pc, "dog");
            CHECK(dog && cJSON_GetObjectItem(dog, "miou") && cJSON_GetObjectItem(dog, "frames")->valueint == 8,
                  "json per_class.dog");
            cJSON *sw = cJSON_GetObjectItem(o, "switches");
            CHECK(sw && cJSON_IsTrue(cJSON_GetObjectItem(sw, "AF")) &&
                  cJSON_IsFalse(cJSON_GetObjectItem(sw, "CC-V")), "json switches");
            cJSON_Delete(o);
            free(j);
        }
        avs_eval_result_free(&res);
    }
    avs_eval_set_free(&set);
}

static void test_ms3_folder(void)
{
    struct avs_err err = {{0}};
    struct avs_eval_set set = {0};
    CHECK(avs_eval_list_folder(FIX "/ms3/gt", "test", NULL, &set, &err) == 0, "list: %s", err.msg);
    CHECK(set.subset && !strcmp(set.subset, "ms3"), "MS3 layout detected");
    CHECK(set.n_videos == 2 && set.n_frames == 10, "2 videos, 10 frames");
    CHECK(set.n_videos == 2 && set.videos[0].category == NULL, "no category in MS3");
    int missing = avs_eval_attach_pred(&set, FIX "/ms3/pred");
    CHECK(missing == 0, "0-based predictions found: %d missing", missing);
    CHECK(set.frames[0].pred && strstr(set.frames[0].pred, "-0Ab_cd_0.png"), "k=1 -> _0: %s",
          set.frames[0].pred ? set.frames[0].pred : "(null)");
    static const struct { int k; const char *key; } groups[] = {{0, "video"}, {5, "5"}, {20, "20"}};
    for (int g = 0; g < 3; g++) {
        struct avs_eval_options opt = {groups[g].k, 0, 1};
        struct avs_eval_result res;
        CHECK(avs_eval_run(&set, &opt, &res, &err) == 0, "run: %s", err.msg);
        check_summary_vs(&res.all, "ms3", groups[g].key, NULL, "ms3");
        CHECK(res.n_classes == 1 && !strcmp(res.classes[0].name, "(none)"), "one unnamed class");
        avs_eval_result_free(&res);
    }
    avs_eval_set_free(&set);
}

static void copy_file(const char *from, const char *to)
{
    struct avs_err err;
    char *data = NULL;
    size_t len = 0;
    AVS_ASSERT(avs_fs_read_all(from, &data, &len, &err) == 0);
    AVS_ASSERT(avs_fs_mkdirs_parent(to, &err) == 0);
    AVS_ASSERT(avs_fs_write_atomic(to, data, len, &err) == 0);
    free(data);
}

/* The store index: GT rows written with SQL, predictions in the store layout <uid>/<k>.*. */
static void test_db_mode(const char *tmp)
{
    struct avs_err err = {{0}};
    struct avs_eval_set src = {0}, set = {0};
    AVS_ASSERT(avs_eval_list_folder(FIX "/s4/gt", "test", "s4", &src, &err) == 0);
    avs_eval_attach_pred(&src, FIX "/s4/pred");
    char *store = avs_fs_join(tmp, "store"), *dbp = avs_fs_join(store, "avs.db");
    char *pred = avs_fs_join(tmp, "pred");
    sqlite3 *db = NULL;
    CHECK(avs_db_open(dbp, &db, &err) == 0, "db: %s", err.msg);
    sqlite3_stmt *sv, *sm;
    avs_db_prepare(db, "INSERT INTO videos (uid, source, category, subset, split, status) "
                       "VALUES (?1, ?1, ?2, 's4', 'test', 'ok')", &sv, &err);
    avs_db_prepare(db, "INSERT INTO masks (video_id, k, path) VALUES (?1, ?2, ?3)", &sm, &err);
    for (int v = 0; v < src.n_videos; v++) {
        sqlite3_bind_text(sv, 1, src.videos[v].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(sv, 2, src.videos[v].category, -1, SQLITE_STATIC);
        CHECK(sqlite3_step(sv) == SQLITE_DONE, "insert video");
        sqlite3_reset(sv);
        int64_t id = sqlite3_last_insert_rowid(db);
        for (int f = src.videos[v].first; f < src.videos[v].first + src.videos[v].n; f++) {
            char *rel = avs_sprintf("masks/%s/%d.png", src.videos[v].name, src.frames[f].k);
            char *abs = avs_fs_join(store, rel);
            copy_file(src.frames[f].gt, abs);
            const char *ext = strrchr(src.frames[f].pred, '.');
            char *p = avs_sprintf("%s/%s/%d%s", pred, src.videos[v].name, src.frames[f].k, ext);
            copy_file(src.frames[f].pred, p);
            sqlite3_bind_int64(sm, 1, id);
            sqlite3_bind_int(sm, 2, src.frames[f].k);
            sqlite3_bind_text(sm, 3, rel, -1, SQLITE_STATIC);
            CHECK(sqlite3_step(sm) == SQLITE_DONE, "insert mask");
            sqlite3_reset(sm);
            free(rel), free(abs), free(p);
        }
    }
    /* a failed video and a train video must be ignored */
    avs_db_exec(db, "INSERT INTO videos (uid, source, category, subset, split, status) VALUES "
                    "('bad', 'bad', 'dog', 's4', 'test', 'failed'), ('tr', 'tr', 'dog', 's4', 'train', 'ok');"
                    "INSERT INTO masks (video_id, k, path) VALUES ((SELECT id FROM videos WHERE uid='bad'), 1, 'x.png'),"
                    "((SELECT id FROM videos WHERE uid='tr'), 1, 'y.png')", &err);
    sqlite3_finalize(sv);
    sqlite3_finalize(sm);
    CHECK(avs_eval_list_db(db, store, "test", "s4", &set, &err) == 0, "list db: %s", err.msg);
    CHECK(set.n_frames == 33 && set.n_videos == 7, "db frames %d", set.n_frames);
    CHECK(avs_eval_attach_pred(&set, pred) == 0, "store-layout predictions found");
    struct avs_eval_options opt = {0, 0, 2};
    struct avs_eval_result res;
    CHECK(avs_eval_run(&set, &opt, &res, &err) == 0, "run: %s", err.msg);
    check_summary_vs(&res.all, "s4", "video", NULL, "db mode");
    struct avs_eval_meta meta = {"<b>m</b>", pred, dbp, "CC", "pvt_v2_b5+vggish"};
    int64_t id = 0;
    CHECK(avs_eval_record(db, &set, &res, &meta, &id, &err) == 0 && id > 0, "record: %s", err.msg);
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM metrics WHERE method = '<b>m</b>' AND "
                                "group_frames IS NULL AND frames = 33 AND split = 'test'", 0) == 1,
          "metrics row");
    CHECK(avs_db_scalar_int(db, "SELECT json_extract(details, '$.switches.CC') FROM metrics", 0) == 1,
          "details.switches.CC");
    avs_eval_result_free(&res);
    /* a missing prediction is reported with the path where it was expected */
    char *gone = avs_sprintf("%s/%s/2.png", pred, set.videos[1].name);
    remove(gone);
    avs_eval_set_free(&set);
    AVS_ASSERT(avs_eval_list_db(db, store, "test", NULL, &set, &err) == 0);
    CHECK(avs_eval_attach_pred(&set, pred) == 1, "one missing");
    int named = 0;
    for (int f = 0; f < set.n_frames; f++)
        named += set.frames[f].want && !strcmp(set.frames[f].want, gone);
    CHECK(named == 1, "missing frame named %s", gone);
    opt.allow_missing = 1;
    CHECK(avs_eval_run(&set, &opt, &res, &err) == 0 && res.n_missing == 1, "allow missing");
    avs_eval_result_free(&res);
    opt.allow_missing = 0;
    avs_eval_run(&set, &opt, &res, &err);
    CHECK(res.n_failed == 1, "missing without --allow-missing fails that frame");
    avs_eval_result_free(&res);
    free(gone);
    avs_db_close(&db);
    avs_eval_set_free(&set);
    avs_eval_set_free(&src);
    free(store), free(dbp), free(pred);
}

static void test_order_csv(const char *tmp)
{
    struct avs_err err = {{0}};
    struct avs_eval_set set = {0};
    AVS_ASSERT(avs_eval_list_folder(FIX "/s4/gt", "test", NULL, &set, &err) == 0);
    char *csv = avs_fs_join(tmp, "meta.csv");
    const char *text = "vid,uid,category,split\nx,piano_b,piano,test\ny,dog_a,dog,test\n"
                       "z,nosuch,dog,test\n";
    avs_fs_write_atomic(csv, text, strlen(text), &err);
    CHECK(avs_eval_order_by_csv(&set, csv, &(int){0}, &err) == -1, "column vid names nothing");
    avs_eval_set_free(&set);
    AVS_ASSERT(avs_eval_list_folder(FIX "/s4/gt", "test", NULL, &set, &err) == 0);
    const char *text2 = "name,category,split\npiano_b,piano,test\ndog_a,dog,test\nnosuch,dog,test\n";
    avs_fs_write_atomic(csv, text2, strlen(text2), &err);
    int dropped = 0;
    CHECK(avs_eval_order_by_csv(&set, csv, &dropped, &err) == 0, "csv: %s", err.msg);
    CHECK(set.n_videos == 2 && dropped == 5, "2 kept, 5 dropped: %d %d", set.n_videos, dropped);
    CHECK(set.n_videos == 2 && !strcmp(set.videos[0].name, "piano_b") && set.videos[1].first == 5 &&
          set.frames[5].k == 1 && set.n_frames == 10, "CSV order");
    avs_eval_set_free(&set);
    free(csv);
}

static void test_files(const char *tmp)
{
    struct avs_err err = {{0}};
    float x[6] = {0, -1.5f, 2.5f, 1e-8f, -88, 3}, *back = NULL;
    int w = 0, h = 0;
    char *p = avs_fs_join(tmp, "a.logits");
    CHECK(avs_logits_write(p, x, 3, 2, &err) == 0, "logits write");
    CHECK(avs_logits_read(p, &back, &w, &h, &err) == 0 && w == 3 && h == 2 &&
          !memcmp(back, x, sizeof x), "logits round trip");
    free(back);
    avs_fs_write_atomic(p, "AVSLOGIT\2\0\0\0", 12, &err);
    CHECK(avs_logits_read(p, &back, &w, &h, &err) == -1 && strstr(err.msg, p), "bad logits: %s",
          err.msg);
    /* PNG kinds */
    struct avs_image img = {0};
    uint8_t *plane = NULL;
    char *q = avs_fs_join(tmp, "c.png");
    avs_image_alloc(&img, 4, 3, 3);
    img.data[0] = 10, img.data[1] = 200, img.data[2] = 30;
    avs_png_write(q, &img, 1, &err);
    CHECK(avs_eval_png_read(q, AVS_EVAL_PRED, &plane, &w, &h, &err) == -1 &&
          strstr(err.msg, "colour") && strstr(err.msg, q), "colour prediction refused: %s", err.msg);
    CHECK(avs_eval_png_read(q, AVS_EVAL_GT, &plane, &w, &h, &err) == 0 && w == 4 && h == 3 &&
          plane[0] == (299 * 10 + 587 * 200 + 114 * 30) / 1000, "GT luma");
    free(plane);
    avs_image_free(&img);
    avs_fs_write_atomic(q, "not a png", 9, &err);
    CHECK(avs_eval_png_read(q, AVS_EVAL_GT, &plane, &w, &h, &err) == -1 && strstr(err.msg, q),
          "not a PNG: %s", err.msg);
    CHECK(avs_eval_png_read(FIX "/bad/gray16.png", AVS_EVAL_GT, &plane, &w, &h, &err) == -1 &&
              strstr(err.msg, "16-bit") && strstr(err.msg, "gray16.png"),
          "16-bit refused: %s", err.msg);
    free(p);
    free(q);
}

static void test_size_mismatch(const char *tmp)
{
    struct avs_err err = {{0}};
    struct avs_eval_set set = {0};
    AVS_ASSERT(avs_eval_list_folder(FIX "/ms3/gt", "test", NULL, &set, &err) == 0);
    char *pred = avs_fs_join(tmp, "small");
    struct avs_image img = {0};
    avs_image_alloc(&img, 8, 8, 1);
    for (int v = 0; v < set.n_videos; v++)
        for (int f = set.videos[v].first; f < set.videos[v].first + set.videos[v].n; f++) {
            char *p = avs_sprintf("%s/%s/%d.png", pred, set.videos[v].name, set.frames[f].k);
            avs_fs_mkdirs_parent(p, &err);
            avs_png_write(p, &img, 1, &err);
            free(p);
        }
    AVS_ASSERT(avs_eval_attach_pred(&set, pred) == 0);
    struct avs_eval_options opt = {0, 0, 2};
    struct avs_eval_result res;
    CHECK(avs_eval_run(&set, &opt, &res, &err) == -1 && res.n_failed == 10, "all frames fail");
    CHECK(res.errors[0] && strstr(res.errors[0], "size mismatch") && strstr(res.errors[0], "8x8"),
          "size mismatch named: %s", res.errors[0] ? res.errors[0] : "(none)");
    avs_eval_result_free(&res);
    avs_image_free(&img);
    avs_eval_set_free(&set);
    free(pred);
}

int main(void)
{
    struct avs_err err;
    char *data = NULL;
    size_t len;
    if (avs_fs_read_all(FIX "/golden.json", &data, &len, &err))
        SKIP("%s (run from the repository root)", err.msg);
    golden = cJSON_Parse(data);
    free(data);
    AVS_ASSERT(golden);
    const char *tmp = check_tmpdir();
    test_thresholds_and_sigmoid();
    test_s4_folder();
    test_ms3_folder();
    test_db_mode(tmp);
    test_order_csv(tmp);
    test_files(tmp);
    test_size_mismatch(tmp);
    cJSON_Delete(golden);
    return check_summary("test_eval");
}
