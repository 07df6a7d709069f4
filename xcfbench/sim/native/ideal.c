/*
 * ideal's twin: live bytes packed with no overhead, ceil(bytes / PAGE_SIZE) pages.
 *
 * Handles are slots of a size table; a freed slot is reused (the pure allocator counts
 * handles up forever, but a handle is opaque, and reuse keeps memory to the live set).
 */
#include "xb.h"

typedef struct {
	xb_alloc base;
	int64_t live_bytes;
	uint32_t *sizes;   /* by handle; 0: free slot */
	size_t cap;
	int64_t *spare;    /* freed handles, reused last-in first-out */
	size_t nspare, spare_cap;
	int64_t next;      /* handles below it have been handed out */
} ideal;

static int64_t ideal_malloc(xb_alloc *a, uint64_t size)
{
	ideal *p = (ideal *)a;
	int64_t h;

	if (size == 0 || size > XB_PAGE_SIZE)
		return XB_REFUSED;
	if (p->nspare) {
		h = p->spare[--p->nspare];
	} else {
		if (xb_grow((void **)&p->sizes, &p->cap, (size_t)p->next + 1, sizeof(*p->sizes)) < 0)
			return XB_ERROR;
		h = p->next++;
	}
	p->sizes[h] = (uint32_t)size;
	p->live_bytes += (int64_t)size;
	return h;
}

static int ideal_free(xb_alloc *a, int64_t h)
{
	ideal *p = (ideal *)a;

	if (h >= p->next || !p->sizes[h]) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", (long long)h);
		return -1;
	}
	if (xb_grow((void **)&p->spare, &p->spare_cap, p->nspare + 1, sizeof(*p->spare)) < 0)
		return -1;
	p->live_bytes -= p->sizes[h];
	p->sizes[h] = 0;
	p->spare[p->nspare++] = h;
	return 0;
}

static int64_t ideal_pool_pages(xb_alloc *a)
{
	return (((ideal *)a)->live_bytes + XB_PAGE_SIZE - 1) / XB_PAGE_SIZE;
}

static int64_t ideal_compact(xb_alloc *a)
{
	return 0;
}

static const xb_ops ideal_ops = {
	.malloc = ideal_malloc,
	.free = ideal_free,
	.pool_pages = ideal_pool_pages,
	.compact = ideal_compact,
};

static PyObject *ideal_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure;
	ideal *p;

	if (!PyArg_ParseTuple(args, "O:Ideal", &pure))
		return NULL;
	p = (ideal *)type->tp_alloc(type, 0);
	if (p)
		p->base.ops = &ideal_ops;
	return (PyObject *)p;
}

static void ideal_dealloc(ideal *p)
{
	PyMem_Free(p->sizes);
	PyMem_Free(p->spare);
	Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *ideal_stats(ideal *p, PyObject *unused)
{
	return Py_BuildValue("{s:L}", "live_bytes", (long long)p->live_bytes);
}

static PyMethodDef ideal_methods[] = {
	{"stats", (PyCFunction)ideal_stats, METH_NOARGS, NULL},
	{NULL},
};

PyTypeObject XbIdeal_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Ideal",
	.tp_basicsize = sizeof(ideal),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "ideal's C twin: Ideal(pure_allocator).",
	.tp_new = ideal_new,
	.tp_dealloc = (destructor)ideal_dealloc,
	.tp_methods = ideal_methods,
};
