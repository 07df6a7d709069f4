/*
 * zblock's twin: a fixed number of same-size slots per multi-page block.
 *
 * The block-type table (slots and pages per type, slot sizes, the size -> type lookup
 * with or without the edge bug) is read from the pure allocator, never derived here.
 *
 * Blocks live in one array of small records.  Its first ntypes entries are the active
 * lists' heads (sentinels, as in the reference), so list code is the same for a head and
 * a block.  A freed block id goes on a stack chained through its next link and is reused
 * last-in first-out, like the reference's _free_ids.  A handle is bid << 6 | slot.
 */
#include "xb.h"

#define ZB_SLOT_BITS 6
#define ZB_SLOT_MASK ((1 << ZB_SLOT_BITS) - 1)
#define ZB_MAX_SLOTS (1 << ZB_SLOT_BITS)
#define ZB_MAX_TYPES 250
#define ZB_DEAD 0xff /* type of a block id on the free stack */
#define ZB_NIL (-1)

typedef struct {
	uint64_t used;      /* slot bitmap */
	int32_t prev, next; /* active-list links; next also chains free ids */
	uint8_t type;
	uint8_t free_slots;
} zb_block;

typedef struct {
	int64_t count;      /* live blocks of this type */
	int32_t slots;
	int32_t pages;
} zb_type;

typedef struct {
	xb_alloc base;
	int ntypes;
	int64_t header;
	int64_t max_slot;
	zb_type *types;
	uint8_t *type_of;   /* size -> type for sizes 0..max_slot; ntypes: falls off */
	zb_block *blocks;   /* [0, ntypes): list heads, then blocks */
	size_t cap;
	int32_t nblocks;    /* ids below it have been handed out */
	int32_t free_top;   /* last freed block id, ZB_NIL when none */
	int64_t pages;
	int64_t edge_bug_hits;
} zblock;

static void zb_unlink(zb_block *b, int32_t i)
{
	b[b[i].prev].next = b[i].next;
	b[b[i].next].prev = b[i].prev;
}

static void zb_add_head(zb_block *b, int32_t head, int32_t i)
{
	b[i].prev = head;
	b[i].next = b[head].next;
	b[b[head].next].prev = i;
	b[head].next = i;
}

static void zb_add_tail(zb_block *b, int32_t head, int32_t i)
{
	b[i].next = head;
	b[i].prev = b[head].prev;
	b[b[head].prev].next = i;
	b[head].prev = i;
}

/* A block id: the last freed one, else a new one at the end of the array. */
static int32_t zb_take_id(zblock *z)
{
	int32_t id = z->free_top;

	if (id != ZB_NIL) {
		z->free_top = z->blocks[id].next;
		return id;
	}
	if (z->nblocks == INT32_MAX) {
		PyErr_NoMemory();
		return ZB_NIL;
	}
	if (xb_grow((void **)&z->blocks, &z->cap, (size_t)z->nblocks + 1, sizeof(*z->blocks)) < 0)
		return ZB_NIL;
	return z->nblocks++;
}

static int64_t zb_new_block(zblock *z, int t)
{
	int32_t id = zb_take_id(z);
	zb_block *b;

	if (id == ZB_NIL)
		return XB_ERROR;
	b = &z->blocks[id];
	b->type = (uint8_t)t;
	b->free_slots = (uint8_t)(z->types[t].slots - 1);
	b->used = 1;
	zb_add_head(z->blocks, t, id);
	z->types[t].count++;
	z->pages += z->types[t].pages;
	return (int64_t)id << ZB_SLOT_BITS;
}

