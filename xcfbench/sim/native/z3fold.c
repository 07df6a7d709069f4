/*
 * z3fold's twin: up to three buddies per page, headless pages, deferred compaction.
 *
 * A line-by-line translation of xcfbench/sim/allocators/z3fold.py (see its docstring
 * for the kernel's rules).  Pages are slots of one array, reused once released; a
 * handle is a slot of a handle table holding the index of the page its object lives in
 * now (compact_single_buddy moves objects, the handle stays).
 *
 * Orders that decide page counts, kept as the reference has them: an unbuddied list
 * takes pages at its head and z3fold_alloc takes its head (the reference's dict
 * appends and popitem()s).  Compactions queued under deferred="never" stay queued:
 * nothing outside the tests calls the reference's run_deferred_work(), so the twin has
 * no such call (tests that run the queue use the reference).
 */
#include "xb.h"

#define CHUNK_SHIFT 6
#define CHUNK_SIZE (1 << CHUNK_SHIFT)
#define TOTAL_CHUNKS (XB_PAGE_SIZE >> CHUNK_SHIFT)
#define BIG_CHUNK_GAP 3
#define NIL UINT32_MAX

/* Handle table entries: the page index, or a free slot linking the next free one. */
#define H_FREE (1u << 31)
#define H_MOVED (1u << 30) /* in _moved: foreign in the page it lives in */
#define H_PAGE (H_MOVED - 1)
#define MAX_SLOTS H_MOVED  /* handles and pages both stay below it */

enum {
	PG_USED = 1,       /* the slot holds a page counted in pages_nr */
	PG_CPU = 2,        /* cpu >= 0: add_to_unbuddied filed it "on this CPU" */
	PG_COMPACTING = 4, /* NEEDS_COMPACTING */
	PG_HEADLESS = 8,
};

typedef struct {
	uint32_t prev, next; /* unbuddied list; next also links free slots */
	uint32_t qnext;      /* the queue of compaction work items */
	uint32_t h_first, h_middle, h_last; /* 0: none */
	uint8_t first, middle, last, start_middle;
	uint8_t foreign, refs;
	int8_t lst; /* unbuddied list it is on, -1 for none */
	uint8_t flags;
} z3page;

typedef struct {
	xb_alloc base;
	int64_t zhdr_size, zhdr_chunks, nchunks, headless_over;
	int64_t pages_nr, headless, work_items_run, queued;
	int each_op, release_queued;
	z3page *pages;
	size_t pages_cap;
	uint32_t npages, free_page;  /* slots used so far; free slot chain (NIL: empty) */
	uint32_t *hp;
	size_t hp_cap;
	uint32_t nhandles, free_handle; /* handle 0 is never used: 0 ends the chain */
	uint32_t heads[TOTAL_CHUNKS];
	uint64_t nonempty; /* bit i set <=> unbuddied[i] is not empty */
	uint32_t qhead, qtail;
} z3fold;

/* -- slots ------------------------------------------------------------------------- */

/* Room for one more handle and one more page, before anything changes. */
static int reserve(z3fold *z)
{
	if (!z->free_handle) {
		if (z->nhandles >= MAX_SLOTS) {
			PyErr_NoMemory();
			return -1;
		}
		if (xb_grow((void **)&z->hp, &z->hp_cap, (size_t)z->nhandles + 1, sizeof(*z->hp)) < 0)
			return -1;
	}
	if (z->free_page == NIL) {
		if (z->npages >= MAX_SLOTS) {
			PyErr_NoMemory();
			return -1;
		}
		if (xb_grow((void **)&z->pages, &z->pages_cap, (size_t)z->npages + 1,
			    sizeof(*z->pages)) < 0)
			return -1;
	}
	return 0;
}

static uint32_t handle_get(z3fold *z)
{
	uint32_t h = z->free_handle;

	if (h) {
		z->free_handle = z->hp[h] & ~H_FREE;
		return h;
	}
	return z->nhandles++;
}

static uint32_t page_new(z3fold *z)
{
	uint32_t p = z->free_page;
	z3page *pg;

	if (p != NIL)
		z->free_page = z->pages[p].next;
	else
		p = z->npages++;
	pg = &z->pages[p];
	memset(pg, 0, sizeof(*pg));
	pg->prev = pg->next = pg->qnext = NIL;
	pg->refs = 1;
	pg->lst = -1;
	pg->flags = PG_USED;
	z->pages_nr++;
	return p;
}

/* The slot is reused: nothing refers to the page any more. */
static void page_put(z3fold *z, uint32_t p)
{
	z->pages[p].flags = 0;
	z->pages[p].next = z->free_page;
	z->free_page = p;
}

