/* test_synth: avs-synth's library on the fixture media (tests/fixtures/synth/media, made by
 * tests/gen/synth_media.py): frame rule, deterministic plans and splits, exact masks (mask =
 * composited alpha >= 0.5, object colour inside, occlusion by silent objects), MS3 sound
 * switching (per-layer tracks and the mix vs the schedule), and a written clip (mp4 streams,
 * frame count, byte-identical files for the same seed). No avs-ingest needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "check.h"
#include "core/fs.h"
#include "synth/synth.h"

#define MEDIA "tests/fixtures/synth/media"

static int cat_index(const struct avs_synth_media *m, const char *name)
{
    for (int i = 0; i < m->n_categories; i++)
        if (!strcmp(m->categories[i].name, name)) return i;
    return -1;
}

static void test_frame_rule(void)
{
    CHECK(avs_synth_frame_for_second(1, 25) == 23, "k=1 25fps");
    CHECK(avs_synth_frame_for_second(2, 25) == 48, "k=2 25fps");
    CHECK(avs_synth_frame_for_second(1, 30) == 28, "k=1 30fps");
    CHECK(avs_synth_frame_for_second(5, 30) == 148, "k=5 30fps");
    CHECK(avs_synth_frame_for_second(1, 24) == 22, "k=1 24fps");
    CHECK(avs_synth_frame_for_second(3, 29.97) == 88, "k=3 29.97fps (F=30)");
}

static void test_media(const struct avs_synth_media *m)
{
    CHECK(m->n_categories == 3, "categories %d", m->n_categories);
    CHECK(m->n_backgrounds == 1, "backgrounds %d", m->n_backgrounds);
    int r = cat_index(m, "red_disc");
    CHECK(r >= 0, "red_disc present");
    if (r < 0) return;
    const struct avs_synth_category *c = &m->categories[r];
    CHECK(c->n_objects == 1 && c->objects[0].c == 4 && c->objects[0].w == 64, "disc RGBA 64");
    CHECK(c->n_sounds == 1 && llabs(c->sounds[0].n - 22050) < 64, "tone 0.5 s at 44.1 kHz: %lld",
          (long long)c->sounds[0].n);
    CHECK(c->imagenet_index == -1 && c->audioset_index == -1, "no class indices");
}

static void test_plan(const struct avs_synth_media *m)
{
    struct avs_synth_opts o;
    avs_synth_opts_default(&o);
    o.videos = 20;
    o.seed = 42;
    struct avs_synth_clip *a = NULL, *b = NULL, *c = NULL;
    struct avs_err err = {{0}};
    CHECK(avs_synth_plan(m, &o, &a, &err) == 0, "plan: %s", err.msg);
    CHECK(avs_synth_plan(m, &o, &b, &err) == 0, "plan again: %s", err.msg);
    CHECK(memcmp(a, b, sizeof(*a) * 20) == 0, "same seed, same plan");
    o.seed = 43;
    CHECK(avs_synth_plan(m, &o, &c, &err) == 0, "plan seed 43");
    CHECK(strcmp(a[0].uid, c[0].uid) != 0, "other seed, other uid");
    int split[3] = {0}, per_cat[3] = {0};
    for (int i = 0; i < 20; i++) {
        split[a[i].split]++;
        per_cat[a[i].layers[0].category]++;
        CHECK(a[i].n_layers == 1 && strlen(a[i].uid) == 11, "S4 clip %d", i);
        CHECK(a[i].fps == 25 || a[i].fps == 30, "fps %d", a[i].fps);
        for (int k = 0; k < 5; k++) CHECK(a[i].sounding[k] == 1, "S4 always heard");
    }
    CHECK(split[0] == 14 && split[1] == 3 && split[2] == 3, "splits %d/%d/%d", split[0],
          split[1], split[2]);
    CHECK(per_cat[0] >= 6 && per_cat[1] >= 6 && per_cat[2] >= 6, "categories balanced");
    free(a);
    free(b);
    free(c);

    o.subset = AVS_SYNTH_MS3;
    o.seconds = 5;
    CHECK(avs_synth_plan(m, &o, &a, &err) == 0, "plan ms3: %s", err.msg);
    for (int i = 0; i < 20; i++) {
        int switches = 0;
        unsigned heard = 0;
        for (int k = 0; k < 5; k++) {
            heard |= a[i].sounding[k];
            CHECK(a[i].sounding[k] != 0, "someone heard in every second");
            if (k) switches += a[i].sounding[k] != a[i].sounding[k - 1];
        }
        CHECK(switches >= 1, "clip %d: the sounding object changes", i);
        CHECK(a[i].n_layers >= 2, "clip %d: %d objects", i, a[i].n_layers);
        for (int l = 0; l < a[i].n_layers; l++)
            if (heard >> l & 1)
                CHECK(strstr(a[i].label, m->categories[a[i].layers[l].category].name) != NULL,
                      "label %s names heard objects", a[i].label);
    }
    free(a);
}

/* A hand-made clip: red disc (back) and blue square (front) overlapping. */
static struct avs_synth_clip overlap_clip(const struct avs_synth_media *m)
{
    struct avs_synth_clip c;
    memset(&c, 0, sizeof(c));
    snprintf(c.uid, sizeof(c.uid), "testclip000");
    c.fps = 25;
    c.seconds = 3;
    c.width = 96;
    c.height = 64;
    c.bg_zoom0 = c.bg_zoom1 = 1;
    c.bg_cx0 = c.bg_cx1 = c.bg_cy0 = c.bg_cy1 = 0.5f;
    c.n_layers = 2;
    struct avs_synth_layer *r = &c.layers[0], *b = &c.layers[1];
    r->category = cat_index(m, "red_disc");
    r->x0 = r->x1 = 40;
    r->y0 = r->y1 = 32;
    r->h0 = r->h1 = 40;
    b->category = cat_index(m, "blue_square");
    b->x0 = 60;
    b->x1 = 64;
    b->y0 = b->y1 = 32;
    b->h0 = 24;
    b->h1 = 28;
    c.sounding[0] = 1; /* red heard */
    c.sounding[1] = 2; /* blue heard */
    c.sounding[2] = 3; /* both */
    c.noise = 0;
    return c;
}

