"""tests/gen/model_st.py: write and read safetensors files without the `safetensors` package
(not in Debian): 8-byte little-endian header length, JSON header
{name: {dtype, shape, data_offsets}}, header padded with spaces to 8 bytes, raw LE data.
Used by the model_*.py fixture generators and bench/peers/head_peer.py; rel_err is the
relative error every comparison of a result with its float64 reference uses."""
import json
import struct

import numpy as np

_DT = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('int64'): 'I64',
       np.dtype('int32'): 'I32', np.dtype('uint8'): 'U8'}
_NP = {v: k for k, v in _DT.items()}


def save(path, tensors, metadata=None, keep_f64=()):
    """float64 arrays are written as F32, except those named in keep_f64 (F64)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        if a.dtype == np.float64 and name not in keep_f64:
            a = a.astype(np.float32)
        b = a.astype(a.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': _DT[a.dtype], 'shape': list(a.shape),
                        'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def metadata(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        return json.loads(f.read(n)).get('__metadata__', {})


def load(path):
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, en = e['data_offsets']
        out[name] = np.frombuffer(data[base + b:base + en], dtype=_NP[e['dtype']]).reshape(e['shape'])
    return out


def rel_err(got, want, big):
    """Relative L2 error ||got - want|| / ||want|| (float64 arrays). A tensor that is zero up to
    rounding in want (||want|| <= 1e-7 x big, the largest norm of the reference file) is
    measured as ||got|| / big instead: its value is pure rounding noise."""
    nw = np.linalg.norm(want)
    return np.linalg.norm(got - want) / nw if nw > 1e-7 * big else np.linalg.norm(got) / big
