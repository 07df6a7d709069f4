/*
 * The trace replay loop: trace v1 text in, allocator calls and counters out.
 *
 * sim/trace.py is the reference (iter_ops checks a line, replay() runs it).  This file
 * takes the lines that are plainly well formed, "a ID SIZE" and "f ID" and blank lines,
 * parses them, checks liveness and calls the allocator's ops without a Python call in
 * between.  Any other line (a comment, a byte-order mark, a number of 20 digits, anything
 * malformed) is handed back to Python, which reads it with the reference code and either
 * applies its operation here or raises the reference's error: so what is accepted and
 * every message are the reference's by construction.
 *
 * Live IDs sit in an open-addressed table (linear probing, backward-shift deletion), so
 * memory follows the live set, never the trace's length.  An ID whose allocation was
 * refused stays live with handle -1: its free is legal and counted as frees_of_failed.
 */
#include "xb.h"
#include <structmember.h>

#define MAX_LINE 4096     /* io.MAX_LINE_BYTES */
#define EMPTY INT64_MIN   /* handle of an unused table entry */
#define FAILED (-1)       /* handle of a live ID whose allocation was refused */

enum feed_status {
	FEED_MORE = 0,   /* every complete line consumed: give more bytes */
	FEED_SLOW = 1,   /* the line at the returned offset is Python's to read */
	FEED_DUP = 2,    /* "a" of an ID that is live (error_id) */
	FEED_DEAD = 3,   /* "f" of an ID that is not live (error_id) */
};

struct entry {
	uint64_t id;
	int64_t handle;
	uint64_t size;
};

typedef struct {
	PyObject_HEAD
	xb_alloc *alloc;
	PyObject *alloc_obj;
	int64_t compact_every;  /* 0: never during the replay */
	struct entry *table;
	uint64_t mask;          /* table size - 1 (a power of two) */
	uint64_t used;          /* live IDs, refused ones included */
	/* the counters replay() reports */
	int64_t ops, lineno, allocs, frees, failed_allocs, frees_of_failed;
	int64_t live_objects, live_bytes, peak_live_objects, peak_live_bytes;
	int64_t peak_pool, peak_held, pages_compacted;
	uint64_t error_id;
} replayer;

static inline uint64_t mix(uint64_t x)
{
	/* splitmix64's finalizer: sequential IDs spread over the whole table */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static int table_resize(replayer *r, uint64_t nslots)
{
	struct entry *old = r->table, *t;
	uint64_t oldn = r->mask + 1, i;

	t = PyMem_Malloc(nslots * sizeof(*t));
	if (!t) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; i < nslots; i++)
		t[i].handle = EMPTY;
	r->table = t;
	r->mask = nslots - 1;
	for (i = 0; old && i < oldn; i++) {
		uint64_t j;

		if (old[i].handle == EMPTY)
			continue;
		for (j = mix(old[i].id) & r->mask; t[j].handle != EMPTY; j = (j + 1) & r->mask)
			;
		t[j] = old[i];
	}
	PyMem_Free(old);
	return 0;
}

static inline struct entry *table_find(replayer *r, uint64_t id)
{
	uint64_t j;

	for (j = mix(id) & r->mask; r->table[j].handle != EMPTY; j = (j + 1) & r->mask)
		if (r->table[j].id == id)
			return &r->table[j];
	return NULL;
}

static inline struct entry *table_add(replayer *r, uint64_t id)
{
	uint64_t j;

	if ((r->used + 1) * 2 > r->mask + 1 && table_resize(r, (r->mask + 1) * 2) < 0)
		return NULL;
	for (j = mix(id) & r->mask; r->table[j].handle != EMPTY; j = (j + 1) & r->mask)
		;
	r->used++;
	r->table[j].id = id;
	return &r->table[j];
}

