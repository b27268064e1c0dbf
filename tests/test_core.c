/* tests/test_core.c: core pieces: errors, sizes, fs, PNG and WAV round trips, DB migrations. */
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "core/wav.h"
#include "tests/check.h"

static void test_sizes(void)
{
    size_t out;
    CHECK(avs_size_mul(SIZE_MAX / 2, 3, &out) == -1, "mul overflow not caught");
    CHECK(avs_size_mul(1000, 1000, &out) == 0 && out == 1000000, "mul");
    CHECK(avs_size_add(SIZE_MAX, 1, &out) == -1, "add overflow not caught");
}

static void test_fs(const char *tmp)
{
    struct avs_err err = {0};
    char *deep = avs_sprintf("%s/a/b c/é", tmp);
    CHECK(avs_fs_mkdirs(deep, &err) == 0, "mkdirs: %s", err.msg);
    CHECK(avs_fs_is_dir(deep), "folder exists");
    char *f = avs_fs_join(deep, "x.txt");
    CHECK(avs_fs_write_atomic(f, "hello", 5, &err) == 0, "write: %s", err.msg);
    char *data = NULL;
    size_t len = 0;
    CHECK(avs_fs_read_all(f, &data, &len, &err) == 0 && len == 5 && !strcmp(data, "hello"), "read");
    free(data);
    char *stale = avs_fs_join(deep, ".y.png.tmp.123");
    avs_fs_write_atomic(stale, "x", 1, &err);
    CHECK(avs_fs_sweep_tmp(tmp) == 1, "sweep removes exactly the temp file");
    CHECK(avs_fs_exists(f) && !avs_fs_exists(stale), "sweep kept the real file");
    char *stem = avs_fs_stem("/x/y/clip name.tar.mp4");
    CHECK(!strcmp(stem, "clip name.tar"), "stem %s", stem);
    char *lockp = avs_fs_join(tmp, "lock");
    struct avs_fs_lock *l1 = NULL, *l2 = NULL;
    CHECK(avs_fs_lock_try(lockp, &l1, &err) == 0, "first lock");
    CHECK(avs_fs_lock_try(lockp, &l2, &err) == 1, "second lock is refused as busy");
    avs_fs_unlock(&l1);
    CHECK(avs_fs_lock_try(lockp, &l2, &err) == 0, "lock after unlock");
    avs_fs_unlock(&l2);
    free(lockp), free(stem), free(stale), free(f), free(deep);
}

static void test_png(const char *tmp)
{
    struct avs_err err = {0};
    struct avs_image img = {0}, back = {0};
    avs_image_alloc(&img, 7, 5, 3);
    for (int i = 0; i < 7 * 5 * 3; i++)
        img.data[i] = (uint8_t)(i * 37);
    char *p = avs_fs_join(tmp, "x.png");
    CHECK(avs_png_write(p, &img, 1, &err) == 0, "png write: %s", err.msg);
    int bits = 0;
    CHECK(avs_png_read(p, &back, &bits, &err) == 0, "png read: %s", err.msg);
    CHECK(back.w == 7 && back.h == 5 && back.c == 3 && bits == 8, "png shape");
    CHECK(back.data && !memcmp(back.data, img.data, 105), "png bytes round trip");
    char *bad = avs_fs_join(tmp, "bad.png");
    avs_fs_write_atomic(bad, "not a png", 9, &err);
    CHECK(avs_png_read(bad, &back, NULL, &err) == -1 && strstr(err.msg, "bad.png"),
          "bad png names the file: %s", err.msg);
    avs_image_free(&img), avs_image_free(&back);
    free(p), free(bad);
}

static void test_wav(const char *tmp)
{
    struct avs_err err = {0};
    int16_t s[16000];
    for (int i = 0; i < 16000; i++)
        s[i] = (int16_t)((i * 7919) % 65536 - 32768);
    char *p = avs_fs_join(tmp, "x.wav");
    CHECK(avs_wav_write_s16(p, 16000, s, 16000, &err) == 0, "wav write: %s", err.msg);
    int16_t *back = NULL;
    int64_t n = 0;
    int rate = 0;
    CHECK(avs_wav_read_s16(p, &back, &n, &rate, &err) == 0, "wav read: %s", err.msg);
    CHECK(n == 16000 && rate == 16000 && back && !memcmp(back, s, sizeof s), "wav round trip");
    free(back);
    free(p);
}

static void test_db(const char *tmp)
{
    struct avs_err err = {0};
    char *p = avs_fs_join(tmp, "store/avs.db");
    sqlite3 *db = NULL;
    CHECK(avs_db_open(p, &db, &err) == 0, "db open: %s", err.msg);
    int v = avs_db_schema_version();
    CHECK(v >= 1, "schema has migrations");
    CHECK(avs_db_scalar_int(db, "PRAGMA user_version", -1) == v, "user_version set");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM v_videos", -1) == 0, "view exists");
    avs_db_close(&db);
    CHECK(avs_db_open(p, &db, &err) == 0, "reopen is idempotent: %s", err.msg);
    avs_db_exec(db, "PRAGMA user_version = 999", &err);
    avs_db_close(&db);
    CHECK(avs_db_open(p, &db, &err) == -1 && strstr(err.msg, "newer"), "newer schema refused: %s",
          err.msg);
    free(p);
}

extern const char avs_schema_sql[];

