/* tests/test_safetensors.c: core/safetensors: write/read round trip (F32, I64, metadata,
 * F16/BF16/F64 conversion), and clear errors on malformed, truncated and inconsistent files. */
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "tests/check.h"

/* A file from a raw header and data: u64 length, header, data. */
static void write_raw(const char *path, const char *header, const void *data, size_t n, int cut)
{
    FILE *f = fopen(path, "wb");
    uint64_t len = strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, len, f);
    fwrite(data, 1, n - (size_t)cut, f);
    fclose(f);
}

static void expect_error(const char *path, const char *needle, const char *what)
{
    struct avs_st_file *f = NULL;
    struct avs_err err = {0};
    int rc = avs_st_open(path, &f, &err);
    CHECK(rc == -1 && f == NULL, "%s: opened a bad file", what);
    CHECK(strstr(err.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg, needle);
    CHECK(strstr(err.msg, path) != NULL, "%s: message does not name the file", what);
}

int main(void)
{
    const char *tmp = check_tmpdir();
    char *path = avs_sprintf("%s/st_ok.safetensors", tmp);
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t cnt = 7, shape_a[2] = {2, 3}, shape_s[1] = {1};
    struct avs_st_writer *w = avs_st_writer_new();
    avs_st_writer_add(w, "layer.weight", AVS_ST_F32, 2, shape_a, a);
    avs_st_writer_add(w, "bn.num_batches_tracked", AVS_ST_I64, 0, shape_s, &cnt);
    avs_st_writer_meta(w, "format", "pt");
    struct avs_err err = {0};
    CHECK(avs_st_writer_save(w, path, &err) == 0, "save: %s", err.msg);
    avs_st_writer_free(&w);
    CHECK(w == NULL, "writer freed");

    struct avs_st_file *f = NULL;
    CHECK(avs_st_open(path, &f, &err) == 0, "open: %s", err.msg);
    if (f) {
        CHECK(f->n == 2, "2 tensors (metadata skipped): %d", f->n);
        const struct avs_st_tensor *t = avs_st_find(f, "layer.weight");
        float back[6] = {0};
        CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == AVS_ST_F32, "shape");
        CHECK(t && avs_st_read_f32(t, back, 6, &err) == 0 && !memcmp(a, back, sizeof a), "data");
        CHECK(t && avs_st_read_f32(t, back, 5, &err) == -1, "wrong count refused");
        const struct avs_st_tensor *c = avs_st_find(f, "bn.num_batches_tracked");
        int64_t v = 0;
        if (c)
            memcpy(&v, c->data, 8);
        CHECK(c && c->ndim == 0 && c->numel == 1 && c->dtype == AVS_ST_I64 && v == 7, "I64 scalar");
        CHECK(c && avs_st_read_f32(c, back, 1, &err) == -1, "I64 is not read as float");
        CHECK(avs_st_find(f, "nope") == NULL, "find missing");
        avs_st_close(&f);
        CHECK(f == NULL, "closed");
    }

    /* half, bfloat16 and double convert to float */
    uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7bff}; /* 1, -2, smallest subnormal, 65504 */
    char *p2 = avs_sprintf("%s/st_f16.safetensors", tmp);
    write_raw(p2, "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", h, 8, 0);
    CHECK(avs_st_open(p2, &f, &err) == 0, "open f16: %s", err.msg);
    if (f) {
        float out[4];
        CHECK(avs_st_read_f32(&f->t[0], out, 4, &err) == 0 && out[0] == 1.0f && out[1] == -2.0f &&
              out[2] == 5.9604644775390625e-08f && out[3] == 65504.0f, "f16 values %g %g %g %g",
              out[0], out[1], out[2], out[3]);
        avs_st_close(&f);
    }
    uint16_t bf[2] = {0x3f80, 0xc040}; /* 1, -3 */
    write_raw(p2, "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", bf, 4, 0);
    CHECK(avs_st_open(p2, &f, &err) == 0, "open bf16: %s", err.msg);
    if (f) {
        float out[2];
        CHECK(avs_st_read_f32(&f->t[0], out, 2, &err) == 0 && out[0] == 1.0f && out[1] == -3.0f, "bf16");
        avs_st_close(&f);
    }

    /* errors */
    char *bad = avs_sprintf("%s/st_bad.safetensors", tmp);
    float d[4] = {0};
    write_raw(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16, 4);
    expect_error(bad, "truncated", "data cut short");
    write_raw(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", d, 16, 0);
    expect_error(bad, "16 data bytes for a shape of 3", "size mismatch");
    write_raw(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,4]}}", d, 16, 0);
    expect_error(bad, "bad data_offsets", "reversed offsets");
    write_raw(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],"
                   "\"data_offsets\":[0,16]}}", d, 16, 0);
    expect_error(bad, "overflowing shape", "overflowing shape");
    write_raw(bad, "{\"x\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16, 0);
    expect_error(bad, "unsupported dtype Q4", "dtype");
    write_raw(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4]}", d, 16, 0);
    expect_error(bad, "does not parse", "malformed JSON");
    write_raw(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4]}}", d, 16, 0);
    expect_error(bad, "data_offsets", "missing offsets");
    FILE *fp = fopen(bad, "wb");
    unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    fwrite(huge, 1, 8, fp);
    fwrite("{}", 1, 2, fp);
    fclose(fp);
    expect_error(bad, "header length", "header longer than the file");
    fp = fopen(bad, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    expect_error(bad, "too short", "tiny file");
    char *missing = avs_sprintf("%s/none.safetensors", tmp);
    expect_error(missing, "cannot open", "missing file");
    free(path), free(p2), free(bad), free(missing);
    return check_summary("test_safetensors");
}
