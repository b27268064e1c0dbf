/* tests/test_report_avss.c: the leaderboard with protocols and AVSS rows (docs/avss.md "The
 * metrics row and its JSON"): S4 rows under two protocols (and an old row with the default
 * protocol) are ranked in separate tables with a protocol column; AVSS rows with details JSON
 * (71 classes, variants, padded counts) give the AVSS leaderboard, the per-class table and
 * the heat map; the explanation section has one paragraph per protocol present; a row with
 * malformed details and one without classes are named under Problems while the rest of the
 * page is complete (the library returns 2, avs-report exits 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "core/db.h"
#include "core/fs.h"
#include "report/report.h"
#include "tests/check.h"

#define EVIL_CLASS "<img src=x onerror=alert(1)>"

static void insert(sqlite3 *db, const char *method, const char *subset, const char *protocol,
                   int group_frames, double miou, double fscore, const char *details)
{
    static const char *SQL =
        "INSERT INTO metrics (method, subset, split, group_frames, miou, fscore, frames, "
        "protocol, details) VALUES (?1, ?2, 'test', ?3, ?4, ?5, 40, ?6, ?7)";
    sqlite3_stmt *st;
    struct avs_err err = {{0}};
    AVS_ASSERT(avs_db_prepare(db, SQL, &st, &err) == 0);
    sqlite3_bind_text(st, 1, method, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subset, -1, SQLITE_STATIC);
    if (group_frames > 0)
        sqlite3_bind_int(st, 3, group_frames);
    sqlite3_bind_double(st, 4, miou);
    sqlite3_bind_double(st, 5, fscore);
    sqlite3_bind_text(st, 6, protocol, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, details, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(st) == SQLITE_DONE, "insert %s: %s", method, sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

static char *s4_details(const char *protocol, double miou)
{
    return avs_sprintf("{\"protocol\": \"%s\", \"per_class\": {\"dog\": {\"protocol\": \"%s\", "
                       "\"miou\": %g, \"fscore\": 0.5}}, \"per_video\": []}", protocol, protocol,
                       miou);
}

/* AVSS details as avs-eval --semantic writes them; class k's IoU = scale * k / 70, class 7
 * absent (frames 0), class 5 with a hostile name. */
static char *avss_details(const char *protocol, double scale, int padded_assumed)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "protocol", protocol);
    cJSON_AddNullToObject(o, "group_frames");
    cJSON *vs = cJSON_AddObjectToObject(o, "variants");
    static const char *V[] = {"no-bg", "official-no-bg", "present", "pooled"};
    for (int v = 0; v < 4; v++) {
        cJSON *r = cJSON_AddObjectToObject(vs, V[v]);
        cJSON_AddStringToObject(r, "protocol", protocol);
        cJSON_AddNumberToObject(r, "miou", 0.1111 * (v + 1));
        cJSON_AddNumberToObject(r, "fscore", 0.2222);
    }
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < 71; k++) {
        cJSON *c = cJSON_CreateObject();
        char name[32];
        snprintf(name, sizeof name, "class_%02d_name", k);
        cJSON_AddNumberToObject(c, "idx", k);
        cJSON_AddStringToObject(c, "name", k == 0 ? "background" : k == 5 ? EVIL_CLASS : name);
        cJSON_AddNumberToObject(c, "iou", k == 7 ? 0 : scale * k / 70.0);
        cJSON_AddNumberToObject(c, "fscore", k == 7 ? 0 : scale * 0.9 * k / 70.0);
        cJSON_AddNumberToObject(c, "frames", k == 7 ? 0 : 10 + k);
        cJSON_AddItemToArray(cl, c);
    }
    cJSON_AddArrayToObject(o, "videos");
    cJSON_AddNumberToObject(o, "padded_given", 0);
    cJSON_AddNumberToObject(o, "padded_assumed", padded_assumed);
    cJSON_AddNumberToObject(o, "unknown_pixels", 3);
    cJSON_AddNumberToObject(o, "frames", 40);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
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

