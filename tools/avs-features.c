/* avs-features: the store's seconds through the frozen encoders into a feature set. See --help
 * and features/features.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/av.h"
#include "core/cli.h"
#include "core/common.h"
#include "dist/ranks.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "core/safetensors.h"
#include "features/features.h"
#include "backend/ops.h"
#include "model/c3im.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-features [options] --visual pvt_v2_bX|swin_b|resnet50=W.safetensors --audio vggish=W.safetensors\n"
        "                    --audio-head H.safetensors --vectors V\n"
        "       avs-features [options] --random-init SEED [--visual pvt_v2_bX|swin_b|resnet50]   (tests, demos)\n"
        "       avs-features [options] --visual NAME=W --audio panns_cnn14=W --vectors V\n"
        "       avs-features show [--set NAME]           feature sets in the index\n"
        "       avs-features merge --set NAME SHARD_ROOT...   copy the set NAME of each shard\n"
        "                    store into --root's (stores merged first with avs-ingest merge;\n"
        "                    videos matched by uid; same configuration required)\n"
        "       avs-features dump --set NAME --video UID --k K [--flipped] --out F.safetensors\n"
        "       avs-features clip --set NAME --clip IN.mp4 --out F.safetensors [--visual ...]\n"
        "                    a set's encoders on any clip, in memory (no store entries): frames,\n"
        "                    audio_emb, stage1..4, gradcam[_v]1..4, target[_v], each [n,...];\n"
        "                    sets made with weight files need the same files (hash-checked)\n"
        "\n"
        "For every second of every ok video of the store: log-mel, VGGish embedding and AudioSet\n"
        "logits, visual stage maps and ImageNet logits, the C3IM targets CC and CC-V (label\n"
        "similarity from word vectors), Grad-CAM weights for both; one record per second (and per\n"
        "flipped copy) in ROOT/features/<set>.bin, indexed in feature_sets / feature_entries.\n"
        "A killed run, run again, continues; finished videos are not redone.\n"
        "Under mpirun/srun (N ranks, one store): video i of the list is computed on rank i %% N\n"
        "and rank 0 writes every video's records and rows in list order: the same file and rows\n"
        "as one process (show, dump, clip, merge and --shard are for single processes).\n"
        "\n"
        "options:\n"
        "  --root DIR            store folder (default ./avsdata); index DIR/avs.db\n"
        "  --db PATH             index file (default ROOT/avs.db)\n"
        "  --visual NAME[=FILE]  pvt_v2_b0..b5, swin_t, swin_s, swin_b (window 7: frames multiples of\n"
        "                        224), swin_b_w12 (window 12: of 384), with safetensors weights\n"
        "                        (official names; ImageNet head needed); swin_t_w4 (window 4:\n"
        "                        of 128; --random-init only, no released weights have it)\n"
        "                        resnet50 (torchvision names, as resnet50-19c8e357.pth)\n"
        "  --audio vggish=FILE   VGGish weights (torchvggish names)\n"
        "  --audio panns_cnn14=FILE  PANNs Cnn14_16k (official names; its own AudioSet head, no\n"
        "                        --audio-head): each second alone -> 2048-d embedding, and\n"
        "                        clipwise_output (527 probabilities) for C3IM, as C3N's PANNs variant\n"
        "                        (--audio NAME alone with --random-init: random weights)\n"
        "  --audio-head FILE     the 527-way AudioSet head (head.weight, head.bias)\n"
        "  --vectors FILE        word vectors (GloVe text, word2vec text/binary) for S\n"
        "  --classes-visual F    ImageNet class list (default features/data/imagenet1k_classes.txt)\n"
        "  --classes-audio F     AudioSet class list (default features/data/audioset_class_labels_indices.csv)\n"
        "  --random-init SEED    random encoders (and random S without --vectors) for whatever has\n"
        "                        no file; the set is marked random_init = 1\n"
        "  --set NAME            feature set name (default from the encoders and options)\n"
        "  --rebuild             recompute the set from scratch: its index rows and file are\n"
        "                        removed first (same name; give the options that made it), e.g.\n"
        "                        after \"feature cache v1, need v2\"\n"
        "  --flip                also a horizontally flipped copy of every frame\n"
        "  --fp16                store fp16 (default fp32)\n"
        "  --policy P            log-mel windows: stream (default, official: 0.96 s examples over\n"
        "                        the joined seconds) or second (one example per 1-second WAV)\n"
        "  --split S             only videos of this split\n"
        "  --subset S            only videos of this subset (s4, ms3, avss, other)\n"
        "  --alpha A, --beta B   C3IM exponents: W = softmax(visual)^A * S * softmax(audio)^B\n"
        "                        (the paper's balance coefficients, its Table III; default 0.1 and\n"
        "                        0.1, the official code's); recorded in the set's config, and in\n"
        "                        the default set name (-aA-bB) when not the defaults\n"
        "  -j, --jobs N          compute threads (default: all cores)\n"
        AVS_CLI_DEVICE_USAGE
        "  --shard i/N           only videos i, i+N, ... (sorted by uid)\n"
        "  --json                summary as JSON on stdout\n"
        "  -q, --quiet           errors only;  -h, --help;  --version\n"
        "\n"
        "exit status: 0 done, 1 usage error, 2 some videos failed (each named on stderr; run again\n"
        "after fixing), 3 fatal (nothing more could be done).\n");
}

enum { OPT_VISUAL = AVS_OPT_FIRST_TOOL, OPT_AUDIO, OPT_HEAD, OPT_VECTORS, OPT_CLS_V, OPT_CLS_A,
       OPT_RANDOM, OPT_SET, OPT_FLIP, OPT_FP16, OPT_POLICY, OPT_SPLIT, OPT_VIDEO, OPT_K,
       OPT_FLIPPED, OPT_OUT, OPT_CLIP, OPT_REBUILD, OPT_ALPHA, OPT_BETA, OPT_SUBSET };

struct args {
    struct avs_features_opts o;
    const char *video, *out, *clip;
    int k, flipped, json, quiet, policy_given;
};

static int split_encoder(const char *arg, const char **name, const char **file, const char *opt)
{
    const char *eq = strchr(arg, '=');
    static char buf[2][64];
    int i = !strcmp(opt, "--audio");
    if (!eq) {
        *name = arg, *file = NULL;
        return 0;
    }
    if (eq - arg >= (int)sizeof buf[i] || !eq[1]) {
        fprintf(stderr, "avs-features: %s %s: expected NAME=FILE\n", opt, arg);
        return -1;
    }
    memcpy(buf[i], arg, (size_t)(eq - arg));
    buf[i][eq - arg] = 0;
    *name = buf[i], *file = eq + 1;
    return 0;
}

static int tool_option(void *ctx, int c, const char *arg)
{
    struct args *a = ctx;
    const char *nm;
    switch (c) {
    case OPT_VISUAL: return split_encoder(arg, &a->o.visual, &a->o.visual_weights, "--visual");
    case OPT_AUDIO:
        if (split_encoder(arg, &nm, &a->o.audio_weights, "--audio"))
            return -1;
        if (avs_feat_audio_parse(nm) < 0) {
            fprintf(stderr, "avs-features: --audio %s: expected vggish=FILE or panns_cnn14=FILE "
                    "(or the name alone with --random-init)\n", arg);
            return -1;
        }
        a->o.audio = avs_feat_audio_parse(nm) ? "panns_cnn14" : "vggish";
        return 0;
    case OPT_HEAD: a->o.audio_head = arg; return 0;
    case OPT_VECTORS: a->o.vectors = arg; return 0;
    case OPT_CLS_V: a->o.classes_visual = arg; return 0;
    case OPT_CLS_A: a->o.classes_audio = arg; return 0;
    case OPT_RANDOM: {
        char *end;
        a->o.seed = strtoull(arg, &end, 10);
        if (!*arg || *end) {
            fprintf(stderr, "avs-features: --random-init %s: expected a number\n", arg);
            return -1;
        }
        a->o.random_init = 1;
        return 0;
    }
    case OPT_SET: a->o.set = arg; return 0;
    case OPT_FLIP: a->o.flip = 1; return 0;
    case OPT_FP16: a->o.fp16 = 1; return 0;
    case OPT_POLICY: {
        int p = avs_logmel_policy_parse(arg);
        if (p < 0) {
            fprintf(stderr, "avs-features: --policy %s: expected stream or second\n", arg);
            return -1;
        }
        a->o.policy = (enum avs_logmel_policy)p;
        a->policy_given = 1;
        return 0;
    }
    case OPT_SPLIT: a->o.split = arg; return 0;
    case OPT_SUBSET: a->o.subset = arg; return 0;
    case OPT_VIDEO: a->video = arg; return 0;
    case OPT_K: a->k = atoi(arg); return 0;
    case OPT_FLIPPED: a->flipped = 1; return 0;
    case OPT_OUT: a->out = arg; return 0;
    case OPT_CLIP: a->clip = arg; return 0;
    case OPT_REBUILD: a->o.rebuild = 1; return 0;
    case OPT_ALPHA:
    case OPT_BETA: {
        struct avs_err e;
        int al = c == OPT_ALPHA;
        if (avs_c3im_parse(al ? "--alpha" : "--beta", arg, al ? &a->o.alpha : &a->o.beta, &e)) {
            fprintf(stderr, "avs-features: %s\n", e.msg);
            return -1;
        }
        return 0;
    }
    case AVS_OPT_JSON: a->json = 1; return 0;
    default: usage(stderr); return -1;
    }
}

/* What the run needs that only the command line can say. */
static int check_run(const struct args *a)
{
    const struct avs_features_opts *o = &a->o;
    int panns = avs_feat_audio_parse(o->audio) == 1;
    if (panns && a->policy_given) {
        fprintf(stderr, "avs-features: --policy does not apply to --audio panns_cnn14: PANNs takes "
                "each second alone (C3N's 1-second chunks)\n");
        return -1;
    }
    const char *miss = !o->visual_weights ? "--visual NAME=FILE"
                       : !o->audio_weights ? (panns ? "--audio panns_cnn14=FILE" : "--audio vggish=FILE")
                       : !o->vectors       ? "--vectors FILE" : NULL;
    if (miss && !o->random_init) {
        fprintf(stderr, "avs-features: missing %s (or --random-init SEED for random encoders; see "
                "--help)\n", miss);
        return -1;
    }
    return 0;
}

