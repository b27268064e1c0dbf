/* predict/overlay.h: avs_overlay_video on synthetic clips made with the ffmpeg CLI (lavfi
 * testsrc2 + sine), checked with ffprobe and ffmpeg-decoded raw frames:
 *   - 25 fps with AAC (audio copied), 29.97 fps without audio, 25 fps Matroska with PCM audio
 *     (re-encoded to AAC): H.264 output of the same size, frame count (ffprobe -count_frames)
 *     and duration; audio present with the same duration when the input had one, absent
 *     otherwise;
 *   - maps alternate left half / right half per second: every output frame is tinted on the
 *     half of the map its timestamp selects (mean error vs the expected blend of the decoded
 *     input frame, away from the edge), the other half unchanged;
 *   - frames_dir: <k>.png for k = 1..n at the source size, equal to the drawing on the input
 *     frame DESIGN §3 picks;
 *   - a missing input and an unwritable output fail with a message naming the path, and leave
 *     no output or temp file.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/av.h"
#include "core/fs.h"
#include "core/image.h"
#include "predict/overlay.h"
#include "tests/check.h"

#define MH 8
#define MW 8

static const char *tmp;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

struct probe { int frames, w, h; double duration; char codec[32]; };

/* ffprobe one stream ("v:0", "a:0"); 0 if found. */
static int probe(const char *path, const char *sel, struct probe *p)
{
    memset(p, 0, sizeof *p);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffprobe -v error -select_streams %s -count_frames -show_entries "
             "stream=codec_name,width,height,duration,nb_read_frames:format=duration -of default=nw=1 '%s'", sel, path);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "codec_name=", 11))
            found = sscanf(line + 11, "%31s", p->codec) == 1;
        else if (!strncmp(line, "width=", 6))
            p->w = atoi(line + 6);
        else if (!strncmp(line, "height=", 7))
            p->h = atoi(line + 7);
        else if (!strncmp(line, "duration=", 9) && p->duration == 0)
            p->duration = atof(line + 9); /* the stream's, else (Matroska: N/A) the file's */
        else if (!strncmp(line, "nb_read_frames=", 15))
            p->frames = atoi(line + 15);
    }
    pclose(f);
    return found ? 0 : -1;
}

/* Seconds of the first audio stream, decoded by the ffmpeg CLI (48 kHz mono s16); -1 if none. */
static double audio_seconds(const char *path)
{
    char raw[1024];
    snprintf(raw, sizeof raw, "%s/audio.s16", tmp);
    if (sh("ffmpeg -v error -nostdin -y -i '%s' -map 0:a:0 -ac 1 -ar 48000 -f s16le '%s'", path, raw))
        return -1;
    int64_t size = 0, mt;
    struct avs_err err;
    if (avs_fs_stat(raw, &size, &mt, &err))
        return -1;
    return (double)size / (2.0 * 48000);
}

/* Every frame of a clip as RGB24 through the ffmpeg CLI; returns the frame count. */
static int raw_frames(const char *path, int W, int H, uint8_t **out)
{
    char raw[1024];
    snprintf(raw, sizeof raw, "%s/frames.rgb", tmp);
    if (sh("ffmpeg -v error -nostdin -y -i '%s' -map 0:v:0 -f rawvideo -pix_fmt rgb24 '%s'", path, raw))
        return -1;
    char *data;
    size_t len;
    struct avs_err err;
    if (avs_fs_read_all(raw, &data, &len, &err))
        return -1;
    *out = (uint8_t *)data;
    return (int)(len / ((size_t)W * H * 3));
}

/* Map of second k: ones on the left half for odd k, the right half for even k. */
static void make_maps(float *prob, int n)
{
    for (int k = 1; k <= n; k++)
        for (int y = 0; y < MH; y++)
            for (int x = 0; x < MW; x++)
                prob[((size_t)(k - 1) * MH + y) * MW + x] = (x < MW / 2) == (k % 2 == 1) ? 1.0f : 0.0f;
}

/* Mean |got - expected| over the columns [x0, x1) (3 channels), expected = in blended towards
 * the tint when tinted; also the mean |in - got| (how much changed). */
