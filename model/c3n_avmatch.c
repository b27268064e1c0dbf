/* model/c3n_avmatch.c: AVSBench's MS3 audio-visual matching loss on the head's last forward
 * (avs_c3n_head_avmatch, c3n_head.h). ref: AVSBench avs_ms3/loss.py A_MaskedV_SimmLoss and
 * IouSemanticAwareLoss, avs_ms3/model/PVT_AVSModel.py (feature_map_list, a_fea_list) and
 * TPAVI.py (audio_temp = align_channel(audio)).
 *
 * Per TPAVI stage, primitives only: the predicted mask (sigmoid of the logits) average-pooled
 * to the stage's size and put through sigmoid again (the official code does both), the
 * mask-weighted spatial mean of the stage map as a GEMM per frame ([D,HW] x [HW]), the KL of
 * the two softmaxes with its gradients (softmax_kl), then the chain rule back to the logits.
 * The gradients of the stage maps and of align_channel's output wait in the activation arena
 * (cfg.av_match carves them) for avs_c3n_head_bwd.
 */
#include "model/c3n_blocks.h"

static double stage_loss(struct avs_c3n_head *h, int s, float k, float *dp)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int B = h->B, D = h->cfg.D, Hs = h->cfg.H[s], Ws = h->cfg.W[s], hw = Hs * Ws;
    int H = 4 * h->cfg.H[0], W = 4 * h->cfg.W[0];
    /* the map the loss reads: relu(t), as the decoder's first ResidualConvUnit saved it */
    const float *v = s < 3 ? st->r0a : st->r0b;
    float *m = st->avm_m, *u = st->avm_u;
    size_t mark = avs_arena_mark(&h->scratch);
    float *du = avs_c3n_stake(h, (size_t)B * D, 0), *dm = avs_c3n_stake(h, (size_t)B * hw, 0);
    float *dd = avs_c3n_stake(h, (size_t)B * hw, 1);
    float inv = 1.0f / (float)hw;
    op->adapool_fwd(m, h->avm_p, B, H, W, Hs, Ws);
    op->sigmoid_fwd(m, m, (size_t)B * hw);
    for (int b = 0; b < B; b++) /* u_b = v_b m_b / HW */
        op->gemm(0, 0, D, 1, hw, inv, v + (size_t)b * D * hw, hw, m + (size_t)b * hw, 1, 0.0f,
                 u + (size_t)b * D, 1);
    double loss = op->softmax_kl(du, st->avm_daf, u, st->af, B, D, k);
    for (int b = 0; b < B; b++) {
        /* dv_b = du_b m_b^T / HW; dm_b = v_b^T du_b / HW */
        op->gemm(0, 0, D, hw, 1, inv, du + (size_t)b * D, 1, m + (size_t)b * hw, hw, 0.0f,
                 st->avm_dv + (size_t)b * D * hw, hw);
        op->gemm(1, 0, hw, 1, D, inv, v + (size_t)b * D * hw, hw, du + (size_t)b * D, 1, 0.0f,
                 dm + (size_t)b * hw, 1);
    }
    op->sigmoid_bwd(dd, dm, m, (size_t)B * hw);
    op->adapool_bwd(dp, dd, B, H, W, Hs, Ws);
    avs_arena_rewind(&h->scratch, mark);
    return loss;
}

double avs_c3n_head_avmatch(struct avs_c3n_head *h, float lambda, float *dlogits)
{
    const struct avs_ops *op = avs_ops();
    int ns = 0;
    for (int s = 0; s < 4; s++)
        ns += h->st[s].avm_m != NULL;
    AVS_ASSERT(h->cfg.av_match && h->cfg.K == 1 && ns > 0);
    size_t n = (size_t)h->B * 16 * h->cfg.H[0] * h->cfg.W[0], mark = avs_arena_mark(&h->scratch);
    float *dp = avs_c3n_stake(h, n, 1);
    op->sigmoid_fwd(h->avm_p, h->logits, n);
    double loss = 0;
    for (int s = 0; s < 4; s++) /* stages in order, as the official loop over count_stages */
        if (h->st[s].avm_m)
            loss += stage_loss(h, s, lambda / (float)ns, dp);
    op->sigmoid_bwd(dlogits, dp, h->avm_p, n);
    avs_arena_rewind(&h->scratch, mark);
    h->avm_live = 1;
    return loss / ns;
}
