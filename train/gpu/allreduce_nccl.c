/* train/gpu/allreduce_nccl.c: NCCL sums for data-parallel GPU training
 * (interface in allreduce_nccl.h).
 *
 * Rendezvous: rank 0 makes the NCCL unique id; MPI_Bcast hands it to the
 * others under mpirun / srun, or a file does (TNREC_NCCL_ID_FILE): rank 0
 * writes it under a temporary name and link()s it into place, which
 * fails if a file is already there (a stale id from an earlier job would
 * make ranks wait for each other forever), so a reader never sees half an
 * id and nothing is replaced; the other ranks poll for it for up to
 * TNREC_NCCL_TIMEOUT seconds (default 300) and refuse a file written more
 * than that long before they started (stale: the ranks of one job start
 * within that time of each other). Rank 0 removes the file once the
 * communicator is up (every rank has read it: the init is collective) or
 * when its start fails, so the path can serve the next job.
 * Under MPI every rank joins the id broadcast and a status check even
 * when it failed, so no rank waits for one that gave up (failures before
 * this file is reached are agreed on in allreduce.c first; with the file,
 * the others time out instead).
 * NCCL's start is non-blocking (NCCL 2.14 and later: blocking = 0 in the
 * communicator's config) and polled for at most TNREC_NCCL_TIMEOUT
 * seconds, the rendezvous' own limit: a rank that never joins (it failed,
 * refused the id file, or started too late) makes the others abort the
 * half-made communicator and fail naming their rank and the rendezvous,
 * instead of waiting forever. On a non-blocking communicator any NCCL
 * call may answer ncclInProgress; each such call is polled to its end
 * (settle()) before the next, as NCCL requires. An older NCCL builds
 * with the blocking start, which has no time limit.
 * Waits on streams with collectives poll the communicator's asynchronous
 * error as well (trn_nccl_wait), so a peer that died or aborted turns
 * into an error (and an aborted communicator) on the others, not a hang;
 * a wait longer than TNREC_NCCL_WAIT_TIMEOUT seconds (default 1800, which
 * must cover rank 0's validation and checkpoint while the others wait in
 * the next sum) does too.
 * Host sums stage through one device buffer that grows on first use only.
 * Not here: choosing devices (the caller passes one) and MPI start-up. */
#include <cuda_runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "allreduce_nccl.h"
#include "common.h"
#include "tnrec/config.h"

#if TNREC_HAVE_MPI
#include <mpi.h>
#endif

/* Non-blocking communicators, ncclInProgress and ncclCommFinalize came
 * with NCCL 2.14, ncclRemoteError with 2.13. */
#if defined(NCCL_VERSION) && defined(NCCL_VERSION_CODE) && NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
#define NCCL_NONBLOCKING 1
#else
#define NCCL_NONBLOCKING 0
#endif
#if defined(NCCL_VERSION) && defined(NCCL_VERSION_CODE) && NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
#define NCCL_REMOTE_ERROR(r) ((r) == ncclRemoteError)
#else
#define NCCL_REMOTE_ERROR(r) 0
#endif

static int in_progress(ncclResult_t r)
{
#if NCCL_NONBLOCKING
    return r == ncclInProgress;
#else
    (void)r;
    return 0;
#endif
}

struct trn_nccl {
    ncclComm_t comm;
    int rank, size, device;
    cudaStream_t stream;     /* for host sums */
    void *stage;             /* device staging buffer for host sums */
    size_t stage_bytes;
};

static tnrec_err nccl_fail(ncclResult_t r, const char *what, int rank, int size)
{
    return tnrec__fail(r == ncclSystemError || NCCL_REMOTE_ERROR(r) ? TNREC_ENET : TNREC_EINTERNAL,
                       "NCCL %s failed on rank %d of %d: %s\nhint: NCCL_DEBUG=WARN shows why; check that every rank "
                       "started and sees one GPU", what, rank, size, ncclGetErrorString(r));
}

static tnrec_err cuda_fail(cudaError_t e, const char *what)
{
    return tnrec__fail(e == cudaErrorMemoryAllocation ? TNREC_ENOMEM : TNREC_EINTERNAL, "CUDA %s failed: %s", what,
                       cudaGetErrorString(e));
}

