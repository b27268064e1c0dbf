/* eval/metrics.c: per-frame histograms and the AVSBench aggregates (DESIGN §4).
 *
 * ref: AVSBench avs_scripts/avs_s4/utils/utility.py: mask_iou (IoU), _eval_pr and
 * Eval_Fmeasure (F). The official code loops over 255 thresholds per frame; here each pixel
 * lands in bin j = #{i : t_i <= p} (0..255), so Y_i = (p >= t_i) = (j > i) and every
 * threshold's counts are suffix sums of one 256-bin histogram. All arithmetic that the
 * official code does in float32 is done in float32, in the same order (-std=c11 keeps GCC
 * from fusing multiply-adds).
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "eval/eval.h"

/* torch.linspace(0, 1 - 1e-10, 255) as float32, exactly as PyTorch 1.13's CPU kernel returns it
 * (tests/gen/eval_golden.py checks it against torch). The official _eval_pr builds this table
 * on the CPU and then moves it to the GPU. The kernel mixes a vectorised arange with scalar
 * tails, so its values differ by one ulp from start + i*step at 36 places; such
 * differences can only matter for a logit whose sigmoid falls between the two values, and
 * never for an 8-bit probability v/255 (at least 1.5e-5 from every threshold but 0 and 1). */
static const float TORCH_LINSPACE[AVS_EVAL_NTH] = {
    0x0p+0f, 0x1.020408p-8f, 0x1.020408p-7f, 0x1.83060cp-7f, 0x1.020408p-6f,
    0x1.42850ap-6f, 0x1.83060cp-6f, 0x1.c3870ep-6f, 0x1.020408p-5f, 0x1.224488p-5f,
    0x1.42850ap-5f, 0x1.62c58cp-5f, 0x1.83060cp-5f, 0x1.a3468cp-5f, 0x1.c3870ep-5f,
    0x1.e3c79p-5f, 0x1.020408p-4f, 0x1.122448p-4f, 0x1.224488p-4f, 0x1.3264cap-4f,
    0x1.42850ap-4f, 0x1.52a54ap-4f, 0x1.62c58cp-4f, 0x1.72e5ccp-4f, 0x1.83060cp-4f,
    0x1.93264cp-4f, 0x1.a3468cp-4f, 0x1.b366cep-4f, 0x1.c3870ep-4f, 0x1.d3a74ep-4f,
    0x1.e3c79p-4f, 0x1.f3e7dp-4f, 0x1.020408p-3f, 0x1.0a1428p-3f, 0x1.122448p-3f,
    0x1.1a3468p-3f, 0x1.224488p-3f, 0x1.2a54aap-3f, 0x1.3264cap-3f, 0x1.3a74eap-3f,
    0x1.42850ap-3f, 0x1.4a952ap-3f, 0x1.52a54ap-3f, 0x1.5ab56ap-3f, 0x1.62c58cp-3f,
    0x1.6ad5acp-3f, 0x1.72e5ccp-3f, 0x1.7af5ecp-3f, 0x1.83060cp-3f, 0x1.8b162cp-3f,
    0x1.93264cp-3f, 0x1.9b366cp-3f, 0x1.a3468cp-3f, 0x1.ab56aep-3f, 0x1.b366cep-3f,
    0x1.bb76eep-3f, 0x1.c3870ep-3f, 0x1.cb972ep-3f, 0x1.d3a74ep-3f, 0x1.dbb76ep-3f,
    0x1.e3c79p-3f, 0x1.ebd7bp-3f, 0x1.f3e7dp-3f, 0x1.fbf7fp-3f, 0x1.020408p-2f,
    0x1.060c18p-2f, 0x1.0a1428p-2f, 0x1.0e1c38p-2f, 0x1.122448p-2f, 0x1.162c58p-2f,
    0x1.1a3468p-2f, 0x1.1e3c78p-2f, 0x1.224488p-2f, 0x1.264c98p-2f, 0x1.2a54a8p-2f,
    0x1.2e5cb8p-2f, 0x1.3264c8p-2f, 0x1.366cd8p-2f, 0x1.3a74e8p-2f, 0x1.3e7cf8p-2f,
    0x1.42850ap-2f, 0x1.468d1ap-2f, 0x1.4a952ap-2f, 0x1.4e9d3ap-2f, 0x1.52a54ap-2f,
    0x1.56ad5ap-2f, 0x1.5ab56ap-2f, 0x1.5ebd7ap-2f, 0x1.62c58cp-2f, 0x1.66cd9cp-2f,
    0x1.6ad5acp-2f, 0x1.6eddbcp-2f, 0x1.72e5ccp-2f, 0x1.76eddcp-2f, 0x1.7af5ecp-2f,
    0x1.7efdfcp-2f, 0x1.83060cp-2f, 0x1.870e1cp-2f, 0x1.8b162cp-2f, 0x1.8f1e3cp-2f,
    0x1.93264cp-2f, 0x1.972e5cp-2f, 0x1.9b366cp-2f, 0x1.9f3e7cp-2f, 0x1.a3468cp-2f,
    0x1.a74e9cp-2f, 0x1.ab56acp-2f, 0x1.af5ebcp-2f, 0x1.b366ccp-2f, 0x1.b76edcp-2f,
    0x1.bb76ecp-2f, 0x1.bf7efcp-2f, 0x1.c3870ep-2f, 0x1.c78f1ep-2f, 0x1.cb972ep-2f,
    0x1.cf9f3ep-2f, 0x1.d3a74ep-2f, 0x1.d7af5ep-2f, 0x1.dbb76ep-2f, 0x1.dfbf7ep-2f,
    0x1.e3c79p-2f, 0x1.e7cfap-2f, 0x1.ebd7bp-2f, 0x1.efdfcp-2f, 0x1.f3e7dp-2f,
    0x1.f7efep-2f, 0x1.fbf7fp-2f, 0x1p-1f, 0x1.020408p-1f, 0x1.04081p-1f,
    0x1.060c18p-1f, 0x1.08102p-1f, 0x1.0a1428p-1f, 0x1.0c183p-1f, 0x1.0e1c38p-1f,
    0x1.10204p-1f, 0x1.122448p-1f, 0x1.14285p-1f, 0x1.162c58p-1f, 0x1.18306p-1f,
    0x1.1a3468p-1f, 0x1.1c387p-1f, 0x1.1e3c78p-1f, 0x1.20408p-1f, 0x1.22448ap-1f,
    0x1.244892p-1f, 0x1.264c9ap-1f, 0x1.2850a2p-1f, 0x1.2a54aap-1f, 0x1.2c58b2p-1f,
    0x1.2e5cbap-1f, 0x1.3060c2p-1f, 0x1.3264cap-1f, 0x1.3468d2p-1f, 0x1.366cdap-1f,
    0x1.3870e2p-1f, 0x1.3a74eap-1f, 0x1.3c78f2p-1f, 0x1.3e7cfap-1f, 0x1.408102p-1f,
    0x1.42850ap-1f, 0x1.448912p-1f, 0x1.468d1ap-1f, 0x1.489122p-1f, 0x1.4a952ap-1f,
    0x1.4c9932p-1f, 0x1.4e9d3ap-1f, 0x1.50a142p-1f, 0x1.52a54ap-1f, 0x1.54a952p-1f,
    0x1.56ad5ap-1f, 0x1.58b162p-1f, 0x1.5ab56ap-1f, 0x1.5cb972p-1f, 0x1.5ebd7ap-1f,
    0x1.60c182p-1f, 0x1.62c58cp-1f, 0x1.64c994p-1f, 0x1.66cd9cp-1f, 0x1.68d1a4p-1f,
    0x1.6ad5acp-1f, 0x1.6cd9b4p-1f, 0x1.6eddbcp-1f, 0x1.70e1c4p-1f, 0x1.72e5ccp-1f,
    0x1.74e9d4p-1f, 0x1.76eddcp-1f, 0x1.78f1e4p-1f, 0x1.7af5ecp-1f, 0x1.7cf9f4p-1f,
    0x1.7efdfcp-1f, 0x1.810204p-1f, 0x1.83060cp-1f, 0x1.850a14p-1f, 0x1.870e1cp-1f,
    0x1.891224p-1f, 0x1.8b162cp-1f, 0x1.8d1a34p-1f, 0x1.8f1e3cp-1f, 0x1.912244p-1f,
    0x1.93264cp-1f, 0x1.952a54p-1f, 0x1.972e5cp-1f, 0x1.993264p-1f, 0x1.9b366cp-1f,
    0x1.9d3a74p-1f, 0x1.9f3e7cp-1f, 0x1.a14284p-1f, 0x1.a3468ep-1f, 0x1.a54a96p-1f,
    0x1.a74e9ep-1f, 0x1.a952a6p-1f, 0x1.ab56aep-1f, 0x1.ad5ab6p-1f, 0x1.af5ebep-1f,
    0x1.b162c6p-1f, 0x1.b366cep-1f, 0x1.b56ad6p-1f, 0x1.b76edep-1f, 0x1.b972e6p-1f,
    0x1.bb76eep-1f, 0x1.bd7af6p-1f, 0x1.bf7efep-1f, 0x1.c18306p-1f, 0x1.c3870ep-1f,
    0x1.c58b16p-1f, 0x1.c78f1ep-1f, 0x1.c99326p-1f, 0x1.cb972ep-1f, 0x1.cd9b36p-1f,
    0x1.cf9f3ep-1f, 0x1.d1a346p-1f, 0x1.d3a74ep-1f, 0x1.d5ab56p-1f, 0x1.d7af5ep-1f,
    0x1.d9b366p-1f, 0x1.dbb76ep-1f, 0x1.ddbb76p-1f, 0x1.dfbf7ep-1f, 0x1.e1c386p-1f,
    0x1.e3c79p-1f, 0x1.e5cb98p-1f, 0x1.e7cfap-1f, 0x1.e9d3a8p-1f, 0x1.ebd7bp-1f,
    0x1.eddbb8p-1f, 0x1.efdfcp-1f, 0x1.f1e3c8p-1f, 0x1.f3e7dp-1f, 0x1.f5ebd8p-1f,
    0x1.f7efep-1f, 0x1.f9f3e8p-1f, 0x1.fbf7fp-1f, 0x1.fdfbf8p-1f, 0x1p+0f,
};

