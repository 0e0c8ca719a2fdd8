/* The .npy writer's internal entry (the public reader and writer are in
 * bcae.h): writing into an atomic file opened elsewhere, such as one
 * beneath an output folder (bcae_outdir_create). */
#ifndef BCAE_IO_NPY_H
#define BCAE_IO_NPY_H

#include "bcae.h"
#include "io/fileutil.h"

/* Writes a (U16 or F32) into f as bcae_npy_write would and commits f; on
 * any failure f is discarded (its temporary file removed). */
bcae_status bcae_npy_write_atomic(bcae_atomic_file *f, const bcae_array *a, bcae_error *err);

#endif
