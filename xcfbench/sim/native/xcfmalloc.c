/*
 * xcfmalloc's twin (xcfbench/sim/allocators/xcfmalloc.py, classes XcfMalloc and
 * XcfMallocV1): 64-byte blocks on 64 LIFO free lists, allocations of up to two blocks,
 * a reserve of whole free pages on list 63, and the simulator's compaction.
 *
 * The Python reference is the specification; this file follows it step by step, with
 * the same list orders and tie-breaks, because those decide the page counts.  Pages are
 * numbered exactly as there (spare ids on a LIFO stack that grows in chunks): the
 * compaction census sorts by (used bytes, page), so page ids are behaviour.  Descriptor
 * ids follow the same scheme, so a handle (the first descriptor) equals the pure one.
 *
 * A descriptor is 24 bytes here (and 4 on the spare stack), a page 8 (+4).  malloc and
 * free allocate nothing: freed descriptor and page ids are reused, and the arrays only
 * grow with the largest pool seen.
 */
#include "xb.h"
#include <structmember.h>

#define XCF_BLOCK_SHIFT 6
#define XCF_BLOCK 64
#define XCF_LISTS 64
#define XCF_RESERVED 63          /* list 63: whole free pages */
#define XCF_MIN_HOLE 128         /* census: smaller holes only take tiny objects */
#define XCF_FALLBACK_MIN_RESERVE 2
#define XCF_MAX_PAGES (1u << 26) /* page << 6 | block fits 32 bits */
#define XCF_MAX_DESCS (1u << 31)

struct xcf_desc {
	uint32_t slot;       /* page << 6 | offset >> 6 */
	uint32_t next, prev; /* free list, or the allocation's chain */
	uint32_t pp, pn;     /* physically previous and next block in the page; 0 at ends */
	uint16_t size;       /* free: aligned; used: bytes really used, header included */
	uint8_t used;
};

struct xcf_page {
	uint32_t first; /* the descriptor at offset 0 */
	uint8_t live, isolated;
};

/* An id space: ids below n exist; the spare ones are on a LIFO stack. */
struct xcf_ids {
	uint32_t *spare; /* capacity cap, that of the items array too */
	size_t n, cap, nspare;
};

typedef struct {
	xb_alloc base;
	/* Options, normalized by the pure allocator. */
	int64_t hdr, max_alloc, reserve_pages, max_pages; /* max_pages < 0: unlimited */
	int64_t max_passes, desc_slab;
	int first_smaller, second_smaller;
	PyObject *rule;
	PyObject *debug;
	/* Counters, as the pure allocator has them. */
	int64_t reserve_count, page_count, desc_count;
	int64_t pages_freed, bytes_moved, blocks_moved, passes;
	/* Free lists: heads and a mask of the non-empty ones. */
	uint32_t heads[XCF_LISTS];
	uint64_t mask;
	/* Descriptors (index 0 is NULL) and pages, by id. */
	struct xcf_desc *d;
	struct xcf_ids descs;
	struct xcf_page *pg;
	struct xcf_ids pages;
} xcf;

static inline uint64_t bits_upto(int i) /* bits 0..i */
{
	return i >= 63 ? ~0ULL : (2ULL << i) - 1;
}

static inline int hibit(uint64_t m)
{
	return 63 - __builtin_clzll(m);
}

static inline int lobit(uint64_t m)
{
	return __builtin_ctzll(m);
}

static inline int list_of(int64_t bytes) /* the list of blocks holding bytes */
{
	return (int)((bytes + XCF_BLOCK - 1) >> XCF_BLOCK_SHIFT) - 1;
}

static inline uint32_t page_of(xcf *a, uint32_t d)
{
	return a->d[d].slot >> 6;
}

/* -- ids ------------------------------------------------------------------------------ */

/*
 * Grow an id space by max(chunk, n / 2) ids: its items array (zero-filled) and its
 * spare stack together.  The new ids go on the stack so that the lowest is popped
 * first, as _grow_descs and _grow_pages do.
 */
static int grow_ids(struct xcf_ids *ids, void **items, size_t item_size, size_t chunk,
		    size_t limit)
{
	size_t old = ids->n, n = old >> 1 > chunk ? old >> 1 : chunk, cap = ids->cap, i;

	if (old + n > limit) {
		PyErr_SetString(PyExc_MemoryError, "xcfmalloc: pool too large");
		return -1;
	}
	if (xb_grow(items, &cap, old + n, item_size) < 0)
		return -1;
	if (cap != ids->cap) {
		uint32_t *s = PyMem_Realloc(ids->spare, cap * sizeof(*s));

		if (!s) {
			PyErr_NoMemory();
			return -1; /* items grew, ids->cap did not: the next grow retries */
		}
		ids->spare = s;
		ids->cap = cap;
	}
	for (i = 0; i < n; i++)
		ids->spare[ids->nspare++] = (uint32_t)(old + n - 1 - i);
	ids->n = old + n;
	return 0;
}

