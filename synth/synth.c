/* synth/synth.c: write planned clips (mp4 + masks) and the AVSBench-style CSV files.
 * Every file is written under a temp name and renamed, so an interrupted run leaves no
 * half clip; clips are independent, so -j N encodes N at a time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/progress.h"
#include "synth/synth.h"

static char *clip_video_path(const char *out, const struct avs_synth_clip *c)
{
    return avs_sprintf("%s/raw_videos/%s/%s/%s.mp4", out, avs_synth_split_name(c->split),
                       c->label, c->uid);
}

static char *clip_mask_dir(const char *out, const struct avs_synth_clip *c, int subset)
{
    if (subset == AVS_SYNTH_S4)
        return avs_sprintf("%s/gt_masks/%s/%s/%s", out, avs_synth_split_name(c->split),
                           c->label, c->uid);
    return avs_sprintf("%s/gt_masks/%s/%s", out, avs_synth_split_name(c->split), c->uid);
}

/* AVSBench S4 annotates only the first second of training clips. */
static int masks_for(const struct avs_synth_clip *c, const struct avs_synth_opts *o)
{
    return o->subset == AVS_SYNTH_S4 && c->split == AVS_SYNTH_TRAIN && !o->all_masks
               ? 1 : c->seconds;
}

static int write_masks(const char *out, const struct avs_synth_media *m,
                       const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                       struct avs_err *err)
{
    char *dir = clip_mask_dir(out, c, o->subset);
    size_t npix = (size_t)c->width * c->height;
    uint8_t *rgb = avs_malloc(npix * 3);
    struct avs_image mask = {0};
    avs_image_alloc(&mask, c->width, c->height, 1);
    int rc = avs_fs_mkdirs(dir, err);
    for (int k = 1; rc == 0 && k <= masks_for(c, o); k++) {
        int f = avs_synth_frame_for_second(k, c->fps);
        avs_synth_render_frame(m, c, f, rgb, mask.data, c->sounding[k - 1], NULL);
        char *path = avs_sprintf("%s/%s_%d.png", dir, c->uid, k);
        char *tmp = avs_fs_tmp_name(path);
        rc = avs_png_write(tmp, &mask, 0, err);
        if (rc == 0) rc = avs_fs_commit(tmp, path, err);
        if (rc) remove(tmp);
        free(tmp);
        free(path);
    }
    avs_image_free(&mask);
    free(rgb);
    free(dir);
    return rc;
}

static int write_video(const char *path, const struct avs_synth_media *m,
                       const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                       struct avs_err *err)
{
    struct avs_mp4 *mp4 = NULL;
    float *pcm = NULL;
    int64_t n = 0;
    uint8_t *rgb = avs_malloc((size_t)c->width * c->height * 3);
    char *tmp = avs_sprintf("%s.tmp.%d.mp4", path, (int)getpid());
    int rc = avs_fs_mkdirs_parent(path, err);
    if (rc == 0) rc = avs_mp4_open(tmp, c->width, c->height, c->fps, AVS_SYNTH_RATE, o->crf,
                                   &mp4, err);
    if (rc == 0) {
        avs_synth_render_audio(m, c, -1, &pcm, &n);
        rc = avs_mp4_audio(mp4, pcm, n, err);
    }
    for (int f = 0; rc == 0 && f < c->seconds * c->fps; f++) {
        avs_synth_render_frame(m, c, f, rgb, NULL, 0, NULL);
        rc = avs_mp4_video(mp4, rgb, err);
    }
    if (avs_mp4_close(&mp4, err)) rc = -1;
    if (rc == 0) rc = avs_fs_commit(tmp, path, err);
    if (rc) remove(tmp);
    free(tmp);
    free(pcm);
    free(rgb);
    return rc;
}

int avs_synth_write_clip(const char *out_dir, const struct avs_synth_media *m,
                         const struct avs_synth_clip *c, const struct avs_synth_opts *o,
                         struct avs_err *err)
{
    if (o->subset == AVS_SYNTH_AVSS)
        return avs_synth_avss_write_clip(out_dir, m, c, o, err);
    char *video = clip_video_path(out_dir, c);
    int rc = write_video(video, m, c, o, err);
    if (rc == 0) rc = write_masks(out_dir, m, c, o, err);
    free(video);
    return rc;
}

