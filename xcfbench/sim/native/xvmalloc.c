/*
 * xvmalloc's twin: Linux 3.1's zram/zcache allocator, block for block as
 * xcfbench/sim/allocators/xvmalloc.py does it (see its docstring for the algorithm).
 *
 * Every block, used or free, is a 24-byte record: its page and offset, its size, its
 * physical neighbours in the page (the kernel's prev offset and "next header is at
 * offset + size"), and for a listed free block its links on one of the 508 LIFO lists.
 * Handles are the pure allocator's addresses, page << 12 | (offset + 4), with page ids
 * reused last-in first-out as it does, so the two hand out the same numbers (its tests
 * compare handles with the kernel model's offsets).  A small open-addressing table maps
 * a used block's handle to its record; free blocks are reached through the neighbours.
 */
#include "xb.h"

#define XV_ALIGN 4
#define XV_MIN_ALLOC_SIZE 32
#define XV_MAX_ALLOC_SIZE (XB_PAGE_SIZE - XV_ALIGN) /* 4092 */
#define FL_DELTA 8
#define NUM_FREE_LISTS ((XV_MAX_ALLOC_SIZE - XV_MIN_ALLOC_SIZE) / FL_DELTA + 1) /* 508 */
#define TOP_LIST (NUM_FREE_LISTS - 1)
#define BITMAP_WORDS ((NUM_FREE_LISTS + 63) / 64)

#define NIL UINT32_MAX
/* Flags in the low bits of a record's offset, which is a multiple of 4 (as the kernel's). */
#define BLOCK_FREE 1u
#define BLOCK_MARK 2u  /* check() only */
#define OFF_MASK 0xfffcu

typedef struct {
	uint32_t page;         /* NIL: a spare record */
	uint16_t off;          /* the header's offset in the page | flags */
	uint16_t size;         /* used: the size requested; free: the payload */
	uint32_t pprev, pnext; /* physical neighbours; NIL at the page's edges */
	uint32_t lprev, lnext; /* free list links; lnext also chains spare records */
} xv_block;

typedef struct {
	xb_alloc base;
	xv_block *blk;
	size_t blk_cap;
	uint32_t nrec;          /* records below it have been used */
	uint32_t spare_rec;     /* chain of spare records, reused last-in first-out */
	uint32_t heads[NUM_FREE_LISTS];
	uint64_t bitmap[BITMAP_WORDS]; /* bit i: list i is non-empty */
	uint32_t *slots;        /* handle -> used record, linear probing; NIL: empty */
	size_t nslots;          /* a power of two, or 0 */
	int64_t nused;
	uint32_t *spare_pages;  /* released page ids, reused last-in first-out */
	size_t spare_pages_cap, nspare_pages;
	uint32_t next_page;     /* page ids below it have been handed out */
	int64_t total_pages;
	int64_t nlisted, listed_bytes, free_bytes; /* stats(), kept as we go */
} xvmalloc;

static inline int is_free(const xv_block *b)
{
	return b->off & BLOCK_FREE;
}

static inline unsigned block_off(const xv_block *b)
{
	return b->off & OFF_MASK;
}

static inline int64_t handle_of(const xv_block *b)
{
	return (int64_t)b->page << XB_PAGE_SHIFT | (block_off(b) + XV_ALIGN);
}

static inline unsigned align4(unsigned n)
{
	return (n + XV_ALIGN - 1) & ~(unsigned)(XV_ALIGN - 1);
}

/* -- records ------------------------------------------------------------------------ */

/* The caller has made room (ensure_room), so this cannot fail. */
static uint32_t rec_get(xvmalloc *p)
{
	uint32_t r = p->spare_rec;

	if (r != NIL) {
		p->spare_rec = p->blk[r].lnext;
		return r;
	}
	return p->nrec++;
}

static void rec_put(xvmalloc *p, uint32_t r)
{
	xv_block *b = &p->blk[r];

	b->page = NIL;
	b->off = 0;
	b->lnext = p->spare_rec;
	p->spare_rec = r;
}