/* __release_z3fold_page: pages_nr drops now, the release work frees the page. */
static void release(z3fold *z, uint32_t p)
{
	z->pages_nr--;
	z->release_queued = 1;
	page_put(z, p);
}

/* -- unbuddied lists --------------------------------------------------------------- */

static void list_add(z3fold *z, uint32_t p, unsigned i)
{
	z3page *pg = &z->pages[p];

	pg->prev = NIL;
	pg->next = z->heads[i];
	if (pg->next != NIL)
		z->pages[pg->next].prev = p;
	z->heads[i] = p;
	z->nonempty |= 1ull << i;
	pg->lst = (int8_t)i;
	pg->flags |= PG_CPU;
}

static void list_del(z3fold *z, uint32_t p)
{
	z3page *pg = &z->pages[p];
	unsigned i = (unsigned)pg->lst;

	if (pg->lst < 0)
		return;
	if (pg->prev != NIL)
		z->pages[pg->prev].next = pg->next;
	else
		z->heads[i] = pg->next;
	if (pg->next != NIL)
		z->pages[pg->next].prev = pg->prev;
	if (z->heads[i] == NIL)
		z->nonempty &= ~(1ull << i);
	pg->prev = pg->next = NIL;
	pg->lst = -1;
}

static unsigned num_free_chunks(const z3fold *z, const z3page *pg)
{
	unsigned before, after;

	if (pg->middle) {
		before = pg->first ? 0 : pg->start_middle - z->zhdr_chunks;
		after = pg->last ? 0 : TOTAL_CHUNKS - pg->start_middle - pg->middle;
		return before > after ? before : after;
	}
	return z->nchunks - pg->first - pg->last;
}

/* File the page at the head of unbuddied[free chunks], unless it is full. */
static void add_to_unbuddied(z3fold *z, uint32_t p)
{
	z3page *pg = &z->pages[p];

	if (pg->first && pg->middle && pg->last)
		return;
	list_add(z, p, num_free_chunks(z, pg));
}

/* __z3fold_alloc: the head of the first non-empty unbuddied[chunks..], off its list. */
static uint32_t take_unbuddied(z3fold *z, unsigned chunks)
{
	uint64_t candidates;
	uint32_t p;

	while ((candidates = z->nonempty >> chunks)) {
		p = z->heads[chunks + __builtin_ctzll(candidates)];
		list_del(z, p);
		z->pages[p].flags &= ~PG_CPU;
		if (!(z->pages[p].flags & PG_COMPACTING))
			return p;
		/* waiting for its compaction work: dropped, search again (deferred="never") */
	}
	return NIL;
}

/* get_free_buddy() for a page from unbuddied[>= chunks], and fill that buddy; the
 * lists guarantee the room (the reference asserts it). */
static void place(z3fold *z, z3page *pg, unsigned chunks, uint32_t h)
{
	if (pg->middle) {
		if (!pg->first && chunks <= pg->start_middle - z->zhdr_chunks) {
			pg->first = chunks;
			pg->h_first = h;
			return;
		}
	} else if (!pg->first) {
		pg->first = chunks;
		pg->h_first = h;
		return;
	} else if (pg->last) {
		pg->middle = chunks;
		pg->start_middle = pg->first + z->zhdr_chunks;
		pg->h_middle = h;
		return;
	}
	pg->last = chunks;
	pg->h_last = h;
}

/* -- z3fold_alloc ------------------------------------------------------------------ */

