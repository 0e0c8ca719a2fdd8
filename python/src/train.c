/* bcae.train: bcae_train with a Python progress callback. */
#include "pybcae.h"

#include <limits.h>
#include <stddef.h>

/* The options by name, as bcae_train_config's fields: a table rather than a
 * chain of strcmp so that train_defaults() and the parser cannot drift. */
typedef enum {
    OPT_STR,
    OPT_INT,
    OPT_LONG,
    OPT_FLOAT,
    OPT_U64,
    OPT_FEATURES,
    OPT_DEVICE,
    OPT_PRECISION
} opt_kind;

static const struct {
    const char *name;
    opt_kind kind;
    size_t offset;
} OPTIONS[] = {
#define O(field, kind) {#field, kind, offsetof(bcae_train_config, field)}
    O(data_dir, OPT_STR),
    O(arch, OPT_STR),
    O(m, OPT_INT),
    O(n, OPT_INT),
    O(d, OPT_INT),
    O(features, OPT_FEATURES),
    O(clf_threshold, OPT_FLOAT),
    O(num_epochs, OPT_INT),
    O(num_warmup_epochs, OPT_INT),
    O(sched_steps, OPT_INT),
    O(sched_gamma, OPT_FLOAT),
    O(batch_size, OPT_INT),
    O(learning_rate, OPT_FLOAT),
    O(batches_per_epoch, OPT_LONG),
    O(validation_batches_per_epoch, OPT_LONG),
    O(seed, OPT_U64),
    O(shuffle, OPT_INT),
    O(threads, OPT_INT),
    O(clf_bias_init, OPT_FLOAT),
    O(init, OPT_STR),
    O(out, OPT_STR),
    O(log_path, OPT_STR),
    O(checkpoint_path, OPT_STR),
    O(checkpoint_every, OPT_LONG),
    O(resume, OPT_STR),
    O(max_steps, OPT_LONG),
    O(device, OPT_DEVICE),
    O(precision, OPT_PRECISION),
#undef O
};
#define NOPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

const char pybcae_train_defaults_doc[] =
    "train_defaults($module, /)\n--\n\n"
    "Every option of train() with the library's default (bcae_train_config_default).";

PyObject *pybcae_train_defaults(PyObject *module, PyObject *unused)
{
    bcae_train_config c;
    bcae_train_config_default(&c);
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < NOPTIONS; i++) {
        const char *p = (const char *)&c + OPTIONS[i].offset;
        PyObject *v = NULL;
        switch (OPTIONS[i].kind) {
        case OPT_STR: {
            const char *s = *(const char *const *)p;
            v = s ? PyUnicode_DecodeFSDefault(s) : Py_NewRef(Py_None);
            break;
        }
        case OPT_INT: v = PyLong_FromLong(*(const int *)p); break;
        case OPT_LONG: v = PyLong_FromLong(*(const long *)p); break;
        case OPT_FLOAT: v = PyFloat_FromDouble(*(const float *)p); break;
        case OPT_U64: v = PyLong_FromUnsignedLongLong(*(const uint64_t *)p); break;
        case OPT_FEATURES: {
            const int *f = (const int *)p;
            v = Py_BuildValue("(iiii)", f[0], f[1], f[2], f[3]);
            break;
        }
        case OPT_DEVICE: v = PyUnicode_FromString(bcae_device_name(*(const bcae_device *)p)); break;
        case OPT_PRECISION:
            v = PyUnicode_FromString(bcae_precision_name(*(const bcae_precision *)p));
            break;
        }
        if (!v || PyDict_SetItemString(d, OPTIONS[i].name, v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* Sets one option from a Python value; the bytes of string options go to
 * `keep` so that they outlive the call. */
static int set_option(pybcae_state *st, bcae_train_config *c, const char *name, PyObject *v,
                      PyObject *keep)
{
    size_t i = 0;
    while (i < NOPTIONS && strcmp(OPTIONS[i].name, name)) i++;
    if (i == NOPTIONS) {
        PyErr_Format(PyExc_TypeError, "train() got an unknown option '%s' (see train_defaults())",
                     name);
        return -1;
    }
    char *p = (char *)c + OPTIONS[i].offset;
    switch (OPTIONS[i].kind) {
    case OPT_STR: {
        if (v == Py_None) {
            *(const char **)p = NULL;
            return 0;
        }
        PyObject *b = NULL;
        if (!PyUnicode_FSConverter(v, &b)) return -1;
        int r = PyList_Append(keep, b);
        Py_DECREF(b); /* the list holds it */
        if (r < 0) return -1;
        *(const char **)p = PyBytes_AS_STRING(b);
        return 0;
    }
    case OPT_INT:
    case OPT_LONG: {
        long x = PyLong_AsLong(v);
        if (x == -1 && PyErr_Occurred()) return -1;
        if (OPTIONS[i].kind == OPT_INT) {
            if (x < INT_MIN || x > INT_MAX) {
                PyErr_Format(PyExc_OverflowError, "%s = %ld does not fit an int", name, x);
                return -1;
            }
            *(int *)p = (int)x;
        } else {
            *(long *)p = x;
        }
        return 0;
    }
    case OPT_FLOAT: {
        double x = PyFloat_AsDouble(v);
        if (x == -1.0 && PyErr_Occurred()) return -1;
        *(float *)p = (float)x;
        return 0;
    }
    case OPT_U64: {
        unsigned long long x = PyLong_AsUnsignedLongLong(v);
        if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        *(uint64_t *)p = (uint64_t)x;
        return 0;
    }
    case OPT_FEATURES: {
        PyObject *seq = PySequence_Fast(v, "features must be a sequence of 4 ints");
        if (!seq) return -1;
        if (PySequence_Fast_GET_SIZE(seq) != 4) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "features must have 4 entries");
            return -1;
        }
        for (int k = 0; k < 4; k++) {
            long x = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, k));
            if (x == -1 && PyErr_Occurred()) {
                Py_DECREF(seq);
                return -1;
            }
            ((int *)p)[k] = (int)x;
        }
        Py_DECREF(seq);
        return 0;
    }
    case OPT_DEVICE: {
        const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
        if (!s) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "device must be a str");
            return -1;
        }
        bcae_error err;
        if (bcae_device_parse(s, (bcae_device *)p, &err)) {
            pybcae_raise(st, &err);
            return -1;
        }
        return 0;
    }
    case OPT_PRECISION: { /* "fp32" or "bf16" (bcae_train refuses int8) */
        const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
        if (!s) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "precision must be a str");
            return -1;
        }
        bcae_error err;
        if (bcae_precision_parse(s, (bcae_precision *)p, &err)) {
            pybcae_raise(st, &err);
            return -1;
        }
        return 0;
    }
    }
    return 0;
}

