/* train/runs.c: see runs.h. */
#include "train/runs.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "train/ckpt.h"

char *avs_run_config(const struct avs_train_opts *o, const struct avs_tset *t)
{
    char sw[32];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->avsbench ? "TPAVI" : "C3N");
    cJSON_AddStringToObject(j, "subset", o->subset);
    cJSON_AddStringToObject(j, "features", t->set_name);
    cJSON *fc = cJSON_Parse(t->set_config);
    if (fc)
        cJSON_AddItemToObject(j, "feature_config", fc);
    cJSON_AddBoolToObject(j, "random_init_encoders", t->random_init);
    cJSON_AddStringToObject(j, "backbone", t->visual);
    double alpha, beta; /* the set's C3IM exponents (its config was read before: it parses) */
    struct avs_err e;
    if (avs_feat_c3im_config(t->set_name, t->set_config, &alpha, &beta, &e) == 0) {
        cJSON *c = cJSON_AddObjectToObject(j, "c3im");
        cJSON_AddNumberToObject(c, "alpha", alpha);
        cJSON_AddNumberToObject(c, "beta", beta);
    }
    cJSON_AddStringToObject(j, "mode", o->mode);
    cJSON_AddStringToObject(j, "switches", avs_switches_text(&o->sw, sw, sizeof sw));
    cJSON_AddNumberToObject(j, "epochs", o->epochs);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    char lr[32];
    snprintf(lr, sizeof lr, "%.17g", o->lr);
    cJSON_AddRawToObject(j, "lr", lr);
    cJSON_AddStringToObject(j, "lr_schedule", !strcmp(o->subset, "s4")
                                                  ? "linear lr -> lr/10 over epochs-5, then constant"
                                                  : "constant");
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "width", o->width);
    cJSON_AddNumberToObject(j, "T", t->T);
    if (t->avss)
        cJSON_AddNumberToObject(j, "classes", t->K);
    cJSON *sz = cJSON_AddArrayToObject(j, "image_size");
    cJSON_AddItemToArray(sz, cJSON_CreateNumber(t->H));
    cJSON_AddItemToArray(sz, cJSON_CreateNumber(t->W));
    char avm[160];
    snprintf(avm, sizeof avm, "bce on every frame + %.10g x audio-visual matching (KL of the "
             "masked TPAVI stage maps to the audio, stages 1-4, every frame)", o->av_match);
    if (o->avsbench) /* AVSBench's lambda_1; runs recorded before it existed trained without */
        cJSON_AddNumberToObject(j, "av_match", o->av_match);
    cJSON_AddStringToObject(j, "loss", t->avss ? "pixel-wise cross-entropy over the classes on the "
                                                 "labelled frames (unknown = background; padded "
                                                 "frames excluded)"
                                       : o->avsbench ? (!strcmp(o->subset, "s4") ? "bce on frame 1"
                                                        : o->av_match > 0 ? avm : "bce on every frame")
                                       : !strcmp(o->subset, "s4") ? "bce+dice on frame 1"
                                                                  : "bce+dice on every frame");
    cJSON_AddStringToObject(j, "optimizer", "adam(0.9, 0.999, 1e-8)");
    cJSON_AddStringToObject(j, "augmentation", !strcmp(o->mode, "frozen")
                                                   ? "per-video horizontal flip when the cache has flipped copies"
                                                   : "per-video horizontal flip, per-frame colour jitter (0.4, 0.4, 0.4, 0.1)");
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return txt;
}

