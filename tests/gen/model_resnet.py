"""tests/gen/model_resnet.py: PyTorch reference of ResNet-50 (torchvision 0.14's own ResNet and
Bottleneck classes: their _make_layer and _forward_impl) and the fixtures of
tests/test_model_resnet.c.

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/model_resnet.py
Writes tests/fixtures/model/resnet_small.{weights,io}.safetensors: torchvision's ResNet-50 structure (Bottleneck,
depths 3,4,6,3) at width 8 (planes 8,16,32,64, stage maps 32/64/128/256 channels; torchvision
hard-codes 64, so the small model is built through its own _make_layer with another width) and
10 classes, eval mode, with random BatchNorm weights, biases and running statistics so that
they are tested; on 2 random 64x64 images. `weights`: the state_dict (torchvision names, with
num_batches_tracked as int64); `io`: image [2,3,64,64], target [2] (int64), and for each output
(stage1..4 = layer1..4 outputs, logits, gradcam1..4 = spatial mean of d logit[target] / d stage
map) two copies: `ref.<name>` computed in float64 from the float32 weights, `t32.<name>` PyTorch's
own float32 result (the yardstick: ours must be within max(1e-4, 3 x t32's distance)).

`python3 model_resnet.py grads` writes only tests/fixtures/model/resnet_grad.{weights,io}.safetensors
(also written by the plain run), the parameter-gradient reference of avs_resnet_bwd: the same
structure at width 3 (stage maps 12/24/48/96 channels, 10 classes: small files), 2 random 64x64
images and random upstream gradients; the loss is sum(logits * dlogits) + sum_s sum(stage_s *
dstage_s). `io`: image, dstage1..4, dlogits; for every parameter (named_parameters: conv and
BatchNorm weights and biases, fc; not the running statistics) `grad.<name>` with BatchNorm in eval
mode and `gradbs.<name>` in train mode (batch statistics, as AVSBench trains), and `runbs.<name>`
the running statistics after that train-mode forward; each computed in float64 from the float32
weights, with `t32dist.<that name>` [1]: PyTorch float32's own relative L2 distance from it
(the yardstick; the float32 results themselves are not stored, to keep the file small).

`python3 model_resnet.py full PREFIX [SEED]` writes PREFIX.{weights,io}.safetensors, the same for
torchvision's real resnet50() (width 64, 1000 classes, random weights) on 1 64x64 image
(bench/resnet_check.sh).

`python3 model_resnet.py check WEIGHTS DUMP` checks one record of a feature set made with
`--visual resnet50=WEIGHTS` (`avs-features dump`: image, stage1..4, vlogits, gradcam1..4 for
target): torchvision's float64 result on the dumped image against the record, within
max(1e-4, 3 x its own float32 distance) relative L2; prints the distances, exits 1 on a miss.
`python3 model_resnet.py compare OUT IO` judges `avs-model run resnet50` output the same way
against an io file written here.
"""
import copy
import os
import sys

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402


class NarrowResNet(resnet.ResNet):
    """torchvision's ResNet-50 at another width (its __init__ fixes 64): same modules, same
    names, torchvision's _make_layer and forward."""

    def __init__(self, width, classes):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(resnet.Bottleneck, width, 3)
        self.layer2 = self._make_layer(resnet.Bottleneck, 2 * width, 4, stride=2)
        self.layer3 = self._make_layer(resnet.Bottleneck, 4 * width, 6, stride=2)
        self.layer4 = self._make_layer(resnet.Bottleneck, 8 * width, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * 4, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def randomise_bn(model, g):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            C = m.num_features
            m.weight.data = torch.rand(C, generator=g) * 0.6 + 0.5
            m.bias.data = torch.randn(C, generator=g) * 0.1
            m.running_mean.data = torch.randn(C, generator=g) * 0.1
            m.running_var.data = torch.rand(C, generator=g) * 0.6 + 0.7
            m.num_batches_tracked.fill_(7)


def outputs(model, x, target):
    """stage maps, logits and Grad-CAM weights (hooks on layer1..4 outputs, as C3N's)."""
    m = model
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    stages = []
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        h = layer(h)
        h.retain_grad()
        stages.append(h)
    logits = m.fc(torch.flatten(m.avgpool(h), 1))
    logits.gather(1, target[:, None]).sum().backward()
    out = {f'stage{s + 1}': t.detach() for s, t in enumerate(stages)}
    out['logits'] = logits.detach()
    for s, t in enumerate(stages):
        out[f'gradcam{s + 1}'] = t.grad.mean(dim=(2, 3))
    return out


def make_case(model, x, target):
    model.eval()
    t32 = outputs(model, x.clone().requires_grad_(False), target)
    m64 = model.double()
    r64 = outputs(m64, x.double(), target)
    model.float()
    weights, tensors = {}, {}
    for k, v in model.state_dict().items():
        weights[k] = v.numpy().astype(np.int64) if v.dtype == torch.int64 else v.numpy()
    tensors['image'] = x.numpy()
    tensors['target'] = target.numpy().astype(np.int64)
    for k in r64:
        tensors['ref.' + k] = r64[k].numpy()  # written as float32 by model_st
        tensors['t32.' + k] = t32[k].numpy()
    # float64 -> float32 rounding of the reference is below 1e-7 relative: far under the yardstick
    return weights, tensors


def param_grads(model, x, up, dtype, train):
    """every parameter's gradient of sum(logits * dlogits) + sum_s sum(stage_s * dstage_s), on a
    copy of model (train: BatchNorm in train mode); and the copy's running statistics after"""
    m = copy.deepcopy(model).to(dtype)
    m.train(train)
    h = m.maxpool(m.relu(m.bn1(m.conv1(x.to(dtype)))))
    loss = 0
    for s, layer in enumerate((m.layer1, m.layer2, m.layer3, m.layer4)):
        h = layer(h)
        loss = loss + (h * torch.from_numpy(up[f'dstage{s + 1}']).to(dtype)).sum()
    logits = m.fc(torch.flatten(m.avgpool(h), 1))
    loss = loss + (logits * torch.from_numpy(up['dlogits']).to(dtype)).sum()
    loss.backward()
    grads = {k: p.grad.detach().double().numpy() for k, p in m.named_parameters()}
    stats = {k: v.double().numpy() for k, v in m.state_dict().items() if '.running_' in k}
    return grads, stats


def judged(out, prefix, r64, t32):
    """the float64 values as prefix.<name> and PyTorch float32's relative L2 distance from
    them as t32dist.prefix.<name> [1]"""
    for k, ref in r64.items():
        nr = np.linalg.norm(ref) or 1.0
        out[f'{prefix}.{k}'] = ref  # written as float32 by model_st
        out[f't32dist.{prefix}.{k}'] = np.array([np.linalg.norm(t32[k] - ref) / nr])


def grads_case(seed=4):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = NarrowResNet(3, 10)
    randomise_bn(model, g)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=g)
    rng = np.random.default_rng(seed)
    up = {f'dstage{s + 1}': rng.standard_normal((2, 12 << s, 16 >> s, 16 >> s)).astype(np.float32)
          for s in range(4)}
    up['dlogits'] = rng.standard_normal((2, 10)).astype(np.float32)
    weights = {k: v.numpy().astype(np.int64) if v.dtype == torch.int64 else v.numpy()
               for k, v in model.state_dict().items()}
    io = {'image': x.numpy()}
    io.update(up)
    judged(io, 'grad', param_grads(model, x, up, torch.float64, False)[0],
           param_grads(model, x, up, torch.float32, False)[0])
    g64, s64 = param_grads(model, x, up, torch.float64, True)
    g32, s32 = param_grads(model, x, up, torch.float32, True)
    judged(io, 'gradbs', g64, g32)
    judged(io, 'runbs', s64, s32)
    return weights, io


