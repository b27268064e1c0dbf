/* core/integrity.h: the checks that keep damaged numbers out of training and evaluation:
 * XXH3-64 checksums (Debian's libxxhash) of the binary files we write and read back (feature
 * cache records, checkpoints), and scans for NaN/Inf in float data as stored on disk.
 *
 *   uint64_t h = avs_xxh3(rec, n, offset);                  seed: e.g. the record's position
 *   int64_t i = avs_nonfinite(rec, n, AVS_FLOAT_F16);       -1: all finite, else the element
 *
 * The scans read raw little-endian bytes (any alignment): a NaN/Inf is an all-ones exponent.
 */
#ifndef AVS_CORE_INTEGRITY_H
#define AVS_CORE_INTEGRITY_H

#include <stddef.h>
#include <stdint.h>

enum avs_float_kind { AVS_FLOAT_F32, AVS_FLOAT_F16, AVS_FLOAT_BF16, AVS_FLOAT_F64 };

uint64_t avs_xxh3(const void *p, size_t n, uint64_t seed);
/* Index of the first NaN or Inf among n values of kind k at p, or -1. */
int64_t avs_nonfinite(const void *p, size_t n, enum avs_float_kind k);
/* The same for host floats. */
int64_t avs_nonfinite_f32(const float *x, size_t n);

#endif
