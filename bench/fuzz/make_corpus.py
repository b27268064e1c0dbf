#!/usr/bin/python3
"""bench/fuzz/make_corpus.py: write the seed corpora bench/fuzz/corpus/<target>/ (small valid
files of each format, a few variants each). Run once from the repository root; the output is
committed. Formats: core/safetensors.h, features/cache.h, eval/eval.h (logits), docs/avss.md,
core/pth.h (PyTorch checkpoints: needs torch, i.e. /usr/bin/python3 with python3-torch).
Arguments: the targets to write (default: all), e.g. make_corpus.py pth."""
import ctypes
import io
import json
import os
import struct
import sys
import wave

import numpy as np
from PIL import Image

OUT = "bench/fuzz/corpus"
XXH = ctypes.CDLL("libxxhash.so.0")
XXH.XXH3_64bits_withSeed.restype = ctypes.c_uint64


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, meta=None):
    header, blob = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def seeds_safetensors():
    f32 = np.arange(6, dtype=np.float32)
    put("safetensors", "f32", safetensors({"w": ("F32", [2, 3], f32.tobytes())}))
    put("safetensors", "mixed", safetensors({
        "a.weight": ("F16", [4], np.ones(4, np.float16).tobytes()),
        "b": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "n": ("I64", [], struct.pack("<q", 7)),
        "d": ("F64", [1, 1], struct.pack("<d", 0.5)),
        "u": ("U8", [3], b"\x01\x02\x03")}, {"note": "seed"}))
    state = {"epoch": 1, "step": 2, "adam_step": 12, "loss_sum": "1.5", "loss_n": 3,
             "best_miou": 0.25, "best_epoch": 1}
    put("safetensors", "ckpt", safetensors({"head.x": ("F32", [1], f32[:1].tobytes())},
                                           {"format": "avs-c3n", "version": "1",
                                            "config": json.dumps({"subset": "s4"}),
                                            "state": json.dumps(state)}))
    put("safetensors", "empty", safetensors({}))
    # Version 2 (train/ckpt.h): metadata "checksum" = the digest of avs_st_digest.
    meta = {"format": "avs-c3n", "version": "2", "config": json.dumps({"subset": "s4"}),
            "state": json.dumps(state)}
    tensors = {"head.x": ("F32", [1], f32[:1].tobytes())}
    put("safetensors", "ckpt_v2", safetensors(tensors, dict(meta, checksum="xxh3:%016x" % st_digest(meta, tensors))))


def st_digest(meta, tensors):
    """core/safetensors.c's avs_st_digest: metadata keys and values, then each tensor's name,
    dtype, shape (u64 each) and bytes, strings NUL-terminated, in file order."""
    z = lambda t: t.encode() + b"\0"
    b = b"".join(z(k) + z(v) for k, v in meta.items()) + z("")
    for name, (dtype, shape, raw) in tensors.items():
        b += z(name) + z(dtype) + b"".join(struct.pack("<Q", d) for d in shape) + z("") + raw
    return xxh3(b)


def xxh3(data, seed=0):
    """XXH3-64 of data (Debian's libxxhash, the library core/integrity.h wraps)."""
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    return XXH.XXH3_64bits_withSeed(buf, ctypes.c_size_t(len(data)), ctypes.c_uint64(seed))


