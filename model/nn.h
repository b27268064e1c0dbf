/* model/nn.h: layers built from the backend primitives (model/ops.h), in llm.c's form:
 * x_fwd(out, saved..., in, params, dims) / x_bwd(din, dparams, dout, in, saved..., params,
 * dims); backward ADDS into every gradient (NULL: not wanted); nothing allocates.
 *
 * ref: torch.nn.Linear (y = x W^T + b), torch.nn.functional.* for the rest.
 */
#ifndef AVS_MODEL_NN_H
#define AVS_MODEL_NN_H

#include "backend/backend.h"
#include "core/tensor.h"
#include "backend/ops.h"

/* y [M,O] = x [M,I] * W^T [I,O] + b [O] (b may be NULL). */
void avs_linear_fwd(float *y, const float *x, const float *w, const float *b, int M, int I, int O);
void avs_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                    const float *w, int M, int I, int O);

/* CCAM (DESIGN §6) for one stage map x [N,C,H,W] with Grad-CAM weights cw [N,C]:
 *   s = sigmoid(cw / max(||cw||_2, 1e-12)); x1 = x*s; out = x1 * sigmoid(mean_c x1).
 * Saves s [N*C], x1 [N*C*HW], sm [N*HW] for backward (w.r.t. x only: the weights come from a
 * Grad-CAM pass and are constants of the step). All pointers are device memory (scratch too). */
void avs_ccam_fwd(float *out, float *s, float *x1, float *sm, const float *x, const float *cw,
                  int N, int C, int HW);
void avs_ccam_bwd(float *dx, const float *dout, const float *s, const float *x1, const float *sm,
                  int N, int C, int HW, float *scratch /* [N*HW] */);

#endif
