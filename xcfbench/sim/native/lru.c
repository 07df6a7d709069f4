/*
 * Lru: the cgroup's page LRU and zswap's slot LRU without a Python object per entry.
 *
 * The reference is xcfbench.sim.lru.Lru, an OrderedDict of int keys (page indexes, swap
 * slots) to None or a bool; this type keeps the part of its API those callers use, with
 * the same order and the same errors.  Keys index arrays: the links of an intrusive
 * doubly-linked list (key + 1, 0 for none, so zero-filled growth links nothing) and a
 * byte for the value (LRU_ABSENT: not listed).  Memory follows the largest key, 9 bytes
 * a key, doubled on growth.
 */
#include "xb.h"

#define LRU_ABSENT 0
#define LRU_NONE 1
#define LRU_FALSE 2
#define LRU_TRUE 3
#define LRU_MAX_KEY (UINT32_MAX - 1) /* key + 1 must fit a link */

struct lru_link {
	uint32_t prev, next; /* key + 1; 0: the list's end */
};

typedef struct {
	PyObject_HEAD
	struct lru_link *links; /* by key */
	uint8_t *vals;          /* by key: LRU_ABSENT or the value's code */
	size_t links_cap, vals_cap;
	uint32_t head, tail;    /* key + 1 of the oldest and newest; 0: empty */
	Py_ssize_t len;
} lru;

/* 1 and *key for a key that may be listed; 0 for one that cannot be: not an int (an
 * OrderedDict of ints holds no str either), negative, or too big. */
static int key_arg(PyObject *arg, uint32_t *key)
{
	int overflow;
	long long k;

	if (!PyLong_Check(arg))
		return 0;
	k = PyLong_AsLongLongAndOverflow(arg, &overflow);
	if (overflow || k < 0 || k > LRU_MAX_KEY)
		return 0;
	*key = (uint32_t)k;
	return 1;
}

/* The key of lru[key] = value and touch: -1 with TypeError or OverflowError. */
static int new_key_arg(PyObject *arg, uint32_t *key)
{
	if (key_arg(arg, key))
		return 0;
	if (!PyLong_Check(arg))
		PyErr_Format(PyExc_TypeError, "Lru keys are ints, not %.100s",
			     Py_TYPE(arg)->tp_name);
	else
		PyErr_Format(PyExc_OverflowError, "Lru keys are 0..%lu",
			     (unsigned long)LRU_MAX_KEY);
	return -1;
}

/* key_arg for a lookup that must find the key: KeyError when it is not listed. */
static int listed_key(lru *l, PyObject *arg, uint32_t *key)
{
	if (!key_arg(arg, key) || *key >= l->vals_cap || l->vals[*key] == LRU_ABSENT) {
		PyErr_SetObject(PyExc_KeyError, arg);
		return -1;
	}
	return 0;
}

static int value_code(PyObject *v)
{
	if (v == Py_None)
		return LRU_NONE;
	if (v == Py_False)
		return LRU_FALSE;
	if (v == Py_True)
		return LRU_TRUE;
	PyErr_Format(PyExc_TypeError, "Lru values are None, True or False, not %.100s",
		     Py_TYPE(v)->tp_name);
	return -1;
}

static PyObject *value_of(uint8_t code)
{
	PyObject *v = code == LRU_NONE ? Py_None : code == LRU_TRUE ? Py_True : Py_False;

	Py_INCREF(v);
	return v;
}

static void unlink_key(lru *l, uint32_t key)
{
	struct lru_link *n = &l->links[key];

	if (n->prev)
		l->links[n->prev - 1].next = n->next;
	else
		l->head = n->next;
	if (n->next)
		l->links[n->next - 1].prev = n->prev;
	else
		l->tail = n->prev;
}

static void link_tail(lru *l, uint32_t key)
{
	struct lru_link *n = &l->links[key];

	n->prev = l->tail;
	n->next = 0;
	if (l->tail)
		l->links[l->tail - 1].next = key + 1;
	else
		l->head = key + 1;
	l->tail = key + 1;
}

static void link_head(lru *l, uint32_t key)
{
	struct lru_link *n = &l->links[key];

	n->next = l->head;
	n->prev = 0;
	if (l->head)
		l->links[l->head - 1].prev = key + 1;
	else
		l->tail = key + 1;
	l->head = key + 1;
}

/* Room in the arrays for key; -1 + MemoryError. */
static int reserve(lru *l, uint32_t key)
{
	if (xb_grow((void **)&l->links, &l->links_cap, (size_t)key + 1, sizeof(*l->links)) < 0 ||
	    xb_grow((void **)&l->vals, &l->vals_cap, (size_t)key + 1, sizeof(*l->vals)) < 0)
		return -1;
	return 0;
}

