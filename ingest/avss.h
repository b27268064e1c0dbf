/* ingest/avss.h: the AVSS (AVSBench-semantic) side of ingest, internal to ingest/: reading
 * label2idx.json, one release frame and one colour label, and the change signature of a
 * release folder. The release layout and the store are fixed by docs/avss.md; planning is
 * avs_ingest_plan_avss (ingest.h); writing and indexing stay in run.c and index.c.
 */
#ifndef AVS_INGEST_AVSS_H
#define AVS_INGEST_AVSS_H

#include <stdint.h>

#include "core/image.h"
#include "ingest/index.h"


/* Paths inside a release folder for frame/label i (0-based); free with free(). */
char *avs_ingest_avss_frame_path(const struct avs_ingest_item *it, int i);
char *avs_ingest_avss_label_path(const struct avs_ingest_item *it, int i);
char *avs_ingest_avss_audio_path(const struct avs_ingest_item *it);
/* Frames 0.jpg, 1.jpg, ... that exist in a row (capped by max when max > 0). */
int avs_ingest_avss_count_frames(const struct avs_ingest_item *it, int max);

/* A release frame decoded to RGB (*released, its size) and the model copy at out_w x out_h
 * (bilinear, OpenCV INTER_LINEAR; out_w = 0: the released size) into *model. */
int avs_ingest_avss_frame(const char *path, int out_w, int out_h, struct avs_image *released,
                          struct avs_image *model, struct avs_err *err);

/* A colour label of a frame of size fw x fh: class indices at the released size (*released)
 * and resized NEAREST (PIL's rule) to out_w x out_h (*model; out_w = 0: released size);
 * *unknown = pixels of no palette colour (written as 255). A label of another size than its
 * frame fails, naming both. present[256] (may be NULL): set to 1 for each index seen. */
int avs_ingest_avss_label(const char *path, int n_classes, int fw, int fh, int out_w, int out_h,
                          struct avs_image *released, struct avs_image *model, int64_t *unknown,
                          uint8_t *present, struct avs_err *err);

/* Change signature of a release folder: size, newest mtime and a hash of the listing (name,
 * size, mtime) of its frames, labels, audio.wav and the tree's label2idx.json. */
int avs_ingest_avss_signature(const struct avs_ingest_item *it, struct avs_signature *sig,
                              struct avs_err *err);

#endif