static int64_t z3_malloc(xb_alloc *a, uint64_t size)
{
	z3fold *z = (z3fold *)a;
	unsigned chunks;
	uint32_t h, p;
	z3page *pg;

	if (size == 0 || size > XB_PAGE_SIZE)
		return XB_REFUSED;
	if (reserve(z) < 0)
		return XB_ERROR;
	h = handle_get(z);
	if ((int64_t)size > z->headless_over) {
		p = page_new(z);
		z->pages[p].flags |= PG_HEADLESS;
		z->headless++;
	} else {
		chunks = (unsigned)(size + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
		p = z->nonempty >> chunks ? take_unbuddied(z, chunks) : NIL;
		if (p == NIL) {
			p = page_new(z);
			pg = &z->pages[p];
			pg->first = chunks;
			pg->h_first = h;
			list_add(z, p, z->nchunks - chunks);
		} else {
			pg = &z->pages[p];
			pg->refs++;
			place(z, pg, chunks, h);
			add_to_unbuddied(z, p);
		}
	}
	z->hp[h] = p;
	return h;
}

/* -- compaction -------------------------------------------------------------------- */

/* Move the page's one object into another unbuddied page; 0 if none fits. */
static int compact_single_buddy(z3fold *z, uint32_t p)
{
	z3page *pg = &z->pages[p], *npg;
	unsigned chunks;
	uint32_t h, np;

	if (pg->first) {
		chunks = pg->first;
		h = pg->h_first;
	} else if (pg->middle) {
		chunks = pg->middle;
		h = pg->h_middle;
	} else {
		chunks = pg->last;
		h = pg->h_last;
	}
	np = z->nonempty >> chunks ? take_unbuddied(z, chunks) : NIL;
	if (np == NIL)
		return 0;
	npg = &z->pages[np];
	npg->refs++;
	npg->foreign++;
	place(z, npg, chunks, h);
	z->hp[h] = np | H_MOVED;
	add_to_unbuddied(z, np);
	pg->first = pg->middle = pg->last = 0;
	pg->h_first = pg->h_middle = pg->h_last = 0;
	return 1;
}

/* z3fold_compact_page: slide the middle object where that pays. */
static void compact_page(z3fold *z, z3page *pg)
{
	unsigned zc = z->zhdr_chunks;

	if (!pg->first && !pg->last) {
		pg->first = pg->middle;
		pg->h_first = pg->h_middle;
		pg->middle = pg->start_middle = 0;
		pg->h_middle = 0;
	} else if (pg->first && !pg->last &&
		   pg->start_middle - (pg->first + (int)zc) >= BIG_CHUNK_GAP) {
		pg->start_middle = pg->first + zc;
	} else if (pg->last && !pg->first &&
		   TOTAL_CHUNKS - (pg->last + pg->start_middle + pg->middle) >= BIG_CHUNK_GAP) {
		pg->start_middle = TOTAL_CHUNKS - pg->last - pg->middle;
	}
}

static void do_compact_page(z3fold *z, uint32_t p)
{
	z3page *pg = &z->pages[p];

	pg->flags &= ~PG_COMPACTING;
	list_del(z, p);
	if (--pg->refs == 0) {
		release(z, p);
		return;
	}
	/* With the work's reference dropped, refs counts the objects. */
	if (pg->refs == 1 && !pg->foreign && compact_single_buddy(z, p)) {
		pg->refs = 0;
		release(z, p);
		return;
	}
	if (pg->middle)
		compact_page(z, pg);
	add_to_unbuddied(z, p);
}

static void queue_push(z3fold *z, uint32_t p)
{
	z->pages[p].qnext = NIL;
	if (z->qhead == NIL)
		z->qhead = p;
	else
		z->pages[z->qtail].qnext = p;
	z->qtail = p;
	z->queued++;
}

/* -- z3fold_free ------------------------------------------------------------------- */

static int z3_free(xb_alloc *a, int64_t handle)
{
	z3fold *z = (z3fold *)a;
	uint32_t h = (uint32_t)handle, e, p;
	z3page *pg;

	if (handle <= 0 || handle >= z->nhandles || (z->hp[h] & H_FREE)) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", (long long)handle);
		return -1;
	}
	e = z->hp[h];
	p = e & H_PAGE;
	pg = &z->pages[p];
	z->hp[h] = H_FREE | z->free_handle;
	z->free_handle = h;
	if (pg->flags & PG_HEADLESS) {
		z->pages_nr--;
		z->headless--;
		page_put(z, p);
		return 0;
	}
	if (pg->h_first == h)
		pg->first = pg->h_first = 0;
	else if (pg->h_last == h)
		pg->last = pg->h_last = 0;
	else
		pg->middle = pg->h_middle = 0;
	if (e & H_MOVED)
		pg->foreign--;
	if (--pg->refs == 0) {
		list_del(z, p);
		release(z, p);
	} else if (pg->flags & PG_COMPACTING) {
		return 0;
	} else {
		pg->flags |= PG_COMPACTING;
		pg->refs++;
		if (!(pg->flags & PG_CPU)) {
			/* a full page belongs to no CPU's lists: z3fold_free compacts it itself */
			do_compact_page(z, p);
		} else if (z->each_op) {
			z->work_items_run++;
			do_compact_page(z, p);
		} else {
			queue_push(z, p);
			return 0;
		}
	}
	if (z->release_queued && z->each_op) {
		z->release_queued = 0;
		z->work_items_run++;
	}
	return 0;
}

static int64_t z3_pool_pages(xb_alloc *a)
{
	return ((z3fold *)a)->pages_nr;
}

static const xb_ops z3_ops = {
	.malloc = z3_malloc,
	.free = z3_free,
	.pool_pages = z3_pool_pages,
};

/* -- Python methods ---------------------------------------------------------------- */