/* Rank 0: puts the id at path without replacing anything there (see the
 * top of the file). On a file system without hard links: a check, then a
 * rename. *out_published: the file at path is this job's. */
static tnrec_err publish_id(const char *path, const ncclUniqueId *id, int *out_published)
{
    *out_published = 0;
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    tnrec_err err = TNREC_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot create '%s' for the NCCL id", tmp);
        free(tmp);
        return err;
    }
    const char *p = id->internal;
    size_t left = sizeof id->internal;
    while (left && !err) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = tnrec__fail_errno(TNREC_EIO, w < 0 ? errno : EIO, "cannot write the NCCL id to '%s'", tmp);
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    if (!err && fsync(fd) != 0)
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot write the NCCL id to '%s'", tmp);
    if (close(fd) != 0 && !err)
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot write the NCCL id to '%s'", tmp);
    if (!err) {
        int rc = link(tmp, path), e = errno;
        if (rc != 0 && (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS)) {
            struct stat sb;
            if (stat(path, &sb) == 0)
                e = EEXIST;
            else if (rename(tmp, path) == 0)
                rc = 0;
            else
                e = errno;
        }
        if (rc == 0)
            *out_published = 1;
        else if (e == EEXIST)
            err = tnrec__fail(TNREC_EINVAL, "NCCL id file '%s' already exists (from an earlier job?)\n"
                                            "hint: remove it, or give each job its own path, e.g. with $SLURM_JOB_ID",
                              path);
        else
            err = tnrec__fail_errno(TNREC_EIO, e, "cannot publish NCCL id file '%s'", path);
    }
    unlink(tmp); /* gone already after a rename */
    free(tmp);
    return err;
}

/* TNREC_NCCL_TIMEOUT: seconds the rendezvous and NCCL's start may take. */
static double start_limit(void)
{
    const char *t = getenv("TNREC_NCCL_TIMEOUT");
    double v = t ? atof(t) : 0;
    return v > 0 ? v : 300.0;
}

/* Polls comm's state after a call that answered ncclInProgress until it
 * is something else, for at most limit seconds; returns the final state,
 * or ncclInProgress when the limit passed (*out_waited: seconds). */
static ncclResult_t settle(ncclComm_t comm, double limit, double *out_waited)
{
    double start = tnrec__now_seconds();
    ncclResult_t state = ncclSuccess;
    for (unsigned polls = 0;; polls++) {
        ncclResult_t r = ncclCommGetAsyncError(comm, &state);
        *out_waited = tnrec__now_seconds() - start;
        if (r != ncclSuccess)
            return r;
        if (!in_progress(state) || *out_waited > limit)
            return state;
        if (polls < 64)
            sched_yield();
        else
            usleep(polls < 1024 ? 100 : 1000);
    }
}

/* The id through a file: rank 0 writes, the others wait for it. started:
 * this process' wall-clock time when it began to wait. */
static tnrec_err id_by_file(ncclUniqueId *id, int rank, time_t started, int *out_published)
{
    *out_published = 0;
    const char *path = getenv("TNREC_NCCL_ID_FILE");
    if (!path || !*path)
        return tnrec__fail(TNREC_EINVAL, "ranks started without MPI need TNREC_NCCL_ID_FILE to share the NCCL id\n"
                                         "hint: set it to a path on a file system every rank sees, new for each job");
    if (rank == 0)
        return publish_id(path, id, out_published);
    double timeout = start_limit();
    double start = tnrec__now_seconds();
    for (;;) {
        FILE *f = fopen(path, "rb");
        if (f) {
            struct stat sb;
            int st = fstat(fileno(f), &sb);
            size_t got = fread(id->internal, 1, sizeof id->internal, f);
            fclose(f);
            if (st == 0 && difftime(started, sb.st_mtime) > timeout)
                return tnrec__fail(TNREC_EINVAL, "NCCL id file '%s' was written %.0f s before rank %d started, more than "
                                                 "TNREC_NCCL_TIMEOUT (%.0f s): a stale id from an earlier job?\n"
                                                 "hint: remove it and restart the job, or give each job its own path",
                                   path, difftime(started, sb.st_mtime), rank, timeout);
            if (got == sizeof id->internal)
                return TNREC_OK;
            return tnrec__fail(TNREC_ECORRUPT, "NCCL id file '%s' holds %zu bytes, not %zu\nhint: remove it and restart the job",
                               path, got, sizeof id->internal);
        }
        if (errno != ENOENT)
            return tnrec__fail_errno(TNREC_EIO, errno, "cannot read NCCL id file '%s'", path);
        if (tnrec__now_seconds() - start > timeout)
            return tnrec__fail(TNREC_ENET, "rank %d waited %.0f s for NCCL id file '%s' from rank 0\n"
                                           "hint: did rank 0 start, and do both see the same file system?", rank, timeout, path);
        usleep(50 * 1000);
    }
}