/* -- the handle table ------------------------------------------------------------------ */

static inline size_t slot_home(const xvmalloc *p, int64_t h)
{
	return (size_t)(((uint64_t)h * 0x9e3779b97f4a7c15ull) >> 32) & (p->nslots - 1);
}

static void slot_insert(xvmalloc *p, uint32_t r)
{
	size_t mask = p->nslots - 1, i = slot_home(p, handle_of(&p->blk[r]));

	while (p->slots[i] != NIL)
		i = (i + 1) & mask;
	p->slots[i] = r;
}

static int rehash(xvmalloc *p, size_t nslots)
{
	uint32_t *old = p->slots;
	size_t i, n = p->nslots;

	p->slots = PyMem_Malloc(nslots * sizeof(*p->slots));
	if (!p->slots) {
		p->slots = old;
		PyErr_NoMemory();
		return -1;
	}
	memset(p->slots, 0xff, nslots * sizeof(*p->slots));
	p->nslots = nslots;
	for (i = 0; i < n; i++)
		if (old[i] != NIL)
			slot_insert(p, old[i]);
	PyMem_Free(old);
	return 0;
}

static size_t slot_find(const xvmalloc *p, int64_t h)
{
	size_t mask = p->nslots - 1, i;
	uint32_t r;

	if (!p->nslots)
		return SIZE_MAX;
	for (i = slot_home(p, h); (r = p->slots[i]) != NIL; i = (i + 1) & mask)
		if (handle_of(&p->blk[r]) == h)
			return i;
	return SIZE_MAX;
}

/* Empty slot i and shift back the entries after it that probed past it. */
static void slot_remove(xvmalloc *p, size_t i)
{
	size_t mask = p->nslots - 1, j = i, home;
	uint32_t r;

	for (;;) {
		j = (j + 1) & mask;
		r = p->slots[j];
		if (r == NIL)
			break;
		home = slot_home(p, handle_of(&p->blk[r]));
		/* r may move to i when its home is not in (i, j] (cyclically). */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			p->slots[i] = r;
			i = j;
		}
	}
	p->slots[i] = NIL;
}

/* -- free lists ------------------------------------------------------------------------ */

static void list_push(xvmalloc *p, uint32_t r)
{
	xv_block *b = &p->blk[r];
	unsigned i = (b->size - XV_MIN_ALLOC_SIZE) >> 3;
	uint32_t head = p->heads[i];

	b->lprev = NIL;
	b->lnext = head;
	if (head != NIL)
		p->blk[head].lprev = r;
	else
		p->bitmap[i >> 6] |= 1ull << (i & 63);
	p->heads[i] = r;
	p->nlisted++;
	p->listed_bytes += b->size;
}

static void list_del(xvmalloc *p, uint32_t r)
{
	xv_block *b = &p->blk[r];
	unsigned i = (b->size - XV_MIN_ALLOC_SIZE) >> 3;

	if (b->lprev != NIL)
		p->blk[b->lprev].lnext = b->lnext;
	else
		p->heads[i] = b->lnext;
	if (b->lnext != NIL)
		p->blk[b->lnext].lprev = b->lprev;
	if (p->heads[i] == NIL)
		p->bitmap[i >> 6] &= ~(1ull << (i & 63));
	p->nlisted--;
	p->listed_bytes -= b->size;
}

/* A free block of this payload: counted, and listed when it is at least 32. */
static void free_block_add(xvmalloc *p, uint32_t r, unsigned payload)
{
	xv_block *b = &p->blk[r];

	b->size = (uint16_t)payload;
	b->off |= BLOCK_FREE;
	p->free_bytes += payload;
	if (payload >= XV_MIN_ALLOC_SIZE)
		list_push(p, r);
}

static void free_block_del(xvmalloc *p, uint32_t r)
{
	xv_block *b = &p->blk[r];

	if (b->size >= XV_MIN_ALLOC_SIZE)
		list_del(p, r);
	p->free_bytes -= b->size;
	b->off &= ~BLOCK_FREE;
}

