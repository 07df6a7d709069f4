/*
 * xcfbench.sim._native: the allocators' C twins and the trace replay loop.
 *
 * The base type Alloc carries the methods every twin shares; they call through the
 * twin's ops table, the same table replay.c calls without Python in between.
 */
#include "xb.h"

int xb_attr_i64(PyObject *obj, const char *name, int64_t *out)
{
	PyObject *v = PyObject_GetAttrString(obj, name);
	long long n;

	if (!v)
		return -1;
	if (v == Py_None) {
		Py_DECREF(v);
		PyErr_Format(PyExc_TypeError, "attribute %s is None", name);
		return -1;
	}
	n = PyLong_AsLongLong(v);
	Py_DECREF(v);
	if (n == -1 && PyErr_Occurred())
		return -1;
	*out = n;
	return 0;
}

int xb_grow_raw(void **items, size_t *cap, size_t need, size_t item_size)
{
	size_t ncap = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = PyMem_Realloc(*items, ncap * item_size);
	if (!p) {
		PyErr_NoMemory();
		return -1;
	}
	*items = p;
	*cap = ncap;
	return 0;
}

int xb_grow(void **items, size_t *cap, size_t need, size_t item_size)
{
	size_t old = *cap;

	if (xb_grow_raw(items, cap, need, item_size) < 0)
		return -1;
	memset((char *)*items + old * item_size, 0, (*cap - old) * item_size);
	return 0;
}

/* A malloc size: a Python int; a negative one, or one past 2**63, is refused like any
 * size over max_alloc_size (INT64_MAX stands for both).  -1 with an exception: not an int. */
static int64_t size_arg(PyObject *arg)
{
	int overflow;
	long long n;

	if (!PyLong_Check(arg)) {
		PyErr_SetString(PyExc_TypeError, "size must be an int");
		return -1;
	}
	n = PyLong_AsLongLongAndOverflow(arg, &overflow);
	if (n == -1 && PyErr_Occurred())
		return -1;
	return overflow || n < 0 ? INT64_MAX : n;
}

static PyObject *alloc_malloc(xb_alloc *self, PyObject *arg)
{
	int64_t size = size_arg(arg), h;

	if (size < 0)
		return NULL;
	h = size == INT64_MAX ? XB_REFUSED : self->ops->malloc(self, (uint64_t)size);
	if (h == XB_ERROR)
		return NULL;
	if (h == XB_REFUSED)
		Py_RETURN_NONE;
	return PyLong_FromLongLong(h);
}

