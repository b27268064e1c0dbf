/* bench/cache_verify.c: what verifying a feature cache costs (features/cache.h: XXH3 checksum
 * and NaN/Inf scan of every record), against reading the same records as training does.
 *
 *   cache_verify DIR SIDE RECORDS f32|f16
 *
 * Writes DIR/bench.bin with the field layout avs-features gives a PVTv2-b0 + VGGish set at
 * SIDE x SIDE frames (stage maps 64/128/320/512 channels at SIDE/4..SIDE/32, logits, Grad-CAM
 * weights, log-mel), RECORDS records of varied values; then times, on one thread:
 *   verify_warm  avs_cache_verify of every record, file in the page cache
 *   read_warm    avs_cache_read of every field of every record (already verified: the copy only)
 *   verify_cold  the verify again after the file's pages were dropped (posix_fadvise), i.e.
 *                bounded by the disk
 * and prints one line of key=value (seconds, GB/s). */
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "features/cache.h"

static int set_fields(struct avs_cache_field *f, int side)
{
    static const int C[4] = {64, 128, 320, 512};
    int n = 0;
    struct avs_cache_field one[4] = {{"logmel", 2, {96, 64}}, {"audio_emb", 1, {128}},
                                     {"audio_logits", 1, {527}}, {"vlogits", 1, {1000}}};
    for (int i = 0; i < 4; i++)
        f[n++] = one[i];
    for (int s = 0; s < 4; s++) {
        memset(&f[n], 0, sizeof f[n]);
        snprintf(f[n].name, sizeof f[n].name, "stage%d", s + 1);
        f[n].ndim = 3, f[n].shape[0] = C[s], f[n].shape[1] = f[n].shape[2] = side >> (s + 2);
        n++;
    }
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 4; s++) {
            memset(&f[n], 0, sizeof f[n]);
            snprintf(f[n].name, sizeof f[n].name, v ? "gradcam_v%d" : "gradcam%d", s + 1);
            f[n].ndim = 1, f[n].shape[0] = C[s];
            n++;
        }
    return n;
}

static int write_cache(const char *path, const struct avs_cache_field *f, int nf,
                       enum avs_cache_dtype dt, int records, struct avs_err *err)
{
    struct avs_cache_writer *w;
    if (avs_cache_open_append(&w, path, f, nf, dt, err))
        return -1;
    float *data[32];
    for (int i = 0; i < nf; i++) {
        size_t n = avs_cache_field_numel(&f[i]);
        data[i] = avs_malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++)
            data[i][k] = (float)((k * 2654435761u + (unsigned)i) % 2000) * 1e-3f - 1.0f;
    }
    int rc = 0;
    for (int r = 0; r < records && rc == 0; r++) {
        data[0][r % 96] = (float)r; /* every record differs */
        rc = avs_cache_append(w, (const float *const *)data, NULL, err);
    }
    rc = rc ? rc : avs_cache_sync(w, err);
    avs_cache_close_writer(&w);
    for (int i = 0; i < nf; i++)
        free(data[i]);
    return rc;
}

static double verify_all(const char *path, struct avs_err *err)
{
    struct avs_cache *c;
    double t0 = avs_now();
    if (avs_cache_open(&c, path, err))
        return -1;
    for (int64_t r = 0; r < c->n_records; r++)
        if (avs_cache_verify(c, (int64_t)(c->data_offset + (uint64_t)r * c->record_bytes), err)) {
            avs_cache_close(&c);
            return -1;
        }
    double t = avs_now() - t0;
    avs_cache_close(&c);
    return t;
}

static double read_all(const char *path, struct avs_err *err)
{
    struct avs_cache *c;
    if (avs_cache_open(&c, path, err))
        return -1;
    float *dst = avs_malloc(1 << 22);
    for (int64_t r = 0; r < c->n_records; r++) /* verified first, outside the timing */
        avs_cache_verify(c, (int64_t)(c->data_offset + (uint64_t)r * c->record_bytes), err);
    double t0 = avs_now();
    for (int64_t r = 0; r < c->n_records; r++)
        for (int f = 0; f < c->n_fields; f++)
            avs_cache_read(c, (int64_t)(c->data_offset + (uint64_t)r * c->record_bytes), f, dst, err);
    double t = avs_now() - t0;
    free(dst);
    avs_cache_close(&c);
    return t;
}

static void drop_pages(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: cache_verify DIR SIDE RECORDS f32|f16\n");
        return 1;
    }
    struct avs_cache_field f[32];
    int side = atoi(argv[2]), records = atoi(argv[3]), nf = set_fields(f, side);
    enum avs_cache_dtype dt = strcmp(argv[4], "f16") ? AVS_CACHE_F32 : AVS_CACHE_F16;
    char *path = avs_sprintf("%s/bench.bin", argv[1]);
    struct avs_err err;
    unlink(path);
    if (write_cache(path, f, nf, dt, records, &err)) {
        fprintf(stderr, "cache_verify: %s\n", err.msg);
        return 1;
    }
    struct avs_cache *c;
    if (avs_cache_open(&c, path, &err))
        return fprintf(stderr, "cache_verify: %s\n", err.msg), 1;
    double gb = (double)c->len / 1e9, rec_mb = (double)c->record_bytes / 1e6;
    avs_cache_close(&c);
    verify_all(path, &err); /* pages in */
    double vw = verify_all(path, &err), rw = read_all(path, &err);
    drop_pages(path);
    double vc = verify_all(path, &err);
    printf("side=%d dtype=%s records=%d record_MB=%.3f file_GB=%.3f verify_warm_s=%.3f "
           "verify_warm_GBps=%.2f read_warm_s=%.3f verify_cold_s=%.3f verify_cold_GBps=%.2f\n",
           side, argv[4], records, rec_mb, gb, vw, gb / vw, rw, vc, gb / vc);
    unlink(path);
    free(path);
    return 0;
}
