/* The .bcae container: a streaming reader (with random access by record
 * offset) and an atomic writer, over bcae_ctr_* (docs/FORMAT.md). */
#include "pybcae.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- reader ------------------------------------------------------------------ */

typedef struct reader_obj {
    PyObject_HEAD
    bcae_ctr_reader *r;
    PyObject *path;        /* bytes */
    uint64_t header_bytes; /* where record 0 starts: what read_at prepends */
    /* bcae_ctr_reader_next is not for two threads at once; the GIL is
     * released around it. */
    PyThread_type_lock lock;
} reader_obj;

static void reader_dealloc(reader_obj *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    bcae_ctr_reader_close(self->r);
    Py_XDECREF(self->path);
    if (self->lock) PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *reader_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&:ContainerReader", kwlist,
                                     pybcae_path_converter, &path))
        return NULL;
    pybcae_state *st = PyType_GetModuleState(type);
    reader_obj *self = (reader_obj *)type->tp_alloc(type, 0);
    if (!self) {
        Py_DECREF(path);
        return NULL;
    }
    self->path = path;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    bcae_error err;
    bcae_status s;
    const char *cpath = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    s = bcae_ctr_reader_open(cpath, &self->r, &err);
    Py_END_ALLOW_THREADS
    if (s) {
        Py_DECREF(self);
        return pybcae_raise(st, &err);
    }
    self->header_bytes = bcae_ctr_reader_offset(self->r);
    return (PyObject *)self;
}

static int is_sparse(const bcae_ctr_info *info) { return info->code_dtype == BCAE_CTR_DTYPE_SPARSE; }

/* Where a record's code goes: a float16 array of the code shape, or, in a
 * file of sparse streams (no code), None until the stream is known. */
static PyObject *code_array(const bcae_ctr_info *info)
{
    if (is_sparse(info)) return Py_NewRef(Py_None);
    npy_intp dims[BCAE_CTR_MAX_NDIM];
    for (int d = 0; d < info->code_ndim; d++) dims[d] = (npy_intp)info->code_shape[d];
    return PyArray_SimpleNew(info->code_ndim, dims, NPY_FLOAT16);
}

/* (index, name, original shape, code, offset, record bytes) */
static PyObject *record_tuple(const bcae_ctr_record *rec, PyObject *code)
{
    PyObject *shape = PyTuple_New(rec->orig_ndim);
    if (!shape) return NULL;
    for (int d = 0; d < rec->orig_ndim; d++) {
        PyObject *v = PyLong_FromSize_t(rec->orig_shape[d]);
        if (!v) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, d, v);
    }
    /* The library checked the path is valid UTF-8 (bcae_ctr_check_path). */
    return Py_BuildValue("(Ks#NOKn)", (unsigned long long)rec->index, rec->path,
                         (Py_ssize_t)strlen(rec->path), shape, code,
                         (unsigned long long)rec->offset, (Py_ssize_t)rec->record_bytes);
}

/* A sparse record's stream (the payload the reader just verified), as
 * bytes, in place of `none` (a reference to None, released). */
static PyObject *payload_bytes(const bcae_ctr_reader *r, PyObject *none)
{
    size_t len = 0;
    const uint8_t *p = bcae_ctr_reader_payload(r, &len);
    PyObject *b = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
    Py_DECREF(none);
    return b;
}

static PyObject *reader_next(reader_obj *self, PyObject *unused)
{
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    if (!self->r) return PyErr_Format(PyExc_ValueError, "the container reader is closed");
    PyObject *code = code_array(bcae_ctr_reader_info(self->r));
    if (!code) return NULL;
    bcae_ctr_record *rec = PyMem_Malloc(sizeof *rec); /* 4 KiB of path: not on the stack */
    if (!rec) {
        Py_DECREF(code);
        return PyErr_NoMemory();
    }
    bcae_error err;
    bcae_status s;
    int end = 0;
    uint16_t *dst = code == Py_None ? NULL : PyArray_DATA((PyArrayObject *)code);
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    s = bcae_ctr_reader_next(self->r, rec, dst, &end, &err);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    PyObject *out = NULL;
    if (s)
        pybcae_raise(st, &err);
    else if (end)
        out = Py_NewRef(Py_None);
    else {
        if (!dst) code = payload_bytes(self->r, code);
        if (code) out = record_tuple(rec, code);
    }
    PyMem_Free(rec);
    Py_XDECREF(code);
    return out;
}

