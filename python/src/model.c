/* bcae.Model: a weights file bound to a codec; wedges <-> fp16 codes. */
#include "pybcae.h"

#include "bcae_h5z.h"

static void model_dealloc(pybcae_model *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    bcae_codec_free(self->codec);
    bcae_model_free(self->model);
    Py_XDECREF(self->path);
    if (self->lock) PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *model_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "precision", "device", "batch", "threads",
                             "decoder_precision", NULL};
    PyObject *path_obj = Py_None, *threads_obj = Py_None;
    const char *precision = "fp32", *device = "auto", *dec_precision = "fp32";
    int batch = 4;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$ssiOs:Model", kwlist, &path_obj, &precision,
                                     &device, &batch, &threads_obj, &dec_precision))
        return NULL;
    pybcae_state *st = PyType_GetModuleState(type);
    bcae_error err;
    bcae_codec_options opt = {0};
    if (bcae_precision_parse(precision, &opt.precision, &err) ||
        bcae_precision_parse(dec_precision, &opt.decoder_precision, &err) ||
        bcae_device_parse(device, &opt.device, &err))
        return pybcae_raise(st, &err);
    /* The CLI's --batch range; the library would take up to 256. */
    if (batch < 1 || batch > 64)
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT, "batch must be in [1, 64], not %d",
                                batch);
    opt.batch = batch;
    if (threads_obj == Py_None) {
        opt.threads = pybcae_default_threads();
        if (opt.threads < 0) return NULL;
    } else {
        long t = PyLong_AsLong(threads_obj);
        if (t == -1 && PyErr_Occurred()) return NULL;
        if (t < 1 || t > 4096)
            return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                    "threads must be in [1, 4096] or None, not %ld", t);
        opt.threads = (int)t;
    }

    PyObject *path_bytes = NULL;
    if (path_obj == Py_None) {
        char found[4096];
        if (bcae_default_model_path(found, sizeof found, &err)) return pybcae_raise(st, &err);
        path_bytes = PyBytes_FromString(found);
        if (!path_bytes) return NULL;
    } else if (!PyUnicode_FSConverter(path_obj, &path_bytes)) {
        return NULL;
    }
    pybcae_model *self = (pybcae_model *)type->tp_alloc(type, 0);
    if (!self) {
        Py_DECREF(path_bytes);
        return NULL;
    }
    self->opt = opt;
    self->path = PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(path_bytes),
                                                   PyBytes_GET_SIZE(path_bytes));
    self->lock = PyThread_allocate_lock();
    if (!self->path || !self->lock) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        Py_DECREF(path_bytes);
        Py_DECREF(self);
        return NULL;
    }
    const char *cpath = PyBytes_AS_STRING(path_bytes);
    bcae_status s;
    /* Loading hashes the weights and an int8 codec calibrates on a
     * simulated event: seconds, during which other threads may run. */
    Py_BEGIN_ALLOW_THREADS
    s = bcae_model_load(cpath, &self->model, &err);
    if (!s) s = bcae_codec_create(self->model, &self->opt, &self->codec, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_bytes);
    if (s) {
        Py_DECREF(self);
        return pybcae_raise(st, &err);
    }
    return (PyObject *)self;
}

void pybcae_model_ctr_info(const pybcae_model *m, bcae_ctr_info *info)
{
    memset(info, 0, sizeof *info);
    info->version = BCAE_CTR_VERSION;
    bcae_model_fingerprint(m->model, info->fingerprint);
    snprintf(info->arch, sizeof info->arch, "%s", bcae_model_arch(m->model));
    info->code_dtype = BCAE_CTR_DTYPE_F16;
    info->code_ndim = bcae_model_code_shape(m->model, info->code_shape);
}

