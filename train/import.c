/* train/import.c: a run from weights trained elsewhere (e.g. an official C3N checkpoint
 * converted with tools/convert_checkpoint.py), so avs-predict and avs-eval can evaluate it
 * like any run (see train.h avs_train_import). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "ingest/store.h"
#include "train/ckpt.h"
#include "train/runs.h"

/* Head tensors by name ("module." stripped); everything else (the backbones' tensors of a full
 * checkpoint) is counted in *ignored. Every head tensor must be there. */
static int load_head(struct avs_c3n_head *h, const char *path, int *ignored, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    char *seen = avs_calloc((size_t)(h->np + h->nb + 1), 1);
    int rc = -1;
    *ignored = 0;
    if (avs_st_open(path, &f, err))
        goto out;
    for (int i = 0; i < f->n; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        const char *n = strncmp(t->name, "module.", 7) ? t->name : t->name + 7;
        struct avs_tensor_set *set = &h->params;
        int k = avs_tensor_set_find(set, n), off = 0;
        if (k < 0)
            set = &h->bufs, k = avs_tensor_set_find(set, n), off = h->np;
        if (k < 0) {
            if (strstr(n, "tpavi_") == n && strstr(n, ".W_z.1.num_batches_tracked") &&
                t->dtype == AVS_ST_I64 && t->numel == 1 && n[6] >= '1' && n[6] <= '4') {
                int64_t v;
                memcpy(&v, t->data, 8);
                h->bn_batches[n[6] - '1'] = (long)v;
            } else
                (*ignored)++;
            continue;
        }
        struct avs_tensor *d = &set->t[k];
        int sh[AVS_ST_MAXDIM];
        for (int j = 0; j < t->ndim; j++)
            sh[j] = (int)t->shape[j];
        if (!avs_tensor_same_shape(t->ndim, sh, d->ndim, d->shape)) {
            char a[96], b[96];
            avs_err_set(err, "%s: \"%s\" is %s, the model for this feature set and --width needs %s "
                        "(official checkpoints: --width 256 and a set made with the same "
                        "backbone)", path, t->name, avs_tensor_shape_str(t->ndim, sh, a, sizeof a),
                        avs_tensor_shape_str(d->ndim, d->shape, b, sizeof b));
            goto out;
        }
        if (avs_st_read_f32(t, d->data, avs_tensor_numel(d), err))
            goto out;
        seen[off + k] = 1;
    }
    for (int i = 0; i < h->np + h->nb; i++)
        if (!seen[i]) {
            avs_err_set(err, "%s: no tensor \"%s\" (the switches decide which TPAVI stages exist: "
                        "AF needs tpavi_1..4, without AF there are none)", path,
                        i < h->np ? h->pspec[i].name : h->bspec[i - h->np].name);
            goto out;
        }
    rc = 0;
out:
    free(seen);
    avs_st_close(&f);
    return rc;
}

/* The run config with an "imported" entry (file name and murmur3 hash). */
static char *import_config(const struct avs_train_opts *o, const struct avs_tset *t,
                           const char *path, int ignored, struct avs_err *err)
{
    char hex[33];
    if (avs_store_hash_file(path, hex, err))
        return NULL;
    char *base = avs_run_config(o, t);
    cJSON *j = cJSON_Parse(base);
    free(base);
    cJSON_ReplaceItemInObject(j, "mode", cJSON_CreateString("imported"));
    static const char *training_only[] = {"epochs", "batch", "lr", "lr_schedule", "seed", "loss",
                                          "optimizer", "augmentation"};
    for (size_t i = 0; i < sizeof training_only / sizeof *training_only; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(j, training_only[i]);
    cJSON *im = cJSON_AddObjectToObject(j, "imported");
    const char *b = strrchr(path, '/');
    cJSON_AddStringToObject(im, "file", b ? b + 1 : path);
    cJSON_AddStringToObject(im, "hash", hex);
    cJSON_AddNumberToObject(im, "ignored_tensors", ignored);
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return txt;
}

int avs_train_import(const struct avs_train_opts *o, const char *weights, struct avs_err *err)
{
    char *dbp = o->db_path ? avs_strdup(o->db_path) : avs_db_path_for_root(o->root);
    char *dir = NULL, *best = NULL, *config = NULL;
    sqlite3 *db = NULL;
    struct avs_tset t;
    memset(&t, 0, sizeof t);
    struct avs_c3n m;
    memset(&m, 0, sizeof m);
    int64_t id;
    int rc = -1, ignored = 0;
    if (!o->run || !*o->run || strchr(o->run, '/') || o->run[0] == '.') {
        avs_err_set(err, "--run NAME is required (a plain name)");
        goto out;
    }
    if (avs_db_open(dbp, &db, err))
        goto out;
    int found = avs_run_find(db, o->run, &id, NULL, NULL, err);
    if (found <= 0) {
        if (found == 0)
            avs_err_set(err, "run \"%s\" exists: import under another --run name", o->run);
        goto out;
    }
    if (avs_tset_open_cache(&t, db, o->root, o->features, err))
        goto out;
    struct avs_c3n_cfg cfg;
    avs_tset_cfg(&t, o->width, &cfg);
    avs_c3n_init(&m, &cfg, &o->sw, 1);
    if (load_head(&m.head, weights, &ignored, err) ||
        !(config = import_config(o, &t, weights, ignored, err)))
        goto out;
    dir = avs_run_dir(o->root, o->run);
    best = avs_fs_join(dir, "best.safetensors");
    if (avs_fs_mkdirs(dir, err) || avs_ckpt_save(best, &m.head, config, NULL, err) ||
        avs_run_insert(db, o->run, config, &id, err) || avs_run_set_status(db, id, "imported", err))
        goto out;
    if (o->verbose)
        printf("imported %s as run %s (%d tensors of other parts ignored): %s\n", weights, o->run,
               ignored, best);
    rc = 0;
out:
    if (m.head.np)
        avs_c3n_free(&m);
    avs_tset_free(&t);
    avs_db_close(&db);
    free(dbp), free(dir), free(best), free(config);
    return rc;
}