static int read_exact(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return got < 0 ? -1 : 1;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

/* One record by its offset and size (as next() reported them): the file's
 * header and that record's bytes, read with pread and given to a reader in
 * memory, which verifies them (CRCs, decompression) as it would in a
 * sequential read. It stops after the one record, before looking for the
 * end marker the buffer lacks. */
static PyObject *reader_read_at(reader_obj *self, PyObject *args)
{
    unsigned long long offset;
    Py_ssize_t nbytes;
    if (!PyArg_ParseTuple(args, "Kn:read_at", &offset, &nbytes)) return NULL;
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    if (!self->r) return PyErr_Format(PyExc_ValueError, "the container reader is closed");
    const char *path = PyBytes_AS_STRING(self->path);
    /* 44-byte fixed part + path + payload, the payload bounded by the format. */
    const size_t most = 44 + BCAE_CTR_PATH_MAX + BCAE_CTR_MAX_CODE_BYTES;
    if (offset < self->header_bytes || nbytes < 44 || (size_t)nbytes > most)
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                "%s: no record of %zd bytes at offset %llu", path, nbytes, offset);
    const bcae_ctr_info *info = bcae_ctr_reader_info(self->r);
    PyObject *code = code_array(info);
    size_t hb = (size_t)self->header_bytes, total = hb + (size_t)nbytes;
    unsigned char *buf = PyMem_Malloc(total);
    bcae_ctr_record *rec = PyMem_Malloc(sizeof *rec);
    if (!code || !buf || !rec) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        Py_XDECREF(code);
        PyMem_Free(buf);
        PyMem_Free(rec);
        return NULL;
    }
    bcae_error err = {0};
    bcae_status s = BCAE_OK;
    int end = 0, io = 0, saved_errno = 0;
    uint16_t *dst = code == Py_None ? NULL : PyArray_DATA((PyArrayObject *)code);
    bcae_ctr_reader *one = NULL;
    Py_BEGIN_ALLOW_THREADS
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (io = read_exact(fd, buf, hb, 0)) != 0 ||
        (io = read_exact(fd, buf + hb, (size_t)nbytes, offset)) != 0) {
        saved_errno = errno;
        if (fd < 0) io = -1;
    }
    if (fd >= 0) close(fd);
    if (!io) {
        s = bcae_ctr_reader_open_mem(buf, total, path, &one, &err);
        if (!s) s = bcae_ctr_reader_next(one, rec, dst, &end, &err);
    }
    Py_END_ALLOW_THREADS
    PyObject *out = NULL;
    if (io < 0)
        pybcae_raise_msg(st, BCAE_ERR_IO, "%s: cannot read: %s", path, strerror(saved_errno));
    else if (io > 0)
        pybcae_raise_msg(st, BCAE_ERR_FORMAT, "%s: truncated: no %zd-byte record at offset %llu",
                         path, nbytes, offset);
    else if (s)
        pybcae_raise(st, &err);
    else if (end || rec->record_bytes != (size_t)nbytes)
        pybcae_raise_msg(st, BCAE_ERR_FORMAT,
                         "%s: the bytes at offset %llu are not the %zd-byte record read before "
                         "(was the file replaced?)",
                         path, offset, nbytes);
    else {
        /* The reader in memory numbered it 0 from its own start. */
        rec->offset = offset;
        if (!dst) code = payload_bytes(one, code);
        if (code) out = record_tuple(rec, code);
    }
    bcae_ctr_reader_close(one);
    PyMem_Free(buf);
    PyMem_Free(rec);
    Py_XDECREF(code);
    return out;
}