/* A new key at the newest end, once reserved. */
static void add_key(lru *l, uint32_t key, uint8_t code)
{
	l->vals[key] = code;
	link_tail(l, key);
	l->len++;
}

static void del_key(lru *l, uint32_t key)
{
	unlink_key(l, key);
	l->vals[key] = LRU_ABSENT;
	l->len--;
}

static int is_listed(lru *l, uint32_t key)
{
	return key < l->vals_cap && l->vals[key] != LRU_ABSENT;
}

/* The n oldest keys as a Python list, taken off the list once it is made. */
static PyObject *take_oldest(lru *l, Py_ssize_t n)
{
	PyObject *keys, *k;
	uint32_t link = l->head;
	Py_ssize_t i;

	n = n < 0 ? 0 : n > l->len ? l->len : n;
	keys = PyList_New(n);
	if (!keys)
		return NULL;
	for (i = 0; i < n; i++, link = l->links[link - 1].next) {
		k = PyLong_FromUnsignedLong(link - 1);
		if (!k) {
			Py_DECREF(keys);
			return NULL;
		}
		PyList_SET_ITEM(keys, i, k);
	}
	for (i = 0; i < n; i++)
		del_key(l, l->head - 1);
	return keys;
}

static Py_ssize_t lru_length(lru *l)
{
	return l->len;
}

static int lru_contains(lru *l, PyObject *arg)
{
	uint32_t key;

	return key_arg(arg, &key) && is_listed(l, key);
}

static PyObject *lru_subscript(lru *l, PyObject *arg)
{
	uint32_t key;

	if (listed_key(l, arg, &key) < 0)
		return NULL;
	return value_of(l->vals[key]);
}

/* lru[key] = value keeps a listed key where it is (as an OrderedDict does); del lru[key]. */
static int lru_ass_subscript(lru *l, PyObject *arg, PyObject *value)
{
	uint32_t key;
	int code;

	if (!value) {
		if (listed_key(l, arg, &key) < 0)
			return -1;
		del_key(l, key);
		return 0;
	}
	code = value_code(value);
	if (code < 0 || new_key_arg(arg, &key) < 0)
		return -1;
	if (is_listed(l, key)) {
		l->vals[key] = (uint8_t)code;
		return 0;
	}
	if (reserve(l, key) < 0)
		return -1;
	add_key(l, key, (uint8_t)code);
	return 0;
}

/* The optional `last` of move_to_end and popitem, positional or keyword. */
static int last_arg(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		    Py_ssize_t fixed, const char *fname, int *last)
{
	PyObject *v = NULL;

	if (nargs < fixed || nargs > fixed + 1)
		goto usage;
	if (nargs == fixed + 1)
		v = args[fixed];
	if (kwnames && PyTuple_GET_SIZE(kwnames)) {
		if (v || PyTuple_GET_SIZE(kwnames) != 1 ||
		    !PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) ||
		    PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "last"))
			goto usage;
		v = args[nargs];
	}
	*last = 1;
	if (v) {
		*last = PyObject_IsTrue(v);
		if (*last < 0)
			return -1;
	}
	return 0;
usage:
	PyErr_Format(PyExc_TypeError, "%s(%slast=True): bad arguments", fname,
		     fixed ? "key, " : "");
	return -1;
}

static PyObject *lru_move_to_end(lru *l, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	uint32_t key;
	int last;

	if (last_arg(args, nargs, kwnames, 1, "move_to_end", &last) < 0 ||
	    listed_key(l, args[0], &key) < 0)
		return NULL;
	unlink_key(l, key);
	if (last)
		link_tail(l, key);
	else
		link_head(l, key);
	Py_RETURN_NONE;
}

static PyObject *lru_popitem(lru *l, PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames)
{
	PyObject *item;
	uint32_t key;
	uint8_t code;
	int last;

	if (last_arg(args, nargs, kwnames, 0, "popitem", &last) < 0)
		return NULL;
	if (!l->len) {
		PyErr_SetString(PyExc_KeyError, "dictionary is empty");
		return NULL;
	}
	key = (last ? l->tail : l->head) - 1;
	code = l->vals[key];
	item = Py_BuildValue("(kN)", (unsigned long)key, value_of(code));
	if (item)
		del_key(l, key);
	return item;
}

static PyObject *lru_pop(lru *l, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *v;
	uint32_t key;

	if (nargs < 1 || nargs > 2) {
		PyErr_SetString(PyExc_TypeError, "pop(key[, default])");
		return NULL;
	}
	if (!key_arg(args[0], &key) || !is_listed(l, key)) {
		if (nargs == 2) {
			Py_INCREF(args[1]);
			return args[1];
		}
		PyErr_SetObject(PyExc_KeyError, args[0]);
		return NULL;
	}
	v = value_of(l->vals[key]);
	del_key(l, key);
	return v;
}

