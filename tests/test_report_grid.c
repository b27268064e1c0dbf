/* tests/test_report_grid.c: avs-report's grid of two recorded parameters (report/grid.c,
 * report/params.c) on a store whose runs and metrics rows are written by hand:
 *   - alpha x beta (Table III) in Markdown, LaTeX, HTML and CSV, exact text: exponents from the
 *     run config's "c3im", from the feature set's config alone, and 0.1/0.1 for a C3N run whose
 *     set config has none; numeric axis order; a missing cell; a method evaluated twice counts
 *     once (its latest row); two methods in a cell: best, mean or latest, with their count;
 *     --where switches=AF,CC; results without alpha/beta counted in the caption;
 *   - F-score cells; several subsets refused without --subset; option errors;
 *   - switches x backbone (Table II order) and encoder x encoder from avs-eval --record details,
 *     with a hostile backbone name escaped in every format;
 *   - Table II (avs_report_ablation) keeps to C3N's results at the official exponents, one block
 *     per backbone (+ audio encoder when not VGGish);
 *   - the leaderboard's Table III and Table I sections (backbone x audio, backbone x model). */
#include <stdio.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "report/report.h"
#include "tests/check.h"

#define FC(a, b) "\"feature_config\":{\"visual\":{\"name\":\"pvt_v2_b0\"},\"audio\":{\"name\":" \
                 "\"vggish\"}" a "}" b

static void run(sqlite3 *db, int id, const char *name, const char *config)
{
    struct avs_err err;
    char *sql = sqlite3_mprintf("INSERT INTO runs (id, name, config, code_version, status) "
                                "VALUES (%d, %Q, %Q, 'test', 'done')", id, name, config);
    CHECK(avs_db_exec(db, sql, &err) == 0, "run %s: %s", name, err.msg);
    sqlite3_free(sql);
}

static void metric(sqlite3 *db, const char *method, const char *subset, double miou, double f,
                   int run_id, const char *details)
{
    struct avs_err err;
    char id[16] = "NULL";
    if (run_id)
        snprintf(id, sizeof id, "%d", run_id);
    char *sql = sqlite3_mprintf("INSERT INTO metrics (method, subset, split, miou, fscore, frames, "
                                "run_id, details) VALUES (%Q, %Q, 'test', %.17g, %.17g, 10, %s, %Q)",
                                method, subset, miou, f, id, details);
    CHECK(avs_db_exec(db, sql, &err) == 0, "metric %s: %s", method, err.msg);
    sqlite3_free(sql);
}

static sqlite3 *make_store(const char *tmp)
{
    struct avs_err err;
    char *dbp = avs_sprintf("%s/grid/avs.db", tmp);
    sqlite3 *db = NULL;
    AVS_ASSERT(avs_db_open(dbp, &db, &err) == 0);
    free(dbp);
    run(db, 1, "def", "{\"switches\":\"AF,CC\",\"backbone\":\"pvt_v2_b0\"," FC("", "}"));
    run(db, 2, "a05b2", "{\"switches\":\"AF,CC\",\"backbone\":\"pvt_v2_b0\",\"c3im\":{\"alpha\":0.05,"
                        "\"beta\":0.2}," FC(",\"c3im\":{\"alpha\":0.05,\"beta\":0.2}", "}"));
    run(db, 3, "a2b1", "{\"switches\":\"AF,CC\",\"backbone\":\"pvt_v2_b0\","
                       FC(",\"c3im\":{\"alpha\":0.2,\"beta\":0.1}", "}"));
    run(db, 4, "a05b2-seed2", "{\"switches\":\"AF,CC\",\"backbone\":\"<b>&x_y\",\"c3im\":{\"alpha\":"
                              "0.05,\"beta\":0.2}," FC("", "}"));
    run(db, 5, "af", "{\"switches\":\"AF\",\"backbone\":\"pvt_v2_b0\"," FC("", "}"));
    metric(db, "def", "s4", 0.90, 0.9, 1, NULL); /* re-evaluated below: this row is stale */
    metric(db, "a05b2", "s4", 0.50, 0.55, 2, NULL);
    metric(db, "a2b1", "s4", 0.30, 0.35, 3, NULL);
    metric(db, "def", "s4", 0.40, 0.45, 1, NULL);
    metric(db, "a05b2-seed2", "s4", 0.45, 0.5, 4, NULL);
    metric(db, "af", "s4", 0.20, 0.25, 5, NULL);
    metric(db, "baseline: centre box", "s4", 0.10, 0.15, 0, "{}");
    metric(db, "theirs", "s4", 0.70, 0.75, 0,
           "{\"switches\":[\"AF\",\"CC\"],\"backbone\":\"swin_b\",\"audio\":\"panns_cnn14\"}");
    metric(db, "a2b1", "ms3", 0.60, 0.65, 3, NULL);
    return db;
}