static PyObject *reader_check_model(reader_obj *self, PyObject *arg)
{
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    if (!PyObject_TypeCheck(arg, st->model_type))
        return PyErr_Format(PyExc_TypeError, "check_model expects a bcae.Model, not %s",
                            Py_TYPE(arg)->tp_name);
    if (!self->r) return PyErr_Format(PyExc_ValueError, "the container reader is closed");
    if (is_sparse(bcae_ctr_reader_info(self->r)))
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                "%s holds sparse streams: no model decodes them",
                                PyBytes_AS_STRING(self->path));
    bcae_ctr_info mine;
    pybcae_model_ctr_info((pybcae_model *)arg, &mine);
    bcae_error err;
    if (bcae_ctr_check_model(bcae_ctr_reader_info(self->r), &mine, PyBytes_AS_STRING(self->path),
                             &err))
        return pybcae_raise(st, &err);
    Py_RETURN_NONE;
}

static PyObject *reader_close(reader_obj *self, PyObject *unused)
{
    bcae_ctr_reader *r = self->r;
    self->r = NULL;
    bcae_ctr_reader_close(r);
    Py_RETURN_NONE;
}

static PyObject *reader_enter(reader_obj *self, PyObject *unused) { return Py_NewRef(self); }

static PyObject *reader_exit(reader_obj *self, PyObject *args) { return reader_close(self, NULL); }

static PyObject *reader_get_info(reader_obj *self, void *c)
{
    if (!self->r) return PyErr_Format(PyExc_ValueError, "the container reader is closed");
    const bcae_ctr_info *info = bcae_ctr_reader_info(self->r);
    char hex[65];
    pybcae_hex(info->fingerprint, hex);
    PyObject *shape = PyTuple_New(info->code_ndim);
    if (!shape) return NULL;
    for (int d = 0; d < info->code_ndim; d++)
        PyTuple_SET_ITEM(shape, d, PyLong_FromSize_t(info->code_shape[d]));
    return Py_BuildValue("{sIsssssNss}", "version", info->version, "fingerprint", hex, "arch",
                         info->arch, "code_shape", shape, "code_dtype",
                         is_sparse(info) ? "sparse" : "float16");
}

static PyObject *reader_get_offset(reader_obj *self, void *c)
{
    if (!self->r) return PyErr_Format(PyExc_ValueError, "the container reader is closed");
    return PyLong_FromUnsignedLongLong(bcae_ctr_reader_offset(self->r));
}

static PyObject *reader_get_header_bytes(reader_obj *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->header_bytes);
}

static PyObject *reader_get_path(reader_obj *self, void *c)
{
    return PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(self->path),
                                            PyBytes_GET_SIZE(self->path));
}

static PyObject *reader_get_count_hint(reader_obj *self, void *c)
{
    uint64_t n;
    if (!bcae_ctr_peek_count(PyBytes_AS_STRING(self->path), &n)) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(n);
}

