/* Datasets, the simulator and the metrics: wedges as NumPy arrays. */
#include "pybcae.h"

#include <math.h>
#include <stdlib.h>

/* ---- bcae.Dataset ------------------------------------------------------------ */

typedef struct dataset_obj {
    PyObject_HEAD
    bcae_dataset *ds;
    /* bcae.h promises thread safety for different objects only; loads run
     * with the GIL released, so one dataset's loads are serialised. */
    PyThread_type_lock lock;
} dataset_obj;

static void dataset_dealloc(dataset_obj *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    bcae_dataset_close(self->ds);
    if (self->lock) PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *dataset_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dir", "split", NULL};
    PyObject *dir = NULL;
    const char *split = "test";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|s:Dataset", kwlist, pybcae_path_converter, &dir,
                                     &split))
        return NULL;
    pybcae_state *st = PyType_GetModuleState(type);
    dataset_obj *self = (dataset_obj *)type->tp_alloc(type, 0);
    if (!self || !(self->lock = PyThread_allocate_lock())) {
        if (self && !PyErr_Occurred()) PyErr_NoMemory();
        Py_XDECREF(self);
        Py_DECREF(dir);
        return NULL;
    }
    bcae_error err;
    bcae_status s;
    const char *cdir = PyBytes_AS_STRING(dir);
    Py_BEGIN_ALLOW_THREADS
    s = bcae_dataset_open(cdir, split, &self->ds, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(dir);
    if (s) {
        Py_DECREF(self);
        return pybcae_raise(st, &err);
    }
    return (PyObject *)self;
}

static Py_ssize_t dataset_len(dataset_obj *self) { return (Py_ssize_t)bcae_dataset_size(self->ds); }

/* Loads wedges idx[0..n) into dst; raises and returns -1 on failure. */
static int dataset_load_into(dataset_obj *self, const size_t *idx, size_t n, uint16_t *dst)
{
    bcae_error err;
    bcae_status s = BCAE_OK;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    for (size_t i = 0; i < n && !s; i++)
        s = bcae_dataset_load(self->ds, idx[i], dst + i * BCAE_WEDGE_VOXELS, &err);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    if (s) {
        pybcae_raise(pybcae_type_state((PyObject *)self), &err);
        return -1;
    }
    return 0;
}

static PyObject *dataset_item(dataset_obj *self, Py_ssize_t i)
{
    if (i < 0 || (size_t)i >= bcae_dataset_size(self->ds))
        return PyErr_Format(PyExc_IndexError, "dataset index %zd out of range", i);
    npy_intp dims[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    PyObject *out = PyArray_SimpleNew(3, dims, NPY_UINT16);
    size_t idx = (size_t)i;
    if (!out) return NULL;
    if (dataset_load_into(self, &idx, 1, PyArray_DATA((PyArrayObject *)out))) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *dataset_load(dataset_obj *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"indices", NULL};
    PyObject *indices = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:load", kwlist, &indices)) return NULL;
    size_t size = bcae_dataset_size(self->ds), n = size;
    size_t *idx = NULL;
    if (indices != Py_None) {
        PyObject *seq = PySequence_Fast(indices, "indices must be a sequence of ints");
        if (!seq) return NULL;
        n = (size_t)PySequence_Fast_GET_SIZE(seq);
        idx = PyMem_Malloc((n ? n : 1) * sizeof *idx);
        if (!idx) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
        for (size_t i = 0; i < n; i++) {
            Py_ssize_t v = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i),
                                              PyExc_IndexError);
            if (v == -1 && PyErr_Occurred()) {
                Py_DECREF(seq);
                PyMem_Free(idx);
                return NULL;
            }
            if (v < 0) v += (Py_ssize_t)size;
            if (v < 0 || (size_t)v >= size) {
                Py_DECREF(seq);
                PyMem_Free(idx);
                return PyErr_Format(PyExc_IndexError, "dataset index %zd out of range", v);
            }
            idx[i] = (size_t)v;
        }
        Py_DECREF(seq);
    } else {
        idx = PyMem_Malloc((n ? n : 1) * sizeof *idx);
        if (!idx) return PyErr_NoMemory();
        for (size_t i = 0; i < n; i++) idx[i] = i;
    }
    npy_intp dims[4] = {(npy_intp)n, BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    PyObject *out = PyArray_SimpleNew(4, dims, NPY_UINT16);
    if (out && dataset_load_into(self, idx, n, PyArray_DATA((PyArrayObject *)out))) Py_CLEAR(out);
    PyMem_Free(idx);
    return out;
}

