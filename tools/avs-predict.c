/* avs-predict: run a trained C3N on the store's videos, or on any clip. See --help and
 * predict/predict.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/av.h"
#include "core/cli.h"
#include "core/common.h"
#include "dist/ranks.h"
#include "core/names.h"
#include "backend/ops.h"
#include "model/c3im.h"
#include "predict/predict.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-predict [options] --run NAME [--checkpoint best|last] [--split test]\n"
        "                   [--subset s4|ms3|avss] [--out DIR] [--record [METHOD]] [--color]\n"
        "       avs-predict [options] --run NAME --clip IN.mp4 -o OUT.mp4 [--frames DIR]\n"
        "                   [--visual FILE] [--audio FILE] [--audio-head FILE]\n"
        "\n"
        "Store mode: every ok video of the split (default test; subset: the run's) through the\n"
        "run's model, from the run's feature set: per second an 8-bit probability PNG and its\n"
        "float logits in the AVSBench layout, DIR/<category>/<uid>/<uid>_<k>.png (S4) or\n"
        "DIR/<uid>/<uid>_<k>.png (MS3), DIR default ROOT/runs/NAME/pred-<subset>-<split>;\n"
        "predictions rows in the index. --record evaluates them at once (the .logits, exactly)\n"
        "and records the metrics under the run's name (or METHOD). AVSS runs (K classes, clips of\n"
        "10 seconds, short videos padded): DIR/<uid>/<uid>_<i>.png, i = k-1 (official naming), the\n"
        "class index (argmax) per pixel, and <uid>_<i>.logits with the K class maps.\n"
        "Store mode under mpirun/srun (N ranks): video i on rank i %% N, which writes its files;\n"
        "rank 0 records the rows in video order (and evaluates): the files and rows of one process.\n"
        "Clip mode: any clip decoded in memory as avs-ingest would, the run's feature-set\n"
        "encoders (random-init ones are rebuilt from their seed; sets made from weight files need\n"
        "the same files: --visual/--audio/--audio-head, hash-checked), consensus, CCAM, head; the\n"
        "clip re-encoded (H.264, same size, rate and frame count, audio kept) with every second's\n"
        "mask drawn on its frames; --frames DIR also writes DIR/<k>.png overlays.\n"
        "\n"
        "options:\n"
        "  --run NAME           the avs-train run\n"
        "  --checkpoint W       best (default, by val mIoU) or last\n"
        "  --split S            store mode: split to predict (default test)\n"
        "  --subset S           store mode: s4, ms3 or avss (default the run's subset)\n"
        "  --out DIR            store mode: output folder\n"
        "  --record[=METHOD]    store mode: evaluate and record (method default: the run name;\n"
        "                       binary runs: AVSS runs are evaluated with avs-eval --semantic)\n"
        "  --color              AVSS runs: RGB PNGs in the official palette instead of 8-bit\n"
        "                       class indices\n"
        "  --clip IN, -o OUT    clip mode: input clip and output video (.mp4)\n"
        "  --frames DIR         clip mode: also overlay PNGs per second\n"
        "  --alpha A, --beta B  the C3IM exponents asked for: must be those of the run's\n"
        "                       feature set (refused otherwise); left out: the set's\n"
        "  -j N, --root DIR, --db PATH, -q, -h, --help, --version\n"
        AVS_CLI_DEVICE_USAGE
        "exit status: 0 done, 1 usage error, 3 fatal.\n");
}

enum { OPT_RUN = AVS_OPT_FIRST_TOOL, OPT_CKPT, OPT_SPLIT, OPT_SUBSET, OPT_OUT, OPT_RECORD,
       OPT_CLIP, OPT_FRAMES, OPT_VISUAL, OPT_AUDIO, OPT_HEAD, OPT_COLOR, OPT_ALPHA, OPT_BETA };

struct args {
    struct avs_predict_opts o;
    const char *clip, *video_out, *frames;
    int json;
};

static int tool_option(void *ctx, int c, const char *arg)
{
    struct args *a = ctx;
    switch (c) {
    case OPT_RUN: a->o.run = arg; return 0;
    case OPT_CKPT:
        if (strcmp(arg, "best") && strcmp(arg, "last")) {
            fprintf(stderr, "avs-predict: --checkpoint %s: use best or last\n", arg);
            return -1;
        }
        a->o.checkpoint = arg;
        return 0;
    case OPT_SPLIT: a->o.split = arg; return 0;
    case OPT_SUBSET: a->o.subset = arg; return 0;
    case OPT_OUT: a->o.out = arg; return 0;
    case OPT_RECORD: a->o.record = arg ? arg : ""; return 0;
    case OPT_COLOR: a->o.color = 1; return 0;
    case OPT_CLIP: a->clip = arg; return 0;
    case 'o': a->video_out = arg; return 0;
    case OPT_FRAMES: a->frames = arg; return 0;
    case OPT_VISUAL: a->o.files.visual = arg; return 0;
    case OPT_AUDIO: a->o.files.audio = arg; return 0;
    case OPT_HEAD: a->o.files.audio_head = arg; return 0;
    case OPT_ALPHA:
    case OPT_BETA: {
        struct avs_err e;
        int al = c == OPT_ALPHA;
        if (avs_c3im_parse(al ? "--alpha" : "--beta", arg, al ? &a->o.alpha : &a->o.beta, &e)) {
            fprintf(stderr, "avs-predict: %s\n", e.msg);
            return -1;
        }
        *(al ? &a->o.alpha_given : &a->o.beta_given) = 1;
        return 0;
    }
    case AVS_OPT_JSON: a->json = 1; return 0;
    default: usage(stderr); return -1;
    }
}

static int store_mode(struct args *a, int quiet)
{
    struct avs_predict_stats st;
    struct avs_err err = {0};
    if (a->o.record && !*a->o.record)
        a->o.record = a->o.run;
    avs_ranks_exit_on_lost("the rows recorded so far stay valid: run the same command again to "
                           "predict every video");
    if (avs_predict_store(&a->o, &st, &err)) {
        fprintf(stderr, "avs-predict: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (avs_ranks_rank() > 0)
        return AVS_EXIT_OK;
    if (a->json)
        printf("{\"videos\": %d, \"seconds\": %d, \"skipped\": %d, \"out\": \"%s\"%s", st.videos,
               st.seconds, st.skipped, st.out, a->o.record ? "" : "}\n");
    if (a->json && a->o.record)
        printf(", \"miou\": %.6f, \"fscore\": %.6f}\n", st.miou, st.fscore);
    if (!a->json && !quiet) {
        printf("predicted %d videos (%d seconds) into %s\n", st.videos, st.seconds, st.out);
        if (st.skipped)
            printf("skipped %d videos without features in the run's feature set\n", st.skipped);
        if (a->o.record)
            printf("recorded \"%s\": mIoU %.4f  F %.4f\n", a->o.record, st.miou, st.fscore);
    }
    return AVS_EXIT_OK;
}

static int predict_main(int argc, char **argv);

int main(int argc, char **argv)
{
    avs_ops_tune_process(argv); /* may exec this program again: before MPI starts */
    if (avs_ranks_init(&argc, &argv))
        return AVS_EXIT_FATAL;
    int rc = predict_main(argc, argv);
    avs_ranks_finalize();
    return rc;
}

