/* model/c3n_blocks.h: internal to the C3N head: the blocks (ASPP, TPAVI, fusion, output)
 * forward and backward, and the carving of the activation arena. Use model/c3n_head.h. */
#ifndef AVS_MODEL_C3N_BLOCKS_H
#define AVS_MODEL_C3N_BLOCKS_H

#include "model/c3n_head.h"

void avs_c3n_blocks_carve(struct avs_c3n_head *h);

/* n floats from the scratch arena (stack discipline: mark/rewind), zeroed if zero != 0. */
float *avs_c3n_stake(struct avs_c3n_head *h, size_t n, int zero);

/* ASPP (model/c3n_aspp.c): plan the taps of stage s (before carving), scratch it needs,
 * forward (into st->a) and backward (parameter gradients added; dx added into when not NULL). */
void avs_c3n_aspp_plan(struct avs_c3n_head *h, int s);
/* Its tap planner for dilations dil[] (model/c3n_aspp.c), shared with the neck. */
void avs_c3n_taps_plan(struct avs_c3n_head *h, int s, const int dil[4], int first_1x1);
size_t avs_c3n_aspp_scratch(const struct avs_c3n_head *h, int s);
void avs_c3n_aspp_fwd(struct avs_c3n_head *h, int s, const float *x);
void avs_c3n_aspp_bwd(struct avs_c3n_head *h, int s, const float *da, float *dx);
/* The AVSBench baseline's neck (model/c3n_neck.c), the same four calls: the ASPP ones hand
 * over to these when h->cfg.avsbench. */
void avs_c3n_neck_plan(struct avs_c3n_head *h, int s);
size_t avs_c3n_neck_scratch(const struct avs_c3n_head *h, int s);
void avs_c3n_neck_fwd(struct avs_c3n_head *h, int s, const float *x);
void avs_c3n_neck_bwd(struct avs_c3n_head *h, int s, const float *da, float *dx);

/* output_conv (model/c3n_output.c): scratch it needs, floats of the ring's columns kept from
 * the forward, forward (from path1's output), backward (parameter gradients added; dup,
 * path1's output gradient, overwritten). */
size_t avs_c3n_output_scratch(const struct avs_c3n_head *h);
size_t avs_c3n_output_ring_floats(const struct avs_c3n_head *h);
void avs_c3n_output_fwd(struct avs_c3n_head *h);
void avs_c3n_output_bwd(struct avs_c3n_head *h, const float *dlogits, float *dup);

/* parameter k (an index resolved at init: struct avs_c3n_idx, h->kout) and its bias */
#define PW(k) (h->params.t[(k)].data)
#define GW(k) (h->grads.t[(k)].data)
#define PB(k) (h->params.t[(k) + 1].data) /* bias follows its weight in the table */
#define GB(k) (h->grads.t[(k) + 1].data)

#endif
