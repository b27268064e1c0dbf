/* synth/media.c: load a media folder (layout in synth/synth.h) into memory: RGBA cut-outs,
 * RGB backgrounds and mono float sounds at AVS_SYNTH_RATE, decoded with libav*.
 * Folder listings are sorted so that plans do not depend on directory order. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "core/av.h"
#include "core/fs.h"
#include "core/names.h"
#include "synth/synth.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (; *exts; exts++)
        if (strcasecmp(dot + 1, *exts) == 0) return 1;
    return 0;
}

/* Sorted names in `dir` (files when want_dirs == 0 and ext matches, folders otherwise). */
static int list_dir(const char *dir, int want_dirs, const char *const *exts, char ***names,
                    int *n, struct avs_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return avs_err_set(err, "%s: cannot open folder: %m", dir);
    char **v = NULL;
    int cnt = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = avs_fs_join(dir, e->d_name);
        int is_dir = avs_fs_is_dir(p);
        free(p);
        if (want_dirs ? !is_dir : (is_dir || !has_ext(e->d_name, exts))) continue;
        v = avs_realloc(v, sizeof(*v) * (size_t)(cnt + 1));
        v[cnt++] = avs_strdup(e->d_name);
    }
    closedir(d);
    if (cnt > 1) qsort(v, (size_t)cnt, sizeof(*v), cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---- decoding ---------------------------------------------------------------------------- */

static int open_stream(const char *path, enum AVMediaType type, AVFormatContext **fmt,
                       AVCodecContext **dec, int *stream, struct avs_err *err)
{
    if (avs_av_open_input(fmt, path, err))
        return -1;
    int rc = av_find_best_stream(*fmt, type, -1, -1, NULL, 0);
    if (rc < 0)
        return avs_av_fail(err, path, type == AVMEDIA_TYPE_VIDEO ? "no image in the file"
                                                               : "no audio stream in the file", rc);
    *stream = rc;
    return avs_av_open_decoder(dec, *fmt, *stream, 1, path, err);
}

/* Send packets of `stream` (then a flush) and call on_frame for every decoded frame. */
static int decode_all(AVFormatContext *fmt, AVCodecContext *dec, int stream,
                      int (*on_frame)(AVFrame *, void *), void *ctx, const char *path,
                      struct avs_err *err)
{
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frm = av_frame_alloc();
    int rc = 0, eof = 0;
    if (!pkt || !frm) { rc = avs_err_set(err, "%s: out of memory", path); goto out; }
    while (!eof) {
        int r = av_read_frame(fmt, pkt);
        if (r < 0) {
            eof = 1;
            r = avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index != stream) {
            av_packet_unref(pkt);
            continue;
        } else {
            r = avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
        }
        if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_EOF) {
            rc = avs_av_fail(err, path, "decoding", r);
            goto out;
        }
        while ((r = avcodec_receive_frame(dec, frm)) >= 0) {
            int s = on_frame(frm, ctx);
            av_frame_unref(frm);
            if (s) { rc = avs_err_set(err, "%s: cannot convert decoded data", path); goto out; }
        }
    }
out:
    av_packet_free(&pkt);
    av_frame_free(&frm);
    return rc;
}

struct image_ctx { struct avs_image *img; int done; };

static int on_image(AVFrame *f, void *vctx)
{
    struct image_ctx *ctx = vctx;
    if (ctx->done) return 0;
    struct SwsContext *sws = sws_getContext(f->width, f->height, f->format, f->width,
                                            f->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL,
                                            NULL, NULL);
    if (!sws) return -1;
    avs_image_alloc(ctx->img, f->width, f->height, 3);
    uint8_t *dst[4] = {ctx->img->data, NULL, NULL, NULL};
    int stride[4] = {f->width * 3, 0, 0, 0};
    sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
    sws_freeContext(sws);
    ctx->done = 1;
    return 0;
}

