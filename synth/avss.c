/* synth/avss.c: avs-synth's AVSS subset: clips written in the AVSBench-semantic release layout
 * (synth/synth.h, docs/avss.md) so that the AVSS import path is tested end to end.
 *
 * Class of a pixel in label i: category + 1 of the sounding layer whose visible alpha there is
 * >= 0.5 (visible alphas sum to <= 1, so at most one layer has more than 0.5; the frontmost
 * wins a tie), else 0 (background). Silent objects are background, as in the release.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/avss.h"
#include "core/fs.h"
#include "core/wav.h"
#include "synth/synth.h"

const char *avs_synth_avss_set_name(int set)
{
    return set == AVS_SYNTH_V1S ? "v1s" : set == AVS_SYNTH_V1M ? "v1m" : "v2";
}

/* Frames with a label: v1s train only the first (as the release), else all. */
static int labelled(const struct avs_synth_clip *c, int i)
{
    return i == 0 || c->avss_set != AVS_SYNTH_V1S || c->split != AVS_SYNTH_TRAIN;
}

/* Class indices of frame f for the layers heard in `sounding`. idx [h][w] out. */
static void class_map(const struct avs_synth_media *m, const struct avs_synth_clip *c, int f,
                      unsigned sounding, uint8_t *rgb, float *alpha, uint8_t *idx)
{
    size_t npix = (size_t)c->width * (size_t)c->height;
    memset(idx, 0, npix);
    for (int l = 0; l < c->n_layers; l++) {
        if (!(sounding >> l & 1))
            continue;
        avs_synth_render_frame(m, c, f, rgb, NULL, 1u << l, alpha);
        for (size_t p = 0; p < npix; p++)
            if (alpha[p] >= 0.5f)
                idx[p] = (uint8_t)(c->layers[l].category + 1);
    }
}

static int write_png_atomic(const char *path, const struct avs_image *img, struct avs_err *err)
{
    char *tmp = avs_fs_tmp_name(path);
    int rc = avs_png_write(tmp, img, 0, err);
    if (rc == 0)
        rc = avs_fs_commit(tmp, path, err);
    if (rc)
        remove(tmp);
    free(tmp);
    return rc;
}

/* labels_rgb/<i>.png: the class map in palette colours (plus the planted unknown pixels). */
static int write_label(const char *path, const struct avs_image *idx, int plant, struct avs_err *err)
{
    struct avs_image rgb = {0};
    if (avs_avss_colourise(idx, &rgb))
        return avs_err_set(err, "%s: label too large", path);
    for (int p = 0; p < plant && p < idx->w * idx->h; p++) {
        rgb.data[3 * p] = 1, rgb.data[3 * p + 1] = 2, rgb.data[3 * p + 2] = 3;
    }
    int rc = write_png_atomic(path, &rgb, err);
    avs_image_free(&rgb);
    return rc;
}

static int write_frames(const char *dir, const struct avs_synth_media *m,
                        const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                        struct avs_err *err)
{
    size_t npix = (size_t)c->width * (size_t)c->height;
    struct avs_image frame = {0}, idx = {0};
    avs_image_alloc(&frame, c->width, c->height, 3);
    avs_image_alloc(&idx, c->width, c->height, 1);
    uint8_t *scratch = avs_malloc(npix * 3);
    float *alpha = avs_malloc(npix * sizeof(float));
    int rc = 0;
    for (int i = 0; rc == 0 && i < c->seconds; i++) {
        int f = avs_synth_frame_for_second(i + 1, c->fps);
        avs_synth_render_frame(m, c, f, frame.data, NULL, 0, NULL);
        char *jpg = avs_sprintf("%s/frames/%d.jpg", dir, i);
        rc = avs_jpeg_write(jpg, &frame, 2, err);
        free(jpg);
        if (rc || !labelled(c, i))
            continue;
        class_map(m, c, f, c->sounding[i], scratch, alpha, idx.data);
        char *png = avs_sprintf("%s/labels_rgb/%d.png", dir, i);
        rc = write_label(png, &idx, c->index == 0 && i == 0 ? o->avss_unknown : 0, err);
        free(png);
    }
    free(scratch);
    free(alpha);
    avs_image_free(&frame);
    avs_image_free(&idx);
    return rc;
}