/* Backward-shift deletion: entries after e that probed past it move up, no tombstones. */
static inline void table_remove(replayer *r, struct entry *e)
{
	uint64_t i = (uint64_t)(e - r->table), j = i;

	for (;;) {
		uint64_t home;

		j = (j + 1) & r->mask;
		if (r->table[j].handle == EMPTY)
			break;
		home = mix(r->table[j].id) & r->mask;
		/* j's entry may fill the hole at i unless its home lies in (i, j] */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		r->table[i] = r->table[j];
		i = j;
	}
	r->table[i].handle = EMPTY;
	r->used--;
}

/* One checked operation; size < 0 frees.  0, a FEED_* error, or -1 with an exception. */
static int apply(replayer *r, uint64_t id, int64_t size)
{
	xb_alloc *a = r->alloc;
	const xb_ops *ops = a->ops;
	struct entry *e = table_find(r, id);
	int64_t p;

	if (size >= 0) {
		int64_t h;

		if (e) {
			r->error_id = id;
			return FEED_DUP;
		}
		r->allocs++;
		h = ops->malloc(a, (uint64_t)size);
		if (h == XB_ERROR)
			return -1;
		e = table_add(r, id);
		if (!e) {
			if (h >= 0)
				ops->free(a, h);
			return -1;
		}
		e->size = (uint64_t)size;
		if (h == XB_REFUSED) {
			e->handle = FAILED;
			r->failed_allocs++;
		} else {
			e->handle = h;
			r->live_objects++;
			r->live_bytes += size;
			if (r->live_objects > r->peak_live_objects)
				r->peak_live_objects = r->live_objects;
			if (r->live_bytes > r->peak_live_bytes)
				r->peak_live_bytes = r->live_bytes;
		}
	} else {
		int64_t h;

		if (!e) {
			r->error_id = id;
			return FEED_DEAD;
		}
		r->frees++;
		h = e->handle;
		size = (int64_t)e->size;
		table_remove(r, e);
		if (h == FAILED) {
			r->frees_of_failed++;
		} else {
			r->live_objects--;
			r->live_bytes -= size;
			if (ops->free(a, h) < 0)
				return -1;
		}
	}
	r->ops++;
	p = ops->pool_pages(a);
	if (p > r->peak_pool)
		r->peak_pool = p;
	p = ops->pages_held ? ops->pages_held(a) : p;
	if (p > r->peak_held)
		r->peak_held = p;
	if (r->compact_every && r->ops % r->compact_every == 0) {
		p = ops->compact(a);
		if (p < 0)
			return -1;
		r->pages_compacted += p;
	}
	return 0;
}

