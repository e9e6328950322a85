/* train/allreduce.c: the single-process and MPI backends of allreduce.h.
 *
 * MPI is used only when compiled in and the process was started by a
 * launcher that says so (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK in the environment): a plain `tnrec train` never touches MPI.
 * NCCL (train/gpu/allreduce_nccl.c) is attached by the GPU trainer; a run
 * started without MPI (TNREC_WORLD_SIZE > 1) can only sum through it. */
#include <stdlib.h>

#include "allreduce.h"
#include "common.h"
#include "gpu/allreduce_nccl.h"
#include "tnrec/config.h"

#if TNREC_HAVE_MPI
#include <mpi.h>
#endif

struct tnrec__allreduce {
    int rank, size;
    int mpi;            /* 1: MPI backend */
    int mpi_owner;      /* 1: we called MPI_Init and must finalize */
    int failed;         /* 1: skip MPI_Finalize (other ranks may be waiting) */
    int file_rendezvous;/* 1: ranks from TNREC_RANK / TNREC_WORLD_SIZE; sums need NCCL */
    tnrec__nccl *nccl;  /* attached by the GPU trainer, or NULL */
    int gpu_checked;    /* 1: this rank joined the GPU set-up status check */
};

void tnrec__allreduce_fail(tnrec__allreduce *ar)
{
    if (ar)
        ar->failed = 1;
}

static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

tnrec_err tnrec__allreduce_init(tnrec__allreduce **out)
{
    *out = NULL;
    tnrec__allreduce *ar = calloc(1, sizeof *ar);
    if (!ar)
        return tnrec__fail(TNREC_ENOMEM, "out of memory starting the allreduce backend");
    ar->rank = 0;
    ar->size = 1;
#if TNREC_HAVE_MPI
    if (launched_by_mpi()) {
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited) {
            if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
                free(ar);
                return tnrec__fail(TNREC_ENET, "MPI_Init failed\nhint: check the mpirun command line");
            }
            ar->mpi_owner = 1;
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &ar->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ar->size);
        ar->mpi = 1;
        *out = ar;
        return TNREC_OK;
    }
#else
    if (launched_by_mpi() && getenv("OMPI_COMM_WORLD_SIZE") && atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
        free(ar);
        return tnrec__fail(TNREC_EUNSUPPORTED, "started by mpirun but this tnrec was built without MPI\n"
                                               "hint: install libopenmpi-dev and rebuild");
    }
#endif
    const char *ws = getenv("TNREC_WORLD_SIZE");
    if (ws && atoi(ws) > 1) {
        const char *rk = getenv("TNREC_RANK");
        int size = atoi(ws), rank = rk ? atoi(rk) : -1;
        if (!rk || rank < 0 || rank >= size || !getenv("TNREC_NCCL_ID_FILE")) {
            free(ar);
            return tnrec__fail(TNREC_EINVAL, "TNREC_WORLD_SIZE=%d needs TNREC_RANK (0..%d) and TNREC_NCCL_ID_FILE\n"
                                             "hint: see docs/gpu.md, or start the ranks with mpirun / srun", size, size - 1);
        }
        ar->rank = rank;
        ar->size = size;
        ar->file_rendezvous = 1;
    }
    *out = ar;
    return TNREC_OK;
}

void tnrec__allreduce_free(tnrec__allreduce *ar)
{
    if (!ar)
        return;
    if (ar->failed)
        tnrec__nccl_abort(ar->nccl);
    else
        tnrec__nccl_free(ar->nccl);
#if TNREC_HAVE_MPI
    if (ar->mpi_owner && !(ar->failed && ar->size > 1)) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin)
            MPI_Finalize();
    }
#endif
    free(ar);
}

int tnrec__allreduce_rank(const tnrec__allreduce *ar) { return ar ? ar->rank : 0; }
int tnrec__allreduce_size(const tnrec__allreduce *ar) { return ar ? ar->size : 1; }
const char *tnrec__allreduce_name(const tnrec__allreduce *ar)
{
    if (ar && ar->nccl)
        return ar->mpi ? "mpi+nccl" : "nccl";
    return ar && ar->mpi ? "mpi" : "single";
}

