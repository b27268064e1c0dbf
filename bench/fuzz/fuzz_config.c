/* bench/fuzz/fuzz_config.c: a run's config JSON as avs-train reads it back (train/runs.c:
 * --resume against the recorded options, the feature set check) and a checkpoint's recorded
 * config and training state JSON (train/ckpt.c, written into a checkpoint's metadata). */
#include "bench/fuzz/fuzz.h"
#include "core/safetensors.h"
#include "train/ckpt.h"
#include "train/runs.h"

/* Options as a command line that gives every one of them would set them. */
static void given_all(struct avs_train_opts *g)
{
    memset(g, 0, sizeof *g);
    g->subset = "s4", g->features = "demo", g->mode = "frozen";
    avs_switches_parse(&g->sw, "AF,CC");
    g->epochs = 15, g->batch = 4, g->lr = 1e-4, g->seed = 1, g->width = 256;
    g->given = ~0u;
}

static int checkpoint_state(const char *text, struct avs_err *err)
{
    struct avs_st_writer *w = avs_st_writer_new();
    int64_t shape[1] = {1};
    static const float zero[1];
    avs_st_writer_add(w, "x", AVS_ST_F32, 1, shape, zero);
    avs_st_writer_meta(w, "format", "avs-c3n");
    avs_st_writer_meta(w, "config", text);
    avs_st_writer_meta(w, "state", text);
    char *path = avs_fs_join(avs_fuzz_tmpdir(), "last.safetensors");
    int rc = avs_st_writer_save(w, path, err);
    avs_st_writer_free(&w);
    struct avs_train_state st;
    char *config = NULL;
    if (rc == 0)
        rc = avs_ckpt_config(path, &config, err) || avs_ckpt_state(path, &st, err) ? -1 : 0;
    free(config);
    free(path);
    return rc;
}

int avs_fuzz_config(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_config(const uint8_t *data, size_t size, struct avs_err *err)
{
    char *text = avs_fuzz_text(data, size);
    struct avs_train_opts none = {0}, all, out;
    given_all(&all);
    struct avs_tset t = {0};
    t.set_name = "demo";
    t.set_config = "{\"visual\":{\"name\":\"pvt_v2_b5\"},\"audio\":{\"name\":\"vggish\"}}";
    int rc = avs_run_config_apply(text, &none, &out, err);
    if (rc == 0)
        rc = avs_run_config_apply(text, &all, &out, err);
    if (rc == 0)
        rc = avs_run_check_features(text, &t, "fuzz run", err);
    if (rc == 0 && strlen(text) == size) /* metadata values are C strings */
        rc = checkpoint_state(text, err);
    free(text);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_config)