static inline const char *skip_blanks(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* Up to 19 ASCII digits (always below 2**64); more is Python's to judge. */
static inline const char *number(const char *s, const char *end, uint64_t *out)
{
	const char *start = s;
	uint64_t n = 0;

	while (s < end && *s >= '0' && *s <= '9' && s - start < 19)
		n = n * 10 + (uint64_t)(*s++ - '0');
	if (s == start || (s < end && *s >= '0' && *s <= '9'))
		return NULL;
	*out = n;
	return s;
}

/*
 * Parse one line [s, eol) (eol at its '\n').  1 and the operation when it is an
 * operation, 0 for a blank line, -1 when it is not plainly well formed.
 */
static int parse_line(const char *s, const char *eol, uint64_t *id, int64_t *size)
{
	const char *p;
	uint64_t n;
	char op;

	if (eol > s && eol[-1] == '\r')
		eol--;
	p = skip_blanks(s, eol);
	if (p == eol)
		return 0;
	op = *p++;
	if ((op != 'a' && op != 'f') || p == eol || (*p != ' ' && *p != '\t'))
		return -1;
	p = number(skip_blanks(p, eol), eol, id);
	if (!p)
		return -1;
	if (op == 'a') {
		if (p == eol || (*p != ' ' && *p != '\t'))
			return -1;
		p = number(skip_blanks(p, eol), eol, &n);
		if (!p || n > INT64_MAX)
			return -1;
		*size = (int64_t)n;
	} else {
		*size = -1;
	}
	return skip_blanks(p, eol) == eol ? 1 : -1;
}

/*
 * feed(data, start, final) -> (offset, status): run the complete lines of data from
 * start.  With final, data's end is the trace's end (a last line without '\n' goes to
 * Python).  offset is where reading stopped: the first byte not consumed.
 */
static PyObject *replayer_feed(replayer *r, PyObject *args)
{
	Py_buffer view;
	Py_ssize_t start;
	int final, status = FEED_MORE;
	const char *base, *s, *end;

	if (!PyArg_ParseTuple(args, "y*np:feed", &view, &start, &final))
		return NULL;
	base = view.buf;
	end = base + view.len;
	s = base + (start < 0 ? 0 : start > view.len ? view.len : start);
	while (s < end) {
		const char *eol = memchr(s, '\n', (size_t)(end - s) < MAX_LINE + 2 ? (size_t)(end - s) : MAX_LINE + 2);
		uint64_t id;
		int64_t size;
		int kind, rc;

		if (!eol) {
			/* no line end yet: more bytes may bring one; a line this long is an error */
			if (final || end - s >= MAX_LINE + 2)
				status = FEED_SLOW;
			break;
		}
		/* a first line with a byte-order mark, or one longer than MAX_LINE without its
		 * line end, is the reference's to read (and refuse) */
		if (r->lineno == 0 && *s == '\xef')
			kind = -1;
		else if (eol - s - (eol > s && eol[-1] == '\r') > MAX_LINE)
			kind = -1;
		else
			kind = parse_line(s, eol, &id, &size);
		if (kind < 0) {
			status = FEED_SLOW;
			break;
		}
		r->lineno++;
		if (kind) {
			rc = apply(r, id, size);
			if (rc) {
				if (rc < 0) {
					PyBuffer_Release(&view);
					return NULL;
				}
				status = rc;
				s = eol + 1;
				break;
			}
		}
		s = eol + 1;
	}
	PyBuffer_Release(&view);
	return Py_BuildValue("ni", (Py_ssize_t)(s - base), status);
}

/* apply(id, size): one operation read by Python; size -1 frees.  Returns a status. */
static PyObject *replayer_apply(replayer *r, PyObject *args)
{
	unsigned long long id;
	long long size;
	int rc;

	if (!PyArg_ParseTuple(args, "KL:apply", &id, &size))
		return NULL;
	rc = apply(r, id, size < 0 ? -1 : size);
	if (rc < 0)
		return NULL;
	return PyLong_FromLong(rc);
}

/* skip_line(): Python read a line that holds no operation (a comment, a blank). */
static PyObject *replayer_skip_line(replayer *r, PyObject *unused)
{
	r->lineno++;
	Py_RETURN_NONE;
}

/* run(ops): every (id, size) pair of a sequence read beforehand (read_trace). */
static PyObject *replayer_run(replayer *r, PyObject *seq)
{
	PyObject *fast = PySequence_Fast(seq, "ops must be a sequence");
	Py_ssize_t i, n;

	if (!fast)
		return NULL;
	n = PySequence_Fast_GET_SIZE(fast);
	for (i = 0; i < n; i++) {
		PyObject *op = PySequence_Fast_GET_ITEM(fast, i);
		unsigned long long id;
		long long size;
		int rc;

		if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) != 2) {
			PyErr_SetString(PyExc_TypeError, "an op is an (id, size) tuple");
			goto fail;
		}
		id = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(op, 0));
		size = PyLong_AsLongLong(PyTuple_GET_ITEM(op, 1));
		if (PyErr_Occurred())
			goto fail;
		r->lineno++;
		rc = apply(r, id, size < 0 ? -1 : size);
		if (rc < 0)
			goto fail;
		if (rc) {
			Py_DECREF(fast);
			return PyLong_FromLong(rc);
		}
	}
	Py_DECREF(fast);
	return PyLong_FromLong(0);
fail:
	Py_DECREF(fast);
	return NULL;
}

