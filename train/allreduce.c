/* train/allreduce.c: the backends of allreduce.h, in one table.
 *
 * MPI is used only when compiled in and the process was started by a
 * launcher that says so (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in
 * the environment): a plain `tnrec train` never touches MPI. A device
 * backend attaches its collective (train/backend_cuda.c: NCCL) through
 * trn_allreduce_attach; a run started without MPI (TNREC_WORLD_SIZE > 1)
 * can only sum through it. */
#include <stdio.h>
#include <stdlib.h>

#include "allreduce.h"
#include "common.h"
#include "tnrec/config.h"

#if TNREC_HAVE_MPI
#include <mpi.h>
#endif

typedef struct backend backend;

struct trn_allreduce {
    const backend *be;
    int rank, size;
    int mpi_owner;      /* 1: we called MPI_Init and must finalize */
    int failed;         /* 1: skip MPI_Finalize (other ranks may be waiting) */
    int agreed;         /* 1: this rank joined the collective's set-up status check */
    const trn_collective_ops *coll;  /* attached by a device backend, or NULL */
    void *coll_ctx;
    char name[32];
};

/* One way of summing over ranks. */
struct backend {
    const char *name;
    int mpi;                                    /* 1: ranks talk through MPI */
    /* 1 when the environment asks for this backend. */
    int (*wanted)(void);
    /* Fills ar's rank and size. */
    tnrec_err (*start)(trn_allreduce *ar);
    tnrec_err (*sum)(trn_allreduce *ar, void *buf, size_t n, int is_double);
    void (*finish)(trn_allreduce *ar);          /* NULL: nothing to end */
};

static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* ---- single process ---- */

static int single_wanted(void) { return 1; }

static tnrec_err single_start(trn_allreduce *ar)
{
    ar->rank = 0;
    ar->size = 1;
    return TNREC_OK;
}

static tnrec_err single_sum(trn_allreduce *ar, void *buf, size_t n, int is_double)
{
    (void)ar, (void)buf, (void)n, (void)is_double;
    return TNREC_OK;
}

/* ---- MPI ---- */

#if TNREC_HAVE_MPI
static int mpi_wanted(void) { return launched_by_mpi(); }

static tnrec_err mpi_start(trn_allreduce *ar)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
            return tnrec__fail(TNREC_ENET, "MPI_Init failed\nhint: check the mpirun command line");
        ar->mpi_owner = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &ar->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ar->size);
    return TNREC_OK;
}

static tnrec_err mpi_sum(trn_allreduce *ar, void *buf, size_t n, int is_double)
{
    if (ar->size == 1)
        return TNREC_OK;
    size_t elem = is_double ? sizeof(double) : sizeof(float);
    char *p = buf;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (MPI_Allreduce(MPI_IN_PLACE, p, chunk, is_double ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return tnrec__fail(TNREC_ENET, "MPI_Allreduce of %d %s failed", chunk, is_double ? "doubles" : "floats");
        p += (size_t)chunk * elem;
        n -= (size_t)chunk;
    }
    return TNREC_OK;
}

static void mpi_finish(trn_allreduce *ar)
{
    if (!ar->mpi_owner || (ar->failed && ar->size > 1))
        return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}
#else
/* Without MPI, a launcher with several ranks is an error, not a silent
 * set of independent single-process runs. */
static int mpi_wanted(void)
{
    const char *ws = getenv("OMPI_COMM_WORLD_SIZE");
    return launched_by_mpi() && ws && atoi(ws) > 1;
}

static tnrec_err mpi_start(trn_allreduce *ar)
{
    (void)ar;
    return tnrec__fail(TNREC_EUNSUPPORTED, "started by mpirun but this tnrec was built without MPI\n"
                                           "hint: install libopenmpi-dev and rebuild");
}

#define mpi_sum single_sum
#define mpi_finish NULL
#endif

/* ---- rendezvous: ranks from the environment, sums through the collective ---- */

static int rendezvous_wanted(void)
{
    const char *ws = getenv("TNREC_WORLD_SIZE");
    return ws && atoi(ws) > 1;
}

static tnrec_err rendezvous_start(trn_allreduce *ar)
{
    const char *rk = getenv("TNREC_RANK");
    int size = atoi(getenv("TNREC_WORLD_SIZE")), rank = rk ? atoi(rk) : -1;
    if (!rk || rank < 0 || rank >= size || !getenv("TNREC_NCCL_ID_FILE"))
        return tnrec__fail(TNREC_EINVAL, "TNREC_WORLD_SIZE=%d needs TNREC_RANK (0..%d) and TNREC_NCCL_ID_FILE\n"
                                         "hint: see docs/gpu.md, or start the ranks with mpirun / srun", size, size - 1);
    ar->rank = rank;
    ar->size = size;
    return TNREC_OK;
}

static tnrec_err rendezvous_sum(trn_allreduce *ar, void *buf, size_t n, int is_double)
{
    if (ar->coll)
        return ar->coll->sum_host(ar->coll_ctx, buf, n, is_double);
    return tnrec__fail(TNREC_EUNSUPPORTED, "rank %d of %d was started without MPI, so it can only sum through NCCL\n"
                                           "hint: add --device cuda, or start the ranks with mpirun / srun", ar->rank, ar->size);
}

/* In the order they are asked: the first whose wanted() holds is used. */
static const backend backends[] = {
    { "mpi", 1, mpi_wanted, mpi_start, mpi_sum, mpi_finish },
    { "rendezvous", 0, rendezvous_wanted, rendezvous_start, rendezvous_sum, NULL },
    { "single", 0, single_wanted, single_start, single_sum, NULL },
};

tnrec_err trn_allreduce_init(trn_allreduce **out)
{
    *out = NULL;
    trn_allreduce *ar = calloc(1, sizeof *ar);
    if (!ar)
        return tnrec__fail(TNREC_ENOMEM, "out of memory starting the allreduce backend");
    const backend *be = &backends[sizeof backends / sizeof backends[0] - 1];
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (backends[i].wanted()) {
            be = &backends[i];
            break;
        }
    }
    ar->be = be;
    tnrec_err err = be->start(ar);
    if (err) {
        free(ar);
        return err;
    }
    *out = ar;
    return TNREC_OK;
}