static int grow_descs(xcf *a)
{
	return grow_ids(&a->descs, (void **)&a->d, sizeof(*a->d), 256, XCF_MAX_DESCS);
}

static int grow_pages(xcf *a)
{
	return grow_ids(&a->pages, (void **)&a->pg, sizeof(*a->pg), 64, XCF_MAX_PAGES);
}

/* Callers make sure the stack is not empty (grow_descs first). */
static inline uint32_t alloc_desc(xcf *a)
{
	a->desc_count++;
	return a->descs.spare[--a->descs.nspare];
}

static inline void free_desc(xcf *a, uint32_t d)
{
	a->descs.spare[a->descs.nspare++] = d;
	a->desc_count--;
}

/* -- free lists ----------------------------------------------------------------------- */

/* insert_block: realign the size, mark free, push on the list of that size. */
static void insert_block(xcf *a, uint32_t d)
{
	struct xcf_desc *x = &a->d[d];
	int i = list_of(x->size);
	uint32_t head = a->heads[i];

	x->size = (uint16_t)((i + 1) << XCF_BLOCK_SHIFT);
	if (i == XCF_RESERVED)
		a->reserve_count++;
	x->next = head;
	x->prev = 0;
	if (head)
		a->d[head].prev = d;
	else
		a->mask |= 1ULL << i;
	a->heads[i] = d;
	x->used = 0;
}

/* remove_block: unlink a free block from anywhere in its list. */
static void remove_block(xcf *a, uint32_t d)
{
	struct xcf_desc *x = &a->d[d];
	int i = (x->size >> XCF_BLOCK_SHIFT) - 1;
	uint32_t p = x->prev, n = x->next;

	if (i == XCF_RESERVED)
		a->reserve_count--;
	if (p) {
		a->d[p].next = n;
	} else {
		a->heads[i] = n;
		if (!n)
			a->mask &= ~(1ULL << i);
	}
	if (n)
		a->d[n].prev = p;
	x->next = x->prev = 0;
}

/*
 * The list find_remove_block takes from for bytes (header included) on lists <= top:
 * best fit; else, if smaller, the largest of lists f-1..1; else the smallest larger.
 * -1 if none.
 */
static int pick_list(xcf *a, int64_t bytes, int smaller, int top)
{
	int f = list_of(bytes);
	uint64_t mask = a->mask & bits_upto(top), m;

	if (mask >> f & 1)
		return f;
	if (smaller) {
		m = mask & bits_upto(f) & ~1ULL;
		if (m)
			return hibit(m);
	}
	m = f >= 63 ? 0 : mask >> (f + 1);
	return m ? f + 1 + lobit(m) : -1;
}

static uint32_t find_remove_block(xcf *a, int64_t payload, int smaller, int top)
{
	int i = pick_list(a, payload + a->hdr, smaller, top);
	uint32_t d;

	if (i < 0)
		return 0;
	d = a->heads[i];
	remove_block(a, d);
	return d;
}

/* Cut the free remainder beyond aneed bytes off block d (of bsize bytes). */
static void split(xcf *a, uint32_t d, int64_t aneed, int64_t bsize)
{
	uint32_t s = alloc_desc(a), after = a->d[d].pn;
	struct xcf_desc *x = &a->d[s];

	x->slot = a->d[d].slot + (uint32_t)(aneed >> XCF_BLOCK_SHIFT);
	x->size = (uint16_t)(bsize - aneed);
	x->pn = after;
	x->pp = d;
	a->d[d].pn = s;
	if (after)
		a->d[after].pp = s;
	insert_block(a, s);
}

/* Make d a used block of need bytes, splitting off the rest.  A descriptor is spare. */
static void finish_block(xcf *a, uint32_t d, int64_t need)
{
	int64_t aneed = (need + XCF_BLOCK - 1) & -XCF_BLOCK, bsize = a->d[d].size;

	if (bsize > aneed)
		split(a, d, aneed, bsize);
	a->d[d].size = (uint16_t)need;
}

static int ensure_spare_desc(xcf *a)
{
	return a->descs.nspare ? 0 : grow_descs(a);
}

/* -- pool ------------------------------------------------------------------------------ */