/* `avs-features clip`: the set's encoders on one clip, every output as [n,...] tensors. */
static int clip_save(const struct avs_clip_feat *f, const char *out, struct avs_err *err)
{
    struct avs_st_writer *w = avs_st_writer_new();
    int64_t *tg = avs_malloc((size_t)f->n * 2 * sizeof *tg);
    int64_t rs[4] = {f->n, f->H, f->W, 3}, ts[1] = {f->n};
    avs_st_writer_add(w, "frames", AVS_ST_U8, 4, rs, f->rgb);
    int es[2] = {f->n, f->E};
    avs_st_writer_add_f32(w, "audio_emb", 2, es, f->audio_emb);
    char nm[3][16];
    for (int s = 0; s < 4; s++) {
        int ss[4] = {f->n, f->C[s], f->Hs[s], f->Ws[s]}, gs[2] = {f->n, f->C[s]};
        snprintf(nm[0], sizeof nm[0], "stage%d", s + 1);
        snprintf(nm[1], sizeof nm[1], "gradcam%d", s + 1);
        snprintf(nm[2], sizeof nm[2], "gradcam_v%d", s + 1);
        avs_st_writer_add_f32(w, nm[0], 4, ss, f->stage[s]);
        avs_st_writer_add_f32(w, nm[1], 2, gs, f->gradcam[s]);
        avs_st_writer_add_f32(w, nm[2], 2, gs, f->gradcam_v[s]);
    }
    for (int i = 0; i < f->n; i++)
        tg[i] = f->target[i], tg[f->n + i] = f->target_v[i];
    avs_st_writer_add(w, "target", AVS_ST_I64, 1, ts, tg);
    avs_st_writer_add(w, "target_v", AVS_ST_I64, 1, ts, tg + f->n);
    char dur[32], fps[32];
    snprintf(dur, sizeof dur, "%.6f", f->duration);
    snprintf(fps, sizeof fps, "%.6f", f->fps);
    avs_st_writer_meta(w, "duration", dur);
    avs_st_writer_meta(w, "fps", fps);
    int rc = avs_st_writer_save(w, out, err);
    avs_st_writer_free(&w);
    free(tg);
    return rc;
}

