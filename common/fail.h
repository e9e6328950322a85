/* common/fail.h: how library code reports an error.
 *
 * The library never prints: a failing function records a message for its
 * thread (tnrec_error_last()) and returns the tnrec_err (common/error.c). */
#ifndef TNREC_FAIL_H
#define TNREC_FAIL_H

#include "tnrec/error.h"

/* Record an error for this thread and return err. fmt is printf-style; a
 * second line "hint: ..." may follow after '\n'. */
tnrec_err tnrec__fail(tnrec_err err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like tnrec__fail but appends ": strerror(errno)" for the saved errno. */
tnrec_err tnrec__fail_errno(tnrec_err err, int saved_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
