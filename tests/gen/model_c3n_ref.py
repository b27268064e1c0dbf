"""tests/gen/model_c3n_ref.py: a faithful small PyTorch C3N head with the official parameter
names (the state_dict keys of the official model), the reference for model/c3n_*.c.
Written from the official AVSBench code (avs_s4/model/PVT_AVSModel.py, TPAVI.py) and the C3N
head's ASPP; see DESIGN §6. `lowrank=False` is TPAVI exactly as the official code computes it
(the full (THW)^2 matrix); `lowrank=True` is the same function in O(THW) memory (bench peer)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ASPP(nn.Module):
    def __init__(self, cin, depth):
        super().__init__()
        self.conv = nn.Conv2d(cin, depth, 1, 1)
        self.atrous_block1 = nn.Conv2d(cin, depth, 1, 1)
        self.atrous_block6 = nn.Conv2d(cin, depth, 3, 1, padding=6, dilation=6)
        self.atrous_block12 = nn.Conv2d(cin, depth, 3, 1, padding=12, dilation=12)
        self.atrous_block18 = nn.Conv2d(cin, depth, 3, 1, padding=18, dilation=18)
        self.conv_1x1_output = nn.Conv2d(depth * 5, depth, 1, 1)

    def forward(self, x):
        f = self.conv(F.adaptive_avg_pool2d(x, 1))
        f = F.interpolate(f, size=x.shape[2:], mode='bilinear', align_corners=False)
        return self.conv_1x1_output(torch.cat(
            [f, self.atrous_block1(x), self.atrous_block6(x), self.atrous_block12(x),
             self.atrous_block18(x)], dim=1))


class Classifier(nn.Module):
    """AVSBench's Classifier_Module (the baseline's neck, avs_s4/model/ResNet_AVSModel.py):
    the sum of four 3x3 convs with dilation = padding = 3, 6, 12, 18."""

    def __init__(self, cin, depth):
        super().__init__()
        self.conv2d_list = nn.ModuleList(
            nn.Conv2d(cin, depth, 3, 1, padding=d, dilation=d) for d in (3, 6, 12, 18))

    def forward(self, x):
        out = self.conv2d_list[0](x)
        for conv in self.conv2d_list[1:]:
            out = out + conv(x)
        return out


class TPAVI(nn.Module):
    """TPAVIModule(mode='dot', dimension=3, bn_layer=True) with audio."""

    def __init__(self, cin, inter, adim, lowrank=False):
        super().__init__()
        self.inter = inter
        self.lowrank = lowrank
        self.align_channel = nn.Linear(adim, cin)
        self.norm_layer = nn.LayerNorm(cin)
        self.g = nn.Conv3d(cin, inter, 1)
        self.W_z = nn.Sequential(nn.Conv3d(inter, cin, 1), nn.BatchNorm3d(cin))
        self.theta = nn.Conv3d(cin, inter, 1)
        self.phi = nn.Conv3d(cin, inter, 1)

    def forward(self, x, audio):  # x [N,C,T,H,W], audio [N,T,A]
        n, c, t, h, w = x.shape
        self.a_fea = self.align_channel(audio)  # [N,T,C]: the official audio_temp
        a = self.a_fea.permute(0, 2, 1)[..., None, None]  # [N,C,T,1,1]
        if not self.lowrank:
            a = a.repeat(1, 1, 1, h, w)
            g_x = self.g(x).view(n, self.inter, -1).permute(0, 2, 1)
            theta_x = self.theta(x).view(n, self.inter, -1).permute(0, 2, 1)
            phi_x = self.phi(a).view(n, self.inter, -1)
            f = torch.matmul(theta_x, phi_x)
            y = torch.matmul(f / f.size(-1), g_x)
            y = y.permute(0, 2, 1).contiguous().view(n, self.inter, t, h, w)
        else:
            phi = self.phi(a).view(n, self.inter, t)                 # [N,Ci,T]
            G = self.g(x).sum(dim=(3, 4))                             # [N,Ci,T]
            M = torch.matmul(phi, G.transpose(1, 2))                  # [N,Ci,Ci]
            th = self.theta(x).view(n, self.inter, -1)                # [N,Ci,THW]
            y = torch.matmul(M.transpose(1, 2), th).view(n, self.inter, t, h, w) / (t * h * w)
        z = self.W_z(y) + x
        z = self.norm_layer(z.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        return z


# Smallest |input| seen by any ReLU since the last reset: generators redraw cases where a
# ReLU input is so close to 0 that float32 rounding could flip its side (a flip moves a
# gradient sum by one random term, ~1% of it on small fixtures).
RELU_MARGIN = [float('inf')]
TRACK_MARGIN = [False]


def relu(x):
    if TRACK_MARGIN[0]:
        RELU_MARGIN[0] = min(RELU_MARGIN[0], x.detach().abs().min().item())
    return F.relu(x)


class MarginReLU(nn.Module):
    def forward(self, x):
        return relu(x)


class RCU(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv1 = nn.Conv2d(d, d, 3, 1, 1)
        self.conv2 = nn.Conv2d(d, d, 3, 1, 1)

    def forward(self, x):
        r = relu(x)  # the official ReLU is in place: the skip adds relu(x)
        return self.conv2(relu(self.conv1(r))) + r


class Fusion(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.resConfUnit1 = RCU(d)
        self.resConfUnit2 = RCU(d)

    def forward(self, *xs):
        out = xs[0]
        if len(xs) == 2:
            out = out + self.resConfUnit1(xs[1])
        out = self.resConfUnit2(out)
        return F.interpolate(out, scale_factor=2, mode='bilinear', align_corners=True)


class Interpolate(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


class C3NHead(nn.Module):
    def __init__(self, chans=(64, 128, 320, 512), D=256, Ci=128, A=128, T=5,
                 tpavi=(0, 1, 2, 3), lowrank=False, O1=128, O2=32, avsbench=False):
        super().__init__()
        # avsbench: the AVSBench baseline (Pred_endecoder): Classifier_Module necks, tpavi_b<i>
        self.T, self.tpavi = T, tpavi
        self.tp = 'tpavi_b' if avsbench else 'tpavi_'
        for i, c in enumerate(chans):
            setattr(self, f'conv{i + 1}', Classifier(c, D) if avsbench else ASPP(c, D))
        for i in tpavi:
            setattr(self, f'{self.tp}{i + 1}', TPAVI(D, Ci, A, lowrank))
        for i in range(4):
            setattr(self, f'path{i + 1}', Fusion(D))
        self.output_conv = nn.Sequential(
            nn.Conv2d(D, O1, 3, 1, 1), Interpolate(), nn.Conv2d(O1, O2, 3, 1, 1),
            MarginReLU(), nn.Conv2d(O2, 1, 1, 1, 0))

    def forward(self, xs, audio):
        fm = [getattr(self, f'conv{i + 1}')(x) for i, x in enumerate(xs)]
        for i in self.tpavi:
            b, c, h, w = fm[i].shape
            v = fm[i].reshape(-1, self.T, c, h, w).permute(0, 2, 1, 3, 4)
            v = getattr(self, f'{self.tp}{i + 1}')(v, audio)
            fm[i] = v.permute(0, 2, 1, 3, 4).reshape(-1, c, h, w)
        self.fm = list(fm)  # the stage maps the matching loss reads (av_match)
        p = self.path4(fm[3])
        p = self.path3(p, fm[2])
        p = self.path2(p, fm[1])
        p = self.path1(p, fm[0])
        return self.output_conv(p)


def randomize(model, gen):
    """Random BN affine and running stats so that every path carries signal; W_z's conv bias
    zeroed so that BatchNorm's input is not a large mean with a tiny spread (float32 would
    then lose 2-3 digits in x - mean, in C and in PyTorch alike, and the fixture would test
    rounding rather than code)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('W_z.0.bias'):
                p.zero_()
        for name, m in model.named_modules():
            if isinstance(m, nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)


