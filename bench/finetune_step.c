/* bench/finetune_step.c: one `--mode finetune` training step (bench/finetune.sh builds and runs
 * it): PVTv2-b0 (random init) + the official-width C3N head (AF,CC), 1 video x 5 frames of
 * SIDE x SIDE, on a one-video store made in a scratch folder. Prints the seconds of the three
 * parts, median over the steps after one warm-up:
 *   batch  PNG frames + jitter, backbone forward (logits), C3IM, Grad-CAM pass (avs_finetune_batch)
 *   head   CCAM + head forward, BCE+Dice, backward to dstage, head Adam (avs_c3n_*)
 *   back   backbone forward + full backward from dstage, backbone Adam (avs_finetune_step)
 *   usage: finetune_step SCRATCH SIDE STEPS THREADS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "features/cache.h"
#include "backend/ops.h"
#include "model/c3n.h"
#include "train/finetune.h"

static void die(const char *what, const struct avs_err *err)
{
    fprintf(stderr, "finetune_step: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    struct avs_err err;
    if (avs_db_exec(db, sql, &err))
        die(sql, &err);
}

static void make_store(const char *root, int side, const struct avs_pvt_cfg *c, sqlite3 **db)
{
    struct avs_err err;
    char *p = avs_fs_join(root, "features"), *q;
    avs_fs_mkdirs(p, &err);
    free(p);
    p = avs_fs_join(root, "frames/v0"), avs_fs_mkdirs(p, &err), free(p);
    p = avs_fs_join(root, "masks/v0"), avs_fs_mkdirs(p, &err), free(p);
    p = avs_fs_join(root, "avs.db");
    if (avs_db_open(p, db, &err))
        die(p, &err);
    free(p);
    struct avs_cache_field f[14];
    memset(f, 0, sizeof f);
    int nf = 0;
    snprintf(f[nf].name, 40, "audio_emb"), f[nf].ndim = 1, f[nf++].shape[0] = 128;
    snprintf(f[nf].name, 40, "audio_logits"), f[nf].ndim = 1, f[nf++].shape[0] = 527;
    for (int s = 0; s < 4; s++) {
        snprintf(f[nf].name, 40, "stage%d", s + 1), f[nf].ndim = 3, f[nf].shape[0] = c->dims[s];
        f[nf].shape[1] = f[nf].shape[2] = avs_pvt_side(side, s), nf++;
    }
    for (int s = 0; s < 8; s++) {
        snprintf(f[nf].name, 40, s < 4 ? "gradcam%d" : "gradcam_v%d", s % 4 + 1);
        f[nf].ndim = 1, f[nf++].shape[0] = c->dims[s % 4];
    }
    p = avs_fs_join(root, "features/b.bin");
    struct avs_cache_writer *w;
    if (avs_cache_open_append(&w, p, f, nf, AVS_CACHE_F32, &err))
        die(p, &err);
    free(p);
    float *buf = calloc((size_t)c->dims[0] * side * side, sizeof(float));
    char row[256];
    snprintf(row, sizeof row, "INSERT INTO feature_sets (id, name, path, config, version, random_init, "
             "status) VALUES (1, 'b', 'features/b.bin', '{}', %d, 1, 'complete')", AVS_CACHE_VERSION);
    exec(*db, row);
    exec(*db, "INSERT INTO videos (id, uid, source, subset, split, status, n_seconds) VALUES "
              "(1, 'v0', '/v0.mp4', 's4', 'train', 'ok', 5)");
    srand(1);
    for (int k = 1; k <= 5; k++) {
        struct avs_image img = {0};
        avs_image_alloc(&img, side, side, 3);
        for (int i = 0; i < side * side * 3; i++)
            img.data[i] = (uint8_t)(rand() & 255);
        char rel[64], sql[256];
        snprintf(rel, sizeof rel, "frames/v0/%d.png", k);
        q = avs_fs_join(root, rel);
        if (avs_png_write(q, &img, 1, &err))
            die(q, &err);
        free(q);
        avs_image_free(&img);
        snprintf(sql, sizeof sql, "INSERT INTO seconds (video_id, k, frame) VALUES (1, %d, '%s')", k, rel);
        exec(*db, sql);
        for (int i = 0; i < 527; i++)
            buf[i] = (float)rand() / RAND_MAX * 4 - 2;
        const float *rec[14];
        for (int i = 0; i < nf; i++)
            rec[i] = buf;
        int64_t off;
        if (avs_cache_append(w, rec, &off, &err))
            die("append", &err);
        snprintf(sql, sizeof sql, "INSERT INTO feature_entries (set_id, video_id, k, flipped, offset) "
                 "VALUES (1, 1, %d, 0, %lld)", k, (long long)off);
        exec(*db, sql);
    }
    struct avs_image m = {0};
    avs_image_alloc(&m, side, side, 1);
    for (int i = 0; i < side * side; i++)
        m.data[i] = (i % side) < side / 2 ? 255 : 0;
    q = avs_fs_join(root, "masks/v0/1.png");
    if (avs_png_write(q, &m, 1, &err))
        die(q, &err);
    free(q);
    avs_image_free(&m);
    exec(*db, "INSERT INTO masks (video_id, k, path) VALUES (1, 1, 'masks/v0/1.png')");
    avs_cache_sync(w, &err);
    avs_cache_close_writer(&w);
    free(buf);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: finetune_step SCRATCH SIDE STEPS THREADS\n");
        return 1;
    }
    avs_ops_tune_process(argv);
    const char *root = argv[1];
    int side = atoi(argv[2]), steps = atoi(argv[3]);
    avs_ops_set_threads(atoi(argv[4]));
    struct avs_err err;
    struct avs_pvt_cfg c;
    avs_pvt_cfg_variant(&c, "b0");
    sqlite3 *db;
    make_store(root, side, &c, &db);
    struct avs_tset t;
    if (avs_tset_open_cache(&t, db, root, "b", &err) ||
        avs_tset_load(&t, db, root, "s4", "train", AVS_TSET_LOSS_FIRST, &err))
        die("set", &err);
    struct avs_pvt pvt;
    avs_pvt_init_random(&pvt, &c, 1);
    float *S = malloc((size_t)1000 * 527 * sizeof(float));
    for (int i = 0; i < 1000 * 527; i++)
        S[i] = (float)rand() / RAND_MAX;
    struct avs_finetune *ft;
    if (avs_finetune_open_pvt(&ft, db, root, &t, &pvt, S, &err))
        die("open", &err);
    struct avs_c3n_cfg cfg;
    avs_tset_cfg(&t, 256, &cfg);
    struct avs_switches sw = {1, 1, 0};
    struct avs_c3n m;
    avs_c3n_init(&m, &cfg, &sw, 1);
    avs_c3n_head_init_random(&m.head, 1);
    struct avs_tbatch b;
    avs_tbatch_init(&b, &t, 1);
    size_t nl = (size_t)m.head.B * t.H * t.W;
    /* the loss's buffers and dstage: device memory, as avs-train has them */
    float *dl = avs_dev_alloc(nl, "dlogits"), *sl = avs_dev_alloc(2 * nl, "loss scratch"),
          *sm = avs_dev_alloc(nl, "sigmoid"), *ds[4];
    for (int s = 0; s < 4; s++)
        ds[s] = avs_dev_alloc((size_t)m.head.B * t.C[s] * t.Hs[s] * t.Ws[s], "dstage");
    double *tb = calloc((size_t)steps + 1, sizeof(double)), *th = calloc((size_t)steps + 1, sizeof(double)),
           *tk = calloc((size_t)steps + 1, sizeof(double));
    int idx[1] = {0}, flip[1] = {1};
    double loss = 0;
    for (int i = 0; i <= steps; i++) {
        double t0 = avs_now();
        if (avs_finetune_batch(ft, &t, idx, flip, (uint64_t)i, 1, 0, &b, &err))
            die("batch", &err);
        double t1 = avs_now();
        avs_c3n_head_zero_grad(&m.head);
        avs_c3n_fwd(&m, (const float *const *)b.stage, (const float *const *)b.gc, b.audio, 1);
        loss = avs_c3n_head_loss(&m.head, b.mask, b.frame_mask, dl, sl, sm);
        for (int s = 0; s < 4; s++)
            avs_ops()->zero(ds[s], (size_t)m.head.B * t.C[s] * t.Hs[s] * t.Ws[s]);
        avs_c3n_bwd(&m, dl, ds);
        avs_c3n_head_adam(&m.head, 1e-4);
        double t2 = avs_now();
        avs_finetune_step(ft, ds, 1e-4);
        double t3 = avs_now();
        tb[i] = t1 - t0, th[i] = t2 - t1, tk[i] = t3 - t2;
    }
    qsort(tb + 1, (size_t)steps, sizeof(double), cmpd);
    qsort(th + 1, (size_t)steps, sizeof(double), cmpd);
    qsort(tk + 1, (size_t)steps, sizeof(double), cmpd);
    int md = 1 + steps / 2;
    printf("side=%d threads=%d steps=%d batch_s=%.3f head_s=%.3f back_s=%.3f step_s=%.3f loss=%.4f\n",
           side, avs_ops_threads(), steps, tb[md], th[md], tk[md], tb[md] + th[md] + tk[md], loss);
    avs_tbatch_free(&b);
    avs_c3n_free(&m);
    avs_finetune_close(&ft);
    avs_tset_free(&t);
    avs_db_close(&db);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&ds[s]);
    avs_dev_free(&dl), avs_dev_free(&sl), avs_dev_free(&sm);
    free(S), free(tb), free(th), free(tk);
    return 0;
}
