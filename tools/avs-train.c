/* avs-train: train C3N on a store's feature set. See --help and train/train.h. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/cli.h"
#include "core/common.h"
#include "core/names.h"
#include "dist/ranks.h"
#include "backend/ops.h"
#include "model/c3im.h"
#include "train/train.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-train [options] --run NAME --subset s4|ms3|avss [--features SET] [--mode frozen|finetune]\n"
        "                 [--switches AF,CC|AF,CC-V|AF|CC|CC-V|none] [--epochs E] [--batch B]\n"
        "                 [--lr 1e-4] [--seed S] [--width D] [--resume]\n"
        "                 [--model c3n|tpavi] [--av-match L]\n"
        "       avs-train [options] --run NAME --import W.safetensors --subset s4|ms3|avss\n"
        "                 [--features SET] [--switches S] [--width 256]\n"
        "\n"
        "Trains C3N (CCAM + ASPP/TPAVI head + decoder) on the train split of the subset, from the\n"
        "feature set's cached stage maps, Grad-CAM weights and audio embeddings (mode frozen: the\n"
        "backbone stays as avs-features ran it; mode finetune, the paper's recipe: the set's PVTv2\n"
        "or Swin is trained too, with the store's frames, flips and colour jitter, C3IM and Grad-CAM\n"
        "recomputed every step). Batches of whole videos (5 seconds); BCE + Dice\n"
        "(S4: frame 1 only, MS3: every frame); Adam; S4 decays lr linearly to lr/10 over E-5\n"
        "epochs. After every epoch: val-split mIoU/F with the evaluator's code, a run_epochs row,\n"
        "ROOT/runs/NAME/best.safetensors when val mIoU improved, last.safetensors always (with\n"
        "the optimiser state and the position in the epoch).\n"
        "\n"
        "options:\n"
        "  --run NAME          run name (runs.name; folder ROOT/runs/NAME)\n"
        "  --subset S          s4, ms3 or avss: which annotations to learn (default s4);\n"
        "                      avss: 10 frames per clip (v1 videos padded with zero features),\n"
        "                      K-class output (K = the store's AVSS classes), pixel-wise\n"
        "                      cross-entropy, validation by the official AVSS mIoU (frozen only)\n"
        "  --features SET      feature set (default: the only complete one)\n"
        "  --mode M            frozen (default: backbone frozen, features from the cache) or\n"
        "                      finetune (backbone trained; ~35%% more time per step at b0)\n"
        "  --visual [pvt_v2_bX=]FILE, --audio [vggish=|panns_cnn14=]FILE, --audio-head FILE\n"
        "                      finetune on a set made from weight files: the same files\n"
        "                      (hash-checked against the set); random-init sets need none\n"
        "  --model M           c3n (default) or tpavi: AVSBench's baseline (the TPAVI paper's\n"
        "                      model: Classifier_Module necks, TPAVI, the same decoder, no\n"
        "                      C3IM/CCAM, BCE loss, on MS3 + --av-match; switches AF),\n"
        "                      recorded as model TPAVI (Table I's baseline rows); with --mode\n"
        "                      finetune its backbone is trained as C3N's is (same flips and\n"
        "                      colour jitter)\n"
        "  --av-match L        --model tpavi on ms3: weight of AVSBench's audio-visual matching\n"
        "                      loss (KL of the predicted-mask-pooled TPAVI stage maps to the\n"
        "                      audio; the official MS3 script's --masked_av_flag --kl_flag),\n"
        "                      added to BCE; default 0.5 (its --lambda_1), 0 off. Recorded in\n"
        "                      the run's config (\"av_match\"); S4 and C3N refuse it\n"
        "  --switches S        ablation switches (paper Table II): AF = audio through TPAVI,\n"
        "                      CC = CCAM with the consensus class, CC-V = with the top visual\n"
        "                      class, none (default AF,CC)\n"
        "  --epochs E          default 15;  --batch B videos per step, default 4\n"
        "  --lr LR             Adam learning rate, default 1e-4\n"
        "  --seed S            initialisation, data order and flips (default 1)\n"
        "  --width D           head width (official 256; smaller for quick runs)\n"
        "  --alpha A, --beta B the C3IM exponents the run asks for (paper Table III): must be\n"
        "                      those the feature set was made with (avs-features --alpha/--beta;\n"
        "                      default 0.1/0.1), else refused; left out: the set's. Recorded in\n"
        "                      the run's config (\"c3im\")\n"
        "  --resume            continue the run from last.safetensors (bit-identical to an\n"
        "                      uninterrupted run); recorded options apply, given ones must agree\n"
        "  --max-steps N       stop after N steps as if interrupted (checkpoint written)\n"
        "  -j, --jobs N        threads (default: all cores)\n"
        AVS_CLI_DEVICE_USAGE
        "  --json              a summary as JSON on stdout (no per-epoch lines)\n"
        "  --import W          no training: a run from a head trained elsewhere (official C3N\n"
        "                      checkpoint, .pth as saved or .safetensors; official names, other\n"
        "                      tensors ignored), for avs-predict / avs-eval; the feature set must\n"
        "                      come from the same backbone weights\n"
        "  --root DIR, --db PATH, -q, --quiet, -h, --help, --version\n"
        "\n"
        "SIGINT/SIGTERM: the current step finishes, last.safetensors is written, exit 130/143;\n"
        "continue with --resume.\n"
        "exit status: 0 done (or stopped by --max-steps), 1 usage error, 3 fatal, 130/143 interrupted.\n");
}

enum { OPT_RUN = AVS_OPT_FIRST_TOOL, OPT_SUBSET, OPT_FEATURES, OPT_MODE, OPT_SWITCHES, OPT_EPOCHS,
       OPT_BATCH, OPT_LR, OPT_SEED, OPT_WIDTH, OPT_RESUME, OPT_MAX_STEPS, OPT_VISUAL, OPT_AUDIO,
       OPT_HEAD, OPT_IMPORT, OPT_MODEL, OPT_ALPHA, OPT_BETA, OPT_AV_MATCH };

/* Under a launcher a signal usually means another rank died (mpirun stops the others): say so
 * at once, since this rank may be killed while it waits for the dead one. */