static int predict_main(int argc, char **argv)
{
    static const struct option lo[] = {
        AVS_CLI_LONG_OPTIONS,
        AVS_CLI_DEVICE_OPTION,
        {"run", required_argument, 0, OPT_RUN},
        {"checkpoint", required_argument, 0, OPT_CKPT},
        {"split", required_argument, 0, OPT_SPLIT},
        {"subset", required_argument, 0, OPT_SUBSET},
        {"out", required_argument, 0, OPT_OUT},
        {"record", optional_argument, 0, OPT_RECORD},
        {"color", no_argument, 0, OPT_COLOR},
        {"clip", required_argument, 0, OPT_CLIP},
        {"frames", required_argument, 0, OPT_FRAMES},
        {"visual", required_argument, 0, OPT_VISUAL},
        {"audio", required_argument, 0, OPT_AUDIO},
        {"audio-head", required_argument, 0, OPT_HEAD},
        {"json", no_argument, 0, AVS_OPT_JSON},
        {"alpha", required_argument, 0, OPT_ALPHA},
        {"beta", required_argument, 0, OPT_BETA},
        {0, 0, 0, 0},
    };
    struct avs_cli cli;
    struct args a;
    memset(&a, 0, sizeof a);
    avs_cli_defaults(&cli);
    int rc = avs_cli_parse(&cli, argc, argv, "j:hqo:", lo, tool_option, &a, usage, "avs-predict");
    if (rc >= 0)
        return rc;
    if (optind != argc || !a.o.run || (a.clip && !a.video_out) || (!a.clip && (a.video_out || a.frames))) {
        fprintf(stderr, "avs-predict: %s\n", !a.o.run ? "--run NAME is required"
                        : optind != argc ? "unexpected arguments"
                        : "clip mode needs both --clip IN and -o OUT.mp4 (--frames only with --clip)");
        return AVS_EXIT_USAGE;
    }
    if (a.clip && avs_ranks_size() > 1) { /* one clip is one process's work */
        if (avs_ranks_rank() == 0)
            fprintf(stderr, "avs-predict: started as %d ranks: --clip predicts one clip in one "
                    "process: run it without mpirun/srun (ranks share out the store's videos: "
                    "store mode)\n", avs_ranks_size());
        return AVS_EXIT_USAGE;
    }
    cli.quiet = cli.quiet || avs_ranks_rank() > 0; /* rank 0 speaks for the job */
    struct avs_err nerr;
    if (avs_name_check(a.o.run, "--run", &nerr)) {
        fprintf(stderr, "avs-predict: %s\n", nerr.msg);
        return AVS_EXIT_USAGE;
    }
    {
        struct avs_err derr;
        char dev[32];
        if (avs_backend_setup("avs-predict", avs_ranks_device(cli.device, dev, sizeof dev),
                              cli.precision, cli.jobs, cli.quiet, &derr)) {
            fprintf(stderr, "avs-predict: %s\n", derr.msg);
            return AVS_EXIT_USAGE;
        }
    }
    a.o.root = cli.root;
    a.o.db_path = cli.db;
    a.o.progress = !cli.quiet;
    if (!a.clip)
        return store_mode(&a, cli.quiet);
    avs_av_log_init();
    struct avs_err err = {0};
    if (avs_predict_clip(&a.o, a.clip, a.video_out, a.frames, &err)) {
        fprintf(stderr, "avs-predict: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (!cli.quiet)
        printf("wrote %s%s%s\n", a.video_out, a.frames ? " and overlays in " : "", a.frames ? a.frames : "");
    return AVS_EXIT_OK;
}