static PyObject *z3_stats(z3fold *z, PyObject *unused)
{
	return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L}",
			     "zhdr_size_aligned", (long long)z->zhdr_size,
			     "nchunks", (long long)z->nchunks,
			     "work_items_run", (long long)z->work_items_run,
			     "headless_pages", (long long)z->headless,
			     "work_items_pending", (long long)(z->queued + z->release_queued));
}

#define CHECK(cond, ...)                                                \
	do {                                                            \
		if (!(cond)) {                                          \
			PyErr_Format(PyExc_AssertionError, __VA_ARGS__); \
			goto fail;                                      \
		}                                                       \
	} while (0)

/* Per page while checking: live handles, foreign ones among them, queued. */
typedef struct {
	uint8_t objects, foreign, queued;
} pagecount;

static int check_page(z3fold *z, uint32_t p, const pagecount *c)
{
	const z3page *pg = &z->pages[p];
	const uint8_t chunks[3] = {pg->first, pg->middle, pg->last};
	const uint32_t hs[3] = {pg->h_first, pg->h_middle, pg->h_last};
	int compacting = !!(pg->flags & PG_COMPACTING), i, n = 0;
	int full = pg->first && pg->middle && pg->last;

	if (pg->flags & PG_HEADLESS) {
		CHECK(c->objects == 1 && pg->lst < 0, "headless page %u misused", p);
		return 0;
	}
	for (i = 0; i < 3; i++) {
		CHECK(!chunks[i] == !hs[i], "page %u: stale handle", p);
		if (hs[i]) {
			CHECK(hs[i] < z->nhandles && !(z->hp[hs[i]] & H_FREE) &&
				      (z->hp[hs[i]] & H_PAGE) == p,
			      "page %u: buddy handle %u does not live there", p, hs[i]);
			n++;
		}
	}
	CHECK(n == c->objects, "page %u: buddy chunk counts disagree with live handles", p);
	CHECK(pg->refs == c->objects + compacting, "page %u: refcount wrong", p);
	CHECK(pg->foreign == c->foreign, "page %u: foreign_handles wrong", p);
	CHECK(compacting || !c->queued, "page %u: queued but not NEEDS_COMPACTING", p);
	if (pg->middle) {
		CHECK(z->zhdr_chunks + pg->first <= pg->start_middle, "FIRST overlaps MIDDLE");
		CHECK(pg->start_middle + pg->middle + pg->last <= TOTAL_CHUNKS,
		      "MIDDLE overlaps LAST");
	} else {
		CHECK(z->zhdr_chunks + pg->first + pg->last <= TOTAL_CHUNKS, "FIRST overlaps LAST");
	}
	if (pg->lst >= 0) {
		CHECK(!full, "full page %u on an unbuddied list", p);
		CHECK(compacting || pg->lst == (int)num_free_chunks(z, pg),
		      "page %u on the wrong list", p);
		CHECK(pg->flags & PG_CPU, "listed page %u belongs to no CPU", p);
	} else if (z->each_op) {
		CHECK(full, "unlisted page %u with a free buddy", p);
	}
	return 0;
fail:
	return -1;
}

static int check_lists(z3fold *z, int64_t listed)
{
	int64_t walked = 0;
	uint32_t p, prev;
	int64_t i;

	for (i = 0; i < TOTAL_CHUNKS; i++) {
		CHECK(i < z->nchunks || z->heads[i] == NIL, "list %lld past NCHUNKS", (long long)i);
		CHECK((z->heads[i] != NIL) == (int)(z->nonempty >> i & 1),
		      "bitmap wrong for list %lld", (long long)i);
		for (prev = NIL, p = z->heads[i]; p != NIL; prev = p, p = z->pages[p].next) {
			CHECK(p < z->npages && (z->pages[p].flags & PG_USED),
			      "a released page is still listed");
			CHECK(z->pages[p].lst == i && z->pages[p].prev == prev,
			      "page %u not on its list", p);
			CHECK(++walked <= listed, "list %lld is corrupt", (long long)i);
		}
	}
	CHECK(walked == listed, "%lld pages on lists, %lld say they are", (long long)walked,
	      (long long)listed);
	return 0;
fail:
	return -1;
}

