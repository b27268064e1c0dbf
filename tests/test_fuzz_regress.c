/* tests/test_fuzz_regress.c: every input the fuzzers (bench/fuzz.sh) found crashing, leaking,
 * hanging or tripping UBSan, replayed through the same target function
 * (bench/fuzz/fuzz_<target>.c, compiled here by the project's compiler): each must now be
 * refused with a message, nothing else (those listed in EXPECT: by the check they were found
 * for). The inputs are tests/fuzz_regress/<target>/<file>; the sanitizer build catches a crash
 * that comes back. Also checks that every target of bench/fuzz/ is in the table below and every
 * folder of tests/fuzz_regress/ names one. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/fuzz/fuzz_avsbench.c"
#include "bench/fuzz/fuzz_cache.c"
#include "bench/fuzz/fuzz_config.c"
#include "bench/fuzz/fuzz_csv.c"
#include "bench/fuzz/fuzz_index.c"
#include "bench/fuzz/fuzz_jpeg.c"
#include "bench/fuzz/fuzz_label2idx.c"
#include "bench/fuzz/fuzz_logits.c"
#include "bench/fuzz/fuzz_png.c"
#include "bench/fuzz/fuzz_pth.c"
#include "bench/fuzz/fuzz_safetensors.c"
#include "bench/fuzz/fuzz_wav.c"
#include "tests/check.h"

#define REGRESS "tests/fuzz_regress"

/* Inputs whose refusal must come from the check they were found for (a substring of its
 * message), not from an earlier one: a format change (a checksum, a version) could otherwise
 * stop them before it and the test would pass without testing anything. */
static const struct {
    const char *input, *expect; /* <target>/<file> under REGRESS */
} EXPECT[] = {
    {"cache/numel-wraps-to-zero", "over 2^32 elements"},
    {"config/epochs-int-overflow", "epochs = "},
    {"config/state-epoch-1e30", "damaged training state (epoch = "},
    {"safetensors/metadata-twice", "\"__metadata__\" appears twice"},
};
#define N_EXPECT ((int)(sizeof EXPECT / sizeof EXPECT[0]))

typedef int (*fuzz_fn)(const uint8_t *data, size_t size, struct avs_err *err);

static const struct {
    const char *name;
    fuzz_fn fn;
} TARGETS[] = {
    {"avsbench", avs_fuzz_avsbench}, {"cache", avs_fuzz_cache},
    {"config", avs_fuzz_config},     {"csv", avs_fuzz_csv},
    {"index", avs_fuzz_index},
    {"jpeg", avs_fuzz_jpeg},         {"label2idx", avs_fuzz_label2idx},
    {"logits", avs_fuzz_logits},     {"png", avs_fuzz_png},
    {"pth", avs_fuzz_pth},
    {"safetensors", avs_fuzz_safetensors}, {"wav", avs_fuzz_wav},
};
#define N_TARGETS ((int)(sizeof TARGETS / sizeof TARGETS[0]))

static fuzz_fn target_of(const char *name)
{
    for (int i = 0; i < N_TARGETS; i++)
        if (!strcmp(TARGETS[i].name, name))
            return TARGETS[i].fn;
    return NULL;
}

/* Every bench/fuzz/fuzz_<name>.c is a target of the table (else its crashes go unreplayed). */
static void check_sources_listed(void)
{
    DIR *d = opendir("bench/fuzz");
    CHECK(d != NULL, "bench/fuzz: cannot open (run from the repository root)");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "fuzz_", 5) || n < 8 || strcmp(e->d_name + n - 2, ".c"))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 7), e->d_name + 5);
        CHECK(target_of(name) != NULL, "bench/fuzz/%s is not in TARGETS of %s", e->d_name, __FILE__);
    }
    if (d)
        closedir(d);
}

/* One regression input: refused (-1) with a message, within 10 s. */
static void replay(const char *target, fuzz_fn fn, const char *path)
{
    char *data = NULL;
    size_t len = 0;
    struct avs_err err = {{0}};
    if (avs_fs_read_all(path, &data, &len, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = fn((const uint8_t *)data, len, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK(rc == -1 && err.msg[0], "%s (%s): expected a refusal with a message, got rc %d", path,
          target, rc);
    CHECK(secs < 10, "%s (%s): %.1f s (a hang is > 10 s)", path, target, secs);
    for (int i = 0; i < N_EXPECT; i++)
        if (!strcmp(path + strlen(REGRESS) + 1, EXPECT[i].input))
            CHECK(strstr(err.msg, EXPECT[i].expect) != NULL, "%s (%s): refused, but not by the check "
                  "it tests (want \"%s\" in the message)", path, target, EXPECT[i].expect);
    printf("%-12s %-60s refused: %.150s\n", target, path, err.msg);
    free(data);
}

static int replay_dir(const char *target)
{
    fuzz_fn fn = target_of(target);
    CHECK(fn != NULL, "%s/%s: no such fuzz target (see bench/fuzz/)", REGRESS, target);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", REGRESS, target);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (fn && d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        replay(target, fn, path);
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s", check_tmpdir());
    setenv("AVS_FUZZ_TMP", tmp, 1); /* the targets' files go to this test's scratch folder */
    check_sources_listed();
    DIR *d = opendir(REGRESS);
    CHECK(d != NULL, "%s: cannot open (run from the repository root)", REGRESS);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n += replay_dir(e->d_name);
    if (d)
        closedir(d);
    CHECK(n > 0, "no regression inputs under %s", REGRESS);
    for (int i = 0; i < N_EXPECT; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", REGRESS, EXPECT[i].input);
        CHECK(access(path, R_OK) == 0, "%s: listed in EXPECT of %s but missing", path, __FILE__);
    }
    printf("%d regression inputs replayed\n", n);
    return check_summary("test_fuzz_regress");
}
