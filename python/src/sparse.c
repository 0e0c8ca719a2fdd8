/* The sparse codec (docs/SPARSE.md) over NumPy: wedges <-> streams, coded on
 * threads with one coder per thread (bcae_sparse_encode_many / _decode_many,
 * what `bcae compress --codec sparse` does), the GIL released around the
 * coding. bcae/sparse.py gives these their Python shape (one wedge or many,
 * info or not). */
#include "pybcae.h"

#include <math.h>
#include <unistd.h>

PyObject *pybcae_sparse_info_dict(const bcae_sparse_info *i)
{
    return Py_BuildValue("{sdsKsnsnsnsnsnsNsN}", "max_error", i->max_error, "mult",
                         (unsigned long long)i->mult, "hits", (Py_ssize_t)i->hits, "levels",
                         (Py_ssize_t)i->levels, "occupancy_bytes", (Py_ssize_t)i->occupancy_bytes,
                         "value_bytes", (Py_ssize_t)i->value_bytes, "total_bytes",
                         (Py_ssize_t)i->total_bytes, "stored", PyBool_FromLong(i->stored), "met",
                         PyBool_FromLong(i->met));
}

/* threads: None ($BCAE_NUM_THREADS, else 0 = all cores) or 1..4096. */
static int parse_threads(pybcae_state *st, PyObject *obj)
{
    if (obj == Py_None) return pybcae_default_threads();
    long t = PyLong_AsLong(obj);
    if (t == -1 && PyErr_Occurred()) return -1;
    if (t < 1 || t > 4096) {
        pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                         "threads must be in [1, 4096] or None, not %ld", t);
        return -1;
    }
    return (int)t;
}

/* Wedges coded per call into one scratch buffer of bcae_sparse_bound() per
 * wedge: a few per thread, so that the threads stay busy and the scratch
 * stays small (1.5 MB a wedge) whatever N. */
static size_t batch_for(int threads)
{
    long cores = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    return (size_t)(cores < 8 ? 16 : 2 * cores);
}

const char pybcae_sparse_encode_doc[] =
    "sparse_encode($module, wedges, max_error=0.0, ratio=0.0, threads=None, /)\n--\n\n"
    "Low level: uint16 wedges (N, 192, 249, 16) -> (list of N bytes streams, list of N\n"
    "info dicts). bcae.sparse_encode is the convenient one.";

PyObject *pybcae_sparse_encode(PyObject *module, PyObject *args)
{
    PyObject *obj, *threads_obj = Py_None;
    double max_error = 0, ratio = 0;
    if (!PyArg_ParseTuple(args, "O|ddO:sparse_encode", &obj, &max_error, &ratio, &threads_obj))
        return NULL;
    pybcae_state *st = pybcae_module_state(module);
    int threads = parse_threads(st, threads_obj);
    if (threads < 0) return NULL;
    PyArrayObject *a = pybcae_exact_array(obj, NPY_UINT16, "wedges");
    if (!a) return NULL;
    size_t n;
    int single;
    if (pybcae_wedge_count(st, a, "wedges", &n, &single)) {
        Py_DECREF(a);
        return NULL;
    }
    const size_t V = BCAE_WEDGE_VOXELS, cap = bcae_sparse_bound();
    size_t B = batch_for(threads);
    if (B > n) B = n ? n : 1;
    uint8_t *buf = PyMem_RawMalloc(B * cap);
    size_t *len = PyMem_RawMalloc(B * sizeof *len);
    bcae_sparse_info *info = PyMem_RawMalloc(B * sizeof *info);
    PyObject *streams = PyList_New(0), *infos = PyList_New(0), *out = NULL;
    if (!buf || !len || !info) {
        PyErr_NoMemory();
        goto done;
    }
    if (!streams || !infos) goto done;
    bcae_sparse_options opt = {max_error, ratio};
    const uint16_t *w = PyArray_DATA(a);
    for (size_t w0 = 0; w0 < n; w0 += B) {
        size_t nb = n - w0 < B ? n - w0 : B;
        bcae_error err;
        bcae_status s;
        Py_BEGIN_ALLOW_THREADS
        s = bcae_sparse_encode_many(w + w0 * V, nb, &opt, threads, buf, cap, len, info, &err);
        Py_END_ALLOW_THREADS
        if (s) {
            pybcae_raise(st, &err);
            goto done;
        }
        for (size_t i = 0; i < nb; i++) {
            PyObject *b = PyBytes_FromStringAndSize((const char *)buf + i * cap, (Py_ssize_t)len[i]);
            PyObject *d = b ? pybcae_sparse_info_dict(&info[i]) : NULL;
            int bad = !d || PyList_Append(streams, b) < 0 || PyList_Append(infos, d) < 0;
            Py_XDECREF(b);
            Py_XDECREF(d);
            if (bad) goto done;
        }
    }
    out = PyTuple_Pack(2, streams, infos);
done:
    Py_XDECREF(streams);
    Py_XDECREF(infos);
    PyMem_RawFree(buf);
    PyMem_RawFree(len);
    PyMem_RawFree(info);
    Py_DECREF(a);
    return out;
}