void avs_eval_thresholds(float t[AVS_EVAL_NTH])
{
    memcpy(t, TORCH_LINSPACE, sizeof TORCH_LINSPACE);
}

static float TH[AVS_EVAL_NTH];
static uint8_t J_OF_V[256]; /* bin of probability v/255 */
static uint8_t P_OF_V[256]; /* v/255 > 0.5 */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* #{i : t_i <= p} for p in [0, 1]; t is increasing. */
static int bin_of(float p)
{
    int j = (int)(p * (float)(AVS_EVAL_NTH - 1));
    if (j < 0)
        j = 0;
    if (j > AVS_EVAL_NTH)
        j = AVS_EVAL_NTH;
    while (j < AVS_EVAL_NTH && TH[j] <= p)
        j++;
    while (j > 0 && TH[j - 1] > p)
        j--;
    return j;
}

static void init_tables(void)
{
    avs_eval_thresholds(TH);
    for (int v = 0; v < 256; v++) {
        float p = (float)v / 255.0f;
        J_OF_V[v] = (uint8_t)bin_of(p);
        P_OF_V[v] = p > 0.5f;
    }
}

/* From the bin histograms (index 0: all pixels, 1: GT pixels) to IoU and the F curve. */
static void finish(const int64_t bins[2][AVS_EVAL_NTH + 1], int64_t n, int64_t gt, int64_t pred,
                   int64_t inter, struct avs_eval_counts *c)
{
    memset(c, 0, sizeof *c);
    c->pixels = n;
    c->gt = gt;
    c->pred = pred;
    c->inter = inter;
    c->uni = pred + gt - inter;
    if (gt == 0) {
        /* ref mask_iou: no object -> inter = #(P==0 & G==0), union = H*W */
        c->iou = (float)(n - pred) / ((float)n + 1e-7f);
        int64_t ps = 0;
        for (int i = AVS_EVAL_NTH - 1; i >= 0; i--) {
            ps += bins[0][i + 1];
            c->ps[i] = ps; /* false positives only: the pooled F counts them */
        }
        return;
    }
    c->iou = (float)inter / ((float)c->uni + 1e-7f);
    int64_t ps = 0, tp = 0;
    const float gs = (float)gt + 1e-20f;
    for (int i = AVS_EVAL_NTH - 1; i >= 0; i--) {
        ps += bins[0][i + 1]; /* pixels with j > i, i.e. p >= t_i */
        tp += bins[1][i + 1];
        c->ps[i] = ps;
        c->tp[i] = tp;
        float prec = (float)tp / ((float)ps + 1e-20f), rec = (float)tp / gs;
        float f = 1.3f * prec * rec / (0.3f * prec + rec);
        c->f[i] = f != f ? 0.0f : f;
    }
}

