/* avs-eval: AVSBench-exact mIoU and F-score of any method's masks (see eval/eval.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/common.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "eval/avss.h"
#include "eval/eval.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-eval --pred DIR (--gt DIR | --db DB | --root DIR) [options]\n"
        "Evaluate masks with the AVSBench metrics (mIoU, F-score beta^2=0.3), overall, per\n"
        "class and per video.\n\n"
        "  --pred DIR          predictions: AVSBench layout (<split>/<category>/<video>/<video>_<k>.png,\n"
        "                      <category>/<video>/..., <video>/<video>_<k>.png) or store layout\n"
        "                      DIR/<uid>/<k>.png; 8-bit probability PNGs (v/255), binary PNGs or\n"
        "                      .logits files from avs-predict (preferred when both exist)\n"
        "  --gt DIR            ground truth as an AVSBench gt_masks tree (folder mode); without it\n"
        "                      the ground truth comes from the store index (--db / --root)\n"
        "  --split S           split to evaluate (default test; 'all' = every split)\n"
        "  --subset S          s4, ms3 or avss: layout / subset (default: detected in folder mode, all in DB mode)\n"
        "  --group-frames K    F-score over groups of K consecutive frames (20 = official test.sh,\n"
        "                      batch 4 x 5 frames); default one group per video\n"
        "  --protocol P        S4/MS3 headline protocol: official (default), per-frame (F = mean\n"
        "                      of each non-empty frame's best F), pooled (IoU and F from counts\n"
        "                      summed over all frames); see README\n"
        "  --all-protocols     report every protocol side by side (one metrics row each)\n"
        "  --semantic          AVSBench-semantic (AVSS, 71 classes): --gt is the release folder\n"
        "                      (metadata.csv, label2idx.json, v1s|v1m|v2/<uid>/labels_rgb), or the\n"
        "                      store's avss videos; chosen automatically for either. Predictions:\n"
        "                      <uid>/<uid>_<i>.png (palette colours or class indices, any size)\n"
        "                      or .logits with 71 channels; store layout <uid>/<k>.* also read\n"
        "  --padded skip       AVSS: leave out the 5 padded frames of v1s/v1m videos (protocol\n"
        "                      avss-official-real-frames); default: in, as officially\n"
        "  --meta CSV          order (and restrict) videos as the rows of this metadata CSV\n"
        "                      (s4_meta_data.csv), as the official data loader does\n"
        "  --frames DIR        folder mode: AVSBench visual_frames tree, for the report gallery\n"
        "  --allow-missing     evaluate missing predictions as all-zero maps (counted and reported)\n"
        "  --json OUT          write the result as JSON ('-' = stdout, instead of the text)\n"
        "  --record NAME       store the result in the metrics table of the index\n"
        "  --switches LIST     with --record: ablation switches, e.g. AF,CC-V,CC\n"
        "  --backbone STR      with --record: backbone combination, e.g. pvt_v2_b5+vggish\n"
        "  --root DIR --db PATH -j N --quiet --verbose --help --version\n\n"
        "Exit: 0 ok, 1 usage, 2 some frames failed (listed; rest evaluated, nothing recorded),\n"
        "3 fatal (e.g. missing predictions without --allow-missing).\n");
}

enum {
    OPT_PRED = AVS_OPT_FIRST_TOOL, OPT_GT, OPT_SPLIT, OPT_SUBSET, OPT_GROUP, OPT_JSONOUT,
    OPT_RECORD, OPT_SWITCHES, OPT_BACKBONE, OPT_ALLOW, OPT_META, OPT_FRAMES, OPT_PROTOCOL,
    OPT_ALLPROT, OPT_SEMANTIC, OPT_PADDED
};

struct args {
    struct avs_cli cli;
    const char *pred, *gt, *split, *subset, *json, *record, *switches, *backbone, *meta, *frames;
    int group_frames, allow_missing, protocol, all_protocols, semantic, padded_skip;
};

static int check_switches(const char *list)
{
    char *copy = avs_strdup(list), *save = NULL;
    int ok = 1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, "AF") && strcmp(t, "CC-V") && strcmp(t, "CC")) {
            fprintf(stderr, "--switches: unknown switch '%s' (known: AF, CC-V, CC)\n", t);
            ok = 0;
        }
    free(copy);
    return ok;
}

/* One tool option into the struct args at ctx (avs_cli_parse); -1 after a message. */
static int tool_option(void *ctx, int c, const char *arg)
{
    struct args *a = ctx;
    switch (c) {
    case OPT_PRED: a->pred = arg; break;
    case OPT_GT: a->gt = arg; break;
    case OPT_SPLIT: a->split = strcmp(arg, "all") ? arg : NULL; break;
    case OPT_SUBSET:
        if (strcmp(arg, "s4") && strcmp(arg, "ms3") && strcmp(arg, "avss")) {
            fprintf(stderr, "--subset %s: expected s4, ms3 or avss\n", arg);
            return -1;
        }
        a->subset = arg;
        break;
    case OPT_GROUP: {
        char *end;
        long k = strtol(arg, &end, 10);
        if (*end || k < 0 || k > 1000000) {
            fprintf(stderr, "--group-frames %s: expected a number of frames (0 = per video)\n",
                    arg);
            return -1;
        }
        a->group_frames = (int)k;
        break;
    }
    case OPT_JSONOUT: a->json = arg; break;
    case OPT_RECORD: a->record = arg; break;
    case OPT_SWITCHES:
        if (!check_switches(arg))
            return -1;
        a->switches = arg;
        break;
    case OPT_BACKBONE: a->backbone = arg; break;
    case OPT_ALLOW: a->allow_missing = 1; break;
    case OPT_META: a->meta = arg; break;
    case OPT_FRAMES: a->frames = arg; break;
    case OPT_PROTOCOL:
        if ((a->protocol = avs_eval_protocol_parse(arg)) < 0) {
            fprintf(stderr, "--protocol %s: expected official, per-frame or pooled\n", arg);
            return -1;
        }
        break;
    case OPT_ALLPROT: a->all_protocols = 1; break;
    case OPT_SEMANTIC: a->semantic = 1; break;
    case OPT_PADDED:
        if (strcmp(arg, "skip") && strcmp(arg, "official")) {
            fprintf(stderr, "--padded %s: expected official (the default) or skip\n", arg);
            return -1;
        }
        a->padded_skip = !strcmp(arg, "skip");
        break;
    default: usage(stderr); return -1;
    }
    return 0;
}

