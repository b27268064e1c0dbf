/* tests/test_store.c: store/store.h on a real store made here (avs-synth on the fixture media,
 * 2 MS3 clips x 3 s at 96x64, avs-ingest --avsbench with every mask):
 *   - frames: avs_store_frame equals, bit for bit, the normalisation the programs used before
 *     the store module (features/run_video.c's avs_feat_norm_frame and fine-tuning's
 *     train_frame, copied below as the reference) and (v/255 - mean)/std in double (2.5e-7);
 *     flipped = mirrored; avs_store_frame_rgb + avs_store_norm = avs_store_frame (fine-tuning
 *     without jitter = avs-features' input); gray, gray+alpha and RGBA PNGs;
 *   - wave: the seconds' WAVs joined (libsndfile's floats), silence for a NULL path, a short
 *     file zero-padded, another rate refused naming the file;
 *   - masks: value >= 128 -> 1 on the ingested masks and on a PNG of edge values, placement
 *     as float with flip, NULL = zeros;
 *   - errors name the file and the fix: frame and mask of another size, a second without a
 *     frame, a video missing seconds in the index (s untouched).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "core/wav.h"
#include "eval/eval.h"
#include "ingest/ingest.h"
#include "store/store.h"
#include "synth/synth.h"
#include "tests/check.h"

#define MEDIA "tests/fixtures/synth/media"
#define W 96
#define H 64
#define SECONDS 3

static const char *scratch; /* this run's own folder (under $AVS_TMP or /tmp) */

/* ---- the reference: the normalisations of the programs before store/ (verbatim) ---- */

static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};

/* features/run_video.c avs_feat_norm_frame */
static void old_norm_frame(float *dst, const uint8_t *px, int c, int h, int w, int flip)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px + ((size_t)y * w + (flip ? w - 1 - x : x)) * c;
            for (int ch = 0; ch < 3; ch++) {
                int v = c >= 3 ? p[ch] : p[0];
                dst[((size_t)ch * h + y) * w + x] = ((float)v / 255.0f - MEAN[ch]) / STD[ch];
            }
        }
}

/* train/finetune.c train_frame without the jitter */
static void old_train_frame(float *dst, float *rgb, const uint8_t *px, int c, int h, int w,
                            int flip)
{
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++)
            rgb[ch * n + i] = (float)px[i * c + (c >= 3 ? ch : 0)] / 255.0f;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                dst[((size_t)ch * h + y) * w + x] =
                    (rgb[(ch * (size_t)h + y) * w + (flip ? w - 1 - x : x)] - MEAN[ch]) / STD[ch];
}

/* ---- the fixture store ---- */

static char *make_store(const char *tmp)
{
    struct avs_err err = {{0}};
    struct avs_synth_media *m = NULL;
    char *clips = avs_fs_join(tmp, "clips"), *root = avs_fs_join(tmp, "store");
    if (avs_synth_media_load(MEDIA, &m, &err)) {
        CHECK(0, "fixture media: %s", err.msg);
        return NULL;
    }
    struct avs_synth_opts so;
    avs_synth_opts_default(&so);
    so.subset = AVS_SYNTH_MS3, so.videos = 2, so.seconds = SECONDS, so.width = W, so.height = H;
    so.seed = 11, so.jobs = 1;
    CHECK(avs_synth_run(clips, m, &so, &err) == 0, "synth: %s", err.msg);
    avs_synth_media_free(&m);
    struct avs_ingest_plan plan = {0};
    struct avs_ingest_opts io = {.root = root, .jobs = 1, .dec = {.out_w = W, .out_h = H}};
    struct avs_ingest_stats st;
    CHECK(avs_ingest_plan_avsbench(&plan, clips, &err) == 0, "plan: %s", err.msg);
    CHECK(avs_ingest_run(&io, &plan, &st, &err) == 0 && st.ingested == 2, "ingest: %s", err.msg);
    avs_ingest_plan_free(&plan);
    free(clips);
    return root;
}