/* NCCL's start on c->rank with the id, bounded by TNREC_NCCL_TIMEOUT
 * where NCCL can do so (see the top of the file). */
static tnrec_err start_comm(trn_nccl *c, ncclUniqueId id, int use_mpi)
{
    c->comm = NULL;
#if NCCL_NONBLOCKING
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&c->comm, c->size, id, c->rank, &cfg);
    if (r != ncclSuccess && !in_progress(r)) {
        c->comm = NULL; /* not made: nothing to abort */
        return nccl_fail(r, "ncclCommInitRankConfig", c->rank, c->size);
    }
    if (!c->comm)
        return tnrec__fail(TNREC_EINTERNAL, "ncclCommInitRankConfig on rank %d of %d returned no communicator",
                           c->rank, c->size);
    double limit = start_limit(), waited = 0;
    r = settle(c->comm, limit, &waited);
    if (r == ncclSuccess)
        return TNREC_OK;
    ncclCommAbort(c->comm);
    c->comm = NULL;
    const char *file = getenv("TNREC_NCCL_ID_FILE");
    if (in_progress(r))
        return tnrec__fail(TNREC_ENET, "NCCL start timed out on rank %d of %d: the other ranks did not all join "
                           "within TNREC_NCCL_TIMEOUT (%.0f s; rendezvous: %s%s%s)\nhint: another rank failed, "
                           "refused the id, or started late (its own error says why); NCCL_DEBUG=WARN shows more",
                           c->rank, c->size, waited, use_mpi ? "MPI" : "id file '", use_mpi ? "" : (file ? file : ""),
                           use_mpi ? "" : "'");
    return nccl_fail(r, "start (ncclCommInitRankConfig)", c->rank, c->size);
#else
    (void)use_mpi;
    ncclResult_t r = ncclCommInitRank(&c->comm, c->size, id, c->rank);
    if (r != ncclSuccess) {
        c->comm = NULL;
        return nccl_fail(r, "ncclCommInitRank", c->rank, c->size);
    }
    return TNREC_OK;
#endif
}