/* The lowest non-empty list at or above index (the kernel's two-level bitmap), or -1. */
static int find_list(const xvmalloc *p, unsigned index)
{
	unsigned w = index >> 6;
	uint64_t m;

	if (w >= BITMAP_WORDS)
		return -1;
	m = p->bitmap[w] & (~0ull << (index & 63));
	while (!m) {
		if (++w == BITMAP_WORDS)
			return -1;
		m = p->bitmap[w];
	}
	return (int)(w * 64 + __builtin_ctzll(m));
}

/* -- pages ----------------------------------------------------------------------------- */

/* grow_pool(): a new page as one block of 4092, not yet free or listed. */
static uint32_t grow_pool(xvmalloc *p)
{
	uint32_t r = rec_get(p);
	xv_block *b = &p->blk[r];

	b->page = p->nspare_pages ? p->spare_pages[--p->nspare_pages] : p->next_page++;
	b->off = 0;
	b->size = XV_MAX_ALLOC_SIZE;
	b->pprev = b->pnext = NIL;
	p->total_pages++;
	return r;
}

/*
 * Room for what one malloc may need, made before anything changes: two records (a new
 * page and the tail), a handle slot, and a spare-page slot for every page id.
 */
static int ensure_room(xvmalloc *p)
{
	if ((size_t)p->nrec + 2 > p->blk_cap) {
		if (p->nrec > UINT32_MAX - 3) {
			PyErr_SetString(PyExc_MemoryError, "xvmalloc: too many blocks");
			return -1;
		}
		if (xb_grow((void **)&p->blk, &p->blk_cap, (size_t)p->nrec + 2, sizeof(*p->blk)) < 0)
			return -1;
	}
	if ((size_t)(p->nused + 1) * 2 > p->nslots &&
	    rehash(p, p->nslots ? p->nslots * 2 : 64) < 0)
		return -1;
	if ((size_t)p->next_page + 1 > p->spare_pages_cap &&
	    xb_grow((void **)&p->spare_pages, &p->spare_pages_cap, (size_t)p->next_page + 1,
		    sizeof(*p->spare_pages)) < 0)
		return -1;
	return 0;
}

/* -- xv_malloc / xv_free ------------------------------------------------------------- */

static int64_t xv_malloc(xb_alloc *a, uint64_t size)
{
	xvmalloc *p = (xvmalloc *)a;
	unsigned need, index, payload, rest;
	uint32_t r, t;
	xv_block *b, *tb;
	int i;

	if (size == 0 || size > XV_MAX_ALLOC_SIZE)
		return XB_REFUSED;
	if (ensure_room(p) < 0)
		return XB_ERROR;
	need = align4((unsigned)size);
	index = need > XV_MIN_ALLOC_SIZE ? (need - 25) >> 3 : 0;
	i = find_list(p, index);
	if (i >= 0) {
		r = p->heads[i]; /* the LIFO head */
		payload = p->blk[r].size;
		free_block_del(p, r);
	} else {
		/* The kernel grows before it knows whether any list could serve: 4089..4092
		 * maps to list 508, which does not exist, and leaves the new page behind. */
		r = grow_pool(p);
		if (index > TOP_LIST) {
			free_block_add(p, r, XV_MAX_ALLOC_SIZE);
			return XB_REFUSED;
		}
		payload = XV_MAX_ALLOC_SIZE;
	}
	b = &p->blk[r];
	if (payload != need) {
		/* The remainder, header included, becomes the free block after the object. */
		rest = payload - need - XV_ALIGN;
		t = rec_get(p);
		tb = &p->blk[t];
		tb->page = b->page;
		tb->off = (uint16_t)(block_off(b) + XV_ALIGN + need);
		tb->pprev = r;
		tb->pnext = b->pnext;
		if (b->pnext != NIL)
			p->blk[b->pnext].pprev = t;
		b->pnext = t;
		free_block_add(p, t, rest);
	}
	b->size = (uint16_t)size;
	slot_insert(p, r);
	p->nused++;
	return handle_of(b);
}

