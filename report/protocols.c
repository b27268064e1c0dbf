/* report/protocols.c: what each evaluation protocol computes, in one table (docs/avss.md
 * "AVSS metrics" and "S4/MS3 protocols"; DESIGN §4), and the page section built from the
 * protocols its rows carry. The texts are HTML written here, never data. */
#include <string.h>

#include "report/board.h"

struct protocol_text {
    const char *name;  /* metrics.protocol */
    const char *brief; /* one line for table notes */
    const char *html;  /* the paragraph: what it averages, how empty frames/absent classes count */
};

static const struct protocol_text TEXTS[] = {
    {"official", "S4/MS3 as AVSBench's test.py: mean over frames; F per group",
     "S4/MS3, as AVSBench's <code>test.py</code> (<code>mask_iou</code>, "
     "<code>Eval_Fmeasure</code>). <b>mIoU</b> is the mean over all evaluated frames of the "
     "frame's IoU (P = p &gt; 0.5; IoU = |P&and;G| / (|P&or;G| + 1e-7)); a frame whose ground "
     "truth is empty scores the fraction of its pixels predicted background, so empty frames "
     "count in mIoU. <b>F</b> (&beta;&sup2; = 0.3, 255 thresholds) is computed per group of "
     "frames: the group's score is the maximum over thresholds of the mean F curve over its "
     "frames with non-empty ground truth (0 when all are empty), and F is the mean over groups. "
     "The grouping is part of the protocol (one video per group, avs-eval's default, or K "
     "frames as the official batch-of-20 <code>test.sh</code>), so each grouping is ranked "
     "apart. Empty-GT frames do not enter F."},
    {"per-frame", "S4/MS3: mean over frames of each frame's own best F",
     "S4/MS3, our protocol. <b>mIoU</b> as <i>official</i>: the mean over all frames, an empty "
     "ground truth scoring the fraction of pixels predicted background. <b>F</b> is the mean "
     "over the frames with non-empty ground truth of each frame's own maximum over the 255 "
     "thresholds (a group of one frame); frames with empty ground truth are left out of F. "
     "No grouping, so F does not depend on batch or video order."},
    {"pooled", "S4/MS3: pixel counts summed over the dataset",
     "S4/MS3, dataset-level. <b>mIoU</b> here is &Sigma;|P&and;G| / &Sigma;|P&or;G| over all "
     "frames (one ratio, no per-frame mean), so large objects weigh more; a frame with empty "
     "ground truth adds only its false-positive pixels to the union. <b>F</b>: true positives, "
     "predicted and ground-truth pixels summed over all frames at each threshold, F of the "
     "sums, maximum over thresholds; empty-GT frames add their false positives."},
    {"avss-official", "AVSS as AVSBench's avss test.py: 71-class mean, padded frames in",
     "AVSS (AVSBench-semantic), as AVSBench's <code>avss/test.py</code> "
     "(<code>compute_color_metrics.py</code>). Per frame and class c, with the predicted class "
     "the argmax: IoU = inter / (union + 2.2e-16) and F (&beta;&sup2; = 0.3) in float32. For "
     "each class the sums over the frames where the class is predicted or labelled (union &gt; "
     "0) are divided by that frame count; a class that never occurs scores 0. <b>mIoU</b> and "
     "<b>F</b> are the means over <b>all 71 classes</b>, background (index 0) included, so "
     "absent classes pull the mean down. Every video counts 10 frames: v1s/v1m videos are "
     "padded with 5 black frames labelled all background; their predictions are used when "
     "given, otherwise assumed all background (columns <i>padded given / assumed</i>). Label "
     "pixels of no palette colour count as background. The labelled variants in the AVSS table "
     "re-average the same per-class numbers: <i>no-bg</i> over classes 1..70; "
     "<i>official-no-bg</i> is the official code's <code>miou_pc[:-1]</code>, which drops class "
     "70 instead of the background (AVSBench issue #23), reported under that name so it is "
     "never mistaken for no-bg; <i>present</i> over classes with a frame count &gt; 0; "
     "<i>pooled</i> (as CAVP) per class &Sigma; inter / &Sigma; union over all frames, then "
     "the mean over classes with a non-empty union."},
    {"avss-official-real-frames", "AVSS official, padded frames left out",
     "AVSS as <i>avss-official</i>, but only the released frames are evaluated: the 5 padded "
     "black frames of each v1s/v1m video are left out (<code>avs-eval --padded skip</code>). "
     "Class sums, frame counts and the 71-class means are otherwise the same, and so are the "
     "variants. Numbers are lower or higher than avss-official depending on how well a method "
     "predicts background on black frames; the two are never ranked together."},
};

#define N_TEXTS ((int)(sizeof TEXTS / sizeof TEXTS[0]))

static const struct protocol_text *find(const char *name)
{
    for (int i = 0; name && i < N_TEXTS; i++)
        if (!strcmp(TEXTS[i].name, name))
            return &TEXTS[i];
    return NULL;
}

const char *avs_report_protocol_short(const char *protocol)
{
    const struct protocol_text *t = find(protocol);
    return t ? t->brief : "";
}

int avs_report_protocol_rank(const char *protocol)
{
    const struct protocol_text *t = find(protocol);
    return t ? (int)(t - TEXTS) : N_TEXTS;
}

static int on_page(const struct avs_report_board *b, const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (b->r[i].protocol && !strcmp(b->r[i].protocol, name))
            return 1;
    return 0;
}

/* Protocol names on the page that the table does not know (first occurrence order). */
static void unknown_protocols(struct avs_buf *o, const struct avs_report_board *b)
{
    for (int i = 0; i < b->n; i++) {
        const char *p = b->r[i].protocol;
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = strcmp(b->r[j].protocol, p) != 0;
        if (!first || find(p))
            continue;
        avs_buf_puts(o, "<p><b>");
        avs_report_esc(o, p);
        avs_buf_puts(o, "</b>: not a protocol this avs-report version knows; its rows are "
                        "ranked on their own. See the avs-eval that recorded them.</p>\n");
    }
}

void avs_report_protocols_section(struct avs_buf *o, const struct avs_report_board *b)
{
    avs_buf_puts(o, "<h2 id=protocols>How these numbers were computed</h2>\n<p class=note>One "
                    "paragraph per protocol found on this page. Rows are ranked only against "
                    "rows of the same subset and protocol (and, for <i>official</i>, the same "
                    "F grouping): numbers of different protocols measure different things.</p>\n");
    int shown = 0;
    for (int i = 0; i < N_TEXTS; i++) {
        if (!on_page(b, TEXTS[i].name))
            continue;
        avs_buf_printf(o, "<p class=protocol id=\"protocol-%s\"><b>%s</b>: %s</p>\n",
                       TEXTS[i].name, TEXTS[i].name, TEXTS[i].html);
        shown++;
    }
    unknown_protocols(o, b);
    if (!shown && b->n == 0)
        avs_buf_puts(o, "<p>No results recorded yet.</p>\n");
}
