/* bench/fuzz/fuzz_index.c: JSON read back from our own index, as avs-report reads it: the
 * input is every metrics row's details (what avs-eval --record writes) and the linked run's
 * config (what avs-train writes) of an index holding an S4, an MS3 and an AVSS row. Through
 * the leaderboard page (rankings, per class, gallery, AVSS variants, per-class table and heat
 * map, protocols), the ablation table in every format and the alpha x beta grid. Anything
 * may be refused with a message; nothing may crash, hang or over-allocate. */
#include <sqlite3.h>

#include "bench/fuzz/fuzz.h"
#include "core/db.h"
#include "report/report.h"

static sqlite3 *index_db; /* opened once per process (schema applied), emptied per input */

static int index_open(struct avs_err *err)
{
    if (index_db)
        return 0;
    char *path = avs_fs_join(avs_fuzz_tmpdir(), "avs.db");
    int rc = avs_db_open(path, &index_db, err);
    free(path);
    return rc;
}

/* One run whose config is text, three metrics rows linked to it whose details are text. */
static int index_fill(const char *text, struct avs_err *err)
{
    static const char *const rows[3][3] = {
        {"s4", "official", "C3N"}, {"ms3", "per-frame", "C3N ms3"}, {"avss", "avss-official", "C3N avss"}};
    sqlite3_stmt *st = NULL;
    if (avs_db_exec(index_db, "DELETE FROM metrics; DELETE FROM runs;", err) ||
        avs_db_prepare(index_db, "INSERT INTO runs (id, name, config, code_version) VALUES "
                                 "(1, 'r', ?1, 'fuzz')", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(index_db, err, "runs");
    sqlite3_finalize(st);
    if (rc || avs_db_prepare(index_db, "INSERT INTO metrics (method, subset, split, protocol, "
                                       "miou, fscore, frames, run_id, details) VALUES "
                                       "(?1, ?2, 'test', ?3, 0.5, 0.6, 10, 1, ?4)", &st, err))
        return -1;
    for (int i = 0; i < 3 && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, rows[i][2], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rows[i][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rows[i][1], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = avs_db_error(index_db, err, "metrics");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Every report that reads details or config; the first refusal is the result. */
static int index_reports(struct avs_err *err)
{
    char *out = avs_fs_join(avs_fuzz_tmpdir(), "report.out");
    int rc = avs_report_leaderboard(index_db, avs_fuzz_tmpdir(), 0, out, err) < 0 ? -1 : 0;
    static const enum avs_report_format f[4] = {AVS_REPORT_HTML, AVS_REPORT_MARKDOWN,
                                                AVS_REPORT_LATEX, AVS_REPORT_CSV};
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = avs_report_ablation(index_db, f[i], "test", NULL, out, err) < 0 ? -1 : 0;
    struct avs_report_grid g = {.rows = "alpha", .cols = "beta", .subset = "s4"};
    if (rc == 0)
        rc = avs_report_grid(index_db, AVS_REPORT_HTML, &g, out, err) < 0 ? -1 : 0;
    free(out);
    return rc;
}

int avs_fuzz_index(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_index(const uint8_t *data, size_t size, struct avs_err *err)
{
    char *text = avs_fuzz_text(data, size);
    int rc = index_open(err) || index_fill(text, err) || index_reports(err) ? -1 : 0;
    free(text);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_index)
