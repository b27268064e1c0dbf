/* test_synth_ingest: end to end, avs-synth -> avs-ingest --avsbench, on the fixture media
 * (solid red / blue / green objects with 500 / 1200 / 3000 Hz tones):
 *   - every video is ingested (ok, audio, 5 seconds, its frame rate) with its CSV category;
 *   - every gt mask round-trips into the store unchanged (foreground = value >= 128);
 *   - mask/frame alignment: in the ingested frame k, the pixels having the colour of the
 *     objects heard in second k are the mask's pixels (IoU > 0.85; silent objects have other
 *     colours, so a mask that followed sight rather than sound would fail);
 *   - MS3 switches sound: in each ingested audio second the tones of the heard objects are
 *     much stronger than those of the silent ones.
 * Needs $AVS_BIN/avs-synth and $AVS_BIN/avs-ingest (SKIP without avs-ingest). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "core/wav.h"

static const struct { const char *name; int rgb[3]; double freq; } OBJ[3] = {
    {"red_disc", {220, 30, 30}, 500}, {"blue_square", {30, 40, 220}, 1200},
    {"green_tri", {30, 200, 40}, 3000}};

static double min_iou = 1, min_ratio = 1e30; /* reported at the end: the margins */

static int run(const char *cmd)
{
    printf("+ %s\n", cmd);
    fflush(stdout);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Lines of a CSV file as fields (no quoting needed for the fixture data). */
struct rows { int n; char ***f; int *nf; };

static void read_rows(const char *path, struct rows *r)
{
    char *data = NULL;
    size_t len = 0;
    struct avs_err e = {{0}};
    memset(r, 0, sizeof(*r));
    if (avs_fs_read_all(path, &data, &len, &e)) { CHECK(0, "%s", e.msg); return; }
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        r->f = realloc(r->f, sizeof(char **) * (size_t)(r->n + 1));
        r->nf = realloc(r->nf, sizeof(int) * (size_t)(r->n + 1));
        char **f = calloc(16, sizeof(char *));
        int n = 0;
        char *p = line;
        for (;;) {
            char *c = strchr(p, ',');
            if (c) *c = 0;
            if (n < 16) f[n++] = strdup(p);
            if (!c) break;
            p = c + 1;
        }
        r->f[r->n] = f;
        r->nf[r->n++] = n;
    }
    free(data);
}

static void free_rows(struct rows *r)
{
    for (int i = 0; i < r->n; i++) {
        for (int j = 0; j < r->nf[i]; j++) free(r->f[i][j]);
        free(r->f[i]);
    }
    free(r->f);
    free(r->nf);
}

static int obj_of(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(OBJ[i].name, name)) return i;
    return -1;
}

/* Bitmask of fixture objects named in "a+b". */
static unsigned heard_set(const char *s)
{
    unsigned set = 0;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
        int o = obj_of(t);
        if (o >= 0) set |= 1u << o;
    }
    return set;
}

/* Which fixture colour a pixel has (-1: none, i.e. background or a blend). */
static int colour_of(const uint8_t *p)
{
    int best = -1;
    double bd = 1e9;
    for (int i = 0; i < 3; i++) {
        double d = 0;
        for (int c = 0; c < 3; c++) d += (p[c] - OBJ[i].rgb[c]) * (double)(p[c] - OBJ[i].rgb[c]);
        if (d < bd) { bd = d; best = i; }
    }
    return bd < 70.0 * 70.0 ? best : -1;
}

static double goertzel(const float *x, int64_t n, double freq, int rate)
{
    double w = 2 * M_PI * freq / rate, cw = 2 * cos(w), s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = x[i] + cw * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    return (s1 * s1 + s2 * s2 - cw * s1 * s2) / ((double)n * n);
}

