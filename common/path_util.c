/* common/path_util.c: paths and directories (path_util.h). Allocates the
 * strings it returns and nothing else; never changes the process' working
 * directory or umask. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fail.h"
#include "path_util.h"

char *tnrec__path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *tnrec__path_append(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + (size_t)slash + nl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    if (slash)
        p[dl] = '/';
    memcpy(p + dl + slash, name, nl + 1);
    return p;
}

/* Creates the directories named by the prefixes of p that end before a
 * '/'; p is writable and comes back unchanged. */
static tnrec_err make_prefixes(char *p, mode_t mode)
{
    tnrec_err e = TNREC_OK;
    /* From p + 1: a leading '/' is the root, which exists. */
    for (char *s = p + 1; *s && !e; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            e = tnrec__fail_errno(TNREC_EIO, errno, "cannot create directory '%s'", p);
        *s = '/';
    }
    return e;
}

tnrec_err tnrec__mkdir_parents(const char *path, mode_t mode)
{
    size_t n = strlen(path) + 1;
    char *p = malloc(n);
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory creating '%s'", path);
    memcpy(p, path, n);
    tnrec_err e = make_prefixes(p, mode);
    free(p);
    return e;
}

tnrec_err tnrec__mkdir_p(const char *dir, mode_t mode)
{
    char *p = tnrec__path_join(dir, "");
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory creating '%s'", dir);
    tnrec_err e = make_prefixes(p, mode);
    free(p);
    struct stat st;
    if (!e && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        e = tnrec__fail(TNREC_EIO, "'%s' is not a directory", dir);
    return e;
}
