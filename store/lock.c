/* store/lock.c: a video's reader lock (store/store.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "store/store.h"

/* The uid of the ingested video with row id video_id (malloc'd), or NULL. */
static char *video_uid(sqlite3 *db, int64_t video_id)
{
    sqlite3_stmt *st;
    struct avs_err ignore;
    if (avs_db_prepare(db, "SELECT uid FROM videos WHERE id = ?1 AND status = 'ok'", &st, &ignore))
        return NULL;
    sqlite3_bind_int64(st, 1, video_id);
    char *uid = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        uid = avs_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return uid;
}

#define MARK ".replacing"

/* The video's folder, relative to the store root: frames/<uid> (malloc'd). */
static char *folder(const char *uid)
{
    return avs_sprintf("frames/%s", uid);
}

/* The refusal of a marked video (shown: its folder). -1. */
static int torn(struct avs_err *err, const char *shown)
{
    return avs_err_set(err, "%s: avs-ingest stopped while it replaced this video (its rows and "
                       "files are of two versions, or %s cannot be checked): run avs-ingest (or "
                       "its merge) on this video again to finish it", shown, MARK);
}

/* 1 unless the mark is certainly absent: an error other than ENOENT counts as marked, so a
 * check that cannot be made never lets a torn video through. */
static int has_mark(int dirfd)
{
    struct stat st;
    return fstatat(dirfd, MARK, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

static int gone(int64_t video_id, struct avs_err *err)
{
    return avs_err_set(err, "video %lld is no longer in the index (re-ingested or removed while "
                       "this ran): run again to take its current version", (long long)video_id);
}

/* 1 when fd is still the folder root/rel (not one removed and made again meanwhile). */
static int same_folder(int fd, const char *root, const char *rel)
{
    struct avs_err ignore;
    struct stat a, b;
    int now = -1, same = 0;
    if (avs_fs_open_under(root, rel, 0, &now, &ignore) == 0) {
        same = fstat(fd, &a) == 0 && fstat(now, &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
        close(now);
    }
    return same;
}

/* Milliseconds left of a wait of AVS_STORE_LOCK_WAIT_MS that began at t0 (avs_now). */
static int left_ms(double t0)
{
    double left = AVS_STORE_LOCK_WAIT_MS - (avs_now() - t0) * 1e3;
    return left > 0 ? (int)left : 0;
}

/* The store's gate, a flock on root/frames: a writer holds it exclusively while it waits for a
 * video's readers (GATE_HOLD_MS at most), a reader holds it shared only while it takes a
 * video's lock. flock grants a shared request whenever no lock held conflicts, however long a
 * writer has waited, so readers that take a video again and again (gaps of microseconds) could
 * starve a writer; at the gate new readers queue behind it while it waits for the readers
 * already in. *fd stays -1 in a store with no frames folder yet (no video to wait for). Waited
 * for until t0 + AVS_STORE_LOCK_WAIT_MS: 0, or -1 with err. */
#define GATE_HOLD_MS 5000
static int gate_enter(const char *root, int exclusive, double t0, int *fd, struct avs_err *err)
{
    struct avs_err ignore;
    if (avs_fs_open_under(root, "frames", 0, fd, &ignore)) {
        *fd = -1;
        return 0;
    }
    if (avs_fs_flock_wait(*fd, exclusive, left_ms(t0)) == 0)
        return 0;
    close(*fd), *fd = -1;
    char *shown = avs_fs_join(root, "frames");
    avs_err_set(err, "%s: %s kept the store's gate for over %d s (is one stopped?): let it "
                "finish, then run again", shown, exclusive ? "its readers or another writer"
                : "avs-ingest, waiting for videos' readers,", AVS_STORE_LOCK_WAIT_MS / 1000);
    free(shown);
    return -1;
}

static void gate_leave(int *fd)
{
    if (*fd >= 0)
        close(*fd), *fd = -1; /* releases the flock */
}

/* Opens and locks frames/<uid> into *fd: 0; 1 when the folder is missing or changed while we
 * waited (the caller looks again); 2 with err when it carries the mark; -1 with err. */
static int lock_folder(int *fd, const char *root, const char *rel, struct avs_err *err)
{
    int gate = -1;
    double t0 = avs_now();
    *fd = -1;
    if (gate_enter(root, 0, t0, &gate, err))
        return -1;
    char *shown = avs_fs_join(root, rel);
    int rc = avs_fs_open_under(root, rel, 0, fd, err);
    if (rc && errno == ENOENT)
        rc = 1;
    else if (rc == 0) {
        int w = avs_fs_flock_wait(*fd, 0, left_ms(t0));
        if (w)
            rc = avs_err_set(err, "%s: avs-ingest has held this video's lock for over %d s "
                             "(is it stopped?): let it finish, then run again", shown,
                             AVS_STORE_LOCK_WAIT_MS / 1000);
        else if (!same_folder(*fd, root, rel))
            rc = 1;
        else if (has_mark(*fd))
            rc = torn(err, shown), rc = 2;
        if (rc)
            close(*fd), *fd = -1;
    }
    gate_leave(&gate);
    free(shown);
    return rc;
}

int avs_store_lock(struct avs_store_lock *l, sqlite3 *db, const char *root, int64_t video_id,
                   struct avs_err *err)
{
    l->fd = -1, l->torn = 0;
    int rc = 1;
    for (int attempt = 0; attempt < 8 && rc == 1; attempt++) {
        char *uid = video_uid(db, video_id);
        if (!uid)
            return gone(video_id, err);
        char *rel = folder(uid);
        int fd = -1;
        rc = lock_folder(&fd, root, rel, err);
        /* a replaced video gets a new id (avs_db_new_video_id): the same uid under this id now
         * means the version we listed, and its rows are the ones the files belong to */
        char *now = rc == 0 ? video_uid(db, video_id) : NULL;
        if (rc == 0 && (!now || strcmp(now, uid)))
            rc = gone(video_id, err);
        if (rc == 0)
            l->fd = fd;
        else if (fd >= 0)
            close(fd);
        free(uid), free(rel), free(now);
    }
    if (rc == 2)
        l->torn = 1, rc = -1;
    if (rc == 1) /* the folder kept missing while the video stayed in the index */
        rc = avs_err_set(err, "video %lld: its folder under %s/frames is missing: re-ingest it",
                         (long long)video_id, root);
    return rc;
}

int avs_store_lock_writer(struct avs_store_lock *l, const char *root, const char *uid,
                          struct avs_err *err)
{
    l->fd = -1, l->torn = 0;
    char *rel = folder(uid), *shown = avs_fs_join(root, rel);
    struct avs_err ignore;
    int fd = -1, rc = 0, gate = -1;
    double t0 = avs_now();
    if (avs_fs_open_under(root, rel, 0, &fd, &ignore) == 0 && gate_enter(root, 1, t0, &gate, err))
        close(fd), fd = -1, rc = -1;
    if (fd >= 0) {
        /* new readers queue at the gate for GATE_HOLD_MS at most: a reader that holds this
         * video longer does not stall the readers of every other video for longer */
        int hold = left_ms(t0) < GATE_HOLD_MS ? left_ms(t0) : GATE_HOLD_MS;
        int w = avs_fs_flock_wait(fd, 1, hold);
        gate_leave(&gate);
        if (w)
            w = avs_fs_flock_wait(fd, 1, left_ms(t0));
        if (w)
            rc = avs_err_set(err, "%s: a reader has held this video's lock for over %d s (is it "
                             "stopped?): the video keeps its last version; let the reader "
                             "finish, then run avs-ingest again", shown,
                             AVS_STORE_LOCK_WAIT_MS / 1000);
        if (rc)
            close(fd);
        else
            l->fd = fd;
    }
    gate_leave(&gate);
    free(rel), free(shown);
    return rc;
}

void avs_store_unlock(struct avs_store_lock *l)
{
    if (l && l->fd >= 0) {
        close(l->fd); /* releases the flock */
        l->fd = -1;
    }
}

int avs_store_mark(const struct avs_store_lock *l, struct avs_err *err)
{
    if (l->fd < 0)
        return 0;
    int fd = openat(l->fd, MARK, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return avs_err_set(err, "cannot create the mark %s in the video's folder: %s", MARK,
                           strerror(errno));
    close(fd);
    return 0;
}

void avs_store_unmark(const struct avs_store_lock *l)
{
    if (l->fd >= 0)
        unlinkat(l->fd, MARK, 0);
}

int avs_store_marked(const char *root, const char *uid)
{
    char *rel = folder(uid);
    int fd = -1, marked = 0;
    struct avs_err ignore;
    if (avs_fs_open_under(root, rel, 0, &fd, &ignore) == 0) {
        marked = has_mark(fd);
        close(fd);
    } else {
        marked = errno != ENOENT; /* no folder: no files to disagree with */
    }
    free(rel);
    return marked;
}

int avs_store_unmarked(const char *root, const char *uid, struct avs_err *err)
{
    if (!avs_store_marked(root, uid))
        return 0;
    char *rel = folder(uid), *shown = avs_fs_join(root, rel);
    torn(err, shown);
    free(rel), free(shown);
    return -1;
}