static const char *jstr(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *j, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A recorded number as the command line would accept it (an integer 0..1e9; the seed any
 * 64-bit unsigned; lr finite and > 0): a config edited or damaged by hand must not reach the
 * int casts. */
static int recorded_ok(const char *name, double v, struct avs_err *err)
{
    int is_lr = !strcmp(name, "lr"), is_seed = !strcmp(name, "seed");
    double hi = is_seed ? 0x1p64 : 1e9;
    if (is_lr ? isfinite(v) && v > 0
              : v >= 0 && (is_seed ? v < hi : v <= hi) && v == floor(v))
        return 0;
    return avs_err_set(err, "the run's recorded config has %s = %.10g, which no command line "
                       "gives (%s): start a new --run", name, v,
                       is_lr ? "a number > 0" : is_seed ? "an unsigned 64-bit integer"
                                                        : "an integer 0..1000000000");
}

static int differs(const char *opt, const char *given, const char *rec, struct avs_err *err)
{
    return avs_err_set(err, "--%s %s differs from the run's recorded %s: a resumed run keeps its "
                       "configuration (leave the option out, or start a new --run)", opt, given, rec);
}

int avs_run_config_apply(const char *config, const struct avs_train_opts *g,
                         struct avs_train_opts *o, struct avs_err *err)
{
    static char subset[8], features[128], mode[16];
    cJSON *j = cJSON_Parse(config);
    if (!j)
        return avs_err_set(err, "the run's recorded config is not JSON: start a new --run");
    *o = *g;
    int rc = -1;
    char buf[64], buf2[64];
    const char *s;
    snprintf(subset, sizeof subset, "%s", (s = jstr(j, "subset")) ? s : "s4");
    snprintf(features, sizeof features, "%s", (s = jstr(j, "features")) ? s : "");
    snprintf(mode, sizeof mode, "%s", (s = jstr(j, "mode")) ? s : "frozen");
    if ((g->given & AVS_TRAIN_GIVEN_SUBSET) && strcmp(g->subset, subset)) {
        differs("subset", g->subset, subset, err);
        goto out;
    }
    if ((g->given & AVS_TRAIN_GIVEN_FEATURES) && strcmp(g->features, features)) {
        differs("features", g->features, features, err);
        goto out;
    }
    if ((g->given & AVS_TRAIN_GIVEN_MODE) && strcmp(g->mode, mode)) {
        differs("mode", g->mode, mode, err);
        goto out;
    }
    o->subset = subset, o->features = features, o->mode = mode;
    struct avs_switches sw;
    if (avs_switches_parse(&sw, (s = jstr(j, "switches")) ? s : "AF,CC")) {
        avs_err_set(err, "the run's recorded switches \"%s\" do not parse", s ? s : "");
        goto out;
    }
    if ((g->given & AVS_TRAIN_GIVEN_SWITCHES) && memcmp(&sw, &g->sw, sizeof sw)) {
        differs("switches", avs_switches_text(&g->sw, buf, sizeof buf),
                avs_switches_text(&sw, buf2, sizeof buf2), err);
        goto out;
    }
    o->sw = sw;
    int avsbench = (s = jstr(j, "model")) && !strcmp(s, "TPAVI");
    if ((g->given & AVS_TRAIN_GIVEN_MODEL) && g->avsbench != avsbench) {
        differs("model", g->avsbench ? "tpavi" : "c3n", avsbench ? "tpavi" : "c3n", err);
        goto out;
    }
    o->avsbench = avsbench;
    double avm = jnum(j, "av_match", 0); /* absent: recorded before the option, no matching loss */
    if (!(avm >= 0 && isfinite(avm))) {
        avs_err_set(err, "the run's recorded config has av_match = %.10g, which no command line "
                    "gives (a number >= 0): start a new --run", avm);
        goto out;
    }
    if ((g->given & AVS_TRAIN_GIVEN_AV_MATCH) && g->av_match != avm) {
        snprintf(buf, sizeof buf, "%.10g", g->av_match);
        snprintf(buf2, sizeof buf2, "%.10g", avm);
        differs("av-match", buf, buf2, err);
        goto out;
    }
    o->av_match = avm;
    struct { const char *name; unsigned bit; double given, rec; } num[] = {
        {"epochs", AVS_TRAIN_GIVEN_EPOCHS, g->epochs, jnum(j, "epochs", 15)},
        {"batch", AVS_TRAIN_GIVEN_BATCH, g->batch, jnum(j, "batch", 4)},
        {"lr", AVS_TRAIN_GIVEN_LR, g->lr, jnum(j, "lr", 1e-4)},
        {"seed", AVS_TRAIN_GIVEN_SEED, (double)g->seed, jnum(j, "seed", 1)},
        {"width", AVS_TRAIN_GIVEN_WIDTH, g->width, jnum(j, "width", 256)},
    };
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
        if (recorded_ok(num[i].name, num[i].rec, err))
            goto out;
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
        if ((g->given & num[i].bit) && num[i].given != num[i].rec) {
            snprintf(buf, sizeof buf, "%.10g", num[i].given);
            snprintf(buf2, sizeof buf2, "%.10g", num[i].rec);
            differs(num[i].name, buf, buf2, err);
            goto out;
        }
    o->epochs = (int)num[0].rec, o->batch = (int)num[1].rec, o->lr = num[2].rec;
    o->seed = (uint64_t)num[3].rec, o->width = (int)num[4].rec;
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

int avs_run_find(sqlite3 *db, const char *name, int64_t *id, char **config, char **status,
                 struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT id, config, status FROM runs WHERE name = ?1", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = 1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (config)
            *config = avs_strdup((const char *)sqlite3_column_text(st, 1));
        if (status)
            *status = avs_strdup((const char *)sqlite3_column_text(st, 2));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int avs_run_insert(sqlite3 *db, const char *name, const char *config, int64_t *id,
                   struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "INSERT INTO runs (name, config, code_version) VALUES (?1, ?2, ?3)",
                       &st, err))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, config, -1, SQLITE_TRANSIENT);
    char *ver = avs_sprintf("avs %s (%s)", AVS_VERSION, avs_code_rev());
    sqlite3_bind_text(st, 3, ver, -1, SQLITE_TRANSIENT);
    free(ver);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(db, err, "recording the run");
    *id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    return rc;
}

