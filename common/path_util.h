/* common/path_util.h: joining paths and creating directories. */
#ifndef TNREC_PATH_UTIL_H
#define TNREC_PATH_UTIL_H

#include <sys/types.h>

#include "hidden.h"
#include "tnrec/error.h"

/* "dir/name" in a new malloc'd string, or NULL. Always one '/' between
 * them, whatever dir ends with. */
TNREC__HIDDEN char *tnrec__path_join(const char *dir, const char *name);

/* "dir/name", or "dirname" when dir is empty or already ends with '/'
 * (object-store prefixes and keys), in a new malloc'd string, or NULL. */
TNREC__HIDDEN char *tnrec__path_append(const char *dir, const char *name);

/* mkdir -p: creates every missing directory of the path prefixes of `path`
 * that end before a '/', with `mode` (before the umask): the parents of
 * a file, or a directory and its parents when path ends with '/'. A
 * component that exists is left alone. Errors: "cannot create directory"
 * (TNREC_EIO, with errno), TNREC_ENOMEM. */
TNREC__HIDDEN tnrec_err tnrec__mkdir_parents(const char *path, mode_t mode);

/* mkdir -p of the directory `dir` itself: tnrec__mkdir_parents of "dir/",
 * then dir must be a directory ("'dir' is not a directory", TNREC_EIO). */
TNREC__HIDDEN tnrec_err tnrec__mkdir_p(const char *dir, mode_t mode);

#endif