/* audio.wav: the stereo soundtrack averaged to mono s16 at AVS_SYNTH_RATE. */
static int write_audio(const char *dir, const struct avs_synth_media *m,
                       const struct avs_synth_clip *c, struct avs_err *err)
{
    float *pcm = NULL;
    int64_t n = 0;
    avs_synth_render_audio(m, c, -1, &pcm, &n);
    int16_t *s16 = avs_malloc(sizeof(int16_t) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        float v = 0.5f * (pcm[2 * i] + pcm[2 * i + 1]) * 32767.0f;
        s16[i] = (int16_t)(v < -32768.f ? -32768 : v > 32767.f ? 32767 : (int)(v + (v >= 0 ? 0.5f : -0.5f)));
    }
    char *path = avs_fs_join(dir, "audio.wav"), *tmp = avs_fs_tmp_name(path);
    int rc = avs_wav_write_s16(tmp, AVS_SYNTH_RATE, s16, n, err);
    if (rc == 0)
        rc = avs_fs_commit(tmp, path, err);
    if (rc)
        remove(tmp);
    free(path), free(tmp), free(s16), free(pcm);
    return rc;
}

int avs_synth_avss_write_clip(const char *out_dir, const struct avs_synth_media *m,
                              const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                              struct avs_err *err)
{
    char *dir = avs_sprintf("%s/%s/%s", out_dir, avs_synth_avss_set_name(c->avss_set), c->uid);
    char *fdir = avs_fs_join(dir, "frames"), *ldir = avs_fs_join(dir, "labels_rgb");
    int rc = avs_fs_mkdirs(fdir, err) || avs_fs_mkdirs(ldir, err) ? -1 : 0;
    if (rc == 0)
        rc = write_frames(dir, m, c, o, err);
    if (rc == 0)
        rc = write_audio(dir, m, c, err);
    free(dir), free(fdir), free(ldir);
    return rc;
}

/* ---- tree files ---------------------------------------------------------------------------- */

/* The release's header; vid = uid (one clip per synthetic video), start 0:00, a_obj = the
 * categories heard ('+'-joined, as the MS3 label). */
static char *metadata_text(const struct avs_synth_clip *clips, const struct avs_synth_opts *o,
                           size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    AVS_ASSERT(f);
    fprintf(f, "vid,uid,s_min,s_sec,a_obj,split,label\n");
    for (int i = 0; i < o->videos; i++) {
        const struct avs_synth_clip *c = &clips[i];
        fprintf(f, "%s,%s,0,0,%s,%s,%s\n", c->uid, c->uid, c->label,
                avs_synth_split_name(c->split), avs_synth_avss_set_name(c->avss_set));
    }
    fclose(f);
    return buf;
}

static char *classes_text(const struct avs_synth_media *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "background", 0);
    for (int i = 0; i < m->n_categories; i++)
        cJSON_AddNumberToObject(o, m->categories[i].name, i + 1);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    return txt;
}

int avs_synth_avss_write_meta(const char *out_dir, const struct avs_synth_media *m,
                              const struct avs_synth_clip *clips, const struct avs_synth_opts *o,
                              struct avs_err *err)
{
    size_t len = 0;
    char *meta = metadata_text(clips, o, &len);
    char *path = avs_fs_join(out_dir, "metadata.csv");
    int rc = avs_fs_write_atomic(path, meta, len, err);
    free(path), free(meta);
    char *json = classes_text(m);
    path = avs_fs_join(out_dir, "label2idx.json");
    if (rc == 0)
        rc = avs_fs_write_atomic(path, json, strlen(json), err);
    free(path);
    cJSON_free(json);
    return rc;
}