static PyObject *alloc_free(xb_alloc *self, PyObject *arg)
{
	long long h = PyLong_AsLongLong(arg);

	if (h == -1 && PyErr_Occurred())
		return NULL;
	if (h < 0) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", h);
		return NULL;
	}
	if (self->ops->free(self, h) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *alloc_pool_pages(xb_alloc *self, PyObject *unused)
{
	return PyLong_FromLongLong(self->ops->pool_pages(self));
}

static PyObject *alloc_pages_held(xb_alloc *self, PyObject *unused)
{
	const xb_ops *ops = self->ops;

	return PyLong_FromLongLong(ops->pages_held ? ops->pages_held(self) : ops->pool_pages(self));
}

static PyObject *alloc_metadata_bytes(xb_alloc *self, PyObject *unused)
{
	const xb_ops *ops = self->ops;

	return PyLong_FromLongLong(ops->metadata_bytes ? ops->metadata_bytes(self) : 0);
}

static PyObject *alloc_compact(xb_alloc *self, PyObject *unused)
{
	int64_t freed;

	if (!self->ops->compact) {
		PyErr_SetString(PyExc_NotImplementedError, "this allocator has no compaction");
		return NULL;
	}
	freed = self->ops->compact(self);
	if (freed < 0)
		return NULL;
	return PyLong_FromLongLong(freed);
}

/* Twins keep no bytes: the same refusal as the pure allocators' need_store(). */
static PyObject *alloc_no_bytes(xb_alloc *self, PyObject *args)
{
	PyObject *name = PyObject_GetAttrString((PyObject *)self, "name");

	if (name) {
		PyErr_Format(PyExc_RuntimeError,
			     "%U: created with store=False, bytes are not kept", name);
		Py_DECREF(name);
	}
	return NULL;
}

static PyObject *alloc_check(xb_alloc *self, PyObject *unused)
{
	Py_RETURN_NONE; /* twins with invariants worth checking override it */
}

static PyMethodDef alloc_methods[] = {
	{"malloc", (PyCFunction)alloc_malloc, METH_O, "malloc(size) -> handle or None"},
	{"free", (PyCFunction)alloc_free, METH_O, "free(handle)"},
	{"pool_pages", (PyCFunction)alloc_pool_pages, METH_NOARGS, NULL},
	{"pages_held", (PyCFunction)alloc_pages_held, METH_NOARGS, NULL},
	{"metadata_bytes", (PyCFunction)alloc_metadata_bytes, METH_NOARGS, NULL},
	{"compact", (PyCFunction)alloc_compact, METH_NOARGS, NULL},
	{"check", (PyCFunction)alloc_check, METH_NOARGS, NULL},
	{"write", (PyCFunction)alloc_no_bytes, METH_VARARGS, NULL},
	{"read", (PyCFunction)alloc_no_bytes, METH_VARARGS, NULL},
	{NULL},
};

static PyObject *alloc_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyErr_SetString(PyExc_TypeError, "Alloc is abstract: make one of its twins");
	return NULL;
}

PyTypeObject XbAlloc_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Alloc",
	.tp_basicsize = sizeof(xb_alloc),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "An allocator's C twin (abstract base).",
	.tp_methods = alloc_methods,
	.tp_new = alloc_new,
};

/* Every twin, in the order `xcfbench list` shows its pure allocator. */
static PyTypeObject *twins[] = {
	&XbIdeal_Type,
	&XbZbud_Type,
	&XbZ3fold_Type,
	&XbXvmalloc_Type,
	&XbZblock_Type,
	&XbZsmalloc_Type,
	&XbXcfmalloc_Type,
};

extern int xb_replay_init(PyObject *module);
extern int xb_lru_init(PyObject *module);
extern PyObject *xb_zcache_write(PyObject *module, PyObject *args);

static PyMethodDef native_functions[] = {
	{"zcache_write", xb_zcache_write, METH_VARARGS,
	 "The write phase of a run through zcache 3.1 with no churn (zcache_write.c)."},
	{NULL},
};

static struct PyModuleDef native_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "xcfbench.sim._native",
	.m_doc = "C twins of xcfbench's allocators, the trace replay loop, zcache's write phase,"
		 " the LRU lists.",
	.m_size = -1,
	.m_methods = native_functions,
};

PyMODINIT_FUNC PyInit__native(void)
{
	PyObject *m;
	size_t i;

	if (PyType_Ready(&XbAlloc_Type) < 0)
		return NULL;
	m = PyModule_Create(&native_module);
	if (!m)
		return NULL;
	Py_INCREF(&XbAlloc_Type);
	if (PyModule_AddObject(m, "Alloc", (PyObject *)&XbAlloc_Type) < 0)
		goto fail;
	for (i = 0; i < sizeof(twins) / sizeof(twins[0]); i++) {
		PyTypeObject *t = twins[i];
		const char *dot = strrchr(t->tp_name, '.');

		t->tp_base = &XbAlloc_Type;
		if (PyType_Ready(t) < 0)
			goto fail;
		Py_INCREF(t);
		if (PyModule_AddObject(m, dot ? dot + 1 : t->tp_name, (PyObject *)t) < 0)
			goto fail;
	}
	if (xb_replay_init(m) < 0 || xb_lru_init(m) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