/* The options: -1 to go on, else the status main returns (help, version, usage errors). */
static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        AVS_CLI_LONG_OPTIONS,
        {"pred", required_argument, 0, OPT_PRED}, {"gt", required_argument, 0, OPT_GT},
        {"split", required_argument, 0, OPT_SPLIT}, {"subset", required_argument, 0, OPT_SUBSET},
        {"group-frames", required_argument, 0, OPT_GROUP},
        {"json", required_argument, 0, OPT_JSONOUT}, {"record", required_argument, 0, OPT_RECORD},
        {"switches", required_argument, 0, OPT_SWITCHES},
        {"backbone", required_argument, 0, OPT_BACKBONE},
        {"allow-missing", no_argument, 0, OPT_ALLOW}, {"meta", required_argument, 0, OPT_META},
        {"frames", required_argument, 0, OPT_FRAMES},
        {"protocol", required_argument, 0, OPT_PROTOCOL},
        {"all-protocols", no_argument, 0, OPT_ALLPROT}, {"semantic", no_argument, 0, OPT_SEMANTIC},
        {"padded", required_argument, 0, OPT_PADDED}, {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    avs_cli_defaults(&a->cli);
    a->split = "test";
    int r = avs_cli_parse(&a->cli, argc, argv, "j:hq", opts, tool_option, a, usage, "avs-eval");
    if (r >= 0)
        return r;
    if (optind < argc) {
        fprintf(stderr, "avs-eval: unexpected argument '%s'\n", argv[optind]);
        return AVS_EXIT_USAGE;
    }
    if (!a->pred) {
        fprintf(stderr, "avs-eval: --pred DIR is required (the folder of predicted masks)\n");
        return AVS_EXIT_USAGE;
    }
    if (a->cli.shard_n > 1) {
        fprintf(stderr, "avs-eval: --shard is not supported: the metrics need every frame "
                        "(evaluation is fast; use -j)\n");
        return AVS_EXIT_USAGE;
    }
    if (a->frames && !a->gt) {
        fprintf(stderr, "avs-eval: --frames is for folder mode (--gt); the store knows its frames\n");
        return AVS_EXIT_USAGE;
    }
    if ((a->switches || a->backbone) && !a->record) {
        fprintf(stderr, "avs-eval: --switches/--backbone describe a recorded row: add --record NAME\n");
        return AVS_EXIT_USAGE;
    }
    const char *const label[3] = {a->record, a->switches, a->backbone};
    const char *const opt[3] = {"--record", "--switches", "--backbone"};
    for (int i = 0; i < 3; i++) { /* shown in leaderboards (HTML, JSON) */
        struct avs_err e;
        if (label[i] && avs_name_check_label(label[i], opt[i], &e)) {
            fprintf(stderr, "avs-eval: %s\n", e.msg);
            return AVS_EXIT_USAGE;
        }
    }
    return -1;
}