static PyObject *z3_check(z3fold *z, PyObject *unused)
{
	pagecount *count = PyMem_Calloc(z->npages ? z->npages : 1, sizeof(*count));
	int64_t used = 0, listed = 0, headless = 0, nfree = 0, nqueued = 0;
	uint32_t h, p, e;

	if (!count)
		return PyErr_NoMemory();
	for (h = 1; h < z->nhandles; h++) {
		e = z->hp[h];
		if (e & H_FREE)
			continue;
		p = e & H_PAGE;
		CHECK(p < z->npages && (z->pages[p].flags & PG_USED),
		      "handle %u points to no page", h);
		CHECK(count[p].objects < 3, "page %u holds too many handles", p);
		count[p].objects++;
		count[p].foreign += !!(e & H_MOVED);
	}
	for (h = z->free_handle; h; h = z->hp[h] & ~H_FREE) {
		CHECK(h < z->nhandles && (z->hp[h] & H_FREE), "free handle chain corrupt");
		CHECK(++nfree < z->nhandles, "free handle chain loops");
	}
	for (p = z->qhead; p != NIL; p = z->pages[p].qnext) {
		CHECK(p < z->npages && (z->pages[p].flags & PG_USED) && !count[p].queued,
		      "work queue corrupt");
		count[p].queued = 1;
		nqueued++;
	}
	CHECK(nqueued == z->queued, "%lld queued, counted %lld", (long long)nqueued,
	      (long long)z->queued);
	for (p = z->free_page, nfree = 0; p != NIL; p = z->pages[p].next) {
		CHECK(p < z->npages && !z->pages[p].flags, "free page chain corrupt");
		CHECK(++nfree <= z->npages, "free page chain loops");
	}
	for (p = 0; p < z->npages; p++) {
		if (!(z->pages[p].flags & PG_USED))
			continue;
		used++;
		CHECK(count[p].objects || count[p].queued, "page %u in use by nothing", p);
		listed += z->pages[p].lst >= 0;
		headless += !!(z->pages[p].flags & PG_HEADLESS);
		if (check_page(z, p, &count[p]) < 0)
			goto fail;
	}
	CHECK(used + nfree == z->npages, "page slots leak");
	CHECK(used == z->pages_nr, "pages_nr %lld != %lld pages in use", (long long)z->pages_nr,
	      (long long)used);
	CHECK(headless == z->headless, "headless count wrong");
	if (check_lists(z, listed) < 0)
		goto fail;
	PyMem_Free(count);
	Py_RETURN_NONE;
fail:
	PyMem_Free(count);
	return NULL;
}

/* -- the type ---------------------------------------------------------------------- */

static PyObject *z3_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure, *deferred;
	z3fold *z;
	int i;

	if (!PyArg_ParseTuple(args, "O:Z3fold", &pure))
		return NULL;
	z = (z3fold *)type->tp_alloc(type, 0);
	if (!z)
		return NULL;
	z->base.ops = &z3_ops;
	z->free_page = z->qhead = z->qtail = NIL;
	z->nhandles = 1; /* handle 0 is the reference's "no handle" */
	for (i = 0; i < TOTAL_CHUNKS; i++)
		z->heads[i] = NIL;
	if (xb_attr_i64(pure, "zhdr_size", &z->zhdr_size) < 0 ||
	    xb_attr_i64(pure, "zhdr_chunks", &z->zhdr_chunks) < 0 ||
	    xb_attr_i64(pure, "nchunks", &z->nchunks) < 0 ||
	    xb_attr_i64(pure, "headless_over", &z->headless_over) < 0)
		goto fail;
	if (z->nchunks < 1 || z->nchunks > TOTAL_CHUNKS - 1 ||
	    z->zhdr_chunks != TOTAL_CHUNKS - z->nchunks) {
		PyErr_SetString(PyExc_ValueError, "z3fold: header chunks out of range");
		goto fail;
	}
	deferred = PyObject_GetAttrString(pure, "deferred");
	if (!deferred)
		goto fail;
	z->each_op = PyUnicode_Check(deferred) &&
		     PyUnicode_CompareWithASCIIString(deferred, "each-op") == 0;
	Py_DECREF(deferred);
	return (PyObject *)z;
fail:
	Py_DECREF(z);
	return NULL;
}

static void z3_dealloc(z3fold *z)
{
	PyMem_Free(z->pages);
	PyMem_Free(z->hp);
	Py_TYPE(z)->tp_free((PyObject *)z);
}

static PyMethodDef z3_methods[] = {
	{"stats", (PyCFunction)z3_stats, METH_NOARGS, NULL},
	{"check", (PyCFunction)z3_check, METH_NOARGS, "Verify the invariants (AssertionError)."},
	{NULL},
};

PyTypeObject XbZ3fold_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Z3fold",
	.tp_basicsize = sizeof(z3fold),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "z3fold's C twin: Z3fold(pure_allocator).",
	.tp_new = z3_new,
	.tp_dealloc = (destructor)z3_dealloc,
	.tp_methods = z3_methods,
};