/* The text of the table whose opening tag has `id` (up to its </table>), malloc'd. */
/* The text from `start` up to `end` (malloc'd): "" when start is absent, or end and
 * !to_eof; the rest of html when end is absent and to_eof. */
static char *cut(const char *html, const char *start, const char *end, int to_eof)
{
    const char *a = strstr(html, start), *b = a ? strstr(a + 1, end) : NULL;
    if (!a || (!b && !to_eof))
        return avs_strdup("");
    size_t n = b ? (size_t)(b - a) : strlen(a);
    char *t = avs_malloc(n + 1);
    memcpy(t, a, n);
    t[n] = '\0';
    return t;
}

static char *table(const char *html, const char *id)
{
    char *key = avs_sprintf("id=%s>", id), *t = cut(html, key, "</table>", 0);
    free(key);
    return t;
}

static void fill(sqlite3 *db)
{
    struct avs_err err = {{0}};
    char *d;
    insert(db, "S4 alpha", "s4", "official", 0, 0.61, 0.70, d = s4_details("official", 0.61));
    free(d);
    insert(db, "S4 beta", "s4", "official", 0, 0.55, 0.66, d = s4_details("official", 0.55));
    free(d);
    /* higher than both official rows: must rank first only in its own table */
    insert(db, "S4 alpha", "s4", "per-frame", 0, 0.91, 0.93, d = s4_details("per-frame", 0.91));
    free(d);
    /* an old row: no protocol given, the column's default applies */
    CHECK(avs_db_exec(db, "INSERT INTO metrics (method, subset, split, miou, fscore, frames) "
                          "VALUES ('S4 old', 's4', 'test', 0.40, 0.50, 10)", &err) == 0,
          "old row: %s", err.msg);
    insert(db, "AVSS one", "avss", "avss-official", 0, 0.3141, 0.4242,
           d = avss_details("avss-official", 0.9, 15));
    free(d);
    insert(db, "AVSS two", "avss", "avss-official", 0, 0.2718, 0.3333,
           d = avss_details("avss-official", 0.5, 0));
    free(d);
    insert(db, "AVSS real", "avss", "avss-official-real-frames", 0, 0.5, 0.5,
           d = avss_details("avss-official-real-frames", 0.7, 0));
    free(d);
    insert(db, "AVSS broken", "avss", "avss-official", 0, 0.2, 0.2, "{\"classes\": [1, 2");
    insert(db, "AVSS noclasses", "avss", "avss-official", 0, 0.1, 0.1,
           "{\"protocol\": \"avss-official\", \"variants\": {}}");
}