/* A store made at schema 2 (its two blocks run as they were released), with a video and rows
 * in every table that references videos, migrates to the current schema with nothing lost:
 * migration 3 rebuilds the videos table, which must not cascade. A row that already broke a
 * foreign key does not stop the migrations. */
static void test_db_migrate_from_2(const char *tmp)
{
    struct avs_err err = {0};
    char *p = avs_fs_join(tmp, "old/avs.db");
    CHECK(avs_fs_mkdirs_parent(p, &err) == 0, "mkdir: %s", err.msg);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(p, &db) == SQLITE_OK, "sqlite open");
    const char *m3 = strstr(avs_schema_sql, "-- migration 3:");
    CHECK(m3 != NULL, "schema has migration 3");
    char *v2 = avs_sprintf("PRAGMA foreign_keys = ON; BEGIN; %.*s PRAGMA user_version = 2; COMMIT;",
                           (int)(m3 - avs_schema_sql), avs_schema_sql);
    CHECK(avs_db_exec(db, v2, &err) == 0, "schema 2: %s", err.msg);
    CHECK(avs_db_exec(db,
                      "INSERT INTO videos (id, uid, source, subset, status, n_seconds) "
                      "VALUES (7, 'a', '/x/a.mp4', 's4', 'ok', 1);"
                      "INSERT INTO seconds (video_id, k, frame) VALUES (7, 1, 'frames/a/1.png');"
                      "INSERT INTO masks (video_id, k, path) VALUES (7, 1, 'masks/a/1.png');"
                      "INSERT INTO runs (id, name, config, code_version) VALUES (1, 'r', '{}', 'v');"
                      "INSERT INTO predictions VALUES (1, 7, 1, 'runs/r/a/1.png');"
                      "INSERT INTO metrics (method, miou, fscore, frames) VALUES ('m', 0.5, 0.6, 1);",
                      &err) == 0,
          "schema 2 rows: %s", err.msg);
    /* an orphan, as the sqlite3 shell leaves one (it does not enforce foreign keys): not the
     * migrations' doing, so it neither stops them nor is dropped */
    CHECK(avs_db_exec(db, "PRAGMA foreign_keys = OFF; INSERT INTO predictions VALUES "
                          "(99, 7, 2, 'runs/gone/a/2.png')", &err) == 0, "orphan: %s", err.msg);
    sqlite3_close(db);
    free(v2);
    CHECK(avs_db_open(p, &db, &err) == 0, "migrate 2 -> %d: %s", avs_db_schema_version(), err.msg);
    CHECK(avs_db_scalar_int(db, "PRAGMA user_version", -1) == avs_db_schema_version(), "migrated");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM seconds WHERE video_id = 7", -1) == 1 &&
              avs_db_scalar_int(db, "SELECT count(*) FROM masks WHERE video_id = 7 AND kind = 'binary'", -1) == 1 &&
              avs_db_scalar_int(db, "SELECT count(*) FROM predictions WHERE run_id = 1 AND video_id = 7", -1) == 1,
          "rows that reference the rebuilt videos table survive");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM predictions WHERE run_id = 99", -1) == 1,
          "a row that broke a foreign key before the migrations is kept");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM v_videos WHERE uid = 'a' AND avss_set IS NULL", -1) == 1,
          "views rebuilt");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM metrics WHERE protocol = 'official'", -1) == 1,
          "old metrics rows are the official protocol");
    CHECK(avs_db_scalar_int(db, "PRAGMA foreign_keys", -1) == 1, "foreign keys back on");
    CHECK(avs_db_exec(db, "DELETE FROM videos WHERE id = 7", &err) == 0 &&
              avs_db_scalar_int(db, "SELECT count(*) FROM seconds", -1) == 0,
          "the rebuilt table still cascades: %s", err.msg);
    CHECK(avs_db_exec(db, "INSERT INTO videos (uid, source, subset, status, avss_set) "
                          "VALUES ('b', '/x/b', 'avss', 'ok', 'v1s')", &err) == 0,
          "subset avss accepted: %s", err.msg);
    avs_db_close(&db);
    free(p);
}

/* avs_err_wrap / avs_err_replace: a confined writer's fd path shown as its folder. */
static void test_err(void)
{
    struct avs_err err = {0};
    avs_err_set(&err, "/proc/self/fd/7/a.png (temp file /proc/self/fd/7/.a.png.tmp.1): full; "
                      "/proc/self/fd/71/b");
    avs_err_replace(&err, "/proc/self/fd/7", "/store/frames/v");
    CHECK(!strcmp(err.msg, "/store/frames/v/a.png (temp file /store/frames/v/.a.png.tmp.1): full; "
                           "/proc/self/fd/71/b"), "replaced, fd 71 left: %s", err.msg);
    avs_err_wrap(&err, "writing %s", "x");
    CHECK(!strncmp(err.msg, "writing x: /store/", 18), "wrapped: %s", err.msg);
    char big[700];
    memset(big, 'y', sizeof big - 1), big[sizeof big - 1] = '\0';
    avs_err_set(&err, "F F");
    avs_err_replace(&err, "F", big);
    CHECK(strlen(err.msg) == sizeof err.msg - 1, "cut to fit: %zu", strlen(err.msg));
}

int main(void)
{
    test_err();
    const char *tmp = check_tmpdir();
    test_sizes();
    test_fs(tmp);
    test_png(tmp);
    test_wav(tmp);
    test_db(tmp);
    test_db_migrate_from_2(tmp);
    return check_summary("test_core");
}