static char *grid_text(sqlite3 *db, enum avs_report_format f, const struct avs_report_grid *g,
                       const char *tmp)
{
    struct avs_err err;
    char *path = avs_sprintf("%s/grid/out.txt", tmp), *d = NULL;
    size_t n;
    if (avs_report_grid(db, f, g, path, &err) || avs_fs_read_all(path, &d, &n, &err)) {
        CHECK(0, "grid: %s", err.msg);
        d = avs_strdup("");
    }
    free(path);
    return d;
}

#define HAS(text, needle) CHECK(strstr(text, needle), "missing \"%s\" in:\n%s", needle, text)

static void test_alpha_beta(sqlite3 *db, const char *tmp)
{
    struct avs_report_grid g = {.rows = "alpha", .cols = "beta", .subset = "s4", .split = "test",
                                .where = {"switches=AF,CC"}};
    char *t = grid_text(db, AVS_REPORT_MARKDOWN, &g, tmp);
    HAS(t, "\n\n| alpha \\ beta | 0.1 | 0.2 |\n|:--|--:|--:|\n| 0.05 | - | 50.0 (2) |\n"
           "| 0.1 | 40.0 | - |\n| 0.2 | 30.0 | - |\n");
    HAS(t, "shows the best of them");
    HAS(t, "1 result without alpha or beta left out");
    HAS(t, "only switches=AF,CC");
    free(t);
    t = grid_text(db, AVS_REPORT_LATEX, &g, tmp);
    HAS(t, "\\begin{tabular}{l|cc}\n\\toprule\n$\\alpha$ \\textbackslash{} $\\beta$ & 0.1 & 0.2 \\\\\n"
           "\\midrule\n0.05 & -- & 50.0 (2) \\\\\n0.1 & 40.0 & -- \\\\\n0.2 & 30.0 & -- \\\\\n"
           "\\bottomrule\n\\end{tabular}\n");
    CHECK(t[0] == '%', "LaTeX caption is a comment");
    free(t);
    t = grid_text(db, AVS_REPORT_HTML, &g, tmp);
    HAS(t, "<tr><th>alpha \\ beta</th><th>0.1</th><th>0.2</th></tr></thead><tbody>\n"
           "<tr><th>0.05</th><td>&ndash;</td><td>50.0 (2)</td></tr>\n");
    HAS(t, "<!DOCTYPE html>");
    free(t);
    t = grid_text(db, AVS_REPORT_CSV, &g, tmp);
    CHECK(!strcmp(t, "\"alpha\\beta\",\"0.1\",\"0.2\"\n\"0.05\",,0.500000\n\"0.1\",0.400000,\n"
                     "\"0.2\",0.300000,\n"), "csv:\n%s", t);
    free(t);
    const char *picks[3][2] = {{"mean", "| 0.05 | - | 47.5 (2) |"}, {"latest", "| 0.05 | - | 45.0 (2) |"},
                               {"best", "| 0.05 | - | 50.0 (2) |"}};
    for (int i = 0; i < 3; i++) {
        g.pick = picks[i][0];
        t = grid_text(db, AVS_REPORT_MARKDOWN, &g, tmp);
        HAS(t, picks[i][1]);
        free(t);
    }
    g.pick = NULL, g.metric = "fscore";
    t = grid_text(db, AVS_REPORT_MARKDOWN, &g, tmp);
    HAS(t, "| 0.1 | 0.450 | - |");
    HAS(t, "F-score (fraction)");
    free(t);
}