static void check_board(const char *t)
{
    CHECK(strstr(t, "<!DOCTYPE html>") && strstr(t, "</html>"), "complete document");
    CHECK(!strstr(t, "http://") && !strstr(t, "https://") && !strstr(t, "<link") &&
          !strstr(t, "src=\"/"), "no external reference");
    char *off = table(t, "board-1"), *pf = table(t, "board-2");
    CHECK(strstr(off, "<th>Protocol</th>") && strstr(pf, "<th>Protocol</th>"), "protocol column");
    CHECK(strstr(off, "S4 alpha") && strstr(off, "S4 beta") && strstr(off, "S4 old") &&
          !strstr(off, "per-frame"), "official S4 table: the official rows, old row included");
    CHECK(strstr(off, ">official</td>"), "protocol cell");
    CHECK(strstr(pf, ">per-frame</td>") && !strstr(pf, "S4 beta") && !strstr(pf, "S4 old"),
          "per-frame S4 table alone");
    CHECK(strstr(pf, "data-v=\"1\">1</td><td>S4 alpha"), "per-frame row ranked 1 in its table");
    char *a = strstr(off, "S4 alpha"), *b = strstr(off, "S4 beta"), *o = strstr(off, "S4 old");
    CHECK(a && b && o && a < b && b < o, "official ranking by mIoU");
    CHECK(!strstr(off, "AVSS") && !strstr(pf, "AVSS"), "AVSS rows not in the S4 rankings");
    CHECK(strstr(t, "never ranked against each other"), "the page says so");
    free(off), free(pf);

    char *av = table(t, "avss-board-1"), *rf = table(t, "avss-board-2");
    CHECK(strstr(t, "id=avss>"), "AVSS section");
    CHECK(strstr(av, "AVSS one") && strstr(av, "AVSS two") && !strstr(av, "AVSS real"),
          "avss-official ranking");
    CHECK(strstr(rf, "AVSS real") && strstr(rf, ">avss-official-real-frames</td>") &&
          !strstr(rf, "AVSS one"), "real-frames ranking apart");
    CHECK(strstr(av, "31.41") && strstr(av, "42.42"), "official mIoU and F in percent");
    CHECK(strstr(av, "no-bg") && strstr(av, "official-no-bg") && strstr(av, "present") &&
          strstr(av, "pooled") && strstr(av, "44.44"), "variants");
    CHECK(strstr(av, "Padded given") && strstr(av, "<td class=n>15</td>"), "padded assumed");
    CHECK(strstr(t, "issue #23") && strstr(t, "drops class 70"), "official-no-bg note");
    free(av), free(rf);

    char *pc = table(t, "avss-per-class");
    CHECK(count(pc, "<th scope=row>") == 71, "per-class rows: %d", count(pc, "<th scope=row>"));
    CHECK(strstr(pc, "class_70_name") && strstr(pc, ">background</th>"), "names from details");
    CHECK(strstr(pc, "90.00") && strstr(pc, "50.00"), "class 70 IoU of both official rows");
    free(pc);

    char *hm = table(t, "avss-heatmap");
    CHECK(count(hm, "<th scope=row>") == 71, "heat map rows");
    CHECK(count(hm, "style=\"background:#") >= 3 * 70, "coloured cells: %d",
          count(hm, "style=\"background:#"));
    CHECK(strstr(hm, ">90.0</td>") && strstr(hm, "IoU 90.00%"), "number in cell and title");
    CHECK(count(hm, "absent (no frame") == 3, "absent class marked per column");
    CHECK(strstr(t, "aria-label=\"colour scale: IoU in percent\""), "legend");
    free(hm);
    CHECK(!strstr(t, EVIL_CLASS) && strstr(t, "&lt;img src=x onerror=alert(1)&gt;"),
          "class names escaped");

    CHECK(strstr(t, "id=protocols>How these numbers were computed"), "explanation section");
    CHECK(strstr(t, "id=\"protocol-official\"") && strstr(t, "id=\"protocol-per-frame\"") &&
          strstr(t, "id=\"protocol-avss-official\"") &&
          strstr(t, "id=\"protocol-avss-official-real-frames\""), "a paragraph per protocol");
    CHECK(!strstr(t, "id=\"protocol-pooled\""), "no paragraph for an absent protocol");

    CHECK(strstr(t, "id=problems") && strstr(t, "does not parse") &&
          strstr(t, "no &quot;classes&quot; array"), "problems listed");
    CHECK(count(t, "href=\"#problem-") == 2, "problem rows marked in the rankings");
    CHECK(strstr(t, "AVSS broken") && strstr(t, "id=gallery") && strstr(t, "id=dataset"),
          "broken row still ranked; rest of the page done");
}

/* --columns: 12 usable AVSS results and 13 S4/MS3 ones; the heat map and the per-class
 * chart's legend show the best `columns` of them (default 8). */
