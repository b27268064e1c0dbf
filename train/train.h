/* train/train.h: C3N training (avs-train) on a store's feature set (DESIGN §6), and the same
 * loop for AVSBench's TPAVI baseline (opts.avsbench, `--model tpavi`: its head, no CCAM, BCE).
 *
 *   struct avs_train_opts o;  avs_train_opts_default(&o);
 *   o.root = "avsdata"; o.run = "s4-b0"; o.subset = "s4"; o.features = "demo-b0-random1";
 *   int rc = avs_train_run(&o, &err);      0 done, 4 interrupted (checkpoint written), -1 fatal
 *
 * One step = a batch of whole videos (T = 5 seconds each): the cached stage maps go through
 * CCAM with the Grad-CAM weights of the chosen switch (CC: consensus class, CC-V: top visual
 * class, none: no CCAM), the head (ASPP, TPAVI with the audio embedding unless AF is off,
 * decoder), BCE + Dice against the masks (S4: frame 1 only; MS3: every frame), backward, Adam
 * (--model tpavi: BCE alone, plus on MS3 lambda x AVSBench's audio-visual matching loss).
 * Every epoch: validation with the evaluator's code (eval/eval.h) on the val split, a
 * run_epochs row, best.safetensors when val mIoU improved, last.safetensors always.
 *
 * finetune mode (the paper's recipe): the visual backbone (PVTv2, Swin or ResNet-50, rebuilt
 * from the feature set's recorded encoders) is trained too: per step the store's frames
 * (per-video flip, per-frame colour jitter) go through the backbone forward, C3IM on the
 * current visual logits (cached audio logits, S from the index), the Grad-CAM pass, CCAM +
 * head, and the full backward into the backbone, which gets its own Adam step. The baseline
 * (avsbench) fine-tunes the same way minus C3IM, Grad-CAM and CCAM: the gradient of its
 * neck's inputs (model/c3n_neck.c) is the backbone's dstage. It keeps C3N's flips and colour
 * jitter, a deviation (AVSBench's dataloader does not augment). The backbone's weights and
 * optimiser state are in runs/<run>/backbone-<adam step>.safetensors (written before
 * last.safetensors, which names the step, so a crash between the two leaves a consistent pair)
 * and backbone_best.safetensors. VGGish stays frozen (AVSBench freezes the audio backbone).
 *
 * Determinism: the data order of epoch e and every random choice (flips) are pure functions
 * of (seed, e, position), the head's reductions are thread-count independent, and the
 * checkpoint holds parameters, BatchNorm buffers, Adam moments and step, the position inside
 * the epoch and the partial loss sum: `--resume` continues bit-identically.
 */
#ifndef AVS_TRAIN_TRAIN_H
#define AVS_TRAIN_TRAIN_H

#include <stdint.h>

#include "core/common.h"
#include "features/features.h"
#include "model/c3n.h"

struct avs_train_opts {
    const char *root, *db_path;
    const char *run;          /* run name (runs.name, folder runs/<run>/) */
    const char *subset;       /* "s4" or "ms3" */
    const char *features;     /* feature set; NULL: the only complete set of the store */
    const char *mode;         /* "frozen" (default) or "finetune" */
    struct avs_switches sw;   /* default AF,CC */
    int avsbench;             /* --model tpavi: AVSBench's baseline (the TPAVI paper's model:
                                 model/c3n_head.h cfg.avsbench; switches AF, no C3IM/CCAM);
                                 frozen or finetune */
    double av_match;          /* --av-match: weight (lambda_1) of AVSBench's MS3 audio-visual
                                 matching loss added to the baseline's BCE (model/c3n_head.h
                                 avs_c3n_head_avmatch); a new --model tpavi run on ms3 takes
                                 0.5 (the official MS3 script's) unless given; 0: off */
    int epochs, batch;        /* default 15, 4 */
    double lr;                /* default 1e-4 */
    uint64_t seed;            /* default 1 */
    int width;                /* head width D (official 256); TPAVI inner = D/2, output_conv D/2 */
    int resume;
    int progress;             /* progress bar on a terminal */
    int verbose;              /* one line per epoch on stdout */
    int jobs;                 /* threads, 0 = all cores */
    int max_steps;            /* stop (as if interrupted) after this many steps; 0 = no limit */
    struct avs_enc_files files; /* finetune: the set's weight files (sets not made random-init) */
    double alpha, beta;       /* C3IM exponents asked for (with AVS_TRAIN_GIVEN_ALPHA/BETA): must be
                                 the feature set's (its targets CC were made with them); finetune
                                 mode recomputes CC with the set's every step */
    unsigned given;           /* AVS_TRAIN_GIVEN_* bits: options given on the command line */
};

enum {
    AVS_TRAIN_GIVEN_SUBSET = 1, AVS_TRAIN_GIVEN_FEATURES = 2, AVS_TRAIN_GIVEN_MODE = 4,
    AVS_TRAIN_GIVEN_SWITCHES = 8, AVS_TRAIN_GIVEN_EPOCHS = 16, AVS_TRAIN_GIVEN_BATCH = 32,
    AVS_TRAIN_GIVEN_LR = 64, AVS_TRAIN_GIVEN_SEED = 128, AVS_TRAIN_GIVEN_WIDTH = 256,
    AVS_TRAIN_GIVEN_MODEL = 512, AVS_TRAIN_GIVEN_ALPHA = 1024, AVS_TRAIN_GIVEN_BETA = 2048,
    AVS_TRAIN_GIVEN_AV_MATCH = 4096
};

#define AVS_TRAIN_INTERRUPTED 4

struct avs_train_result {
    int epochs_done;     /* epochs finished (of opts.epochs) */
    int best_epoch;      /* 1-based, 0: none */
    double best_miou;    /* best val mIoU (-1: none) */
    double last_loss;    /* mean train loss of the last finished epoch */
    char dir[4096];      /* runs/<run> */
};

void avs_train_opts_default(struct avs_train_opts *o);
/* res may be NULL. */
int avs_train_run(const struct avs_train_opts *o, struct avs_train_result *res, struct avs_err *err);
/* A run made from weights trained elsewhere (an official C3N/AVSBench checkpoint converted with
 * tools/convert_checkpoint.py, or another run's best): the head's tensors by their official
 * names ("module." stripped; other tensors, e.g. the backbones', ignored and counted) for the
 * model that o->features, o->width and o->sw describe, written as runs/<run>/best.safetensors
 * and recorded with status 'imported' and the file's name and hash, so avs-predict evaluates it
 * like a trained run. The feature set must come from the same backbone weights. */
int avs_train_import(const struct avs_train_opts *o, const char *weights, struct avs_err *err);
/* Ask a running avs_train_run to stop after the current step (async-signal-safe). */
void avs_train_request_stop(int signo);
/* The signal that stopped the last run (0: none). */
int avs_train_stop_signal(void);

/* The learning rate of epoch e (0-based) of E: S4 decays linearly from lr to lr/10 over the
 * first E-5 epochs, then stays; MS3 keeps lr. */
double avs_train_lr(const char *subset, double lr, int e, int E);

#endif