static void test_render(const struct avs_synth_media *m)
{
    struct avs_synth_clip c = overlap_clip(m);
    size_t n = (size_t)c.width * c.height;
    uint8_t *rgb = malloc(n * 3), *rgb2 = malloc(n * 3), *mr = malloc(n), *mb = malloc(n),
            *mall = malloc(n);
    float *alpha = malloc(n * sizeof(float));
    avs_synth_render_frame(m, &c, 23, rgb, mr, 1, alpha);
    avs_synth_render_frame(m, &c, 23, rgb2, mb, 2, NULL);
    avs_synth_render_frame(m, &c, 23, rgb2, mall, 3, NULL);
    CHECK(memcmp(rgb, rgb2, n * 3) == 0, "rendering is deterministic");
    int bad_alpha = 0, red_in = 0, red_n = 0, blue_n = 0, both_bad = 0, overlap = 0;
    for (size_t i = 0; i < n; i++) {
        bad_alpha += (mr[i] == 255) != (alpha[i] >= 0.5f);
        const uint8_t *p = rgb + 3 * i;
        if (mr[i]) {
            red_n++;
            red_in += p[0] - (p[1] + p[2]) / 2 > 30; /* redder than grey even at alpha 0.5 */
        }
        if (mb[i]) {
            blue_n++;
            both_bad += !(p[2] - (p[0] + p[1]) / 2 > 30);
        }
        overlap += mr[i] && mb[i];
        both_bad += (mall[i] != 0) != (mr[i] || mb[i]);
    }
    CHECK(bad_alpha == 0, "mask == (alpha >= 0.5): %d pixels differ", bad_alpha);
    CHECK(red_n > 800 && red_in == red_n, "red inside the red mask: %d of %d",
          red_in, red_n);
    CHECK(blue_n > 400, "blue mask %d px", blue_n);
    CHECK(overlap == 0, "the front square hides the disc in the disc's mask: %d", overlap);
    CHECK(both_bad == 0, "blue colour / union of masks: %d", both_bad);
    /* Without the square the disc mask is a full disc of radius ~ 40/64*30 = 18.75 px. */
    struct avs_synth_clip solo = c;
    solo.n_layers = 1;
    avs_synth_render_frame(m, &solo, 23, rgb2, mb, 1, NULL);
    int full = 0;
    for (size_t i = 0; i < n; i++) full += mb[i] != 0;
    CHECK(fabs(full - M_PI * 18.75 * 18.75) < 60, "disc area %d vs %.0f", full,
          M_PI * 18.75 * 18.75);
    CHECK(full > red_n + 50, "occlusion removed pixels: %d vs %d", full, red_n);
    free(rgb);
    free(rgb2);
    free(mr);
    free(mb);
    free(mall);
    free(alpha);
}