static void check_columns(sqlite3 *db, const char *tmp)
{
    char *d;
    for (int i = 0; i < 9; i++) {
        char m[32];
        snprintf(m, sizeof m, "AVSS extra %d", i);
        insert(db, m, "avss", "avss-official", 0, 0.05, 0.05, d = avss_details("avss-official", 0.3, 0));
        free(d);
        snprintf(m, sizeof m, "S4 extra %d", i);
        insert(db, m, "s4", "official", 0, 0.3, 0.3, d = s4_details("official", 0.3));
        free(d);
    }
    static const int given[3] = {0, 10, 64}, want[3] = {8, 10, 12}, want_s4[3] = {8, 10, 13};
    for (int k = 0; k < 3; k++) {
        struct avs_err err = {{0}};
        char *html = avs_sprintf("%s/cols%d.html", tmp, given[k]);
        CHECK(avs_report_leaderboard(db, tmp, given[k], html, &err) >= 0, "columns %d: %s",
              given[k], err.msg);
        char *t = read_text(html), *hm = table(t, "avss-heatmap"), *cl = cut(t, "id=classes", "<h2", 1);
        CHECK(count(hm, "<th class=\"m\"") == want[k], "columns %d: %d heat map columns, want %d",
              given[k], count(hm, "<th class=\"m\""), want[k]);
        CHECK(count(cl, "<i class=sw") == want_s4[k], "columns %d: %d results in the per-class "
              "chart, want %d", given[k], count(cl, "<i class=sw"), want_s4[k]);
        CHECK((strstr(cl, "hsl(") != NULL) == (want_s4[k] > 8), "columns %d: colours past the "
              "palette exactly when more than 8", given[k]);
        free(t), free(hm), free(cl), free(html);
    }
}

/* avs-report itself: exit 2 with the message; ablation names its protocol. */
static void check_tool(const char *tmp, const char *dbp)
{
    const char *bin = getenv("AVS_BIN");
    if (!bin) {
        printf("note: AVS_BIN not set, avs-report program not run\n");
        return;
    }
    char *cmd = avs_sprintf("'%s/avs-report' leaderboard --db '%s' -o '%s/tool.html' "
                            "2> '%s/tool.err'", bin, dbp, tmp, tmp);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "avs-report exit %d, want 2", WEXITSTATUS(st));
    free(cmd);
    char *p = avs_sprintf("%s/tool.err", tmp), *e = read_text(p);
    CHECK(strstr(e, "does not parse") && strstr(e, "DELETE FROM metrics WHERE id ="),
          "message on stderr: %s", e);
    free(e), free(p);
    cmd = avs_sprintf("'%s/avs-report' ablation --db '%s' --protocol per-frame -o - > "
                      "'%s/abl.md'", bin, dbp, tmp);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ablation exit %d", WEXITSTATUS(st));
    free(cmd);
    p = avs_sprintf("%s/abl.md", tmp), e = read_text(p);
    CHECK(strstr(e, "protocol per-frame"), "markdown names the protocol: %s", e);
    free(e), free(p);
    static const char *const bad[3][2] = {{"leaderboard --columns 0", "expected 1 to 64"},
                                          {"leaderboard --columns 65", "expected 1 to 64"},
                                          {"ablation --columns 4", "belongs to the leaderboard"}};
    for (int i = 0; i < 3; i++) {
        cmd = avs_sprintf("'%s/avs-report' %s --db '%s' -o '%s/x.html' 2> '%s/bad.err'", bin,
                          bad[i][0], dbp, tmp, tmp);
        st = system(cmd);
        p = avs_sprintf("%s/bad.err", tmp), e = read_text(p);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(e, bad[i][1]),
              "%s: exit %d, want 1 (usage) saying '%s': %s", bad[i][0], WEXITSTATUS(st), bad[i][1], e);
        free(cmd), free(e), free(p);
    }
}

int main(void)
{
    const char *tmp = check_tmpdir();
    struct avs_err err = {{0}};
    char *dbp = avs_sprintf("%s/store/avs.db", tmp);
    sqlite3 *db = NULL;
    AVS_ASSERT(avs_db_open(dbp, &db, &err) == 0);
    fill(db);
    char *html = avs_sprintf("%s/board.html", tmp);
    int rc = avs_report_leaderboard(db, tmp, 0, html, &err);
    CHECK(rc == 2, "leaderboard returns the 2 problem rows: %d (%s)", rc, err.msg);
    char *t = read_text(html);
    check_board(t);
    free(t);
    check_columns(db, tmp);
    avs_db_close(&db);
    check_tool(tmp, dbp);
    free(html);
    free(dbp);
    return check_summary("test_report_avss");
}