const char pybcae_sparse_decode_doc[] =
    "sparse_decode($module, streams, log=False, threads=None, /)\n--\n\n"
    "Low level: a sequence of N bytes-like streams -> (uint16 (N, 192, 249, 16), or float32\n"
    "log2(ADC+1) with log=True, and a list of N info dicts). bcae.sparse_decode is the\n"
    "convenient one.";

PyObject *pybcae_sparse_decode(PyObject *module, PyObject *args)
{
    PyObject *obj, *threads_obj = Py_None;
    int log_out = 0;
    if (!PyArg_ParseTuple(args, "O|pO:sparse_decode", &obj, &log_out, &threads_obj)) return NULL;
    pybcae_state *st = pybcae_module_state(module);
    int threads = parse_threads(st, threads_obj);
    if (threads < 0) return NULL;
    PyObject *seq = PySequence_Fast(obj, "streams must be a sequence of bytes-like objects");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), held = 0;
    Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof *views);
    const uint8_t **ptr = PyMem_Calloc((size_t)n + 1, sizeof *ptr);
    size_t *lens = PyMem_Calloc((size_t)n + 1, sizeof *lens);
    bcae_sparse_info *info = PyMem_Calloc((size_t)n + 1, sizeof *info);
    PyObject *wedges = NULL, *logs = NULL, *infos = NULL, *out = NULL;
    if (!views || !ptr || !lens || !info) {
        PyErr_NoMemory();
        goto done;
    }
    /* Buffers stay exported while the GIL is released, so that no other
     * thread can resize a bytearray under the decoder. */
    for (; held < n; held++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, held);
        if (PyObject_GetBuffer(item, &views[held], PyBUF_C_CONTIGUOUS) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "stream %zd must be a contiguous bytes-like object (bytes, bytearray, "
                         "memoryview, uint8 array), not %s",
                         held, Py_TYPE(item)->tp_name);
            goto done;
        }
        ptr[held] = views[held].buf;
        lens[held] = (size_t)views[held].len;
    }
    npy_intp dims[4] = {n, BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    wedges = PyArray_SimpleNew(4, dims, NPY_UINT16);
    if (log_out && wedges) logs = PyArray_SimpleNew(4, dims, NPY_FLOAT32);
    if (!wedges || (log_out && !logs)) goto done;
    uint16_t *adc = PyArray_DATA((PyArrayObject *)wedges);
    float *lg = logs ? PyArray_DATA((PyArrayObject *)logs) : NULL;
    const size_t total = (size_t)n * BCAE_WEDGE_VOXELS;
    bcae_error err;
    bcae_status s;
    Py_BEGIN_ALLOW_THREADS
    s = bcae_sparse_decode_many(ptr, lens, (size_t)n, threads, adc, info, &err);
    /* As `bcae decompress --output log` computes it. */
    if (!s && lg)
        for (size_t k = 0; k < total; k++) lg[k] = (float)log2(adc[k] + 1.0);
    Py_END_ALLOW_THREADS
    if (s) {
        pybcae_raise(st, &err);
        goto done;
    }
    if (!(infos = PyList_New(n))) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = pybcae_sparse_info_dict(&info[i]);
        if (!d) goto done;
        PyList_SET_ITEM(infos, i, d);
    }
    out = PyTuple_Pack(2, logs ? logs : wedges, infos);
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(ptr);
    PyMem_Free(lens);
    PyMem_Free(info);
    Py_XDECREF(wedges);
    Py_XDECREF(logs);
    Py_XDECREF(infos);
    Py_DECREF(seq);
    return out;
}

const char pybcae_sparse_peek_doc[] =
    "sparse_info($module, stream, /)\n--\n\n"
    "What a sparse stream's header says (bcae_sparse_peek; no CRC check, nothing decoded):\n"
    "a dict of max_error, mult, hits, levels (0: not computed), occupancy_bytes,\n"
    "value_bytes, total_bytes, stored, met.";

PyObject *pybcae_sparse_peek(PyObject *module, PyObject *arg)
{
    pybcae_state *st = pybcae_module_state(module);
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return PyErr_Format(PyExc_TypeError, "stream must be a bytes-like object, not %s",
                            Py_TYPE(arg)->tp_name);
    }
    bcae_sparse_info info;
    bcae_error err;
    bcae_status s = bcae_sparse_peek(view.buf, (size_t)view.len, &info, &err);
    PyBuffer_Release(&view);
    if (s) return pybcae_raise(st, &err);
    return pybcae_sparse_info_dict(&info);
}
