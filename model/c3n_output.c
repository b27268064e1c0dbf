/* model/c3n_output.c: the C3N head's output_conv (ref: AVSBench/C3N output_conv: conv 3x3
 * D->O1, bilinear x2 with align_corners=False, conv 3x3 O1->O2, ReLU, conv 1x1 O2->K: K = 1, or
 * one map per class for AVSS), forward
 * and backward, with the upsampling composed into the second conv.
 *
 * x2 bilinear upsampling (align_corners=False) of a row h [n] is
 *     U[2i] = .25 h[i-1] + .75 h[i],   U[2i+1] = .75 h[i] + .25 h[i+1]
 * with h replicated past its ends (h[-1] = h[0], h[n] = h[n-1]): PyTorch's clamped indices.
 * So the 3x3 conv of U at output (2i+a, 2j+b) is a 3x3 conv of the replicate-padded h at (i, j)
 * with the kernel K_ab[u,v] = sum_rs C[a][r][u] C[b][s][v] w[r,s] (C: which h rows the U row of
 * tap r of parity a reads): the four parities are 4*O2 output channels of one conv on the
 * 112x112 map instead of O2 channels on the 224x224 one -- the same multiplies on a quarter of
 * the data, and the upsampled [B, O1, 224, 224] map is never made. The outputs are put back in
 * place by a pixel shuffle. Only the conv's zero padding of U differs (there U[-1] = 0, not
 * h[0]): the ring of border outputs is computed directly from U (one GEMM over the im2col
 * columns of the ring), and its gradients flow back the same way. The rearrangements are
 * backend primitives (backend/ops.h, "head": up2conv_compose, pad_replicate, pixel_shuffle2,
 * up2_ring_cols, ring_set/ring_take); the ring's geometry comes from the map size alone.
 */
#include "model/c3n_blocks.h"

/* The ring of the 2H x 2W output (H x W: output_conv.0's map): its pixels per image. */
static int ring_n(const struct avs_c3n_head *h)
{
    return avs_ring_n(4 * h->cfg.H[0], 4 * h->cfg.W[0]);
}

/* Floats of the ring's im2col columns (kept from the forward for the backward). */
size_t avs_c3n_output_ring_floats(const struct avs_c3n_head *h)
{
    return (size_t)h->cfg.O1 * 9 * h->B * ring_n(h);
}

size_t avs_c3n_output_scratch(const struct avs_c3n_head *h)
{
    size_t B = (size_t)h->B, H = 2 * (size_t)h->cfg.H[0], W = 2 * (size_t)h->cfg.W[0];
    size_t O1 = (size_t)h->cfg.O1, O2 = (size_t)h->cfg.O2, ring = (size_t)ring_n(h);
    size_t big = B * O2 * 4 * H * W; /* one [B, O2, 2H, 2W] map */
    size_t fwd = B * O1 * H * W + big + O2 * B * ring;
    size_t bwd = 3 * big + B * O1 * (H + 2) * (W + 2) + B * O1 * H * W + 2 * O1 * 9 * B * ring +
                 O2 * B * ring + O2 * 4 * O1 * 9 + O2 * 4;
    return (fwd > bwd ? fwd : bwd) + 64 * 16;
}

void avs_c3n_output_fwd(struct avs_c3n_head *h)
{
    const struct avs_ops *op = avs_ops();
    int B = h->B, H = 2 * h->cfg.H[0], W = 2 * h->cfg.W[0], O1 = h->cfg.O1, O2 = h->cfg.O2;
    int k0 = h->kout[0], k2 = h->kout[1], k4 = h->kout[2];
    size_t mark = avs_arena_mark(&h->scratch);
    struct avs_conv2d g0, gz, g4;
    avs_conv2d_geom(&g0, B, h->cfg.D, H, W, O1, 3, 3, 1, 1, 1, 1);
    avs_conv2d_geom(&gz, B, O1, H + 2, W + 2, 4 * O2, 3, 3, 1, 0, 1, 1);
    avs_conv2d_geom(&g4, B, O2, 2 * H, 2 * W, h->cfg.K, 1, 1, 1, 0, 1, 1);
    float *h0 = avs_c3n_stake(h, (size_t)B * O1 * H * W, 0);
    op->conv2d_fwd(h0, h->st[0].up, PW(k0), PB(k0), &g0, h->ws);
    op->pad_replicate(h->hp, h0, B * O1, H, W);
    op->up2conv_compose(h->kc, h->kcb, PW(k2), PB(k2), O2, O1);
    float *z = avs_c3n_stake(h, (size_t)B * O2 * 4 * H * W, 0);
    op->conv2d_fwd(z, h->hp, h->kc, h->kcb, &gz, h->ws);
    op->pixel_shuffle2(h->h3, z, B * O2, H, W);
    /* the ring: a GEMM over its im2col columns of U (kept for the backward) */
    size_t nr = (size_t)B * ring_n(h);
    float *yr = avs_c3n_stake(h, (size_t)O2 * nr, 0);
    op->up2_ring_cols(h->ringcol, h->hp, B, O1, H, W);
    op->gemm(0, 0, O2, (int)nr, O1 * 9, 1.0f, PW(k2), O1 * 9, h->ringcol, (int)nr, 0.0f, yr, (int)nr);
    op->ring_set(h->h3, yr, PB(k2), B, O2, 2 * H, 2 * W);
    op->relu_fwd(h->h3, h->h3, (size_t)B * O2 * 4 * H * W);
    op->conv2d_fwd(h->logits, h->h3, PW(k4), PB(k4), &g4, h->ws);
    struct avs_conv2d g2;
    avs_conv2d_geom(&g2, B, O1, 2 * H, 2 * W, O2, 3, 3, 1, 1, 1, 1);
    h->flops_fwd += avs_conv2d_flops(&g0) + avs_conv2d_flops(&g2) + avs_conv2d_flops(&g4);
    avs_arena_rewind(&h->scratch, mark);
}

