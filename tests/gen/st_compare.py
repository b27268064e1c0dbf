"""st_compare.py A B [--atol X --rtol Y] [--max-frac F] [--max-rel R] [--skip SUBSTR]...:
the float32 tensors of safetensors file A against B's (same names and shapes; a name holding a
--skip string left out). An element is off when |a-b| > atol + rtol*|b|. Prints the worst
element, the fraction off and ||A-B|| / ||B|| over all the tensors; exits 1 when the fraction
off exceeds --max-frac (default 0: every element within tolerance) or the norm ratio exceeds
--max-rel (default: not checked), 2 when the files hold other tensors.

Why a fraction: Adam's update is m/sqrt(v), about +-lr for any gradient however small, so an
element whose gradient is float noise (near 0) moves by +-lr on a whim; two exact-in-real-
arithmetic computations summed in other orders (N ranks vs 1 process) agree on all elements
but such ones. Used by tests/test_mpi_train.sh."""
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).astype(np.float64)
    return out


def opt(args, name, default):
    return float(args[args.index(name) + 1]) if name in args else default


def main():
    args = sys.argv[1:]
    atol, rtol = opt(args, "--atol", 1e-5), opt(args, "--rtol", 1e-4)
    max_frac, max_rel = opt(args, "--max-frac", 0.0), opt(args, "--max-rel", float("inf"))
    skip = [args[i + 1] for i, x in enumerate(args) if x == "--skip"]
    a, b = load(args[0]), load(args[1])
    for name in [n for n in set(a) | set(b) if any(k in n for k in skip)]:
        a.pop(name, None)
        b.pop(name, None)
    if sorted(a) != sorted(b):
        print("different tensors:", sorted(set(a) ^ set(b)))
        return 2
    worst, where, off, total, d2, b2 = -1.0, None, 0, 0, 0.0, 0.0
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            print("shape differs:", name)
            return 2
        if a[name].size == 0:
            continue
        diff = np.abs(a[name] - b[name])
        excess = (diff - rtol * np.abs(b[name])) / atol
        off += int((excess > 1).sum())
        total += a[name].size
        d2 += float((diff ** 2).sum())
        b2 += float((b[name] ** 2).sum())
        i = int(np.argmax(excess))
        if excess.flat[i] > worst:
            worst, where = float(excess.flat[i]), (name, i, a[name].flat[i], b[name].flat[i])
    rel = (d2 / b2) ** 0.5 if b2 > 0 else d2 ** 0.5
    print("worst: %s[%d] %.9g vs %.9g (%.3g of the tolerance); %d of %d elements off (%.3g); "
          "||A-B||/||B|| %.3g; %d tensors" % (where[0], where[1], where[2], where[3],
                                               max(worst, 0), off, total, off / total, rel, len(a)))
    return 0 if off <= max_frac * total and rel <= max_rel else 1


if __name__ == "__main__":
    sys.exit(main())
