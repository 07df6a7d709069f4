/*
 * zsmalloc's twin: Linux 6.12 (zsmalloc) and 6.2 (zsmalloc-legacy) in one type, the
 * version read from the pure allocator (its _insert_by_inuse and _full_group), as are
 * the class table, the fullness groups and the names stats() shows them by.  The
 * algorithm is xcfbench/sim/allocators/zsmalloc.py's, step by step.
 *
 * Memory follows the live objects and the pool: each class keeps its zspages as 16-byte
 * records in one array and their slots, objs_per_zspage uint32 words a zspage, in another
 * (record z's slots start at z * objs).  A slot word is h << 1 | 1 for the object of
 * handle h, or the next free slot << 1, like the kernel's in-page link.  A handle indexes
 * a table of 5 bytes (class, offset of its slot in the class's slot array), which
 * compaction rewrites when it moves the object.  Freed handles and records are reused.
 */
#include "xb.h"

#define ZS_CLASSES 255
#define ZS_MAX_GROUPS 12        /* 6.12: 0%, 10% .. 90%, 99%, 100% */
#define NIL (-1)                /* no zspage */
#define SLOT_END 0xffff         /* end of a zspage's free-slot chain */
#define RECORD_FREE 0xff        /* fullness of a record not holding a zspage */
#define HANDLE_FREE 0xff        /* hcls of a handle not in use */
#define HANDLE_END UINT32_MAX   /* end of the free-handle chain */
#define HANDLE_MAX ((uint32_t)INT32_MAX) /* h << 1 | 1 fits a slot word */

typedef struct {
	int32_t prev, next;     /* in its fullness list; next also chains free records */
	uint16_t inuse;
	uint16_t free_slot;     /* first free slot, SLOT_END when full */
	uint8_t fullness;
} zspage;

typedef struct {
	int index, size, pages, objs, huge;
	uint8_t *fullness_of;   /* inuse -> fullness group, objs + 1 entries */
	int32_t heads[ZS_MAX_GROUPS];
	uint32_t nonempty;      /* bit g set <=> heads[g] != NIL */
	int64_t obj_allocated, obj_used;
	zspage *zs;             /* records by id */
	size_t zs_cap;
	uint32_t *slots;        /* objs words per record */
	size_t slots_cap;
	int32_t nzs;            /* records handed out */
	int32_t spare;          /* free records, LIFO through next */
} size_class;

typedef struct {
	xb_alloc base;
	int legacy;             /* 6.2: insert by inuse, the old compaction loop */
	int full_group;
	uint32_t search_mask;   /* zs_malloc's groups: every one below full */
	int64_t handle_size, huge_class_size;
	int64_t pages_allocated, pages_compacted, obj_used;
	int nclasses;
	size_class *classes;    /* the distinct classes, by index ascending */
	uint8_t merged[ZS_CLASSES];           /* class index -> merged class index */
	uint8_t class_of[XB_PAGE_SIZE + 1];   /* request size -> distinct class */
	int nstat;
	int stat_groups[ZS_MAX_GROUPS];
	PyObject *stat_names;   /* tuple: the debugfs column of each stat group */
	uint32_t *hoff;         /* by handle: slot offset in its class, or next free */
	uint8_t *hcls;          /* by handle: distinct class, HANDLE_FREE if free */
	size_t hoff_cap, hcls_cap;
	uint32_t nh;            /* handles handed out */
	uint32_t hspare;        /* free handles, LIFO */
} zsmalloc;

static inline uint32_t *slots_of(size_class *c, int32_t z)
{
	return c->slots + (size_t)z * c->objs;
}

/* -- fullness lists (insert_zspage, remove_zspage) --------------------------------- */

static void link_head(size_class *c, int32_t z, int group)
{
	zspage *p = &c->zs[z];
	int32_t head = c->heads[group];

	p->fullness = group;
	p->prev = NIL;
	p->next = head;
	if (head == NIL)
		c->nonempty |= 1u << group;
	else
		c->zs[head].prev = z;
	c->heads[group] = z;
}

