/* bench/fuzz/fuzz_avsbench.c: the AVSBench trees' metadata through ingest's planner
 * (ingest/plan.c, ingest/avss.c), as `avs-ingest --avsbench DIR` reads them. The first byte
 * picks the file the rest of the input becomes: s4_meta_data.csv, ms3_meta_data.csv, or the
 * AVSS metadata.csv next to a valid three-class label2idx.json. */
#include "bench/fuzz/fuzz.h"
#include "ingest/ingest.h"

static const char *const FILES[] = {"s4_meta_data.csv", "ms3_meta_data.csv", "metadata.csv"};

int avs_fuzz_avsbench(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_avsbench(const uint8_t *data, size_t size, struct avs_err *err)
{
    if (size < 1)
        return avs_err_set(err, "fuzz input: empty (the first byte picks the file)");
    int which = data[0] % 3;
    static const char classes[] = "{\"background\": 0, \"dog\": 1, \"guitar\": 2}";
    for (int i = 0; i < 3; i++) {
        char *p = avs_fs_join(avs_fuzz_tmpdir(), FILES[i]);
        unlink(p); /* only the picked file is there */
        free(p);
    }
    if (which == 2)
        avs_fuzz_file("label2idx.json", (const uint8_t *)classes, sizeof classes - 1);
    avs_fuzz_file(FILES[which], data + 1, size - 1);
    struct avs_ingest_plan plan = {0};
    int rc = avs_ingest_plan_avsbench(&plan, avs_fuzz_tmpdir(), err);
    for (size_t i = 0; i < plan.n && rc == 0; i++)
        if (plan.items[i].problem) /* a row refused with its reason: the run goes on */
            rc = avs_err_set(err, "%s", plan.items[i].problem);
    avs_ingest_plan_free(&plan);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_avsbench)