/* zblock_alloc: the lowest free slot of the first active block, or a new block. */
static int64_t zblock_malloc(xb_alloc *a, uint64_t size)
{
	zblock *z = (zblock *)a;
	zb_block *b;
	int32_t id;
	int t, slot;

	if (size == 0 || size > (uint64_t)z->max_slot)
		return XB_REFUSED;
	t = z->type_of[size];
	if (t == z->ntypes) {
		z->edge_bug_hits++;
		return XB_REFUSED;
	}
	id = z->blocks[t].next;
	if (id == t)
		return zb_new_block(z, t);
	b = &z->blocks[id];
	if (--b->free_slots == 0) {
		zb_unlink(z->blocks, id);
		b->prev = b->next = id;
	}
	slot = __builtin_ctzll(~b->used);
	b->used |= (uint64_t)1 << slot;
	return (int64_t)id << ZB_SLOT_BITS | slot;
}

/* zblock_free: an emptied block is freed, a block that was full goes to the tail. */
static int zblock_free(xb_alloc *a, int64_t h)
{
	zblock *z = (zblock *)a;
	int64_t id64 = h >> ZB_SLOT_BITS;
	uint64_t bit = (uint64_t)1 << (h & ZB_SLOT_MASK);
	zb_block *b;
	zb_type *ty;
	int32_t id;

	if (id64 < z->ntypes || id64 >= z->nblocks || z->blocks[id64].type == ZB_DEAD ||
	    !(z->blocks[id64].used & bit)) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", (long long)h);
		return -1;
	}
	id = (int32_t)id64;
	b = &z->blocks[id];
	ty = &z->types[b->type];
	b->used &= ~bit;
	b->free_slots++;
	if (b->free_slots == ty->slots) {
		zb_unlink(z->blocks, id);
		ty->count--;
		z->pages -= ty->pages;
		b->type = ZB_DEAD;
		b->used = 0;
		b->prev = ZB_NIL;
		b->next = z->free_top;
		z->free_top = id;
	} else if (b->free_slots == 1) {
		zb_add_tail(z->blocks, b->type, id);
	}
	return 0;
}

static int64_t zblock_pool_pages(xb_alloc *a)
{
	return ((zblock *)a)->pages;
}

static const xb_ops zblock_ops = {
	.malloc = zblock_malloc,
	.free = zblock_free,
	.pool_pages = zblock_pool_pages,
};

/* The pure allocator's list attribute name, as a fast sequence (a new reference). */
static PyObject *zb_list_attr(PyObject *pure, const char *name)
{
	PyObject *v = PyObject_GetAttrString(pure, name), *seq;

	if (!v)
		return NULL;
	seq = PySequence_Fast(v, "zblock: a table attribute is not a list");
	Py_DECREF(v);
	return seq;
}

/* The int list attribute name of the pure allocator, at most n items into out[]. */
static int zb_int_list(PyObject *pure, const char *name, int64_t *out, Py_ssize_t n,
		       Py_ssize_t *len)
{
	PyObject *seq = zb_list_attr(pure, name);
	Py_ssize_t i;

	if (!seq)
		return -1;
	*len = PySequence_Fast_GET_SIZE(seq);
	if (*len > n) {
		PyErr_Format(PyExc_ValueError, "zblock: %s has %zd items, at most %zd", name,
			     *len, n);
		goto fail;
	}
	for (i = 0; i < *len; i++) {
		long long x = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));

		if (x == -1 && PyErr_Occurred())
			goto fail;
		out[i] = x;
	}
	Py_DECREF(seq);
	return 0;
fail:
	Py_DECREF(seq);
	return -1;
}

static int zb_read_types(zblock *z, PyObject *pure)
{
	int64_t slots[ZB_MAX_TYPES], pages[ZB_MAX_TYPES], sizes[ZB_MAX_TYPES];
	Py_ssize_t ns, np, nz, t;

	if (zb_int_list(pure, "slots_per_block", slots, ZB_MAX_TYPES, &ns) < 0 ||
	    zb_int_list(pure, "num_pages", pages, ZB_MAX_TYPES, &np) < 0 ||
	    zb_int_list(pure, "slot_sizes", sizes, ZB_MAX_TYPES, &nz) < 0)
		return -1;
	if (ns == 0 || np != ns || nz != ns) {
		PyErr_SetString(PyExc_ValueError, "zblock: block table lists disagree");
		return -1;
	}
	z->ntypes = (int)ns;
	z->types = PyMem_Calloc(ns, sizeof(*z->types));
	if (!z->types) {
		PyErr_NoMemory();
		return -1;
	}
	for (t = 0; t < ns; t++) {
		if (slots[t] < 1 || slots[t] > ZB_MAX_SLOTS || pages[t] < 1 ||
		    pages[t] > INT32_MAX / XB_PAGE_SIZE || sizes[t] < 1 ||
		    z->header + slots[t] * sizes[t] > pages[t] * XB_PAGE_SIZE) {
			PyErr_Format(PyExc_ValueError, "zblock: block type %zd does not fit", t);
			return -1;
		}
		z->types[t].slots = (int32_t)slots[t];
		z->types[t].pages = (int32_t)pages[t];
	}
	return 0;
}