/* 6.2: a zspage with fewer objects in use than the head goes behind it. */
static void link_by_inuse(size_class *c, int32_t z, int group)
{
	zspage *p = &c->zs[z];
	int32_t head = c->heads[group], after;

	if (head == NIL || p->inuse >= c->zs[head].inuse) {
		link_head(c, z, group);
		return;
	}
	after = c->zs[head].next;
	p->fullness = group;
	p->prev = head;
	p->next = after;
	if (after != NIL)
		c->zs[after].prev = z;
	c->zs[head].next = z;
}

static void link_zspage(zsmalloc *a, size_class *c, int32_t z, int group)
{
	if (a->legacy)
		link_by_inuse(c, z, group);
	else
		link_head(c, z, group);
}

static void unlink_zspage(size_class *c, int32_t z)
{
	zspage *p = &c->zs[z];

	if (p->next != NIL)
		c->zs[p->next].prev = p->prev;
	if (p->prev == NIL) {
		c->heads[p->fullness] = p->next;
		if (p->next == NIL)
			c->nonempty &= ~(1u << p->fullness);
	} else {
		c->zs[p->prev].next = p->next;
	}
}

/* -- zspages and their slots -------------------------------------------------------- */

/* alloc_zspage: slots linked in index order; the caller links the zspage. */
static int32_t new_zspage(zsmalloc *a, size_class *c)
{
	uint32_t *s;
	int32_t z;
	int i;

	if (c->spare != NIL) {
		z = c->spare;
		c->spare = c->zs[z].next;
	} else {
		if (c->nzs == INT32_MAX || (uint64_t)(c->nzs + 1) * c->objs > UINT32_MAX) {
			PyErr_SetString(PyExc_MemoryError, "zsmalloc twin: too many zspages");
			return NIL;
		}
		if (xb_grow_raw((void **)&c->zs, &c->zs_cap, c->nzs + 1, sizeof(*c->zs)) < 0 ||
		    xb_grow_raw((void **)&c->slots, &c->slots_cap, (size_t)(c->nzs + 1) * c->objs,
			    sizeof(*c->slots)) < 0)
			return NIL;
		z = c->nzs++;
	}
	c->zs[z] = (zspage){ .prev = NIL, .next = NIL, .inuse = 0, .free_slot = 0,
			     .fullness = 0 };
	s = slots_of(c, z);
	for (i = 0; i < c->objs; i++)
		s[i] = (uint32_t)(i + 1 < c->objs ? i + 1 : SLOT_END) << 1;
	a->pages_allocated += c->pages;
	c->obj_allocated += c->objs;
	return z;
}

static void free_zspage(zsmalloc *a, size_class *c, int32_t z)
{
	a->pages_allocated -= c->pages;
	c->obj_allocated -= c->objs;
	c->zs[z].fullness = RECORD_FREE;
	c->zs[z].next = c->spare;
	c->spare = z;
}

/* obj_malloc's slot: the head of the free chain (the last freed, else the next unused). */
static int take_slot(size_class *c, int32_t z)
{
	zspage *p = &c->zs[z];
	int slot = p->free_slot;

	p->free_slot = (uint16_t)(slots_of(c, z)[slot] >> 1);
	return slot;
}

static void put_slot(size_class *c, int32_t z, int slot)
{
	zspage *p = &c->zs[z];

	slots_of(c, z)[slot] = (uint32_t)p->free_slot << 1;
	p->free_slot = (uint16_t)slot;
}

/* -- zs_malloc / zs_free ------------------------------------------------------------ */

