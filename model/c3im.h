/* model/c3im.h: C3IM, the cross-modal consensus class of C3N (DESIGN §6).
 *
 *   int target[N], target_v[N];
 *   avs_c3im(target, target_v, vlogits, alogits, S, N, V, A);
 *
 * Per frame n, with visual logits [V] (ImageNet: 1000) and audio logits [A] (AudioSet: 527):
 *   Pv = softmax(vlogits)^0.1, Pa = softmax(alogits)^0.1, W[i][j] = Pv[i] * S[i][j] * Pa[j];
 *   target = row i of the first maximum of W in row-major order (the consensus class, CC),
 *   target_v = index of the first maximum of vlogits (the top visual class, CC-V).
 * All in float32, in PyTorch's order ((Pv * S) * Pa, softmax with the max subtracted), so that
 * near-ties resolve as the official code does. ref: C3N paper Eq. 3-4, DESIGN §6.
 * Host code on host arrays (a few thousand values per frame, and the targets are ints that
 * steer the next pass): callers download the logits from the backend first
 * (features/run_video.c, train/finetune.c), and hand the targets to avs_pvt_gradcam_kept.
 */
#ifndef AVS_MODEL_C3IM_H
#define AVS_MODEL_C3IM_H

/* target [N], target_v [N]; vlogits [N,V], alogits [N,A], S [V,A]; wmax [N] (may be NULL):
 * the maximum of W. Scratch-free (two small stack-sized buffers are malloc'd once per call). */
void avs_c3im(int *target, int *target_v, float *wmax, const float *vlogits, const float *alogits,
              const float *S, int N, int V, int A);

/* y [n] = softmax(x [n])^p, float32. */
void avs_c3im_softpow(float *y, const float *x, int n, float p);

#endif
