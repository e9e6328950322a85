/* tnrec/error.h: the one error enum of libtnrec and its last-error message.
 *
 * Every library function that can fail returns a tnrec_err (TNREC_OK is 0).
 * The library never prints and never exits: the detail of the last failure
 * on the calling thread is kept in a thread-local message, which names the
 * file or URL and, where one is known, the fix on a second line starting
 * with "hint: ". */
#ifndef TNREC_ERROR_H
#define TNREC_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnrec_err {
    TNREC_OK = 0,
    TNREC_EINVAL,      /* bad argument or option value */
    TNREC_ENOMEM,      /* allocation failed */
    TNREC_EIO,         /* read, write, open, fsync or rename failed */
    TNREC_ECORRUPT,    /* checksum mismatch or inconsistent structure */
    TNREC_ETRUNC,      /* file shorter than its own index says */
    TNREC_EFORMAT,     /* not a tnrec file, or a version this build cannot read */
    TNREC_ENOTFOUND,   /* file, field, record or object does not exist */
    TNREC_ESCHEMA,     /* input does not match the expected schema */
    TNREC_ENET,        /* network failure after retries */
    TNREC_EAUTH,       /* credentials refused */
    TNREC_EUNSUPPORTED,/* feature not compiled into this build */
    TNREC_ERANGE,      /* index or size out of range */
    TNREC_EINTERNAL,   /* a bug: please report it */
    TNREC_ECANCELED    /* stopped on request (a signal): finished work is kept */
} tnrec_err;

/* The message of the last error on this thread ("" if none). Borrowed:
 * valid until the next failing tnrec call on the same thread. */
const char *tnrec_error_last(void);

/* Short name of a code, e.g. "corrupt" for TNREC_ECORRUPT. Static string. */
const char *tnrec_err_name(tnrec_err err);

/* Forget the last error on this thread. */
void tnrec_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