static PyObject *dataset_get_paths(dataset_obj *self, void *c)
{
    size_t n = bcae_dataset_size(self->ds);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    if (!t) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(bcae_dataset_relpath(self->ds, i));
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, s);
    }
    return t;
}

static PyObject *dataset_get_root(dataset_obj *self, void *c)
{
    return PyUnicode_DecodeFSDefault(bcae_dataset_root(self->ds));
}

static PyMethodDef dataset_methods[] = {
    {"load", (PyCFunction)(void (*)(void))dataset_load, METH_VARARGS | METH_KEYWORDS,
     "load($self, /, indices=None)\n--\n\n"
     "The wedges at `indices` (all when None) as uint16 (N, 192, 249, 16), each\n"
     "checked as `bcae compress` checks its inputs (shape, integer values in [0, 1023])."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dataset_getset[] = {
    {"paths", (getter)dataset_get_paths, NULL,
     "The manifest's relative paths (tuple of str): the names `bcae compress` stores.", NULL},
    {"root", (getter)dataset_get_root, NULL, "The folder the paths are relative to.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot dataset_slots[] = {
    {Py_tp_doc, "Dataset(dir, split='test')\n--\n\n"
                "A dataset folder's manifest (DIR/<split>.txt or DIR/outer/<split>.txt), read as\n"
                "`bcae compress DIR --split SPLIT` reads it. len(ds), ds[i] (one uint16 wedge),\n"
                "iteration, ds.load(indices), ds.paths, ds.root."},
    {Py_tp_new, dataset_new},
    {Py_tp_dealloc, dataset_dealloc},
    {Py_sq_length, dataset_len},
    {Py_sq_item, dataset_item},
    {Py_tp_methods, dataset_methods},
    {Py_tp_getset, dataset_getset},
    {0, NULL},
};

PyType_Spec pybcae_dataset_spec = {
    "bcae.Dataset", sizeof(dataset_obj), 0, Py_TPFLAGS_DEFAULT, dataset_slots,
};

/* ---- metrics ------------------------------------------------------------------- */

const char pybcae_metrics_doc[] =
    "metrics($module, /, original, reconstructed)\n--\n\n"
    "The metrics of `bcae metrics --json` for raw-ADC wedges compared in log2(ADC+1)\n"
    "space (docs/METRICS.md): occupancy, mse, mae, psnr, psnr_db, precision, recall,\n"
    "with None where the CLI prints null (NaN or infinite). Both arguments uint16,\n"
    "(192, 249, 16) -> one dict, or (N, 192, 249, 16) -> a list of N dicts; values\n"
    "must be in [0, 1023] as in a wedge file.";

static PyObject *json_number(double v)
{
    if (isfinite(v)) return PyFloat_FromDouble(v);
    Py_RETURN_NONE;
}

static PyObject *metrics_dict(const bcae_metrics *m)
{
    return Py_BuildValue("{sNsNsNsNsNsNsN}", "occupancy", json_number(m->occupancy), "mse",
                         json_number(m->mse), "mae", json_number(m->mae), "psnr",
                         json_number(m->psnr), "psnr_db", json_number(m->psnr_db), "precision",
                         json_number(m->precision), "recall", json_number(m->recall));
}

/* A view of wedge i as a bcae_array, for bcae_wedge_from_array's check. */
static bcae_status check_wedge(const uint16_t *data, const char *name, uint16_t *copy,
                               bcae_error *err)
{
    bcae_array a = {BCAE_DTYPE_U16, 3, {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS},
                    (void *)data};
    return bcae_wedge_from_array(&a, name, copy, err);
}

PyObject *pybcae_metrics(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"original", "reconstructed", NULL};
    PyObject *o1, *o2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:metrics", kwlist, &o1, &o2)) return NULL;
    pybcae_state *st = pybcae_module_state(module);
    PyArrayObject *a = pybcae_exact_array(o1, NPY_UINT16, "original");
    PyArrayObject *b = a ? pybcae_exact_array(o2, NPY_UINT16, "reconstructed") : NULL;
    PyObject *out = NULL;
    size_t na, nb;
    int sa, sb;
    uint16_t *x = NULL, *y = NULL;
    bcae_metrics *m = NULL;
    if (!a || !b || pybcae_wedge_count(st, a, "original", &na, &sa) ||
        pybcae_wedge_count(st, b, "reconstructed", &nb, &sb))
        goto done;
    if (na != nb || sa != sb) {
        pybcae_raise_msg(st, BCAE_ERR_SHAPE,
                         "original and reconstructed must have the same shape (%zu and %zu wedges)",
                         na, nb);
        goto done;
    }
    x = PyMem_Malloc(BCAE_WEDGE_VOXELS * sizeof *x);
    y = PyMem_Malloc(BCAE_WEDGE_VOXELS * sizeof *y);
    m = PyMem_Malloc((na ? na : 1) * sizeof *m);
    if (!x || !y || !m) {
        PyErr_NoMemory();
        goto done;
    }
    bcae_error err;
    bcae_status s = BCAE_OK;
    const uint16_t *pa = PyArray_DATA(a), *pb = PyArray_DATA(b);
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < na && !s; i++) {
        /* The CLI reads both with bcae_wedge_load: the same check here. */
        s = check_wedge(pa + i * BCAE_WEDGE_VOXELS, "original", x, &err);
        if (!s) s = check_wedge(pb + i * BCAE_WEDGE_VOXELS, "reconstructed", y, &err);
        if (!s) bcae_metrics_adc(x, y, BCAE_WEDGE_VOXELS, &m[i]);
    }
    Py_END_ALLOW_THREADS
    if (s) {
        pybcae_raise(st, &err);
        goto done;
    }
    if (sa) {
        out = metrics_dict(&m[0]);
    } else {
        out = PyList_New((Py_ssize_t)na);
        for (size_t i = 0; out && i < na; i++) {
            PyObject *d = metrics_dict(&m[i]);
            if (!d) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, (Py_ssize_t)i, d);
        }
    }
done:
    PyMem_Free(x);
    PyMem_Free(y);
    PyMem_Free(m);
    Py_XDECREF(a);
    Py_XDECREF(b);
    return out;
}

