/* train/allreduce.h: summing arrays over the processes of a data-parallel
 * run, behind one small interface. Private to train/.
 *
 * The backend comes from a table (allreduce.c), chosen from the
 * environment when the run starts:
 *   single      one process: sums are the identity;
 *   mpi         started by mpirun / srun with more than one rank, MPI
 *               compiled in;
 *   rendezvous  TNREC_WORLD_SIZE > 1, TNREC_RANK and TNREC_NCCL_ID_FILE
 *               without a launcher: host sums go through the device
 *               collective the GPU backend attaches.
 * A device backend (backend_cuda.c) may attach its collective (NCCL): its
 * own device sums use it, and so do the rendezvous backend's host sums.
 * Nothing here knows which collective that is. Every rank must make the
 * same calls in the same order. */
#ifndef TNREC_TRAIN_ALLREDUCE_H
#define TNREC_TRAIN_ALLREDUCE_H

#include <stddef.h>

#include "tnrec/error.h"

typedef struct trn_allreduce trn_allreduce;

/* A collective attached by a device backend. */
typedef struct trn_collective_ops {
    const char *name;                                    /* "nccl" */
    /* In-place sum of n floats (is_double 0) or doubles (1) in host memory. */
    tnrec_err (*sum_host)(void *ctx, void *buf, size_t n, int is_double);
    /* Ends it; failed: abort rather than wait for the other ranks. */
    void (*close)(void *ctx, int failed);
} trn_collective_ops;

/* Starts the backend the environment asks for (MPI under a launcher, the
 * rendezvous, else single process). */
tnrec_err trn_allreduce_init(trn_allreduce **out);
/* Marks this rank as failed: trn_allreduce_free then aborts the attached
 * collective and leaves MPI without MPI_Finalize (which would wait for
 * ranks still inside a collective), so the launcher sees the failed rank
 * and ends the job after the caller has reported the error. Accepts NULL. */
void trn_allreduce_fail(trn_allreduce *ar);
/* Ends it (the attached collective, then MPI_Finalize for MPI, unless
 * failed). Accepts NULL. */
void trn_allreduce_free(trn_allreduce *ar);
int trn_allreduce_rank(const trn_allreduce *ar);
int trn_allreduce_size(const trn_allreduce *ar);
/* 1 when the ranks talk through MPI (a device collective can start over it). */
int trn_allreduce_uses_mpi(const trn_allreduce *ar);
/* In-place element-wise sum over all ranks. */
tnrec_err trn_allreduce_sum(trn_allreduce *ar, float *buf, size_t n);
tnrec_err trn_allreduce_sum_double(trn_allreduce *ar, double *buf, size_t n);
/* Name of the backend ("single", "mpi", "rendezvous"), with "+nccl" (the
 * attached collective's name) once one is attached. Static storage. */
const char *trn_allreduce_name(const trn_allreduce *ar);

/* This process' index among the ranks on its host (from the launcher's
 * environment; else the rank), to pick its GPU. */
int trn_allreduce_local_rank(const trn_allreduce *ar);

/* Before a device collective starts: every rank calls this once with its
 * own set-up status (`mine`: TNREC_OK, or the error that stops it, whose
 * message is kept), whether or not its set-up worked, so that under MPI
 * every rank learns of a failure on any of them before anyone waits in
 * the collective's start (the ranks all fail, naming the lowest failing
 * rank). Returns `mine` when it is an error. With the rendezvous a failed
 * rank cannot tell the others: they time out in the collective's start.
 * Once per run: a later call returns `mine`, or an error when `mine` is
 * TNREC_OK. Nothing with one rank or once a collective is attached. */
tnrec_err trn_allreduce_agree_start(trn_allreduce *ar, tnrec_err mine);
/* Attaches a started collective; the allreduce closes it at its end. */
void trn_allreduce_attach(trn_allreduce *ar, const trn_collective_ops *ops, void *ctx);
/* The attached collective's context, or NULL. */
void *trn_allreduce_collective(const trn_allreduce *ar);

#endif