/* The ground truth: folder tree or store index. */
static int load_set(const struct args *a, const char *db_path, struct avs_eval_set *set,
                    struct avs_err *err)
{
    if (a->gt)
        return avs_eval_list_folder(a->gt, a->split, a->subset, set, err);
    sqlite3 *db = NULL;
    if (avs_db_open_readonly(db_path, &db, err))
        return -1;
    char *abs = avs_fs_realpath(db_path, err);
    int rc = -1;
    if (abs) {
        char *slash = strrchr(abs, '/');
        *slash = '\0';
        rc = avs_eval_list_db(db, *abs ? abs : "/", a->split, a->subset, set, err);
    }
    free(abs);
    avs_db_close(&db);
    return rc;
}

static int write_json(const char *out, const char *text, struct avs_err *err)
{
    if (!strcmp(out, "-")) {
        printf("%s\n", text);
        return 0;
    }
    char *t = avs_sprintf("%s\n", text);
    int rc = avs_fs_write_atomic(out, t, strlen(t), err);
    free(t);
    return rc;
}

static int record(const struct args *a, const char *db_path, const struct avs_eval_set *set,
                  const struct avs_eval_result *res, const struct avs_eval_meta *meta,
                  struct avs_err *err)
{
    sqlite3 *db = NULL;
    int64_t id = 0;
    if (avs_db_open(db_path, &db, err))
        return -1;
    int rc = avs_eval_record(db, set, res, meta, &id, err);
    avs_db_close(&db);
    if (rc == 0)
        avs_log_info("recorded as metrics row %lld of %s (method %s)", (long long)id, db_path,
                     a->record);
    return rc;
}

/* AVSS: 1 when the ground truth is an AVSS release or the store's avss videos. */
static int want_semantic(const struct args *a, const char *db_path)
{
    if (a->semantic || (a->subset && !strcmp(a->subset, "avss")))
        return 1;
    if (a->gt)
        return avs_avss_is_release(a->gt);
    if (a->subset)
        return 0;
    sqlite3 *db = NULL;
    struct avs_err e;
    if (avs_db_open_readonly(db_path, &db, &e))
        return 0;
    int yes = avs_avss_db_count(db) > 0 &&
              avs_db_scalar_int(db, "SELECT count(*) FROM videos WHERE subset IN ('s4', 'ms3')", 0) == 0;
    avs_db_close(&db);
    return yes;
}

