/* eval/png_in.h (internal to eval/): the libpng low-level read set-up both mask readers share
 * (eval/png_index.c: masks as values or palette indices; eval/avss_read.c: AVSS labels as
 * colours). The error callback writes libpng's message into msg and longjmps to the caller's
 * setjmp(png_jmpbuf(in->png)); warnings are dropped.
 *
 *   struct avs_png_in in;
 *   if (avs_png_in_open(&in, path, &err)) return -1;       opened, signature checked
 *   if (setjmp(png_jmpbuf(in.png))) ...;  png_read_info(in.png, in.info); ...
 *   avs_png_in_close(&in);
 */
#ifndef AVS_EVAL_PNG_IN_H
#define AVS_EVAL_PNG_IN_H

#include <png.h>
#include <stdio.h>

#include "core/common.h"

struct avs_png_in {
    FILE *f;
    png_structp png;
    png_infop info;
    char msg[512]; /* libpng's or the reader's own reason, for "cannot read PNG ...: msg" */
};

/* Open path, check the PNG signature, create the read structs (init_io done). 0, or -1 with
 * err naming the file (nothing left open). */
int avs_png_in_open(struct avs_png_in *in, const char *path, struct avs_err *err);
void avs_png_in_close(struct avs_png_in *in);
/* 1 if the open file is large enough for a w x h image (avs_png_size_plausible), else 0 with
 * in->msg saying so: checked before allocating the pixels. */
int avs_png_in_holds(struct avs_png_in *in, png_uint_32 w, png_uint_32 h);

#endif
