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

int main(void)
{
    const char *tmp = check_tmpdir();
    test_sizes();
    test_fs(tmp);
    test_png(tmp);
    test_wav(tmp);
    test_db(tmp);
    return check_summary("test_core");
}
