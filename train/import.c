/* train/import.c: a run from weights trained elsewhere (e.g. an official C3N checkpoint
 * converted with tools/convert_checkpoint.py), so avs-predict and avs-eval can evaluate it
 * like any run (see train.h avs_train_import). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "core/safetensors.h"
#include "core/hash.h"
#include "train/ckpt.h"
#include "train/runs.h"

/* Head tensors by name ("module." stripped); everything else (the backbones' tensors of a full
 * checkpoint) is counted in *ignored. Every head tensor must be there. */
static int load_head(struct avs_c3n_head *h, const char *path, int *ignored, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = avs_st_open(path, &f, err) ? -1 : avs_c3n_head_load_from(h, f, NULL, NULL, ignored, err);
    avs_st_close(&f);
    if (rc)
        avs_err_wrap(err, "importing (official checkpoints: --width 256, the switches that made "
                     "them -- AF means tpavi_1..4 -- and a feature set made with the same backbone)");
    return rc;
}

/* The run config with an "imported" entry (file name and murmur3 hash). */
static char *import_config(const struct avs_train_opts *o, const struct avs_tset *t,
                           const char *path, int ignored, struct avs_err *err)
{
    char hex[33];
    if (avs_hash_file(path, hex, err))
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
    if (!o->run || !*o->run) {
        avs_err_set(err, "--run NAME is required (a plain name)");
        goto out;
    }
    if (avs_name_check(o->run, "--run", err))
        goto out;
    if (avs_db_open(dbp, &db, err))
        goto out;
    int found = avs_run_find(db, o->run, &id, NULL, NULL, err);
    if (found <= 0) {
        if (found == 0)
            avs_err_set(err, "run \"%s\" exists: import under another --run name", o->run);
        goto out;
    }
    int K = 1;
    if (avs_tset_open_cache(&t, db, o->root, o->features, err) ||
        avs_feat_c3im_check(t.set_name, t.set_config, !!(o->given & AVS_TRAIN_GIVEN_ALPHA),
                            o->alpha, !!(o->given & AVS_TRAIN_GIVEN_BETA), o->beta,
                            "avs-train --import", err) ||
        (!strcmp(o->subset, "avss") && avs_tset_avss_classes(db, &K, err)))
        goto out;
    avs_tset_set_subset(&t, o->subset, K);
    struct avs_c3n_cfg cfg;
    avs_tset_cfg(&t, o->width, &cfg);
    cfg.avsbench = o->avsbench;
    avs_c3n_init(&m, &cfg, &o->sw, 1);
    if (load_head(&m.head, weights, &ignored, err) ||
        !(config = import_config(o, &t, weights, ignored, err)))
        goto out;
    dir = avs_run_dir(o->root, o->run);
    best = avs_fs_join(dir, "best.safetensors");
    if (avs_run_check_file(o->root, o->run, "best.safetensors", err) ||
        avs_ckpt_save(best, &m.head, config, NULL, err) ||
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