/* Top list 63 up to reserve_pages whole free pages (start of every malloc).  The
 * counters move page by page, so a MemoryError leaves a consistent, smaller reserve. */
static int increase_pool(xcf *a)
{
	int64_t deficit = a->reserve_pages - a->reserve_count, k;

	if (a->max_pages >= 0 && a->max_pages - a->page_count < deficit)
		deficit = a->max_pages - a->page_count; /* alloc_page() fails */
	for (k = 0; k < deficit; k++) {
		uint32_t d, p;
		struct xcf_desc *x;

		if (ensure_spare_desc(a) < 0 || (!a->pages.nspare && grow_pages(a) < 0))
			return -1;
		d = alloc_desc(a);
		p = a->pages.spare[--a->pages.nspare];
		a->pg[p].live = 1;
		a->pg[p].isolated = 0;
		a->pg[p].first = d;
		x = &a->d[d];
		x->slot = p << 6;
		x->size = XB_PAGE_SIZE;
		x->pp = x->pn = 0;
		a->page_count++;
		insert_block(a, d);
	}
	return 0;
}

/* Release whole free pages above reserve_pages, head of list 63 first. */
static void decrease_pool(xcf *a)
{
	int64_t k, surplus = a->reserve_count - a->reserve_pages;

	for (k = 0; k < surplus; k++) {
		uint32_t d = a->heads[XCF_RESERVED], p = page_of(a, d);

		remove_block(a, d);
		a->pg[p].live = 0;
		a->pages.spare[a->pages.nspare++] = p;
		a->page_count--;
		free_desc(a, d);
	}
}

/* -- malloc / free --------------------------------------------------------------------- */

static int64_t xcf_malloc(xb_alloc *base, uint64_t usize)
{
	xcf *a = (xcf *)base;
	int64_t size = (int64_t)usize, need, bsize;
	uint32_t d, last;
	int i;

	if (usize > (uint64_t)a->max_alloc)
		return XB_REFUSED;
	if (a->reserve_count < a->reserve_pages && increase_pool(a) < 0)
		return XB_ERROR;
	/* The split below takes a descriptor; growing now, while the stack is empty, hands
	 * out the same ids as growing then. */
	if (ensure_spare_desc(a) < 0)
		return XB_ERROR;
	need = size + a->hdr;
	i = pick_list(a, need, a->first_smaller, XCF_RESERVED);
	if (i < 0)
		return XB_REFUSED;
	d = a->heads[i];
	remove_block(a, d);
	a->d[d].used = 1;
	last = d;
	bsize = a->d[d].size;
	if (bsize < need) { /* d is used whole; a second block for the rest */
		size -= bsize - a->hdr;
		need = size + a->hdr;
		i = pick_list(a, need, a->second_smaller, XCF_RESERVED);
		if (i < 0) { /* undo: the first block goes back, unmerged */
			insert_block(a, d);
			return XB_REFUSED;
		}
		last = a->heads[i];
		remove_block(a, last);
		bsize = a->d[last].size;
		if (bsize < need) {
			PyErr_SetString(PyExc_AssertionError,
					"xcfmalloc: a third block would be needed");
			return XB_ERROR;
		}
		a->d[last].used = 1;
		a->d[d].next = last;
		a->d[last].prev = d;
		a->d[last].next = 0;
	}
	finish_block(a, last, need);
	return d;
}

/* xcf_free of a live allocation: free each block of the chain, merging it with its free
 * physical neighbours, then trim the reserve. */
static void free_chain(xcf *a, uint32_t d)
{
	int k;

	for (k = 0; k < 2 && d; k++) {
		struct xcf_desc *x = &a->d[d];
		uint32_t chained = x->next, p = x->pp, q = x->pn;
		int64_t size = (x->size + XCF_BLOCK - 1) & -XCF_BLOCK;

		x->used = 0;
		if (p && !a->d[p].used) { /* merge into the previous block */
			remove_block(a, p);
			size += a->d[p].size;
			free_desc(a, d);
			d = p;
		}
		if (q && !a->d[q].used) { /* absorb the next block */
			remove_block(a, q);
			size += a->d[q].size;
			free_desc(a, q);
			q = a->d[q].pn;
		}
		a->d[d].pn = q;
		if (q)
			a->d[q].pp = d;
		a->d[d].size = (uint16_t)size;
		insert_block(a, d);
		d = chained;
	}
	if (a->reserve_count > a->reserve_pages)
		decrease_pool(a);
}

static int is_handle(xcf *a, int64_t h)
{
	return h > 0 && (size_t)h < a->descs.n && a->d[h].used && !a->d[h].prev;
}