static void check_second(const char *store, const char *uid, int k, const char *frame,
                         const char *mask, const char *audio, unsigned heard, int ms3)
{
    struct avs_err e = {{0}};
    struct avs_image f = {0}, m = {0};
    char *fp = avs_fs_join(store, frame), *mp = avs_fs_join(store, mask);
    if (avs_png_read(fp, &f, NULL, &e) || avs_png_read(mp, &m, NULL, &e) || f.w != m.w ||
        f.h != m.h || f.c != 3 || m.c != 1) {
        CHECK(0, "%s %d: frame/mask unreadable or sizes differ: %s", uid, k, e.msg);
    } else {
        int inter = 0, uni = 0;
        for (int i = 0; i < f.w * f.h; i++) {
            int c = colour_of(f.data + 3 * i);
            int a = c >= 0 && (heard >> c & 1), b = m.data[i] >= 128;
            inter += a && b;
            uni += a || b;
        }
        double iou = uni ? (double)inter / uni : 0;
        min_iou = fmin(min_iou, iou);
        CHECK(iou > 0.85, "%s second %d: heard-colour pixels vs mask IoU %.3f", uid, k, iou);
    }
    if (ms3 && audio) {
        char *ap = avs_fs_join(store, audio);
        float *x = NULL;
        int64_t n = 0;
        int rate = 0;
        if (avs_wav_read_float(ap, &x, &n, &rate, &e)) {
            CHECK(0, "%s", e.msg);
        } else {
            double on = 1e9, off = 0;
            for (int o = 0; o < 3; o++) {
                double p = goertzel(x, n, OBJ[o].freq, rate);
                if (heard >> o & 1) on = fmin(on, p);
                else off = fmax(off, p);
            }
            min_ratio = fmin(min_ratio, on / (off + 1e-30));
            CHECK(on > 20 * off, "%s second %d: heard tone power %.3g vs silent %.3g", uid, k, on, off);
        }
        free(x);
        free(ap);
    }
    avs_image_free(&f);
    avs_image_free(&m);
    free(fp);
    free(mp);
}

/* Every gt mask of the subset's CSV equals the store's mask; returns masks compared. */
static int check_masks(sqlite3 *db, const char *store, const char *dir, const struct rows *meta,
                       int ms3)
{
    int compared = 0;
    for (int i = 1; i < meta->n; i++) {
        const char *uid = meta->f[i][0], *cat = meta->f[i][1], *split = meta->f[i][2];
        for (int k = 1; k <= 5; k++) {
            char *gt = ms3 ? avs_sprintf("%s/gt_masks/%s/%s/%s_%d.png", dir, split, uid, uid, k)
                           : avs_sprintf("%s/gt_masks/%s/%s/%s/%s_%d.png", dir, split, cat, uid, uid, k);
            if (!avs_fs_exists(gt)) { free(gt); continue; }
            sqlite3_stmt *st = NULL;
            struct avs_err e = {{0}};
            avs_db_prepare(db, "SELECT mask FROM v_seconds WHERE uid = ?1 AND k = ?2", &st, &e);
            sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 2, k);
            const unsigned char *p = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
            CHECK(p != NULL, "%s k=%d: gt mask %s not in the store", uid, k, gt);
            if (p) {
                char *sp = avs_fs_join(store, (const char *)p);
                struct avs_image a = {0}, b = {0};
                int ok = avs_png_read(gt, &a, NULL, &e) == 0 && avs_png_read(sp, &b, NULL, &e) == 0 &&
                         a.w == b.w && a.h == b.h && a.c == 1 && b.c == 1;
                int diff = 0;
                for (int j = 0; ok && j < a.w * a.h; j++) diff += (a.data[j] >= 128) != (b.data[j] >= 128);
                CHECK(ok && diff == 0, "%s k=%d: store mask differs from %s (%d px) %s", uid, k, gt, diff, e.msg);
                compared++;
                avs_image_free(&a);
                avs_image_free(&b);
                free(sp);
            }
            sqlite3_finalize(st);
            free(gt);
        }
    }
    return compared;
}

