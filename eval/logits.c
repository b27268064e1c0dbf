/* eval/logits.c: the ".logits" per-frame file (format in eval/eval.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/integrity.h"
#include "eval/eval.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int avs_logits_write_c(const char *path, const float *x, int c, int w, int h, struct avs_err *err)
{
    AVS_ASSERT(w > 0 && h > 0 && c > 0);
    size_t n = (size_t)c * (size_t)w * (size_t)h, len = AVS_LOGITS_HEADER + 4 * n;
    int64_t bad = avs_nonfinite_f32(x, n);
    if (bad >= 0)
        return avs_err_set(err, "%s: tensor logits has a NaN/Inf at channel %lld pixel %lld: not "
                           "written (the model diverged? check the run's checkpoint)", path,
                           (long long)(bad / ((int64_t)w * h)), (long long)(bad % ((int64_t)w * h)));
    uint8_t *buf = avs_calloc(len, 1);
    memcpy(buf, AVS_LOGITS_MAGIC, 8);
    put_u32(buf + 8, AVS_LOGITS_VERSION);
    put_u32(buf + 12, AVS_LOGITS_HEADER);
    put_u32(buf + 16, (uint32_t)w);
    put_u32(buf + 20, (uint32_t)h);
    put_u32(buf + 24, 1);
    put_u32(buf + 28, c == 1 ? 0 : (uint32_t)c); /* 0: the binary format as it always was */
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(buf + AVS_LOGITS_HEADER + 4 * i, u);
    }
    int rc = avs_fs_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int avs_logits_write(const char *path, const float *x, int w, int h, struct avs_err *err)
{
    return avs_logits_write_c(path, x, 1, w, h, err);
}

int avs_logits_read_c(const char *path, float **out, int *c_out, int *w_out, int *h_out,
                      struct avs_err *err)
{
    char *data = NULL;
    size_t len = 0;
    if (avs_fs_read_all(path, &data, &len, err))
        return -1;
    const uint8_t *p = (const uint8_t *)data;
    int rc = -1;
    if (len < AVS_LOGITS_HEADER || memcmp(p, AVS_LOGITS_MAGIC, 8)) {
        avs_err_set(err, "%s is not a logits file (no AVSLOGIT header)", path);
        goto out;
    }
    uint32_t ver = get_u32(p + 8), hdr = get_u32(p + 12), w = get_u32(p + 16),
             h = get_u32(p + 20), dtype = get_u32(p + 24), c = get_u32(p + 28);
    if (ver != AVS_LOGITS_VERSION || hdr != AVS_LOGITS_HEADER || dtype != 1) {
        avs_err_set(err, "%s: logits file version %u (header %u, dtype %u), this program reads "
                         "version %d float32: re-run avs-predict or use a newer avs-eval",
                    path, ver, hdr, dtype, AVS_LOGITS_VERSION);
        goto out;
    }
    c = c == 0 ? 1 : c;
    size_t n = (size_t)w * (size_t)h * (c <= 256 ? c : 1);
    if (c > 256 || w == 0 || h == 0 || w > 65535 || h > 65535 ||
        len != AVS_LOGITS_HEADER + 4 * n) {
        avs_err_set(err, "%s: %u channels of %ux%u logits need %zu bytes, file has %zu "
                         "(truncated?)", path, c, w, h, (size_t)AVS_LOGITS_HEADER + 4 * n, len);
        goto out;
    }
    int64_t bad = avs_nonfinite(p + AVS_LOGITS_HEADER, n, AVS_FLOAT_F32);
    if (bad >= 0) {
        avs_err_set(err, "%s: tensor logits has a NaN/Inf at channel %lld pixel %lld (a damaged "
                    "file, or a model that diverged): re-run avs-predict", path,
                    (long long)(bad / ((int64_t)w * h)), (long long)(bad % ((int64_t)w * h)));
        goto out;
    }
    float *x = avs_malloc(4 * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(p + AVS_LOGITS_HEADER + 4 * i);
        memcpy(&x[i], &u, 4);
    }
    *out = x;
    *c_out = (int)c;
    *w_out = (int)w;
    *h_out = (int)h;
    rc = 0;
out:
    free(data);
    return rc;
}

int avs_logits_read(const char *path, float **out, int *w_out, int *h_out, struct avs_err *err)
{
    float *x = NULL;
    int c = 0, w = 0, h = 0;
    if (avs_logits_read_c(path, &x, &c, &w, &h, err))
        return -1;
    if (c != 1) {
        free(x);
        return avs_err_set(err, "%s has %d channels (class logits): binary evaluation needs one "
                                "(for AVSS use avs-eval --semantic)", path, c);
    }
    *out = x;
    *w_out = w;
    *h_out = h;
    return 0;
}
