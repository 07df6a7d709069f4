/*
 * zbud's twin: two buddies per page, 63 chunks of 64 bytes after a one-chunk header.
 *
 * Per page id: the chunks of each buddy, the list the page is on, and links for it.
 * unbuddied[i] (i = 1..62, free chunks) are doubly linked lists with pushes and pops at
 * the head, as the reference's dict stacks; full pages sit on no list (BUDDIED) and are
 * only counted.  Page ids of freed pages are reused last-in first-out, chained through
 * their next link.  A handle is page << 1 | buddy, the reference's encoding.
 */
#include <stdarg.h>

#include "xb.h"

#define ZBUD_CHUNK_SHIFT 6
#define ZBUD_CHUNK_SIZE (1 << ZBUD_CHUNK_SHIFT)
#define ZBUD_NCHUNKS ((XB_PAGE_SIZE - ZBUD_CHUNK_SIZE) >> ZBUD_CHUNK_SHIFT) /* 63 */
#define ZBUD_MAX_ALLOC (XB_PAGE_SIZE - 2 * ZBUD_CHUNK_SIZE)                  /* 3968 */
#define ZBUD_BUDDIED 0   /* list index of a page with both buddies (on no list) */
#define ZBUD_UNUSED (-1) /* list index of a page id that is free */
#define ZBUD_NIL (-1)

struct zbud_page {
	uint8_t first, last; /* chunks of each buddy; 0: free */
	int8_t list;         /* free chunks, ZBUD_BUDDIED or ZBUD_UNUSED */
	int32_t prev, next;  /* on unbuddied[list], or next unused id */
};

typedef struct {
	xb_alloc base;
	struct zbud_page *pages; /* by page id */
	size_t cap;
	int32_t nids;            /* ids below it have been handed out */
	int32_t unused;          /* head of the unused ids' chain */
	int32_t head[ZBUD_NCHUNKS];
	uint64_t nonempty;       /* bit i set <=> unbuddied[i] is not empty */
	int64_t pages_nr, buddied_nr;
} zbud;

static void list_push(zbud *z, int i, int32_t id)
{
	struct zbud_page *p = &z->pages[id];

	p->list = (int8_t)i;
	p->prev = ZBUD_NIL;
	p->next = z->head[i];
	if (p->next != ZBUD_NIL)
		z->pages[p->next].prev = id;
	z->head[i] = id;
	z->nonempty |= (uint64_t)1 << i;
}

static void list_del(zbud *z, int32_t id)
{
	struct zbud_page *p = &z->pages[id];
	int i = p->list;

	if (p->prev != ZBUD_NIL)
		z->pages[p->prev].next = p->next;
	else
		z->head[i] = p->next;
	if (p->next != ZBUD_NIL)
		z->pages[p->next].prev = p->prev;
	if (z->head[i] == ZBUD_NIL)
		z->nonempty &= ~((uint64_t)1 << i);
}

static int32_t new_page(zbud *z)
{
	int32_t id = z->unused;

	if (id != ZBUD_NIL) {
		z->unused = z->pages[id].next;
	} else {
		if (z->nids == INT32_MAX) {
			PyErr_NoMemory();
			return ZBUD_NIL;
		}
		if (xb_grow((void **)&z->pages, &z->cap, (size_t)z->nids + 1, sizeof(*z->pages)) < 0)
			return ZBUD_NIL;
		id = z->nids++;
	}
	z->pages[id].first = z->pages[id].last = 0;
	z->pages_nr++;
	return id;
}

/* Onto the list of the page's free-chunk count, or counted as buddied. */
static void file_page(zbud *z, int32_t id)
{
	struct zbud_page *p = &z->pages[id];

	if (p->first && p->last) {
		p->list = ZBUD_BUDDIED;
		z->buddied_nr++;
	} else {
		list_push(z, ZBUD_NCHUNKS - p->first - p->last, id);
	}
}

