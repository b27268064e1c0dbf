"""tests/gen/audiohead_fixtures.py OUTDIR: small AudioSet-style inputs for avs-audiohead.

Writes, with our own encoder of the TFRecord framing (masked CRC32C) and of the protobuf wire
format of tf.SequenceExample (so the C reader is checked against an independent writer):
  train.tfrecord, eval.tfrecord   clips of 7..10 seconds of 128-byte quantised embeddings whose
                                  labels (classes 0..5, plus a class present only in train)
                                  shift the embedding, so a head can learn them
  bad_crc.tfrecord                record 2's data CRC wrong
  bad_len_crc.tfrecord            record 1's length CRC wrong
  trunc.tfrecord                  cut inside record 3
  garbage.tfrecord                record 1 is no protobuf; short_emb.tfrecord: 127-byte seconds
  listing.txt                     what `avs-audiohead read train.tfrecord` must print
  data.npz                        the dequantised clips and labels, for the reference
  pca.safetensors                 a random orthogonal PCA (pca_eigen_vectors, pca_means)
  scores.safetensors, scores_ref.json  fixed scores with ties, and their AP/AUC (sklearn's
                                  algorithm, written again here in numpy)
  vggish128.safetensors           a tiny VGGish whose embedding is 128 wide (for avs-features)
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

K = 527


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff


assert crc32c(b'123456789') == 0xE3069283  # the CRC-32C check value


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, payload):  # length-delimited
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def bytes_feature(values):
    return field(1, b''.join(field(1, v) for v in values))


def float_feature(values, packed=True):
    if packed:
        body = field(1, b''.join(struct.pack('<f', v) for v in values))
    else:
        body = b''.join(varint(1 << 3 | 5) + struct.pack('<f', v) for v in values)
    return field(2, body)


def int64_feature(values, packed=True):
    if packed:
        body = field(1, b''.join(varint(v) for v in values))
    else:
        body = b''.join(varint(1 << 3 | 0) + varint(v) for v in values)
    return field(3, body)


def map_entry(key, value):
    return field(1, field(1, key.encode()) + field(2, value))


def sequence_example(vid, start, end, labels, emb, packed=True):
    ctx = (map_entry('video_id', bytes_feature([vid.encode()])) +
           map_entry('start_time_seconds', float_feature([start], packed)) +
           map_entry('end_time_seconds', float_feature([end], packed)) +
           map_entry('labels', int64_feature(labels, packed)))
    fl = b''.join(field(1, bytes_feature([row.tobytes()])) for row in emb)  # FeatureList
    lists = map_entry('audio_embedding', fl)
    # an unknown varint field first: readers skip what they do not know
    return varint(7 << 3 | 0) + varint(300) + field(1, ctx) + field(2, lists)


def frame(rec):
    n = struct.pack('<Q', len(rec))
    return n + struct.pack('<I', masked(crc32c(n))) + rec + struct.pack('<I', masked(crc32c(rec)))


def clips(rng, n, prefix, centres, extra):
    out = []
    for i in range(n):
        labels = sorted(set(rng.choice(6, size=rng.integers(1, 3), replace=False).tolist()))
        if extra and i % 7 == 0:
            labels.append(300)  # a class only the training data has
        T = int(rng.integers(7, 11))
        z = rng.normal(0, 0.35, size=(T, 128))
        for k in labels:
            on = rng.random(T) < 0.7  # weak labels: the sound is in most seconds, not all
            on[rng.integers(T)] = True
            z[on] += centres[k % 6]
        q = np.clip(np.round(z * 128 + 128), 0, 255).astype(np.uint8)
        out.append(('%s%03d' % (prefix, i), 10.0 * i, 10.0 * i + 10, labels, q))
    return out


def write_records(path, cl, packed=True):
    with open(path, 'wb') as f:
        for c in cl:
            f.write(frame(sequence_example(*c, packed=packed)))


def ap_auc(score, y):
    """sklearn's average_precision_score / roc_auc_score for one class, in numpy."""
    order = np.argsort(-score, kind='mergesort')
    s, t = score[order], y[order].astype(np.float64)
    distinct = np.where(np.diff(s))[0]
    thr = np.r_[distinct, t.size - 1]
    tps = np.cumsum(t)[thr]
    fps = 1 + thr - tps
    P, N = tps[-1], fps[-1]
    ap = auc = -1.0
    if P > 0:
        prec = tps / (tps + fps)
        rec = tps / P
        prec, rec = np.r_[prec[::-1], 1], np.r_[rec[::-1], 0]
        ap = float(-np.sum(np.diff(rec) * prec[:-1]))
    if P > 0 and N > 0:
        fpr, tpr = np.r_[0, fps / N], np.r_[0, tps / P]
        auc = float(np.trapz(tpr, fpr))
    return ap, auc


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240605)
    centres = rng.normal(0, 0.5, size=(6, 128))
    train = clips(rng, 60, 'tr', centres, True)
    ev = clips(rng, 30, 'ev', centres, False)
    write_records(out + '/train.tfrecord', train)
    write_records(out + '/eval.tfrecord', ev, packed=False)  # unpacked scalars are valid too
    with open(out + '/listing.txt', 'w') as f:
        for i, (vid, s, e, lab, q) in enumerate(train):
            f.write('%d %s %.3f %.3f %d %s\n' % (i, vid, s, e, len(q), ','.join(map(str, lab))))
    recs = [frame(sequence_example(*c)) for c in train[:5]]
    bad = bytearray(b''.join(recs))
    off2 = len(recs[0]) + len(recs[1])
    bad[off2 + 12 + 40] ^= 0x01  # a byte of record 2's data
    open(out + '/bad_crc.tfrecord', 'wb').write(bad)
    bad = bytearray(b''.join(recs))
    bad[len(recs[0]) + 3] ^= 0x10  # record 1's length field (its CRC no longer matches)
    open(out + '/bad_len_crc.tfrecord', 'wb').write(bad)
    cut = len(recs[0]) + len(recs[1]) + len(recs[2]) + 30
    open(out + '/trunc.tfrecord', 'wb').write(b''.join(recs)[:cut])
    # valid framing around bytes that are no protobuf (an 11-byte varint), and a second of 127 bytes
    open(out + '/garbage.tfrecord', 'wb').write(recs[0] + frame(b'\xff' * 11 + b'\x01'))
    short = train[1][:4] + (train[1][4][:, :127].copy(),)
    open(out + '/short_emb.tfrecord', 'wb').write(frame(sequence_example(*short)))

    def arrays(cl):
        x = [((c[4].astype(np.float64) - 128) / 128) for c in cl]
        y = np.zeros((len(cl), K), np.uint8)
        for i, c in enumerate(cl):
            y[i, c[3]] = 1
        return x, y
    xt, yt = arrays(train)
    xe, ye = arrays(ev)
    np.savez(out + '/data.npz', y_train=yt, y_eval=ye, len_train=[len(a) for a in xt],
             len_eval=[len(a) for a in xe], x_train=np.concatenate(xt), x_eval=np.concatenate(xe))

    E, _ = np.linalg.qr(rng.normal(size=(128, 128)))
    mu = rng.normal(0, 0.3, size=128)
    model_st.save(out + '/pca.safetensors', {'pca_eigen_vectors': E.astype(np.float32),
                                             'pca_means': mu.astype(np.float32)})

    n, k = 41, 5
    sc = np.round(rng.random((n, k)) * 8) / 8  # many ties
    tg = (rng.random((n, k)) < 0.3).astype(np.float32)
    tg[:, 3] = 0  # a class without positives: left out of the mean
    tg[:, 4] = 1  # all positive: AP 1, no AUC
    model_st.save(out + '/scores.safetensors', {'scores': sc.astype(np.float32), 'targets': tg})
    res = [ap_auc(sc[:, j].astype(np.float32).astype(np.float64), tg[:, j]) for j in range(k)]
    json.dump({'ap': [r[0] for r in res], 'auc': [r[1] for r in res]},
              open(out + '/scores_ref.json', 'w'))

    def conv(o, i):
        return rng.normal(0, 0.3, size=(o, i, 3, 3)).astype(np.float32), np.zeros(o, np.float32)
    vg, ch, cin = {}, 4, 1
    for l in (0, 3, 6, 8, 11, 13):
        w, b = conv(ch, cin)
        vg['features.%d.weight' % l], vg['features.%d.bias' % l] = w, b + 0.05
        cin = ch
    fin = ch * 6 * 4
    for l, (o, i) in zip((0, 2, 4), ((16, fin), (16, 16), (128, 16))):
        vg['embeddings.%d.weight' % l] = rng.normal(0, 1 / np.sqrt(i), size=(o, i)).astype(np.float32)
        vg['embeddings.%d.bias' % l] = np.full(o, 0.1, np.float32)
    model_st.save(out + '/vggish128.safetensors', vg)


if __name__ == '__main__':
    main()