def cache(fields, dtype, records, reserved=0):
    """A version-2 feature cache (features/cache.h): header checksum (its own 8 bytes at 40 counted
    as zero) and each record's checksum (seeded with the record's byte offset)."""
    n = len(fields)
    size = 2 if dtype else 4
    data = sum(int(np.prod(s)) for _, s in fields) * size
    at = 64 + 64 * n
    h = b"AVSFEAT\0" + struct.pack("<IIII", 2, dtype, n, reserved) + struct.pack("<QQ", data + 8, at) + bytes(24)
    for name, shape in fields:
        dims = list(shape) + [0] * (4 - len(shape))
        h += name.encode().ljust(40, b"\0") + struct.pack("<5I", len(shape), *dims) + bytes(4)
    h = h[:40] + struct.pack("<Q", xxh3(h)) + h[48:]
    rng = np.random.default_rng(1)
    body = b""
    for r in range(records):
        rec = rng.standard_normal(data // size).astype(np.float16 if dtype else np.float32).tobytes()
        body += rec + struct.pack("<Q", xxh3(rec, at + r * (data + 8)))
    return h + body


def seeds_cache():
    put("cache", "f32", cache([("logits", [10]), ("stage1", [2, 3, 3])], 0, 2))
    put("cache", "f16", cache([("audio", [8]), ("gc1", [4]), ("stage4", [1, 2, 2, 2])], 1, 3))
    put("cache", "torn", cache([("x", [5])], 0, 2)[:-6])  # a record cut by a crash
    # Bit 0 of the reserved word set: bench/fuzz/fuzz_cache.c feeds the file as is (its own
    # checksums are checked); "raw_badsum" has one field-table byte changed after its checksum.
    put("cache", "raw", cache([("y", [3, 2])], 0, 2, reserved=1))
    bad = bytearray(cache([("y", [3, 2])], 0, 1, reserved=1))
    bad[64] ^= 1
    put("cache", "raw_badsum", bytes(bad))


def seeds_csv():
    put("csv", "s4", "name,start,category,split\npiano_a,0,piano,test\n\"dog, a\",1,dog,train\n")
    put("csv", "avss", "vid,uid,s_min,s_sec,a_obj,split,label\n1,u_1,0,0,dog,train,v1s\n2,u_2,0,0,car,test,v2\r\n")
    put("csv", "quoted", 'uid,label\r\n"a ""b""",v1m\r\n,\n')


def seeds_avsbench():
    put("avsbench", "s4", "\0name,start,category,split\npiano_a,0,piano,test\ndog_b,0,dog,train\n")
    put("avsbench", "s4_positions", "\3vid,a,b,c\nv1,0,cat,val\n")
    put("avsbench", "ms3", "\1video_id,split\nmultiE,test\n\"m,2\",train\n")
    put("avsbench", "avss", "\2vid,uid,s_min,s_sec,a_obj,split,label\n1,u_1,0,0,dog,train,v1s\n2,u_2,0,0,car,test,v2\n")


def seeds_label2idx():
    put("label2idx", "three", json.dumps({"background": 0, "dog": 1, "guitar": 2}))
    put("label2idx", "order", '{"b": 1, "a": 0}')


def png(arr, mode=None, **kw):
    b = io.BytesIO()
    Image.fromarray(arr, mode).save(b, "PNG", **kw)
    return b.getvalue()


def seeds_png():
    rng = np.random.default_rng(2)
    gray = (rng.random((6, 5)) * 255).astype(np.uint8)
    put("png", "gray", png(gray))
    put("png", "mask", png(np.where(gray > 128, 255, 0).astype(np.uint8)))
    put("png", "rgb", png((rng.random((4, 4, 3)) * 255).astype(np.uint8)))
    put("png", "rgba", png((rng.random((3, 4, 4)) * 255).astype(np.uint8)))
    pal = Image.fromarray((gray % 4).astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0])
    b = io.BytesIO()
    pal.save(b, "PNG")
    put("png", "palette", b.getvalue())
    b = io.BytesIO()
    Image.fromarray((gray.astype(np.uint16) * 257), "I;16").save(b, "PNG")
    put("png", "gray16", b.getvalue())
    put("png", "gray_alpha", png(np.stack([gray, 255 - gray], -1), "LA"))


def seeds_jpeg():
    rng = np.random.default_rng(3)
    for name, shape in (("rgb", (8, 8, 3)), ("odd", (5, 9, 3))):
        b = io.BytesIO()
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(b, "JPEG", quality=80)
        put("jpeg", name, b.getvalue())
    b = io.BytesIO()
    Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(b, "JPEG")
    put("jpeg", "gray", b.getvalue())


def wav(channels, rate, samples):
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return b.getvalue()


def seeds_wav():
    t = np.arange(160)
    tone = (8000 * np.sin(t / 5)).astype(np.int16)
    put("wav", "mono16k", wav(1, 16000, tone))
    put("wav", "stereo", wav(2, 44100, np.repeat(tone[:40], 2)))
    put("wav", "empty", wav(1, 16000, tone[:0]))


def logits(c, w, h):
    x = np.linspace(-3, 3, max(c, 1) * w * h, dtype=np.float32)
    return b"AVSLOGIT" + struct.pack("<6I", 1, 32, w, h, 1, c) + x.tobytes()


def seeds_logits():
    put("logits", "binary_old", logits(0, 4, 3))
    put("logits", "binary", logits(1, 2, 2))
    put("logits", "classes", logits(3, 2, 2))