static int set_status(sqlite3 *db, int64_t id, const char *status, const char *error,
                      struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "UPDATE runs SET status = ?2, error = ?3 WHERE id = ?1", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    if (error)
        sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(db, err, "updating runs");
    sqlite3_finalize(st);
    return rc;
}

int avs_run_set_status(sqlite3 *db, int64_t id, const char *status, struct avs_err *err)
{
    return set_status(db, id, status, NULL, err);
}

int avs_run_set_failed(sqlite3 *db, int64_t id, const char *reason, struct avs_err *err)
{
    return set_status(db, id, "failed", reason, err);
}

int avs_run_record_epoch(sqlite3 *db, int64_t id, int epoch, double loss, double miou, double f,
                         double seconds, double fps, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "INSERT OR REPLACE INTO run_epochs (run_id, epoch, train_loss, val_miou, "
                           "val_fscore, seconds, frames_per_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                       &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, epoch);
    sqlite3_bind_double(st, 3, loss);
    if (miou >= 0) {
        sqlite3_bind_double(st, 4, miou);
        sqlite3_bind_double(st, 5, f);
    }
    sqlite3_bind_double(st, 6, seconds);
    sqlite3_bind_double(st, 7, fps);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(db, err, "recording the epoch (run_epochs)");
    sqlite3_finalize(st);
    return rc;
}

int avs_run_check_features(const char *config, const struct avs_tset *t, const char *what,
                           struct avs_err *err)
{
    cJSON *j = cJSON_Parse(config), *now = cJSON_Parse(t->set_config);
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(j, "feature_config");
    int rc = 0;
    if (rec && now && !cJSON_Compare(rec, now, 1)) {
        char *a = cJSON_PrintUnformatted(rec);
        rc = avs_err_set(err, "%s was trained on feature set \"%s\" made by other encoders than the "
                         "set of that name now (then: %s; now: %s): rebuild the old set under its "
                         "own name, or start a new --run on this one", what, t->set_name, a,
                         t->set_config);
        free(a);
    }
    cJSON_Delete(j);
    cJSON_Delete(now);
    return rc;
}