def av_match(head, logits):
    """AVSBench's MS3 audio-visual matching loss (avs_ms3/loss.py A_MaskedV_SimmLoss as its
    MS3 train.sh runs it: every TPAVI stage, kl_flag, mask_pooling_type 'avg', no feature norm,
    no threshold) on head's last forward. The official model returns its stage maps and the
    decoder's in-place ReLU has rectified them by the time the loss reads them: relu() here."""
    p = torch.sigmoid(logits)
    total = 0
    for i in head.tpavi:
        v = F.relu(head.fm[i])
        a_fea = getattr(head, f'{head.tp}{i + 1}').a_fea
        a_fea = a_fea.reshape(-1, a_fea.shape[-1])  # [B*T, C]
        m = torch.sigmoid(F.adaptive_avg_pool2d(p, v.shape[-2:]))  # sigmoid twice, as official
        u = (v * m).mean(-1).mean(-1)  # [B*T, C]
        total = total + F.kl_div(u.softmax(dim=-1).log(), a_fea.softmax(dim=-1), reduction='sum')
    return total / len(head.tpavi)


def bce_dice(logits, mask):
    """BCE-with-logits (mean) + Dice (DESIGN §6), over the frames given."""
    bce = F.binary_cross_entropy_with_logits(logits, mask)
    p = torch.sigmoid(logits).flatten(1)
    g = mask.flatten(1)
    dice = 1 - (2 * ((p * g).sum(1) + 1) / (p.sum(1) + g.sum(1) + 1)).mean()
    return bce + dice
