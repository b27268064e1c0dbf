/* predict/classes.h: avs-predict's files for a K-class (AVSS) run, one frame at a time
 * (internal to predict/):
 *   <dir>/<uid>_<i>.png     i = k - 1 (the official save_color_mask naming): 8-bit gray class
 *                           indices (argmax of the logits, first index on ties), or with
 *                           color != 0 RGB in the official palette (docs/avss.md)
 *   <dir>/<uid>_<i>.logits  eval/eval.h's format with byte 28 = K, data [K][H][W] float32
 */
#ifndef AVS_PREDICT_CLASSES_H
#define AVS_PREDICT_CLASSES_H

#include "core/common.h"

/* x [K,H,W] (host) as <uid>_<k-1>.png and .logits in folder dir, written through wdir (the
 * same folder opened confined, core/fs.h: avs_fs_fd_path). *png_path (malloc'd) names the PNG
 * written under dir. */
int avs_predict_write_classes(const char *wdir, const char *dir, const char *uid, int k,
                              const float *x, int K, int W, int H, int color, char **png_path,
                              struct avs_err *err);

#endif