char *avs_run_dir(const char *root, const char *name)
{
    char *r = avs_fs_join(root, "runs"), *d = avs_fs_join(r, name);
    free(r);
    return d;
}

int avs_run_check_file(const char *root, const char *run, const char *file, struct avs_err *err)
{
    if (avs_name_check(run, "run name", err))
        return -1;
    char *rel = avs_sprintf("runs/%s/%s", run, file);
    int rc = avs_fs_check_under(root, rel, err);
    free(rel);
    return rc;
}

int avs_run_model_open(struct avs_run_model *rm, sqlite3 *db, const char *root, const char *run,
                       const char *which, struct avs_err *err)
{
    memset(rm, 0, sizeof *rm);
    if (avs_name_check(run, "run name", err) || avs_name_check(which, "checkpoint name", err))
        return -1;
    char *dir = avs_run_dir(root, run), *file = avs_sprintf("%s.safetensors", which);
    char *path = avs_fs_join(dir, file), *cfgtxt = NULL;
    cJSON *j = NULL;
    int rc = -1;
    if (!avs_fs_exists(path)) {
        avs_err_set(err, "%s: no such checkpoint: train the run first (avs-train --run %s), or "
                    "use --checkpoint last", path, run);
        goto out;
    }
    if (avs_ckpt_config(path, &cfgtxt, err) || !(j = cJSON_Parse(cfgtxt))) {
        if (j == NULL && cfgtxt)
            avs_err_set(err, "%s: the recorded config is not JSON", path);
        goto out;
    }
    const char *feat = jstr(j, "features"), *swt = jstr(j, "switches"), *sub = jstr(j, "subset");
    struct avs_switches sw;
    if (!feat || !swt || avs_switches_parse(&sw, swt)) {
        avs_err_set(err, "%s: the recorded config lacks features/switches", path);
        goto out;
    }
    snprintf(rm->subset, sizeof rm->subset, "%s", sub ? sub : "other");
    if (avs_tset_open_cache(&rm->set, db, root, feat, err) ||
        avs_run_check_features(cfgtxt, &rm->set, path, err))
        goto out;
    double classes = jnum(j, "classes", 1), width = jnum(j, "width", 256);
    if (!(classes >= 1 && classes <= 255 && classes == floor(classes) && width >= 2 &&
          width <= 1e9 && width == floor(width))) {
        avs_err_set(err, "%s: the recorded config has classes %.10g, width %.10g (need integers "
                    "1..255 and 2..1e9): not a checkpoint avs-train wrote", path, classes, width);
        goto out;
    }
    avs_tset_set_subset(&rm->set, rm->subset, (int)classes);
    struct avs_c3n_cfg cfg;
    avs_tset_cfg(&rm->set, (int)width, &cfg);
    const char *mdl = jstr(j, "model");
    cfg.avsbench = mdl && !strcmp(mdl, "TPAVI");
    avs_c3n_init(&rm->model, &cfg, &sw, 1);
    if (avs_ckpt_load(path, &rm->model.head, NULL, NULL, err))
        goto out;
    rm->config = cfgtxt;
    cfgtxt = NULL;
    rc = 0;
out:
    cJSON_Delete(j);
    free(dir), free(file), free(path), free(cfgtxt);
    if (rc)
        avs_run_model_close(rm);
    return rc;
}

void avs_run_model_close(struct avs_run_model *rm)
{
    if (rm->model.head.np)
        avs_c3n_free(&rm->model);
    avs_tset_free(&rm->set);
    free(rm->config);
    memset(rm, 0, sizeof *rm);
}