static double goertzel(const float *x, int64_t n, int stride, double freq)
{
    double w = 2 * M_PI * freq / AVS_SYNTH_RATE, cw = 2 * cos(w), s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = x[i * stride] + cw * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    return (s1 * s1 + s2 * s2 - cw * s1 * s2) / ((double)n * n);
}

static void test_audio(const struct avs_synth_media *m)
{
    struct avs_synth_clip c = overlap_clip(m);
    c.layers[0].gap_min = 0.1f;
    c.layers[0].gap_max = 0.3f;
    c.layers[1].gap_min = c.layers[1].gap_max = 0.2f;
    c.noise = 0.003f;
    const double freq[2] = {500, 1200};
    for (int l = 0; l < 2; l++) {
        float *t = NULL;
        int64_t n = 0;
        avs_synth_render_audio(m, &c, l, &t, &n);
        CHECK(n == 3 * AVS_SYNTH_RATE, "track length %lld", (long long)n);
        for (int k = 0; k < 3; k++) {
            double e = 0;
            for (int64_t i = 0; i < AVS_SYNTH_RATE; i++) e += (double)t[k * AVS_SYNTH_RATE + i] * t[k * AVS_SYNTH_RATE + i];
            e = sqrt(e / AVS_SYNTH_RATE);
            if (c.sounding[k] >> l & 1) CHECK(e > 0.1, "layer %d heard in second %d: rms %g", l, k + 1, e);
            else CHECK(e == 0, "layer %d silent in second %d: rms %g", l, k + 1, e);
        }
        free(t);
    }
    float *mix = NULL;
    int64_t n = 0;
    avs_synth_render_audio(m, &c, -1, &mix, &n);
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < 2; l++) {
            double p = goertzel(mix + 2 * (int64_t)k * AVS_SYNTH_RATE, AVS_SYNTH_RATE, 2, freq[l]);
            if (c.sounding[k] >> l & 1) CHECK(p > 1e-3, "mix: %g Hz heard in %d: %g", freq[l], k + 1, p);
            else CHECK(p < 1e-6, "mix: %g Hz silent in %d: %g", freq[l], k + 1, p);
        }
    free(mix);
}

/* Stream facts of an mp4: codecs, frame count, fps. */
static void probe(const char *path, char *vcodec, char *acodec, int *frames, double *fps,
                  double *dur)
{
    AVFormatContext *fmt = NULL;
    *frames = 0;
    vcodec[0] = acodec[0] = 0;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0) return;
    avformat_find_stream_info(fmt, NULL);
    int vs = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVStream *st = fmt->streams[i];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
            vs = (int)i;
            snprintf(vcodec, 32, "%s", avcodec_get_name(st->codecpar->codec_id));
            *fps = av_q2d(st->avg_frame_rate);
        } else if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
            snprintf(acodec, 32, "%s", avcodec_get_name(st->codecpar->codec_id));
        }
    }
    *dur = fmt->duration / (double)AV_TIME_BASE;
    AVPacket *pkt = av_packet_alloc();
    while (av_read_frame(fmt, pkt) >= 0) {
        *frames += pkt->stream_index == vs;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
}

