/* tests/test_names_unit.c: core/names (the validator and the safe mapping) and the confined writers
 * of core/fs.h (folders opened without following links, temp file + renameat, rm -rf). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/names.h"
#include "tests/check.h"

static void test_check(void)
{
    static const char *const good[] = {"abc", "video_01", "male speech, man speaking", "a.b",
                                       "x%y", "é-ü", "a..b", "\xE6\x97\xA5\xE6\x9C\xAC",
                                       "\xF0\x9F\x8E\xB5 drum", "\xF4\x8F\xBF\xBF", NULL};
    static const char *const bad[] = {"", ".", "..", "a/b", "../../../tmp/x", "/etc/passwd",
                                      "a\nb", "tab\t", "del\x7f", ".hidden", "-rf", "x.tmp.1",
                                      /* not UTF-8: Latin-1, a lone continuation byte, a cut
                                       * sequence, overlong, a surrogate, past U+10FFFF */
                                      "caf\xE9", "\x80x", "a\xE2\x82", "\xC0\xAF", "\xE0\x80\xAF",
                                      "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
                                      NULL};
    for (int i = 0; good[i]; i++)
        CHECK(avs_name_problem(good[i]) == NULL, "'%s' should be valid: %s", good[i],
              avs_name_problem(good[i]));
    for (int i = 0; bad[i]; i++)
        CHECK(avs_name_problem(bad[i]) != NULL, "'%s' should be refused", bad[i]);
    char longname[AVS_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[AVS_NAME_MAX] = '\0';
    CHECK(avs_name_problem(longname) == NULL, "%d bytes is allowed", AVS_NAME_MAX);
    longname[AVS_NAME_MAX] = 'a', longname[AVS_NAME_MAX + 1] = '\0';
    CHECK(avs_name_problem(longname) != NULL, "%d bytes is too long", AVS_NAME_MAX + 1);
    struct avs_err err = {0};
    CHECK(avs_name_check("a\nb", "--run", &err) == -1 && strstr(err.msg, "--run 'a\\x0Ab'") &&
              strstr(err.msg, "choose a name"),
          "message names the option, escapes the newline and says the fix: %s", err.msg);
    CHECK(avs_name_check_label("car/horn", "class", &err) == 0, "a label may hold '/'");
    CHECK(avs_name_check_label("a\rb", "class", &err) == -1, "a label may not hold CR");
    CHECK(avs_name_check_label("\xC3\xA9t\xC3\xA9", "class", &err) == 0, "a UTF-8 label");
    CHECK(avs_name_check_label("caf\xE9", "class", &err) == -1 && strstr(err.msg, "UTF-8") &&
              strstr(err.msg, "'caf\\xE9'"),
          "a Latin-1 label refused, its byte escaped in the message: %s", err.msg);
    CHECK(avs_name_check("r\xE9\\", "--run", &err) == -1 && strstr(err.msg, "'r\\xE9\\x5C'") &&
              strstr(err.msg, "not valid UTF-8"),
          "a Latin-1 run name refused: %s", err.msg);
    char *t = avs_name_text("caf\xE9 50% \xC3\xA9"), *u = avs_name_untext(t);
    CHECK(!strcmp(t, "caf%E9 50% \xC3\xA9") && !strcmp(u, "caf\xE9 50% \xC3\xA9"),
          "text form and back: %s", t);
    free(t), free(u);
    u = avs_name_untext("a%41%e9%7F%Z1%");
    CHECK(!strcmp(u, "a%41%e9%7F%Z1%"), "only %%80..%%FF (uppercase) decoded: %s", u);
    free(u);
    char *p = avs_name_printable("\xC3\xA9\xE9");
    CHECK(!strcmp(p, "\xC3\xA9\\xE9"), "printable keeps UTF-8 and escapes the rest: %s", p);
    free(p);
}