static int xcf_free(xb_alloc *base, int64_t h)
{
	xcf *a = (xcf *)base;

	if (!is_handle(a, h)) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", (long long)h);
		return -1;
	}
	free_chain(a, (uint32_t)h);
	return 0;
}

static int64_t xcf_pool_pages(xb_alloc *base)
{
	xcf *a = (xcf *)base;

	return a->page_count - a->reserve_count;
}

static int64_t xcf_pages_held(xb_alloc *base)
{
	return ((xcf *)base)->page_count;
}

static int64_t xcf_metadata_bytes(xb_alloc *base)
{
	xcf *a = (xcf *)base;

	return (a->desc_count - a->reserve_count) * a->desc_slab;
}

/* -- compaction ------------------------------------------------------------------------- */

struct census {
	int64_t live, room;
	uint32_t page;
};

static int census_cmp(const void *x, const void *y)
{
	const struct census *a = x, *b = y;

	if (a->live != b->live)
		return a->live < b->live ? -1 : 1;
	return a->page < b->page ? -1 : a->page > b->page;
}

/* Used blocks for payload bytes on lists <= top, by the v2 rule: 0 if no room, else
 * the number of blocks, in out[]. */
static int take(xcf *a, int64_t payload, int top, uint32_t out[2])
{
	int64_t hdr = a->hdr, bsize, rest;
	uint32_t first, second;

	if (ensure_spare_desc(a) < 0)
		return -1;
	first = find_remove_block(a, payload, 1, top);
	if (!first)
		return 0;
	a->d[first].used = 1;
	bsize = a->d[first].size;
	out[0] = first;
	if (bsize >= payload + hdr) {
		finish_block(a, first, payload + hdr);
		return 1;
	}
	rest = payload - (bsize - hdr);
	second = find_remove_block(a, rest, 0, top);
	if (!second) {
		insert_block(a, first);
		return 0;
	}
	a->d[second].used = 1;
	finish_block(a, second, rest + hdr);
	out[1] = second;
	return 2;
}

/* One used block of need bytes (header included) on lists <= top, or 0. */
static int64_t take_one(xcf *a, int64_t need, int top)
{
	uint32_t d;

	if (ensure_spare_desc(a) < 0)
		return -1;
	d = find_remove_block(a, need - a->hdr, 0, top);
	if (d) {
		a->d[d].used = 1;
		finish_block(a, d, need);
	}
	return d;
}

static inline uint32_t swapped(uint32_t x, uint32_t a, uint32_t b)
{
	return x == a ? b : x == b ? a : x;
}

/* Exchange the blocks that descriptors a and b describe: page, offset, size and physical
 * neighbours (a and b may be neighbours). */
static void swap_places(xcf *al, uint32_t a, uint32_t b)
{
	struct xcf_desc *x = &al->d[a], *y = &al->d[b];
	uint32_t sa = x->slot, sb = y->slot, around[4], n = 0, i, j, t;
	uint16_t s = x->size;
	uint32_t xpp = x->pp, xpn = x->pn, ypp = y->pp, ypn = y->pn;
	uint32_t cand[4] = {xpp, xpn, ypp, ypn};

	for (i = 0; i < 4; i++) {
		t = cand[i];
		if (!t || t == a || t == b)
			continue;
		for (j = 0; j < n && around[j] != t; j++)
			;
		if (j == n)
			around[n++] = t;
	}
	x->slot = sb;
	y->slot = sa;
	x->size = y->size;
	y->size = s;
	x->pp = swapped(ypp, a, b);
	x->pn = swapped(ypn, a, b);
	y->pp = swapped(xpp, a, b);
	y->pn = swapped(xpn, a, b);
	for (i = 0; i < n; i++) {
		struct xcf_desc *z = &al->d[around[i]];

		z->pp = swapped(z->pp, a, b);
		z->pn = swapped(z->pn, a, b);
	}
	if (!(sa & 63))
		al->pg[sa >> 6].first = b;
	if (!(sb & 63))
		al->pg[sb >> 6].first = a;
}

/* Free the block d now describes.  On an isolated page it waits for retile(). */
static void release(xcf *a, uint32_t d)
{
	struct xcf_desc *x = &a->d[d];

	if (a->pg[x->slot >> 6].isolated) {
		x->used = 0;
		x->size = (uint16_t)((x->size + XCF_BLOCK - 1) & -XCF_BLOCK);
	} else {
		free_chain(a, d); /* d was taken as a single block: its chain link is NULL */
	}
}