static int64_t zs_malloc(xb_alloc *base, uint64_t size)
{
	zsmalloc *a = (zsmalloc *)base;
	size_class *c;
	zspage *p;
	uint32_t groups, h;
	int32_t z;
	int cid, slot, group;

	if (size == 0 || size > XB_PAGE_SIZE)
		return XB_REFUSED;
	if (a->hspare == HANDLE_END) {
		if (a->nh >= HANDLE_MAX) {
			PyErr_SetString(PyExc_MemoryError, "zsmalloc twin: too many handles");
			return XB_ERROR;
		}
		if (xb_grow_raw((void **)&a->hoff, &a->hoff_cap, a->nh + 1, sizeof(*a->hoff)) < 0 ||
		    xb_grow_raw((void **)&a->hcls, &a->hcls_cap, a->nh + 1, sizeof(*a->hcls)) < 0)
			return XB_ERROR;
	}
	cid = a->class_of[size];
	c = &a->classes[cid];
	groups = c->nonempty & a->search_mask;
	if (groups) {
		z = c->heads[31 - __builtin_clz(groups)]; /* find_get_zspage */
	} else {
		z = new_zspage(a, c);
		if (z == NIL)
			return XB_ERROR;
	}
	if (a->hspare != HANDLE_END) {
		h = a->hspare;
		a->hspare = a->hoff[h];
	} else {
		h = a->nh++;
	}
	slot = take_slot(c, z);
	slots_of(c, z)[slot] = h << 1 | 1;
	a->hcls[h] = (uint8_t)cid;
	a->hoff[h] = (uint32_t)z * c->objs + slot;
	p = &c->zs[z];
	p->inuse++;
	c->obj_used++;
	a->obj_used++;
	group = c->fullness_of[p->inuse];
	if (group != p->fullness) { /* fix_fullness_group */
		if (groups)
			unlink_zspage(c, z); /* it was its list's head */
		link_zspage(a, c, z, group);
	}
	return h;
}

static int zs_free(xb_alloc *base, int64_t handle)
{
	zsmalloc *a = (zsmalloc *)base;
	size_class *c;
	zspage *p;
	uint32_t h = (uint32_t)handle, off;
	int32_t z;
	int group;

	if (handle >= a->nh || a->hcls[h] == HANDLE_FREE) {
		PyErr_Format(PyExc_KeyError, "%lld is not a live handle", (long long)handle);
		return -1;
	}
	c = &a->classes[a->hcls[h]];
	off = a->hoff[h];
	z = (int32_t)(off / c->objs);
	put_slot(c, z, (int)(off - (uint32_t)z * c->objs)); /* obj_free */
	a->hcls[h] = HANDLE_FREE;
	a->hoff[h] = a->hspare;
	a->hspare = h;
	p = &c->zs[z];
	p->inuse--;
	c->obj_used--;
	a->obj_used--;
	group = c->fullness_of[p->inuse];
	if (group != p->fullness) {
		unlink_zspage(c, z);
		if (group == 0)
			free_zspage(a, c, z);
		else
			link_zspage(a, c, z, group);
	}
	return 0;
}

/* -- compaction --------------------------------------------------------------------- */

/* zs_can_compact: pages freeable if the class's free slots were packed. */
static int64_t can_compact(const size_class *c)
{
	int64_t wasted = c->obj_allocated - c->obj_used;

	return wasted <= 0 ? 0 : wasted / c->objs * c->pages;
}

/* Unlink the head of the fullest (or emptiest) non-empty group among groups. */
static int32_t isolate(size_class *c, uint32_t groups, int fullest)
{
	int32_t z;

	groups &= c->nonempty;
	if (!groups)
		return NIL;
	z = c->heads[fullest ? 31 - __builtin_clz(groups) : __builtin_ctz(groups)];
	unlink_zspage(c, z);
	return z;
}

/* putback_zspage, or free_zspage for an emptied one; the zspage's group. */
static int putback(zsmalloc *a, size_class *c, int32_t z)
{
	int group = c->fullness_of[c->zs[z].inuse];

	if (group == 0)
		free_zspage(a, c, z);
	else
		link_zspage(a, c, z, group);
	return group;
}

/* The object in src's slot to dst's next free slot; its handle follows it. */
static void move_object(zsmalloc *a, size_class *c, int32_t src, int slot, int32_t dst)
{
	uint32_t word = slots_of(c, src)[slot];
	int dslot = take_slot(c, dst);

	slots_of(c, dst)[dslot] = word;
	a->hoff[word >> 1] = (uint32_t)dst * c->objs + dslot;
	c->zs[dst].inuse++;
	put_slot(c, src, slot);
	c->zs[src].inuse--;
}