static double region_err(const uint8_t *got, const uint8_t *in, int W, int H, int x0, int x1,
                         int tinted, double *changed)
{
    static const uint8_t tint[3] = AVS_OVERLAY_TINT;
    double e = 0, ch = 0;
    long cnt = 0;
    for (int y = 4; y < H - 4; y++)
        for (int x = x0; x < x1; x++)
            for (int c = 0; c < 3; c++) {
                size_t i = ((size_t)y * W + x) * 3 + c;
                int want = tinted ? (in[i] + tint[c] + 1) / 2 : in[i];
                e += abs(got[i] - want), ch += abs(got[i] - in[i]);
                cnt++;
            }
    *changed = ch / (double)cnt;
    return e / (double)cnt;
}

/* Both halves of one frame against the map of second k (odd: left tinted). */
static void check_halves(const char *what, int i, const uint8_t *got, const uint8_t *in, int W,
                         int H, int k, double tol, double *worst)
{
    int left = k % 2 == 1, m = 8;
    double chl, chr;
    double el = region_err(got, in, W, H, 0, W / 2 - m, left, &chl);
    double er = region_err(got, in, W, H, W / 2 + m, W, !left, &chr);
    if (el > *worst)
        *worst = el;
    if (er > *worst)
        *worst = er;
    CHECK(el <= tol && er <= tol, "%s frame %d (map %d): mean error left %.2f right %.2f (tol %.1f)",
          what, i, k, el, er, tol);
    CHECK((left ? chl : chr) > 30, "%s frame %d: the tinted half barely changed (%.1f)", what, i,
          left ? chl : chr);
}

/* One clip through avs_overlay_video with n maps; fps_num/fps_den its frame rate. */
static void run_case(const char *name, const char *make_args, const char *ext, int W, int H,
                     int fps_num, int fps_den, int n, const char *want_audio)
{
    char in[512], out[512], fdir[512];
    snprintf(in, sizeof in, "%s/%s.%s", tmp, name, ext);
    snprintf(out, sizeof out, "%s/out/%s.mp4", tmp, name);
    snprintf(fdir, sizeof fdir, "%s/%s_frames", tmp, name);
    CHECK(sh("ffmpeg -v error -nostdin -y %s '%s'", make_args, in) == 0, "%s: making the clip", name);
    float *prob = avs_malloc((size_t)n * MH * MW * sizeof(float));
    make_maps(prob, n);
    struct avs_err err = {0};
    double t0 = avs_now();
    int rc = avs_overlay_video(in, out, fdir, prob, n, MH, MW, &err);
    printf("%s: overlay %.2f s\n", name, avs_now() - t0);
    CHECK(rc == 0, "%s: %s", name, err.msg);
    free(prob);
    if (rc)
        return;
    struct probe pi, po, ai, ao;
    CHECK(probe(in, "v:0", &pi) == 0 && probe(out, "v:0", &po) == 0, "%s: ffprobe", name);
    CHECK(!strcmp(po.codec, "h264"), "%s: output codec %s", name, po.codec);
    CHECK(po.w == W && po.h == H, "%s: output %dx%d, input %dx%d", name, po.w, po.h, W, H);
    CHECK(po.frames == pi.frames && pi.frames > 0, "%s: %d frames out, %d in", name, po.frames, pi.frames);
    CHECK_NEAR(po.duration, (double)pi.frames * fps_den / fps_num, 1e-3, 0, "video duration");
    int has_ai = probe(in, "a:0", &ai) == 0, has_ao = probe(out, "a:0", &ao) == 0;
    CHECK(has_ao == (want_audio != NULL), "%s: audio stream %s", name, has_ao ? "present" : "absent");
    if (has_ai && has_ao && want_audio) {
        CHECK(!strcmp(ao.codec, want_audio), "%s: audio codec %s, want %s", name, ao.codec, want_audio);
        double si = audio_seconds(in), so = audio_seconds(out);
        printf("%s: audio %.4f s in, %.4f s out\n", name, si, so);
        CHECK(si > 1 && fabs(si - so) <= 0.025, "%s: audio %.4f s in, %.4f s out", name, si, so);
    }
    /* pixels: every output frame against its decoded input frame and the map of its second */
    uint8_t *fi = NULL, *fo = NULL;
    int ni = raw_frames(in, W, H, &fi), no = raw_frames(out, W, H, &fo);
    CHECK(ni == pi.frames && no == ni, "%s: raw frames %d in, %d out", name, ni, no);
    double worst = 0;
    size_t fs = (size_t)W * H * 3;
    for (int i = 0; i < ni && i < no; i++) {
        int k = (int)((long long)i * fps_den / fps_num) + 1; /* floor(t) + 1, constant rate */
        k = k > n ? n : k;
        check_halves(name, i, fo + i * fs, fi + i * fs, W, H, k, 6.0, &worst);
    }
    printf("%s: %d frames, worst mean error %.2f\n", name, no, worst);
    /* PNGs: map k on the frame avs-ingest picks for second k */
    int F = (int)((fps_num + fps_den / 2) / fps_den);
    for (int k = 1; k <= n; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%d.png", fdir, k);
        struct avs_image img = {0};
        CHECK(avs_png_read(p, &img, NULL, &err) == 0, "%s: %s", name, err.msg);
        if (!img.data)
            continue;
        CHECK(img.w == W && img.h == H && img.c == 3, "%s: %s is %dx%dx%d", name, p, img.w, img.h, img.c);
        int idx = (k - 1) * F + 15 * F / 16;
        idx = idx < ni ? idx : ni - 1;
        double w2 = 0;
        if (img.w == W && img.h == H && img.c == 3 && idx >= 0)
            check_halves(p, idx, img.data, fi + (size_t)idx * fs, W, H, k, 3.0, &w2);
        avs_image_free(&img);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/%d.png", fdir, n + 1);
    CHECK(!avs_fs_exists(p), "%s: a PNG past n", name);
    free(fi), free(fo);
}

/* No file with ".tmp." left in dir. */
static int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int c = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        c += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return c;
}

