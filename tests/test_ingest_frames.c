/* tests/test_ingest_frames.c: avs-ingest's frame choice, resize and audio against the ffmpeg CLI.
 *
 * For clips of several containers/codecs (mp4 H.264 with B-frames, mkv H.264 without dts,
 * avi MPEG-4 with B-frames, a variable 25 fps mono clip), for every second k:
 *   reference = ffmpeg CLI's full-resolution RGB frame number floor((k-1)F + 15F/16)
 *               (select=eq(n,...)), resized with core/resize.c (itself checked against
 *               cv2.resize in test_resize);
 *   ours      = frames/<uid>/<k>.png.
 * Bound: mean absolute difference <= 0.5 (observed: 0, bit-identical); and the neighbouring
 * frames must differ from ours by more than 1 (twice the bound), so a choice off by one frame cannot pass.
 * Audio: `ffmpeg -ac 1 -ar 16000 -f s16le` against our WAVs joined: max |diff| <= 1 LSB
 * (observed: 0) over the samples both have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/image.h"
#include "core/wav.h"
#include "tests/check.h"

struct clip {
    const char *name, *gen; /* file name, ffmpeg arguments producing it */
    int w, h, fps, seconds, audio;
    int last_frame; /* index of the last frame when a target is past the end, else 0 */
};

static const struct clip CLIPS[] = {
    {"bframes.mp4", "-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 "
                    "-t 4 -ac 2 -c:v libx264 -bf 3 -pix_fmt yuv420p -c:a aac -shortest", 320, 240, 30, 4, 1, 0},
    {"nodts.mkv", "-f lavfi -i testsrc2=size=176x144:rate=25 -f lavfi -i sine=frequency=300:sample_rate=48000 "
                  "-t 3 -c:v libx264 -bf 2 -pix_fmt yuv420p -c:a libvorbis -shortest", 176, 144, 25, 3, 1, 0},
    {"mpeg4.avi", "-f lavfi -i testsrc2=size=320x240:rate=24 -t 3 -c:v mpeg4 -bf 2 -q:v 3", 320, 240, 24, 3, 0, 0},
    /* video 2.9 s (frames 0..86), audio 3.05 s: second 3's frame 88 is past the end */
    {"pastend.mp4", "-f lavfi -i testsrc2=size=192x108:rate=30:duration=2.9 -f lavfi -i sine=sample_rate=16000:duration=3.05 "
                    "-c:v libx264 -bf 3 -pix_fmt yuv420p -c:a aac", 192, 108, 30, 3, 1, 86},
    {"short audio.mov", "-f lavfi -i testsrc2=size=200x150:rate=30 -f lavfi -i sine=frequency=660:sample_rate=22050:duration=1.5 "
                  "-t 3 -c:v libx264 -pix_fmt yuv420p -c:a aac", 200, 150, 30, 3, 1, 0},
};

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Full-resolution RGB of decoded frame n via the ffmpeg CLI. */
static int cli_frame(const char *path, int n, struct avs_image *img)
{
    char *cmd = avs_sprintf("ffmpeg -v error -nostdin -i '%s' -vf 'select=eq(n\\,%d)' -vsync vfr -frames:v 1 "
                            "-f rawvideo -pix_fmt rgb24 -", path, n);
    FILE *f = popen(cmd, "r");
    free(cmd);
    size_t want = (size_t)img->w * img->h * 3;
    size_t got = f ? fread(img->data, 1, want, f) : 0;
    if (f)
        pclose(f);
    return got == want ? 0 : -1;
}

static double mad(const struct avs_image *a, const struct avs_image *b)
{
    double s = 0;
    size_t n = (size_t)a->w * a->h * a->c;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a->data[i] - (int)b->data[i]);
    return s / (double)n;
}