static PyMethodDef reader_methods[] = {
    {"next", (PyCFunction)reader_next, METH_NOARGS,
     "next($self, /)\n--\n\n"
     "The next record as (index, name, shape, code, offset, record_bytes), its CRCs checked and its code (float16) decompressed; None at\n"
     "the end marker (after checking the record count). Errors are final. In a file of sparse\n"
     "streams (info['code_dtype'] == 'sparse') the code is the record's stream (bytes)."},
    {"read_at", (PyCFunction)reader_read_at, METH_VARARGS,
     "read_at($self, offset, record_bytes, /)\n--\n\n"
     "The record at a byte offset, as next() reported it, verified again. `index` is 0:\n"
     "the caller knows which record it asked for."},
    {"check_model", (PyCFunction)reader_check_model, METH_O,
     "check_model($self, model, /)\n--\n\n"
     "bcae_ctr_check_model: raises bcae.UnsupportedError unless the container names this\n"
     "model (fingerprint, architecture, code shape)."},
    {"close", (PyCFunction)reader_close, METH_NOARGS, "close($self, /)\n--\n\nCloses the file."},
    {"__enter__", (PyCFunction)reader_enter, METH_NOARGS, "Returns self."},
    {"__exit__", (PyCFunction)reader_exit, METH_VARARGS, "Closes the file."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
    {"info", (getter)reader_get_info, NULL,
     "The file header: version, fingerprint (hex), arch, code_shape, code_dtype.", NULL},
    {"offset", (getter)reader_get_offset, NULL, "Bytes read and verified so far.", NULL},
    {"header_bytes", (getter)reader_get_header_bytes, NULL, "Size of the file header.", NULL},
    {"path", (getter)reader_get_path, NULL, "The file (str).", NULL},
    {"count_hint", (getter)reader_get_count_hint, NULL,
     "Records counted by a valid end marker, or None (bcae_ctr_peek_count).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot reader_slots[] = {
    {Py_tp_doc, "ContainerReader(path)\n--\n\n"
                "Low-level streaming reader of a .bcae file (bcae_ctr_reader_*); bcae.Container\n"
                "is the convenient one."},
    {Py_tp_new, reader_new},
    {Py_tp_dealloc, reader_dealloc},
    {Py_tp_methods, reader_methods},
    {Py_tp_getset, reader_getset},
    {0, NULL},
};

PyType_Spec pybcae_reader_spec = {
    "bcae.ContainerReader", sizeof(reader_obj), 0, Py_TPFLAGS_DEFAULT, reader_slots,
};

/* ---- writer ------------------------------------------------------------------ */

typedef struct writer_obj {
    PyObject_HEAD
    bcae_ctr_writer *w;
    bcae_ctr_info info;
    int zstd;
    bcae_ctr_stats stats; /* the last stats, kept once the writer is gone */
    PyThread_type_lock lock;
} writer_obj;

static void writer_dealloc(writer_obj *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    /* Never finished: nothing appears at the path (or the appended file is
     * restored), as after an interrupted `bcae compress`. */
    bcae_ctr_writer_abort(self->w);
    if (self->lock) PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *writer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "model", "append", "repair", "zstd", NULL};
    PyObject *path = NULL, *model;
    int append = 0, repair = 0, zstd = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O|$ppi:ContainerWriter", kwlist,
                                     pybcae_path_converter, &path, &model, &append, &repair, &zstd))
        return NULL;
    pybcae_state *st = PyType_GetModuleState(type);
    if (model != Py_None && !PyObject_TypeCheck(model, st->model_type)) {
        Py_DECREF(path);
        return PyErr_Format(PyExc_TypeError, "model must be a bcae.Model or None (sparse), not %s",
                            Py_TYPE(model)->tp_name);
    }
    if (model == Py_None && zstd) {
        Py_DECREF(path);
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                "sparse streams take no zstd stage (they are entropy-coded)");
    }
    /* Checked here so that a bad level fails before a file is created. */
    if (zstd < 0 || zstd > 22) {
        Py_DECREF(path);
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT, "zstd level %d (0 = none, 1 to 22)",
                                zstd);
    }
    if (repair && !append) {
        Py_DECREF(path);
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT, "repair=True needs append=True");
    }
    writer_obj *self = (writer_obj *)type->tp_alloc(type, 0);
    if (!self) {
        Py_DECREF(path);
        return NULL;
    }
    self->zstd = zstd;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        Py_DECREF(path);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (model == Py_None)
        bcae_ctr_sparse_info(&self->info);
    else
        pybcae_model_ctr_info((pybcae_model *)model, &self->info);
    const char *cpath = PyBytes_AS_STRING(path);
    bcae_error err;
    bcae_status s;
    Py_BEGIN_ALLOW_THREADS
    s = append ? bcae_ctr_append_open(cpath, &self->info, repair ? BCAE_CTR_APPEND_REPAIR : 0,
                                      &self->w, &err)
               : bcae_ctr_writer_open(cpath, &self->info, &self->w, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (s) {
        Py_DECREF(self);
        return pybcae_raise(st, &err);
    }
    bcae_ctr_writer_stats(self->w, &self->stats);
    return (PyObject *)self;
}