static int load_avss(const struct args *a, const char *db_path, struct avs_avss_set *set,
                     struct avs_err *err)
{
    if (a->gt)
        return avs_avss_list_release(a->gt, a->split, set, err);
    sqlite3 *db = NULL;
    if (avs_db_open_readonly(db_path, &db, err))
        return -1;
    char *abs = avs_fs_realpath(db_path, err);
    int rc = -1;
    if (abs) {
        *strrchr(abs, '/') = '\0';
        rc = avs_avss_list_db(db, *abs ? abs : "/", a->split, set, err);
    }
    free(abs);
    avs_db_close(&db);
    return rc;
}

static int write_json(const char *out, const char *text, struct avs_err *err);

/* Report, JSON and record of an AVSS result; the exit status. */
static int finish_semantic(const struct args *a, const char *db_path,
                           const struct avs_avss_set *set, const struct avs_avss_result *res,
                           struct avs_err *err)
{
    struct avs_eval_meta meta = {a->record, a->pred, a->gt ? a->gt : db_path, a->switches,
                                 a->backbone};
    if (!a->json || strcmp(a->json, "-"))
        avs_avss_print(stdout, set, res);
    if (a->json) {
        char *j = avs_avss_json(set, res, &meta);
        int rc = write_json(a->json, j, err);
        free(j);
        if (rc)
            return -1;
    }
    if (res->n_failed) {
        avs_log_error("%d frames failed (listed above) and are excluded%s", res->n_failed,
                      a->record ? "; nothing recorded" : "");
        return AVS_EXIT_PARTIAL;
    }
    if (a->record) {
        sqlite3 *db = NULL;
        int64_t id = 0;
        if (avs_db_open(db_path, &db, err))
            return -1;
        int rc = avs_avss_record(db, set, res, &meta, &id, err);
        avs_db_close(&db);
        if (rc)
            return -1;
        avs_log_info("recorded as metrics row %lld of %s (method %s)", (long long)id, db_path,
                     a->record);
    }
    return AVS_EXIT_OK;
}

/* avs-eval --semantic: the AVSS path (docs/avss.md). */
static int run_semantic(const struct args *a, const char *db_path)
{
    struct avs_err err = {{0}};
    struct avs_avss_set set = {0};
    struct avs_avss_result res = {0};
    int status = AVS_EXIT_FATAL;
    if (a->protocol != AVS_EVAL_OFFICIAL || a->all_protocols || a->group_frames || a->meta ||
        a->frames) {
        fprintf(stderr, "avs-eval: --protocol, --all-protocols, --group-frames, --meta and "
                        "--frames are for S4/MS3; AVSS reports its protocol and variants\n");
        return AVS_EXIT_USAGE;
    }
    if (load_avss(a, db_path, &set, &err))
        goto fail;
    int missing = avs_avss_attach_pred(&set, a->pred);
    if (missing)
        avs_log_warn("%d of %d real frames have no prediction under %s%s", missing,
                     set.n_frames, a->pred, a->allow_missing ? " (evaluated as background)" : "");
    struct avs_avss_options opt = {a->padded_skip, a->allow_missing, a->cli.jobs};
    int rc = avs_avss_run(&set, &opt, &res, &err);
    for (int f = 0; f < set.n_frames; f++)
        if (res.errors[f])
            avs_log_error("%s", res.errors[f]);
    if (rc)
        goto fail;
    status = finish_semantic(a, db_path, &set, &res, &err);
    if (status >= 0)
        goto out;
fail:
    avs_log_error("%s", err.msg);
    status = AVS_EXIT_FATAL;
out:
    avs_avss_result_free(&res);
    avs_avss_set_free(&set);
    return status;
}

