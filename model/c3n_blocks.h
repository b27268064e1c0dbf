/* model/c3n_blocks.h: internal to the C3N head: the blocks (ASPP, TPAVI, fusion, output)
 * forward and backward, and the carving of the activation arena. Use model/c3n_head.h. */
#ifndef AVS_MODEL_C3N_BLOCKS_H
#define AVS_MODEL_C3N_BLOCKS_H

#include "model/c3n_head.h"

void avs_c3n_blocks_carve(struct avs_c3n_head *h);

#endif