void avs_eval_score_u8(const uint8_t *fg, const uint8_t *v, int64_t n, struct avs_eval_counts *c)
{
    pthread_once(&tables_once, init_tables);
    int64_t hist[2][256] = {{0}};
    for (int64_t i = 0; i < n; i++)
        hist[fg[i] != 0][v[i]]++;
    int64_t bins[2][AVS_EVAL_NTH + 1] = {{0}}, gt = 0, pred = 0, inter = 0;
    for (int x = 0; x < 256; x++) {
        bins[0][J_OF_V[x]] += hist[0][x] + hist[1][x];
        bins[1][J_OF_V[x]] += hist[1][x];
        gt += hist[1][x];
        if (P_OF_V[x]) {
            pred += hist[0][x] + hist[1][x];
            inter += hist[1][x];
        }
    }
    finish(bins, n, gt, pred, inter, c);
}

void avs_eval_score_logits(const uint8_t *fg, const float *x, int64_t n,
                           struct avs_eval_counts *c)
{
    pthread_once(&tables_once, init_tables);
    int64_t bins[2][AVS_EVAL_NTH + 1] = {{0}}, gt = 0, pred = 0, inter = 0;
    for (int64_t i = 0; i < n; i++) {
        float p = avs_eval_sigmoid(x[i]);
        int g = fg[i] != 0, j = bin_of(p);
        bins[0][j]++;
        bins[1][j] += g;
        gt += g;
        if (p > 0.5f) {
            pred++;
            inter += g;
        }
    }
    finish(bins, n, gt, pred, inter, c);
}

