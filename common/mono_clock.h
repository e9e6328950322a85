/* common/mono_clock.h: the one clock for rates, durations and timeouts. */
#ifndef TNREC_MONO_CLOCK_H
#define TNREC_MONO_CLOCK_H

/* Seconds on the monotonic clock (for rates and timeouts, not dates). */
double tnrec__now_seconds(void);

#endif