/* live(): the (id, handle, size) of every successfully allocated live object. */
static PyObject *replayer_live(replayer *r, PyObject *unused)
{
	PyObject *out = PyList_New(0);
	uint64_t i;

	if (!out)
		return NULL;
	for (i = 0; r->table && i <= r->mask; i++) {
		struct entry *e = &r->table[i];
		PyObject *t;

		if (e->handle == EMPTY || e->handle == FAILED)
			continue;
		t = Py_BuildValue("KLK", (unsigned long long)e->id, (long long)e->handle,
				  (unsigned long long)e->size);
		if (!t || PyList_Append(out, t) < 0) {
			Py_XDECREF(t);
			Py_DECREF(out);
			return NULL;
		}
		Py_DECREF(t);
	}
	return out;
}

static PyObject *replayer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"alloc", "compact_every", NULL};
	PyObject *alloc;
	long long every = 0;
	replayer *r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|L:Replayer", kwlist, &XbAlloc_Type,
					 &alloc, &every))
		return NULL;
	if (every < 0) {
		PyErr_SetString(PyExc_ValueError, "compact_every must be 0 or more");
		return NULL;
	}
	if (every && !((xb_alloc *)alloc)->ops->compact) {
		PyErr_SetString(PyExc_ValueError, "this allocator has no compaction");
		return NULL;
	}
	r = (replayer *)type->tp_alloc(type, 0);
	if (!r)
		return NULL;
	Py_INCREF(alloc);
	r->alloc_obj = alloc;
	r->alloc = (xb_alloc *)alloc;
	r->compact_every = every;
	if (table_resize(r, 1024) < 0) {
		Py_DECREF(r);
		return NULL;
	}
	return (PyObject *)r;
}

static void replayer_dealloc(replayer *r)
{
	PyMem_Free(r->table);
	Py_XDECREF(r->alloc_obj);
	Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef replayer_methods[] = {
	{"feed", (PyCFunction)replayer_feed, METH_VARARGS, "feed(data, start, final) -> (offset, status)"},
	{"apply", (PyCFunction)replayer_apply, METH_VARARGS, "apply(id, size) -> status"},
	{"skip_line", (PyCFunction)replayer_skip_line, METH_NOARGS, NULL},
	{"run", (PyCFunction)replayer_run, METH_O, "run(ops) -> status"},
	{"live", (PyCFunction)replayer_live, METH_NOARGS, "[(id, handle, size)] of live objects"},
	{NULL},
};

#define COUNTER(name) {#name, T_LONGLONG, offsetof(replayer, name), READONLY, NULL}
static PyMemberDef replayer_members[] = {
	COUNTER(ops), COUNTER(lineno), COUNTER(allocs), COUNTER(frees),
	COUNTER(failed_allocs), COUNTER(frees_of_failed), COUNTER(live_objects),
	COUNTER(live_bytes), COUNTER(peak_live_objects), COUNTER(peak_live_bytes),
	COUNTER(peak_pool), COUNTER(peak_held), COUNTER(pages_compacted),
	{"error_id", T_ULONGLONG, offsetof(replayer, error_id), READONLY, NULL},
	{NULL},
};

static PyTypeObject Replayer_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Replayer",
	.tp_basicsize = sizeof(replayer),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Replayer(alloc, compact_every=0): trace v1 replay through a twin.",
	.tp_new = replayer_new,
	.tp_dealloc = (destructor)replayer_dealloc,
	.tp_methods = replayer_methods,
	.tp_members = replayer_members,
};

int xb_replay_init(PyObject *module)
{
	if (PyType_Ready(&Replayer_Type) < 0)
		return -1;
	Py_INCREF(&Replayer_Type);
	if (PyModule_AddObject(module, "Replayer", (PyObject *)&Replayer_Type) < 0)
		return -1;
	return PyModule_AddIntConstant(module, "FEED_SLOW", FEED_SLOW) ||
	       PyModule_AddIntConstant(module, "FEED_DUP", FEED_DUP) ||
	       PyModule_AddIntConstant(module, "FEED_DEAD", FEED_DEAD) ? -1 : 0;
}