int avs_synth_decode_image(const char *path, struct avs_image *rgb, struct avs_err *err)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    struct avs_image img = {0};
    struct image_ctx ctx = {&img, 0};
    int stream, rc = open_stream(path, AVMEDIA_TYPE_VIDEO, &fmt, &dec, &stream, err);
    if (rc == 0) rc = decode_all(fmt, dec, stream, on_image, &ctx, path, err);
    if (rc == 0 && !ctx.done) rc = avs_err_set(err, "%s: no picture decoded", path);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    if (rc) { avs_image_free(&img); return -1; }
    *rgb = img;
    return 0;
}

struct audio_ctx { SwrContext *swr; float *pcm; int64_t n, cap; };

static int append_audio(struct audio_ctx *ctx, const uint8_t **in, int in_n)
{
    int room = swr_get_out_samples(ctx->swr, in_n);
    if (room < 0) return -1;
    if (ctx->n + room > ctx->cap) {
        ctx->cap = (ctx->n + room) * 2 + 4096;
        ctx->pcm = avs_realloc(ctx->pcm, sizeof(float) * (size_t)ctx->cap);
    }
    uint8_t *out[1] = {(uint8_t *)(ctx->pcm + ctx->n)};
    int got = swr_convert(ctx->swr, out, room, in, in_n);
    if (got < 0) return -1;
    ctx->n += got;
    return 0;
}

static int on_audio(AVFrame *f, void *vctx)
{
    return append_audio(vctx, (const uint8_t **)f->extended_data, f->nb_samples);
}

int avs_synth_decode_audio(const char *path, int rate, float **pcm, int64_t *n,
                           struct avs_err *err)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    struct audio_ctx ctx = {0};
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO, in_layout = {0};
    int stream, rc = open_stream(path, AVMEDIA_TYPE_AUDIO, &fmt, &dec, &stream, err);
    if (rc) goto out;
    if (dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in_layout, dec->ch_layout.nb_channels);
    else
        av_channel_layout_copy(&in_layout, &dec->ch_layout);
    if (swr_alloc_set_opts2(&ctx.swr, &mono, AV_SAMPLE_FMT_FLT, rate, &in_layout,
                            dec->sample_fmt, dec->sample_rate, 0, NULL) < 0 ||
        swr_init(ctx.swr) < 0) {
        rc = avs_err_set(err, "%s: cannot resample %d Hz %d channels", path, dec->sample_rate,
                         dec->ch_layout.nb_channels);
        goto out;
    }
    rc = decode_all(fmt, dec, stream, on_audio, &ctx, path, err);
    if (rc == 0 && append_audio(&ctx, NULL, 0)) rc = avs_err_set(err, "%s: resampling failed", path);
    if (rc == 0 && ctx.n == 0) rc = avs_err_set(err, "%s: no audio samples decoded", path);
out:
    av_channel_layout_uninit(&in_layout);
    swr_free(&ctx.swr);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    if (rc) { free(ctx.pcm); return -1; }
    *pcm = ctx.pcm;
    *n = ctx.n;
    return 0;
}

/* ---- media folder ------------------------------------------------------------------------- */

/* Any PNG as RGBA (alpha 255 where the file has none). */
static int load_rgba(const char *path, struct avs_image *out, struct avs_err *err)
{
    struct avs_image img = {0};
    if (avs_png_read(path, &img, NULL, err)) return -1;
    if (img.w < 2 || img.h < 2) {
        avs_image_free(&img);
        return avs_err_set(err, "%s: cut-out too small (%dx%d)", path, img.w, img.h);
    }
    avs_image_alloc(out, img.w, img.h, 4);
    for (size_t i = 0; i < (size_t)img.w * img.h; i++) {
        const uint8_t *s = img.data + i * img.c;
        uint8_t *d = out->data + i * 4;
        switch (img.c) {
        case 1: d[0] = d[1] = d[2] = s[0]; d[3] = 255; break;
        case 2: d[0] = d[1] = d[2] = s[0]; d[3] = s[1]; break;
        case 3: d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = 255; break;
        default: memcpy(d, s, 4); break;
        }
    }
    avs_image_free(&img);
    return 0;
}

