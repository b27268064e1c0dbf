/* model/c3n.h: the trained C3N model = CCAM on the backbone's stage maps + the C3N head,
 * shared by avs-train and avs-predict.
 *
 *   struct avs_c3n m;
 *   avs_c3n_init(&m, &cfg, &sw, n_videos);          cfg: stage channels/sizes from the feature set
 *   avs_c3n_fwd(&m, stage, gradcam, audio, train);  logits in m.head.logits [B,1,4H1,4W1]
 *   avs_c3n_bwd(&m, dlogits, dstage);               dstage NULL in frozen mode
 *   avs_c3n_free(&m);
 *
 * Every tensor pointer given or returned is device memory of the backend active at init
 * (model/c3n_head.h).
 *
 *   stage[s] [B,C_s,H_s,W_s]  (B = n_videos * T, a video's T frames adjacent)
 *   gradcam[s] [B,C_s]        Grad-CAM weights of the switch's class (ignored without CCAM)
 *   audio [B,A]               VGGish embeddings (ignored with AF off: no TPAVI at all, the
 *                             official visual-only model)
 */
#ifndef AVS_MODEL_C3N_H
#define AVS_MODEL_C3N_H

#include <stddef.h>

#include "model/c3n_head.h"

/* Ablation switches (paper Table II). */
struct avs_switches {
    int af;  /* audio features through TPAVI */
    int cc;  /* CCAM with the consensus class's Grad-CAM weights */
    int ccv; /* CCAM with the top visual class's weights */
};

/* "AF,CC", "AF,CC-V", "AF", "CC", "CC-V", "none" (any order, case-insensitive). 0 or -1. */
int avs_switches_parse(struct avs_switches *s, const char *text);
/* Canonical text ("AF,CC", "none", ...) into buf. */
const char *avs_switches_text(const struct avs_switches *s, char *buf, size_t len);

struct avs_c3n {
    struct avs_c3n_head head;
    struct avs_switches sw;
    int ccam;               /* CC or CC-V */
    struct avs_arena mem;   /* CCAM's tensors below (device memory, carved at init) */
    float *x[4];            /* [B,C_s,H_s,W_s] CCAM outputs (the head's inputs) */
    float *s[4], *x1[4], *sm[4]; /* CCAM saved state */
    float *dx[4];           /* [B,C_s,H_s,W_s] gradient of the head's inputs (finetune) */
    float *scratch;         /* [B*H_1*W_1] */
    const float *stage[4];  /* inputs of the last forward (borrowed) */
};

/* cfg->tpavi is set from sw->af (all four stages or none). */
void avs_c3n_init(struct avs_c3n *m, const struct avs_c3n_cfg *cfg, const struct avs_switches *sw,
                  int n_videos);
void avs_c3n_free(struct avs_c3n *m);
void avs_c3n_fwd(struct avs_c3n *m, const float *const stage[4], const float *const gradcam[4],
                 const float *audio, int train);
/* Parameter gradients ADDED into m->head.grads; dstage (may be NULL) ADDED into. */
void avs_c3n_bwd(struct avs_c3n *m, const float *dlogits, float *const dstage[4]);

#endif