void trn_allreduce_fail(trn_allreduce *ar)
{
    if (ar)
        ar->failed = 1;
}

void trn_allreduce_free(trn_allreduce *ar)
{
    if (!ar)
        return;
    if (ar->coll)
        ar->coll->close(ar->coll_ctx, ar->failed);
    if (ar->be->finish)
        ar->be->finish(ar);
    free(ar);
}

int trn_allreduce_rank(const trn_allreduce *ar) { return ar ? ar->rank : 0; }
int trn_allreduce_size(const trn_allreduce *ar) { return ar ? ar->size : 1; }
int trn_allreduce_uses_mpi(const trn_allreduce *ar) { return ar && ar->be->mpi; }

const char *trn_allreduce_name(const trn_allreduce *ar)
{
    if (!ar)
        return "single";
    const char *base = ar->be->mpi ? "mpi" : ar->size > 1 ? "rendezvous" : "single";
    if (!ar->coll)
        return base;
    snprintf(((trn_allreduce *)ar)->name, sizeof ar->name, "%s+%s", base, ar->coll->name);
    return ar->name;
}

tnrec_err trn_allreduce_sum(trn_allreduce *ar, float *buf, size_t n)
{
    return ar ? ar->be->sum(ar, buf, n, 0) : TNREC_OK;
}

tnrec_err trn_allreduce_sum_double(trn_allreduce *ar, double *buf, size_t n)
{
    return ar ? ar->be->sum(ar, buf, n, 1) : TNREC_OK;
}

int trn_allreduce_local_rank(const trn_allreduce *ar)
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

tnrec_err trn_allreduce_agree_start(trn_allreduce *ar, tnrec_err mine)
{
    if (!ar || ar->size == 1 || ar->coll)
        return mine;
    if (ar->agreed) /* once per run: a second call follows a failed first */
        return mine ? mine : tnrec__fail(TNREC_EINTERNAL, "collective start asked for twice on rank %d of %d", ar->rank,
                                         ar->size);
    ar->agreed = 1;
#if TNREC_HAVE_MPI
    if (ar->be->mpi) {
        /* The lowest failing rank (size: none) is agreed on before anyone
         * enters the collective's start, which would wait for a failed
         * rank until it times out. */
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
    return mine;
}

void trn_allreduce_attach(trn_allreduce *ar, const trn_collective_ops *ops, void *ctx)
{
    ar->coll = ops;
    ar->coll_ctx = ctx;
}

void *trn_allreduce_collective(const trn_allreduce *ar) { return ar ? ar->coll_ctx : NULL; }
