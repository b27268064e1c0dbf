/* eval/run.c: score every frame in parallel, then aggregate overall, per class, per video. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "eval/eval.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Read GT and prediction of one frame and fill its counts; 0, or -1 with err. */
static int score_frame(const struct avs_eval_frame *fr, struct avs_eval_counts *c,
                       struct avs_err *err)
{
    uint8_t *g = NULL, *v = NULL;
    float *x = NULL;
    int gw, gh, pw = 0, ph = 0, rc = -1;
    if (avs_eval_png_read(fr->gt, AVS_EVAL_GT, &g, &gw, &gh, err))
        return -1;
    int64_t n = (int64_t)gw * gh;
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] >= 128;
    if (!fr->pred) {
        v = avs_calloc((size_t)n, 1); /* missing, allowed: an all-zero probability map */
        pw = gw, ph = gh;
    } else if (ends_with(fr->pred, ".logits")) {
        if (avs_logits_read(fr->pred, &x, &pw, &ph, err))
            goto out;
    } else if (avs_eval_png_read(fr->pred, AVS_EVAL_PRED, &v, &pw, &ph, err)) {
        goto out;
    }
    if (pw != gw || ph != gh) {
        avs_err_set(err, "size mismatch: prediction %s is %dx%d but ground truth %s is %dx%d "
                         "(resize predictions to the mask size)", fr->pred, pw, ph, fr->gt, gw, gh);
        goto out;
    }
    if (x)
        avs_eval_score_logits(g, x, n, c);
    else
        avs_eval_score_u8(g, v, n, c);
    rc = 0;
out:
    free(g);
    free(v);
    free(x);
    return rc;
}

static int cmp_class(const void *a, const void *b)
{
    return strcmp(((const struct avs_eval_class *)a)->name, ((const struct avs_eval_class *)b)->name);
}

static void per_class(const struct avs_eval_set *set, struct avs_eval_result *res, int *idx)
{
    /* distinct category names */
    for (int v = 0; v < set->n_videos; v++) {
        const char *name = set->videos[v].category ? set->videos[v].category : "(none)";
        int found = 0;
        for (int c = 0; c < res->n_classes && !found; c++)
            found = !strcmp(res->classes[c].name, name);
        if (!found) {
            res->classes = avs_realloc(res->classes, sizeof *res->classes * (size_t)(res->n_classes + 1));
            memset(&res->classes[res->n_classes], 0, sizeof *res->classes);
            res->classes[res->n_classes++].name = avs_strdup(name);
        }
    }
    if (res->n_classes > 1)
        qsort(res->classes, (size_t)res->n_classes, sizeof *res->classes, cmp_class);
    for (int c = 0; c < res->n_classes; c++) {
        int n = 0;
        for (int f = 0; f < set->n_frames; f++) {
            const char *cat = set->videos[set->frames[f].video].category;
            if (res->status[f] != AVS_EVAL_FRAME_FAILED &&
                !strcmp(cat ? cat : "(none)", res->classes[c].name))
                idx[n++] = f;
        }
        avs_eval_aggregate(set, res->counts, idx, n, res->group_frames, &res->classes[c].s);
    }
}

int avs_eval_run(const struct avs_eval_set *set, const struct avs_eval_options *opt,
                 struct avs_eval_result *res, struct avs_err *err)
{
    memset(res, 0, sizeof *res);
    int nf = set->n_frames;
    res->group_frames = opt->group_frames;
    res->n_frames = nf;
    res->counts = avs_calloc((size_t)nf + 1, sizeof *res->counts);
    res->status = avs_calloc((size_t)nf + 1, 1);
    res->errors = avs_calloc((size_t)nf + 1, sizeof *res->errors);
    struct avs_progress prog;
    avs_progress_init(&prog, "eval", "frames", nf);
#pragma omp parallel for schedule(dynamic, 8) num_threads(opt->jobs > 0 ? opt->jobs : 1)
    for (int f = 0; f < nf; f++) {
        const struct avs_eval_frame *fr = &set->frames[f];
        struct avs_err e = {{0}};
        if (!fr->pred && !opt->allow_missing) {
            res->status[f] = AVS_EVAL_FRAME_FAILED;
            res->errors[f] = avs_sprintf("missing prediction %s", fr->want ? fr->want : "?");
        } else if (score_frame(fr, &res->counts[f], &e)) {
            res->status[f] = AVS_EVAL_FRAME_FAILED;
            res->errors[f] = avs_strdup(e.msg);
        } else {
            res->status[f] = fr->pred ? AVS_EVAL_FRAME_OK : AVS_EVAL_FRAME_MISSING;
        }
        avs_progress_add(&prog, 1);
    }
    avs_progress_end(&prog);
    int *idx = avs_malloc(sizeof(int) * ((size_t)nf + 1)), n = 0;
    for (int f = 0; f < nf; f++) {
        res->n_missing += res->status[f] == AVS_EVAL_FRAME_MISSING;
        res->n_failed += res->status[f] == AVS_EVAL_FRAME_FAILED;
        if (res->status[f] != AVS_EVAL_FRAME_FAILED)
            idx[n++] = f;
    }
    avs_eval_aggregate(set, res->counts, idx, n, opt->group_frames, &res->all);
    res->videos = avs_calloc((size_t)set->n_videos + 1, sizeof *res->videos);
    for (int v = 0; v < set->n_videos; v++) {
        const struct avs_eval_video *vd = &set->videos[v];
        int m = 0;
        for (int f = vd->first; f < vd->first + vd->n; f++)
            if (res->status[f] != AVS_EVAL_FRAME_FAILED)
                idx[m++] = f;
        avs_eval_aggregate(set, res->counts, idx, m, 0, &res->videos[v]);
    }
    per_class(set, res, idx);
    free(idx);
    if (n == 0)
        return avs_err_set(err, "no frame could be evaluated (%d failed)", res->n_failed);
    return 0;
}

void avs_eval_result_free(struct avs_eval_result *res)
{
    if (!res)
        return;
    for (int c = 0; c < res->n_classes; c++)
        free(res->classes[c].name);
    free(res->classes);
    free(res->videos);
    free(res->counts);
    for (int f = 0; res->errors && f < res->n_frames; f++)
        free(res->errors[f]);
    free(res->errors);
    free(res->status);
    memset(res, 0, sizeof *res);
}
