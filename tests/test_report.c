/* tests/test_report.c: avs-report's library: escaping in every format, the leaderboard's
 * content (self-contained, data escaped, sections present) and the ablation layout, from a
 * store whose metrics rows are recorded by the eval library on the golden fixtures. */
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "eval/eval.h"
#include "report/report.h"
#include "tests/check.h"

#define FIX "tests/fixtures/eval"
#define EVIL "<script>alert(1)</script>"

static void test_escape(void)
{
    struct avs_buf b = {0};
    avs_buf_esc(&b, AVS_REPORT_HTML, "<a href=\"x\">&'</a>");
    CHECK(!strcmp(b.p, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"), "html: %s", b.p);
    b.len = 0;
    avs_buf_esc(&b, AVS_REPORT_LATEX, "a_b & 50% {x} $y$ #1 ~^\\");
    CHECK(!strcmp(b.p, "a\\_b \\& 50\\% \\{x\\} \\$y\\$ \\#1 \\textasciitilde{}"
                       "\\textasciicircum{}\\textbackslash{}"), "latex: %s", b.p);
    b.len = 0;
    avs_buf_esc(&b, AVS_REPORT_CSV, "a,\"b\"\nc");
    CHECK(!strcmp(b.p, "\"a,\"\"b\"\"\nc\""), "csv: %s", b.p);
    b.len = 0;
    avs_buf_esc(&b, AVS_REPORT_MARKDOWN, "a|b *c* <s>\nd");
    CHECK(!strcmp(b.p, "a\\|b \\*c\\* &lt;s&gt; d"), "markdown: %s", b.p);
    b.len = 0;
    static const uint8_t bytes[] = {'M', 'a', 'n', 'y', 0xff};
    avs_buf_base64(&b, bytes, 5);
    CHECK(!strcmp(b.p, "TWFuef8="), "base64: %s", b.p);
    avs_buf_free(&b);
}

/* Record results into a fresh store: evaluated on the fixtures by the eval library. */
static void record(sqlite3 *db, const char *gt, const char *pred, const char *method,
                   const char *switches, const char *backbone, int group)
{
    struct avs_err err = {{0}};
    struct avs_eval_set set = {0};
    struct avs_eval_result res;
    AVS_ASSERT(avs_eval_list_folder(gt, "test", NULL, &set, &err) == 0);
    AVS_ASSERT(avs_eval_attach_pred(&set, pred) == 0);
    struct avs_eval_options opt = {group, 0, 2};
    AVS_ASSERT(avs_eval_run(&set, &opt, &res, &err) == 0);
    struct avs_eval_meta meta = {method, pred, gt, switches, backbone};
    CHECK(avs_eval_record(db, &set, &res, &meta, NULL, &err) == 0, "record: %s", err.msg);
    avs_eval_result_free(&res);
    avs_eval_set_free(&set);
}

static char *read_text(const char *path)
{
    struct avs_err err;
    char *d = NULL;
    size_t n;
    if (avs_fs_read_all(path, &d, &n, &err))
        return avs_strdup("");
    return d;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_reports(const char *tmp)
{
    struct avs_err err = {{0}};
    char *dbp = avs_sprintf("%s/store/avs.db", tmp);
    sqlite3 *db = NULL;
    AVS_ASSERT(avs_db_open(dbp, &db, &err) == 0);
    /* a dataset summary row with a hostile category */
    avs_db_exec(db, "INSERT INTO videos (uid, source, category, subset, split, status, n_seconds) "
                    "VALUES ('u1', '/x/u1.mp4', 'cat<b>&dog', 's4', 'test', 'ok', 5)", &err);
    record(db, FIX "/s4/gt", FIX "/s4/pred", "C3N", "AF,CC-V,CC", "pvt_v2_b5+vggish", 0);
    record(db, FIX "/s4/gt", FIX "/s4/pred", EVIL, "AF", "pvt_v2_b5+vggish", 20);
    record(db, FIX "/ms3/gt", FIX "/ms3/pred", "C3N", "AF,CC-V,CC", "pvt_v2_b5+vggish", 0);
    record(db, FIX "/ms3/gt", FIX "/ms3/pred", "resnet row", "", "resnet50+vggish", 0);
    /* a row recorded without switches stays out of the ablation */
    record(db, FIX "/ms3/gt", FIX "/ms3/pred", "no switches", NULL, NULL, 0);
    /* a run whose config carries the switches (as avs-train will write them) */
    avs_db_exec(db, "INSERT INTO runs (name, config, code_version) VALUES ('run-a', "
                    "'{\"switches\": [\"CC\"], \"backbone\": \"resnet50+vggish\"}', 'test');"
                    "INSERT INTO metrics (method, subset, split, miou, fscore, frames, run_id) "
                    "VALUES ('run-a', 's4', 'test', 0.5, 0.6, 10, (SELECT id FROM runs))", &err);

    char *html = avs_sprintf("%s/board.html", tmp);
    CHECK(avs_report_leaderboard(db, tmp, 0, html, &err) == 0, "leaderboard: %s", err.msg);
    char *t = read_text(html);
    CHECK(strstr(t, "<!DOCTYPE html>") && strstr(t, "</html>"), "complete document");
    CHECK(!strstr(t, EVIL) && !strstr(t, "<script>alert"), "hostile method name escaped");
    CHECK(count(t, "&lt;script&gt;alert(1)&lt;/script&gt;") >= 3, "escaped name shown (board, "
          "per class, gallery)");
    CHECK(count(t, "<script>") == 1, "exactly one script element (ours): %d", count(t, "<script>"));
    CHECK(strstr(t, "cat&lt;b&gt;&amp;dog") && !strstr(t, "cat<b>"), "category escaped");
    CHECK(!strstr(t, "http://") && !strstr(t, "https://") && !strstr(t, "src=\"/") &&
          !strstr(t, "src=\"file"), "no external reference");
    CHECK(count(t, "src=\"data:image/png;base64,") >= 12, "inline thumbnails: %d",
          count(t, "src=\"data:image/png;base64,"));
    CHECK(strstr(t, "id=leaderboard") && strstr(t, "id=per-class") && strstr(t, "<svg") &&
          strstr(t, "id=dataset") && strstr(t, "id=defs") && strstr(t, "id=gallery"), "sections");
    CHECK(strstr(t, "20 frames") && strstr(t, "one video"), "grouping shown per row");
    CHECK(strstr(t, "56.07"), "C3N S4 mIoU in percent");
    free(t);

    static const struct { enum avs_report_format f; const char *ext; } fm[] = {
        {AVS_REPORT_MARKDOWN, "md"}, {AVS_REPORT_LATEX, "tex"}, {AVS_REPORT_CSV, "csv"},
        {AVS_REPORT_HTML, "html"}};
    for (int i = 0; i < 4; i++) {
        char *p = avs_sprintf("%s/ablation.%s", tmp, fm[i].ext);
        CHECK(avs_report_ablation(db, fm[i].f, "test", "official", p, &err) == 0, "ablation: %s", err.msg);
        t = read_text(p);
        CHECK(!strstr(t, "no switches"), "%s: rows without switches left out", fm[i].ext);
        if (fm[i].f == AVS_REPORT_CSV) {
            CHECK(strstr(t, "backbone,AF,CC-V,CC,s4_miou,s4_fscore,ms3_miou,ms3_fscore,protocol\n"), "csv head");
            CHECK(strstr(t, "\"pvt_v2_b5+vggish\",1,1,1,0.560654,0.566024,0.540382,0.886245,\"official\"\n"),
                  "csv full-switch row:\n%s", t);
            CHECK(strstr(t, "\"resnet50+vggish\",0,0,1,0.500000,0.600000,,,\"official\"\n"), "run config row");
            CHECK(strstr(t, "\"resnet50+vggish\",0,0,0,,,0.540382,0.886245,\"official\"\n"), "baseline row");
            /* block order: backbones sorted; within, fewer switches first */
            char *a = strstr(t, "\"pvt_v2_b5+vggish\",1,0,0"), *b = strstr(t, "\"pvt_v2_b5+vggish\",1,1,1");
            CHECK(a && b && a < b, "row order");
        } else if (fm[i].f == AVS_REPORT_MARKDOWN) {
            CHECK(count(t, "| AF | CC-V | CC | S4 mIoU | S4 F | MS3 mIoU | MS3 F |") == 2,
                  "one markdown block per backbone");
            CHECK(strstr(t, "| &#10003; | &#10003; | &#10003; | 56.1 | 0.566 | 54.0 | 0.886 |"),
                  "markdown row:\n%s", t);
        } else if (fm[i].f == AVS_REPORT_LATEX) {
            CHECK(strstr(t, "\\checkmark & \\checkmark & \\checkmark & 56.1 & 0.566 & 54.0 & 0.886 \\\\"),
                  "latex row");
            CHECK(strstr(t, "pvt\\_v2\\_b5+vggish") && strstr(t, "\\end{tabular}"), "latex block");
        } else {
            CHECK(strstr(t, "<th colspan=7>Backbone: resnet50+vggish</th>"), "html block");
        }
        free(t);
        free(p);
    }
    avs_db_close(&db);
    free(html);
    free(dbp);
}

int main(void)
{
    if (!avs_fs_exists(FIX "/golden.json"))
        SKIP("fixtures not found (run from the repository root)");
    test_escape();
    test_reports(check_tmpdir());
    return check_summary("test_report");
}