def seeds_config():
    put("config", "s4", json.dumps({
        "model": "C3N", "subset": "s4", "features": "demo",
        "feature_config": {"visual": {"name": "pvt_v2_b5"}, "audio": {"name": "vggish"}},
        "backbone": "pvt_v2_b5", "mode": "frozen", "switches": "AF,CC", "epochs": 15,
        "batch": 4, "lr": 0.0001, "seed": 1, "width": 256, "T": 5, "image_size": [224, 224]}))
    put("config", "avss", '{"subset":"avss","features":"x","mode":"finetune","switches":"none",'
                          '"classes":71,"width":64,"epochs":2}')
    put("config", "state", '{"epoch":0,"step":3,"adam_step":"3","loss_sum":"0.5","loss_n":1,'
                           '"best_miou":-1,"best_epoch":0}')


def seeds_index():
    """metrics.details and runs.config as avs-report reads them back (bench/fuzz/fuzz_index.c:
    the same text is both): an S4 row (per class, per video with paths, switches, backbone,
    C3IM exponents), an AVSS row (variants, classes, padded counts), a run config."""
    s4 = {"schema": "avs-eval/1", "protocol": "official", "miou": 0.5, "fscore": 0.6,
          "switches": {"AF": True, "CC-V": False, "CC": True}, "backbone": "pvt_v2_b5+vggish",
          "alpha": 0.1, "beta": 0.2,
          "per_class": {"dog": {"miou": 0.4, "fscore": 0.5, "frames": 8, "videos": 2},
                        "gui<tar>": {"miou": 0.7, "fscore": 0.8, "frames": 2, "videos": 1}},
          "per_video": [{"video": "dog_a", "category": "dog", "k": 1, "miou": 0.3, "fscore": 0.4,
                         "gt_path": "masks/dog_a/1.png", "pred_path": None, "image_path": None}]}
    put("index", "s4", json.dumps(s4))
    avss = {"schema": "avs-eval/1", "protocol": "avss-official", "miou": 0.3, "fscore": 0.4,
            "variants": {v: {"protocol": "avss-official", "miou": 0.2, "fscore": 0.3}
                         for v in ("no-bg", "official-no-bg", "present", "pooled")},
            "classes": [{"idx": 0, "name": "background", "iou": 0.9, "fscore": 0.9, "frames": 10},
                        {"idx": 3, "name": "dog", "iou": 0.2, "fscore": 0.3, "frames": 4}],
            "padded_given": 0, "padded_assumed": 5, "unknown_pixels": 0, "frames": 10}
    put("index", "avss", json.dumps(avss))
    put("index", "config", json.dumps({"model": "C3N", "subset": "s4", "switches": "AF,CC-V",
                                       "c3im": {"alpha": 0.3, "beta": 0.1},
                                       "feature_config": {"visual": {"name": "swin_b"},
                                                          "audio": {"name": "vggish"}}}))


def seeds_pth():
    """Small torch.save zips (core/pth.h): one tensor, a nested prefixed state dict of other
    dtypes, a strided bf16 view, pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL). And bare
    data.pkl pickles (pkl_*), which bench/fuzz/fuzz_pth.c puts into a zip beside 64-byte
    storages data/0..3: their tensors' storages are 64 bytes each."""
    import collections
    import zipfile
    import torch

    def save(name, obj, **kw):
        b = io.BytesIO()
        torch.save(obj, b, **kw)
        put("pth", name, b.getvalue())
        with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
            put("pth", "pkl_" + name, z.read("archive/data.pkl"))

    x = torch.arange(16, dtype=torch.float32).reshape(4, 4)
    save("one_f32", {"w": x})
    save("nested", {"epoch": 1, "state_dict": collections.OrderedDict(
        [("module.a", torch.zeros(32).half()[:8]), ("module.n", torch.arange(8)),
         ("module.b", torch.zeros(64, dtype=torch.bool)[::3])])})
    save("view_bf16", {"t": torch.zeros(32).bfloat16().reshape(4, 8).t(), "p": torch.nn.Parameter(x[:, 1:])})
    save("proto4", {"w": torch.zeros(8).double(), "i": torch.arange(16, dtype=torch.int32)}, pickle_protocol=4)


ALL = (seeds_safetensors, seeds_cache, seeds_csv, seeds_avsbench, seeds_label2idx, seeds_png,
       seeds_jpeg, seeds_wav, seeds_logits, seeds_config, seeds_index, seeds_pth)
for fn in ALL:
    if len(sys.argv) < 2 or fn.__name__[len("seeds_"):] in sys.argv[1:]:
        fn()
