/* tests/train/train_fixture_main.c: writes a fixture dataset for the shell
 * tests. usage: tnrec_train_fixture DIR N SEED [FRAMES AZIMUTH RANGE]
 * TNREC_FIXTURE_LIMITS=none|damaged: records without range_limits, or
 * with ones that are no window. */
#include <string.h>

#include "train_fixture.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 7) {
        fprintf(stderr, "usage: %s DIR N SEED [FRAMES AZIMUTH RANGE]\n", argv[0]);
        return 2;
    }
    int T = argc == 7 ? atoi(argv[4]) : 4, A = argc == 7 ? atoi(argv[5]) : 12, R = argc == 7 ? atoi(argv[6]) : 16;
    const char *limits = getenv("TNREC_FIXTURE_LIMITS");
    fixture_limits = !limits ? 1 : !strcmp(limits, "none") ? 0 : !strcmp(limits, "damaged") ? -1 : 1;
    tnrec_err err = fixture_write(argv[1], atoi(argv[2]), T, A, R, (uint64_t)atoll(argv[3]), 0);
    if (err) {
        fprintf(stderr, "fixture: %s\n", tnrec_error_last());
        return 1;
    }
    return 0;
}
