/* The parts of bcae_shared_file (include/bcae.h) other io modules use. */
#ifndef BCAE_IO_SHARED_FILE_H
#define BCAE_IO_SHARED_FILE_H

#include "bcae.h"

/* bcae_shared_file_write that also sums three numbers over the ranks in the
 * same exchange (sum may be NULL): the container writer's record counts,
 * without a collective of their own that a failing rank could miss. */
bcae_status shared_file_write_tagged(bcae_shared_file *f, const void *buf, size_t len,
                                    const uint64_t tag[3], uint64_t sum[3], bcae_error *err);
const bcae_comm *shared_file_comm(const bcae_shared_file *f);

#endif