static void test_errors(sqlite3 *db, const char *tmp)
{
    struct avs_err err;
    char *out = avs_sprintf("%s/grid/never.md", tmp);
    struct avs_report_grid g = {.rows = "alpha", .cols = "beta", .split = "test"};
    CHECK(avs_report_grid(db, AVS_REPORT_MARKDOWN, &g, out, &err) == -1 &&
          strstr(err.msg, "--subset") && strstr(err.msg, "ms3"), "several subsets: %s", err.msg);
    CHECK(!avs_fs_exists(out), "nothing written");
    struct avs_report_grid bad[4] = {{.rows = "alpha"}, {.rows = "a", .cols = "b", .metric = "iou"},
                                     {.rows = "a", .cols = "b", .pick = "max"},
                                     {.rows = "a", .cols = "b", .where = {"switches"}}};
    const char *why[4] = {"--rows NAME --cols NAME", "--metric iou", "--pick max", "--where switches"};
    for (int i = 0; i < 4; i++)
        CHECK(avs_report_grid_check(&bad[i], &err) == -1 && strstr(err.msg, why[i]), "%s: %s", why[i],
              err.msg);
    free(out);
}

static void test_other_axes(sqlite3 *db, const char *tmp)
{
    struct avs_report_grid g = {.rows = "switches", .cols = "backbone", .subset = "s4", .split = "test"};
    char *t = grid_text(db, AVS_REPORT_MARKDOWN, &g, tmp);
    HAS(t, "| switches \\ backbone | &lt;b&gt;&amp;x\\_y | pvt\\_v2\\_b0 | swin\\_b |\n|:--|--:|--:|--:|\n"
           "| AF | - | 20.0 | - |\n| AF,CC | 45.0 | 50.0 (3) | 70.0 |\n");
    free(t);
    t = grid_text(db, AVS_REPORT_LATEX, &g, tmp);
    HAS(t, "switches \\textbackslash{} backbone & \\textless{}b\\textgreater{}\\&x\\_y & pvt\\_v2\\_b0 & swin\\_b \\\\");
    free(t);
    t = grid_text(db, AVS_REPORT_HTML, &g, tmp);
    HAS(t, "<th>&lt;b&gt;&amp;x_y</th>");
    CHECK(!strstr(t, "<b>&"), "raw name in HTML");
    free(t);
    g.rows = "backbone", g.cols = "audio";
    t = grid_text(db, AVS_REPORT_MARKDOWN, &g, tmp);
    HAS(t, "| backbone \\ audio | panns\\_cnn14 | vggish |\n|:--|--:|--:|\n| &lt;b&gt;&amp;x\\_y | - | 45.0 |\n"
           "| pvt\\_v2\\_b0 | - | 50.0 (4) |\n| swin\\_b | 70.0 | - |\n");
    free(t);
}

/* Table II keeps to the official exponents: the AF,CC row of pvt_v2_b0 is run "def" (40.0), not
 * the later runs at other alpha/beta. */
static void test_table2(sqlite3 *db, const char *tmp)
{
    struct avs_err err;
    char *path = avs_sprintf("%s/grid/t2.md", tmp), *d = NULL;
    size_t n;
    CHECK(avs_report_ablation(db, AVS_REPORT_MARKDOWN, "test", NULL, path, &err) == 0, "%s", err.msg);
    if (avs_fs_read_all(path, &d, &n, &err) == 0) {
        HAS(d, "| &#10003; |  | &#10003; | 40.0 | 0.450 | - | - |");
        CHECK(!strstr(d, "30.0") && !strstr(d, "50.0") && !strstr(d, "60.0"), "other exponents in Table II:\n%s", d);
    }
    free(d), free(path);
}

