/* tests/test_store_lock.c: a reader of a video sees one version of it whole while avs-ingest
 * replaces that video again and again (store/store.h, the video lock).
 *
 * A 3-second clip is ingested over and over by a child process, alternately at 32x32 and 48x48
 * (another --size redoes the video: new files renamed into place, then its rows replaced in one
 * transaction, under a new id). Meanwhile this process reads the video in a loop as the programs do: the rows
 * (its stored width, its seconds' paths), then, after a pause that stands for decoding time,
 * the frame PNGs those rows name. Every frame must have the size its rows say.
 *   with the lock (avs_store_lock before the rows, avs_store_unlock after the files): no frame
 *     of another version, and every avs-ingest run exits 0 (it waited for the readers);
 *   without it (the same loop, no lock): frames of the other version must show up, so the
 *     check can tell the two apart.
 * Then readers that overlap must not starve avs-ingest (writer_not_starved), and avs-ingest
 * merge started inside an avs-ingest's window on its source must wait for it and copy the new
 * version whole (merge_in_the_window).
 * Then kill -9 inside the window: avs-ingest re-ingesting at 48x48 is killed just after its
 * second frame is renamed into place (tests/shim/failwrite.so, AVS_KILL_AT_RENAME), so the
 * rows say 32x32 and two frames are 48x48. A reader must refuse the video (the mark avs-ingest
 * left), and avs-ingest run again with the rows' own options (its signature unchanged) must
 * redo it: afterwards every frame is 32x32 and the reader takes the video.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "eval/eval.h"
#include "store/store.h"
#include "tests/check.h"

#define PASSES 6

struct tally {
    int reads, mixed, gone;
};

static void pause_ms(int ms)
{
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

/* id and stored width of the clip's video, or -1 when it has no ok row right now. */
static int64_t video_row(sqlite3 *db, int *width)
{
    sqlite3_stmt *st;
    struct avs_err err;
    int64_t id = -1;
    if (avs_db_prepare(db, "SELECT id, width FROM videos WHERE status = 'ok'", &st, &err))
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        *width = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return id;
}

/* One read of the video; lock: as the programs read. */
static void read_once(sqlite3 *db, const char *root, int lock, struct tally *t)
{
    int width = 0;
    int64_t id = video_row(db, &width);
    if (id < 0) {
        t->gone++;
        return;
    }
    struct avs_store_lock lk = AVS_STORE_UNLOCKED;
    struct avs_store_seconds sec = {0};
    struct avs_err err = {0};
    if ((lock && avs_store_lock(&lk, db, root, id, &err)) ||
        video_row(db, &width) != id || avs_store_seconds(&sec, db, id, 3, &err)) {
        t->gone++; /* replaced between the listing and the lock: the programs say so and stop */
        avs_store_unlock(&lk);
        return;
    }
    pause_ms(20); /* decoding, or a slow disk */
    t->reads++;
    int mixed = 0;
    for (int k = 0; k < 3; k++) {
        char *p = avs_fs_join(root, sec.frame[k]);
        struct avs_image img = {0};
        if (avs_png_read(p, &img, NULL, &err) == 0)
            mixed |= img.w != width;
        else
            mixed = 1; /* a file of the old version already dropped */
        avs_image_free(&img);
        free(p);
    }
    t->mixed += mixed;
    avs_store_seconds_free(&sec);
    avs_store_unlock(&lk);
}

/* The child: PASSES more ingests of the clip, alternating sizes; exits with the number that
 * failed. */
static void ingest_loop(const char *bin, const char *root, const char *clips)
{
    int failed = 0;
    for (int p = 0; p < PASSES; p++) {
        char *cmd = avs_sprintf("'%s/avs-ingest' -q -j 1 --root '%s' --size %s '%s'", bin, root,
                                p % 2 ? "32x32" : "48x48", clips);
        failed += system(cmd) != 0;
        free(cmd);
    }
    _exit(failed);
}

/* Reads in a loop while the child ingests; the child's number of failed runs. */
static int race(const char *bin, const char *root, const char *clips, int lock, struct tally *t)
{
    char *dbp = avs_db_path_for_root(root);
    sqlite3 *db = NULL;
    struct avs_err err = {0};
    CHECK(avs_db_open_readonly(dbp, &db, &err) == 0, "%s", err.msg);
    free(dbp);
    if (!db)
        return -1;
    int w;
    int64_t before = video_row(db, &w);
    pid_t child = fork();
    if (child == 0)
        ingest_loop(bin, root, clips);
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0)
        read_once(db, root, lock, t);
    /* each replacement took a new id, past every earlier one: a reader's id names a version */
    int64_t after = video_row(db, &w);
    CHECK(after == before + PASSES, "the video's id went %lld -> %lld over %d re-ingests",
          (long long)before, (long long)after, PASSES);
    avs_db_close(&db);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Widths of the video's stored frames 1..3 as the files are (-1: unreadable). */