static PyObject *shape_tuple(const size_t *shape, int nd, npy_intp lead)
{
    PyObject *t = PyTuple_New(nd + (lead >= 0));
    if (!t) return NULL;
    int k = 0;
    if (lead >= 0) PyTuple_SET_ITEM(t, k++, PyLong_FromSsize_t(lead));
    for (int d = 0; d < nd; d++) PyTuple_SET_ITEM(t, k++, PyLong_FromSize_t(shape[d]));
    for (int i = 0; i < PyTuple_GET_SIZE(t); i++)
        if (!PyTuple_GET_ITEM(t, i)) {
            Py_DECREF(t);
            return NULL;
        }
    return t;
}

static PyObject *model_encode(pybcae_model *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"wedges", NULL};
    PyObject *obj;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:encode", kwlist, &obj)) return NULL;
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    PyArrayObject *in = pybcae_exact_array(obj, NPY_UINT16, "wedges");
    if (!in) return NULL;
    size_t n;
    int single;
    if (pybcae_wedge_count(st, in, "wedges", &n, &single)) {
        Py_DECREF(in);
        return NULL;
    }
    size_t cshape[4];
    int cnd = bcae_model_code_shape(self->model, cshape);
    npy_intp dims[5];
    int k = 0;
    if (!single) dims[k++] = (npy_intp)n;
    for (int d = 0; d < cnd; d++) dims[k++] = (npy_intp)cshape[d];
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(k, dims, NPY_FLOAT16);
    if (!out) {
        Py_DECREF(in);
        return NULL;
    }
    bcae_error err;
    bcae_status s = BCAE_OK;
    if (n) {
        const uint16_t *adc = PyArray_DATA(in);
        uint16_t *codes = PyArray_DATA(out);
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        s = bcae_encode(self->codec, adc, n, codes, &err);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(in);
    if (s) {
        Py_DECREF(out);
        return pybcae_raise(st, &err);
    }
    return (PyObject *)out;
}

static PyObject *model_decode(pybcae_model *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"codes", "output", NULL};
    PyObject *obj;
    const char *output = "adc";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$s:decode", kwlist, &obj, &output)) return NULL;
    pybcae_state *st = pybcae_type_state((PyObject *)self);
    int log_out = !strcmp(output, "log");
    if (!log_out && strcmp(output, "adc"))
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                "output must be 'adc' or 'log', not '%s'", output);
    PyArrayObject *in = pybcae_exact_array(obj, NPY_FLOAT16, "codes");
    if (!in) return NULL;
    size_t cshape[4];
    int cnd = bcae_model_code_shape(self->model, cshape);
    int nd = PyArray_NDIM(in);
    const npy_intp *d = PyArray_DIMS(in);
    int single = nd == cnd, ok = nd == cnd || nd == cnd + 1;
    for (int i = 0; ok && i < cnd; i++) ok = (size_t)d[nd - cnd + i] == cshape[i];
    if (!ok) {
        PyObject *want = shape_tuple(cshape, cnd, -1);
        PyObject *have = PyObject_GetAttrString((PyObject *)in, "shape");
        PyObject *text = want && have ? PyUnicode_FromFormat("%S or (N,) + that, not %S", want, have)
                                      : NULL;
        if (text)
            pybcae_raise_msg(st, BCAE_ERR_SHAPE, "codes of this %s model must have shape %s",
                             bcae_model_arch(self->model), PyUnicode_AsUTF8(text));
        Py_XDECREF(text);
        Py_XDECREF(want);
        Py_XDECREF(have);
        Py_DECREF(in);
        return NULL;
    }
    size_t n = single ? 1 : (size_t)d[0];
    npy_intp dims[4];
    int k = 0;
    if (!single) dims[k++] = (npy_intp)n;
    dims[k++] = BCAE_WEDGE_AZIMUTH;
    dims[k++] = BCAE_WEDGE_Z;
    dims[k++] = BCAE_WEDGE_LAYERS;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(k, dims, log_out ? NPY_FLOAT32 : NPY_UINT16);
    if (!out) {
        Py_DECREF(in);
        return NULL;
    }
    bcae_error err;
    bcae_status s = BCAE_OK;
    if (n) {
        const uint16_t *codes = PyArray_DATA(in);
        void *dst = PyArray_DATA(out);
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        s = bcae_decode(self->codec, codes, n, log_out ? NULL : dst, log_out ? dst : NULL, &err);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(in);
    if (s) {
        Py_DECREF(out);
        return pybcae_raise(st, &err);
    }
    return (PyObject *)out;
}