/* Merge free block n (b's physical successor) into b. */
static void absorb_next(xvmalloc *p, uint32_t r, uint32_t n)
{
	xv_block *b = &p->blk[r];

	b->pnext = p->blk[n].pnext;
	if (b->pnext != NIL)
		p->blk[b->pnext].pprev = r;
	rec_put(p, n);
}

static int xv_free(xb_alloc *a, int64_t h)
{
	xvmalloc *p = (xvmalloc *)a;
	size_t slot = slot_find(p, h);
	uint32_t r, n, prev;
	unsigned payload;
	xv_block *b;

	if (slot == SIZE_MAX) {
		PyErr_Format(PyExc_ValueError,
			     "xvmalloc: free of %#llx, which is not a live object"
			     " (the kernel BUG()s on a double free)", (long long)h);
		return -1;
	}
	r = p->slots[slot];
	slot_remove(p, slot);
	p->nused--;
	b = &p->blk[r];
	payload = align4(b->size);
	n = b->pnext;
	if (n != NIL && is_free(&p->blk[n])) {
		payload += p->blk[n].size + XV_ALIGN;
		free_block_del(p, n);
		absorb_next(p, r, n);
	}
	prev = b->pprev;
	if (prev != NIL && is_free(&p->blk[prev])) { /* PREV_FREE: merge into it */
		payload += p->blk[prev].size + XV_ALIGN;
		free_block_del(p, prev);
		absorb_next(p, prev, r);
		r = prev;
		b = &p->blk[r];
	}
	if (payload == XV_MAX_ALLOC_SIZE) { /* the page is empty: release it now */
		p->spare_pages[p->nspare_pages++] = b->page;
		p->total_pages--;
		rec_put(p, r);
		return 0;
	}
	free_block_add(p, r, payload);
	return 0;
}

static int64_t xv_pool_pages(xb_alloc *a)
{
	return ((xvmalloc *)a)->total_pages;
}

static const xb_ops xv_ops = {
	.malloc = xv_malloc,
	.free = xv_free,
	.pool_pages = xv_pool_pages,
};

/* -- the Python face ----------------------------------------------------------------- */

static PyObject *xv_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure;
	int64_t max_size;
	xvmalloc *p;
	int i;

	if (!PyArg_ParseTuple(args, "O:Xvmalloc", &pure))
		return NULL;
	if (xb_attr_i64(pure, "max_alloc_size", &max_size) < 0)
		return NULL;
	if (max_size != XV_MAX_ALLOC_SIZE) {
		PyErr_Format(PyExc_ValueError, "Xvmalloc: max_alloc_size %lld, expected %d",
			     (long long)max_size, XV_MAX_ALLOC_SIZE);
		return NULL;
	}
	p = (xvmalloc *)type->tp_alloc(type, 0);
	if (!p)
		return NULL;
	p->base.ops = &xv_ops;
	p->spare_rec = NIL;
	for (i = 0; i < NUM_FREE_LISTS; i++)
		p->heads[i] = NIL;
	return (PyObject *)p;
}

static void xv_dealloc(xvmalloc *p)
{
	PyMem_Free(p->blk);
	PyMem_Free(p->slots);
	PyMem_Free(p->spare_pages);
	Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *xv_stats(xvmalloc *p, PyObject *unused)
{
	return Py_BuildValue("{s:L,s:L,s:L}",
			     "free_blocks_listed", (long long)p->nlisted,
			     "free_bytes_listed", (long long)p->listed_bytes,
			     "fragment_bytes", (long long)(p->free_bytes - p->listed_bytes));
}

static PyObject *xv_object_size(xvmalloc *p, PyObject *arg)
{
	long long h = PyLong_AsLongLong(arg);
	size_t slot;

	if (h == -1 && PyErr_Occurred())
		return NULL;
	slot = slot_find(p, h);
	if (slot == SIZE_MAX) {
		PyErr_SetObject(PyExc_KeyError, arg);
		return NULL;
	}
	return PyLong_FromLong(p->blk[p->slots[slot]].size);
}

static PyObject *xv_no_bytes(xvmalloc *p, PyObject *args)
{
	PyErr_SetString(PyExc_RuntimeError,
			"xvmalloc: created with store=False, bytes are not kept");
	return NULL;
}

/* -- check() ------------------------------------------------------------------------- */

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			PyErr_Format(PyExc_AssertionError, "xvmalloc: " __VA_ARGS__); \
			return -1;                                              \
		}                                                               \
	} while (0)

