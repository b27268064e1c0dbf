/* eval/avss_metrics.c: the AVSS metrics: every frame's class counts in parallel, then the
 * official aggregation and its labelled variants, serially in frame order (so the numbers are
 * the same bits for any -j).
 *
 * ref: AVSBench avs_scripts/avss/utils/compute_color_metrics.py _batch_miou_fscore, test.py.
 * Per frame, in float32 as torch computes it (histc bins 1..71 hold classes 0..70):
 *   iou[c] = inter / (2.220446049250313e-16 + union)      (float32: eps vanishes for union >= 1)
 *   F[c]   = 1.3 * prec * rec / (0.3 * prec + rec), prec = inter/pred, rec = inter/lab, NaN -> 0
 *   count[c] += union > 0
 * The official test loop sums a batch of AVS_AVSS_BATCH videos in a float32 tensor and adds
 * that to the running float32 total; the same partial sums are formed here. Then
 *   IoU[c] = total / count (float32), NaN -> 0;  mIoU = mean over all 71 classes.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "eval/avss.h"

#define NPIX ((int64_t)AVS_AVSS_SIZE * AVS_AVSS_SIZE)

static const char *const VARIANTS[AVS_AVSS_NVARIANTS] = {"no-bg", "official-no-bg", "present",
                                                         "pooled"};

const char *avs_avss_variant_name(enum avs_avss_variant v)
{
    AVS_ASSERT(v >= 0 && v < AVS_AVSS_NVARIANTS);
    return VARIANTS[v];
}

const char *avs_avss_protocol(const struct avs_avss_result *res)
{
    return res->padded_skip ? "avss-official-real-frames" : "avss-official";
}

/* One frame's float32 iou and F per class, as the official code computes them. */
static void frame_scores(const struct avs_avss_counts *c, float iou[], float f[])
{
    for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
        float inter = (float)c->inter[k], pred = (float)c->pred[k], lab = (float)c->lab[k];
        float uni = pred + lab - inter;
        iou[k] = 1.0f * inter / (2.220446049250313e-16f + uni);
        float prec = inter / pred, rec = inter / lab;
        float v = 1.3f * prec * rec / (0.3f * prec + rec);
        f[k] = isnan(v) ? 0.0f : v;
    }
}

/* ref _batch_miou_fscore vid_miou_list: sum(iou) / #(iou != 0); NaN (no non-zero) -> 0. */
static double frame_vid_miou(const float iou[])
{
    float sum = 0.0f;
    int nz = 0;
    for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
        sum += iou[k];
        nz += iou[k] != 0.0f;
    }
    return nz ? (double)(sum / (float)nz) : 0.0;
}

static double mean_of(const double *v, int from, int to, const int *only_present,
                      const struct avs_avss_class *cl)
{
    double s = 0;
    int n = 0;
    for (int k = from; k < to; k++)
        if (!only_present || cl[k].frames > 0) {
            s += v[k];
            n++;
        }
    return n ? s / n : 0.0;
}

