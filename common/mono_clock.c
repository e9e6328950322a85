/* common/mono_clock.c: the monotonic clock (mono_clock.h). Wall-clock
 * dates are not its business. */
#include <time.h>

#include "mono_clock.h"

double tnrec__now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