/* The size -> type lookup, as the pure allocator built it (edge bug or not). */
static int zb_read_type_of(zblock *z, PyObject *pure)
{
	PyObject *seq = zb_list_attr(pure, "_type_of");
	Py_ssize_t i, n;
	int ret = -1;

	if (!seq)
		return -1;
	n = PySequence_Fast_GET_SIZE(seq);
	if (n != z->max_slot + 1) {
		PyErr_SetString(PyExc_ValueError, "zblock: _type_of does not cover 0..max_slot");
		goto out;
	}
	z->type_of = PyMem_Malloc(n);
	if (!z->type_of) {
		PyErr_NoMemory();
		goto out;
	}
	for (i = 0; i < n; i++) {
		long t = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));

		if (t == -1 && PyErr_Occurred())
			goto out;
		if (t < 0 || t > z->ntypes) {
			PyErr_Format(PyExc_ValueError, "zblock: size %zd has type %ld", i, t);
			goto out;
		}
		z->type_of[i] = (uint8_t)t;
	}
	ret = 0;
out:
	Py_DECREF(seq);
	return ret;
}

static void zblock_dealloc(zblock *z)
{
	PyMem_Free(z->types);
	PyMem_Free(z->type_of);
	PyMem_Free(z->blocks);
	Py_TYPE(z)->tp_free((PyObject *)z);
}

static PyObject *zblock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure;
	zblock *z;
	int t;

	if (!PyArg_ParseTuple(args, "O:Zblock", &pure))
		return NULL;
	z = (zblock *)type->tp_alloc(type, 0);
	if (!z)
		return NULL;
	z->base.ops = &zblock_ops;
	z->free_top = ZB_NIL;
	if (xb_attr_i64(pure, "header", &z->header) < 0 ||
	    xb_attr_i64(pure, "max_slot", &z->max_slot) < 0)
		goto fail;
	if (z->header < 0 || z->max_slot < 1 || z->max_slot > XB_PAGE_SIZE * 64) {
		PyErr_SetString(PyExc_ValueError, "zblock: header or max_slot out of range");
		goto fail;
	}
	if (zb_read_types(z, pure) < 0 || zb_read_type_of(z, pure) < 0)
		goto fail;
	if (xb_grow((void **)&z->blocks, &z->cap, (size_t)z->ntypes, sizeof(*z->blocks)) < 0)
		goto fail;
	for (t = 0; t < z->ntypes; t++) {
		z->blocks[t].prev = z->blocks[t].next = t;
		z->blocks[t].type = (uint8_t)t;
	}
	z->nblocks = z->ntypes;
	return (PyObject *)z;
fail:
	Py_DECREF(z);
	return NULL;
}

static PyObject *zblock_stats(zblock *z, PyObject *unused)
{
	PyObject *counts = PyList_New(z->ntypes), *d;
	int64_t blocks = 0;
	int t;

	if (!counts)
		return NULL;
	for (t = 0; t < z->ntypes; t++) {
		PyObject *c = PyLong_FromLongLong(z->types[t].count);

		if (!c) {
			Py_DECREF(counts);
			return NULL;
		}
		PyList_SET_ITEM(counts, t, c);
		blocks += z->types[t].count;
	}
	d = Py_BuildValue("{s:i,s:L,s:L,s:L,s:N}", "block_types", z->ntypes, "header_size",
			  (long long)z->header, "blocks", (long long)blocks, "edge_bug_hits",
			  (long long)z->edge_bug_hits, "block_count", counts);
	return d;
}

