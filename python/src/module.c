/* bcae._bcae: the module, its exceptions and the helpers the types share. */
#define PYBCAE_IMPORT_ARRAY
#include "pybcae.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "bcae_h5z.h"

pybcae_state *pybcae_module_state(PyObject *module) { return PyModule_GetState(module); }

pybcae_state *pybcae_type_state(PyObject *self) { return PyType_GetModuleState(Py_TYPE(self)); }

static PyObject *error_class(pybcae_state *st, bcae_status status)
{
    int i = -(int)status;
    return i > 0 && i < 9 ? st->status_error[i] : st->error;
}

/* Builds the exception with a .status attribute, so that callers can tell
 * the library's codes apart without parsing messages. */
static PyObject *raise_text(pybcae_state *st, bcae_status status, const char *text)
{
    PyObject *cls = error_class(st, status);
    /* Messages name files, whose bytes need not be UTF-8. */
    PyObject *msg = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "backslashreplace");
    if (!msg) return NULL;
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc) return NULL;
    PyObject *code = PyLong_FromLong((long)status);
    if (!code || PyObject_SetAttrString(exc, "status", code) < 0) {
        Py_XDECREF(code);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(code);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *pybcae_raise(pybcae_state *st, const bcae_error *err)
{
    return raise_text(st, err->status, err->message[0] ? err->message : bcae_strerror(err->status));
}

PyObject *pybcae_raise_msg(pybcae_state *st, bcae_status status, const char *fmt, ...)
{
    char text[BCAE_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return raise_text(st, status, text);
}

PyArrayObject *pybcae_exact_array(PyObject *obj, int type_num, const char *what)
{
    PyArray_Descr *want = PyArray_DescrFromType(type_num);
    if (!want) return NULL;
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray of dtype %s, not %s", what,
                     want->typeobj->tp_name, Py_TYPE(obj)->tp_name);
        Py_DECREF(want);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_DESCR(a)->type_num != type_num) {
        PyObject *have = PyObject_Str((PyObject *)PyArray_DESCR(a));
        PyErr_Format(PyExc_TypeError,
                     "%s must have dtype %s, not %S; convert it yourself (after checking "
                     "its values) rather than have bcae guess",
                     what, want->typeobj->tp_name, have ? have : Py_None);
        Py_XDECREF(have);
        Py_DECREF(want);
        return NULL;
    }
    /* Same type: at most a copy for order, alignment or byte order. Steals want. */
    return (PyArrayObject *)PyArray_FromArray(a, want, NPY_ARRAY_IN_ARRAY);
}

int pybcae_wedge_count(pybcae_state *st, PyArrayObject *a, const char *what, size_t *n,
                       int *single)
{
    int nd = PyArray_NDIM(a);
    const npy_intp *d = PyArray_DIMS(a);
    int off = nd - 3;
    if ((nd == 3 || nd == 4) && d[off] == BCAE_WEDGE_AZIMUTH && d[off + 1] == BCAE_WEDGE_Z &&
        d[off + 2] == BCAE_WEDGE_LAYERS) {
        *single = nd == 3;
        *n = nd == 3 ? 1 : (size_t)d[0];
        return 0;
    }
    PyObject *shape = PyObject_GetAttrString((PyObject *)a, "shape");
    PyObject *text = shape ? PyObject_Str(shape) : NULL;
    Py_XDECREF(shape);
    if (!text) return -1;
    pybcae_raise_msg(st, BCAE_ERR_SHAPE,
                     "%s must have shape (192, 249, 16) or (N, 192, 249, 16), not %s", what,
                     PyUnicode_AsUTF8(text));
    Py_DECREF(text);
    return -1;
}

int pybcae_path_converter(PyObject *obj, void *out)
{
    return PyUnicode_FSConverter(obj, out);
}

int pybcae_default_threads(void)
{
    const char *env = getenv("BCAE_NUM_THREADS");
    if (!env || !*env) return 0;
    char *end;
    errno = 0;
    long v = strtol(env, &end, 10);
    if (errno || end == env || *end || v < 1 || v > 4096) {
        PyErr_Format(PyExc_ValueError,
                     "BCAE_NUM_THREADS expects a whole number in [1, 4096], got '%s'", env);
        return -1;
    }
    return (int)v;
}