/* 6.12 __zs_compact: one destination is filled from as many sources as it takes. */
static int64_t compact_class(zsmalloc *a, size_class *c)
{
	uint32_t partial = ((1u << a->full_group) - 1) & ~1u;
	int32_t dst = NIL, src;
	int64_t freed = 0;
	uint32_t *s;
	int slot;

	while (can_compact(c)) {
		if (dst == NIL) {
			dst = isolate(c, partial, 1);
			if (dst == NIL)
				break;
		}
		src = isolate(c, partial, 0);
		if (src == NIL)
			break;
		/* migrate_zspage: slots in index order until either side is done */
		s = slots_of(c, src);
		for (slot = 0; slot < c->objs; slot++) {
			if (!(s[slot] & 1))
				continue;
			move_object(a, c, src, slot, dst);
			if (c->zs[dst].inuse == c->objs || c->zs[src].inuse == 0)
				break;
		}
		if (putback(a, c, src) == 0)
			freed += c->pages;
		if (c->zs[dst].inuse == c->objs) {
			putback(a, c, dst);
			dst = NIL;
		}
	}
	if (dst != NIL)
		putback(a, c, dst);
	return freed;
}

static int next_object(const uint32_t *s, int cursor, int objs)
{
	while (cursor < objs && !(s[cursor] & 1))
		cursor++;
	return cursor;
}

/* 6.2 __zs_compact: each source is emptied through as many destinations as it takes. */
static int64_t compact_class_legacy(zsmalloc *a, size_class *c)
{
	uint32_t partial = ((1u << a->full_group) - 1) & ~1u; /* almost empty, almost full */
	int32_t src, dst;
	int64_t freed = 0;
	uint32_t *s;
	int cursor;

	for (;;) {
		src = isolate(c, partial, 0);
		if (src == NIL)
			break;
		if (!can_compact(c)) {
			putback(a, c, src);
			break;
		}
		s = slots_of(c, src);
		cursor = 0;
		for (;;) {
			dst = isolate(c, partial, 1);
			if (dst == NIL)
				break;
			cursor = next_object(s, cursor, c->objs);
			while (cursor < c->objs && c->zs[dst].inuse < c->objs) {
				move_object(a, c, src, cursor, dst);
				cursor = next_object(s, cursor + 1, c->objs);
			}
			if (cursor >= c->objs) /* source emptied */
				break;
			putback(a, c, dst);
		}
		if (dst == NIL) { /* no room anywhere */
			putback(a, c, src);
			break;
		}
		putback(a, c, dst);
		if (putback(a, c, src) == 0)
			freed += c->pages;
	}
	return freed;
}

static int64_t zs_compact(xb_alloc *base)
{
	zsmalloc *a = (zsmalloc *)base;
	int64_t freed = 0;
	int i;

	for (i = a->nclasses - 1; i >= 0; i--) {
		if (a->legacy)
			freed += compact_class_legacy(a, &a->classes[i]);
		else
			freed += compact_class(a, &a->classes[i]);
	}
	a->pages_compacted += freed;
	return freed;
}

/* -- accounting --------------------------------------------------------------------- */

static int64_t zs_pool_pages(xb_alloc *base)
{
	return ((zsmalloc *)base)->pages_allocated;
}

/* The handle slab estimate: one sizeof(long) per live object. */
static int64_t zs_metadata_bytes(xb_alloc *base)
{
	zsmalloc *a = (zsmalloc *)base;

	return a->obj_used * a->handle_size;
}

static const xb_ops zs_ops = {
	.malloc = zs_malloc,
	.free = zs_free,
	.pool_pages = zs_pool_pages,
	.metadata_bytes = zs_metadata_bytes,
	.compact = zs_compact,
};

static int64_t list_length(const size_class *c, int group)
{
	int64_t n = 0;
	int32_t z;

	for (z = c->heads[group]; z != NIL; z = c->zs[z].next)
		n++;
	return n;
}

static int set_i64(PyObject *d, const char *key, int64_t v)
{
	PyObject *o = PyLong_FromLongLong(v);
	int rc;

	if (!o)
		return -1;
	rc = PyDict_SetItemString(d, key, o);
	Py_DECREF(o);
	return rc;
}