static int64_t zbud_malloc(xb_alloc *a, uint64_t size)
{
	zbud *z = (zbud *)a;
	unsigned int chunks;
	uint64_t candidates;
	struct zbud_page *p;
	int64_t bud = 0;
	int32_t id;

	if (size == 0 || size > ZBUD_MAX_ALLOC)
		return XB_REFUSED;
	chunks = (unsigned int)((size + ZBUD_CHUNK_SIZE - 1) >> ZBUD_CHUNK_SHIFT);
	candidates = z->nonempty >> chunks;
	if (candidates) {
		/* The head of the first non-empty list with enough free chunks. */
		id = z->head[chunks + __builtin_ctzll(candidates)];
		list_del(z, id);
		p = &z->pages[id];
		if (p->first == 0) {
			p->first = (uint8_t)chunks;
		} else {
			p->last = (uint8_t)chunks;
			bud = 1;
		}
	} else {
		id = new_page(z);
		if (id == ZBUD_NIL)
			return XB_ERROR;
		z->pages[id].first = (uint8_t)chunks;
	}
	file_page(z, id);
	return (int64_t)id << 1 | bud;
}

static int zbud_free(xb_alloc *a, int64_t h)
{
	zbud *z = (zbud *)a;
	int64_t id = h >> 1;
	struct zbud_page *p;
	uint8_t *bud;

	p = id < z->nids ? &z->pages[id] : NULL;
	bud = p ? (h & 1 ? &p->last : &p->first) : NULL;
	if (!p || p->list == ZBUD_UNUSED || !*bud) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", (long long)h);
		return -1;
	}
	*bud = 0;
	if (p->list == ZBUD_BUDDIED)
		z->buddied_nr--;
	else
		list_del(z, (int32_t)id);
	if (!p->first && !p->last) {
		p->list = ZBUD_UNUSED;
		p->next = z->unused;
		z->unused = (int32_t)id;
		z->pages_nr--;
	} else {
		file_page(z, (int32_t)id);
	}
	return 0;
}

static int64_t zbud_pool_pages(xb_alloc *a)
{
	return ((zbud *)a)->pages_nr;
}

static const xb_ops zbud_ops = {
	.malloc = zbud_malloc,
	.free = zbud_free,
	.pool_pages = zbud_pool_pages,
};

static PyObject *zbud_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure;
	int64_t max_alloc;
	zbud *z;
	int i;

	if (!PyArg_ParseTuple(args, "O:Zbud", &pure))
		return NULL;
	/* Nothing to read but a cross-check: zbud has no options. */
	if (xb_attr_i64(pure, "max_alloc_size", &max_alloc) < 0)
		return NULL;
	if (max_alloc != ZBUD_MAX_ALLOC) {
		PyErr_Format(PyExc_ValueError, "zbud: max_alloc_size %lld, the twin knows %d",
			     (long long)max_alloc, ZBUD_MAX_ALLOC);
		return NULL;
	}
	z = (zbud *)type->tp_alloc(type, 0);
	if (!z)
		return NULL;
	z->base.ops = &zbud_ops;
	z->unused = ZBUD_NIL;
	for (i = 0; i < ZBUD_NCHUNKS; i++)
		z->head[i] = ZBUD_NIL;
	return (PyObject *)z;
}

static void zbud_dealloc(zbud *z)
{
	PyMem_Free(z->pages);
	Py_TYPE(z)->tp_free((PyObject *)z);
}

static PyObject *zbud_stats(zbud *z, PyObject *unused)
{
	return Py_BuildValue("{s:i,s:L,s:L}", "nchunks", ZBUD_NCHUNKS,
			     "buddied_pages", (long long)z->buddied_nr,
			     "unbuddied_pages", (long long)(z->pages_nr - z->buddied_nr));
}

/* check(): an AssertionError with the message; -1. */
static int failed(const char *fmt, ...)
{
	va_list va;

	va_start(va, fmt);
	PyErr_FormatV(PyExc_AssertionError, fmt, va);
	va_end(va);
	return -1;
}

#define CHECK(cond, ...)                              \
	do {                                          \
		if (!(cond))                          \
			return failed(__VA_ARGS__);   \
	} while (0)

