/* core/pth.h: PyTorch checkpoints (.pth/.pt as torch.save writes them since PyTorch 1.6) read
 * without Python, as if they were safetensors files: avs_st_open (core/safetensors.h) hands any
 * file that starts with a zip signature here, so every --weights/--import takes them.
 *
 *   zip archive (libzip; CRCs checked)
 *   +-- <name>/data.pkl       pickle of the saved object: dicts, tensors = rebuild calls over
 *   |                         persistent-id storages (core/pickle.h: nothing is executed)
 *   +-- <name>/data/<key>     each storage's raw bytes, storage order = <name>/byteorder
 *   +-- <name>/byteorder      "little" | "big" (absent before PyTorch 2.1: little)
 *   +-- <name>/version, ...   not needed
 *
 * The state dict is the top-level dict of tensors, or the dict under "state_dict", "model",
 * "model_state_dict", "net" or "module" (nested up to 4 deep, as tools/convert_checkpoint.py
 * looks); non-tensor entries (an epoch number) are skipped. A "module." prefix that every name
 * carries (DataParallel) is removed. Each tensor is copied out of its storage into memory of its
 * own: views with storage offsets and any non-negative strides are gathered, big-endian data
 * swapped; the dtype stays the storage's (F32/F16/BF16/F64/I64/I32/U8/BOOL), so consumers
 * convert as they do for safetensors (avs_st_read_f32). Refused with a message that names the
 * file: legacy non-zip torch.save files (with the one-line command that re-saves them),
 * TorchScript archives, foreign globals/opcodes in the pickle, truncated or corrupt archives,
 * views outside their storage.
 */
#ifndef AVS_CORE_PTH_H
#define AVS_CORE_PTH_H

#include <stddef.h>

#include "core/common.h"
#include "core/safetensors.h"

enum avs_pth_kind { AVS_PTH_NONE, AVS_PTH_ZIP, AVS_PTH_LEGACY };

/* What the first bytes of a file say: a zip archive, a legacy torch.save pickle, or neither. */
enum avs_pth_kind avs_pth_sniff(const void *data, size_t len);
/* Fill f (its path already set; n, t, map and map_len empty) with the checkpoint in data[len].
 * f->map becomes an anonymous mapping that holds the tensors (avs_st_close unmaps it). */
int avs_pth_load(struct avs_st_file *f, const void *data, size_t len, struct avs_err *err);

#endif