def save(prefix, case):
    model_st.save(prefix + '.weights.safetensors', case[0])
    model_st.save(prefix + '.io.safetensors', case[1])


def load_model(weights):
    w = model_st.load(weights)
    width, classes = w['conv1.weight'].shape[0], w['fc.weight'].shape[0]
    model = NarrowResNet(width, classes)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in w.items()})
    return model


def check(weights, dump):
    d = model_st.load(dump)
    model = load_model(weights)
    x = torch.from_numpy(np.array(d['image'], dtype=np.float32))
    target = torch.tensor([int(d['target'][0])])
    _, io = make_case(model, x, target)
    names = [f'stage{s}' for s in range(1, 5)] + ['logits'] + [f'gradcam{s}' for s in range(1, 5)]
    bad = 0
    for k in names:
        ours = np.array(d['vlogits' if k == 'logits' else k], dtype=np.float64).ravel()
        ref = io['ref.' + k].astype(np.float64).ravel()
        t32 = io['t32.' + k].astype(np.float64).ravel()
        nr = np.linalg.norm(ref) or 1.0
        dus, dpt = np.linalg.norm(ours - ref) / nr, np.linalg.norm(t32 - ref) / nr
        lim = max(1e-4, 3 * dpt)
        print(f'{k:9s} ours {dus:.3g}  pytorch-fp32 {dpt:.3g}  limit {lim:.3g}')
        bad += dus > lim
    sys.exit(1 if bad else 0)


def compare(out, io):
    """`avs-model run resnet50` output against an io file's ref./t32. tensors."""
    o, d = model_st.load(out), model_st.load(io)
    bad = 0
    for k in ['stage1', 'stage2', 'stage3', 'stage4', 'logits'] + [f'gradcam{s}' for s in range(1, 5)]:
        ours = np.array(o[k], dtype=np.float64).ravel()
        ref = np.array(d['ref.' + k], dtype=np.float64).ravel()
        t32 = np.array(d['t32.' + k], dtype=np.float64).ravel()
        nr = np.linalg.norm(ref) or 1.0
        dus, dpt = np.linalg.norm(ours - ref) / nr, np.linalg.norm(t32 - ref) / nr
        lim = max(1e-4, 3 * dpt)
        print(f'{k:9s} ours {dus:.3g}  pytorch-fp32 {dpt:.3g}  limit {lim:.3g}')
        bad += dus > lim
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == 'compare':
        compare(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 4 and sys.argv[1] == 'check':
        check(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) >= 3 and sys.argv[1] == 'full':
        seed = int(sys.argv[3]) if len(sys.argv) > 3 else 5
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = resnet.resnet50()
        randomise_bn(model, g)
        x = torch.randn(1, 3, 64, 64, generator=g)
        target = torch.tensor([417])
        save(sys.argv[2], make_case(model, x, target))
        return
    if len(sys.argv) == 2 and sys.argv[1] == 'grads':
        save('tests/fixtures/model/resnet_grad', grads_case())
        print('wrote tests/fixtures/model/resnet_grad.{weights,io}.safetensors')
        return
    save('tests/fixtures/model/resnet_grad', grads_case())
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(3)
    model = NarrowResNet(8, 10)
    randomise_bn(model, g)
    x = torch.randn(2, 3, 64, 64, generator=g)
    target = torch.tensor([3, 7])
    out = 'tests/fixtures/model/resnet_small'
    save(out, make_case(model, x, target))
    print('wrote', out + '.{weights,io}.safetensors')


if __name__ == '__main__':
    main()