/* Move the allocation holding block d off d's page: 1, or 0 if there is no room, or -1
 * with an exception set. */
static int relocate(xcf *a, uint32_t d)
{
	int64_t hdr = a->hdr, payload;
	uint32_t h = a->d[d].prev ? a->d[d].prev : d;
	uint32_t chain[2] = {h, a->d[h].next}, news[2], members[2], released[3];
	int nchain = chain[1] ? 2 : 1, nnew, nmem = 0, nrel = 0, i;

	if (nchain == 2) {
		uint32_t other = d == h ? chain[1] : h;

		if (!a->pg[page_of(a, other)].isolated) {
			int64_t t = take_one(a, a->d[d].size, XCF_RESERVED - 1);

			if (t < 0)
				return -1;
			if (t) { /* d moves alone, its size unchanged */
				swap_places(a, d, (uint32_t)t);
				release(a, (uint32_t)t);
				a->blocks_moved++;
				a->bytes_moved += a->d[d].size - hdr;
				return 1;
			}
		}
	}
	payload = 0;
	for (i = 0; i < nchain; i++)
		payload += a->d[chain[i]].size - hdr;
	nnew = take(a, payload, XCF_RESERVED - 1, news);
	if (!nnew && a->reserve_count >= XCF_FALLBACK_MIN_RESERVE)
		nnew = take(a, payload, XCF_RESERVED, news); /* a reserve page as destination */
	if (nnew <= 0)
		return nnew;
	for (i = 0; i < nnew; i++) {
		if (i < nchain) { /* chain[i] moves into news[i]'s block */
			swap_places(a, chain[i], news[i]);
			members[nmem++] = chain[i];
			released[nrel++] = news[i];
		} else { /* a second block joins the chain */
			members[nmem++] = news[i];
		}
	}
	if (nchain > nnew)
		released[nrel++] = chain[1];
	a->d[h].next = a->d[h].prev = 0;
	if (nmem == 2) {
		a->d[h].next = members[1];
		a->d[members[1]].prev = h;
		a->d[members[1]].next = 0;
	}
	for (i = 0; i < nrel; i++)
		release(a, released[i]);
	a->blocks_moved += nchain;
	a->bytes_moved += payload;
	return 1;
}

/* Move every used block off page p, in address order: 1, 0 if out of room, -1 error. */
static int evacuate(xcf *a, uint32_t p)
{
	uint32_t snap[XB_PAGE_SIZE / XCF_BLOCK], d;
	int n = 0, i, r;

	for (d = a->pg[p].first; d; d = a->d[d].pn)
		if (a->d[d].used)
			snap[n++] = d;
	for (i = 0; i < n; i++) {
		d = snap[i];
		/* d may already have left, with the other block of its allocation. */
		if (a->d[d].used && page_of(a, d) == p) {
			r = relocate(a, d);
			if (r <= 0)
				return r;
		}
	}
	return 1;
}

/* Coalesce the free blocks of an isolated page and put them on the free lists. */
static void retile(xcf *a, uint32_t p)
{
	uint32_t run = 0, d, next;

	for (d = a->pg[p].first; d; d = next) {
		struct xcf_desc *x = &a->d[d];

		next = x->pn;
		if (x->used) {
			if (run)
				insert_block(a, run);
			run = 0;
		} else if (run) { /* run absorbs d */
			a->d[run].size += x->size;
			a->d[run].pn = next;
			if (next)
				a->d[next].pp = run;
			free_desc(a, d);
		} else {
			run = d;
		}
	}
	if (run)
		insert_block(a, run);
	a->pg[p].isolated = 0;
}

static int compact_pass(xcf *a)
{
	struct census *cen;
	size_t n = 0, k, j, p;
	int64_t room_left = 0, demand = 0;
	int r = 1;

	cen = PyMem_Malloc((a->pages.n ? a->pages.n : 1) * sizeof(*cen));
	if (!cen) {
		PyErr_NoMemory();
		return -1;
	}
	for (p = 0; p < a->pages.n; p++) {
		int64_t live = 0, room = 0;
		uint32_t d;

		if (!a->pg[p].live)
			continue;
		for (d = a->pg[p].first; d; d = a->d[d].pn) {
			const struct xcf_desc *x = &a->d[d];

			if (x->used)
				live += (x->size + XCF_BLOCK - 1) & -XCF_BLOCK;
			else if (x->size >= XCF_MIN_HOLE)
				room += x->size;
		}
		if (live) {
			cen[n].live = live;
			cen[n].room = room;
			cen[n].page = (uint32_t)p;
			n++;
		}
	}
	qsort(cen, n, sizeof(*cen), census_cmp);
	/* The largest K whose used bytes fit into the room left on the other pages. */
	for (j = 0; j < n; j++)
		room_left += cen[j].room;
	for (k = 0; k < n; k++) {
		demand += cen[k].live;
		room_left -= cen[k].room;
		if (demand > room_left)
			break;
	}
	for (j = 0; j < k; j++) { /* isolate the sources */
		uint32_t d, q = cen[j].page;

		a->pg[q].isolated = 1;
		for (d = a->pg[q].first; d; d = a->d[d].pn)
			if (!a->d[d].used)
				remove_block(a, d);
	}
	for (j = 0; j < k; j++) {
		r = evacuate(a, cen[j].page);
		retile(a, cen[j].page);
		if (r <= 0) {
			for (j++; j < k; j++)
				retile(a, cen[j].page);
			break;
		}
	}
	PyMem_Free(cen);
	return r < 0 ? -1 : 0;
}