int tnrec__allreduce_local_rank(const tnrec__allreduce *ar)
{
    const char *names[] = { "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "TNREC_LOCAL_RANK",
                            "LOCAL_RANK", NULL };
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return atoi(v);
    }
    return ar ? ar->rank : 0;
}

tnrec_err tnrec__allreduce_attach_nccl(tnrec__allreduce *ar, int device, tnrec_err mine)
{
    if (!ar || ar->size == 1 || ar->nccl)
        return mine;
    if (ar->gpu_checked) /* once per run: a second call follows a failed first */
        return mine ? mine : tnrec__fail(TNREC_EINTERNAL, "NCCL start asked for twice on rank %d of %d", ar->rank,
                                         ar->size);
    ar->gpu_checked = 1;
#if TNREC_HAVE_MPI
    if (ar->mpi) {
        /* Every GPU rank gets here once, failed or not: the lowest failing
         * rank (size: none) is agreed on before anyone enters NCCL's start,
         * which would wait for a failed rank until it times out. */
        int first = mine ? ar->rank : ar->size, failed = ar->size;
        if (MPI_Allreduce(&first, &failed, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
            return mine ? mine : tnrec__fail(TNREC_ENET, "MPI_Allreduce of the GPU set-up status failed on rank %d of %d",
                                             ar->rank, ar->size);
        if (mine)
            return mine;
        if (failed < ar->size)
            return tnrec__fail(TNREC_ENET, "rank %d of %d failed before starting NCCL, so rank %d stops too\n"
                                           "hint: rank %d's own error says why", failed, ar->size, ar->rank, failed);
    }
#endif
    /* With the id file a failed rank cannot tell the others: they time
     * out in the rendezvous or in NCCL's start (TNREC_NCCL_TIMEOUT). */
    if (mine)
        return mine;
    return tnrec__nccl_create(&ar->nccl, ar->rank, ar->size, ar->mpi, device);
}

struct tnrec__nccl *tnrec__allreduce_nccl(const tnrec__allreduce *ar) { return ar ? ar->nccl : NULL; }

/* Sums that MPI cannot do: NCCL after a file rendezvous. */
static tnrec_err sum_without_mpi(tnrec__allreduce *ar, void *buf, size_t n, int is_double)
{
    if (ar->nccl)
        return tnrec__nccl_sum_host(ar->nccl, buf, n, is_double);
    return tnrec__fail(TNREC_EUNSUPPORTED, "rank %d of %d was started without MPI, so it can only sum through NCCL\n"
                                           "hint: add --device cuda, or start the ranks with mpirun / srun", ar->rank, ar->size);
}

tnrec_err tnrec__allreduce_sum(tnrec__allreduce *ar, float *buf, size_t n)
{
    if (ar && ar->file_rendezvous)
        return sum_without_mpi(ar, buf, n, 0);
    if (!ar || !ar->mpi || ar->size == 1)
        return TNREC_OK;
#if TNREC_HAVE_MPI
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (MPI_Allreduce(MPI_IN_PLACE, buf, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return tnrec__fail(TNREC_ENET, "MPI_Allreduce of %d floats failed", chunk);
        buf += chunk;
        n -= (size_t)chunk;
    }
#endif
    return TNREC_OK;
}

tnrec_err tnrec__allreduce_sum_double(tnrec__allreduce *ar, double *buf, size_t n)
{
    if (ar && ar->file_rendezvous)
        return sum_without_mpi(ar, buf, n, 1);
    if (!ar || !ar->mpi || ar->size == 1)
        return TNREC_OK;
#if TNREC_HAVE_MPI
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (MPI_Allreduce(MPI_IN_PLACE, buf, chunk, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return tnrec__fail(TNREC_ENET, "MPI_Allreduce of %d doubles failed", chunk);
        buf += chunk;
        n -= (size_t)chunk;
    }
#endif
    return TNREC_OK;
}