static void test_leaderboard(sqlite3 *db, const char *tmp)
{
    struct avs_err err;
    char *path = avs_sprintf("%s/grid/board.html", tmp), *d = NULL;
    size_t n;
    CHECK(avs_report_leaderboard(db, tmp, 0, path, &err) >= 0, "leaderboard: %s", err.msg);
    if (avs_fs_read_all(path, &d, &n, &err) == 0) {
        HAS(d, "<h2 id=exponents-s4>C3IM exponents alpha x beta (Table III), S4</h2>");
        HAS(d, "<td>50.0 (2)</td>");
        CHECK(!strstr(d, "id=exponents-ms3"), "MS3 has one cell: no grid");
        CHECK(!strstr(d, "id=encoders-s4") && !strstr(d, "id=baseline-s4"), "Table I: one cell, no grid");
    }
    free(d);
    /* Table I: a ResNet-50 + PANNs C3N run (official exponents from its set) and a TPAVI run */
    run(db, 6, "rn-panns", "{\"switches\":\"AF,CC\",\"model\":\"C3N\",\"backbone\":\"resnet50\","
                           "\"audio\":\"panns_cnn14\"," FC("", "}"));
    run(db, 7, "tpavi", "{\"switches\":\"AF\",\"model\":\"TPAVI\",\"backbone\":\"pvt_v2_b0\"," FC("", "}"));
    run(db, 8, "c3n-a3", "{\"switches\":\"AF,CC\",\"model\":\"C3N\",\"backbone\":\"resnet50\","
                         "\"audio\":\"panns_cnn14\",\"c3im\":{\"alpha\":0.3,\"beta\":0.1}," FC("", "}"));
    metric(db, "rn-panns", "s4", 0.25, 0.3, 6, NULL);
    metric(db, "tpavi", "s4", 0.15, 0.2, 7, NULL);
    metric(db, "c3n-a3", "s4", 0.95, 0.95, 8, NULL); /* other exponents: not in Table I */
    CHECK(avs_report_leaderboard(db, tmp, 0, path, &err) >= 0, "leaderboard: %s", err.msg);
    if (avs_fs_read_all(path, &d, &n, &err) == 0) {
        HAS(d, "<h2 id=encoders-s4>Backbone x audio encoder (Table I, C3N AF,CC), S4</h2>");
        HAS(d, "<tr><th>pvt_v2_b0</th><td>&ndash;</td><td>40.0</td></tr>");
        HAS(d, "<tr><th>resnet50</th><td>25.0</td><td>&ndash;</td></tr>");
        HAS(d, "<h2 id=baseline-s4>C3N and the TPAVI baseline by backbone (Table I, VGGish), S4</h2>");
        HAS(d, "<tr><th>backbone \\ model</th><th>C3N</th><th>TPAVI</th></tr>");
        HAS(d, "<tr><th>pvt_v2_b0</th><td>40.0 (2)</td><td>15.0</td></tr>"); /* "def", "af": no model recorded, C3N */
        char *t1 = strstr(d, "id=encoders-s4"), *end = t1 ? strstr(t1, "id=defs") : NULL;
        CHECK(t1 && end && !memmem(t1, (size_t)(end - t1), "95.0", 4), "a run at other exponents in Table I");
    }
    free(d);
    d = NULL;
    /* Table II stays C3N's (the TPAVI run is b0's latest AF row, 15.0: left out) and puts another
     * audio encoder in a block of its own */
    CHECK(avs_report_ablation(db, AVS_REPORT_MARKDOWN, "test", NULL, path, &err) == 0, "%s", err.msg);
    if (avs_fs_read_all(path, &d, &n, &err) == 0) {
        HAS(d, "| &#10003; |  |  | 20.0 | 0.250 | - | - |");
        CHECK(!strstr(d, "15.0"), "TPAVI in Table II:\n%s", d);
        HAS(d, "**Backbone: resnet50 + panns\\_cnn14**");
    }
    free(d), free(path);
}

int main(void)
{
    const char *tmp = check_tmpdir();
    sqlite3 *db = make_store(tmp);
    test_alpha_beta(db, tmp);
    test_errors(db, tmp);
    test_other_axes(db, tmp);
    test_table2(db, tmp);
    test_leaderboard(db, tmp);
    avs_db_close(&db);
    return check_summary("test_report_grid");
}
