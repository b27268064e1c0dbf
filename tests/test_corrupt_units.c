/* tests/test_corrupt_units.c: the integrity checks one by one (README "Reliability"):
 * - NaN/Inf scans (core/integrity.h) in every stored float kind, unaligned, at block edges,
 *   with the largest finite values not flagged;
 * - feature cache: the writer refuses a NaN, an Inf and a value beyond fp16's range (nothing
 *   appended); a byte flipped in any record fails that record only; a record copied whole into
 *   another slot fails (the checksum is seeded with the record's offset); a NaN planted with its
 *   checksum recomputed is named by tensor and element;
 * - checkpoints (train/ckpt.h): the writer's and the file's digests agree; saving refuses a NaN
 *   (the old file stays); a flipped byte anywhere in the tensor data or the metadata is named;
 *   a NaN with a valid checksum is refused by tensor; version 1 loads (warning), version 2
 *   without a checksum and unknown versions are refused;
 * - logits files: a NaN/Inf is refused when writing and, planted in a file, when reading, named
 *   by channel and pixel. */
#include <fcntl.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/integrity.h"
#include "core/safetensors.h"
#include "eval/eval.h"
#include "features/cache.h"
#include "tests/check.h"
#include "train/ckpt.h"

static void check_scans(void)
{
    uint8_t buf[4 * 3000 + 1];
    float *x = malloc(3000 * sizeof(float));
    for (int i = 0; i < 3000; i++)
        x[i] = i % 2 ? FLT_MAX : -FLT_MAX;
    memcpy(buf + 1, x, 3000 * 4); /* unaligned */
    CHECK(avs_nonfinite(buf + 1, 3000, AVS_FLOAT_F32) == -1, "FLT_MAX is finite");
    int at[3] = {0, 1023, 2999};
    for (int k = 0; k < 3; k++) {
        float v = k == 1 ? -INFINITY : NAN;
        memcpy(buf + 1 + 4 * at[k], &v, 4);
        CHECK(avs_nonfinite(buf + 1, 3000, AVS_FLOAT_F32) == at[k], "f32 NaN/Inf at %d", at[k]);
        memcpy(buf + 1 + 4 * at[k], &x[at[k]], 4);
    }
    x[2048] = INFINITY;
    CHECK(avs_nonfinite_f32(x, 3000) == 2048, "host floats");
    uint16_t h[4] = {0x7bff, 0xfbff, 0x3c00, 0}; /* +-65504, 1, 0 */
    CHECK(avs_nonfinite(h, 4, AVS_FLOAT_F16) == -1, "fp16 max is finite");
    h[3] = 0x7c00;
    CHECK(avs_nonfinite(h, 4, AVS_FLOAT_F16) == 3, "fp16 Inf");
    uint16_t bf[2] = {0x7f7f, 0x7fc0};
    CHECK(avs_nonfinite(bf, 2, AVS_FLOAT_BF16) == 1, "bf16 NaN (its max finite is not)");
    double d[2] = {DBL_MAX, NAN};
    CHECK(avs_nonfinite(d, 2, AVS_FLOAT_F64) == 1, "f64 NaN");
    CHECK(avs_xxh3("abc", 3, 0) != avs_xxh3("abc", 3, 1), "the seed matters");
    free(x);
}

static const struct avs_cache_field F[2] = {{"logits", 1, {10, 0, 0, 0}}, {"stage", 3, {3, 4, 5, 0}}};

static long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) ? -1 : (long)sb.st_size;
}

static void flip(const char *path, long at, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1, "read %s", path);
    b ^= mask;
    CHECK(pwrite(fd, &b, 1, at) == 1, "write %s", path);
    close(fd);
}

/* Four records; the writer refuses bad values without writing. Returns the offsets. */
static void write_cache(const char *path, enum avs_cache_dtype dt, int64_t *off)
{
    struct avs_err err;
    struct avs_cache_writer *w = NULL;
    float a[10], b[60];
    const float *rec[2] = {a, b};
    CHECK(avs_cache_open_append(&w, path, F, 2, dt, &err) == 0, "%s", err.msg);
    if (!w)
        return;
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < 10; i++)
            a[i] = (float)(r * 10 + i);
        for (int i = 0; i < 60; i++)
            b[i] = (float)(r - i) * 0.25f;
        CHECK(avs_cache_append(w, rec, &off[r], &err) == 0, "%s", err.msg);
    }
    long size = file_size(path);
    float bad[3] = {NAN, INFINITY, 1e5f};
    for (int k = 0; k < 3; k++) {
        b[7] = bad[k];
        int rc = avs_cache_append(w, rec, NULL, &err);
        if (k < 2 || dt == AVS_CACHE_F16)
            CHECK(rc == -1 && strstr(err.msg, "tensor stage") && strstr(err.msg, "element 7") &&
                  strstr(err.msg, "not written"), "bad value %g refused: %s", bad[k], err.msg);
        else
            CHECK(rc == 0, "1e5 is fine in fp32: %s", err.msg);
    }
    CHECK(avs_cache_writer_records(w) == 4 + (dt == AVS_CACHE_F32), "refused records not counted");
    CHECK(dt == AVS_CACHE_F32 || file_size(path) == size, "nothing written for a refused record");
    avs_cache_close_writer(&w);
}

