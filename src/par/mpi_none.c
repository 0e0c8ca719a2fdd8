/* A build without MPI (BCAE_MPI off): the MPI communicator is refused. */
#include "bcae.h"
#include "core/error.h"

int bcae_comm_mpi_compiled(void) { return 0; }

bcae_status bcae_comm_mpi_init(int *argc, char ***argv, bcae_comm **out, bcae_error *err)
{
    if (out) *out = NULL;
    return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                     "this bcae was built without MPI (configure with -DBCAE_MPI=ON and Open "
                     "MPI installed: libopenmpi-dev)");
}