static void expect_map(const char *in, const char *want)
{
    char *uid = NULL, *why = NULL;
    int rc = avs_name_for_uid(in, &uid, &why);
    CHECK(rc == 0 && uid && !strcmp(uid, want), "'%s' -> '%s', want '%s' (%s)", in,
          uid ? uid : "(refused)", want, why ? why : "");
    if (uid)
        CHECK(avs_name_problem(uid) == NULL, "the safe form '%s' is a valid name", uid);
    free(uid), free(why);
}

static void expect_refused(const char *in, const char *why_part)
{
    char *uid = NULL, *why = NULL;
    CHECK(avs_name_for_uid(in, &uid, &why) == -1 && why && strstr(why, why_part),
          "'%s' refused because %s: got %s", in, why_part, why ? why : uid);
    free(uid), free(why);
}

static void test_mapping(void)
{
    expect_map("abc", "abc");
    expect_map("yt/abc", "yt%2Fabc");
    expect_map("50%", "50%25");
    expect_map("yt%2Fabc", "yt%252Fabc"); /* no collision with "yt/abc" */
    expect_map(".hidden", "%2Ehidden");
    expect_map("-rf", "%2Drf");
    expect_map("a.tmp.b", "a%2Etmp.b");
    expect_map("a/.b", "a%2F.b");
    expect_map("a..b", "a..b");
    expect_map("caf\xE9", "caf%E9");                     /* Latin-1 */
    expect_map("\xC3\xA9t\xE9", "\xC3\xA9t%E9");       /* UTF-8 kept, the stray byte encoded */
    expect_map("a\xE2\x82", "a%E2%82");                  /* a cut sequence */
    expect_map("\xED\xA0\x80", "%ED%A0%80");             /* a surrogate */
    expect_refused("", "empty");
    expect_refused(".", "folder");
    expect_refused("..", "'..'");
    expect_refused("../../../tmp/x", "'..'");
    expect_refused("a/../b", "'..'");
    expect_refused("/etc/passwd", "absolute");
    expect_refused("a\nb", "control");
    char big[200];
    for (int i = 0; i < 40; i++)
        big[2 * i] = 'a', big[2 * i + 1] = '/';
    big[80] = '\0'; /* 80 bytes, 160 once each '/' is %2F */
    expect_refused(big, "longer than 128");
    char *r1 = avs_name_refused_uid("../x"), *r2 = avs_name_refused_uid("../x");
    char *r3 = avs_name_refused_uid("../y");
    CHECK(!strcmp(r1, r2) && strcmp(r1, r3) && !strncmp(r1, "refused-", 8) &&
              strlen(r1) == 8 + 16 && !avs_name_problem(r1),
          "refused uids: deterministic, distinct, valid: %s %s", r1, r3);
    free(r1), free(r2), free(r3);
}

static char *mk(const char *base, const char *rel)
{
    char *p = avs_fs_join(base, rel);
    mkdir(p, 0777);
    return p;
}

