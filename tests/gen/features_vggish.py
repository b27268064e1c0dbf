"""tests/gen/features_vggish.py: PyTorch reference of VGGish (torchvggish's VGG module: same
layer indices, parameter names and channel-last flatten) plus a linear AudioSet-style head, and
the fixtures of tests/test_features_vggish.c / tests/test_features_tool.sh.

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/features_vggish.py
The official widths (64,128,256,256,512,512 / 4096,4096,128) make 290 MB of weights, so the
fixture uses the same architecture at reduced widths (random weights, seed 7):
  conv 4,8,8,8,16,16  fc 32,32,16  head 20 classes     (the C code reads widths from shapes)
Writes tests/fixtures/features/
  vggish_small.weights.safetensors   features.*, embeddings.* (torchvggish names)
  vggish_small.head.safetensors      head.weight [20,16], head.bias [20]
  vggish_small.io.safetensors        examples [3,96,64] (log-mel of the logmel fixtures),
                                     embedding [3,16], logits [3,20] (PyTorch float32)
"""
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402


class VGG(nn.Module):
    """torchvggish.vggish.VGG with configurable widths."""

    def __init__(self, ch=(64, 128, 256, 256, 512, 512), fc=(4096, 4096, 128)):
        super().__init__()
        layers, cin = [], 1
        for v in (ch[0], 'M', ch[1], 'M', ch[2], ch[3], 'M', ch[4], ch[5], 'M'):
            if v == 'M':
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(cin * 4 * 6, fc[0]), nn.ReLU(True),
                                        nn.Linear(fc[0], fc[1]), nn.ReLU(True),
                                        nn.Linear(fc[1], fc[2]), nn.ReLU(True))

    def forward(self, x):  # x [N,1,96,64]
        x = self.features(x)
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2)
        return self.embeddings(x.contiguous().view(x.size(0), -1))


def main():
    torch.manual_seed(7)
    net = VGG((4, 8, 8, 8, 16, 16), (32, 32, 16)).eval()
    head = nn.Linear(16, 20)
    F = 'tests/fixtures/features/'
    a = model_st.load(F + 'logmel_tones.safetensors')['stream']
    b = model_st.load(F + 'logmel_real.safetensors')['stream']
    x = np.concatenate([a, b]).astype(np.float32)  # [3,96,64]
    with torch.no_grad():
        emb = net(torch.from_numpy(x)[:, None])
        logits = head(emb)
    assert (emb > 0).float().mean() > 0.2, 'too many dead units: pick another seed'
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    model_st.save(F + 'vggish_small.weights.safetensors', sd, {'generator': 'tests/gen/features_vggish.py'})
    model_st.save(F + 'vggish_small.head.safetensors', {'head.weight': head.weight.detach().numpy(),
                                                        'head.bias': head.bias.detach().numpy()})
    model_st.save(F + 'vggish_small.io.safetensors', {'examples': x, 'embedding': emb.numpy(),
                                                      'logits': logits.numpy()},
                  {'torch': torch.__version__})


if __name__ == '__main__':
    main()
