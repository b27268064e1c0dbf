/* features/enc.c: a feature set's encoders rebuilt from its recorded config (avs_feat_enc_open:
 * features/features.h). Apart from features/clip.c, which decodes clips, so that programs that
 * only reopen a set's encoders (avs-train --mode finetune) do not link the decoders. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/hash.h"
#include "features/run.h"

#define RANDOM_PREFIX "random-init "

/* Text of the set's config column (malloc'd). */
static int set_config(sqlite3 *db, const char *set, char **config, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT config FROM feature_sets WHERE name = ?1", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, set, -1, SQLITE_TRANSIENT);
    int rc = -1;
    if (sqlite3_step(st) != SQLITE_ROW || !sqlite3_column_text(st, 0))
        avs_err_set(err, "no feature set \"%s\" in the index %s (`avs-features show` lists them; "
                    "make it with avs-features --set %s)", set, sqlite3_db_filename(db, "main"), set);
    else {
        *config = avs_strdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* "random-init N": 1 with *seed; 0 for anything else. */
static int random_seed(const char *s, uint64_t *seed)
{
    if (!s || strncmp(s, RANDOM_PREFIX, strlen(RANDOM_PREFIX)))
        return 0;
    char *end;
    *seed = strtoull(s + strlen(RANDOM_PREFIX), &end, 10);
    return *end == '\0';
}

/* A random part's seed must agree with the others' (avs-features uses one seed for all). */
static int take_seed(const char *set, uint64_t s, uint64_t *seed, int *have, struct avs_err *err)
{
    if (*have && *seed != s)
        return avs_err_set(err, "feature set \"%s\": its config names two random-init seeds (%llu, "
                           "%llu); avs-features never writes that: remake the set", set,
                           (unsigned long long)*seed, (unsigned long long)s);
    *seed = s, *have = 1;
    return 0;
}

/* One recorded weight file against the one given: *use = the file to load. */
static int check_file(const char *set, const char *what, const char *opt, const char *recorded,
                      const char *hash, const char *given, const char **use, struct avs_err *err)
{
    *use = NULL;
    if (!given)
        return avs_err_set(err, "feature set \"%s\" was made with %s %s: give that file (%s)",
                           set, what, recorded, opt);
    if (!hash)
        return avs_err_set(err, "feature set \"%s\": its config has no hash for %s %s: remake "
                           "the set with avs-features", set, what, recorded);
    char hex[33];
    if (avs_hash_file(given, hex, err))
        return avs_err_wrap(err, "%s (%s)", what, opt);
    if (strcmp(hex, hash))
        return avs_err_set(err, "%s: not the %s feature set \"%s\" was made with (%s, murmur3 %s; "
                           "this file is %s): give that file (%s), or make a feature set with "
                           "this one", given, what, set, recorded, hash, hex, opt);
    *use = given;
    return 0;
}

/* Which files to load and the seed of the random parts, from the config's encoder entries. */
static int resolve_files(const char *set, const cJSON *cfg, const struct avs_enc_files *files,
                         const char **vf, const char **af, const char **hf, uint64_t *seed,
                         int *have_seed, struct avs_err *err)
{
    const cJSON *vis = cJSON_GetObjectItemCaseSensitive(cfg, "visual");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(cfg, "audio");
    const char *vw = jstr(vis, "weights"), *aw = jstr(aud, "weights"), *head = jstr(aud, "head");
    const char *vname = jstr(vis, "name");
    uint64_t s;
    *vf = *af = *hf = NULL;
    if (!vname || !vw || !aw)
        return avs_err_set(err, "feature set \"%s\": config without visual/audio weights entries: "
                           "remake the set with avs-features", set);
    if (random_seed(vw, &s)) {
        if (take_seed(set, s, seed, have_seed, err))
            return -1;
        if (files && files->visual)
            avs_log_warn("feature set \"%s\" has a random-init visual encoder: %s not used", set,
                         files->visual);
    } else {
        char opt[96];
        snprintf(opt, sizeof opt, "--visual %s=FILE", vname);
        if (check_file(set, "visual weights", opt, vw, jstr(vis, "weights_hash"),
                       files ? files->visual : NULL, vf, err))
            return -1;
    }
    if (random_seed(aw, &s)) {
        if (take_seed(set, s, seed, have_seed, err))
            return -1;
        if (files && (files->audio || files->audio_head))
            avs_log_warn("feature set \"%s\" has a random-init audio encoder: %s not used", set,
                         files->audio ? files->audio : files->audio_head);
        return 0;
    }
    char aopt[96];
    snprintf(aopt, sizeof aopt, "--audio %s=FILE", jstr(aud, "name") ? jstr(aud, "name") : "vggish");
    if (check_file(set, "audio weights", aopt, aw, jstr(aud, "weights_hash"),
                   files ? files->audio : NULL, af, err))
        return -1;
    if (head)
        return check_file(set, "AudioSet head", "--audio-head FILE", head, jstr(aud, "head_hash"),
                          files ? files->audio_head : NULL, hf, err);
    if (files && files->audio_head)
        avs_log_warn("feature set \"%s\" took its AudioSet head from the audio weights: %s not used",
                     set, files->audio_head);
    return 0;
}

/* S from the index by the recorded vectors hash, or the random-init seed. */
static int resolve_similarity(struct avs_feat_enc *e, sqlite3 *db, const char *set,
                              const cJSON *cfg, uint64_t seed, int have_seed, struct avs_err *err)
{
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(cfg, "similarity");
    const char *vec = jstr(sim, "vectors"), *hash = jstr(sim, "vectors_hash");
    uint64_t s;
    if (random_seed(vec, &s)) {
        if (take_seed(set, s, &seed, &have_seed, err))
            return -1;
        avs_feat_sim_random(e, s);
        return 0;
    }
    if (!vec || !hash)
        return avs_err_set(err, "feature set \"%s\": config without the similarity's vectors_hash: "
                           "remake the set with avs-features", set);
    int r = 0, c = 0;
    if (avs_labelsim_load(db, hash, &e->S, &r, &c, err))
        return avs_err_wrap(err, "feature set \"%s\" (label similarity from %s)", set, vec);
    if (r != e->V || c != e->A)
        return avs_err_set(err, "feature set \"%s\": the label similarity of %s in the index is "
                           "%d x %d, the encoders give %d x %d: re-store it with avs-features "
                           "--vectors %s", set, vec, r, c, e->V, e->A, vec);
    return 0;
}

static int parse_image(struct avs_feat_enc *e, const char *set, const cJSON *cfg,
                       struct avs_err *err)
{
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(cfg, "image_size");
    const char *pol = jstr(cfg, "logmel_policy");
    int p = pol ? avs_logmel_policy_parse(pol) : -1;
    if (!cJSON_IsArray(sz) || cJSON_GetArraySize(sz) != 2 || p < 0)
        return avs_err_set(err, "feature set \"%s\": config without image_size or logmel_policy: "
                           "remake the set with avs-features", set);
    e->H = cJSON_GetArrayItem(sz, 0)->valueint, e->W = cJSON_GetArrayItem(sz, 1)->valueint;
    if (e->H < 32 || e->W < 32 || e->H % 32 || e->W % 32 || e->H > 4096 || e->W > 4096)
        return avs_err_set(err, "feature set \"%s\": image_size %dx%d is not usable (multiples of "
                           "32 up to 4096)", set, e->W, e->H);
    e->policy = (enum avs_logmel_policy)p;
    return 0;
}

int avs_feat_enc_open(struct avs_feat_enc *e, sqlite3 *db, const char *set,
                      const struct avs_enc_files *files, struct avs_err *err)
{
    memset(e, 0, sizeof *e);
    char *text = NULL;
    cJSON *cfg = NULL;
    const char *vf, *af, *hf;
    uint64_t seed = 0;
    int have_seed = 0, rc = -1;
    if (set_config(db, set, &text, err))
        goto out;
    if (!(cfg = cJSON_Parse(text))) {
        avs_err_set(err, "feature set \"%s\": its config is not JSON: remake the set", set);
        goto out;
    }
    if (parse_image(e, set, cfg, err) ||
        resolve_files(set, cfg, files, &vf, &af, &hf, &seed, &have_seed, err))
        goto out;
    const char *vname = jstr(cJSON_GetObjectItemCaseSensitive(cfg, "visual"), "name");
    const char *aname = jstr(cJSON_GetObjectItemCaseSensitive(cfg, "audio"), "name");
    if (avs_feat_audio_parse(aname) < 0) {
        avs_err_set(err, "feature set \"%s\": audio encoder \"%s\" is not one this build knows "
                    "(vggish, panns_cnn14): use a newer avs-features or remake the set", set, aname);
        goto out;
    }
    if (avs_feat_enc_load(e, vname, vf, aname, af, hf, seed, err)) {
        avs_err_wrap(err, "feature set \"%s\"", set);
        goto out;
    }
    double alpha, beta;
    if (resolve_similarity(e, db, set, cfg, seed, have_seed, err) ||
        avs_feat_c3im_config(set, text, &alpha, &beta, err) || avs_feat_frontend_init(e, err))
        goto out;
    e->alpha = (float)alpha, e->beta = (float)beta;
    avs_feat_fields(e);
    rc = 0;
out:
    if (rc)
        avs_feat_enc_close(e);
    cJSON_Delete(cfg);
    free(text);
    return rc;
}