static void check_subset(sqlite3 *db, const char *store, const char *dir, int ms3)
{
    struct rows meta, secs;
    char *mp = avs_sprintf("%s/%s_meta_data.csv", dir, ms3 ? "ms3" : "s4");
    char *sp = avs_sprintf("%s/%s_synth_seconds.csv", dir, ms3 ? "ms3" : "s4");
    read_rows(mp, &meta);
    read_rows(sp, &secs);
    CHECK(meta.n == 4, "%s: 3 clips", mp);
    for (int i = 1; i < meta.n; i++) {
        sqlite3_stmt *st = NULL;
        struct avs_err e = {{0}};
        avs_db_prepare(db, "SELECT category, subset, split, status, seconds, fps, has_audio "
                           "FROM v_videos WHERE uid = ?1", &st, &e);
        sqlite3_bind_text(st, 1, meta.f[i][0], -1, SQLITE_STATIC);
        int row = sqlite3_step(st) == SQLITE_ROW;
        CHECK(row, "%s not ingested", meta.f[i][0]);
        if (row) {
            CHECK(!strcmp((const char *)sqlite3_column_text(st, 0), meta.f[i][1]), "category");
            CHECK(!strcmp((const char *)sqlite3_column_text(st, 1), ms3 ? "ms3" : "s4"), "subset");
            CHECK(!strcmp((const char *)sqlite3_column_text(st, 2), meta.f[i][2]), "split");
            CHECK(!strcmp((const char *)sqlite3_column_text(st, 3), "ok"), "status ok");
            CHECK(sqlite3_column_int(st, 4) == 5, "5 seconds, got %d", sqlite3_column_int(st, 4));
            CHECK(fabs(sqlite3_column_double(st, 5) - atof(meta.f[i][3])) < 1e-6, "fps");
            CHECK(sqlite3_column_int(st, 6) == 1, "has audio");
        }
        sqlite3_finalize(st);
    }
    int masks = check_masks(db, store, dir, &meta, ms3);
    /* S4: 1 train (1 mask) + val + test (5 each) = 11; MS3: 15. */
    CHECK(masks == (ms3 ? 15 : 11), "%d masks compared", masks);
    int seconds_checked = 0;
    for (int i = 1; i < secs.n; i++) {
        const char *uid = secs.f[i][0];
        int k = atoi(secs.f[i][1]);
        unsigned heard = heard_set(secs.nf[i] > 3 ? secs.f[i][3] : "");
        sqlite3_stmt *st = NULL;
        struct avs_err e = {{0}};
        avs_db_prepare(db, "SELECT frame, mask, audio FROM v_seconds WHERE uid = ?1 AND k = ?2",
                       &st, &e);
        sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, k);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 1)) {
            check_second(store, uid, k, (const char *)sqlite3_column_text(st, 0),
                         (const char *)sqlite3_column_text(st, 1),
                         (const char *)sqlite3_column_text(st, 2), heard, ms3);
            seconds_checked++;
        }
        sqlite3_finalize(st);
    }
    CHECK(seconds_checked == masks, "aligned seconds %d", seconds_checked);
    free_rows(&meta);
    free_rows(&secs);
    free(mp);
    free(sp);
}

int main(void)
{
    const char *bin = getenv("AVS_BIN"), *tmp = check_tmpdir();
    if (!bin) SKIP("AVS_BIN not set (run through tests/run.sh)");
    char *ingest = avs_fs_join(bin, "avs-ingest"), *synth = avs_fs_join(bin, "avs-synth");
    if (!avs_fs_exists(ingest)) SKIP("%s not built yet: the round trip needs avs-ingest", ingest);
    if (!avs_fs_exists(synth)) SKIP("%s not built", synth);
    const char *media = "tests/fixtures/synth/media";
    char *cmd = avs_sprintf("%s --media %s --out %s/s4 --subset s4 --videos 3 --seed 11 -j 2 -q && "
                            "%s --media %s --out %s/ms3 --subset ms3 --videos 3 --seed 12 -j 2 -q",
                            synth, media, tmp, synth, media, tmp);
    CHECK(run(cmd) == 0, "avs-synth");
    free(cmd);
    cmd = avs_sprintf("%s --root %s/store --avsbench %s/s4 --avsbench %s/ms3 -q", ingest, tmp, tmp, tmp);
    CHECK(run(cmd) == 0, "avs-ingest exit 0");
    free(cmd);
    char *store = avs_fs_join(tmp, "store"), *dbp = avs_fs_join(store, "avs.db");
    sqlite3 *db = NULL;
    struct avs_err e = {{0}};
    if (avs_db_open_readonly(dbp, &db, &e)) {
        CHECK(0, "%s", e.msg);
    } else {
        CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM v_videos", -1) == 6, "6 videos");
        char *d4 = avs_fs_join(tmp, "s4"), *d3 = avs_fs_join(tmp, "ms3");
        check_subset(db, store, d4, 0);
        check_subset(db, store, d3, 1);
        free(d4);
        free(d3);
        avs_db_close(&db);
    }
    free(store);
    free(dbp);
    free(ingest);
    free(synth);
    printf("margins: worst mask/colour IoU %.4f (need > 0.85), worst heard/silent tone power "
           "ratio %.3g (need > 20)\n", min_iou, min_ratio);
    return check_summary("test_synth_ingest");
}