static void frame_widths(const char *root, int w[3])
{
    for (int k = 0; k < 3; k++) {
        char *p = avs_sprintf("%s/frames/clip/%d.png", root, k + 1);
        struct avs_image img = {0};
        struct avs_err err;
        w[k] = avs_png_read(p, &img, NULL, &err) == 0 ? img.w : -1;
        avs_image_free(&img);
        free(p);
    }
}

/* 0 when a reader takes the video now; -1 with err otherwise. */
static int reader_takes(const char *root, struct avs_err *err)
{
    char *dbp = avs_db_path_for_root(root);
    sqlite3 *db = NULL;
    int w, rc = avs_db_open_readonly(dbp, &db, err);
    free(dbp);
    struct avs_store_lock lk = AVS_STORE_UNLOCKED;
    if (rc == 0)
        rc = avs_store_lock(&lk, db, root, video_row(db, &w), err);
    avs_store_unlock(&lk);
    avs_db_close(&db);
    return rc;
}

/* avs-eval's store listing refuses the torn video too (a ground-truth row is added for it:
 * the clip has none). */
static void eval_refuses(const char *root)
{
    char *dbp = avs_db_path_for_root(root);
    sqlite3 *db = NULL;
    struct avs_err err = {0};
    struct avs_eval_set set = {0};
    int rc = avs_db_open(dbp, &db, &err);
    if (rc == 0)
        rc = avs_db_exec(db, "INSERT INTO masks (video_id, k, path) SELECT id, 1, "
                             "'frames/clip/1.png' FROM videos", &err);
    CHECK(rc == 0, "a mask row for the clip: %s", err.msg);
    if (rc == 0) {
        rc = avs_eval_list_db(db, root, NULL, NULL, &set, &err);
        CHECK(rc != 0 && strstr(err.msg, "stopped while it replaced"),
              "avs-eval's listing refuses the torn video: %s", rc ? err.msg : "(it listed it)");
        avs_eval_set_free(&set);
    }
    avs_db_close(&db);
    free(dbp);
}

/* LD_PRELOAD's value for the fault shim (tests/shim/failwrite.so, after ASan's runtime when
 * the programs are built with it; malloc'd), or NULL (a failed check) when it is not built. */
static char *shim_preload(const char *bin)
{
    char *shim = avs_sprintf("%s/../tests/shim/failwrite.so", bin);
    if (access(shim, R_OK) != 0) {
        CHECK(0, "no %s (make builds it)", shim);
        free(shim);
        return NULL;
    }
    char line[4096] = "";
    char *ldd = avs_sprintf("ldd '%s/avs-ingest' | awk '/libasan/ { print $3 }'", bin);
    FILE *f = popen(ldd, "r");
    if (f && fgets(line, sizeof line, f))
        line[strcspn(line, "\n")] = '\0';
    if (f)
        pclose(f);
    free(ldd);
    if (!line[0])
        return shim;
    char *both = avs_sprintf("%s:%s", line, shim);
    free(shim);
    return both;
}

/* The width the index of root says the video has (-1: no ok row). */
static int stored_width(const char *root)
{
    char *dbp = avs_db_path_for_root(root);
    sqlite3 *db = NULL;
    struct avs_err err;
    int w = -1;
    if (avs_db_open_readonly(dbp, &db, &err) == 0 && video_row(db, &w) < 0)
        w = -1;
    avs_db_close(&db);
    free(dbp);
    return w;
}

/* 1 when root's video is whole at width w: its row and its three frames. */
static int whole_at(const char *root, int w)
{
    int f[3];
    frame_widths(root, f);
    return stored_width(root) == w && f[0] == w && f[1] == w && f[2] == w;
}

/* A reader that takes the video again and again: lock, hold hold_ms, unlock, at once again
 * (whatever version the index has then); for 8 s, or until a lock fails. */
static void hog(const char *root, int hold_ms)
{
    char *dbp = avs_db_path_for_root(root);
    sqlite3 *db = NULL;
    struct avs_err err;
    int w;
    if (avs_db_open_readonly(dbp, &db, &err))
        _exit(1);
    for (int t = 0; t < 8000; t += hold_ms) {
        struct avs_store_lock lk = AVS_STORE_UNLOCKED;
        if (avs_store_lock(&lk, db, root, video_row(db, &w), &err))
            break; /* replaced between its listing and its lock */
        pause_ms(hold_ms);
        avs_store_unlock(&lk);
    }
    _exit(0);
}