/* ---- CSV files ---------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Write `path` atomically from a memstream filled by `fill`. */
static int write_text(const char *path, void (*fill)(FILE *, const void *), const void *ctx,
                      struct avs_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return avs_err_set(err, "%s: out of memory", path);
    fill(f, ctx);
    fclose(f);
    int rc = avs_fs_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

struct csv_ctx {
    const struct avs_synth_media *m;
    const struct avs_synth_clip *clips;
    const struct avs_synth_opts *o;
};

static void fill_meta(FILE *f, const void *vctx)
{
    const struct csv_ctx *x = vctx;
    fprintf(f, "name,category,split,fps,seconds,width,height,objects,background\n");
    for (int i = 0; i < x->o->videos; i++) {
        const struct avs_synth_clip *c = &x->clips[i];
        fprintf(f, "%s,", c->uid);
        csv_field(f, c->label);
        fprintf(f, ",%s,%d,%d,%d,%d,", avs_synth_split_name(c->split), c->fps, c->seconds,
                c->width, c->height);
        char objs[512] = "";
        for (int l = 0; l < c->n_layers; l++) {
            const struct avs_synth_category *cat = &x->m->categories[c->layers[l].category];
            const char *p = cat->object_paths[c->layers[l].object], *b = strrchr(p, '/');
            size_t len = strlen(objs);
            snprintf(objs + len, sizeof(objs) - len, "%s%s/%s", l ? ";" : "", cat->name,
                     b ? b + 1 : p);
        }
        csv_field(f, objs);
        const char *bg = x->m->background_paths[c->background], *b = strrchr(bg, '/');
        fputc(',', f);
        csv_field(f, b ? b + 1 : bg);
        fputc('\n', f);
    }
}

static void fill_seconds(FILE *f, const void *vctx)
{
    const struct csv_ctx *x = vctx;
    fprintf(f, "name,k,frame,sounding\n");
    for (int i = 0; i < x->o->videos; i++) {
        const struct avs_synth_clip *c = &x->clips[i];
        for (int k = 1; k <= c->seconds; k++) {
            fprintf(f, "%s,%d,%d,", c->uid, k, avs_synth_frame_for_second(k, c->fps));
            int first = 1;
            for (int l = 0; l < c->n_layers; l++) {
                if (!(c->sounding[k - 1] >> l & 1)) continue;
                fprintf(f, "%s%s", first ? "" : "+", x->m->categories[c->layers[l].category].name);
                first = 0;
            }
            fputc('\n', f);
        }
    }
}

static void fill_categories(FILE *f, const void *vctx)
{
    const struct csv_ctx *x = vctx;
    fprintf(f, "category,imagenet_index,imagenet_name,audioset_index,audioset_name\n");
    for (int i = 0; i < x->m->n_categories; i++) {
        const struct avs_synth_category *c = &x->m->categories[i];
        fprintf(f, "%s,", c->name);
        if (c->imagenet_index >= 0) fprintf(f, "%d", c->imagenet_index);
        fputc(',', f);
        csv_field(f, c->imagenet_name);
        fputc(',', f);
        if (c->audioset_index >= 0) fprintf(f, "%d", c->audioset_index);
        fputc(',', f);
        csv_field(f, c->audioset_name);
        fputc('\n', f);
    }
}

/* ---- parallel run ------------------------------------------------------------------------- */

struct job {
    const char *out;
    const struct avs_synth_media *m;
    const struct avs_synth_clip *clips;
    const struct avs_synth_opts *o;
    pthread_mutex_t lock;
    int next, failed;
    struct avs_err first_err;
    struct avs_progress progress;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int i = j->failed ? j->o->videos : j->next++;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->o->videos) return NULL;
        if (j->o->shard_n > 1 && i % j->o->shard_n != j->o->shard_i) continue;
        struct avs_err e = {{0}};
        if (avs_synth_write_clip(j->out, j->m, &j->clips[i], j->o, &e)) {
            pthread_mutex_lock(&j->lock);
            if (!j->failed) j->first_err = e;
            j->failed = 1;
            pthread_mutex_unlock(&j->lock);
        }
        avs_progress_add(&j->progress, 1);
    }
}

int avs_synth_run(const char *out_dir, const struct avs_synth_media *m,
                  const struct avs_synth_opts *o, struct avs_err *err)
{
    struct avs_synth_clip *clips = NULL;
    if (avs_synth_plan(m, o, &clips, err)) return -1;
    int rc = avs_fs_mkdirs(out_dir, err);
    if (o->shard_n <= 1) avs_fs_sweep_tmp(out_dir); /* leftovers of an interrupted run (not
                                                        while other shards may be writing) */
    struct job j = {.out = out_dir, .m = m, .clips = clips, .o = o};
    pthread_mutex_init(&j.lock, NULL);
    int mine = o->videos;
    if (o->shard_n > 1)
        mine = o->videos / o->shard_n + (o->shard_i < o->videos % o->shard_n ? 1 : 0);
    static const char *const names[3] = {"synth s4", "synth ms3", "synth avss"};
    avs_progress_init(&j.progress, names[o->subset], "clips", mine);
    if (!o->progress) j.progress.enabled = 0;
    int nt = o->jobs < 1 ? 1 : o->jobs > o->videos ? o->videos : o->jobs;
    pthread_t th[64];
    if (nt > 64) nt = 64;
    if (rc == 0) {
        for (int t = 1; t < nt; t++) pthread_create(&th[t], NULL, worker, &j);
        worker(&j);
        for (int t = 1; t < nt; t++) pthread_join(th[t], NULL);
        if (j.failed) {
            *err = j.first_err;
            rc = -1;
        }
    }
    avs_progress_end(&j.progress);
    pthread_mutex_destroy(&j.lock);
    struct csv_ctx x = {m, clips, o};
    if (rc == 0 && o->subset == AVS_SYNTH_AVSS) {
        char *cats = avs_fs_join(out_dir, "categories.csv");
        rc = avs_synth_avss_write_meta(out_dir, m, clips, o, err);
        if (rc == 0) rc = write_text(cats, fill_categories, &x, err);
        free(cats);
    } else if (rc == 0) {
        char *meta = avs_sprintf("%s/%s_meta_data.csv", out_dir,
                                 o->subset == AVS_SYNTH_S4 ? "s4" : "ms3");
        char *secs = avs_sprintf("%s/%s_synth_seconds.csv", out_dir,
                                 o->subset == AVS_SYNTH_S4 ? "s4" : "ms3");
        char *cats = avs_fs_join(out_dir, "categories.csv");
        rc = write_text(meta, fill_meta, &x, err);
        if (rc == 0) rc = write_text(secs, fill_seconds, &x, err);
        if (rc == 0) rc = write_text(cats, fill_categories, &x, err);
        free(meta);
        free(secs);
        free(cats);
    }
    free(clips);
    return rc;
}