static int parse_orig_shape(PyObject *obj, size_t *shape, int *ndim)
{
    PyObject *seq = PySequence_Fast(obj, "shape must be a sequence of 1 to 4 ints");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > BCAE_CTR_MAX_NDIM) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "shape must have 1 to 4 dimensions, not %zd", n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t v = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i), PyExc_OverflowError);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (v < 1) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "shape dimensions must be positive, not %zd", v);
            return -1;
        }
        shape[i] = (size_t)v;
    }
    *ndim = (int)n;
    Py_DECREF(seq);
    return 0;
}

static PyObject *writer_append(writer_obj *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "code", "shape", NULL};
    PyObject *code_obj, *shape_obj = NULL;
    const char *name;
    Py_ssize_t name_len;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s#O|O:append", kwlist, &name, &name_len, &code_obj,
                                     &shape_obj))
        return NULL;
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    if (!self->w) return PyErr_Format(PyExc_ValueError, "the container writer is closed");
    if (self->info.code_dtype == BCAE_CTR_DTYPE_SPARSE)
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                "this file holds sparse streams: add them with append_stream");
    size_t shape[BCAE_CTR_MAX_NDIM] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    int ndim = 3;
    if (shape_obj && shape_obj != Py_None && parse_orig_shape(shape_obj, shape, &ndim)) return NULL;
    PyArrayObject *code = pybcae_exact_array(code_obj, NPY_FLOAT16, "code");
    if (!code) return NULL;
    int ok = PyArray_NDIM(code) == self->info.code_ndim;
    for (int d = 0; ok && d < self->info.code_ndim; d++)
        ok = (size_t)PyArray_DIM(code, d) == self->info.code_shape[d];
    if (!ok) {
        Py_DECREF(code);
        return pybcae_raise_msg(st, BCAE_ERR_SHAPE,
                                "code must have the container's code shape (%zu dims, %zu "
                                "elements), one wedge's code",
                                (size_t)self->info.code_ndim, bcae_ctr_code_count(&self->info));
    }
    bcae_error err;
    bcae_status s;
    const uint16_t *data = PyArray_DATA(code);
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    s = bcae_ctr_check_path(name, (size_t)name_len, &err);
    if (!s) s = bcae_ctr_writer_append(self->w, name, shape, ndim, data, self->zstd, &err);
    if (!s) bcae_ctr_writer_stats(self->w, &self->stats);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    Py_DECREF(code);
    if (s) return pybcae_raise(st, &err);
    Py_RETURN_NONE;
}