static int64_t xcf_compact(xb_alloc *base)
{
	xcf *a = (xcf *)base;
	int64_t before = xcf_pool_pages(base), start, freed, k;

	for (k = 0; k < a->max_passes; k++) {
		a->passes++;
		start = xcf_pool_pages(base);
		if (compact_pass(a) < 0)
			return -1;
		if (xcf_pool_pages(base) >= start)
			break;
	}
	if (a->reserve_count > a->reserve_pages)
		decrease_pool(a);
	freed = before - xcf_pool_pages(base);
	a->pages_freed += freed;
	return freed;
}

static const xb_ops xcf_ops = {
	.malloc = xcf_malloc,
	.free = xcf_free,
	.pool_pages = xcf_pool_pages,
	.pages_held = xcf_pages_held,
	.metadata_bytes = xcf_metadata_bytes,
	.compact = xcf_compact,
};

/* -- Python face ----------------------------------------------------------------------- */

static int attr_bool(PyObject *obj, const char *name, int *out)
{
	PyObject *v = PyObject_GetAttrString(obj, name);

	if (!v)
		return -1;
	*out = PyObject_IsTrue(v);
	Py_DECREF(v);
	return *out < 0 ? -1 : 0;
}

/* Everything the twin needs from the pure allocator, already validated there. */
static int read_options(xcf *a, PyObject *pure)
{
	PyObject *arch, *max_pages;
	int rc;

	if (xb_attr_i64(pure, "hdr", &a->hdr) < 0 ||
	    xb_attr_i64(pure, "max_alloc_size", &a->max_alloc) < 0 ||
	    xb_attr_i64(pure, "reserve_pages", &a->reserve_pages) < 0 ||
	    xb_attr_i64(pure, "max_compact_passes", &a->max_passes) < 0 ||
	    attr_bool(pure, "_first_smaller", &a->first_smaller) < 0 ||
	    attr_bool(pure, "_second_smaller", &a->second_smaller) < 0)
		return -1;
	a->rule = PyObject_GetAttrString(pure, "rule");
	a->debug = PyObject_GetAttrString(pure, "debug");
	if (!a->rule || !a->debug)
		return -1;
	max_pages = PyObject_GetAttrString(pure, "max_pages");
	if (!max_pages)
		return -1;
	a->max_pages = -1;
	rc = 0;
	if (max_pages != Py_None)
		rc = xb_attr_i64(pure, "max_pages", &a->max_pages);
	Py_DECREF(max_pages);
	if (rc < 0)
		return -1;
	arch = PyObject_GetAttrString(pure, "arch");
	if (!arch)
		return -1;
	rc = xb_attr_i64(arch, "xcf_desc_slab", &a->desc_slab);
	Py_DECREF(arch);
	if (rc < 0)
		return -1;
	if (a->hdr <= 0 || a->hdr >= XB_PAGE_SIZE || a->reserve_pages < 1 || a->max_passes < 0 ||
	    a->max_alloc != XB_PAGE_SIZE - a->hdr) {
		PyErr_SetString(PyExc_ValueError, "xcfmalloc: options out of range");
		return -1;
	}
	return 0;
}

static void xcf_dealloc(xcf *a)
{
	Py_XDECREF(a->rule);
	Py_XDECREF(a->debug);
	PyMem_Free(a->d);
	PyMem_Free(a->descs.spare);
	PyMem_Free(a->pg);
	PyMem_Free(a->pages.spare);
	Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *xcf_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure;
	xcf *a;

	if (!PyArg_ParseTuple(args, "O:Xcfmalloc", &pure))
		return NULL;
	a = (xcf *)type->tp_alloc(type, 0);
	if (!a)
		return NULL;
	a->base.ops = &xcf_ops;
	a->descs.n = 1; /* descriptor 0 is NULL */
	if (read_options(a, pure) < 0 || increase_pool(a) < 0) { /* xcf_create_pool */
		Py_DECREF(a);
		return NULL;
	}
	return (PyObject *)a;
}