static int same_file(const char *a, const char *b)
{
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    struct avs_err e = {{0}};
    int same = avs_fs_read_all(a, &x, &nx, &e) == 0 && avs_fs_read_all(b, &y, &ny, &e) == 0 &&
               nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_write(const struct avs_synth_media *m)
{
    struct avs_synth_opts o;
    avs_synth_opts_default(&o);
    o.subset = AVS_SYNTH_MS3;
    o.videos = 2;
    o.seconds = 3;
    o.width = 96;
    o.height = 64;
    o.seed = 5;
    o.jobs = 2;
    char *d1 = avs_sprintf("%s/w1", check_tmpdir()), *d2 = avs_sprintf("%s/w2", check_tmpdir());
    struct avs_err err = {{0}};
    CHECK(avs_synth_run(d1, m, &o, &err) == 0, "run 1: %s", err.msg);
    o.jobs = 1;
    CHECK(avs_synth_run(d2, m, &o, &err) == 0, "run 2: %s", err.msg);
    struct avs_synth_clip *clips = NULL;
    CHECK(avs_synth_plan(m, &o, &clips, &err) == 0, "plan");
    const char *csvs[] = {"ms3_meta_data.csv", "ms3_synth_seconds.csv", "categories.csv"};
    for (int i = 0; i < 3; i++) {
        char *a = avs_fs_join(d1, csvs[i]), *b = avs_fs_join(d2, csvs[i]);
        CHECK(avs_fs_exists(a) && same_file(a, b), "%s identical", csvs[i]);
        free(a);
        free(b);
    }
    for (int i = 0; clips && i < o.videos; i++) {
        const struct avs_synth_clip *c = &clips[i];
        const char *split = avs_synth_split_name(c->split);
        char *v1 = avs_sprintf("%s/raw_videos/%s/%s/%s.mp4", d1, split, c->label, c->uid);
        char *v2 = avs_sprintf("%s/raw_videos/%s/%s/%s.mp4", d2, split, c->label, c->uid);
        char vc[32], ac[32];
        int frames = 0;
        double fps = 0, dur = 0;
        probe(v1, vc, ac, &frames, &fps, &dur);
        CHECK(!strcmp(vc, "h264") && !strcmp(ac, "aac"), "%s: codecs %s %s", v1, vc, ac);
        CHECK(frames == 3 * c->fps, "%s: %d frames, want %d", v1, frames, 3 * c->fps);
        CHECK(fabs(fps - c->fps) < 1e-6, "%s: fps %g", v1, fps);
        CHECK(dur >= 3.0 && dur < 3.1, "%s: duration %g (floor must be 3)", v1, dur);
        CHECK(same_file(v1, v2), "%s: same bytes with -j 2 and -j 1 (bit-exact encoders)", v1);
        for (int k = 1; k <= 3; k++) {
            char *m1 = avs_sprintf("%s/gt_masks/%s/%s/%s_%d.png", d1, split, c->uid, c->uid, k);
            char *m2 = avs_sprintf("%s/gt_masks/%s/%s/%s_%d.png", d2, split, c->uid, c->uid, k);
            struct avs_image img = {0};
            CHECK(avs_png_read(m1, &img, NULL, &err) == 0 && img.c == 1 && img.w == 96 &&
                      img.h == 64, "%s: gray 96x64", m1);
            CHECK(same_file(m1, m2), "%s identical", m1);
            int other = 0;
            for (int p = 0; p < img.w * img.h && img.data; p++) other += img.data[p] != 0 && img.data[p] != 255;
            CHECK(other == 0, "%s: only 0/255", m1);
            avs_image_free(&img);
            free(m1);
            free(m2);
        }
        free(v1);
        free(v2);
    }
    free(clips);
    free(d1);
    free(d2);
}

int main(void)
{
    struct avs_synth_media *m = NULL;
    struct avs_err err = {{0}};
    test_frame_rule();
    if (avs_synth_media_load(MEDIA, &m, &err)) {
        CHECK(0, "load %s: %s", MEDIA, err.msg);
        return check_summary("test_synth");
    }
    test_media(m);
    test_plan(m);
    test_render(m);
    test_audio(m);
    test_write(m);
    struct avs_synth_media *none = NULL;
    CHECK(avs_synth_media_load("tests/fixtures/synth/no-such", &none, &err) == -1 && none == NULL &&
              strstr(err.msg, "fetch-media") != NULL, "missing media names the fix: %s", err.msg);
    avs_synth_media_free(&m);
    return check_summary("test_synth");
}
