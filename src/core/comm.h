/* Internal helpers over bcae_comm (include/bcae.h): a NULL communicator is
 * the serial one, and the collective steps every user of a communicator
 * repeats (agreeing on a failure) are written once here. */
#ifndef BCAE_CORE_COMM_H
#define BCAE_CORE_COMM_H

#include "bcae.h"

/* c, or the serial communicator when c is NULL. */
static inline const bcae_comm *comm_or_serial(const bcae_comm *c)
{
    return c ? c : bcae_comm_serial();
}
static inline int comm_rank(const bcae_comm *c) { return c ? c->rank : 0; }
static inline int comm_size(const bcae_comm *c) { return c ? c->size : 1; }

bcae_status comm_sum_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err);
bcae_status comm_sum_f32(const bcae_comm *c, float *x, size_t n, bcae_error *err);
bcae_status comm_max_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err);
bcae_status comm_broadcast(const bcae_comm *c, void *buf, size_t bytes, int root,
                           bcae_error *err);
bcae_status comm_allgather_u64(const bcae_comm *c, uint64_t mine, uint64_t *all,
                               bcae_error *err);

/* Collective: every rank passes its own status s (and err holding its
 * message when s fails). Returns BCAE_OK on every rank if every rank's was
 * OK; otherwise each failed rank keeps its own error and the others get
 * "rank R failed" (R the lowest failed rank), so that all ranks stop at the
 * same point instead of some waiting forever in the next collective. */
bcae_status comm_agree(const bcae_comm *c, bcae_status s, const char *what, bcae_error *err);

#endif