#define ZB_CHECK(cond, ...)                                            \
	do {                                                           \
		if (!(cond)) {                                         \
			PyErr_Format(PyExc_AssertionError, __VA_ARGS__); \
			goto fail;                                     \
		}                                                      \
	} while (0)

/*
 * Active lists against blocks: every list is well linked, holds only blocks of its
 * type with a free slot, each once; every block with a free slot is on its list; the
 * bitmaps agree with free_slots; counts and pages agree with a recount; every dead id
 * is on the free stack once.
 */
static PyObject *zblock_check(zblock *z, PyObject *unused)
{
	zb_block *b = z->blocks;
	uint8_t *seen = PyMem_Calloc(z->nblocks ? z->nblocks : 1, 1);
	int64_t counts[ZB_MAX_TYPES] = {0}, pages = 0, dead = 0, stacked = 0;
	int32_t i, prev;
	int t;

	if (!seen)
		return PyErr_NoMemory();
	for (t = 0; t < z->ntypes; t++) {
		for (prev = t, i = b[t].next; i != t; prev = i, i = b[i].next) {
			ZB_CHECK(i >= z->ntypes && i < z->nblocks, "type %d: link out of range", t);
			ZB_CHECK(b[i].prev == prev, "type %d: broken list link", t);
			ZB_CHECK(b[i].type == t && b[i].free_slots > 0, "type %d: bad list entry", t);
			ZB_CHECK(!seen[i], "type %d: block listed twice", t);
			seen[i] = 1;
		}
		ZB_CHECK(b[t].prev == prev, "type %d: head's prev is not the last block", t);
	}
	for (i = z->ntypes; i < z->nblocks; i++) {
		int n;

		if (b[i].type == ZB_DEAD) {
			dead++;
			continue;
		}
		ZB_CHECK(b[i].type < z->ntypes, "block %d: bad type", i);
		n = z->types[b[i].type].slots;
		counts[b[i].type]++;
		pages += z->types[b[i].type].pages;
		ZB_CHECK(b[i].free_slots < n, "empty block kept");
		ZB_CHECK(n == 64 || b[i].used >> n == 0, "slot bit beyond the block");
		ZB_CHECK(__builtin_popcountll(b[i].used) == n - b[i].free_slots, "free_slots wrong");
		ZB_CHECK(seen[i] == (b[i].free_slots > 0), "active list wrong");
	}
	for (t = 0; t < z->ntypes; t++)
		ZB_CHECK(counts[t] == z->types[t].count, "block_count disagrees with live blocks");
	ZB_CHECK(pages == z->pages, "pages disagree with live blocks");
	for (i = z->free_top; i != ZB_NIL; i = b[i].next) {
		ZB_CHECK(i >= z->ntypes && i < z->nblocks && b[i].type == ZB_DEAD && !seen[i],
			 "free id stack broken at %d", i);
		seen[i] = 1;
		stacked++;
	}
	ZB_CHECK(stacked == dead, "%lld dead ids, %lld on the free stack", (long long)dead,
		 (long long)stacked);
	PyMem_Free(seen);
	Py_RETURN_NONE;
fail:
	PyMem_Free(seen);
	return NULL;
}

static PyMethodDef zblock_methods[] = {
	{"stats", (PyCFunction)zblock_stats, METH_NOARGS, NULL},
	{"check", (PyCFunction)zblock_check, METH_NOARGS, NULL},
	{NULL},
};

PyTypeObject XbZblock_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Zblock",
	.tp_basicsize = sizeof(zblock),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "zblock's C twin: Zblock(pure_allocator).",
	.tp_new = zblock_new,
	.tp_dealloc = (destructor)zblock_dealloc,
	.tp_methods = zblock_methods,
};