/* Readers cannot starve a writer: two readers hold the video in turns that overlap (one takes
 * it again while the other still holds it), so without the store's gate there is never a
 * moment with no reader and avs-ingest would wait until they stop (8 s). With the gate it
 * waits only for the holds already begun (400 ms). */
static void writer_not_starved(const char *bin, const char *root, const char *clips)
{
    pid_t a = fork();
    if (a == 0)
        hog(root, 400);
    pause_ms(200);
    pid_t b = fork();
    if (b == 0)
        hog(root, 400);
    pause_ms(300);
    char *cmd = avs_sprintf("'%s/avs-ingest' -q -j 1 --root '%s' --size 48x48 '%s'", bin, root,
                            clips);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("avs-ingest beside two overlapping readers: %.2f s\n", s);
    CHECK(rc == 0 && whole_at(root, 48), "avs-ingest beside two overlapping readers exits 0");
    CHECK(s < 4.0, "a writer is not starved by readers that overlap: %.2f s (they stop at 8 s)",
          s);
    kill(a, SIGKILL), kill(b, SIGKILL);
    waitpid(a, NULL, 0), waitpid(b, NULL, 0);
    cmd = (free(cmd), avs_sprintf("'%s/avs-ingest' -q -j 1 --root '%s' --size 32x32 '%s'", bin,
                                  root, clips));
    CHECK(system(cmd) == 0 && whole_at(root, 32), "the store back at 32x32");
    free(cmd);
}

/* avs-ingest merge reads a source video as its readers do, under its lock: started while an
 * avs-ingest on the source is inside its window (the mark is there, renames slowed by the
 * shim, AVS_RENAME_DELAY_MS), merge waits for it and copies the new version whole, exit 0.
 * Checking the mark without the lock (as merge did before) refused the video at once instead,
 * calling it torn, exit 2; and a mark set just after that check let frames of two versions
 * through. A merge of the store into itself is refused. */
static void merge_in_the_window(const char *bin, const char *root, const char *clips,
                                const char *dest)
{
    char *shim = shim_preload(bin);
    if (!shim)
        return;
    char *merge = avs_sprintf("'%s/avs-ingest' merge -q --root '%s' '%s'", bin, dest, root);
    char *cmd = avs_sprintf("'%s/avs-ingest' -q -j 1 --root '%s' --size 32x32 '%s'", bin, root,
                            clips);
    CHECK(system(cmd) == 0 && system(merge) == 0 && whole_at(dest, 32), "a first merge copies the video at 32x32 "
          "(width %d)", stored_width(dest));
    cmd = (free(cmd), avs_sprintf("LD_PRELOAD='%s' AVS_FAIL_PATH=/frames/ AVS_RENAME_DELAY_MS=500 "
                            "'%s/avs-ingest' -q -j 1 --root '%s' --size 48x48 '%s'",
                            shim, bin, root, clips));
    pid_t child = fork();
    if (child == 0)
        _exit(system(cmd) == 0 ? 0 : 1);
    char *mark = avs_sprintf("%s/frames/clip/.replacing", root);
    int waited = 0, status = 0;
    while (access(mark, F_OK) != 0 && waited < 60000 && waitpid(child, &status, WNOHANG) == 0)
        pause_ms(5), waited += 5;
    int inside = access(mark, F_OK) == 0 && waitpid(child, &status, WNOHANG) == 0;
    CHECK(inside, "avs-ingest at 48x48 reached its window (the mark) within %d ms", waited);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = system(merge);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(rc == 0, "merge started inside the source's window exits 0 (status %d)", rc);
    /* three frame renames of 500 ms each were still ahead of avs-ingest when merge started */
    CHECK(ms > 300, "merge waited for the source's avs-ingest (it took %.0f ms)", ms);
    CHECK(whole_at(dest, 48), "merge waited and copied the new version whole: row width %d",
          stored_width(dest));
    if (waitpid(child, &status, 0) == child)
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the slowed avs-ingest exits 0");
    cmd = (free(cmd), avs_sprintf("'%s/avs-ingest' -q -j 1 --root '%s' --size 32x32 '%s'", bin,
                                  root, clips));
    CHECK(system(cmd) == 0 && whole_at(root, 32), "the source back at 32x32");
    cmd = (free(cmd), avs_sprintf("'%s/avs-ingest' merge -q --root '%s' '%s/.' 2>&1 | grep -q "
                                  "'destination store itself'", bin, root, root));
    CHECK(system(cmd) == 0, "a merge of the store into itself is refused, named");
    free(cmd), free(merge), free(mark), free(shim);
}

