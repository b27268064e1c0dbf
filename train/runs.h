/* train/runs.h: a training run's record: the runs row, its config JSON, its folder, and the
 * model it describes (internal to train/ and predict/).
 *
 * runs.config (JSON): subset, features (set name), feature_config (the set's config, so the
 * encoders that made the features are part of the run), backbone, mode, switches, epochs,
 * batch, lr, lr_schedule, seed, width, T, classes (AVSS only: K), image_size [H,W], loss,
 * optimizer, augmentation; model TPAVI also av_match (the matching loss's lambda, absent in
 * runs recorded before it: 0).
 */
#ifndef AVS_TRAIN_RUNS_H
#define AVS_TRAIN_RUNS_H

#include <sqlite3.h>
#include <stdint.h>

#include "model/c3n.h"
#include "train/data.h"
#include "train/train.h"

/* The config JSON of o with the feature set t (malloc'd). */
char *avs_run_config(const struct avs_train_opts *o, const struct avs_tset *t);
/* Options recorded in config (for --resume); every option given on the command line (o->given)
 * must agree, else an error naming the option. Pointers in *out borrow from *json_out. */
int avs_run_config_apply(const char *config, const struct avs_train_opts *given,
                         struct avs_train_opts *out, struct avs_err *err);
/* The runs row of `name`: *id, *config (malloc'd), or 1 if there is none. */
int avs_run_find(sqlite3 *db, const char *name, int64_t *id, char **config, char **status,
                 struct avs_err *err);
int avs_run_insert(sqlite3 *db, const char *name, const char *config, int64_t *id,
                   struct avs_err *err);
/* Clears runs.error. */
int avs_run_set_status(sqlite3 *db, int64_t id, const char *status, struct avs_err *err);
/* status 'failed', runs.error = reason (e.g. where training diverged, with the loss). */
int avs_run_set_failed(sqlite3 *db, int64_t id, const char *reason, struct avs_err *err);
int avs_run_record_epoch(sqlite3 *db, int64_t id, int epoch, double loss, double miou, double f,
                         double seconds, double fps, struct avs_err *err);
/* The feature set's config must equal the one recorded in the run's config (the set may have
 * been deleted and remade under the same name with other encoders); `what` names the run. */
int avs_run_check_features(const char *config, const struct avs_tset *t, const char *what,
                           struct avs_err *err);
/* runs/<name> under root (malloc'd). */
char *avs_run_dir(const char *root, const char *name);
/* Before writing runs/<run>/<file>: the run's folders created and checked to stay inside the
 * store (no symbolic link below root, core/fs.h: avs_fs_check_under). 0 or -1 with err. */
int avs_run_check_file(const char *root, const char *run, const char *file, struct avs_err *err);

/* A trained model from a run's checkpoint (`which` = "best" or "last") or a weights file: the
 * feature set it was trained on (opened), its switches and configuration. */
struct avs_run_model {
    struct avs_tset set;  /* the run's feature set (cache open, no videos loaded) */
    struct avs_c3n model; /* N = 1 video */
    char *config;
    char subset[8];
};
int avs_run_model_open(struct avs_run_model *rm, sqlite3 *db, const char *root, const char *run,
                       const char *which, struct avs_err *err);
void avs_run_model_close(struct avs_run_model *rm);

#endif
