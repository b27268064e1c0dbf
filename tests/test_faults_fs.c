/* tests/test_faults_fs.c: core/fs.h's write and lock paths that the fault tests
 * (test_faults_*.sh) rely on: the messages for a full disk and an I/O error, a file written in
 * pieces that either appears whole or not at all (a real write failure: RLIMIT_FSIZE), and a
 * refused lock naming its holder's program and pid. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/common.h"
#include "core/fs.h"
#include "tests/check.h"

static void test_messages(void)
{
    struct avs_err err = {0};
    CHECK(avs_fs_write_error(&err, "/st/frames/x.png", ENOSPC) == -1, "returns -1");
    CHECK(strstr(err.msg, "/st/frames/x.png: disk full") && strstr(err.msg, "free space"),
          "ENOSPC: %s", err.msg);
    avs_fs_write_error(&err, "/st/f.bin", EDQUOT);
    CHECK(strstr(err.msg, "/st/f.bin: disk full") && strstr(err.msg, "quota"), "EDQUOT: %s", err.msg);
    avs_fs_write_error(&err, "/st/f.bin", EIO);
    CHECK(strstr(err.msg, "/st/f.bin: I/O error") != NULL, "EIO: %s", err.msg);
    avs_fs_write_error(&err, "/st/f.bin", EACCES);
    CHECK(strstr(err.msg, "cannot write /st/f.bin") && strstr(err.msg, "ermission"), "EACCES: %s", err.msg);
}

/* No temp file (".<name>.tmp.<pid>") left in dir. */
static int no_temp(const char *dir, const char *name)
{
    char *t = avs_sprintf("%s/.%s.tmp.%ld", dir, name, (long)getpid());
    int gone = !avs_fs_exists(t);
    free(t);
    return gone;
}

static void test_out(const char *tmp)
{
    struct avs_err err = {0};
    char *p = avs_fs_join(tmp, "a.bin");
    struct avs_fs_tmpfile o;
    CHECK(avs_fs_tmpfile_open(&o, p, &err) == 0 && avs_fs_tmpfile_write(&o, "abc", 3, &err) == 0, "open: %s", err.msg);
    CHECK(!avs_fs_exists(p), "nothing at the final name before the commit");
    avs_fs_tmpfile_abort(&o);
    CHECK(!avs_fs_exists(p) && no_temp(tmp, "a.bin"), "abort leaves nothing");
    CHECK(avs_fs_tmpfile_open(&o, p, &err) == 0 && avs_fs_tmpfile_write(&o, "abc", 3, &err) == 0 &&
          avs_fs_tmpfile_write(&o, "de", 2, &err) == 0 && avs_fs_tmpfile_commit(&o, 1, &err) == 0, "%s", err.msg);
    char *data = NULL;
    size_t len = 0;
    CHECK(avs_fs_read_all(p, &data, &len, &err) == 0 && len == 5 && !memcmp(data, "abcde", 5), "committed");
    CHECK(no_temp(tmp, "a.bin"), "no temp file after the commit");
    free(data);

    /* a real write failure: the file-size limit (EFBIG) stops the second piece */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    char *q = avs_fs_join(tmp, "b.bin");
    char big[8192];
    memset(big, 7, sizeof big);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    int rc = avs_fs_tmpfile_open(&o, q, &err) || avs_fs_tmpfile_write(&o, big, 1000, &err) ||
             avs_fs_tmpfile_write(&o, big, sizeof big, &err) || avs_fs_tmpfile_commit(&o, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc != 0, "a write past the limit fails");
    CHECK(strstr(err.msg, q) && strstr(err.msg, "removed"), "message names the file: %s", err.msg);
    CHECK(!avs_fs_exists(q) && no_temp(tmp, "b.bin"), "a failed write leaves no file");
    CHECK(avs_fs_write_atomic(p, big, sizeof big, &err) == 0, "the limit is gone: %s", err.msg);
    free(p), free(q);
}

static void test_lock_holder(const char *tmp)
{
    struct avs_err err = {0};
    char *lockp = avs_fs_join(tmp, ".lock");
    struct avs_fs_lock *l1 = NULL, *l2 = NULL;
    CHECK(avs_fs_lock_try(lockp, &l1, &err) == 0, "first lock: %s", err.msg);
    char *want = avs_sprintf("test_faults_fs (pid %ld)", (long)getpid());
    char *who = avs_fs_lock_holder(lockp);
    CHECK(!strcmp(who, want), "holder %s, want %s", who, want);
    CHECK(avs_fs_lock_try(lockp, &l2, &err) == 1, "second lock refused");
    CHECK(strstr(err.msg, want) != NULL, "refusal names the holder: %s", err.msg);
    avs_fs_unlock(&l1);
    char *none = avs_fs_join(tmp, "no-such.lock");
    free(who);
    who = avs_fs_lock_holder(none);
    CHECK(!strcmp(who, "another process"), "no lock file: %s", who);
    free(who), free(want), free(none), free(lockp);
}

int main(void)
{
    char tmpl[] = "/tmp/avs-faults-fs-XXXXXX";
    const char *tmp = getenv("AVS_TMP");
    if (!tmp)
        tmp = mkdtemp(tmpl);
    test_messages();
    test_out(tmp);
    test_lock_holder(tmp);
    return check_summary("test_faults_fs");
}