/* Every page id against its layout: the counters, and how many pages are unbuddied. */
static int check_pages(zbud *z, int64_t *listed, int64_t *nunused)
{
	int64_t buddied = 0;
	int32_t id;

	for (id = 0; id < z->nids; id++) {
		struct zbud_page *p = &z->pages[id];
		int i = p->list;

		if (i == ZBUD_UNUSED) {
			(*nunused)++;
			continue;
		}
		CHECK(p->first || p->last, "empty page %d kept", id);
		CHECK(p->first + p->last <= ZBUD_NCHUNKS,
		      "page %d: buddies overlap (%d + %d chunks)", id, p->first, p->last);
		if (p->first && p->last) {
			CHECK(i == ZBUD_BUDDIED, "full page %d on unbuddied[%d]", id, i);
			buddied++;
		} else {
			CHECK(i == ZBUD_NCHUNKS - p->first - p->last, "page %d on unbuddied[%d]",
			      id, i);
			(*listed)++;
		}
	}
	CHECK(*listed + buddied == z->pages_nr, "pages_nr %lld != %lld pages in use",
	      (long long)z->pages_nr, (long long)(*listed + buddied));
	CHECK(buddied == z->buddied_nr, "buddied_nr %lld != %lld buddied pages",
	      (long long)z->buddied_nr, (long long)buddied);
	return 0;
}

/* The unbuddied lists hold exactly the unbuddied pages, linked both ways. */
static int check_lists(zbud *z, int64_t listed)
{
	int64_t walked = 0;
	int32_t id, prev;
	int i;

	CHECK(z->head[0] == ZBUD_NIL && !(z->nonempty & 1), "unbuddied[0] in use");
	for (i = 1; i < ZBUD_NCHUNKS; i++) {
		CHECK((z->head[i] != ZBUD_NIL) == !!(z->nonempty >> i & 1),
		      "bitmap wrong for list %d", i);
		prev = ZBUD_NIL;
		for (id = z->head[i]; id != ZBUD_NIL; id = z->pages[id].next) {
			CHECK(id >= 0 && id < z->nids, "list %d: bad page id %d", i, id);
			CHECK(z->pages[id].list == i, "page %d found on list %d", id, i);
			CHECK(z->pages[id].prev == prev, "page %d: bad prev link", id);
			CHECK(++walked <= listed, "list %d loops", i);
			prev = id;
		}
	}
	CHECK(z->nonempty >> ZBUD_NCHUNKS == 0, "bitmap has bits past the lists");
	CHECK(walked == listed, "%lld pages on lists, %lld unbuddied", (long long)walked,
	      (long long)listed);
	return 0;
}

/* Every unused page id is on the chain new_page() takes ids from. */
static int check_unused(zbud *z, int64_t nunused)
{
	int64_t chained = 0;
	int32_t id;

	for (id = z->unused; id != ZBUD_NIL; id = z->pages[id].next) {
		CHECK(id >= 0 && id < z->nids, "unused chain: bad page id %d", id);
		CHECK(z->pages[id].list == ZBUD_UNUSED, "page %d in use on the unused chain", id);
		CHECK(++chained <= nunused, "unused chain loops");
	}
	CHECK(chained == nunused, "page ids lost: %lld unused, %lld chained",
	      (long long)nunused, (long long)chained);
	return 0;
}

static PyObject *zbud_check(zbud *z, PyObject *unused)
{
	int64_t listed = 0, nunused = 0;

	if (check_pages(z, &listed, &nunused) < 0 || check_lists(z, listed) < 0 ||
	    check_unused(z, nunused) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyMethodDef zbud_methods[] = {
	{"stats", (PyCFunction)zbud_stats, METH_NOARGS, NULL},
	{"check", (PyCFunction)zbud_check, METH_NOARGS, NULL},
	{NULL},
};

PyTypeObject XbZbud_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Zbud",
	.tp_basicsize = sizeof(zbud),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "zbud's C twin: Zbud(pure_allocator).",
	.tp_new = zbud_new,
	.tp_dealloc = (destructor)zbud_dealloc,
	.tp_methods = zbud_methods,
};