/* One debugfs `classes` row, as ZsMalloc.class_table builds it. */
static PyObject *class_row(zsmalloc *a, const size_class *c)
{
	PyObject *row = PyDict_New(), *n;
	int i;

	if (!row)
		return NULL;
	if (set_i64(row, "class", c->index) < 0 || set_i64(row, "size", c->size) < 0)
		goto fail;
	for (i = 0; i < a->nstat; i++) {
		n = PyLong_FromLongLong(list_length(c, a->stat_groups[i]));
		if (!n || PyDict_SetItem(row, PyTuple_GET_ITEM(a->stat_names, i), n) < 0) {
			Py_XDECREF(n);
			goto fail;
		}
		Py_DECREF(n);
	}
	if (set_i64(row, "obj_allocated", c->obj_allocated) < 0 ||
	    set_i64(row, "obj_used", c->obj_used) < 0 ||
	    set_i64(row, "pages_used", c->obj_allocated / c->objs * c->pages) < 0 ||
	    set_i64(row, "pages_per_zspage", c->pages) < 0 ||
	    set_i64(row, "objs_per_zspage", c->objs) < 0 ||
	    set_i64(row, "freeable", can_compact(c)) < 0)
		goto fail;
	return row;
fail:
	Py_DECREF(row);
	return NULL;
}

static PyObject *zs_stats(zsmalloc *a, PyObject *unused)
{
	PyObject *rows = PyList_New(0), *row, *out;
	int i;

	if (!rows)
		return NULL;
	for (i = 0; i < a->nclasses; i++) {
		if (!a->classes[i].obj_allocated)
			continue;
		row = class_row(a, &a->classes[i]);
		if (!row || PyList_Append(rows, row) < 0) {
			Py_XDECREF(row);
			Py_DECREF(rows);
			return NULL;
		}
		Py_DECREF(row);
	}
	out = Py_BuildValue("{s:L,s:L,s:N}", "huge_class_size", (long long)a->huge_class_size,
			    "pages_compacted", (long long)a->pages_compacted, "classes", rows);
	return out;
}

/* zs_lookup_class_index's last step: _classes[idx].index, for zram. */
static PyObject *zs_merged_class_index(zsmalloc *a, PyObject *arg)
{
	long idx = PyLong_AsLong(arg);

	if (idx == -1 && PyErr_Occurred())
		return NULL;
	if (idx < 0)
		idx += ZS_CLASSES;
	if (idx < 0 || idx >= ZS_CLASSES) {
		PyErr_SetString(PyExc_IndexError, "class index out of range");
		return NULL;
	}
	return PyLong_FromLong(a->merged[idx]);
}

/* -- check() -------------------------------------------------------------------------- */

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			PyErr_Format(PyExc_AssertionError, __VA_ARGS__);       \
			return -1;                                             \
		}                                                              \
	} while (0)

/* A listed zspage: its free chain and its objects cover each slot once, and every
 * object's handle points back at it.  mark has objs bytes of scratch. */
static int check_zspage(zsmalloc *a, int cid, int32_t z, uint8_t *mark)
{
	size_class *c = &a->classes[cid];
	const uint32_t *s = slots_of(c, z);
	const zspage *p = &c->zs[z];
	int slot, nfree = 0, nused = 0;
	uint32_t h;

	memset(mark, 0, c->objs);
	for (slot = p->free_slot; slot != SLOT_END; slot = s[slot] >> 1) {
		CHECK(slot < c->objs && !mark[slot] && !(s[slot] & 1),
		      "class %d zspage %d: free chain broken at slot %d", c->index, z, slot);
		mark[slot] = 1;
		nfree++;
	}
	for (slot = 0; slot < c->objs; slot++) {
		if (!(s[slot] & 1)) {
			CHECK(mark[slot], "class %d zspage %d: slot %d lost", c->index, z, slot);
			continue;
		}
		h = s[slot] >> 1;
		CHECK(h < a->nh && a->hcls[h] == cid &&
			      a->hoff[h] == (uint32_t)z * c->objs + slot,
		      "class %d zspage %d: handle of slot %d points elsewhere", c->index, z, slot);
		nused++;
	}
	CHECK(nused == p->inuse && nfree == c->objs - p->inuse,
	      "class %d zspage %d: %d used, %d free, inuse %d", c->index, z, nused, nfree,
	      p->inuse);
	return 0;
}

