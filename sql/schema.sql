-- The schema of record of the AVS store index (avs.db). Compiled into every program.
--
-- Migrations: each block starts with a line "-- migration N: what". A database at
-- PRAGMA user_version = V gets every block N > V applied in order, each in one transaction
-- that ends by setting user_version = N. Blocks are idempotent (IF NOT EXISTS), so a
-- migration interrupted by a crash is simply applied again. Never edit a released block:
-- add a new one at the end.
--
-- Paths of store files are relative to the store root (the folder holding avs.db), so a
-- store can be moved or copied as a whole. `source` paths are absolute.

-- migration 1: videos, seconds, masks, features, runs, predictions, metrics, views
CREATE TABLE IF NOT EXISTS videos (
    id            INTEGER PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,      -- store name: file name without extension, made unique
    source        TEXT NOT NULL UNIQUE,      -- absolute path of the clip (or AVSBench frame folder)
    size          INTEGER,                   -- source size in bytes
    mtime_ns      INTEGER,                   -- source modification time, ns since the epoch
    hash          TEXT,                      -- murmur3-128 of the source bytes, hex
    category      TEXT,
    subset        TEXT NOT NULL DEFAULT 'other' CHECK (subset IN ('s4', 'ms3', 'other')),
    split         TEXT,                      -- train / val / test / NULL
    duration      REAL,                      -- seconds, as the container says
    fps           REAL,                      -- average frame rate
    src_width     INTEGER,
    src_height    INTEGER,
    width         INTEGER,                   -- stored frame size
    height        INTEGER,
    video_codec   TEXT,
    audio_codec   TEXT,
    audio_rate    INTEGER,                   -- source sample rate
    audio_channels INTEGER,
    has_audio     INTEGER NOT NULL DEFAULT 0,
    n_seconds     INTEGER NOT NULL DEFAULT 0,
    decode_errors INTEGER NOT NULL DEFAULT 0, -- packets the decoder rejected inside a readable clip
    status        TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error         TEXT,                      -- why it failed (the decoder's own message)
    frame_rule    TEXT,                      -- how frames were picked (e.g. 'avsbench')
    ingested_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX IF NOT EXISTS videos_category ON videos(category);
CREATE INDEX IF NOT EXISTS videos_subset_split ON videos(subset, split);

-- seconds.flags bits: 1 = audio zero-padded (short last second), 2 = no audio (silence
-- written), 4 = frame past the end of the stream (last decoded frame used),
-- 8 = frame imported as it was (AVSBench release).
CREATE TABLE IF NOT EXISTS seconds (
    video_id  INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    k         INTEGER NOT NULL CHECK (k >= 1),
    frame     TEXT,                          -- frames/<uid>/<k>.png
    audio     TEXT,                          -- audio/<uid>/<k>.wav
    flags     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, k)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS masks (
    video_id  INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    k         INTEGER NOT NULL CHECK (k >= 1),
    path      TEXT NOT NULL,                 -- masks/<uid>/<k>.png, foreground = value >= 128
    PRIMARY KEY (video_id, k)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS feature_sets (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    path        TEXT NOT NULL,               -- features/<name>.bin
    config      TEXT NOT NULL,               -- JSON: encoders, weights + hashes, options
    version     INTEGER NOT NULL,            -- cache format version
    random_init INTEGER NOT NULL DEFAULT 0,  -- 1: encoders were random-initialised (tests, demo)
    status      TEXT NOT NULL DEFAULT 'building',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE IF NOT EXISTS feature_entries (
    set_id    INTEGER NOT NULL REFERENCES feature_sets(id) ON DELETE CASCADE,
    video_id  INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    k         INTEGER NOT NULL,
    flipped   INTEGER NOT NULL DEFAULT 0,
    offset    INTEGER NOT NULL,              -- byte offset of the record in the set's file
    target    INTEGER,                       -- C3IM consensus class (CC)
    target_v  INTEGER,                       -- top visual class (CC-V)
    PRIMARY KEY (set_id, video_id, k, flipped)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS label_similarity (
    id          INTEGER PRIMARY KEY,
    vectors     TEXT NOT NULL,               -- word-vector file name
    vectors_hash TEXT NOT NULL,
    rows        INTEGER NOT NULL,            -- 1000 ImageNet classes
    cols        INTEGER NOT NULL,            -- 527 AudioSet classes
    data        BLOB NOT NULL,               -- float32 little-endian, row-major
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (vectors_hash)
);

CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    config       TEXT NOT NULL,              -- JSON: every option, switches, seed
    code_version TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'running',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE IF NOT EXISTS run_epochs (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    train_loss  REAL,
    val_miou    REAL,
    val_fscore  REAL,
    seconds     REAL,
    frames_per_s REAL,
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS predictions (
    run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    video_id  INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    k         INTEGER NOT NULL,
    path      TEXT NOT NULL,
    PRIMARY KEY (run_id, video_id, k)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS metrics (
    id           INTEGER PRIMARY KEY,
    method       TEXT NOT NULL,
    subset       TEXT,
    split        TEXT,
    group_frames INTEGER,                    -- NULL: one video per F-score group
    miou         REAL NOT NULL,
    fscore       REAL NOT NULL,
    dataset_iou  REAL,
    frames       INTEGER NOT NULL,
    source       TEXT,                       -- where the predictions came from
    run_id       INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    details      TEXT,                       -- JSON: per class, per video, options
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- Stable views for users and other programs.
CREATE VIEW IF NOT EXISTS v_videos AS
    SELECT uid, source, category, subset, split, status, error,
           n_seconds AS seconds, fps, width, height, has_audio
    FROM videos;

CREATE VIEW IF NOT EXISTS v_seconds AS
    SELECT v.uid AS uid, s.k AS k, s.frame AS frame, s.audio AS audio, m.path AS mask
    FROM seconds s
    JOIN videos v ON v.id = s.video_id
    LEFT JOIN masks m ON m.video_id = s.video_id AND m.k = s.k;

-- migration 2: sessions: every time a program computed into a run or a feature set, on which
-- backend. Provenance kept apart from the configurations (runs.config, feature_sets.config) and
-- from checkpoints, so that the same computation on two backends gives the same files.
CREATE TABLE IF NOT EXISTS sessions (
    id           INTEGER PRIMARY KEY,
    program      TEXT NOT NULL,              -- avs-train, avs-features, avs-predict
    run_id       INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    set_id       INTEGER REFERENCES feature_sets(id) ON DELETE CASCADE,
    device       TEXT NOT NULL,              -- compute backend: cpu, guard (tests), later cuda:N
    precision    TEXT NOT NULL DEFAULT 'fp32',
    threads      INTEGER NOT NULL,
    code_version TEXT NOT NULL,
    started_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX IF NOT EXISTS sessions_run ON sessions(run_id);
CREATE INDEX IF NOT EXISTS sessions_set ON sessions(set_id);

-- migration 3: AVSBench-semantic (docs/avss.md): subset 'avss' and its release set; class
-- tables; class-index masks and the released-size copies; the protocol of every metrics row.
-- The videos table is rebuilt to widen its CHECK (SQLite's documented procedure; the runner
-- applies this block with foreign keys off and checks them before it commits).
DROP VIEW IF EXISTS v_videos;
DROP VIEW IF EXISTS v_seconds;
CREATE TABLE videos_v3 (
    id            INTEGER PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL UNIQUE,
    size          INTEGER,
    mtime_ns      INTEGER,
    hash          TEXT,
    category      TEXT,
    subset        TEXT NOT NULL DEFAULT 'other' CHECK (subset IN ('s4', 'ms3', 'avss', 'other')),
    split         TEXT,
    duration      REAL,
    fps           REAL,
    src_width     INTEGER,
    src_height    INTEGER,
    width         INTEGER,
    height        INTEGER,
    video_codec   TEXT,
    audio_codec   TEXT,
    audio_rate    INTEGER,
    audio_channels INTEGER,
    has_audio     INTEGER NOT NULL DEFAULT 0,
    n_seconds     INTEGER NOT NULL DEFAULT 0,
    decode_errors INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error         TEXT,
    frame_rule    TEXT,
    ingested_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    avss_set      TEXT CHECK (avss_set IN ('v1s', 'v1m', 'v2'))  -- AVSS release set, else NULL
);
INSERT INTO videos_v3 (id, uid, source, size, mtime_ns, hash, category, subset, split, duration,
                       fps, src_width, src_height, width, height, video_codec, audio_codec,
                       audio_rate, audio_channels, has_audio, n_seconds, decode_errors, status,
                       error, frame_rule, ingested_at)
    SELECT id, uid, source, size, mtime_ns, hash, category, subset, split, duration, fps,
           src_width, src_height, width, height, video_codec, audio_codec, audio_rate,
           audio_channels, has_audio, n_seconds, decode_errors, status, error, frame_rule,
           ingested_at
    FROM videos;
DROP TABLE videos;
ALTER TABLE videos_v3 RENAME TO videos;
CREATE INDEX IF NOT EXISTS videos_category ON videos(category);
CREATE INDEX IF NOT EXISTS videos_subset_split ON videos(subset, split);

-- a dataset's classes in its own index order (AVSS: label2idx.json; 0 = background)
CREATE TABLE IF NOT EXISTS classes (
    dataset   TEXT NOT NULL,
    idx       INTEGER NOT NULL CHECK (idx >= 0 AND idx < 255),
    name      TEXT NOT NULL,
    PRIMARY KEY (dataset, idx),
    UNIQUE (dataset, name)
) WITHOUT ROWID;

-- masks.kind: 'binary' (foreground = value >= 128) or 'class' (8-bit class indices, 255 = a
-- colour not in the palette); unknown_pixels: how many such pixels the released label had;
-- released: the class-index mask at the released size (released/<uid>/masks/<k>.png).
ALTER TABLE masks ADD COLUMN kind TEXT NOT NULL DEFAULT 'binary' CHECK (kind IN ('binary', 'class'));
ALTER TABLE masks ADD COLUMN unknown_pixels INTEGER NOT NULL DEFAULT 0;
ALTER TABLE masks ADD COLUMN released TEXT;
-- seconds.released: the frame as released, bytes unchanged (released/<uid>/frames/<k>.jpg)
ALTER TABLE seconds ADD COLUMN released TEXT;
-- metrics.protocol: official | per-frame | pooled | avss-official | avss-official-real-frames
ALTER TABLE metrics ADD COLUMN protocol TEXT NOT NULL DEFAULT 'official';

CREATE VIEW IF NOT EXISTS v_videos AS
    SELECT uid, source, category, subset, split, status, error,
           n_seconds AS seconds, fps, width, height, has_audio, avss_set
    FROM videos;

CREATE VIEW IF NOT EXISTS v_seconds AS
    SELECT v.uid AS uid, s.k AS k, s.frame AS frame, s.audio AS audio, m.path AS mask,
           m.kind AS mask_kind
    FROM seconds s
    JOIN videos v ON v.id = s.video_id
    LEFT JOIN masks m ON m.video_id = s.video_id AND m.k = s.k;

-- migration 4: runs.error: why a run failed (status 'failed'), e.g. the step and loss where
-- training diverged (NaN/Inf); NULL otherwise.
ALTER TABLE runs ADD COLUMN error TEXT;

-- migration 5: videos.name: the dataset's own name of a video when its uid differs from it
-- (core/names.h): a name holding '/', '%' or a leading '.' or '-' is stored under its safe
-- form ("a/b" -> uid "a%2Fb"); a name refused outright (a '..' component, an absolute path, a
-- control character, too long) is recorded as a failed video with uid "refused-<hash>".
-- NULL when the uid is the name itself.
ALTER TABLE videos ADD COLUMN name TEXT;
DROP VIEW IF EXISTS v_videos;
CREATE VIEW IF NOT EXISTS v_videos AS
    SELECT uid, source, category, subset, split, status, error,
           n_seconds AS seconds, fps, width, height, has_audio, avss_set, name
    FROM videos;

-- migration 6: sessions of data-parallel jobs (dist/ranks.h): the world size, ranks per node,
-- how the ranks communicate ('none' alone, 'mpi' MPI_Allreduce, 'nccl' on GPU ranks) and every
-- rank's device ("cuda:0, cuda:1, ..."; NULL in sessions before this migration).
ALTER TABLE sessions ADD COLUMN world_size INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN ranks_per_node INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN comm TEXT NOT NULL DEFAULT 'none';
ALTER TABLE sessions ADD COLUMN devices TEXT;
