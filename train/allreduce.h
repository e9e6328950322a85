/* train/allreduce.h: summing arrays over the processes of a data-parallel
 * run, behind one small interface.
 *
 * Backends: a single process (sums are the identity) and MPI (chosen when
 * the program was started by mpirun / srun with more than one rank and MPI
 * is compiled in). The GPU trainer attaches NCCL (train/gpu/) to the same
 * object: device sums then go through NCCL, and with a file rendezvous
 * (TNREC_WORLD_SIZE, TNREC_RANK, TNREC_NCCL_ID_FILE in the environment,
 * no MPI launcher) the host sums too. Every rank must make the same calls
 * in the same order. */
#ifndef TNREC_TRAIN_ALLREDUCE_H
#define TNREC_TRAIN_ALLREDUCE_H

#include <stddef.h>

#include "tnrec/error.h"

typedef struct tnrec__allreduce tnrec__allreduce;

/* Starts the backend the environment asks for (MPI under a launcher, else
 * single process). */
tnrec_err tnrec__allreduce_init(tnrec__allreduce **out);
/* Marks this rank as failed: tnrec__allreduce_free then leaves MPI
 * without MPI_Finalize (which would wait for ranks still inside a
 * collective), so the launcher sees the failed rank and ends the job
 * after the caller has reported the error. Accepts NULL. */
void tnrec__allreduce_fail(tnrec__allreduce *ar);
/* Ends it (MPI_Finalize for MPI, unless failed). Accepts NULL. */
void tnrec__allreduce_free(tnrec__allreduce *ar);
int tnrec__allreduce_rank(const tnrec__allreduce *ar);
int tnrec__allreduce_size(const tnrec__allreduce *ar);
/* In-place element-wise sum over all ranks. */
tnrec_err tnrec__allreduce_sum(tnrec__allreduce *ar, float *buf, size_t n);
tnrec_err tnrec__allreduce_sum_double(tnrec__allreduce *ar, double *buf, size_t n);
/* Name of the backend ("single", "mpi", "nccl", "mpi+nccl"). */
const char *tnrec__allreduce_name(const tnrec__allreduce *ar);

/* GPU runs: this process' index among the ranks on its host (from the
 * launcher's environment; else the rank), to pick its GPU. */
int tnrec__allreduce_local_rank(const tnrec__allreduce *ar);
/* Joins a NCCL communicator on CUDA device `device` (nothing with one
 * rank). The NCCL id travels over MPI, or through TNREC_NCCL_ID_FILE.
 * `mine` is this rank's status so far (TNREC_OK, or the error that stops
 * it, whose message is kept): a GPU rank calls this once whether or not
 * its own set-up worked, so that under MPI every rank learns of a
 * failure on any of them before anyone waits in NCCL's start (the ranks
 * all fail, naming the lowest failing rank); `device` is ignored when
 * `mine` is an error. Returns `mine` when it is an error. Once per run:
 * later calls only return `mine` (an error: the caller failed after a
 * failed start). */
tnrec_err tnrec__allreduce_attach_nccl(tnrec__allreduce *ar, int device, tnrec_err mine);
/* The attached communicator, or NULL. */
struct tnrec__nccl *tnrec__allreduce_nccl(const tnrec__allreduce *ar);

#endif