static int read_ok(const char *path, int64_t off, struct avs_err *err)
{
    struct avs_cache *c = NULL;
    float t[60];
    int rc = avs_cache_open(&c, path, err) ? -2 : avs_cache_read(c, off, 1, t, err);
    avs_cache_close(&c);
    return rc;
}

static void check_cache(enum avs_cache_dtype dt)
{
    char path[600];
    snprintf(path, sizeof path, "%s/c%d.bin", check_tmpdir(), (int)dt);
    int64_t off[4];
    struct avs_err err;
    write_cache(path, dt, off);
    int64_t rb = off[1] - off[0];
    for (int r = 0; r < 4; r++)
        CHECK(read_ok(path, off[r], &err) == 0, "sound record %d: %s", r, err.msg);
    /* every byte of record 1 (fields and checksum), one at a time: record 1 fails, 2 does not */
    int caught = 0;
    for (long i = 0; i < rb; i++) {
        flip(path, (long)off[1] + i, 0x20);
        caught += read_ok(path, off[1], &err) == -1 && strstr(err.msg, "record 1 (byte offset") &&
                  strstr(err.msg, "checksum") && strstr(err.msg, "--rebuild --set c");
        CHECK(read_ok(path, off[2], &err) == 0, "record 2 untouched: %s", err.msg);
        flip(path, (long)off[1] + i, 0x20);
    }
    CHECK(caught == rb, "%d of %lld flipped bytes caught", caught, (long long)rb);
    /* record 0's bytes, checksum included, copied over record 3 */
    uint8_t *rec = malloc((size_t)rb);
    int fd = open(path, O_RDWR);
    CHECK(pread(fd, rec, (size_t)rb, off[0]) == rb && pwrite(fd, rec, (size_t)rb, off[3]) == rb, "copy");
    CHECK(read_ok(path, off[3], &err) == -1 && strstr(err.msg, "checksum"), "misplaced record: %s", err.msg);
    /* a NaN in field "stage" element 4 of record 2, its checksum recomputed */
    int es = dt == AVS_CACHE_F16 ? 2 : 4;
    CHECK(pread(fd, rec, (size_t)rb, off[2]) == rb, "read record 2");
    memcpy(rec + 10 * es + 4 * es, dt == AVS_CACHE_F16 ? (const void *)"\x00\x7e" : "\x00\x00\xc0\x7f", (size_t)es);
    uint64_t s = avs_xxh3(rec, (size_t)rb - 8, (uint64_t)off[2]);
    for (int i = 0; i < 8; i++)
        rec[rb - 8 + i] = (uint8_t)(s >> (8 * i));
    CHECK(pwrite(fd, rec, (size_t)rb, off[2]) == rb, "write record 2");
    close(fd);
    CHECK(read_ok(path, off[2], &err) == -1 && strstr(err.msg, "tensor stage has a NaN/Inf at element 4") &&
          !strstr(err.msg, "checksum"), "planted NaN: %s", err.msg);
    flip(path, 8 + 12, 1); /* the field count: header checksum */
    CHECK(read_ok(path, off[0], &err) == -2 && strstr(err.msg, "header checksum mismatch"), "header: %s", err.msg);
    free(rec);
}

/* A tiny checkpoint-like file: two F32 tensors, format and config metadata. */
static struct avs_st_writer *small_writer(float *a, float *b)
{
    static const int64_t sa[2] = {2, 3}, sb[1] = {4};
    struct avs_st_writer *w = avs_st_writer_new();
    avs_st_writer_add(w, "w.weight", AVS_ST_F32, 2, sa, a);
    avs_st_writer_add(w, "w.bias", AVS_ST_F32, 1, sb, b);
    avs_st_writer_meta(w, "format", "avs-c3n");
    avs_st_writer_meta(w, "config", "{\"seed\": 7}");
    return w;
}

static int verify_file(const char *path, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = avs_st_open(path, &f, err) ? -2 : avs_ckpt_verify(f, err);
    avs_st_close(&f);
    return rc;
}

/* Offset just past the header JSON's closing brace (what follows, up to the data, is padding
 * that no reader looks at). */
static long json_end(const char *path, long *data0)
{
    FILE *fp = fopen(path, "rb");
    uint8_t le[8];
    long end = -1;
    if (!fp || fread(le, 1, 8, fp) != 8) {
        CHECK(0, "read %s", path);
    } else {
        long hlen = 0;
        for (int i = 7; i >= 0; i--)
            hlen = hlen << 8 | le[i];
        char *h = malloc((size_t)hlen);
        CHECK(fread(h, 1, (size_t)hlen, fp) == (size_t)hlen, "header");
        for (long i = hlen - 1; i >= 0 && end < 0; i--)
            if (h[i] == '}')
                end = 8 + i + 1;
        *data0 = 8 + hlen;
        free(h);
    }
    if (fp)
        fclose(fp);
    return end;
}