static int clip_cmd(const struct args *a, const struct avs_cli *cli)
{
    if (!a->o.set || !a->clip || !a->out) {
        fprintf(stderr, "avs-features: clip needs --set NAME --clip IN --out F.safetensors\n");
        return AVS_EXIT_USAGE;
    }
    struct avs_err err = {0};
    struct avs_feat_enc e;
    struct avs_clip_feat f;
    memset(&e, 0, sizeof e);
    memset(&f, 0, sizeof f);
    struct avs_enc_files files = {a->o.visual_weights, a->o.audio_weights, a->o.audio_head};
    sqlite3 *db = NULL;
    char *dbp = avs_cli_db_path(cli);
    int rc = AVS_EXIT_FATAL;
    avs_av_log_init();
    if (!avs_fs_exists(dbp))
        avs_err_set(&err, "%s: no store index here (give --root or --db)", dbp);
    else if (avs_db_open_readonly(dbp, &db, &err) == 0 &&
             avs_feat_enc_open(&e, db, a->o.set, &files, &err) == 0 &&
             avs_feat_clip(&e, a->clip, &f, &err) == 0 && clip_save(&f, a->out, &err) == 0)
        rc = AVS_EXIT_OK;
    if (rc)
        fprintf(stderr, "avs-features: %s\n", err.msg);
    else if (!a->quiet)
        fprintf(stderr, "avs-features: %s: %d seconds through set %s -> %s\n", a->clip, f.n,
                a->o.set, a->out);
    avs_clip_feat_free(&f);
    avs_feat_enc_close(&e);
    avs_db_close(&db);
    free(dbp);
    return rc;
}