static int exists_in(const char *dir, const char *name)
{
    char *p = avs_fs_join(dir, name);
    struct stat st;
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

static void test_confined(void)
{
    char *base = avs_sprintf("%s/names-%d", check_tmpdir(), (int)getpid());
    mkdir(base, 0777);
    char *root = mk(base, "store"), *outside = mk(base, "outside");
    struct avs_err err = {0};
    /* folders created, a file written through its temp file and committed */
    struct avs_fs_out o;
    CHECK(avs_fs_out_open(&o, root, "frames/v1/1.png", &err) == 0, "open: %s", err.msg);
    FILE *f = fopen(o.path, "wb");
    CHECK(f && fputs("x", f) >= 0 && fclose(f) == 0, "write through %s", o.path);
    CHECK(avs_fs_out_commit(&o, &err) == 0, "commit: %s", err.msg);
    avs_fs_out_free(&o);
    char *v1 = avs_fs_join(root, "frames/v1");
    CHECK(exists_in(v1, "1.png") && !exists_in(v1, ".1.png.tmp.0"), "committed file in place");
    /* an uncommitted temp file is removed */
    CHECK(avs_fs_out_open(&o, root, "frames/v1/2.png", &err) == 0, "open 2: %s", err.msg);
    avs_fs_out_free(&o);
    DIR *d = opendir(v1);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    CHECK(n == 1 && !exists_in(v1, "2.png"), "only 1.png after an uncommitted write (%d)", n);
    /* links planted inside the store: refused, nothing written outside */
    char *link1 = avs_fs_join(root, "frames/evil"), *link2 = avs_fs_join(root, "audio");
    CHECK(symlink(outside, link1) == 0 && symlink(outside, link2) == 0, "plant links");
    CHECK(avs_fs_out_open(&o, root, "frames/evil/1.png", &err) == -1 &&
              strstr(err.msg, "frames/evil is a symbolic link inside the store"),
          "frames/<uid> -> outside refused: %s", err.msg);
    CHECK(avs_fs_mkdirs_under(root, "audio/v1", &err) == -1 && strstr(err.msg, "symbolic link"),
          "audio -> outside refused: %s", err.msg);
    CHECK(avs_fs_check_under(root, "frames/v1/../../x", &err) == -1, "'..' refused");
    CHECK(avs_fs_out_open(&o, root, "frames/..", &err) == -1 && strstr(err.msg, "not a file name"),
          "'..' as the file refused: %s", err.msg);
    CHECK(avs_fs_out_open(&o, root, "frames/v1/", &err) == -1 && strstr(err.msg, "not a file name"),
          "an empty file name refused: %s", err.msg);
    CHECK(avs_fs_check_under(root, "/tmp/x", &err) == -1 && strstr(err.msg, "absolute"),
          "absolute refused: %s", err.msg);
    char *flink = avs_fs_join(v1, "3.png"), *target = avs_fs_join(outside, "t.png");
    CHECK(symlink(target, flink) == 0, "plant a file link");
    CHECK(avs_fs_check_under(root, "frames/v1/3.png", &err) == -1 && strstr(err.msg, "3.png"),
          "a file link refused: %s", err.msg);
    /* a commit over a planted file link replaces the link, never writes through it */
    CHECK(avs_fs_out_open(&o, root, "frames/v1/3.png", &err) == 0, "open 3: %s", err.msg);
    CHECK(avs_fs_out_commit(&o, &err) == 0, "commit 3: %s", err.msg);
    avs_fs_out_free(&o);
    struct stat st;
    CHECK(lstat(flink, &st) == 0 && S_ISREG(st.st_mode) && !exists_in(outside, "t.png"),
          "the link was replaced by the file");
    /* rm -rf under the root removes links, not what they point to */
    char *keep = avs_fs_join(outside, "keep");
    f = fopen(keep, "w");
    if (f)
        fclose(f);
    CHECK(avs_fs_rm_rf_under(root, "frames/evil", &err) == 0, "rm link: %s", err.msg);
    CHECK(avs_fs_rm_rf_under(root, "audio/v1", &err) == -1 && strstr(err.msg, "symbolic link"),
          "rm through a link refused: %s", err.msg);
    CHECK(exists_in(outside, "keep") && !exists_in(v1, "../evil"), "outside untouched");
    CHECK(avs_fs_rm_rf_under(root, "frames", &err) == 0 && !exists_in(root, "frames"),
          "rm -rf frames: %s", err.msg);
    CHECK(avs_fs_rm_rf_under(root, "masks/none", &err) == 0, "missing: not an error");
    free(link1), free(link2), free(flink), free(target), free(keep), free(v1);
    avs_fs_rm_rf(base, NULL);
    free(base), free(root), free(outside);
}

int main(void)
{
    test_check();
    test_mapping();
    test_confined();
    return check_summary("test_names_unit");
}
