# tests/avss_store.sh: sourced by AVSS tests. avss_store ROOT turns a store ingested from
# avs-synth S4/MS3 data into an AVSBench-semantic (AVSS) store as docs/avss.md defines it, so
# the AVSS training and prediction code can be tested before the AVSS synth/ingest exists
# (swap this helper for `avs-synth --subset avss` + `avs-ingest` when it does):
#   - videos: subset 'avss'; avss_set v2 for videos of >= 10 seconds, v1m for MS3 ones, v1s
#     for the rest (the S4 train videos keep their one labelled frame, as v1s train has);
#   - classes (dataset 'avss'): 0 background, then the videos' first categories by name;
#   - masks: class-index 8-bit PNGs (ROOT/masks_avss/<uid>/<k>.png) = the category's index where
#     the binary mask is >= 128, else 0; kind 'class'; one 2x2 patch of the first mask is 255
#     (a colour outside the palette) with unknown_pixels = 4, which training reads as 0.
# Needs /usr/bin/python3 with PIL (Debian python3-pil); prints SKIP and exits 77 without.
avss_store() {
  /usr/bin/python3 -c 'import PIL' 2>/dev/null || { echo "SKIP: needs /usr/bin/python3 with PIL (python3-pil)"; exit 77; }
  /usr/bin/python3 - "$1" <<'PY' || return 1
import os, sqlite3, sys
from PIL import Image
root = sys.argv[1]
db = sqlite3.connect(os.path.join(root, 'avs.db'))
db.execute("PRAGMA foreign_keys = ON")
with db:
    db.execute("UPDATE videos SET avss_set = CASE WHEN n_seconds >= 10 THEN 'v2' WHEN subset = 'ms3' "
               "THEN 'v1m' ELSE 'v1s' END, subset = 'avss' WHERE status = 'ok'")
    cats = sorted({c.split('+')[0] for (c,) in db.execute(
        "SELECT category FROM videos WHERE subset = 'avss' AND category IS NOT NULL")})
    db.execute("DELETE FROM classes WHERE dataset = 'avss'")
    for i, name in enumerate(['background'] + cats):
        db.execute("INSERT INTO classes (dataset, idx, name) VALUES ('avss', ?, ?)", (i, name))
    idx = {c: i + 1 for i, c in enumerate(cats)}
    rows = db.execute("SELECT m.video_id, m.k, m.path, v.uid, v.category FROM masks m JOIN videos v "
                      "ON v.id = m.video_id WHERE v.subset = 'avss' ORDER BY v.uid, m.k").fetchall()
    for n, (vid, k, path, uid, cat) in enumerate(rows):
        c = idx[cat.split('+')[0]] if cat else 0
        im = Image.open(os.path.join(root, path)).convert('L')
        out = im.point(lambda v: c if v >= 128 else 0)
        unknown = 0
        if n == 0:
            for y in range(2):
                for x in range(2):
                    out.putpixel((x, y), 255)
            unknown = 4
        rel = os.path.join('masks_avss', uid, '%d.png' % k)
        os.makedirs(os.path.join(root, 'masks_avss', uid), exist_ok=True)
        out.save(os.path.join(root, rel))
        db.execute("UPDATE masks SET path = ?, kind = 'class', unknown_pixels = ? WHERE video_id = ? "
                   "AND k = ?", (rel, unknown, vid, k))
PY
}