static void errors(void)
{
    float prob[MH * MW] = {0};
    struct avs_err err = {0};
    char in[512], out[512], bad[512];
    snprintf(in, sizeof in, "%s/nope.mp4", tmp);
    snprintf(out, sizeof out, "%s/err_out.mp4", tmp);
    CHECK(avs_overlay_video(in, out, NULL, prob, 1, MH, MW, &err) == -1, "missing input accepted");
    CHECK(strstr(err.msg, "nope.mp4") != NULL, "message names the input: %s", err.msg);
    CHECK(!avs_fs_exists(out), "output written for a missing input");
    /* unwritable: the output's folder is a regular file */
    snprintf(in, sizeof in, "%s/a25.mp4", tmp);
    snprintf(bad, sizeof bad, "%s/afile", tmp);
    FILE *f = fopen(bad, "w");
    if (f)
        fclose(f);
    snprintf(out, sizeof out, "%s/afile/x.mp4", tmp);
    memset(&err, 0, sizeof err);
    CHECK(avs_overlay_video(in, out, NULL, prob, 1, MH, MW, &err) == -1, "unwritable output accepted");
    CHECK(strstr(err.msg, "afile") != NULL, "message names the output: %s", err.msg);
    printf("errors: \"%s\"\n", err.msg);
    char od[512];
    snprintf(od, sizeof od, "%s/out", tmp);
    CHECK(temp_files(tmp) == 0 && temp_files(od) == 0, "temp files left behind");
}

int main(void)
{
    tmp = check_tmpdir();
    if (sh("ffmpeg -version >/dev/null 2>&1") || sh("ffprobe -version >/dev/null 2>&1"))
        SKIP("needs the ffmpeg and ffprobe programs (bash scripts/deps.sh)");
    avs_log_set_level(0);
    avs_av_log_init(); /* libav's messages into a buffer (x264's statistics otherwise) */
    run_case("a25", "-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:"
             "sample_rate=44100 -t 3.5 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest",
             "mp4", 320, 240, 25, 1, 3, "aac");
    run_case("n2997", "-f lavfi -i testsrc2=size=256x144:rate=30000/1001 -t 3.5 -c:v libx264 "
             "-pix_fmt yuv420p", "mp4", 256, 144, 30000, 1001, 3, NULL);
    run_case("pcm", "-f lavfi -i testsrc2=size=160x120:rate=25 -f lavfi -i sine=frequency=300:"
             "sample_rate=22050 -t 2.5 -c:v libx264 -pix_fmt yuv420p -c:a pcm_s16le -shortest",
             "mkv", 160, 120, 25, 1, 2, "aac");
    errors();
    return check_summary("test_overlay");
}