static PyObject *writer_append_stream(writer_obj *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "stream", "shape", NULL};
    PyObject *shape_obj = NULL;
    const char *name;
    Py_ssize_t name_len;
    Py_buffer view;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s#y*|O:append_stream", kwlist, &name, &name_len,
                                     &view, &shape_obj))
        return NULL;
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    size_t shape[BCAE_CTR_MAX_NDIM] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    int ndim = 3;
    PyObject *out = NULL;
    if (!self->w)
        PyErr_Format(PyExc_ValueError, "the container writer is closed");
    else if (self->info.code_dtype != BCAE_CTR_DTYPE_SPARSE)
        pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                         "append_stream adds sparse streams; this file holds a model's codes");
    else if (!(shape_obj && shape_obj != Py_None && parse_orig_shape(shape_obj, shape, &ndim))) {
        bcae_error err;
        bcae_status s;
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        s = bcae_ctr_check_path(name, (size_t)name_len, &err);
        if (!s)
            s = bcae_ctr_writer_append_stream(self->w, name, shape, ndim, view.buf,
                                              (size_t)view.len, &err);
        if (!s) bcae_ctr_writer_stats(self->w, &self->stats);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
        if (s)
            pybcae_raise(st, &err);
        else
            out = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *stats_dict(const bcae_ctr_stats *s)
{
    return Py_BuildValue("{sKsKsKsKsKsK}", "records", (unsigned long long)s->records, "file_bytes",
                         (unsigned long long)s->file_bytes, "new_records",
                         (unsigned long long)s->new_records, "new_orig_bytes",
                         (unsigned long long)s->new_orig_bytes, "new_bytes",
                         (unsigned long long)s->new_bytes, "repaired_bytes",
                         (unsigned long long)s->repaired_bytes);
}

static PyObject *writer_finish(writer_obj *self, PyObject *unused)
{
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    if (!self->w) return PyErr_Format(PyExc_ValueError, "the container writer is closed");
    bcae_ctr_writer *w = self->w;
    self->w = NULL;
    bcae_error err;
    bcae_status s;
    bcae_ctr_writer_stats(w, &self->stats);
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    s = bcae_ctr_writer_finish(w, &err); /* frees w whatever happens */
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    if (s) return pybcae_raise(st, &err);
    return stats_dict(&self->stats);
}

static PyObject *writer_abort(writer_obj *self, PyObject *unused)
{
    bcae_ctr_writer *w = self->w;
    self->w = NULL;
    bcae_ctr_writer_abort(w);
    Py_RETURN_NONE;
}

static PyObject *writer_enter(writer_obj *self, PyObject *unused) { return Py_NewRef(self); }

static PyObject *writer_exit(writer_obj *self, PyObject *args)
{
    PyObject *type, *value, *tb;
    if (!PyArg_ParseTuple(args, "OOO:__exit__", &type, &value, &tb)) return NULL;
    if (!self->w) Py_RETURN_FALSE; /* finished or aborted inside the block */
    PyObject *r = type == Py_None ? writer_finish(self, NULL) : writer_abort(self, NULL);
    if (!r) return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *writer_get_stats(writer_obj *self, void *c) { return stats_dict(&self->stats); }

static PyObject *writer_get_closed(writer_obj *self, void *c) { return PyBool_FromLong(!self->w); }

static PyMethodDef writer_methods[] = {
    {"append", (PyCFunction)(void (*)(void))writer_append, METH_VARARGS | METH_KEYWORDS,
     "append($self, /, name, code, shape=None)\n--\n\n"
     "Adds one record: its relative path, one float16 code of the container's code\n"
     "shape, and the original array's shape (None: (192, 249, 16)). After a failure only abort() remains."},
    {"append_stream", (PyCFunction)(void (*)(void))writer_append_stream,
     METH_VARARGS | METH_KEYWORDS,
     "append_stream($self, /, name, stream, shape=None)\n--\n\n"
     "Adds one record to a file of sparse streams (opened with model=None): its relative path\n"
     "and one stream (bcae.sparse_encode), stored as it is. After a failure only abort() remains."},
    {"finish", (PyCFunction)writer_finish, METH_NOARGS,
     "finish($self, /)\n--\n\n"
     "Writes the end marker, fsyncs and renames the file into place; returns the stats."},
    {"abort", (PyCFunction)writer_abort, METH_NOARGS,
     "abort($self, /)\n--\n\n"
     "Discards what this writer added: no new file appears, an appended one is restored."},
    {"__enter__", (PyCFunction)writer_enter, METH_NOARGS, "Returns self."},
    {"__exit__", (PyCFunction)writer_exit, METH_VARARGS,
     "finish() if the block succeeded, abort() if it raised."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef writer_getset[] = {
    {"stats", (getter)writer_get_stats, NULL,
     "records, file_bytes, new_records, new_orig_bytes, new_bytes, repaired_bytes.", NULL},
    {"closed", (getter)writer_get_closed, NULL, "True once finished or aborted.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot writer_slots[] = {
    {Py_tp_doc, "ContainerWriterBase(path, model, *, append=False, repair=False, zstd=0)\n--\n\n"
                "Low-level .bcae writer (bcae_ctr_writer_*): written under a temporary name and\n"
                "renamed on finish(); bcae.ContainerWriter adds encoding. model=None writes a\n"
                "file of sparse streams (format version 2; append_stream)."},
    {Py_tp_new, writer_new},
    {Py_tp_dealloc, writer_dealloc},
    {Py_tp_methods, writer_methods},
    {Py_tp_getset, writer_getset},
    {0, NULL},
};

PyType_Spec pybcae_writer_spec = {
    "bcae.ContainerWriterBase", sizeof(writer_obj), 0, Py_TPFLAGS_DEFAULT, writer_slots,
};