typedef struct train_ctx {
    PyObject *callback; /* or NULL */
    /* The first exception the callback raised, or KeyboardInterrupt (any
     * exception a signal handler raised): it sets stop, which bcae_train
     * reads after the step (it then writes the checkpoint and the model, as
     * at max_steps); later calls are skipped and it is raised once training
     * returns. */
    PyObject *exc_type, *exc_value, *exc_tb;
    volatile int stop;
} train_ctx;

static PyObject *progress_dict(const bcae_train_progress *p)
{
    return Py_BuildValue("{sOsislslslsdsdsdsdsdsdsdsdsdsO}", "validation",
                         p->validation ? Py_True : Py_False, "epoch", p->epoch, "step", p->step,
                         "batch", p->batch, "batches", p->batches, "loss", p->loss, "loss_seg",
                         p->loss_seg, "loss_reg", p->loss_reg, "coef", p->coef, "lr", p->lr,
                         "precision", p->precision, "recall", p->recall, "mae", p->mae,
                         "step_seconds", p->step_seconds, "epoch_done",
                         p->epoch_done ? Py_True : Py_False);
}

/* Called by bcae_train, without the GIL, on the training thread (after
 * every step and validation batch: ~1 s apart, so taking the GIL is cheap). */
static void train_callback(void *vctx, const bcae_train_progress *p)
{
    train_ctx *ctx = vctx;
    if (ctx->exc_type) return;
    PyGILState_STATE g = PyGILState_Ensure();
    /* Python's SIGINT handler only notes the signal while we hold no GIL;
     * run the handlers here (they raise KeyboardInterrupt on the main
     * thread, nothing elsewhere). */
    int failed = PyErr_CheckSignals() < 0;
    if (!failed && ctx->callback) {
        PyObject *d = progress_dict(p);
        PyObject *r = d ? PyObject_CallOneArg(ctx->callback, d) : NULL;
        Py_XDECREF(d);
        if (r) Py_DECREF(r);
        else failed = 1;
    }
    if (failed) {
        PyErr_Fetch(&ctx->exc_type, &ctx->exc_value, &ctx->exc_tb);
        ctx->stop = 1;
    }
    PyGILState_Release(g);
}

const char pybcae_train_doc[] =
    "train($module, /, config, progress=None)\n--\n\n"
    "bcae_train with `config`, a dict of bcae_train_config fields (train_defaults()),\n"
    "calling progress(dict) after every step and validation batch. An exception raised\n"
    "by progress, or KeyboardInterrupt (Ctrl-C), ends the run after that step (checkpoint\n"
    "and model written, as at max_steps) and is raised then. Use bcae.train().";

PyObject *pybcae_train(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"config", "progress", NULL};
    PyObject *config, *progress = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|O:train", kwlist, &PyDict_Type, &config,
                                     &progress))
        return NULL;
    pybcae_state *st = pybcae_module_state(module);
    if (progress != Py_None && !PyCallable_Check(progress))
        return PyErr_Format(PyExc_TypeError, "progress must be callable or None");
    bcae_train_config cfg;
    bcae_train_config_default(&cfg);
    PyObject *keep = PyList_New(0);
    if (!keep) return NULL;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(config, &pos, &k, &v)) {
        const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
        if (!name) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "option names must be str");
            Py_DECREF(keep);
            return NULL;
        }
        if (set_option(st, &cfg, name, v, keep) < 0) {
            Py_DECREF(keep);
            return NULL;
        }
    }
    train_ctx ctx = {progress == Py_None ? NULL : progress, NULL, NULL, NULL, 0};
    cfg.stop = &ctx.stop;
    bcae_error err;
    bcae_status s;
    Py_BEGIN_ALLOW_THREADS
    s = bcae_train(&cfg, train_callback, &ctx, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(keep);
    if (s) {
        Py_XDECREF(ctx.exc_type);
        Py_XDECREF(ctx.exc_value);
        Py_XDECREF(ctx.exc_tb);
        return pybcae_raise(st, &err);
    }
    if (ctx.exc_type) {
        PyErr_Restore(ctx.exc_type, ctx.exc_value, ctx.exc_tb);
        return NULL;
    }
    Py_RETURN_NONE;
}