static const char *lost_msg[65];

static void on_signal(int signo)
{
    avs_train_request_stop(signo);
    if (signo > 0 && signo < 65 && lost_msg[signo]) {
        ssize_t w = write(2, lost_msg[signo], strlen(lost_msg[signo]));
        (void)w;
    }
}

static int parse_int(const char *s, int *v, const char *opt)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (*s == 0 || *end || x < 0 || x > 1000000000) {
        fprintf(stderr, "avs-train: %s %s: not a number >= 0\n", opt, s);
        return -1;
    }
    *v = (int)x;
    return 0;
}

static const char *import_path;
static int json;

static int tool_option(void *ctx, int c, const char *arg)
{
    struct avs_train_opts *o = ctx;
    char *end;
    switch (c) {
    case OPT_RUN: o->run = arg; return 0;
    case OPT_SUBSET: o->subset = arg; o->given |= AVS_TRAIN_GIVEN_SUBSET; return 0;
    case OPT_FEATURES: o->features = arg; o->given |= AVS_TRAIN_GIVEN_FEATURES; return 0;
    case OPT_MODE: o->mode = arg; o->given |= AVS_TRAIN_GIVEN_MODE; return 0;
    case OPT_MODEL:
        o->given |= AVS_TRAIN_GIVEN_MODEL;
        if (strcasecmp(arg, "c3n") && strcasecmp(arg, "tpavi")) {
            fprintf(stderr, "avs-train: --model %s: use c3n or tpavi\n", arg);
            return -1;
        }
        o->avsbench = !strcasecmp(arg, "tpavi");
        return 0;
    case OPT_SWITCHES:
        o->given |= AVS_TRAIN_GIVEN_SWITCHES;
        if (avs_switches_parse(&o->sw, arg)) {
            fprintf(stderr, "avs-train: --switches %s: use AF,CC | AF,CC-V | AF | CC | CC-V | none\n", arg);
            return -1;
        }
        return 0;
    case OPT_EPOCHS: o->given |= AVS_TRAIN_GIVEN_EPOCHS; return parse_int(arg, &o->epochs, "--epochs");
    case OPT_BATCH: o->given |= AVS_TRAIN_GIVEN_BATCH; return parse_int(arg, &o->batch, "--batch");
    case OPT_WIDTH: o->given |= AVS_TRAIN_GIVEN_WIDTH; return parse_int(arg, &o->width, "--width");
    case OPT_MAX_STEPS: return parse_int(arg, &o->max_steps, "--max-steps");
    case OPT_LR:
        o->given |= AVS_TRAIN_GIVEN_LR;
        o->lr = strtod(arg, &end);
        if (*end || !(o->lr > 0)) {
            fprintf(stderr, "avs-train: --lr %s: need a number > 0\n", arg);
            return -1;
        }
        return 0;
    case OPT_SEED:
        o->given |= AVS_TRAIN_GIVEN_SEED;
        o->seed = strtoull(arg, &end, 10);
        if (*end || !*arg) {
            fprintf(stderr, "avs-train: --seed %s: need an unsigned integer\n", arg);
            return -1;
        }
        return 0;
    case OPT_AV_MATCH:
        o->given |= AVS_TRAIN_GIVEN_AV_MATCH;
        o->av_match = strtod(arg, &end);
        if (*end || !*arg || !(o->av_match >= 0) || !isfinite(o->av_match)) {
            fprintf(stderr, "avs-train: --av-match %s: need a number >= 0\n", arg);
            return -1;
        }
        return 0;
    case OPT_RESUME: o->resume = 1; return 0;
    case AVS_OPT_JSON: json = 1; return 0;
    case OPT_IMPORT: import_path = arg; return 0;
    case OPT_VISUAL: o->files.visual = strchr(arg, '=') ? strchr(arg, '=') + 1 : arg; return 0;
    case OPT_AUDIO: o->files.audio = strchr(arg, '=') ? strchr(arg, '=') + 1 : arg; return 0;
    case OPT_HEAD: o->files.audio_head = arg; return 0;
    case OPT_ALPHA:
    case OPT_BETA: {
        struct avs_err e;
        int al = c == OPT_ALPHA;
        if (avs_c3im_parse(al ? "--alpha" : "--beta", arg, al ? &o->alpha : &o->beta, &e)) {
            fprintf(stderr, "avs-train: %s\n", e.msg);
            return -1;
        }
        o->given |= al ? AVS_TRAIN_GIVEN_ALPHA : AVS_TRAIN_GIVEN_BETA;
        return 0;
    }
    default: usage(stderr); return -1;
    }
}