/* The variants from the per-class numbers (docs/avss.md). */
static void variants(struct avs_avss_result *r)
{
    double iou[AVS_AVSS_MAX_CLASSES], f[AVS_AVSS_MAX_CLASSES], piou[AVS_AVSS_MAX_CLASSES], pf[AVS_AVSS_MAX_CLASSES];
    static const int PRESENT = 1;
    int pooled_n = 0;
    double ps_iou = 0, ps_f = 0;
    for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
        const struct avs_avss_class *c = &r->classes[k];
        iou[k] = c->iou;
        f[k] = c->fscore;
        piou[k] = c->uni ? (double)c->inter / (double)c->uni : 0.0;
        double prec = (double)c->inter / (double)c->pred, rec = (double)c->inter / (double)c->lab;
        double v = 1.3 * prec * rec / (0.3 * prec + rec);
        pf[k] = isnan(v) ? 0.0 : v;
        if (c->uni > 0) {
            ps_iou += piou[k];
            ps_f += pf[k];
            pooled_n++;
        }
    }
    r->miou = mean_of(iou, 0, r->n_classes, NULL, r->classes);
    r->fscore = mean_of(f, 0, r->n_classes, NULL, r->classes);
    r->variant[AVS_AVSS_NO_BG][0] = mean_of(iou, 1, r->n_classes, NULL, r->classes);
    r->variant[AVS_AVSS_NO_BG][1] = mean_of(f, 1, r->n_classes, NULL, r->classes);
    r->variant[AVS_AVSS_OFFICIAL_NO_BG][0] = mean_of(iou, 0, r->n_classes - 1, NULL, r->classes);
    r->variant[AVS_AVSS_OFFICIAL_NO_BG][1] = mean_of(f, 0, r->n_classes - 1, NULL, r->classes);
    r->variant[AVS_AVSS_PRESENT][0] = mean_of(iou, 0, r->n_classes, &PRESENT, r->classes);
    r->variant[AVS_AVSS_PRESENT][1] = mean_of(f, 0, r->n_classes, &PRESENT, r->classes);
    r->variant[AVS_AVSS_POOLED][0] = pooled_n ? ps_iou / pooled_n : 0.0;
    r->variant[AVS_AVSS_POOLED][1] = pooled_n ? ps_f / pooled_n : 0.0;
}

/* Add a batch's float32 sums into the totals and clear it. */
static void flush_batch(float bi[], float bf[], float ti[], float tf[])
{
    for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
        ti[k] += bi[k];
        tf[k] += bf[k];
        bi[k] = bf[k] = 0.0f;
    }
}

/* One video's used frames into the batch sums, the pooled counts and its own number. */
static void add_video(const struct avs_avss_set *set, const struct avs_avss_counts *c,
                      const uint8_t *use, int v, float bi[], float bf[], int count[],
                      struct avs_avss_result *r)
{
    const struct avs_avss_video *vd = &set->videos[v];
    struct avs_avss_vstat *vs = &r->videos[v];
    double vsum = 0;
    memset(vs, 0, sizeof *vs);
    for (int f = vd->first; f < vd->first + vd->n; f++) {
        if (!use[f])
            continue;
        float iou[AVS_AVSS_MAX_CLASSES], fs[AVS_AVSS_MAX_CLASSES];
        frame_scores(&c[f], iou, fs);
        for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
            struct avs_avss_class *cl = &r->classes[k];
            int64_t uni = (int64_t)c[f].pred[k] + c[f].lab[k] - c[f].inter[k];
            bi[k] += iou[k];
            bf[k] += fs[k];
            count[k] += uni > 0;
            cl->inter += c[f].inter[k];
            cl->pred += c[f].pred[k];
            cl->lab += c[f].lab[k];
            cl->uni += uni;
        }
        vsum += frame_vid_miou(iou);
        vs->frames++;
        vs->padded += set->frames[f].padded;
        r->frames++;
    }
    vs->miou = vs->frames ? vsum / vs->frames : 0.0;
}

void avs_avss_aggregate(const struct avs_avss_set *set, const struct avs_avss_counts *c,
                        const uint8_t *use, struct avs_avss_result *r)
{
    float bi[AVS_AVSS_MAX_CLASSES] = {0}, bf[AVS_AVSS_MAX_CLASSES] = {0};
    float ti[AVS_AVSS_MAX_CLASSES] = {0}, tf[AVS_AVSS_MAX_CLASSES] = {0};
    int count[AVS_AVSS_MAX_CLASSES] = {0};
    memset(r->classes, 0, sizeof r->classes);
    r->n_classes = set->n_classes;
    r->frames = 0;
    for (int v = 0; v < set->n_videos; v++) {
        add_video(set, c, use, v, bi, bf, count, r);
        if (v % AVS_AVSS_BATCH == AVS_AVSS_BATCH - 1 || v == set->n_videos - 1)
            flush_batch(bi, bf, ti, tf);
    }
    for (int k = 0; k < AVS_AVSS_MAX_CLASSES; k++) {
        float n = (float)count[k], iou = ti[k] / n, f = tf[k] / n;
        r->classes[k].iou = isnan(iou) ? 0.0 : iou;
        r->classes[k].fscore = isnan(f) ? 0.0 : f;
        r->classes[k].frames = count[k];
    }
    variants(r);
}