static void check_ckpt(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/ck.safetensors", check_tmpdir());
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {0.5f, -1, 2, 7};
    struct avs_err err;
    struct avs_st_writer *w = small_writer(a, b);
    uint64_t wd = avs_st_writer_digest(w, "checksum");
    CHECK(avs_ckpt_seal(w, path, &err) == 0 && avs_st_writer_save(w, path, &err) == 0, "%s", err.msg);
    avs_st_writer_free(&w);
    struct avs_st_file *f = NULL;
    CHECK(avs_st_open(path, &f, &err) == 0, "%s", err.msg);
    CHECK(f && avs_st_digest(f, "checksum") != wd, "the version entry is covered by the digest");
    CHECK(f && !strcmp(avs_st_meta(f, "version"), "2") && avs_ckpt_verify(f, &err) == 0, "sound: %s", err.msg);
    avs_st_close(&f);
    long data0 = 0, size = file_size(path), pad0 = json_end(path, &data0);
    int caught = 0, n = 0;
    for (long i = 0; i < size; i++) { /* every byte but the header's padding: caught or unreadable */
        if (i >= pad0 && i < data0)
            continue;
        flip(path, i, 0x01);
        int rc = verify_file(path, &err);
        caught += rc == -2 || (rc == -1 && strstr(err.msg, "checkpoint damaged"));
        n += rc == 0;
        flip(path, i, 0x01);
    }
    CHECK(n == 0, "%d flipped bytes went unnoticed (of %ld)", n, size - 8);
    CHECK(caught > 0, "flips caught");
    /* a NaN: refused at save, the old file stays; written unsealed with a valid checksum */
    b[2] = NAN;
    w = small_writer(a, b);
    CHECK(avs_ckpt_seal(w, path, &err) == -1 && strstr(err.msg, "tensor w.bias has a NaN/Inf at element 2"),
          "save refused: %s", err.msg);
    CHECK(verify_file(path, &err) == 0, "the previous file is intact: %s", err.msg);
    char sum[32];
    avs_st_writer_meta(w, "version", "2");
    snprintf(sum, sizeof sum, "xxh3:%016llx", (unsigned long long)avs_st_writer_digest(w, "checksum"));
    avs_st_writer_meta(w, "checksum", sum);
    CHECK(avs_st_writer_save(w, path, &err) == 0, "%s", err.msg);
    CHECK(verify_file(path, &err) == -1 && strstr(err.msg, "tensor w.bias has a NaN/Inf at element 2") &&
          strstr(err.msg, path), "NaN with a valid checksum refused: %s", err.msg);
    avs_st_writer_free(&w);
    /* versions */
    b[2] = 2;
    const char *ver[4] = {"1", "2", "3", NULL};
    int want[4] = {0, -1, -1, -1};
    for (int k = 0; k < 4; k++) {
        w = small_writer(a, b);
        if (ver[k])
            avs_st_writer_meta(w, "version", ver[k]);
        CHECK(avs_st_writer_save(w, path, &err) == 0, "%s", err.msg);
        avs_st_writer_free(&w);
        CHECK(verify_file(path, &err) == want[k], "version %s without a checksum: %s", ver[k] ? ver[k] : "none",
              want[k] ? err.msg : "loads");
    }
}

static void check_logits(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/a.logits", check_tmpdir());
    float x[2 * 3 * 2] = {0}, *back = NULL;
    int c = 0, w = 0, h = 0;
    struct avs_err err;
    x[9] = INFINITY;
    CHECK(avs_logits_write_c(path, x, 2, 3, 2, &err) == -1 && strstr(err.msg, "channel 1 pixel 3") &&
          strstr(err.msg, "not written") && access(path, F_OK) != 0, "write refused: %s", err.msg);
    x[9] = 0;
    CHECK(avs_logits_write_c(path, x, 2, 3, 2, &err) == 0, "%s", err.msg);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0 && pwrite(fd, "\x00\x00\xc0\x7f", 4, AVS_LOGITS_HEADER + 4 * 4) == 4, "plant a NaN");
    close(fd);
    CHECK(avs_logits_read_c(path, &back, &c, &w, &h, &err) == -1 && strstr(err.msg, path) &&
          strstr(err.msg, "tensor logits has a NaN/Inf at channel 0 pixel 4"), "read refused: %s", err.msg);
    free(back);
}

int main(void)
{
    check_scans();
    check_cache(AVS_CACHE_F32);
    check_cache(AVS_CACHE_F16);
    check_ckpt();
    check_logits();
    return check_summary("test_corrupt_units");
}