/* One F group: max over thresholds of the float32 mean curve of its non-empty frames. */
static double group_score(const struct avs_eval_counts *c, const int *idx, int n)
{
    float sum[AVS_EVAL_NTH] = {0};
    int num = 0;
    for (int a = 0; a < n; a++) {
        const struct avs_eval_counts *f = &c[idx[a]];
        if (f->gt == 0)
            continue; /* ref Eval_Fmeasure: totally black GTs are out of consideration */
        for (int i = 0; i < AVS_EVAL_NTH; i++)
            sum[i] += f->f[i];
        num++;
    }
    if (num == 0)
        return 0.0;
    float best = -1.0f;
    for (int i = 0; i < AVS_EVAL_NTH; i++) {
        float s = sum[i] / (float)num;
        if (s > best)
            best = s;
    }
    return best;
}

void avs_eval_aggregate(const struct avs_eval_set *set, const struct avs_eval_counts *c,
                        const int *idx, int n, int group_frames, struct avs_eval_summary *out)
{
    memset(out, 0, sizeof *out);
    double iou = 0, fsum = 0;
    int64_t inter = 0, uni = 0;
    int last_video = -1;
    for (int a = 0; a < n; a++) {
        const struct avs_eval_counts *f = &c[idx[a]];
        iou += f->iou;
        inter += f->inter;
        uni += f->uni;
        out->empty_gt += f->gt == 0;
        int v = set->frames[idx[a]].video;
        if (v != last_video)
            out->videos++;
        last_video = v;
    }
    /* groups: runs of one video, or consecutive chunks of group_frames */
    for (int a = 0; a < n;) {
        int b = a + 1;
        if (group_frames > 0)
            b = a + group_frames < n ? a + group_frames : n;
        else
            while (b < n && set->frames[idx[b]].video == set->frames[idx[a]].video)
                b++;
        fsum += group_score(c, idx + a, b - a);
        out->groups++;
        a = b;
    }
    avs_eval_protocol_f(c, idx, n, &out->f_per_frame, &out->f_pooled);
    out->frames = n;
    out->miou = n ? iou / n : 0.0;
    out->fscore = out->groups ? fsum / out->groups : 0.0;
    out->dataset_iou = uni ? (double)inter / (double)uni : 1.0;
}