/* Score one frame into c; the status it ends with. */
static int score_frame(const struct avs_avss_frame *fr, int n_classes, const struct avs_avss_options *opt,
                       struct avs_avss_counts *c, char **error)
{
    struct avs_err e = {{0}};
    uint8_t *lab = avs_malloc((size_t)NPIX), *pred = avs_calloc((size_t)NPIX, 1);
    int status;
    if (!fr->pred && !fr->padded && !opt->allow_missing) {
        *error = avs_sprintf("missing prediction %s", fr->want ? fr->want : "?");
        status = AVS_AVSS_FAILED;
    } else if (avs_avss_read_label(fr, n_classes, lab, &c->unknown, &e) ||
               (fr->pred && avs_avss_read_pred(fr->pred, n_classes, pred, &e))) {
        *error = avs_strdup(e.msg);
        status = AVS_AVSS_FAILED;
    } else {
        avs_avss_count(pred, lab, NPIX, c); /* no prediction: all background */
        status = fr->pred ? (fr->padded ? AVS_AVSS_PADDED_GIVEN : AVS_AVSS_OK)
                          : (fr->padded ? AVS_AVSS_PADDED_ASSUMED : AVS_AVSS_MISSING);
    }
    free(lab);
    free(pred);
    return status;
}

int avs_avss_run(const struct avs_avss_set *set, const struct avs_avss_options *opt,
                 struct avs_avss_result *res, struct avs_err *err)
{
    memset(res, 0, sizeof *res);
    int nf = set->n_frames;
    res->n_frames = nf;
    res->padded_skip = opt->padded_skip;
    res->counts = avs_calloc((size_t)nf + 1, sizeof *res->counts);
    res->status = avs_calloc((size_t)nf + 1, 1);
    res->errors = avs_calloc((size_t)nf + 1, sizeof *res->errors);
    res->videos = avs_calloc((size_t)set->n_videos + 1, sizeof *res->videos);
    struct avs_progress prog;
    avs_progress_init(&prog, "eval", "frames", nf);
#pragma omp parallel for schedule(dynamic, 4) num_threads(opt->jobs > 0 ? opt->jobs : 1)
    for (int f = 0; f < nf; f++) {
        const struct avs_avss_frame *fr = &set->frames[f];
        if (opt->padded_skip && fr->padded)
            res->status[f] = AVS_AVSS_PADDED_ASSUMED; /* not read, not used */
        else
            res->status[f] = (uint8_t)score_frame(fr, set->n_classes, opt, &res->counts[f], &res->errors[f]);
        avs_progress_add(&prog, 1);
    }
    avs_progress_end(&prog);
    uint8_t *use = avs_calloc((size_t)nf + 1, 1);
    for (int f = 0; f < nf; f++) {
        int s = res->status[f], skip = opt->padded_skip && set->frames[f].padded;
        use[f] = s != AVS_AVSS_FAILED && !skip;
        res->n_failed += s == AVS_AVSS_FAILED;
        res->n_missing += s == AVS_AVSS_MISSING;
        res->padded_given += use[f] && s == AVS_AVSS_PADDED_GIVEN;
        res->padded_assumed += use[f] && s == AVS_AVSS_PADDED_ASSUMED;
        res->unknown_pixels += use[f] ? res->counts[f].unknown : 0;
    }
    avs_avss_aggregate(set, res->counts, use, res);
    free(use);
    if (res->frames == 0)
        return avs_err_set(err, "no AVSS frame could be evaluated (%d failed)", res->n_failed);
    return 0;
}

void avs_avss_result_free(struct avs_avss_result *res)
{
    if (!res)
        return;
    for (int f = 0; res->errors && f < res->n_frames; f++)
        free(res->errors[f]);
    free(res->errors);
    free(res->status);
    free(res->counts);
    free(res->videos);
    memset(res, 0, sizeof *res);
}