int main(int argc, char **argv)
{
    struct args a;
    int parsed = parse(argc, argv, &a);
    if (parsed >= 0)
        return parsed;
    struct avs_err err = {{0}};
    struct avs_eval_set set = {0};
    struct avs_eval_result res = {0};
    char *db_path = avs_cli_db_path(&a.cli), *pred_abs = NULL, *gt_abs = NULL;
    int status = AVS_EXIT_FATAL;
    if (!avs_fs_is_dir(a.pred)) {
        avs_log_error("prediction folder %s does not exist (--pred DIR)", a.pred);
        goto out;
    }
    /* absolute paths: they are recorded (source, gallery paths) and outlive the cwd */
    if (!(pred_abs = avs_fs_realpath(a.pred, &err)) ||
        (a.gt && !(gt_abs = avs_fs_realpath(a.gt, &err))))
        goto fail;
    a.pred = pred_abs;
    if (a.gt)
        a.gt = gt_abs;
    if (want_semantic(&a, db_path)) {
        status = run_semantic(&a, db_path);
        goto out;
    }
    if (a.padded_skip) {
        avs_log_error("--padded is for AVSS (--semantic)");
        status = AVS_EXIT_USAGE;
        goto out;
    }
    if (load_set(&a, db_path, &set, &err))
        goto fail;
    if (a.meta) {
        int dropped = 0;
        if (avs_eval_order_by_csv(&set, a.meta, &dropped, &err))
            goto fail;
        if (dropped)
            avs_log_warn("%d ground-truth videos are not in %s and are left out", dropped, a.meta);
    }
    if (a.frames && avs_eval_attach_frames(&set, a.frames) == 0)
        avs_log_warn("no frames found under %s (expected <category>/<video>/<video>_<k>.png or "
                     "<video>/<video>.mp4_<k>.png)", a.frames);
    int missing = avs_eval_attach_pred(&set, a.pred);
    if (missing && !a.allow_missing) {
        for (int f = 0; f < set.n_frames; f++)
            if (!set.frames[f].pred)
                fprintf(stderr, "missing prediction: %s\n", set.frames[f].want);
        avs_log_error("%d of %d frames have no prediction under %s: fix the folder, or pass "
                      "--allow-missing to count them as empty predictions", missing,
                      set.n_frames, a.pred);
        goto out;
    }
    struct avs_eval_options opt = {a.group_frames, a.allow_missing, a.cli.jobs};
    int run_rc = avs_eval_run(&set, &opt, &res, &err);
    res.protocol = (enum avs_eval_protocol)a.protocol;
    res.all_protocols = a.all_protocols;
    if (run_rc) {
        for (int f = 0; f < set.n_frames; f++)
            if (res.errors[f])
                avs_log_error("%s", res.errors[f]);
        goto fail;
    }
    for (int f = 0; f < set.n_frames; f++)
        if (res.errors[f])
            avs_log_error("%s", res.errors[f]);
    if (missing)
        avs_log_warn("%d missing predictions were evaluated as empty (--allow-missing)", missing);
    if (!a.json || strcmp(a.json, "-"))
        avs_eval_print(stdout, &set, &res);
    struct avs_eval_meta meta = {a.record, a.pred, a.gt ? a.gt : db_path, a.switches, a.backbone};
    if (a.json) {
        char *j = avs_eval_json(&set, &res, &meta, 1);
        int rc = write_json(a.json, j, &err);
        free(j);
        if (rc)
            goto fail;
    }
    if (res.n_failed) {
        avs_log_error("%d frames failed (listed above) and are excluded%s", res.n_failed,
                      a.record ? "; nothing recorded" : "");
        status = AVS_EXIT_PARTIAL;
        goto out;
    }
    if (a.record && record(&a, db_path, &set, &res, &meta, &err))
        goto fail;
    status = AVS_EXIT_OK;
    goto out;
fail:
    avs_log_error("%s", err.msg);
out:
    avs_eval_result_free(&res);
    avs_eval_set_free(&set);
    free(db_path);
    free(pred_abs);
    free(gt_abs);
    return status;
}
