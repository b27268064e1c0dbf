/* model/c3im.h: C3IM, the cross-modal consensus class of C3N (DESIGN §6).
 *
 *   int target[N], target_v[N];
 *   avs_c3im(target, target_v, NULL, vlogits, alogits, S, N, V, A, AVS_C3IM_ALPHA, AVS_C3IM_BETA);
 *
 * Per frame n, with visual logits [V] (ImageNet: 1000) and audio logits [A] (AudioSet: 527):
 *   Pv = softmax(vlogits)^alpha, Pa = softmax(alogits)^beta, W[i][j] = Pv[i] * S[i][j] * Pa[j];
 *   target = row i of the first maximum of W in row-major order (the consensus class, CC),
 *   target_v = index of the first maximum of vlogits (the top visual class, CC-V).
 * alpha and beta are the paper's balance coefficients (its Table III varies them); the official
 * code (semantic_sim in AVS-C3N's model/utils.py) has one exponent `alpha = 0.1` for both, so
 * alpha = beta = 0.1 is the official model. Both must be finite and > 0
 * (avs_c3im_exponent_ok).
 * Pv and Pa are float32 values of the exact softmax^p (computed in double, rounded once: the
 * power multiplies a float32 softmax's relative error by p); W is float32 in the official
 * code's order, W = (Pa[j] * S[i][j]) * Pv[i] (`a_score_matrix * sim_matrix *
 * v_score_matrix`), so that exact ties resolve as the official code does. ref: C3N paper
 * Eq. 3-4.
 * Host code on host arrays (a few thousand values per frame, and the targets are ints that
 * steer the next pass): callers download the logits from the backend first
 * (features/run_video.c, train/finetune.c), and hand the targets to avs_pvt_gradcam_kept.
 */
#ifndef AVS_MODEL_C3IM_H
#define AVS_MODEL_C3IM_H

/* The official exponents (semantic_sim's default alpha, applied to both modalities). */
#define AVS_C3IM_ALPHA 0.1
#define AVS_C3IM_BETA 0.1

/* target [N], target_v [N]; vlogits [N,V], alogits [N,A], S [V,A]; wmax [N] (may be NULL):
 * the maximum of W. alpha: exponent of the visual probabilities, beta: of the audio ones
 * (both > 0: AVS_ASSERT). Two row buffers are malloc'd once per call. */
void avs_c3im(int *target, int *target_v, float *wmax, const float *vlogits, const float *alogits,
              const float *S, int N, int V, int A, float alpha, float beta);

/* y [n] = softmax(x [n])^p, float32 (computed in double). */
void avs_c3im_softpow(float *y, const float *x, int n, float p);

/* 1 when x can be a C3IM exponent (finite and > 0), else 0. */
int avs_c3im_exponent_ok(double x);

struct avs_err;
/* The value of a command-line option (flag "--alpha" or "--beta") as an exponent: 0, or -1
 * with err naming the flag and the value ("--alpha 0: ... > 0"). */
int avs_c3im_parse(const char *flag, const char *arg, double *x, struct avs_err *err);

#endif