static void check_frames(const char *store, const char *path, const char *uid, const struct clip *c)
{
    struct avs_err err = {0};
    struct avs_image full = {0}, ref = {0}, ours = {0};
    avs_image_alloc(&full, c->w, c->h, 3);
    avs_image_alloc(&ref, 224, 224, 3);
    for (int k = 1; k <= c->seconds; k++) {
        int n = (k - 1) * c->fps + 15 * c->fps / 16;
        if (c->last_frame && n > c->last_frame)
            n = c->last_frame; /* past the end: the last frame */
        char *png = avs_sprintf("%s/frames/%s/%d.png", store, uid, k);
        CHECK(avs_png_read(png, &ours, NULL, &err) == 0, "%s", err.msg);
        free(png);
        if (!ours.data)
            continue;
        CHECK(ours.w == 224 && ours.h == 224 && ours.c == 3, "%s k=%d: size %dx%d", c->name, k, ours.w, ours.h);
        for (int dn = -1; dn <= 1; dn++) {
            if (cli_frame(path, n + dn, &full)) {
                CHECK(dn != 0, "%s: ffmpeg CLI gave no frame %d", c->name, n);
                continue;
            }
            avs_image_resize_bilinear(&full, &ref);
            double d = mad(&ref, &ours);
            if (dn == 0) {
                printf("%s k=%d frame %d: MAD %.4f\n", c->name, k, n, d);
                CHECK(d <= 0.5, "%s k=%d: MAD %.3f vs CLI frame %d", c->name, k, d, n);
            } else {
                CHECK(d > 1.0, "%s k=%d: neighbour frame %d too close (MAD %.3f): test clip useless",
                      c->name, k, n + dn, d);
            }
        }
        avs_image_free(&ours);
    }
    avs_image_free(&full);
    avs_image_free(&ref);
}

static void check_audio(const char *store, const char *path, const char *uid, const struct clip *c)
{
    char *cmd = avs_sprintf("ffmpeg -v error -nostdin -i '%s' -vn -ac 1 -ar 16000 -f s16le -", path);
    FILE *f = popen(cmd, "r");
    free(cmd);
    size_t cap = (size_t)c->seconds * 16000;
    int16_t *ref = avs_calloc(cap, sizeof *ref);
    size_t nref = f ? fread(ref, sizeof *ref, cap, f) : 0;
    if (f)
        pclose(f);
    CHECK(nref > 0, "%s: ffmpeg CLI gave no audio", c->name);
    int worst = 0;
    for (int k = 1; k <= c->seconds; k++) {
        struct avs_err err = {0};
        char *wav = avs_sprintf("%s/audio/%s/%d.wav", store, uid, k);
        int16_t *s = NULL;
        int64_t n = 0;
        int rate = 0;
        CHECK(avs_wav_read_s16(wav, &s, &n, &rate, &err) == 0, "%s", err.msg);
        CHECK(n == 16000 && rate == 16000, "%s k=%d: %lld samples at %d Hz", c->name, k, (long long)n, rate);
        for (int64_t i = 0; s && i < n; i++) {
            size_t at = (size_t)(k - 1) * 16000 + (size_t)i;
            int d = at < nref ? abs(s[i] - ref[at]) : abs(s[i]); /* past the end: zero padding */
            worst = d > worst ? d : worst;
        }
        free(s);
        free(wav);
    }
    printf("%s: audio max |diff| %d over %zu reference samples\n", c->name, worst, nref);
    CHECK(worst <= 1, "%s: audio differs from ffmpeg -ac 1 -ar 16000 by %d", c->name, worst);
    free(ref);
}

int main(void)
{
    const char *tmp = check_tmpdir();
    const char *bin = getenv("AVS_BIN");
    if (!bin || system("ffmpeg -version >/dev/null 2>&1") != 0)
        SKIP("needs AVS_BIN and the ffmpeg CLI (scripts/deps.sh installs it)");
    char *clips = avs_sprintf("%s/clips", tmp), *store = avs_sprintf("%s/store", tmp);
    struct avs_err err = {0};
    avs_fs_mkdirs(clips, &err);
    size_t nclips = sizeof CLIPS / sizeof CLIPS[0];
    for (size_t i = 0; i < nclips; i++) {
        char *cmd = avs_sprintf("ffmpeg -v error -nostdin -y %s '%s/%s'", CLIPS[i].gen, clips, CLIPS[i].name);
        CHECK(sh(cmd) == 0, "generating %s", CLIPS[i].name);
        free(cmd);
    }
    char *cmd = avs_sprintf("'%s/avs-ingest' -q -j 2 --root '%s' '%s'", bin, store, clips);
    CHECK(sh(cmd) == 0, "avs-ingest exit status");
    free(cmd);
    for (size_t i = 0; i < nclips; i++) {
        char *path = avs_sprintf("%s/%s", clips, CLIPS[i].name);
        char *uid = avs_fs_stem(CLIPS[i].name);
        check_frames(store, path, uid, &CLIPS[i]);
        if (CLIPS[i].audio)
            check_audio(store, path, uid, &CLIPS[i]);
        free(path), free(uid);
    }
    free(clips), free(store);
    return check_summary("test_ingest_frames");
}
