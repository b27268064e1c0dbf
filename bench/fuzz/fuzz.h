/* bench/fuzz/fuzz.h: what every fuzz target shares (bench/fuzz.sh builds them with libFuzzer;
 * tests/test_fuzz_regress.c replays each file of tests/fuzz_regress/<target>/ through the same
 * functions).
 *
 * A target is one function over the input bytes that runs them through the readers the
 * programs use, and says whether they were accepted (0) or refused (-1, err set):
 *
 *   int avs_fuzz_png(const uint8_t *data, size_t size, struct avs_err *err)
 *   {
 *       const char *path = avs_fuzz_file("in.png", data, size);   readers that need a path
 *       ...
 *   }
 *   AVS_FUZZ_ENTRY(avs_fuzz_png)       LLVMFuzzerTestOneInput, in the libFuzzer build only
 *
 * tests/test_fuzz_regress.c includes every target's .c file: keep their static names unique.
 * Files go to one folder per process under $AVS_FUZZ_TMP, else /dev/shm (memory, fast), else
 * /tmp; the folder is removed at exit.
 */
#ifndef AVS_BENCH_FUZZ_H
#define AVS_BENCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/fs.h"

static char avs_fuzz_dir[512];

static void avs_fuzz_cleanup(void)
{
    struct avs_err err = {{0}};
    if (avs_fuzz_dir[0] && avs_fs_rm_rf(avs_fuzz_dir, &err))
        fprintf(stderr, "fuzz: %s\n", err.msg);
}

/* The per-process scratch folder (created on first use; aborts if none can be made). */
static inline const char *avs_fuzz_tmpdir(void)
{
    if (avs_fuzz_dir[0])
        return avs_fuzz_dir;
    const char *base = getenv("AVS_FUZZ_TMP");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(avs_fuzz_dir, sizeof avs_fuzz_dir, "%s/avs-fuzz-%ld", base, (long)getpid());
    struct avs_err err = {{0}};
    if (avs_fs_mkdirs(avs_fuzz_dir, &err)) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    atexit(avs_fuzz_cleanup);
    avs_log_set_level(0); /* the readers' warnings would drown the fuzzer's output */
    return avs_fuzz_dir;
}

/* Write data to <scratch>/<name> (replacing it); returns the path (static storage). */
static inline const char *avs_fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", avs_fuzz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
    return path;
}

/* A NUL-terminated copy of the input (malloc'd), for readers of text. */
static inline char *avs_fuzz_text(const uint8_t *data, size_t size)
{
    char *s = avs_malloc(size + 1);
    if (size)
        memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#ifdef AVS_FUZZ_LIBFUZZER
#define AVS_FUZZ_ENTRY(fn)                                                 \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);          \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)           \
    {                                                                      \
        struct avs_err err = {{0}};                                        \
        (void)fn(data, size, &err);                                        \
        return 0;                                                          \
    }
#else
#define AVS_FUZZ_ENTRY(fn)
#endif

#endif
