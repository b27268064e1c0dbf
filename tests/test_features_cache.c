/* tests/test_features_cache.c: the feature cache file: fp32 round trip (bits), fp16 error bound
 * (the conversions themselves: tests/test_core_f16.c), appending after reopen (resume), a record cut by a crash dropped on
 * reopen, mismatched layouts refused, bad offsets/magic/version named. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "features/cache.h"
#include "tests/check.h"

static const struct avs_cache_field F[2] = {{"logits", 1, {10, 0, 0, 0}}, {"stage", 3, {3, 4, 5, 0}}};

static void fill_record(float *a, float *b, int r)
{
    for (int i = 0; i < 10; i++)
        a[i] = (float)(r * 100 + i) * 0.37f;
    for (int i = 0; i < 60; i++)
        b[i] = (float)(r - i) * 1.3e-3f;
}

static void check_file(enum avs_cache_dtype dt)
{
    char path[600];
    snprintf(path, sizeof path, "%s/set%d.bin", check_tmpdir(), (int)dt);
    struct avs_err err;
    struct avs_cache_writer *w = NULL;
    float a[10], b[60];
    const float *rec[2] = {a, b};
    int64_t off[5];
    CHECK(avs_cache_open_append(&w, path, F, 2, dt, &err) == 0, "%s", err.msg);
    if (!w)
        return;
    for (int r = 0; r < 3; r++) {
        fill_record(a, b, r);
        CHECK(avs_cache_append(w, rec, &off[r], &err) == 0, "%s", err.msg);
    }
    CHECK(avs_cache_sync(w, &err) == 0, "%s", err.msg);
    avs_cache_close_writer(&w);
    /* resume: the three records are found, the fourth goes after them */
    CHECK(avs_cache_open_append(&w, path, F, 2, dt, &err) == 0 && avs_cache_writer_records(w) == 3,
          "reopen: %s", err.msg);
    fill_record(a, b, 3);
    avs_cache_append(w, rec, &off[3], &err);
    avs_cache_close_writer(&w);
    int64_t rb = off[1] - off[0];
    CHECK(off[3] - off[2] == rb && off[2] - off[1] == rb && rb == (dt ? 2 : 4) * 70 + 8, "record size %lld (fields + checksum)",
          (long long)rb);
    /* a crash in the middle of a record: junk tail */
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "partial", 7) == 7, "append junk");
    close(fd);
    struct avs_cache *c = NULL;
    CHECK(avs_cache_open(&c, path, &err) == 0 && c->n_records == 4, "reader ignores the cut record");
    for (int r = 0; c && r < 4; r++) {
        float ga[10], gb[60];
        fill_record(a, b, r);
        CHECK(avs_cache_read(c, off[r], 0, ga, &err) == 0 && avs_cache_read(c, off[r], 1, gb, &err) == 0,
              "%s", err.msg);
        if (dt == AVS_CACHE_F32)
            CHECK(!memcmp(ga, a, sizeof a) && !memcmp(gb, b, sizeof b), "fp32 record %d: same bits", r);
        else {
            int ok = 1;
            for (int i = 0; i < 10; i++)
                ok &= fabsf(ga[i] - a[i]) <= fabsf(a[i]) / 2048 + 6e-8f;
            for (int i = 0; i < 60; i++)
                ok &= fabsf(gb[i] - b[i]) <= fabsf(b[i]) / 2048 + 6e-8f;
            CHECK(ok, "fp16 record %d within 2^-11", r);
        }
    }
    if (c) {
        CHECK(avs_cache_find(c, "stage") == 1 && avs_cache_find(c, "x") == -1, "find");
        float t[10];
        CHECK(avs_cache_read(c, off[0] + 2, 0, t, &err) == -1 && strstr(err.msg, "no record at byte"),
              "misaligned offset: %s", err.msg);
        CHECK(avs_cache_read(c, off[3] + rb, 0, t, &err) == -1, "past the end");
    }
    avs_cache_close(&c);
    CHECK(avs_cache_open_append(&w, path, F, 2, dt, &err) == 0 && avs_cache_writer_records(w) == 4,
          "writer drops the cut record");
    avs_cache_close_writer(&w);
    struct avs_cache_field G[2] = {F[0], F[1]};
    G[1].shape[2] = 6;
    CHECK(avs_cache_open_append(&w, path, G, 2, dt, &err) == -1 && strstr(err.msg, "another feature set"),
          "other layout refused: %s", err.msg);
    CHECK(avs_cache_open_append(&w, path, F, 2, dt ? AVS_CACHE_F32 : AVS_CACHE_F16, &err) == -1,
          "other dtype refused");
    /* version and magic */
    fd = open(path, O_WRONLY);
    CHECK(pwrite(fd, "\x01", 1, 8) == 1, "patch version");
    close(fd);
    CHECK(avs_cache_open(&c, path, &err) == -1 && strstr(err.msg, "v1, need v2") &&
          strstr(err.msg, "--rebuild"), "version: %s", err.msg);
    fd = open(path, O_WRONLY);
    CHECK(pwrite(fd, "X", 1, 0) == 1, "patch magic");
    close(fd);
    CHECK(avs_cache_open(&c, path, &err) == -1 && strstr(err.msg, "not a feature cache"), "magic: %s", err.msg);
}

/* A header temp file of a writer killed before its rename is removed by the next writer. */
static void check_stale_tmp(void)
{
    char path[600], stale[640];
    snprintf(path, sizeof path, "%s/stale.bin", check_tmpdir());
    snprintf(stale, sizeof stale, "%s.tmp.999999", path);
    int fd = open(stale, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "AVSF", 4) == 4, "make a stale temp file");
    if (fd >= 0)
        close(fd);
    struct avs_err err;
    struct avs_cache_writer *w = NULL;
    CHECK(avs_cache_open_append(&w, path, F, 2, AVS_CACHE_F32, &err) == 0, "%s", err.msg);
    avs_cache_close_writer(&w);
    CHECK(access(stale, F_OK) != 0, "stale header temp file removed");
    CHECK(access(path, F_OK) == 0, "cache created");
}

int main(void)
{
    check_stale_tmp();
    check_file(AVS_CACHE_F32);
    check_file(AVS_CACHE_F16);
    return check_summary("test_features_cache");
}