/* Each list: well linked, right blocks, bitmap right; marks every listed block. */
static int check_lists(xvmalloc *p)
{
	int64_t count = 0, bytes = 0, steps;
	uint32_t r, last;
	unsigned i;

	for (i = 0; i < NUM_FREE_LISTS; i++) {
		CHECK((p->heads[i] != NIL) == !!(p->bitmap[i >> 6] >> (i & 63) & 1),
		      "bitmap bit %u is stale", i);
		last = NIL;
		steps = 0;
		for (r = p->heads[i]; r != NIL; last = r, r = p->blk[r].lnext) {
			xv_block *b = &p->blk[r];

			CHECK(r < p->nrec && ++steps <= p->nrec, "list %u runs wild", i);
			CHECK(b->page != NIL && is_free(b) && !(b->off & BLOCK_MARK),
			      "list %u holds record %u, not a free block listed once", i, r);
			CHECK(b->size >= XV_MIN_ALLOC_SIZE &&
				      (unsigned)(b->size - XV_MIN_ALLOC_SIZE) >> 3 == i,
			      "list %u holds a block of payload %u", i, b->size);
			CHECK(b->lprev == last, "list %u: record %u has a wrong back link", i, r);
			b->off |= BLOCK_MARK;
			count++;
			bytes += b->size;
		}
	}
	CHECK(count == p->nlisted && bytes == p->listed_bytes,
	      "listed %lld blocks of %lld bytes, counted %lld of %lld", (long long)count,
	      (long long)bytes, (long long)p->nlisted, (long long)p->listed_bytes);
	for (r = 0; r < p->nrec; r++) {
		xv_block *b = &p->blk[r];

		if (b->page == NIL)
			continue;
		CHECK(!!(b->off & BLOCK_MARK) == (is_free(b) && b->size >= XV_MIN_ALLOC_SIZE),
		      "block at page %u offset %u: on a list is wrong", b->page, block_off(b));
		b->off &= ~BLOCK_MARK;
	}
	return 0;
}

/* One page from its first block: tiled exactly, linked both ways, no free pair. */
static int check_page(xvmalloc *p, uint32_t first, int64_t *used, int64_t *free_bytes)
{
	unsigned off = 0, len;
	uint32_t r = first, prev = NIL, page = p->blk[first].page;
	int prev_free = 0;
	size_t slot;

	while (r != NIL) {
		xv_block *b = &p->blk[r];

		CHECK(r < p->nrec && b->page == page, "page %u: a block of another page", page);
		CHECK(block_off(b) == off, "page %u: block at %u, expected %u", page,
		      block_off(b), off);
		CHECK(b->pprev == prev, "page %u offset %u: wrong prev", page, off);
		CHECK(!(b->off & BLOCK_MARK), "page %u offset %u: reached twice", page, off);
		if (is_free(b)) {
			CHECK(!prev_free, "page %u: free blocks at offset %u not merged", page, off);
			CHECK(b->size % XV_ALIGN == 0, "page %u offset %u: odd payload", page, off);
			len = b->size;
			*free_bytes += b->size;
		} else {
			CHECK(b->size > 0, "page %u offset %u: used block of size 0", page, off);
			slot = slot_find(p, handle_of(b));
			CHECK(slot != SIZE_MAX && p->slots[slot] == r,
			      "page %u offset %u: handle not in the table", page, off);
			len = align4(b->size);
			++*used;
		}
		b->off |= BLOCK_MARK;
		prev_free = is_free(b);
		off += XV_ALIGN + len;
		CHECK(off <= XB_PAGE_SIZE, "page %u: blocks overrun the page (%u)", page, off);
		prev = r;
		r = b->pnext;
	}
	CHECK(off == XB_PAGE_SIZE, "page %u: blocks end at %u", page, off);
	return 0;
}

