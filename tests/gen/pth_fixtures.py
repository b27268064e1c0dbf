#!/usr/bin/python3
"""tests/gen/pth_fixtures.py: PyTorch checkpoints written by the Debian torch (1.13) for
tests/test_core_pth.c and tests/test_pth_tool.sh, into tests/fixtures/pth/ (committed).

    /usr/bin/python3 tests/gen/pth_fixtures.py

Accepted files NAME.pth come with NAME.ref.safetensors: the tensors core/pth.c must produce
(names after unwrapping 'state_dict'/'model' and the 'module.' prefix, the storage's dtype,
contiguous little-endian bytes), written here from the same tensors without going through torch's
reader. Refused files are listed in REFUSED with the words their message must hold.
"""
import collections
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch

OUT = 'tests/fixtures/pth'
sys.path.insert(0, 'tests/gen')
import model_st  # noqa: E402

DT = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
      torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}
ES = {'F32': 4, 'F16': 2, 'BF16': 2, 'F64': 8, 'I64': 8, 'I32': 4, 'U8': 1, 'BOOL': 1}


def raw(t):
    """Contiguous little-endian bytes of a tensor (bfloat16 through its 16-bit words)."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().astype(t.numpy().dtype.newbyteorder('<')).tobytes()


def write_ref(name, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = raw(t)
        header[k] = {'dtype': DT[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(f'{OUT}/{name}.ref.safetensors', 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def accepted(name, obj, expect, **kw):
    torch.save(obj, f'{OUT}/{name}.pth', **kw)
    write_ref(name, expect)


def small_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))
    net[1].running_mean.uniform_(-1, 1)
    net[1].num_batches_tracked += 7
    return net


def all_dtypes():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g)
    return collections.OrderedDict([
        ('f32', x), ('f16', x.half()), ('bf16', x.bfloat16()), ('f64', x.double() / 3),
        ('i64', torch.arange(-6, 6, dtype=torch.int64).reshape(3, 4) * 123456789012),
        ('i32', torch.arange(-3, 3, dtype=torch.int32)), ('u8', torch.arange(250, 256).to(torch.uint8)),
        ('bool', torch.tensor([True, False, True])), ('scalar', torch.tensor(2.5)),
        ('empty', torch.zeros(0, 3)), ('f16_special', torch.tensor([65504., -0., float('inf'), 6e-8]).half())])


def views():
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8) / 7
    sd = collections.OrderedDict([
        ('base', base), ('transposed', base.t()), ('offset', base.view(-1)[5:17].view(3, 4)),
        ('strided', base[1:5:2, ::3]), ('row', base[4]), ('column_f16', base.half()[:, 2])])
    return sd


def big_endian(name, sd):
    """sd saved, then its storages byte-swapped and a byteorder record 'big' added (torch 1.13
    writes none; 2.1+ writes it and a big-endian machine's storages are big-endian)."""
    buf = io.BytesIO()
    torch.save(sd, buf)
    es = [t.element_size() for t in sd.values()]  # storage keys '0', '1', ... in dict order
    zin = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    prefix = zin.namelist()[0].split('/')[0]
    with zipfile.ZipFile(f'{OUT}/{name}.pth', 'w', zipfile.ZIP_STORED) as z:
        for info in zin.infolist():
            data = zin.read(info)
            rel = info.filename[len(prefix) + 1:]
            if rel.startswith('data/'):
                e = es[int(rel[5:])]
                data = b''.join(data[i:i + e][::-1] for i in range(0, len(data), e))
            z.writestr(info.filename, data)
        z.writestr(f'{prefix}/byteorder', 'big')
    write_ref(name, sd)


class Cfg:  # a foreign class inside a checkpoint
    def __init__(self):
        self.lr = 0.1


class Evil:  # what a malicious checkpoint pickles: os.system('...') on load
    def __reduce__(self):
        return (os.system, ('echo this must never run',))


def corrupt_crc(src, dst):
    data = bytearray(open(src, 'rb').read())
    z = zipfile.ZipFile(src)
    info = max(z.infolist(), key=lambda i: i.file_size if '/data/' in i.filename else -1)
    local = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[local + info.file_size // 2] ^= 0x40
    open(dst, 'wb').write(bytes(data))


# name: words the refusal message must hold
REFUSED = {
    'truncated': 'truncated or corrupt',
    'corrupt_crc': 'does not read back whole',
    'foreign_class': 'refused the global __main__.Cfg',
    'os_system': 'refused the global posix.system',
    'whole_model': 'refused the global torch.nn.modules.container.Sequential',
    'legacy': "torch.save(torch.load('",
    'torchscript': 'TorchScript archive',
    'tensor_root': 'holds a tensor',
    'no_tensors': "top-level keys: 'epoch', 'lr'",
    'expanded': 'repeats elements',
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    dt = all_dtypes()
    accepted('dtypes', dt, dt)
    net = small_net()
    sd = net.state_dict()  # an OrderedDict with _metadata, BatchNorm's int64 num_batches_tracked
    accepted('nested_state_dict', {'epoch': 3, 'arch': 'toy', 'state_dict': sd}, sd)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(2, 3, 3, 3)).sum().backward()
    opt.step()
    accepted('nested_model', {'model': collections.OrderedDict(('module.' + k, v) for k, v in sd.items()),
                              'optimizer': opt.state_dict(), 'best': 0.5, 'tag': None},
             sd)
    accepted('prefixed', collections.OrderedDict(('module.' + k, v) for k, v in sd.items()), sd)
    accepted('partial_prefix', {'module.a': dt['f32'], 'b': dt['f16']}, {'module.a': dt['f32'], 'b': dt['f16']})
    v = views()
    accepted('views', v, v)
    params = collections.OrderedDict((k, torch.nn.Parameter(t)) for k, t in list(sd.items())[:2])
    accepted('parameters', params, params)
    accepted('proto4', dt, dt, pickle_protocol=4)
    big_endian('big_endian', collections.OrderedDict(
        [('a', dt['f32']), ('b', dt['bf16']), ('c', dt['i64']), ('d', dt['f64']), ('e', dt['u8'])]))

    # the end-to-end file: the C3N head fixture's weights (official parameter names) as an
    # official checkpoint would hold them: {'model': DataParallel names}, fp32
    w = model_st.load('tests/fixtures/model/head_eval.weights.safetensors')
    torch.save({'epoch': 30, 'model': collections.OrderedDict(
        ('module.' + k, torch.from_numpy(np.array(a))) for k, a in w.items())}, f'{OUT}/head_eval.pth')

    torch.save(dt, f'{OUT}/full.tmp')
    b = open(f'{OUT}/full.tmp', 'rb').read()
    open(f'{OUT}/truncated.pth', 'wb').write(b[:len(b) * 3 // 5])
    corrupt_crc(f'{OUT}/full.tmp', f'{OUT}/corrupt_crc.pth')
    os.remove(f'{OUT}/full.tmp')
    torch.save({'w': dt['f32'], 'cfg': Cfg()}, f'{OUT}/foreign_class.pth')
    torch.save({'w': dt['f32'], 'x': Evil()}, f'{OUT}/os_system.pth')
    torch.save(net, f'{OUT}/whole_model.pth')
    torch.save(sd, f'{OUT}/legacy.pth', _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), f'{OUT}/torchscript.pth')
    torch.save(dt['f32'], f'{OUT}/tensor_root.pth')
    torch.save({'epoch': 3, 'lr': 0.1}, f'{OUT}/no_tensors.pth')
    torch.save({'e': torch.ones(3).expand(2, 3)}, f'{OUT}/expanded.pth')
    with open(f'{OUT}/refused.txt', 'w') as f:
        for k, words in REFUSED.items():
            f.write(f'{k}.pth\t{words}\n')
    print('wrote', len(os.listdir(OUT)), 'files to', OUT)


if __name__ == '__main__':
    main()