void pybcae_hex(const uint8_t fp[32], char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[fp[i] >> 4];
        out[2 * i + 1] = digits[fp[i] & 15];
    }
    out[64] = '\0';
}

/* ---- module functions ------------------------------------------------------ */

static PyObject *default_model_path(PyObject *module, PyObject *unused)
{
    char path[4096];
    bcae_error err;
    if (bcae_default_model_path(path, sizeof path, &err))
        return pybcae_raise(pybcae_module_state(module), &err);
    return PyUnicode_DecodeFSDefault(path);
}

static PyMethodDef module_methods[] = {
    {"default_model_path", default_model_path, METH_NOARGS,
     "default_model_path($module, /)\n--\n\n"
     "The weights file used when no model is named: $BCAE_MODEL if set, else the\n"
     "default model installed with libbcae, else the source tree's (the CLI's search).\n"
     "Raises bcae.FileError when none exists."},
    {"metrics", (PyCFunction)(void (*)(void))pybcae_metrics, METH_VARARGS | METH_KEYWORDS,
     pybcae_metrics_doc},
    {"simulate", (PyCFunction)(void (*)(void))pybcae_simulate, METH_VARARGS | METH_KEYWORDS,
     pybcae_simulate_doc},
    {"sim_knobs", pybcae_sim_knobs, METH_NOARGS, pybcae_sim_knobs_doc},
    {"train", (PyCFunction)(void (*)(void))pybcae_train, METH_VARARGS | METH_KEYWORDS,
     pybcae_train_doc},
    {"train_defaults", pybcae_train_defaults, METH_NOARGS, pybcae_train_defaults_doc},
    {"sparse_encode", pybcae_sparse_encode, METH_VARARGS, pybcae_sparse_encode_doc},
    {"sparse_decode", pybcae_sparse_decode, METH_VARARGS, pybcae_sparse_decode_doc},
    {"sparse_info", pybcae_sparse_peek, METH_O, pybcae_sparse_peek_doc},
    {NULL, NULL, 0, NULL},
};

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    pybcae_state *st = pybcae_module_state(m);
    if (!st) return 0;
    Py_VISIT(st->error);
    for (int i = 0; i < 9; i++) Py_VISIT(st->status_error[i]);
    Py_VISIT(st->model_type);
    Py_VISIT(st->reader_type);
    Py_VISIT(st->writer_type);
    Py_VISIT(st->dataset_type);
    return 0;
}

static int module_clear(PyObject *m)
{
    pybcae_state *st = pybcae_module_state(m);
    if (!st) return 0;
    Py_CLEAR(st->error);
    for (int i = 0; i < 9; i++) Py_CLEAR(st->status_error[i]);
    Py_CLEAR(st->model_type);
    Py_CLEAR(st->reader_type);
    Py_CLEAR(st->writer_type);
    Py_CLEAR(st->dataset_type);
    return 0;
}

static void module_free(void *m) { module_clear(m); }

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "bcae._bcae",
    "The C extension under the bcae package: libbcae's public API (include/bcae.h)\n"
    "over NumPy arrays. Use it through `import bcae`.",
    sizeof(pybcae_state),
    module_methods,
    NULL,
    module_traverse,
    module_clear,
    module_free,
};

/* The exception classes: one per bcae_status, each also a subclass of the
 * built-in exception a Python user would catch for it. */