/* dlogits -> parameter gradients of output_conv, and dup (overwritten): the gradient of
 * path1's output. */
void avs_c3n_output_bwd(struct avs_c3n_head *h, const float *dlogits, float *dup)
{
    const struct avs_ops *op = avs_ops();
    int B = h->B, H = 2 * h->cfg.H[0], W = 2 * h->cfg.W[0], O1 = h->cfg.O1, O2 = h->cfg.O2;
    int k0 = h->kout[0], k2 = h->kout[1], k4 = h->kout[2];
    size_t mark = avs_arena_mark(&h->scratch), big = (size_t)B * O2 * 4 * H * W;
    struct avs_conv2d g0, gz, g4;
    avs_conv2d_geom(&g0, B, h->cfg.D, H, W, O1, 3, 3, 1, 1, 1, 1);
    avs_conv2d_geom(&gz, B, O1, H + 2, W + 2, 4 * O2, 3, 3, 1, 0, 1, 1);
    avs_conv2d_geom(&g4, B, O2, 2 * H, 2 * W, h->cfg.K, 1, 1, 1, 0, 1, 1);
    float *dh3 = avs_c3n_stake(h, big, 0), *dh2 = avs_c3n_stake(h, big, 1);
    op->conv2d_bwd_data_set(dh3, dlogits, PW(k4), &g4, h->ws);
    op->conv2d_bwd_filter(GW(k4), GB(k4), dlogits, h->h3, &g4, h->ws);
    op->relu_bwd(dh2, dh3, h->h3, big);
    /* the ring: its gradients taken out of dh2 (zeroed there: the main conv did not make them) */
    size_t nr = (size_t)B * ring_n(h);
    float *col = avs_c3n_stake(h, (size_t)O1 * 9 * nr, 0), *dr = avs_c3n_stake(h, (size_t)O2 * nr, 0);
    op->ring_take(dr, dh2, B, O2, 2 * H, 2 * W);
    op->gemm(0, 1, O2, O1 * 9, (int)nr, 1.0f, dr, (int)nr, h->ringcol, (int)nr, 1.0f, GW(k2), O1 * 9);
    struct avs_bcast rb = {1, O2, (int)nr, 0, 1, 0}; /* the ring's bias: row sums of dr */
    op->add_bwd(GB(k2), dr, &rb);
    op->gemm(1, 0, O1 * 9, (int)nr, O2, 1.0f, PW(k2), O1 * 9, dr, (int)nr, 0.0f, col, (int)nr);
    /* the main conv */
    float *dz = dh3; /* dh3 is spent */
    op->pixel_unshuffle2(dz, dh2, B * O2, H, W);
    float *dkc = avs_c3n_stake(h, (size_t)O2 * 4 * O1 * 9, 1), *dkb = avs_c3n_stake(h, (size_t)O2 * 4, 1);
    op->conv2d_bwd_filter(dkc, dkb, dz, h->hp, &gz, h->ws);
    op->up2conv_decompose(GW(k2), GB(k2), dkc, dkb, O2, O1);
    float *dhp = avs_c3n_stake(h, (size_t)B * O1 * (H + 2) * (W + 2), 0);
    op->conv2d_bwd_data_set(dhp, dz, h->kc, &gz, h->ws);
    op->up2_ring_cols_bwd(dhp, col, B, O1, H, W);
    float *dh0 = avs_c3n_stake(h, (size_t)B * O1 * H * W, 1);
    op->pad_replicate_bwd(dh0, dhp, B * O1, H, W);
    op->conv2d_bwd_data_set(dup, dh0, PW(k0), &g0, h->ws);
    op->conv2d_bwd_filter(GW(k0), GB(k0), dh0, h->st[0].up, &g0, h->ws);
    avs_arena_rewind(&h->scratch, mark);
}