/* ---- the simulator --------------------------------------------------------------- */

const char pybcae_simulate_doc[] =
    "simulate($module, /, events=1, seed=1, first_event=0, threads=None, knobs=None, info=False)\n--\n\n"
    "Simulate events first_event .. first_event+events-1 of the sequence seeded by\n"
    "`seed` (docs/SIMULATOR.md): uint16 wedges (24 * events, 192, 249, 16), wedge\n"
    "24 * e + 2 * sector + side of event e, the files `bcae simulate` writes as\n"
    "12-2_<sector>-<side>/sim<seed>_<event>.npy. knobs: {name: value} (sim_knobs()).\n"
    "Deterministic whatever `threads`. info=True also returns one dict per event.";

PyObject *pybcae_simulate(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"events", "seed", "first_event", "threads", "knobs", "info", NULL};
    Py_ssize_t events = 1;
    unsigned long long seed = 1, first = 0;
    PyObject *threads_obj = Py_None, *knobs = Py_None;
    int want_info = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|nKKOOp:simulate", kwlist, &events, &seed, &first,
                                     &threads_obj, &knobs, &want_info))
        return NULL;
    pybcae_state *st = pybcae_module_state(module);
    if (events < 1 || events > 100000)
        return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT, "events must be in [1, 100000], not %zd",
                                events);
    int threads;
    if (threads_obj == Py_None) {
        if ((threads = pybcae_default_threads()) < 0) return NULL;
    } else {
        long t = PyLong_AsLong(threads_obj);
        if (t == -1 && PyErr_Occurred()) return NULL;
        if (t < 1 || t > 4096)
            return pybcae_raise_msg(st, BCAE_ERR_INVALID_ARGUMENT,
                                    "threads must be in [1, 4096] or None, not %ld", t);
        threads = (int)t;
    }
    bcae_sim_config cfg;
    bcae_sim_config_default(&cfg);
    bcae_error err;
    if (knobs != Py_None) {
        if (!PyDict_Check(knobs)) return PyErr_Format(PyExc_TypeError, "knobs must be a dict");
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(knobs, &pos, &k, &v)) {
            const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
            if (!name) return PyErr_Format(PyExc_TypeError, "knob names must be str");
            double value = PyFloat_AsDouble(v);
            if (value == -1.0 && PyErr_Occurred()) return NULL;
            if (bcae_sim_config_set(&cfg, name, value, &err)) return pybcae_raise(st, &err);
        }
    }
    npy_intp dims[4] = {(npy_intp)events * BCAE_SIM_WEDGES_PER_EVENT, BCAE_WEDGE_AZIMUTH,
                        BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    PyObject *out = PyArray_SimpleNew(4, dims, NPY_UINT16);
    bcae_sim_event_info *info = PyMem_Malloc((size_t)events * sizeof *info);
    if (!out || !info) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        Py_XDECREF(out);
        PyMem_Free(info);
        return NULL;
    }
    uint16_t *w = PyArray_DATA((PyArrayObject *)out);
    bcae_status s;
    Py_BEGIN_ALLOW_THREADS
    bcae_simulator *sim = NULL;
    s = bcae_simulator_create(&cfg, &sim, &err);
    for (Py_ssize_t e = 0; e < events && !s; e++)
        s = bcae_simulator_run(sim, seed, first + (uint64_t)e,
                               w + (size_t)e * BCAE_SIM_WEDGES_PER_EVENT * BCAE_WEDGE_VOXELS,
                               threads, &info[e], &err);
    bcae_simulator_destroy(sim);
    Py_END_ALLOW_THREADS
    if (s) {
        Py_DECREF(out);
        PyMem_Free(info);
        return pybcae_raise(st, &err);
    }
    if (!want_info) {
        PyMem_Free(info);
        return out;
    }
    PyObject *list = PyList_New(events);
    for (Py_ssize_t e = 0; list && e < events; e++) {
        PyObject *d = Py_BuildValue(
            "{sKsisisisisd}", "event", (unsigned long long)(first + (uint64_t)e), "primary_tracks",
            info[e].primary_tracks, "pileup_collisions", info[e].pileup_collisions,
            "pileup_tracks", info[e].pileup_tracks, "loopers", info[e].loopers, "vertex_z_cm",
            info[e].vertex_z_cm);
        if (!d) Py_CLEAR(list);
        else PyList_SET_ITEM(list, e, d);
    }
    PyMem_Free(info);
    if (!list) {
        Py_DECREF(out);
        return NULL;
    }
    return Py_BuildValue("(NN)", out, list);
}

const char pybcae_sim_knobs_doc[] =
    "sim_knobs($module, /)\n--\n\n"
    "The simulator's physics knobs: {name: (default, description)} (`bcae simulate\n"
    "--list-knobs`).";

PyObject *pybcae_sim_knobs(PyObject *module, PyObject *unused)
{
    bcae_sim_config cfg;
    bcae_sim_config_default(&cfg);
    PyObject *d = PyDict_New();
    const char *name, *help;
    for (int i = 0; d && bcae_sim_knob_info(i, &name, &help); i++) {
        double v = 0;
        bcae_sim_config_get(&cfg, name, &v, NULL);
        PyObject *t = Py_BuildValue("(ds)", v, help);
        if (!t || PyDict_SetItemString(d, name, t) < 0) Py_CLEAR(d);
        Py_XDECREF(t);
    }
    return d;
}