static int load_background(const char *path, struct avs_image *out, struct avs_err *err)
{
    static const char *const png[] = {"png", NULL};
    if (!has_ext(path, png)) return avs_synth_decode_image(path, out, err);
    struct avs_image img = {0};
    if (avs_png_read(path, &img, NULL, err)) return -1;
    avs_image_alloc(out, img.w, img.h, 3);
    for (size_t i = 0; i < (size_t)img.w * img.h; i++)
        for (int ch = 0; ch < 3; ch++)
            out->data[i * 3 + ch] = img.data[i * img.c + (img.c >= 3 ? ch : 0)];
    avs_image_free(&img);
    return 0;
}

static void normalise(float *x, int64_t n)
{
    float peak = 0;
    for (int64_t i = 0; i < n; i++) peak = fmaxf(peak, fabsf(x[i]));
    if (peak <= 0) return;
    float g = 0.5f / peak;
    for (int64_t i = 0; i < n; i++) x[i] *= g;
}

/* Split one CSV line in place into at most `max` fields (double-quoted fields supported). */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {
            char *w = ++p;
            f[n++] = w;
            while (*p) {
                if (*p == '"' && p[1] == '"') { *w++ = '"'; p += 2; }
                else if (*p == '"') { p++; break; }
                else *w++ = *p++;
            }
            *w = 0;
            while (*p && *p != ',') p++;
        } else {
            f[n++] = p;
            while (*p && *p != ',') p++;
        }
        if (*p != ',') { *p = 0; break; }
        *p++ = 0;
    }
    return n;
}

