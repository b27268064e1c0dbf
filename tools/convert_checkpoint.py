#!/usr/bin/python3
"""convert_checkpoint.py: official PyTorch checkpoints (.pth) to safetensors, names unchanged.

Run where PyTorch is (e.g. Debian's python3-torch: /usr/bin/python3):

    /usr/bin/python3 tools/convert_checkpoint.py pvt_v2_b5.pth pvt_v2_b5.safetensors
    /usr/bin/python3 tools/convert_checkpoint.py vggish-10086976.pth vggish.safetensors
    /usr/bin/python3 tools/convert_checkpoint.py S4_pvt_best.pth c3n_s4.safetensors

The tensors keep their PyTorch state_dict names, so the C loaders (avs-model, avs-features,
avs-train) read official checkpoints 1:1. The state dict is found as the file itself or under
one of the usual keys ("state_dict", "model", "model_state_dict", "net", "module"). Names are
not changed unless --strip-prefix is given (e.g. --strip-prefix module. for DataParallel
checkpoints; the C3N head loader also accepts the "module." prefix as is). Floats stay in
their dtype (F32, F16, BF16; F64 becomes F32 unless --keep-f64); integers (BatchNorm's
num_batches_tracked) are written as I64. The output records the source file name, its
sha256, the torch version and the number of parameters in its __metadata__, and is written to
a temp name and renamed.

Format (safetensors): u64 little-endian header length, JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} padded with
spaces to 8 bytes, then the raw little-endian tensor data in header order.
"""
import argparse
import hashlib
import json
import os
import struct
import sys

KEYS = ('state_dict', 'model', 'model_state_dict', 'net', 'module')


def find_state_dict(obj, path):
    """The {name: tensor} mapping inside a loaded checkpoint."""
    import torch
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for k in KEYS:
            if k in obj:
                return find_state_dict(obj[k], path)
    if hasattr(obj, 'state_dict'):
        return obj.state_dict()
    keys = list(obj.keys())[:10] if isinstance(obj, dict) else type(obj).__name__
    sys.exit(f'{path}: no state dict found (top-level keys: {keys}); '
             f'expected tensors at the top or under one of {KEYS}')


def tensor_bytes(t, keep_f64):
    """(dtype name, shape, little-endian bytes) of one tensor."""
    import torch
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.float64 and not keep_f64:
        t = t.float()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: move the raw 16-bit words
        return 'BF16', list(t.shape), t.view(torch.int16).numpy().astype('<i2').tobytes()
    names = {torch.float32: ('F32', '<f4'), torch.float16: ('F16', '<f2'), torch.float64: ('F64', '<f8'),
             torch.int64: ('I64', '<i8'), torch.int32: ('I32', '<i4'), torch.uint8: ('U8', 'u1'),
             torch.bool: ('U8', 'u1'), torch.int16: ('I64', '<i8'), torch.int8: ('I64', '<i8')}
    if t.dtype not in names:
        raise ValueError(f'unsupported dtype {t.dtype}')
    name, np_dtype = names[t.dtype]
    return name, list(t.shape), t.numpy().astype(np_dtype).tobytes()


def write_safetensors(out, tensors, metadata):
    header, blobs, off = {'__metadata__': metadata}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = f'{out}.tmp.{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, out)


def main():
    ap = argparse.ArgumentParser(description='PyTorch checkpoint (.pth) -> safetensors, names unchanged')
    ap.add_argument('input')
    ap.add_argument('output')
    ap.add_argument('--strip-prefix', default='', help='remove this prefix from names (e.g. module.)')
    ap.add_argument('--keep-f64', action='store_true', help='keep float64 tensors as F64')
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit('convert_checkpoint.py needs PyTorch: run it with /usr/bin/python3 after '
                 'apt-get install python3-torch (or any python with torch)')
    with open(a.input, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    try:
        obj = torch.load(a.input, map_location='cpu')
    except Exception as e:  # noqa: BLE001 - say which file and why
        sys.exit(f'{a.input}: cannot load as a PyTorch checkpoint: {e}')
    sd = find_state_dict(obj, a.input)
    tensors, n_params = {}, 0
    for name, t in sd.items():
        if a.strip_prefix and name.startswith(a.strip_prefix):
            name = name[len(a.strip_prefix):]
        if name in tensors:
            sys.exit(f'{a.input}: two tensors named {name!r} after --strip-prefix')
        try:
            tensors[name] = tensor_bytes(t, a.keep_f64)
        except ValueError as e:
            sys.exit(f'{a.input}: tensor {name!r}: {e}')
        n_params += t.numel() if t.is_floating_point() else 0
    meta = {'source': os.path.basename(a.input), 'source_sha256': digest,
            'torch': torch.__version__, 'parameters': str(n_params), 'converter': 'tools/convert_checkpoint.py'}
    write_safetensors(a.output, tensors, meta)
    print(f'{a.output}: {len(tensors)} tensors, {n_params} parameters (from {a.input})')


if __name__ == '__main__':
    main()
