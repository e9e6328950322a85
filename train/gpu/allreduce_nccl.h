/* train/gpu/allreduce_nccl.h: the NCCL communicator behind the trainer's
 * all-reduce interface (train/allreduce.h). Private to train/.
 *
 * One communicator per process, one process per GPU. The NCCL unique id
 * goes from rank 0 to the others with MPI_Bcast when the run was started
 * by mpirun / srun with MPI compiled in, else through the file named by
 * TNREC_NCCL_ID_FILE (written atomically by rank 0, polled by the others;
 * it must not exist when the job starts). */
#ifndef TNREC_TRAIN_ALLREDUCE_NCCL_H
#define TNREC_TRAIN_ALLREDUCE_NCCL_H

#include <stddef.h>

#include "tnrec/error.h"

typedef struct trn_nccl trn_nccl;

/* Joins the communicator of `size` ranks on CUDA device `device`; NCCL's
 * start waits at most TNREC_NCCL_TIMEOUT seconds (default 300) for the
 * other ranks with NCCL 2.14 or later. */
tnrec_err trn_nccl_create(trn_nccl **out, int rank, int size, int use_mpi, int device);
void trn_nccl_free(trn_nccl *c);                  /* accepts NULL */
/* As trn_nccl_free after a failure: ncclCommAbort instead of waiting
 * for operations other ranks may never join. Accepts NULL. */
void trn_nccl_abort(trn_nccl *c);
/* In-place sum of n floats in device memory, ordered on `stream` (a
 * cudaStream_t); returns once the sum is enqueued. */
tnrec_err trn_nccl_sum_device(trn_nccl *c, float *dev_buf, size_t n, void *stream);
/* In-place sum of n floats (is_double 0) or doubles (1) in host memory;
 * returns when done (waiting as trn_nccl_wait). */
tnrec_err trn_nccl_sum_host(trn_nccl *c, void *buf, size_t n, int is_double);

/* Waits for `stream` (a cudaStream_t with collectives of c on it) while
 * polling c's asynchronous error: an error reported by NCCL, or a wait of
 * more than TNREC_NCCL_WAIT_TIMEOUT seconds (default 1800), aborts the
 * communicator and returns TNREC_ENET naming `what`; later sums on c
 * fail at once. The caller must have c's device current. */
tnrec_err trn_nccl_wait(trn_nccl *c, void *stream, const char *what);

#endif