static void read_categories_csv(struct avs_synth_media *m)
{
    char *path = avs_fs_join(m->dir, "categories.csv"), *data = NULL;
    size_t len;
    struct avs_err e = {{0}};
    if (avs_fs_read_all(path, &data, &len, &e) == 0) {
        char *save = NULL;
        for (char *line = strtok_r(data, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
            char *f[5];
            if (csv_split(line, f, 5) < 5 || strcmp(f[0], "category") == 0) continue;
            for (int i = 0; i < m->n_categories; i++) {
                struct avs_synth_category *c = &m->categories[i];
                if (strcmp(c->name, f[0])) continue;
                c->imagenet_index = *f[1] ? atoi(f[1]) : -1;
                c->audioset_index = *f[3] ? atoi(f[3]) : -1;
                free(c->imagenet_name);
                free(c->audioset_name);
                c->imagenet_name = avs_strdup(f[2]);
                c->audioset_name = avs_strdup(f[4]);
            }
        }
    }
    free(data);
    free(path);
}

static int load_category(struct avs_synth_media *m, struct avs_synth_category *c,
                         struct avs_err *err)
{
    static const char *const png[] = {"png", NULL};
    static const char *const snd[] = {"ogg", "wav", "flac", "mp3", "oga", NULL};
    char *odir = avs_sprintf("%s/objects/%s", m->dir, c->name);
    char *sdir = avs_sprintf("%s/sounds/%s", m->dir, c->name);
    char **on = NULL, **sn = NULL;
    int no = 0, ns = 0, rc = -1;
    if (list_dir(odir, 0, png, &on, &no, err)) goto out;
    if (!avs_fs_is_dir(sdir) || list_dir(sdir, 0, snd, &sn, &ns, err) || no == 0 || ns == 0) {
        rc = avs_err_set(err, "%s: category '%s' needs at least one objects/%s/*.png and one "
                         "sounds/%s/*.{ogg,wav,flac,mp3} (found %d and %d)",
                         m->dir, c->name, c->name, c->name, no, ns);
        goto out;
    }
    c->objects = avs_calloc((size_t)no, sizeof(*c->objects));
    c->object_paths = avs_calloc((size_t)no, sizeof(char *));
    c->sounds = avs_calloc((size_t)ns, sizeof(*c->sounds));
    for (int i = 0; i < no; i++) {
        c->object_paths[i] = avs_fs_join(odir, on[i]);
        c->n_objects++;
        if (load_rgba(c->object_paths[i], &c->objects[i], err)) goto out;
    }
    for (int i = 0; i < ns; i++) {
        struct avs_synth_sound *s = &c->sounds[i];
        s->path = avs_fs_join(sdir, sn[i]);
        c->n_sounds++;
        if (avs_synth_decode_audio(s->path, AVS_SYNTH_RATE, &s->pcm, &s->n, err)) goto out;
        normalise(s->pcm, s->n);
    }
    rc = 0;
out:
    free_names(on, no);
    free_names(sn, ns);
    free(odir);
    free(sdir);
    return rc;
}

int avs_synth_media_load(const char *dir, struct avs_synth_media **media, struct avs_err *err)
{
    static const char *const bg_ext[] = {"jpg", "jpeg", "png", NULL};
    av_log_set_level(AV_LOG_FATAL); /* e.g. a stray odd byte at the end of a WAV */
    struct avs_synth_media *m = avs_calloc(1, sizeof(*m));
    m->dir = avs_strdup(dir);
    char *odir = avs_fs_join(dir, "objects"), *bdir = avs_fs_join(dir, "backgrounds");
    char **names = NULL;
    int n = 0, rc = -1;
    if (!avs_fs_is_dir(odir) || !avs_fs_is_dir(bdir)) {
        avs_err_set(err, "%s: not a media folder (needs objects/ and backgrounds/): run "
                    "scripts/fetch-media.sh, or pass --media DIR", dir);
        goto out;
    }
    if (list_dir(odir, 1, NULL, &names, &n, err)) goto out;
    m->categories = avs_calloc((size_t)(n ? n : 1), sizeof(*m->categories));
    for (int i = 0; i < n; i++) {
        struct avs_synth_category *c = &m->categories[i];
        if (avs_name_check(names[i], "category folder", err)) { /* it names output folders */
            avs_err_wrap(err, "%s", odir);
            goto out;
        }
        c->name = avs_strdup(names[i]);
        c->imagenet_index = c->audioset_index = -1;
        c->imagenet_name = avs_strdup("");
        c->audioset_name = avs_strdup("");
        m->n_categories++;
        if (load_category(m, c, err)) goto out;
    }
    free_names(names, n);
    names = NULL;
    if (list_dir(bdir, 0, bg_ext, &names, &n, err)) goto out;
    m->backgrounds = avs_calloc((size_t)(n ? n : 1), sizeof(*m->backgrounds));
    m->background_paths = avs_calloc((size_t)(n ? n : 1), sizeof(char *));
    for (int i = 0; i < n; i++) {
        m->background_paths[i] = avs_fs_join(bdir, names[i]);
        m->n_backgrounds++;
        if (load_background(m->background_paths[i], &m->backgrounds[i], err)) goto out;
    }
    if (m->n_categories == 0 || m->n_backgrounds == 0) {
        avs_err_set(err, "%s: no categories or no backgrounds: run scripts/fetch-media.sh", dir);
        goto out;
    }
    read_categories_csv(m);
    rc = 0;
out:
    free_names(names, n);
    free(odir);
    free(bdir);
    if (rc) avs_synth_media_free(&m);
    *media = m;
    return rc;
}

void avs_synth_media_free(struct avs_synth_media **media)
{
    struct avs_synth_media *m = *media;
    if (!m) return;
    for (int i = 0; i < m->n_categories; i++) {
        struct avs_synth_category *c = &m->categories[i];
        for (int j = 0; j < c->n_objects; j++) {
            avs_image_free(&c->objects[j]);
            free(c->object_paths[j]);
        }
        for (int j = 0; j < c->n_sounds; j++) {
            free(c->sounds[j].pcm);
            free(c->sounds[j].path);
        }
        free(c->objects);
        free(c->object_paths);
        free(c->sounds);
        free(c->name);
        free(c->imagenet_name);
        free(c->audioset_name);
    }
    for (int i = 0; i < m->n_backgrounds; i++) {
        avs_image_free(&m->backgrounds[i]);
        free(m->background_paths[i]);
    }
    free(m->categories);
    free(m->backgrounds);
    free(m->background_paths);
    free(m->dir);
    free(m);
    *media = NULL;
}