static PyObject *xcf_stats(xcf *a, PyObject *unused)
{
	long long zv_desc = a->desc_count - a->reserve_count;

	return Py_BuildValue("{s:O,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L}",
			     "rule", a->rule,
			     "block_header_bytes", (long long)a->hdr,
			     "desc_count", zv_desc,
			     "desc_count_total", (long long)a->desc_count,
			     "reserve_count", (long long)a->reserve_count,
			     "page_count", (long long)a->page_count,
			     "zv_page_count", (long long)(a->page_count - a->reserve_count),
			     "zv_desc_count", zv_desc,
			     "compact_pages_freed", (long long)a->pages_freed,
			     "compact_bytes_moved", (long long)a->bytes_moved,
			     "compact_blocks_moved", (long long)a->blocks_moved,
			     "compact_passes", (long long)a->passes);
}

/* -- invariants -------------------------------------------------------------------------- */

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			PyErr_Format(PyExc_AssertionError, __VA_ARGS__);      \
			goto out;                                             \
		}                                                             \
	} while (0)

/* The free lists against the page layouts, the chains, and every counter recounted.
 * tag[d]: 0 unseen, 1 spare, 2 + list on a free list. */
static PyObject *xcf_check(xcf *a, PyObject *unused)
{
	uint8_t *tag = PyMem_Calloc(a->descs.n, 1), *spare_page = PyMem_Calloc(a->pages.n + 1, 1);
	size_t k, descs = 0, pages = 0, on_lists = 0, seen_free = 0;
	int64_t reserve = 0;
	PyObject *ret = NULL;
	int i;

	if (!tag || !spare_page) {
		PyErr_NoMemory();
		goto out;
	}
	CHECK(a->descs.nspare + 1 <= a->descs.n && a->pages.nspare <= a->pages.n, "spare stacks overflow");
	for (k = 0; k < a->descs.nspare; k++) {
		uint32_t d = a->descs.spare[k];

		CHECK(d && d < a->descs.n && !tag[d], "descriptor %u freed twice", d);
		tag[d] = 1;
	}
	for (k = 0; k < a->pages.nspare; k++) {
		uint32_t p = a->pages.spare[k];

		CHECK(p < a->pages.n && !spare_page[p], "page %u freed twice", p);
		spare_page[p] = 1;
	}
	for (i = 0; i < XCF_LISTS; i++) {
		uint32_t d = a->heads[i], back = 0;

		CHECK(!!d == (int)(a->mask >> i & 1), "mask bit %d wrong", i);
		for (; d; back = d, d = a->d[d].next) {
			const struct xcf_desc *x;

			CHECK(d < a->descs.n && !tag[d], "list %d: descriptor %u spare, on two lists, "
			      "or in a cycle", i, d);
			x = &a->d[d];
			CHECK(x->prev == back, "list %d: broken prev link at %u", i, d);
			CHECK(!x->used, "list %d: used block %u", i, d);
			CHECK(x->size == (i + 1) * XCF_BLOCK, "list %d: block %u of %u bytes", i, d,
			      x->size);
			tag[d] = 2 + i;
			on_lists++;
			reserve += i == XCF_RESERVED;
		}
	}
	CHECK(reserve == a->reserve_count, "reserve_count %lld, %lld on list 63",
	      (long long)a->reserve_count, (long long)reserve);
	for (k = 0; k < a->pages.n; k++) {
		uint32_t d, back = 0, off = 0;
		int prev_free = 0, nblocks = 0;

		if (!a->pg[k].live) {
			CHECK(spare_page[k], "page %zu neither live nor spare", k);
			continue;
		}
		CHECK(!spare_page[k], "live page %zu is spare", k);
		CHECK(!a->pg[k].isolated, "page %zu left isolated", k);
		pages++;
		for (d = a->pg[k].first; d; back = d, d = a->d[d].pn) {
			const struct xcf_desc *x;

			CHECK(d < a->descs.n && tag[d] != 1, "page %zu offset %u: dead descriptor %u",
			      k, off, d);
			CHECK(++nblocks <= XCF_LISTS && off < XB_PAGE_SIZE,
			      "page %zu: blocks past its end", k);
			x = &a->d[d];
			CHECK(x->slot == (k << 6) + (off >> 6), "page %zu: block %u misplaced", k, d);
			CHECK(x->pp == back, "page %zu: bad prevoffset link at %u", k, off);
			descs++;
			if (x->used) {
				CHECK(a->hdr <= x->size && x->size <= XB_PAGE_SIZE - off,
				      "used block %u of %u bytes", d, x->size);
				CHECK(!(x->next && x->prev), "allocation of more than 2 blocks at %u", d);
				if (x->next) {
					const struct xcf_desc *n = &a->d[x->next];

					CHECK(x->next < a->descs.n, "chain at %u", d);
					CHECK(n->used && n->prev == d && !n->next, "chain at %u", d);
					CHECK(x->size % XCF_BLOCK == 0, "non-last block %u not full", d);
				}
				if (x->prev) {
					const struct xcf_desc *b = &a->d[x->prev];

					CHECK(x->prev < a->descs.n, "chain at %u", d);
					CHECK(b->used && b->next == d && !b->prev, "chain at %u", d);
				}
				prev_free = 0;
			} else {
				CHECK(tag[d] == 2 + (x->size >> XCF_BLOCK_SHIFT) - 1,
				      "free block %u off its list", d);
				CHECK(!prev_free, "page %zu: adjacent free blocks at %u", k, off);
				seen_free++;
				prev_free = 1;
			}
			off += (x->size + XCF_BLOCK - 1) & -XCF_BLOCK;
		}
		CHECK(off == XB_PAGE_SIZE, "page %zu: blocks cover %u bytes", k, off);
	}
	CHECK(seen_free == on_lists, "free-list blocks that are in no page");
	CHECK((int64_t)pages == a->page_count, "page_count %lld, %zu live pages",
	      (long long)a->page_count, pages);
	CHECK((int64_t)descs == a->desc_count, "desc_count %lld, %zu in pages",
	      (long long)a->desc_count, descs);
	CHECK(descs + a->descs.nspare == a->descs.n - 1, "descriptors lost");
	ret = Py_None;
	Py_INCREF(ret);
out:
	PyMem_Free(tag);
	PyMem_Free(spare_page);
	return ret;
}

