/* eval/protocols.c: the S4/MS3 evaluation protocols besides the official one (docs/avss.md).
 *
 *   official   mIoU = mean of per-frame IoU; F = mean over groups (videos, or K frames) of
 *              the max over thresholds of the group's mean f-curve (DESIGN §4, metrics.c)
 *   per-frame  mIoU as official; F = mean over frames with non-empty GT of each frame's own
 *              max over thresholds (a group of one frame)
 *   pooled     IoU = sum |P&G| / sum |P|G|; F = max over thresholds of the f of the summed
 *              tp, ps, gs over all frames (empty-GT frames add their false positives)
 * The official numbers follow the official float32 arithmetic; the two others are ours and
 * are computed in double.
 */
#include <string.h>

#include "eval/eval.h"

static const char *const NAMES[AVS_EVAL_NPROTOCOLS] = {"official", "per-frame", "pooled"};

const char *avs_eval_protocol_name(enum avs_eval_protocol p)
{
    AVS_ASSERT(p >= 0 && p < AVS_EVAL_NPROTOCOLS);
    return NAMES[p];
}

int avs_eval_protocol_parse(const char *name)
{
    for (int p = 0; p < AVS_EVAL_NPROTOCOLS; p++)
        if (!strcmp(name, NAMES[p]))
            return p;
    return -1;
}

void avs_eval_protocol_numbers(const struct avs_eval_summary *s, enum avs_eval_protocol p,
                               double *miou, double *fscore)
{
    switch (p) {
    case AVS_EVAL_PER_FRAME: *miou = s->miou, *fscore = s->f_per_frame; break;
    case AVS_EVAL_POOLED: *miou = s->dataset_iou, *fscore = s->f_pooled; break;
    default: *miou = s->miou, *fscore = s->fscore; break;
    }
}

/* beta^2 = 0.3 F of one (tp, ps, gs) triple, with the official epsilons; NaN -> 0. */
static double f_of(double tp, double ps, double gs)
{
    double prec = tp / (ps + 1e-20), rec = tp / (gs + 1e-20);
    double f = 1.3 * prec * rec / (0.3 * prec + rec);
    return f != f ? 0.0 : f;
}

static double max_curve(const float *f)
{
    float best = 0.0f;
    for (int i = 0; i < AVS_EVAL_NTH; i++)
        best = f[i] > best ? f[i] : best;
    return best;
}

void avs_eval_protocol_f(const struct avs_eval_counts *c, const int *idx, int n,
                         double *f_per_frame, double *f_pooled)
{
    double sum = 0, tp[AVS_EVAL_NTH] = {0}, ps[AVS_EVAL_NTH] = {0}, gs = 0;
    int num = 0;
    for (int a = 0; a < n; a++) {
        const struct avs_eval_counts *f = &c[idx[a]];
        for (int i = 0; i < AVS_EVAL_NTH; i++) {
            tp[i] += (double)f->tp[i];
            ps[i] += (double)f->ps[i];
        }
        gs += (double)f->gt;
        if (f->gt > 0) {
            sum += max_curve(f->f);
            num++;
        }
    }
    *f_per_frame = num ? sum / num : 0.0;
    double best = 0.0;
    for (int i = 0; gs > 0 && i < AVS_EVAL_NTH; i++) {
        double v = f_of(tp[i], ps[i], gs);
        best = v > best ? v : best;
    }
    *f_pooled = best;
}