static PyObject *lru_first(lru *l, PyObject *unused)
{
	uint32_t key;

	if (!l->len) {
		PyErr_SetString(PyExc_KeyError, "dictionary is empty");
		return NULL;
	}
	key = l->head - 1;
	return Py_BuildValue("(kN)", (unsigned long)key, value_of(l->vals[key]));
}

static PyObject *lru_pop_oldest(lru *l, PyObject *arg)
{
	Py_ssize_t n = PyLong_AsSsize_t(arg);

	if (n == -1 && PyErr_Occurred())
		return NULL;
	return take_oldest(l, n);
}

/*
 * touch(key, room, batch): the cgroup's charge of a page.  A listed key moves to the
 * newest end: None.  Otherwise, when room (capacity less other charges) is used up,
 * reclaim takes up to batch keys from the oldest end first; the key is listed (value
 * None) and the result is the victims, or None when there was no reclaim.
 */
static PyObject *lru_touch(lru *l, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *victims = NULL;
	long long room, batch;
	uint32_t key;

	if (nargs != 3) {
		PyErr_SetString(PyExc_TypeError, "touch(key, room, batch)");
		return NULL;
	}
	if (new_key_arg(args[0], &key) < 0)
		return NULL;
	room = PyLong_AsLongLong(args[1]);
	if (room == -1 && PyErr_Occurred())
		return NULL;
	batch = PyLong_AsLongLong(args[2]);
	if (batch == -1 && PyErr_Occurred())
		return NULL;
	if (is_listed(l, key)) {
		unlink_key(l, key);
		link_tail(l, key);
		Py_RETURN_NONE;
	}
	if (reserve(l, key) < 0)
		return NULL;
	if (l->len >= room) {
		victims = take_oldest(l, batch > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : batch);
		if (!victims)
			return NULL;
	}
	add_key(l, key, LRU_NONE);
	if (victims)
		return victims;
	Py_RETURN_NONE;
}

static PyObject *lru_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	if ((kw && PyDict_GET_SIZE(kw)) || PyTuple_GET_SIZE(args)) {
		PyErr_SetString(PyExc_TypeError, "Lru() takes no arguments");
		return NULL;
	}
	return type->tp_alloc(type, 0);
}

static void lru_dealloc(lru *l)
{
	PyMem_Free(l->links);
	PyMem_Free(l->vals);
	Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyMethodDef lru_methods[] = {
	{"move_to_end", (PyCFunction)(void (*)(void))lru_move_to_end,
	 METH_FASTCALL | METH_KEYWORDS, "move_to_end(key, last=True)"},
	{"popitem", (PyCFunction)(void (*)(void))lru_popitem, METH_FASTCALL | METH_KEYWORDS,
	 "popitem(last=True) -> (key, value)"},
	{"pop", (PyCFunction)(void (*)(void))lru_pop, METH_FASTCALL, "pop(key[, default])"},
	{"first", (PyCFunction)lru_first, METH_NOARGS, "first() -> the oldest (key, value)"},
	{"pop_oldest", (PyCFunction)lru_pop_oldest, METH_O,
	 "pop_oldest(n) -> up to n keys off the oldest end"},
	{"touch", (PyCFunction)(void (*)(void))lru_touch, METH_FASTCALL,
	 "touch(key, room, batch) -> reclaim's victims, or None when none ran"},
	{NULL},
};

static PySequenceMethods lru_as_sequence = {
	.sq_contains = (objobjproc)lru_contains,
};

static PyMappingMethods lru_as_mapping = {
	.mp_length = (lenfunc)lru_length,
	.mp_subscript = (binaryfunc)lru_subscript,
	.mp_ass_subscript = (objobjargproc)lru_ass_subscript,
};

static PyTypeObject Lru_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Lru",
	.tp_basicsize = sizeof(lru),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Lru(): int keys (0..2**32-2) to None or a bool, oldest first "
		  "(xcfbench.sim.lru.Lru's C twin).",
	.tp_new = lru_new,
	.tp_dealloc = (destructor)lru_dealloc,
	.tp_methods = lru_methods,
	.tp_as_sequence = &lru_as_sequence,
	.tp_as_mapping = &lru_as_mapping,
};

int xb_lru_init(PyObject *module)
{
	if (PyType_Ready(&Lru_Type) < 0)
		return -1;
	Py_INCREF(&Lru_Type);
	return PyModule_AddObject(module, "Lru", (PyObject *)&Lru_Type);
}