tnrec_err trn_nccl_create(trn_nccl **out, int rank, int size, int use_mpi, int device)
{
    *out = NULL;
    tnrec_err err = TNREC_OK;
    trn_nccl *c = calloc(1, sizeof *c); /* failing, it still joins the status check below */
    if (!c)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory for the NCCL communicator");
    else {
        c->rank = rank;
        c->size = size;
        c->device = device;
    }
    time_t started = time(NULL);
    int published = 0; /* rank 0 put the id file in place: remove it when done */
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    cudaError_t ce = cudaSuccess;
    if (!err && (ce = cudaSetDevice(device)) != cudaSuccess)
        err = cuda_fail(ce, "cudaSetDevice");
    if (!err && rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess)
            err = nccl_fail(r, "ncclGetUniqueId", rank, size);
    }
    if (use_mpi) {
#if TNREC_HAVE_MPI
        /* Every rank enters both collectives, failed or not, so that a
         * failure before NCCL's (collective) init stops every
         * rank instead of leaving the others waiting: rank 0's status
         * travels with the id, and the ranks' own statuses are combined
         * (the lowest failing rank; size: none) before anyone starts the
         * init. */
        struct { int ok; ncclUniqueId id; } msg;
        memset(&msg, 0, sizeof msg);
        msg.ok = !err;
        msg.id = id;
        int mine = err ? rank : size, failed = size;
        if (MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
            if (!err)
                err = tnrec__fail(TNREC_ENET, "MPI_Bcast of the NCCL id failed on rank %d of %d", rank, size);
            goto done;
        }
        if (MPI_Allreduce(&mine, &failed, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) {
            if (!err)
                err = tnrec__fail(TNREC_ENET, "MPI_Allreduce of the NCCL start status failed on rank %d of %d", rank, size);
            goto done;
        }
        if (err)
            goto done; /* this rank's own error */
        if (!msg.ok) {
            err = tnrec__fail(TNREC_ENET, "rank 0 failed before starting NCCL, so rank %d of %d stops too\n"
                                          "hint: rank 0's own error says why", rank, size);
            goto done;
        }
        if (failed < size) {
            err = tnrec__fail(TNREC_ENET, "rank %d failed before starting NCCL, so rank %d of %d stops too\n"
                                          "hint: rank %d's own error says why", failed, rank, size, failed);
            goto done;
        }
        id = msg.id;
#else
        if (!err)
            err = tnrec__fail(TNREC_EUNSUPPORTED, "MPI rendezvous asked for in a build without MPI");
        goto done;
#endif
    } else if (err || (err = id_by_file(&id, rank, started, &published))) {
        goto done;
    }
    if ((err = start_comm(c, id, use_mpi)))
        goto done;
    /* Every rank has read the id (the init is collective): the file has
     * served, and the path is free for the next job. */
    if (published) {
        unlink(getenv("TNREC_NCCL_ID_FILE"));
        published = 0;
    }
    if ((ce = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        c->stream = NULL;
        err = cuda_fail(ce, "cudaStreamCreate");
        goto done;
    }
    *out = c;
    c = NULL;
done:
    if (published)
        unlink(getenv("TNREC_NCCL_ID_FILE")); /* this job's id, useless to any other */
    trn_nccl_free(c);
    return err;
}

/* After an error or a timeout: abort the communicator (its pending
 * operations end), and refuse further sums on it. */
static void comm_abort(trn_nccl *c)
{
    if (c->comm)
        ncclCommAbort(c->comm);
    c->comm = NULL;
}

static double wait_limit(void)
{
    const char *t = getenv("TNREC_NCCL_WAIT_TIMEOUT");
    double v = t ? atof(t) : 0;
    return v > 0 ? v : 1800.0;
}

tnrec_err trn_nccl_wait(trn_nccl *c, void *stream, const char *what)
{
    double limit = wait_limit();
    double start = tnrec__now_seconds();
    for (unsigned polls = 0;; polls++) {
        cudaError_t ce = cudaStreamQuery((cudaStream_t)stream);
        if (ce == cudaSuccess)
            return TNREC_OK;
        if (ce != cudaErrorNotReady)
            return cuda_fail(ce, what);
        /* "Not ready" may linger as the last error, which the kernel
         * launch checks read (cudaGetLastError): clear it. */
        (void)cudaGetLastError();
        if (!c->comm)
            return tnrec__fail(TNREC_ENET, "%s on rank %d of %d: the NCCL communicator was aborted after an earlier "
                               "error", what, c->rank, c->size);
        ncclResult_t async = ncclSuccess, r = ncclCommGetAsyncError(c->comm, &async);
        if (r != ncclSuccess || (async != ncclSuccess && !in_progress(async))) {
            ncclResult_t bad = r != ncclSuccess ? r : async;
            comm_abort(c);
            return tnrec__fail(TNREC_ENET, "NCCL failed during %s on rank %d of %d: %s\nhint: another rank probably "
                               "stopped or failed (its own error says why); NCCL_DEBUG=WARN shows more",
                               what, c->rank, c->size, ncclGetErrorString(bad));
        }
        double waited = tnrec__now_seconds() - start;
        if (waited > limit) {
            comm_abort(c);
            return tnrec__fail(TNREC_ENET, "rank %d of %d waited %.0f s for %s (TNREC_NCCL_WAIT_TIMEOUT): another rank "
                               "stopped or hangs\nhint: its own error says why; if a rank is merely slow (rank 0 "
                               "validates and writes checkpoints while the others wait), raise TNREC_NCCL_WAIT_TIMEOUT",
                               c->rank, c->size, waited, what);
        }
        /* Yield at first (a step's tail is short), then sleep briefly. */
        if (polls < 64)
            sched_yield();
        else
            usleep(polls < 1024 ? 20 : 200);
    }
}

void trn_nccl_abort(trn_nccl *c)
{
    if (!c)
        return;
    if (cudaSetDevice(c->device) != cudaSuccess) /* best effort, for the frees */
        cudaGetLastError();
    if (c->comm)
        ncclCommAbort(c->comm);
    c->comm = NULL;
    if (c->stage)
        cudaFree(c->stage);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

void trn_nccl_free(trn_nccl *c)
{
    if (!c)
        return;
    if (cudaSetDevice(c->device) != cudaSuccess) /* best effort, for the frees */
        cudaGetLastError();
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->comm) {
#if NCCL_NONBLOCKING
        /* A non-blocking communicator is finalized (polled, bounded)
         * before it is destroyed; one that will not finish is aborted. */
        double waited = 0;
        ncclResult_t r = ncclCommFinalize(c->comm);
        if (in_progress(r))
            r = settle(c->comm, wait_limit(), &waited);
        if (r == ncclSuccess)
            ncclCommDestroy(c->comm);
        else
            ncclCommAbort(c->comm);
#else
        ncclCommDestroy(c->comm);
#endif
    }
    if (c->stage)
        cudaFree(c->stage);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

/* The result of an NCCL call on c: on a non-blocking communicator
 * ncclInProgress means it is still being issued, and must end before
 * the next call (bounded by TNREC_NCCL_WAIT_TIMEOUT; then, or on an
 * error it ends in, the communicator is aborted). */
static tnrec_err issued(trn_nccl *c, ncclResult_t r, const char *what)
{
    if (in_progress(r)) {
        double waited = 0;
        r = settle(c->comm, wait_limit(), &waited);
        if (r != ncclSuccess) {
            comm_abort(c);
            if (in_progress(r))
                return tnrec__fail(TNREC_ENET, "rank %d of %d waited %.0f s for NCCL to issue %s "
                                   "(TNREC_NCCL_WAIT_TIMEOUT): another rank stopped or hangs\nhint: its own error "
                                   "says why", c->rank, c->size, waited, what);
        }
    }
    return r == ncclSuccess ? TNREC_OK : nccl_fail(r, what, c->rank, c->size);
}

tnrec_err trn_nccl_sum_device(trn_nccl *c, float *dev_buf, size_t n, void *stream)
{
    if (n == 0)
        return TNREC_OK;
    if (!c->comm)
        return tnrec__fail(TNREC_ENET, "NCCL sum on rank %d of %d: the communicator was aborted after an earlier error",
                           c->rank, c->size);
    ncclResult_t r = ncclAllReduce(dev_buf, dev_buf, n, ncclFloat32, ncclSum, c->comm, (cudaStream_t)stream);
    return issued(c, r, "ncclAllReduce");
}

tnrec_err trn_nccl_sum_host(trn_nccl *c, void *buf, size_t n, int is_double)
{
    if (n == 0)
        return TNREC_OK;
    if (!c->comm)
        return tnrec__fail(TNREC_ENET, "NCCL sum on rank %d of %d: the communicator was aborted after an earlier error",
                           c->rank, c->size);
    size_t bytes = n * (is_double ? sizeof(double) : sizeof(float));
    cudaError_t ce = cudaSetDevice(c->device);
    if (ce != cudaSuccess)
        return cuda_fail(ce, "cudaSetDevice");
    if (bytes > c->stage_bytes) {
        if (c->stage)
            cudaFree(c->stage);
        c->stage = NULL;
        c->stage_bytes = 0;
        if ((ce = cudaMalloc(&c->stage, bytes)) != cudaSuccess)
            return cuda_fail(ce, "cudaMalloc for the NCCL staging buffer");
        c->stage_bytes = bytes;
    }
    if ((ce = cudaMemcpyAsync(c->stage, buf, bytes, cudaMemcpyHostToDevice, c->stream)) != cudaSuccess)
        return cuda_fail(ce, "copy for a NCCL sum");
    ncclResult_t r = ncclAllReduce(c->stage, c->stage, n, is_double ? ncclFloat64 : ncclFloat32, ncclSum, c->comm,
                                   c->stream);
    tnrec_err err = issued(c, r, "ncclAllReduce");
    if (err)
        return err;
    if ((ce = cudaMemcpyAsync(buf, c->stage, bytes, cudaMemcpyDeviceToHost, c->stream)) != cudaSuccess)
        return cuda_fail(ce, "copy after a NCCL sum");
    return trn_nccl_wait(c, c->stream, "a NCCL sum of host values");
}
