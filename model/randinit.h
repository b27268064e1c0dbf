/* model/randinit.h: deterministic random parameters for `--random-init SEED` (tests and
 * demos without downloaded weights). A counter-based generator (splitmix64 of seed and a
 * per-tensor stream id), so a tensor's values do not depend on thread count or on the other
 * tensors, and the same seed gives the same bits everywhere. The fills write host memory:
 * networks make their values on the host and upload them (avs_tensor_set_from_host).
 *
 *   avs_randinit_normal(w, n, 0.02f, seed, stream);   N(0, std^2) truncated at 2 std
 *   avs_randinit_uniform(w, n, bound, seed, stream);  U(-bound, bound)
 */
#ifndef AVS_MODEL_RANDINIT_H
#define AVS_MODEL_RANDINIT_H

#include <stddef.h>
#include <stdint.h>

void avs_randinit_normal(float *w, size_t n, float std, uint64_t seed, uint64_t stream);
void avs_randinit_uniform(float *w, size_t n, float bound, uint64_t seed, uint64_t stream);
void avs_randinit_const(float *w, size_t n, float v);

#endif