/* The row ids of the store's videos, in uid order. */
static int video_ids(sqlite3 *db, int64_t *id, int max)
{
    sqlite3_stmt *st;
    struct avs_err err;
    int n = 0;
    if (avs_db_prepare(db, "SELECT id FROM videos WHERE status = 'ok' ORDER BY uid", &st, &err))
        return 0;
    while (n < max && sqlite3_step(st) == SQLITE_ROW)
        id[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* ---- frames ---- */

/* One store frame through every path against the references. */
static void check_frame(const char *root, const char *rel)
{
    struct avs_err err = {{0}};
    char *p = avs_fs_join(root, rel);
    struct avs_image img = {0};
    CHECK(avs_png_read(p, &img, NULL, &err) == 0 && img.c == 3, "%s", err.msg);
    size_t n = (size_t)3 * H * W;
    float *x = malloc(n * sizeof(float)), *xf = malloc(n * sizeof(float));
    float *ref = malloc(n * sizeof(float)), *rgb = malloc(n * sizeof(float));
    float *y = malloc(n * sizeof(float));
    for (int flip = 0; flip < 2; flip++) {
        float *dst = flip ? xf : x;
        CHECK(avs_store_frame(dst, root, rel, H, W, flip, &err) == 0, "%s", err.msg);
        old_norm_frame(ref, img.data, img.c, H, W, flip);
        CHECK(!memcmp(dst, ref, n * sizeof(float)), "%s flip %d: not avs_feat_norm_frame's bits",
              rel, flip);
        old_train_frame(ref, rgb, img.data, img.c, H, W, flip);
        CHECK(!memcmp(dst, ref, n * sizeof(float)), "%s flip %d: not train_frame's bits", rel,
              flip);
        CHECK(avs_store_frame_rgb(rgb, root, rel, H, W, &err) == 0, "%s", err.msg);
        avs_store_norm(y, rgb, H, W, flip);
        CHECK(!memcmp(dst, y, n * sizeof(float)), "%s flip %d: frame_rgb + norm differs", rel,
              flip);
    }
    int bad = 0, mirror = 0;
    for (int c = 0; c < 3; c++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++) {
                size_t i = ((size_t)c * H + yy) * W + xx;
                double v = img.data[((size_t)yy * W + xx) * 3 + c];
                double want = (v / 255.0 - (double)MEAN[c]) / (double)STD[c];
                bad += fabs(x[i] - want) > 2.5e-7 * fmax(fabs(want), 1.0);
                mirror += xf[i] != x[((size_t)c * H + yy) * W + (W - 1 - xx)];
            }
    CHECK(bad == 0, "%s: %d elements off the double reference", rel, bad);
    CHECK(mirror == 0, "%s: %d flipped elements are not the mirror", rel, mirror);
    avs_image_free(&img);
    free(p), free(x), free(xf), free(ref), free(rgb), free(y);
}

/* A frame as gray, gray+alpha and RGBA PNGs: gray repeated, alpha dropped. */
static void check_channels(const char *root, const char *rel)
{
    struct avs_err err = {{0}};
    char *p = avs_fs_join(root, rel);
    struct avs_image rgb = {0};
    CHECK(avs_png_read(p, &rgb, NULL, &err) == 0, "%s", err.msg);
    size_t n = (size_t)3 * H * W, px = (size_t)H * W;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    for (int c = 1; c <= 4; c++) {
        if (c == 3)
            continue;
        struct avs_image img = {0};
        avs_image_alloc(&img, W, H, c);
        for (size_t i = 0; i < px; i++)
            for (int ch = 0; ch < c; ch++)
                img.data[i * c + ch] = c == 4 ? (ch < 3 ? rgb.data[i * 3 + ch] : (uint8_t)(i * 7))
                                              : ch == 0 ? rgb.data[i * 3 + 1] : (uint8_t)(i * 3);
        char name[32];
        snprintf(name, sizeof name, "frame_c%d.png", c);
        char *q = avs_fs_join(scratch, name);
        CHECK(avs_png_write(q, &img, 1, &err) == 0, "%s", err.msg);
        CHECK(avs_store_frame(a, scratch, name, H, W, 1, &err) == 0, "%s", err.msg);
        if (c == 4) {
            CHECK(avs_store_frame(b, root, rel, H, W, 1, &err) == 0, "%s", err.msg);
            CHECK(!memcmp(a, b, n * sizeof(float)), "RGBA: alpha must be dropped");
        } else {
            int bad = 0;
            for (int ch = 0; ch < 3; ch++)
                for (int yy = 0; yy < H; yy++)
                    for (int xx = 0; xx < W; xx++) {
                        float v = (float)img.data[((size_t)yy * W + (W - 1 - xx)) * c] / 255.0f;
                        bad += a[((size_t)ch * H + yy) * W + xx] != (v - MEAN[ch]) / STD[ch];
                    }
            CHECK(bad == 0, "%d channels: gray not repeated (%d elements)", c, bad);
        }
        avs_image_free(&img);
        free(q);
    }
    avs_image_free(&rgb);
    free(p), free(a), free(b);
}

static void check_frame_errors(const char *root, const char *rel)
{
    struct avs_err err = {{0}};
    float *x = malloc((size_t)3 * 2 * H * 2 * W * sizeof(float));
    CHECK(avs_store_frame(x, root, rel, 2 * H, 2 * W, 0, &err) == -1 && strstr(err.msg, rel) &&
              strstr(err.msg, "96x64") && strstr(err.msg, "re-ingest with --size 192x128"),
          "wrong size: %s", err.msg);
    CHECK(avs_store_frame_rgb(x, root, rel, H, 2 * W, &err) == -1 && strstr(err.msg, rel),
          "wrong size (rgb): %s", err.msg);
    CHECK(avs_store_frame(x, root, NULL, H, W, 0, &err) == -1 && strstr(err.msg, "re-ingest"),
          "no frame: %s", err.msg);
    CHECK(avs_store_frame(x, root, "frames/none/1.png", H, W, 0, &err) == -1 &&
              strstr(err.msg, "frames/none/1.png"),
          "missing file: %s", err.msg);
    free(x);
}

/* ---- waves ---- */

static void check_wave(const char *root, const struct avs_store_seconds *s)
{
    struct avs_err err = {{0}};
    size_t n = (size_t)s->n * AVS_STORE_RATE;
    float *w = malloc(n * sizeof(float));
    CHECK(avs_store_wave(w, root, s->audio, s->n, &err) == 0, "%s", err.msg);
    int bad = 0;
    for (int k = 0; k < s->n; k++) {
        char *p = avs_fs_join(root, s->audio[k]);
        float *x = NULL;
        int64_t m = 0;
        int rate = 0;
        CHECK(avs_wav_read_float(p, &x, &m, &rate, &err) == 0 && m == AVS_STORE_RATE, "%s",
              err.msg);
        if (x)
            bad += memcmp(w + (size_t)k * AVS_STORE_RATE, x, AVS_STORE_RATE * sizeof(float)) != 0;
        free(x), free(p);
    }
    CHECK(bad == 0, "%d seconds of the wave differ from their WAVs", bad);
    /* second 2 silent (NULL), second 3 a short file, then another rate */
    int16_t half[AVS_STORE_RATE / 2];
    for (int i = 0; i < AVS_STORE_RATE / 2; i++)
        half[i] = (int16_t)(i % 200 * 100 - 10000);
    char *sp = avs_fs_join(scratch, "short.wav"), *rp = avs_fs_join(scratch, "r8k.wav");
    CHECK(avs_wav_write_s16(sp, AVS_STORE_RATE, half, AVS_STORE_RATE / 2, &err) == 0, "%s",
          err.msg);
    CHECK(avs_wav_write_s16(rp, 8000, half, 8000, &err) == 0, "%s", err.msg);
    float *w0 = malloc(AVS_STORE_RATE * sizeof(float));
    memcpy(w0, w, AVS_STORE_RATE * sizeof(float)); /* second 1 of the store's wave */
    char *rel[3] = {"first.wav", NULL, "short.wav"};
    CHECK(avs_store_wave(w, scratch, rel, 1, &err) == -1 && strstr(err.msg, "first.wav"),
          "missing file: %s", err.msg);
    char *src = avs_fs_join(root, s->audio[0]), *dst = avs_fs_join(scratch, "first.wav");
    char *data = NULL;
    size_t len = 0;
    CHECK(avs_fs_read_all(src, &data, &len, &err) == 0 &&
              avs_fs_write_atomic(dst, data, len, &err) == 0,
          "%s", err.msg);
    CHECK(avs_store_wave(w, scratch, rel, 3, &err) == 0, "%s", err.msg);
    CHECK(!memcmp(w, w0, AVS_STORE_RATE * sizeof(float)), "second 1 from a copy of its file");
    int silent = 1, tail = 1, head = 1;
    for (size_t i = 0; i < AVS_STORE_RATE; i++)
        silent &= w[AVS_STORE_RATE + i] == 0.0f;
    for (size_t i = 0; i < AVS_STORE_RATE / 2; i++) {
        head &= w[2 * AVS_STORE_RATE + i] == (float)half[i] / 32768.0f;
        tail &= w[2 * AVS_STORE_RATE + AVS_STORE_RATE / 2 + i] == 0.0f;
    }
    CHECK(silent && head && tail, "NULL second silent %d, short file's samples %d, zero tail %d",
          silent, head, tail);
    rel[2] = "r8k.wav";
    CHECK(avs_store_wave(w, scratch, rel, 3, &err) == -1 && strstr(err.msg, "r8k.wav") &&
              strstr(err.msg, "8000 Hz") && strstr(err.msg, "re-ingest"),
          "other rate: %s", err.msg);
    free(w), free(w0), free(sp), free(rp), free(src), free(dst), free(data);
}

/* ---- masks ---- */

static void check_masks(const char *root, const struct avs_store_seconds *s)
{
    struct avs_err err = {{0}};
    int have = 0;
    for (int k = 0; k < s->n; k++) {
        if (!s->mask[k])
            continue;
        have++;
        char *p = avs_fs_join(root, s->mask[k]);
        uint8_t *m = NULL, *raw = NULL;
        int w = 0, h = 0;
        CHECK(avs_store_mask_read(&m, p, H, W, &err) == 0, "%s", err.msg);
        CHECK(avs_eval_png_read(p, AVS_EVAL_GT, &raw, &w, &h, &err) == 0, "%s", err.msg);
        int bad = 0, fg = 0;
        for (size_t i = 0; m && raw && i < (size_t)H * W; i++) {
            bad += m[i] != (raw[i] >= 128);
            fg += m[i];
        }
        CHECK(bad == 0 && fg > 0, "%s: %d pixels not (value >= 128), %d foreground", p, bad, fg);
        free(m), free(raw), free(p);
    }
    CHECK(have == s->n, "MS3: every second has a mask (%d of %d)", have, s->n);
    /* edge values: 0, 127 -> 0; 128, 255 -> 1 */
    struct avs_image img = {0};
    avs_image_alloc(&img, W, H, 1);
    static const uint8_t vals[4] = {0, 127, 128, 255};
    for (size_t i = 0; i < (size_t)H * W; i++)
        img.data[i] = vals[(i * 5 + i / W) % 4];
    char *q = avs_fs_join(scratch, "mask.png");
    CHECK(avs_png_write(q, &img, 1, &err) == 0, "%s", err.msg);
    uint8_t *m = NULL;
    CHECK(avs_store_mask_read(&m, q, H, W, &err) == 0, "%s", err.msg);
    int bad = 0, mirror = 0, zeros = 1;
    float *f = malloc((size_t)H * W * sizeof(float));
    for (size_t i = 0; m && i < (size_t)H * W; i++)
        bad += m[i] != (img.data[i] >= 128);
    CHECK(bad == 0, "threshold 128: %d pixels wrong", bad);
    if (m) {
        avs_store_mask_place(f, m, H, W, 1);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                mirror += f[(size_t)y * W + x] != (float)m[(size_t)y * W + W - 1 - x];
        avs_store_mask_place(f, m, H, W, 0);
        for (size_t i = 0; i < (size_t)H * W; i++)
            mirror += f[i] != (float)m[i];
    }
    CHECK(mirror == 0, "placement: %d pixels wrong", mirror);
    avs_store_mask_place(f, NULL, H, W, 1);
    for (size_t i = 0; i < (size_t)H * W; i++)
        zeros &= f[i] == 0.0f;
    CHECK(zeros, "no mask: zeros");
    uint8_t *keep = (uint8_t *)"x";
    CHECK(avs_store_mask_read(&keep, q, H / 2, W, &err) == -1 && strstr(err.msg, q) &&
              strstr(err.msg, "96x64") && strstr(err.msg, "--size") && keep[0] == 'x',
          "wrong size: %s", err.msg);
    avs_image_free(&img);
    free(q), free(m), free(f);
}

/* ---- the index ---- */

static void check_seconds(sqlite3 *db, int64_t vid)
{
    struct avs_err err = {{0}};
    struct avs_store_seconds s = {0}, keep = {.n = -7};
    CHECK(avs_store_seconds(&keep, db, vid, SECONDS + 1, &err) == -1 && keep.n == -7 &&
              strstr(err.msg, "re-ingest"),
          "missing seconds: %s", err.msg);
    CHECK(avs_store_seconds(&s, db, vid, 2, &err) == 0 && s.n == 2 && s.frame[1] && s.mask[1],
          "first 2 seconds: %s", err.msg);
    avs_store_seconds_free(&s);
    avs_store_seconds_free(&s);
    char *rel[SECONDS + 1];
    CHECK(avs_store_masks(rel, db, vid, SECONDS + 1, &err) == 0 && rel[0] && rel[SECONDS - 1] &&
              !rel[SECONDS],
          "mask paths: %s", err.msg);
    for (int k = 0; k <= SECONDS; k++)
        free(rel[k]);
}

int main(void)
{
    char *tmp = avs_sprintf("%s/test_store.XXXXXX", check_tmpdir());
    scratch = mkdtemp(tmp);
    CHECK(scratch != NULL, "mkdtemp %s", tmp);
    char *root = scratch ? make_store(scratch) : NULL;
    if (!root) {
        free(tmp);
        return check_summary("test_store");
    }
    char *dbp = avs_fs_join(root, "avs.db");
    sqlite3 *db = NULL;
    struct avs_err err = {{0}};
    CHECK(avs_db_open(dbp, &db, &err) == 0, "%s", err.msg);
    int64_t ids[4];
    int nv = db ? video_ids(db, ids, 4) : 0;
    CHECK(nv == 2, "2 videos in the store (%d)", nv);
    for (int v = 0; v < nv; v++) {
        struct avs_store_seconds s = {0};
        CHECK(avs_store_seconds(&s, db, ids[v], SECONDS, &err) == 0, "%s", err.msg);
        for (int k = 0; k < s.n; k++)
            check_frame(root, s.frame[k]);
        if (v == 0 && s.n) {
            check_channels(root, s.frame[0]);
            check_frame_errors(root, s.frame[0]);
            check_wave(root, &s);
            check_seconds(db, ids[v]);
        }
        check_masks(root, &s);
        avs_store_seconds_free(&s);
    }
    avs_db_close(&db);
    free(dbp), free(root), free(tmp);
    return check_summary("test_store");
}
