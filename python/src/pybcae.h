/*
 * pybcae.h — what the files of the CPython extension bcae._bcae share.
 *
 * The extension uses include/bcae.h alone (no src/ header): it is a client
 * of libbcae like the CLI, so that its results are the library's results.
 */
#ifndef PYBCAE_H
#define PYBCAE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
/* Every file of the extension shares NumPy's API table, imported once in
 * module.c (NumPy's own mechanism, a pointer filled at import). */
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pybcae_ARRAY_API
#ifndef PYBCAE_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "bcae.h"

/* Per-module state (PEP 3121) instead of C globals: the exception classes
 * and the extension types, reached from a type's methods through
 * PyType_GetModuleState. The types are final (no Py_TPFLAGS_BASETYPE), so
 * Py_TYPE(self) is always the module's own type. */
typedef struct pybcae_state {
    PyObject *error;                 /* bcae.Error */
    PyObject *status_error[9];       /* by -bcae_status; [0] is bcae.Error */
    PyTypeObject *model_type;
    PyTypeObject *reader_type;
    PyTypeObject *writer_type;
    PyTypeObject *dataset_type;
} pybcae_state;

pybcae_state *pybcae_module_state(PyObject *module);
pybcae_state *pybcae_type_state(PyObject *self);

/* Raises the exception class of err->status with the library's message
 * (or bcae_strerror when it has none); returns NULL. */
PyObject *pybcae_raise(pybcae_state *st, const bcae_error *err);
/* Raises the class of `status` with a message made here; returns NULL. */
PyObject *pybcae_raise_msg(pybcae_state *st, bcae_status status, const char *fmt, ...);

/* `obj` as a C-contiguous, aligned, native-byte-order array of exactly
 * NumPy type `type_num` (a new reference), or NULL with TypeError. A copy is
 * made only to fix the layout or byte order, never to change a value's type:
 * a wedge given as int32 or float is refused, not converted. */
PyArrayObject *pybcae_exact_array(PyObject *obj, int type_num, const char *what);

/* Wedges: shape (192, 249, 16) (*n = 1, *single = 1) or (N, 192, 249, 16).
 * Raises bcae.ShapeError otherwise. */
int pybcae_wedge_count(pybcae_state *st, PyArrayObject *a, const char *what, size_t *n,
                       int *single);

/* A path argument (str, bytes or os.PathLike) -> bytes; for
 * PyArg_ParseTuple's "O&". */
int pybcae_path_converter(PyObject *obj, void *out);

/* The thread count when none is given: $BCAE_NUM_THREADS as the CLI reads
 * it (1..4096), else 0 (all cores). -1 with ValueError on a bad value. */
int pybcae_default_threads(void);

/* "0123...ef" from 32 bytes. */
void pybcae_hex(const uint8_t fp[32], char out[65]);

/* Types and functions of the other files. */
extern PyType_Spec pybcae_model_spec;
extern PyType_Spec pybcae_reader_spec;
extern PyType_Spec pybcae_writer_spec;
extern PyType_Spec pybcae_dataset_spec;

/* The model object (model.c), for the container writer. */
typedef struct pybcae_model {
    PyObject_HEAD
    bcae_model *model;
    bcae_codec *codec;
    bcae_codec_options opt;
    PyObject *path; /* str */
    /* One codec is used by one thread at a time (bcae.h); the GIL is
     * released around compute, so this lock serialises the model's users. */
    PyThread_type_lock lock;
} pybcae_model;

/* bcae_ctr_info describing the model's codes. */
void pybcae_model_ctr_info(const pybcae_model *m, bcae_ctr_info *info);

PyObject *pybcae_metrics(PyObject *module, PyObject *args, PyObject *kw);
PyObject *pybcae_simulate(PyObject *module, PyObject *args, PyObject *kw);
PyObject *pybcae_sim_knobs(PyObject *module, PyObject *unused);
PyObject *pybcae_train(PyObject *module, PyObject *args, PyObject *kw);
PyObject *pybcae_train_defaults(PyObject *module, PyObject *unused);
PyObject *pybcae_sparse_encode(PyObject *module, PyObject *args);
PyObject *pybcae_sparse_decode(PyObject *module, PyObject *args);
PyObject *pybcae_sparse_peek(PyObject *module, PyObject *arg);

/* A bcae_sparse_info as a dict (max_error, mult, hits, levels, ...). */
PyObject *pybcae_sparse_info_dict(const bcae_sparse_info *info);

extern const char pybcae_metrics_doc[];
extern const char pybcae_simulate_doc[];
extern const char pybcae_sim_knobs_doc[];
extern const char pybcae_train_doc[];
extern const char pybcae_train_defaults_doc[];
extern const char pybcae_sparse_encode_doc[];
extern const char pybcae_sparse_decode_doc[];
extern const char pybcae_sparse_peek_doc[];

#endif