static int add_exceptions(PyObject *m, pybcae_state *st)
{
    st->error = PyErr_NewExceptionWithDoc(
        "bcae.Error",
        "An error reported by libbcae. .status is its bcae_status code (negative);\n"
        "the message is the library's, with its detail (file, record, value).",
        NULL, NULL);
    if (!st->error || PyModule_AddObjectRef(m, "Error", st->error) < 0) return -1;
    st->status_error[0] = Py_NewRef(st->error);
    static const struct {
        bcae_status status;
        const char *name;
        const char *doc;
    } table[] = {
        {BCAE_ERR_INVALID_ARGUMENT, "InvalidArgumentError", "A value the library cannot use (BCAE_ERR_INVALID_ARGUMENT)."},
        {BCAE_ERR_IO, "FileError", "Opening, reading, writing or renaming a file failed (BCAE_ERR_IO)."},
        {BCAE_ERR_FORMAT, "FormatError", "A malformed or truncated file (BCAE_ERR_FORMAT)."},
        {BCAE_ERR_UNSUPPORTED, "UnsupportedError", "Well-formed but not handled, e.g. another model's container (BCAE_ERR_UNSUPPORTED)."},
        {BCAE_ERR_OUT_OF_MEMORY, "OutOfMemoryError", "An allocation failed (BCAE_ERR_OUT_OF_MEMORY)."},
        {BCAE_ERR_SHAPE, "ShapeError", "An array of the wrong shape (BCAE_ERR_SHAPE)."},
        {BCAE_ERR_RANGE, "RangeError", "Values outside their allowed range, e.g. ADC > 1023 (BCAE_ERR_RANGE)."},
        {BCAE_ERR_INTERNAL, "InternalError", "A bug in libbcae (BCAE_ERR_INTERNAL)."},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        PyObject *builtin;
        switch (table[i].status) {
        case BCAE_ERR_IO: builtin = PyExc_OSError; break;
        case BCAE_ERR_OUT_OF_MEMORY: builtin = PyExc_MemoryError; break;
        case BCAE_ERR_INTERNAL: builtin = PyExc_RuntimeError; break;
        case BCAE_ERR_UNSUPPORTED: builtin = NULL; break;
        default: builtin = PyExc_ValueError; break;
        }
        PyObject *bases = builtin ? PyTuple_Pack(2, st->error, builtin) : PyTuple_Pack(1, st->error);
        if (!bases) return -1;
        char qualified[64];
        snprintf(qualified, sizeof qualified, "bcae.%s", table[i].name);
        PyObject *cls = PyErr_NewExceptionWithDoc(qualified, table[i].doc, bases, NULL);
        Py_DECREF(bases);
        if (!cls) return -1;
        st->status_error[-(int)table[i].status] = cls;
        if (PyModule_AddObjectRef(m, table[i].name, cls) < 0) return -1;
    }
    return 0;
}

static int add_type(PyObject *m, PyType_Spec *spec, PyTypeObject **slot)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(m, spec, NULL);
    if (!*slot) return -1;
    return PyModule_AddType(m, *slot);
}

PyMODINIT_FUNC PyInit__bcae(void);

PyMODINIT_FUNC PyInit__bcae(void)
{
    import_array();
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    pybcae_state *st = pybcae_module_state(m);
    PyObject *shape = Py_BuildValue("(iii)", BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS);
    PyObject *max_error = PyFloat_FromDouble(BCAE_SPARSE_MAX_ERROR);
    if (add_exceptions(m, st) < 0 || add_type(m, &pybcae_model_spec, &st->model_type) < 0 ||
        add_type(m, &pybcae_reader_spec, &st->reader_type) < 0 ||
        add_type(m, &pybcae_writer_spec, &st->writer_type) < 0 ||
        add_type(m, &pybcae_dataset_spec, &st->dataset_type) < 0 || !shape || !max_error ||
        PyModule_AddObjectRef(m, "WEDGE_SHAPE", shape) < 0 ||
        PyModule_AddIntConstant(m, "ADC_MAX", BCAE_ADC_MAX) < 0 ||
        PyModule_AddIntConstant(m, "WEDGES_PER_EVENT", BCAE_SIM_WEDGES_PER_EVENT) < 0 ||
        PyModule_AddIntConstant(m, "CALIBRATION_SEED", (long)BCAE_CALIBRATION_SEED) < 0 ||
        PyModule_AddIntConstant(m, "CONTAINER_VERSION", BCAE_CTR_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "HDF5_FILTER_ID", BCAE_H5Z_FILTER_ID) < 0 ||
        PyModule_AddIntConstant(m, "HDF5_FILTER_VERSION", BCAE_H5Z_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "HDF5_FILTER_SPARSE", BCAE_H5Z_SPARSE) < 0 ||
        PyModule_AddObjectRef(m, "SPARSE_MAX_ERROR", max_error) < 0 ||
        PyModule_AddStringConstant(m, "library_version", bcae_version()) < 0) {
        Py_XDECREF(shape);
        Py_XDECREF(max_error);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(shape);
    Py_DECREF(max_error);
    return m;
}