static int check_pages(xvmalloc *p)
{
	int64_t pages = 0, used = 0, free_bytes = 0, spare = 0;
	uint8_t *seen = PyMem_Calloc(p->next_page + 1, 1);
	uint32_t r;
	size_t i;
	int err = -1;

	if (!seen) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; i < p->nspare_pages; i++) {
		if (p->spare_pages[i] >= p->next_page || seen[p->spare_pages[i]]) {
			PyErr_SetString(PyExc_AssertionError, "xvmalloc: bad spare page id");
			goto out;
		}
		seen[p->spare_pages[i]] = 2;
	}
	for (r = 0; r < p->nrec; r++) {
		xv_block *b = &p->blk[r];

		if (b->page == NIL || b->pprev != NIL)
			continue;
		if (b->page >= p->next_page || seen[b->page]) {
			PyErr_Format(PyExc_AssertionError, "xvmalloc: page id %u twice or spare",
				     b->page);
			goto out;
		}
		seen[b->page] = 1;
		if (check_page(p, r, &used, &free_bytes) < 0)
			goto out;
		pages++;
	}
	for (r = 0; r < p->nrec; r++) {
		xv_block *b = &p->blk[r];

		if (b->page == NIL) {
			spare++;
			continue;
		}
		if (!(b->off & BLOCK_MARK)) {
			PyErr_Format(PyExc_AssertionError,
				     "xvmalloc: block at page %u offset %u on no page's chain",
				     b->page, block_off(b));
			goto out;
		}
		b->off &= ~BLOCK_MARK;
	}
	if (pages != p->total_pages || pages + (int64_t)p->nspare_pages != p->next_page ||
	    used != p->nused || free_bytes != p->free_bytes) {
		PyErr_Format(PyExc_AssertionError,
			     "xvmalloc: recount %lld pages, %lld used, %lld free bytes;"
			     " counters say %lld, %lld, %lld", (long long)pages, (long long)used,
			     (long long)free_bytes, (long long)p->total_pages,
			     (long long)p->nused, (long long)p->free_bytes);
		goto out;
	}
	for (r = p->spare_rec; r != NIL && spare >= 0; r = p->blk[r].lnext, spare--)
		if (r >= p->nrec || p->blk[r].page != NIL)
			break;
	if (r != NIL || spare) {
		PyErr_SetString(PyExc_AssertionError, "xvmalloc: spare records mislaid");
		goto out;
	}
	err = 0;
out:
	PyMem_Free(seen);
	return err;
}

static PyObject *xv_check(xvmalloc *p, PyObject *unused)
{
	uint32_t r;

	if (check_lists(p) < 0 || check_pages(p) < 0) {
		for (r = 0; r < p->nrec; r++) /* a failed check leaves no marks behind */
			p->blk[r].off &= ~BLOCK_MARK;
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyMethodDef xv_methods[] = {
	{"stats", (PyCFunction)xv_stats, METH_NOARGS, NULL},
	{"check", (PyCFunction)xv_check, METH_NOARGS, "Assert the internal invariants."},
	{"object_size", (PyCFunction)xv_object_size, METH_O, "xv_get_object_size()"},
	{"write", (PyCFunction)xv_no_bytes, METH_VARARGS, "store=False: raises"},
	{"read", (PyCFunction)xv_no_bytes, METH_VARARGS, "store=False: raises"},
	{NULL},
};

PyTypeObject XbXvmalloc_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Xvmalloc",
	.tp_basicsize = sizeof(xvmalloc),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "xvmalloc's C twin: Xvmalloc(pure_allocator).",
	.tp_new = xv_new,
	.tp_dealloc = (destructor)xv_dealloc,
	.tp_methods = xv_methods,
};