static PyObject *model_hdf5_cd_values(pybcae_model *self, PyObject *unused)
{
    uint8_t fp[32];
    unsigned cd[BCAE_H5Z_CD_WEDGES];
    bcae_model_fingerprint(self->model, fp);
    cd[BCAE_H5Z_CD_VERSION] = BCAE_H5Z_VERSION;
    cd[BCAE_H5Z_CD_PRECISION] = (unsigned)self->opt.precision;
    bcae_h5z_pack_fingerprint(fp, cd + BCAE_H5Z_CD_FINGERPRINT);
    PyObject *t = PyTuple_New(BCAE_H5Z_CD_WEDGES);
    if (!t) return NULL;
    for (int i = 0; i < BCAE_H5Z_CD_WEDGES; i++) {
        PyObject *v = PyLong_FromUnsignedLong(cd[i]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyObject *model_get_arch(pybcae_model *self, void *c)
{
    return PyUnicode_FromString(bcae_model_arch(self->model));
}

static PyObject *model_get_code_shape(pybcae_model *self, void *c)
{
    size_t shape[4];
    int nd = bcae_model_code_shape(self->model, shape);
    return shape_tuple(shape, nd, -1);
}

static PyObject *model_get_output_shape(pybcae_model *self, void *c)
{
    size_t shape[4];
    int nd = bcae_model_output_shape(self->model, shape);
    return shape_tuple(shape, nd, -1);
}

static PyObject *model_get_code_elements(pybcae_model *self, void *c)
{
    return PyLong_FromSize_t(bcae_model_code_elements(self->model));
}

static PyObject *model_get_fingerprint(pybcae_model *self, void *c)
{
    uint8_t fp[32];
    char hex[65];
    bcae_model_fingerprint(self->model, fp);
    pybcae_hex(fp, hex);
    return PyUnicode_FromString(hex);
}

static PyObject *model_get_path(pybcae_model *self, void *c) { return Py_NewRef(self->path); }

static PyObject *model_get_precision(pybcae_model *self, void *c)
{
    return PyUnicode_FromString(bcae_precision_name(self->opt.precision));
}

static PyObject *model_get_decoder_precision(pybcae_model *self, void *c)
{
    return PyUnicode_FromString(bcae_precision_name(self->opt.decoder_precision));
}

static PyObject *model_get_device(pybcae_model *self, void *c)
{
    return PyUnicode_FromString(bcae_device_name(self->opt.device));
}

static PyObject *model_get_batch(pybcae_model *self, void *c) { return PyLong_FromLong(self->opt.batch); }

static PyObject *model_get_threads(pybcae_model *self, void *c)
{
    return PyLong_FromLong(self->opt.threads);
}

static PyObject *model_get_ratio(pybcae_model *self, void *c)
{
    return PyFloat_FromDouble((double)BCAE_WEDGE_VOXELS /
                              (double)bcae_model_code_elements(self->model));
}

static PyObject *model_repr(pybcae_model *self)
{
    size_t shape[4];
    int nd = bcae_model_code_shape(self->model, shape);
    PyObject *cs = shape_tuple(shape, nd, -1);
    if (!cs) return NULL;
    PyObject *r = PyUnicode_FromFormat("<bcae.Model %s %R code %R precision=%s>",
                                       bcae_model_arch(self->model), self->path, cs,
                                       bcae_precision_name(self->opt.precision));
    Py_DECREF(cs);
    return r;
}

static PyMethodDef model_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))model_encode, METH_VARARGS | METH_KEYWORDS,
     "encode($self, /, wedges)\n--\n\n"
     "Encode raw-ADC wedges into codes: uint16 (192, 249, 16) -> float16 code_shape, or\n"
     "(N, 192, 249, 16) -> (N,) + code_shape. Values must be in [0, 1023] (else\n"
     "bcae.RangeError); any other dtype is a TypeError, any other shape a\n"
     "bcae.ShapeError. The encoder runs in this model's precision, `batch` wedges per\n"
     "pass, with the GIL released; the codes equal `bcae compress`'s for the same\n"
     "options, bit for bit."},
    {"decode", (PyCFunction)(void (*)(void))model_decode, METH_VARARGS | METH_KEYWORDS,
     "decode($self, /, codes, *, output='adc')\n--\n\n"
     "Decode float16 codes (code_shape, or (N,) + code_shape) into wedges: uint16 raw\n"
     "ADC (output='adc') or float32 log2(ADC+1) (output='log'), shape (192, 249, 16)\n"
     "or (N, 192, 249, 16). The same values as `bcae decompress` (whatever the batch).\n"
     "Non-finite codes raise bcae.FormatError."},
    {"hdf5_cd_values", (PyCFunction)model_hdf5_cd_values, METH_NOARGS,
     "hdf5_cd_values($self, /)\n--\n\n"
     "The HDF5 filter's cd_values for this model and precision: (version, precision,\n"
     "8 words of fingerprint); the plugin adds the wedges per chunk (docs/HDF5.md)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef model_getset[] = {
    {"path", (getter)model_get_path, NULL, "The weights file (str).", NULL},
    {"arch", (getter)model_get_arch, NULL, "Architecture: 'bcae-2d', 'bcae++', 'bcae-ht' or 'bcae'.", NULL},
    {"code_shape", (getter)model_get_code_shape, NULL, "Shape of one wedge's code (tuple).", NULL},
    {"code_elements", (getter)model_get_code_elements, NULL, "Elements of one code.", NULL},
    {"output_shape", (getter)model_get_output_shape, NULL,
     "Shape of one wedge's cropped network output (bcae_model_output_shape).", NULL},
    {"ratio", (getter)model_get_ratio, NULL,
     "Compression ratio of the raw codes: wedge voxels / code elements (both 16-bit).", NULL},
    {"fingerprint", (getter)model_get_fingerprint, NULL,
     "SHA-256 of the weights (64 hex digits): names the model in containers and HDF5.", NULL},
    {"precision", (getter)model_get_precision, NULL, "The encoder's arithmetic: 'fp32', 'bf16' or 'int8'.", NULL},
    {"decoder_precision", (getter)model_get_decoder_precision, NULL, "The decoders' arithmetic: 'fp32' or 'bf16'.", NULL},
    {"device", (getter)model_get_device, NULL, "Where the networks run: 'auto', 'cpu' or 'cuda'.", NULL},
    {"batch", (getter)model_get_batch, NULL, "Wedges per encoder pass.", NULL},
    {"threads", (getter)model_get_threads, NULL, "Threads (0: all cores).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot model_slots[] = {
    {Py_tp_doc,
     "Model(path=None, *, precision='fp32', device='auto', batch=4, threads=None)\n--\n\n"
     "A BCAE weights file (safetensors) with a codec bound to it: the options of\n"
     "`bcae compress` / `bcae decompress` (--model, --precision, --device, --batch,\n"
     "--threads). path=None loads the default model (bcae.default_model_path()).\n"
     "threads=None reads $BCAE_NUM_THREADS, else uses all cores. precision is the\n"
     "encoder's ('fp32', 'bf16' or 'half', 'int8'); decoders always run in fp32.\n"
     "One model may be shared by threads: calls are serialised, with the GIL released."},
    {Py_tp_new, model_new},
    {Py_tp_dealloc, model_dealloc},
    {Py_tp_repr, model_repr},
    {Py_tp_methods, model_methods},
    {Py_tp_getset, model_getset},
    {0, NULL},
};

PyType_Spec pybcae_model_spec = {
    "bcae.Model", sizeof(pybcae_model), 0, Py_TPFLAGS_DEFAULT, model_slots,
};