static void killed_in_the_window(const char *bin, const char *root, const char *clips)
{
    char *shim = shim_preload(bin);
    if (!shim)
        return;
    char *cmd = avs_sprintf("LD_PRELOAD='%s' AVS_FAIL_PATH=/frames/ AVS_KILL_AT_RENAME=2 "
                            "'%s/avs-ingest' -q -j 1 --root '%s' --size 48x48 '%s' 2> /dev/null",
                            shim, bin, root, clips);
    int st = system(cmd), w[3];
    int killed = (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
                 (WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL); /* the shell's report */
    CHECK(killed, "avs-ingest killed at its second frame's rename (status %d)", st);
    frame_widths(root, w);
    CHECK(w[0] == 48 && w[1] == 48 && w[2] == 32, "the kill left frames of two versions: widths "
          "%d %d %d (48 48 32 expected)", w[0], w[1], w[2]);
    struct avs_err err = {0};
    CHECK(reader_takes(root, &err) != 0 && strstr(err.msg, "stopped while it replaced"),
          "a reader refuses the torn video: %s", err.msg[0] ? err.msg : "(it read it)");
    eval_refuses(root);
    free(cmd);
    cmd = avs_sprintf("'%s/avs-ingest' -q -j 1 --root '%s' --size 32x32 '%s'", bin, root, clips);
    CHECK(system(cmd) == 0, "avs-ingest again with the rows' options");
    frame_widths(root, w);
    CHECK(w[0] == 32 && w[1] == 32 && w[2] == 32, "redone whatever its signature said: widths "
          "%d %d %d", w[0], w[1], w[2]);
    err.msg[0] = '\0';
    CHECK(reader_takes(root, &err) == 0, "a reader takes the healed video: %s", err.msg);
    free(cmd), free(shim);
}

int main(void)
{
    const char *bin = getenv("AVS_BIN"), *tmp = check_tmpdir();
    if (!bin || system("command -v ffmpeg > /dev/null 2>&1") != 0)
        SKIP("needs AVS_BIN and the ffmpeg CLI (scripts/deps.sh installs it)");
    char *clips = avs_sprintf("%s/clips", tmp), *root = avs_sprintf("%s/st", tmp);
    char *cmd = avs_sprintf("mkdir -p '%s/c' && ffmpeg -v error -nostdin -y -f lavfi -i "
                            "testsrc2=size=96x72:rate=10 -f lavfi -i sine=sample_rate=16000 -t 3 "
                            "-c:v libx264 -pix_fmt yuv420p -c:a aac -shortest '%s/c/clip.mp4' && "
                            "'%s/avs-ingest' -q -j 1 --root '%s' --size 32x32 '%s'",
                            clips, clips, bin, root, clips);
    int made = system(cmd) == 0;
    free(cmd);
    CHECK(made, "the clip and its first ingest");
    if (made) {
        struct tally locked = {0}, unlocked = {0};
        int failed = race(bin, root, clips, 1, &locked);
        printf("with the lock: %d reads, %d of another version, %d between versions; "
               "%d avs-ingest runs failed\n", locked.reads, locked.mixed, locked.gone, failed);
        CHECK(failed == 0, "every avs-ingest run beside a reader exits 0 (%d failed)", failed);
        CHECK(locked.reads >= PASSES, "the reader read while ingest ran (%d reads)", locked.reads);
        CHECK(locked.mixed == 0, "%d reads saw frames of another version than their rows",
              locked.mixed);
        /* a reader pauses in ~90% of its time: PASSES commits land outside every pause with
         * odds below 1e-6; up to three rounds make a false alarm negligible */
        failed = 0;
        for (int round = 0; round < 3 && unlocked.mixed == 0; round++)
            failed += race(bin, root, clips, 0, &unlocked);
        printf("without it: %d reads, %d of another version, %d between versions\n",
               unlocked.reads, unlocked.mixed, unlocked.gone);
        CHECK(failed == 0, "avs-ingest runs without a reader's lock (%d failed)", failed);
        CHECK(unlocked.mixed > 0, "the check can tell: readers without the lock must see mixed "
              "versions (%d reads)", unlocked.reads);
        writer_not_starved(bin, root, clips);
        char *dest = avs_sprintf("%s/merged", tmp);
        merge_in_the_window(bin, root, clips, dest);
        free(dest);
        killed_in_the_window(bin, root, clips);
    }
    free(clips), free(root);
    return check_summary("test_store_lock");
}