static PyObject *xcf_get_max_pages(xcf *a, void *unused)
{
	if (a->max_pages < 0)
		Py_RETURN_NONE;
	return PyLong_FromLongLong(a->max_pages);
}

static PyMethodDef xcf_methods[] = {
	{"stats", (PyCFunction)xcf_stats, METH_NOARGS, NULL},
	{"check", (PyCFunction)xcf_check, METH_NOARGS, NULL},
	{NULL},
};

/* The pure allocator's public attributes, read-only. */
static PyMemberDef xcf_members[] = {
	{"rule", T_OBJECT, offsetof(xcf, rule), READONLY, NULL},
	{"debug", T_OBJECT, offsetof(xcf, debug), READONLY, NULL},
	{"hdr", T_LONGLONG, offsetof(xcf, hdr), READONLY, NULL},
	{"reserve_pages", T_LONGLONG, offsetof(xcf, reserve_pages), READONLY, NULL},
	{"max_compact_passes", T_LONGLONG, offsetof(xcf, max_passes), READONLY, NULL},
	{"reserve_count", T_LONGLONG, offsetof(xcf, reserve_count), READONLY, NULL},
	{"page_count", T_LONGLONG, offsetof(xcf, page_count), READONLY, NULL},
	{"desc_count", T_LONGLONG, offsetof(xcf, desc_count), READONLY, NULL},
	{"compact_pages_freed", T_LONGLONG, offsetof(xcf, pages_freed), READONLY, NULL},
	{"compact_bytes_moved", T_LONGLONG, offsetof(xcf, bytes_moved), READONLY, NULL},
	{"compact_blocks_moved", T_LONGLONG, offsetof(xcf, blocks_moved), READONLY, NULL},
	{"compact_passes", T_LONGLONG, offsetof(xcf, passes), READONLY, NULL},
	{NULL},
};

static PyGetSetDef xcf_getset[] = {
	{"max_pages", (getter)xcf_get_max_pages, NULL, NULL, NULL},
	{NULL},
};

PyTypeObject XbXcfmalloc_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Xcfmalloc",
	.tp_basicsize = sizeof(xcf),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "xcfmalloc's C twin: Xcfmalloc(pure_allocator).",
	.tp_new = xcf_new,
	.tp_dealloc = (destructor)xcf_dealloc,
	.tp_methods = xcf_methods,
	.tp_members = xcf_members,
	.tp_getset = xcf_getset,
};