static int check_class(zsmalloc *a, int cid, uint8_t *seen, uint8_t *mark, int64_t *pages)
{
	size_class *c = &a->classes[cid];
	int64_t listed = 0, used = 0, spare = 0;
	int32_t z, prev;
	int g;

	memset(seen, 0, c->nzs);
	for (g = 0; g <= a->full_group; g++) {
		CHECK((c->heads[g] != NIL) == !!(c->nonempty >> g & 1),
		      "class %d: group %d bit disagrees with its list", c->index, g);
		prev = NIL;
		for (z = c->heads[g]; z != NIL; prev = z, z = c->zs[z].next) {
			CHECK(z >= 0 && z < c->nzs && !seen[z],
			      "class %d: zspage %d on two lists", c->index, z);
			seen[z] = 1;
			CHECK(c->zs[z].prev == prev, "class %d: broken back link", c->index);
			CHECK(c->zs[z].fullness == g && g != 0 &&
				      c->fullness_of[c->zs[z].inuse] == g,
			      "class %d: zspage with %d in use in group %d", c->index,
			      c->zs[z].inuse, g);
			if (check_zspage(a, cid, z, mark) < 0)
				return -1;
			listed++;
			used += c->zs[z].inuse;
		}
	}
	for (z = c->spare; z != NIL; z = c->zs[z].next) {
		CHECK(z >= 0 && z < c->nzs && !seen[z] && c->zs[z].fullness == RECORD_FREE,
		      "class %d: spare record %d in use", c->index, z);
		seen[z] = 1;
		spare++;
	}
	CHECK(listed + spare == c->nzs, "class %d: %lld records lost", c->index,
	      (long long)(c->nzs - listed - spare));
	CHECK(c->obj_allocated == listed * c->objs, "class %d: obj_allocated %lld != %lld zspages",
	      c->index, (long long)c->obj_allocated, (long long)listed);
	CHECK(c->obj_used == used, "class %d: obj_used %lld != %lld", c->index,
	      (long long)c->obj_used, (long long)used);
	*pages += listed * c->pages;
	return 0;
}

static int check_handles(zsmalloc *a, int64_t used)
{
	uint32_t h, live = 0, spare = 0;

	for (h = 0; h < a->nh; h++)
		live += a->hcls[h] != HANDLE_FREE;
	CHECK(live == used, "%u live handles, %lld objects", live, (long long)used);
	for (h = a->hspare; h != HANDLE_END; h = a->hoff[h]) {
		CHECK(h < a->nh && a->hcls[h] == HANDLE_FREE && spare < a->nh - live,
		      "free handle chain broken at %u", h);
		spare++;
	}
	CHECK(live + spare == a->nh, "%u handles lost", a->nh - live - spare);
	return 0;
}

static int check_all(zsmalloc *a, uint8_t *seen, uint8_t *mark)
{
	int64_t pages = 0, used = 0;
	int i;

	for (i = 0; i < a->nclasses; i++) {
		if (check_class(a, i, seen, mark, &pages) < 0)
			return -1;
		used += a->classes[i].obj_used;
	}
	CHECK(pages == a->pages_allocated, "pages_allocated %lld != %lld pages in listed zspages",
	      (long long)a->pages_allocated, (long long)pages);
	CHECK(used == a->obj_used, "obj_used %lld != %lld", (long long)a->obj_used,
	      (long long)used);
	return check_handles(a, used);
}