static int train_main(int argc, char **argv);

int main(int argc, char **argv)
{
    avs_ops_tune_process(argv); /* may exec this program again: before MPI starts */
    if (avs_ranks_init(&argc, &argv))
        return AVS_EXIT_FATAL;
    int rc = train_main(argc, argv);
    avs_ranks_finalize();
    return rc;
}

static int train_main(int argc, char **argv)
{
    static const struct option lo[] = {
        AVS_CLI_LONG_OPTIONS,
        AVS_CLI_DEVICE_OPTION,
        {"run", required_argument, 0, OPT_RUN},
        {"subset", required_argument, 0, OPT_SUBSET},
        {"features", required_argument, 0, OPT_FEATURES},
        {"mode", required_argument, 0, OPT_MODE},
        {"switches", required_argument, 0, OPT_SWITCHES},
        {"epochs", required_argument, 0, OPT_EPOCHS},
        {"batch", required_argument, 0, OPT_BATCH},
        {"lr", required_argument, 0, OPT_LR},
        {"seed", required_argument, 0, OPT_SEED},
        {"width", required_argument, 0, OPT_WIDTH},
        {"resume", no_argument, 0, OPT_RESUME},
        {"max-steps", required_argument, 0, OPT_MAX_STEPS},
        {"visual", required_argument, 0, OPT_VISUAL},
        {"audio", required_argument, 0, OPT_AUDIO},
        {"audio-head", required_argument, 0, OPT_HEAD},
        {"json", no_argument, 0, AVS_OPT_JSON},
        {"import", required_argument, 0, OPT_IMPORT},
        {"model", required_argument, 0, OPT_MODEL},
        {"alpha", required_argument, 0, OPT_ALPHA},
        {"beta", required_argument, 0, OPT_BETA},
        {"av-match", required_argument, 0, OPT_AV_MATCH},
        {0, 0, 0, 0},
    };
    struct avs_cli cli;
    struct avs_train_opts o;
    avs_train_opts_default(&o);
    avs_cli_defaults(&cli);
    int rc = avs_cli_parse(&cli, argc, argv, "j:hq", lo, tool_option, &o, usage, "avs-train");
    if (rc >= 0)
        return rc;
    int quiet = cli.quiet || json;
    if (optind != argc || !o.run) {
        if (!o.run)
            fprintf(stderr, "avs-train: --run NAME is required\n");
        usage(stderr);
        return AVS_EXIT_USAGE;
    }
    if (o.avsbench && (o.given & AVS_TRAIN_GIVEN_SWITCHES) && (!o.sw.af || o.sw.cc || o.sw.ccv)) {
        fprintf(stderr, "avs-train: --model tpavi is AVSBench's model (audio through TPAVI, no "
                "C3IM/CCAM): its switches are AF; leave --switches out\n");
        return AVS_EXIT_USAGE;
    }
    if ((o.given & AVS_TRAIN_GIVEN_AV_MATCH) && !o.avsbench &&
        (!o.resume || (o.given & AVS_TRAIN_GIVEN_MODEL))) { /* resumed: the record says */
        fprintf(stderr, "avs-train: --av-match is the audio-visual matching loss of AVSBench's "
                "baseline (--model tpavi); C3N trains with BCE + Dice: leave --av-match out\n");
        return AVS_EXIT_USAGE;
    }
    if (o.avsbench)
        o.sw = (struct avs_switches){1, 0, 0};
    struct avs_err nerr;
    if (avs_name_check(o.run, "--run", &nerr)) { /* it names the folder runs/<run> */
        fprintf(stderr, "avs-train: %s\n", nerr.msg);
        return AVS_EXIT_USAGE;
    }
    {
        struct avs_err derr;
        char dev[32];
        if (avs_backend_setup("avs-train", avs_ranks_device(cli.device, dev, sizeof dev), cli.precision,
                              cli.jobs, cli.quiet || avs_ranks_rank() > 0, &derr)) {
            fprintf(stderr, "avs-train: %s\n", derr.msg);
            return AVS_EXIT_USAGE;
        }
    }
    o.root = cli.root;
    o.db_path = cli.db;
    o.progress = !quiet;
    o.verbose = !quiet;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (avs_ranks_size() > 1) {
        lost_msg[SIGTERM] = avs_strdup(avs_ranks_lost_message(SIGTERM));
        lost_msg[SIGINT] = avs_strdup(avs_ranks_lost_message(SIGINT));
    }
    struct avs_err err = {0};
    if (import_path) {
        if (avs_train_import(&o, import_path, &err)) {
            fprintf(stderr, "avs-train: %s\n", err.msg);
            return AVS_EXIT_FATAL;
        }
        return AVS_EXIT_OK;
    }
    struct avs_train_result res;
    memset(&res, 0, sizeof res);
    rc = avs_train_run(&o, &res, &err);
    if (rc >= 0 && json && avs_ranks_rank() == 0)
        printf("{\"run\": \"%s\", \"status\": \"%s\", \"epochs_done\": %d, \"epochs\": %d, "
               "\"best_epoch\": %d, \"best_val_miou\": %.6f, \"last_train_loss\": %.6f}\n", o.run,
               rc == 0 && res.epochs_done >= o.epochs ? "done" : "interrupted", res.epochs_done,
               o.epochs, res.best_epoch, res.best_miou, res.last_loss);
    if (rc < 0) {
        if (avs_ranks_size() > 1)
            fprintf(stderr, "avs-train: rank %d of %d: %s\n", avs_ranks_rank(), avs_ranks_size(), err.msg);
        else
            fprintf(stderr, "avs-train: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (rc == AVS_TRAIN_INTERRUPTED && avs_ranks_rank() > 0)
        return avs_train_stop_signal() ? 128 + avs_train_stop_signal() : AVS_EXIT_OK;
    if (rc == AVS_TRAIN_INTERRUPTED) {
        int sig = avs_train_stop_signal();
        fprintf(stderr, "avs-train: %s: checkpoint written; continue with --resume --run %s\n",
                sig ? "interrupted" : "stopped after --max-steps", o.run);
        return sig ? 128 + sig : AVS_EXIT_OK;
    }
    return AVS_EXIT_OK;
}