/* `avs-features merge --set NAME SHARD_ROOT...` */
static int merge_cmd(const struct args *a, const struct avs_cli *cli, char *const *srcs, int n)
{
    if (!a->o.set || n < 1) {
        fprintf(stderr, "avs-features: merge needs --set NAME and at least one SHARD_ROOT\n");
        return AVS_EXIT_USAGE;
    }
    struct avs_features_merge_stats st;
    struct avs_err err = {0};
    int rc = avs_features_merge(cli->root, cli->db, a->o.set, srcs, n, &st, &err);
    if (rc < 0) {
        fprintf(stderr, "avs-features: merge: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (a->json)
        printf("{\"set\": \"%s\", \"videos\": %d, \"merged\": %d, \"unchanged\": %d, "
               "\"failed\": %d, \"records\": %lld, \"seconds\": %.2f}\n", a->o.set, st.videos,
               st.merged, st.unchanged, st.failed, (long long)st.records, st.seconds);
    else if (!a->quiet)
        fprintf(stderr, "avs-features: merge set %s: %d videos: %d merged (%lld records), %d "
                "already there, %d failed, %.1f s\n", a->o.set, st.videos, st.merged,
                (long long)st.records, st.unchanged, st.failed, st.seconds);
    return rc == 2 ? AVS_EXIT_PARTIAL : AVS_EXIT_OK;
}

static int run(struct args *a, const struct avs_cli *cli)
{
    struct avs_features_stats st;
    struct avs_err err = {0};
    a->o.root = cli->root, a->o.db_path = cli->db;
    a->o.shard_i = cli->shard_i, a->o.shard_n = cli->shard_n;
    a->o.progress = !a->quiet && isatty(2);
    avs_ranks_exit_on_lost("the set keeps every video committed so far: run the same command "
                           "again to finish it");
    int rc = avs_features_run(&a->o, &st, &err);
    if (rc < 0) {
        fprintf(stderr, "avs-features: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (avs_ranks_rank() > 0)
        return rc == 2 ? AVS_EXIT_PARTIAL : AVS_EXIT_OK;
    if (a->json)
        printf("{\"set\": \"%s\", \"set_id\": %lld, \"videos\": %d, \"done\": %d, \"unchanged\": %d, "
               "\"failed\": %d, \"records\": %lld, \"seconds\": %.2f}\n", st.set, (long long)st.set_id,
               st.videos, st.done, st.unchanged, st.failed, (long long)st.records, st.seconds);
    else if (!a->quiet)
        fprintf(stderr, "avs-features: set %s: %d videos: %d computed (%lld records), %d already "
                "there, %d failed, %.1f s\n", st.set, st.videos, st.done, (long long)st.records,
                st.unchanged, st.failed, st.seconds);
    if (!a->json && !a->quiet && avs_ranks_size() > 1)
        fprintf(stderr, "avs-features: ranks: %d (%d per node), %s: rank 0 waited %.1f s of %.1f s "
                "for the other ranks' videos\n", avs_ranks_size(), avs_ranks_local_size(),
                avs_ranks_comm(), st.wait_seconds, st.seconds);
    return rc == 2 ? AVS_EXIT_PARTIAL : AVS_EXIT_OK;
}

static int features_main(int argc, char **argv);

int main(int argc, char **argv)
{
    avs_ops_tune_process(argv); /* may exec this program again: before MPI starts */
    if (avs_ranks_init(&argc, &argv))
        return AVS_EXIT_FATAL;
    int rc = features_main(argc, argv);
    avs_ranks_finalize();
    return rc;
}

/* Under a launcher (more than one rank) only the computing run is shared out; the others read
 * or write through one process's paths. NULL, or why cmd cannot run as ranks. */
static const char *ranks_refusal(const char *cmd, const struct avs_cli *cli)
{
    if (avs_ranks_size() == 1)
        return NULL;
    if (cmd && (!strcmp(cmd, "show") || !strcmp(cmd, "dump") || !strcmp(cmd, "clip")))
        return "show, dump and clip read one store or clip in one process: run them without "
               "mpirun/srun";
    if (cmd && !strcmp(cmd, "merge"))
        return "merge copies shard stores into one: ranks need no merge (they write one store "
               "together); run merge without mpirun/srun";
    if (cli->shard_n > 1)
        return "--shard i/N with ranks: the ranks already share the videos out (video i on rank "
               "i % ranks); give --shard to single processes on copies of the store, or drop it";
    return NULL;
}

static int features_main(int argc, char **argv)
{
    static const struct option lo[] = {
        AVS_CLI_LONG_OPTIONS,
        AVS_CLI_DEVICE_OPTION,
        {"visual", required_argument, 0, OPT_VISUAL},
        {"audio", required_argument, 0, OPT_AUDIO},
        {"audio-head", required_argument, 0, OPT_HEAD},
        {"vectors", required_argument, 0, OPT_VECTORS},
        {"classes-visual", required_argument, 0, OPT_CLS_V},
        {"classes-audio", required_argument, 0, OPT_CLS_A},
        {"random-init", required_argument, 0, OPT_RANDOM},
        {"set", required_argument, 0, OPT_SET},
        {"flip", no_argument, 0, OPT_FLIP},
        {"fp16", no_argument, 0, OPT_FP16},
        {"policy", required_argument, 0, OPT_POLICY},
        {"split", required_argument, 0, OPT_SPLIT},
        {"subset", required_argument, 0, OPT_SUBSET},
        {"video", required_argument, 0, OPT_VIDEO},
        {"k", required_argument, 0, OPT_K},
        {"flipped", no_argument, 0, OPT_FLIPPED},
        {"out", required_argument, 0, OPT_OUT},
        {"clip", required_argument, 0, OPT_CLIP},
        {"rebuild", no_argument, 0, OPT_REBUILD},
        {"alpha", required_argument, 0, OPT_ALPHA},
        {"beta", required_argument, 0, OPT_BETA},
        {"json", no_argument, 0, AVS_OPT_JSON},
        {0, 0, 0, 0},
    };
    struct avs_cli cli;
    struct args a;
    memset(&a, 0, sizeof a);
    a.o.visual = "pvt_v2_b0";
    a.o.policy = AVS_LOGMEL_STREAM;
    a.o.alpha = AVS_C3IM_ALPHA, a.o.beta = AVS_C3IM_BETA;
    avs_cli_defaults(&cli);
    int rc = avs_cli_parse(&cli, argc, argv, "j:hq", lo, tool_option, &a, usage, "avs-features");
    if (rc >= 0)
        return rc;
    a.quiet = cli.quiet || avs_ranks_rank() > 0; /* rank 0 speaks for the job */
    const char *cmd = optind < argc ? argv[optind] : NULL, *refused = ranks_refusal(cmd, &cli);
    if (refused) {
        if (avs_ranks_rank() == 0)
            fprintf(stderr, "avs-features: started as %d ranks: %s\n", avs_ranks_size(), refused);
        return AVS_EXIT_USAGE;
    }
    struct avs_err nerr;
    if (a.o.set && avs_name_check(a.o.set, "--set", &nerr)) { /* it names features/<set>.bin */
        fprintf(stderr, "avs-features: %s\n", nerr.msg);
        return AVS_EXIT_USAGE;
    }
    {
        struct avs_err derr;
        char dev[32];
        if (avs_backend_setup("avs-features", avs_ranks_device(cli.device, dev, sizeof dev), cli.precision, cli.jobs, a.quiet,
                              &derr)) {
            fprintf(stderr, "avs-features: %s\n", derr.msg);
            return AVS_EXIT_USAGE;
        }
    }
    if (cmd && !strcmp(cmd, "merge"))
        return merge_cmd(&a, &cli, argv + optind + 1, argc - optind - 1);
    if (optind + (cmd ? 1 : 0) != argc) {
        usage(stderr);
        return AVS_EXIT_USAGE;
    }
    struct avs_err err = {0};
    if (cmd && !strcmp(cmd, "show")) {
        if (avs_features_show(cli.root, cli.db, a.o.set, &err)) {
            fprintf(stderr, "avs-features: %s\n", err.msg);
            return AVS_EXIT_FATAL;
        }
        return AVS_EXIT_OK;
    }
    if (cmd && !strcmp(cmd, "dump")) {
        if (!a.o.set || !a.video || a.k < 1 || !a.out) {
            fprintf(stderr, "avs-features: dump needs --set NAME --video UID --k K (>= 1) --out F\n");
            return AVS_EXIT_USAGE;
        }
        if (avs_features_dump(cli.root, cli.db, a.o.set, a.video, a.k, a.flipped, a.out, &err)) {
            fprintf(stderr, "avs-features: %s\n", err.msg);
            return AVS_EXIT_FATAL;
        }
        return AVS_EXIT_OK;
    }
    if (cmd && !strcmp(cmd, "clip"))
        return clip_cmd(&a, &cli);
    if (cmd) {
        fprintf(stderr, "avs-features: unknown command \"%s\" (show, dump, clip, merge, or none to compute)\n", cmd);
        return AVS_EXIT_USAGE;
    }
    if (check_run(&a))
        return AVS_EXIT_USAGE;
    return run(&a, &cli);
}