static PyObject *zs_check(zsmalloc *a, PyObject *unused)
{
	size_t most = 1;
	uint8_t *seen, *mark;
	int i, rc;

	for (i = 0; i < a->nclasses; i++)
		if ((size_t)a->classes[i].nzs > most)
			most = a->classes[i].nzs;
	seen = PyMem_Malloc(most);
	mark = PyMem_Malloc(XB_PAGE_SIZE * 16);
	if (!seen || !mark) {
		PyMem_Free(seen);
		PyMem_Free(mark);
		return PyErr_NoMemory();
	}
	rc = check_all(a, seen, mark);
	PyMem_Free(seen);
	PyMem_Free(mark);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* -- construction, from the pure allocator ------------------------------------------ */

static int read_class(size_class *c, PyObject *cls)
{
	int64_t index, size, pages, objs, huge;
	PyObject *fullness;
	Py_ssize_t n;
	int i;

	if (xb_attr_i64(cls, "index", &index) < 0 || xb_attr_i64(cls, "size", &size) < 0 ||
	    xb_attr_i64(cls, "pages_per_zspage", &pages) < 0 ||
	    xb_attr_i64(cls, "objs_per_zspage", &objs) < 0 || xb_attr_i64(cls, "huge", &huge) < 0)
		return -1;
	if (objs < 1 || objs >= SLOT_END || pages < 1) {
		PyErr_Format(PyExc_ValueError, "zsmalloc twin: class %lld has %lld objects",
			     (long long)index, (long long)objs);
		return -1;
	}
	*c = (size_class){ .index = (int)index, .size = (int)size, .pages = (int)pages,
			   .objs = (int)objs, .huge = (int)huge, .spare = NIL };
	for (i = 0; i < ZS_MAX_GROUPS; i++)
		c->heads[i] = NIL;
	c->fullness_of = PyMem_Malloc(objs + 1);
	if (!c->fullness_of) {
		PyErr_NoMemory();
		return -1;
	}
	fullness = PyObject_GetAttrString(cls, "fullness_of");
	if (!fullness)
		return -1;
	n = PySequence_Size(fullness);
	for (i = 0; i <= objs && n == objs + 1; i++) {
		PyObject *g = PySequence_GetItem(fullness, i);
		long v = g ? PyLong_AsLong(g) : -1;

		Py_XDECREF(g);
		if (v < 0 || v >= ZS_MAX_GROUPS) {
			n = -1;
			break;
		}
		c->fullness_of[i] = (uint8_t)v;
	}
	Py_DECREF(fullness);
	if (n != objs + 1) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "zsmalloc twin: bad fullness_of table");
		return -1;
	}
	return 0;
}

/* _classes: the distinct ones (index == position) and every index's merged class;
 * distinct_of[index] is its distinct class, or -1 for a merged index. */
static int read_classes(zsmalloc *a, PyObject *classes, int *distinct_of)
{
	PyObject *cls = NULL;
	int64_t index;
	int i;

	if (PySequence_Size(classes) != ZS_CLASSES) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "zsmalloc twin: expected 255 classes");
		return -1;
	}
	a->classes = PyMem_Calloc(ZS_CLASSES, sizeof(*a->classes));
	if (!a->classes) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; i < ZS_CLASSES; i++) {
		cls = PySequence_GetItem(classes, i);
		if (!cls || xb_attr_i64(cls, "index", &index) < 0)
			goto fail;
		if (index < 0 || index >= ZS_CLASSES) {
			PyErr_Format(PyExc_ValueError, "zsmalloc twin: class %d merged into %lld",
				     i, (long long)index);
			goto fail;
		}
		a->merged[i] = (uint8_t)index;
		distinct_of[i] = -1;
		if (index == i) {
			distinct_of[i] = a->nclasses;
			if (read_class(&a->classes[a->nclasses++], cls) < 0)
				goto fail;
		}
		Py_DECREF(cls);
	}
	for (i = 0; i < ZS_CLASSES; i++) {
		if (distinct_of[a->merged[i]] < 0) {
			PyErr_Format(PyExc_ValueError, "zsmalloc twin: class %d merged into %d",
				     i, a->merged[i]);
			return -1;
		}
	}
	return 0;
fail:
	Py_XDECREF(cls);
	return -1;
}

/* _class_of: request size -> class (the handle already added), entry 0 unused. */
static int read_class_of(zsmalloc *a, PyObject *class_of, const int *distinct_of)
{
	PyObject *cls;
	int64_t index;
	int n;

	if (PySequence_Size(class_of) != XB_PAGE_SIZE + 1) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "zsmalloc twin: bad _class_of");
		return -1;
	}
	for (n = 1; n <= XB_PAGE_SIZE; n++) {
		cls = PySequence_GetItem(class_of, n);
		if (!cls)
			return -1;
		if (xb_attr_i64(cls, "index", &index) < 0) {
			Py_DECREF(cls);
			return -1;
		}
		Py_DECREF(cls);
		if (index < 0 || index >= ZS_CLASSES || distinct_of[index] < 0) {
			PyErr_Format(PyExc_ValueError, "zsmalloc twin: size %d in class %lld", n,
				     (long long)index);
			return -1;
		}
		a->class_of[n] = (uint8_t)distinct_of[index];
	}
	return 0;
}

