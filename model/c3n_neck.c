/* model/c3n_neck.c: the AVSBench baseline's neck (cfg.avsbench), forward and backward, composed.
 *
 * ref: AVSBench avs_s4/model/ResNet_AVSModel.py Classifier_Module (conv1..conv4 of
 * Pred_endecoder, dilations and paddings [3, 6, 12, 18]):
 *     out = sum_b (W_b *d_b x + b_b),   W_b [D, C, 3, 3], dilation = padding = d_b
 * A sum of four dilated 3x3 convs is one tap conv (backend/ops.h) over the union of their live
 * taps: the centre is shared, the other offsets (+-d, 0/+-d) are distinct across dilations, so
 *     Wc[:, 0, :] = sum_b W_b[:, :, centre],   Wc[:, u, :] = W_b[:, :, tap] (one branch),
 *     bc = sum_b b_b,                          out = tapconv(x; Wc) + bc
 * and back: dW_b[:, :, tap] = dWc[:, u, :], db_b = dbc = sum of dout, dx = tapconv^T(dout).
 * A tap that only ever reads padding is left out (its gradient in PyTorch is zero too).
 * Called from model/c3n_aspp.c in place of ASPP; it shares ASPP's stage state (st->tc, wc, bc,
 * tap_of, a). */
#include "model/c3n_blocks.h"

static const int neck_dil[4] = {3, 6, 12, 18};

void avs_c3n_neck_plan(struct avs_c3n_head *h, int s)
{
    avs_c3n_taps_plan(h, s, neck_dil, 0);
}

size_t avs_c3n_neck_scratch(const struct avs_c3n_head *h, int s)
{
    size_t D = (size_t)h->cfg.D, C = (size_t)h->cfg.C[s];
    return D * C * (9 + 1) + D * C * h->st[s].tc.n + 2 * D + 1024;
}

/* st->wc [D][n][C] and st->bc [D] from the four branches */
static void compose(struct avs_c3n_head *h, int s)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int D = h->cfg.D, C = h->cfg.C[s], n = st->tc.n;
    size_t mark = avs_arena_mark(&h->scratch), DC = (size_t)D * C;
    float *wt = avs_c3n_stake(h, 9 * DC, 0), *centre = avs_c3n_stake(h, DC, 1);
    op->zero(st->bc, (size_t)D);
    for (int a = 0; a < 4; a++) {
        int k = st->k.br[a];
        op->taps_split(wt, PW(k), D, C, 9);
        op->axpy(centre, 1.0f, wt + 4 * DC, DC);
        op->axpy(st->bc, 1.0f, PB(k), (size_t)D);
        for (int t = 0; t < 9; t++)
            if (t != 4 && st->tap_of[a][t] > 0)
                op->concat_fwd(st->wc, wt + (size_t)t * DC, D, 1, C, n, st->tap_of[a][t]);
    }
    op->concat_fwd(st->wc, centre, D, 1, C, n, 0);
    avs_arena_rewind(&h->scratch, mark);
}

void avs_c3n_neck_fwd(struct avs_c3n_head *h, int s, const float *x)
{
    struct avs_c3n_stage *st = &h->st[s];
    compose(h, s);
    avs_ops()->tapconv_fwd(st->a, x, st->wc, st->bc, &st->tc, h->ws);
    h->flops_fwd += avs_tapconv_flops(&st->tc);
}

void avs_c3n_neck_bwd(struct avs_c3n_head *h, int s, const float *da, float *dx)
{
    const struct avs_ops *op = avs_ops();
    struct avs_c3n_stage *st = &h->st[s];
    int D = h->cfg.D, C = h->cfg.C[s], n = st->tc.n;
    size_t mark = avs_arena_mark(&h->scratch), DC = (size_t)D * C;
    float *dwc = avs_c3n_stake(h, DC * n, 1), *dbc = avs_c3n_stake(h, (size_t)D, 1);
    float *dwt = avs_c3n_stake(h, 9 * DC, 0);
    op->tapconv_bwd_filter(dwc, dbc, da, h->x[s], &st->tc, h->ws);
    for (int a = 0; a < 4; a++) {
        int k = st->k.br[a];
        op->zero(dwt, 9 * DC);
        for (int t = 0; t < 9; t++)
            if (st->tap_of[a][t] >= 0)
                op->concat_bwd(dwt + (size_t)t * DC, dwc, D, 1, C, n, st->tap_of[a][t]);
        op->taps_merge(GW(k), dwt, D, C, 9);
        op->axpy(GB(k), 1.0f, dbc, (size_t)D);
    }
    if (dx)
        op->tapconv_bwd_data(dx, da, st->wc, &st->tc, h->ws);
    avs_arena_rewind(&h->scratch, mark);
}