/* The fullness groups stats() lists (_stat_groups) and their names (_group_names). */
static int read_stat_groups(zsmalloc *a, PyObject *groups, PyObject *names)
{
	Py_ssize_t n = PySequence_Size(groups), i;
	PyObject *g, *name;
	long v;

	if (n < 0 || n > ZS_MAX_GROUPS) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "zsmalloc twin: bad _stat_groups");
		return -1;
	}
	a->stat_names = PyTuple_New(n);
	if (!a->stat_names)
		return -1;
	for (i = 0; i < n; i++) {
		g = PySequence_GetItem(groups, i);
		v = g ? PyLong_AsLong(g) : -1;
		Py_XDECREF(g);
		if (v < 0 || v > a->full_group) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "zsmalloc twin: bad stat group");
			return -1;
		}
		a->stat_groups[i] = (int)v;
		name = PySequence_GetItem(names, v);
		if (!name)
			return -1;
		PyTuple_SET_ITEM(a->stat_names, i, name);
	}
	a->nstat = (int)n;
	return 0;
}

static int read_pure(zsmalloc *a, PyObject *pure)
{
	PyObject *classes = NULL, *class_of = NULL, *groups = NULL, *names = NULL;
	int distinct_of[ZS_CLASSES];
	int64_t full, legacy, pages;
	int rc = -1;

	if (xb_attr_i64(pure, "_full_group", &full) < 0 ||
	    xb_attr_i64(pure, "_insert_by_inuse", &legacy) < 0 ||
	    xb_attr_i64(pure, "handle_size", &a->handle_size) < 0 ||
	    xb_attr_i64(pure, "huge_class_size", &a->huge_class_size) < 0 ||
	    xb_attr_i64(pure, "pages_allocated", &pages) < 0)
		return -1;
	if (full < 1 || full >= ZS_MAX_GROUPS || pages) {
		PyErr_SetString(PyExc_ValueError, "zsmalloc twin: needs a fresh zsmalloc");
		return -1;
	}
	a->full_group = (int)full;
	a->search_mask = (1u << full) - 1;
	a->legacy = legacy != 0;
	classes = PyObject_GetAttrString(pure, "_classes");
	class_of = PyObject_GetAttrString(pure, "_class_of");
	groups = PyObject_GetAttrString(pure, "_stat_groups");
	names = PyObject_GetAttrString(pure, "_group_names");
	if (classes && class_of && groups && names &&
	    read_classes(a, classes, distinct_of) == 0 &&
	    read_class_of(a, class_of, distinct_of) == 0 &&
	    read_stat_groups(a, groups, names) == 0)
		rc = 0;
	Py_XDECREF(classes);
	Py_XDECREF(class_of);
	Py_XDECREF(groups);
	Py_XDECREF(names);
	return rc;
}

static void zs_dealloc(zsmalloc *a)
{
	int i;

	if (a->classes) {
		for (i = 0; i < ZS_CLASSES; i++) {
			PyMem_Free(a->classes[i].fullness_of);
			PyMem_Free(a->classes[i].zs);
			PyMem_Free(a->classes[i].slots);
		}
		PyMem_Free(a->classes);
	}
	Py_XDECREF(a->stat_names);
	PyMem_Free(a->hoff);
	PyMem_Free(a->hcls);
	Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *zs_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *pure;
	zsmalloc *a;

	if (!PyArg_ParseTuple(args, "O:Zsmalloc", &pure))
		return NULL;
	a = (zsmalloc *)type->tp_alloc(type, 0);
	if (!a)
		return NULL;
	a->base.ops = &zs_ops;
	a->hspare = HANDLE_END;
	if (read_pure(a, pure) < 0) {
		Py_DECREF(a);
		return NULL;
	}
	return (PyObject *)a;
}

static PyMethodDef zs_methods[] = {
	{"stats", (PyCFunction)zs_stats, METH_NOARGS, NULL},
	{"check", (PyCFunction)zs_check, METH_NOARGS, NULL},
	{"merged_class_index", (PyCFunction)zs_merged_class_index, METH_O,
	 "merged_class_index(idx) -> the index of the class that serves class idx"},
	{NULL},
};

PyTypeObject XbZsmalloc_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xcfbench.sim._native.Zsmalloc",
	.tp_basicsize = sizeof(zsmalloc),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "zsmalloc's C twin (6.12 or 6.2, as the pure allocator is): Zsmalloc(pure).",
	.tp_new = zs_new,
	.tp_dealloc = (destructor)zs_dealloc,
	.tp_methods = zs_methods,
};
