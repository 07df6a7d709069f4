/*
 * xcfbench's native allocators: the contract every one of them keeps.
 *
 * Each pure-Python allocator in xcfbench/sim/allocators/ is the readable reference; its
 * C twin here must give the same page counts, stats() and metadata_bytes() on every call
 * sequence (tests/test_native.py compares them after every operation).  The twins keep
 * no bytes (store=False only): --verify runs the pure path.
 *
 * An object starts with struct xb_alloc.  The generic methods (malloc, free, pool_pages,
 * pages_held, metadata_bytes, compact) live on the base type xcfbench.sim._native.Alloc
 * and call through ops, so that the replay loop in replay.c calls the same functions
 * without going through Python.  A twin adds stats() and check() and its constructor,
 * which takes the pure allocator freshly made with the same options: it has already
 * checked them, and the twin reads the normalized values (header sizes, class tables)
 * from it, so the two cannot disagree on what an option means.
 */
#ifndef XCFBENCH_XB_H
#define XCFBENCH_XB_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define XB_PAGE_SIZE 4096
#define XB_PAGE_SHIFT 12

#define XB_REFUSED (-1) /* malloc: the allocator said no (size 0, too big, no memory) */
#define XB_ERROR (-2)   /* malloc: a Python exception is set (MemoryError of our own) */

typedef struct xb_alloc xb_alloc;

typedef struct {
	/* A handle >= 0, XB_REFUSED, or XB_ERROR with an exception set. */
	int64_t (*malloc)(xb_alloc *a, uint64_t size);
	/* 0, or -1 with an exception set (a handle that is not live). */
	int (*free)(xb_alloc *a, int64_t handle);
	int64_t (*pool_pages)(xb_alloc *a);
	int64_t (*pages_held)(xb_alloc *a);    /* NULL: same as pool_pages */
	int64_t (*metadata_bytes)(xb_alloc *a); /* NULL: 0 */
	/* Pages freed, or -1 with an exception set; NULL: no compaction. */
	int64_t (*compact)(xb_alloc *a);
} xb_ops;

struct xb_alloc {
	PyObject_HEAD
	const xb_ops *ops;
};

/* The base type; every twin sets tp_base to it (module.c does, before PyType_Ready). */
extern PyTypeObject XbAlloc_Type;

/* Twins, one per file. */
extern PyTypeObject XbIdeal_Type;
extern PyTypeObject XbZbud_Type;
extern PyTypeObject XbZ3fold_Type;
extern PyTypeObject XbXvmalloc_Type;
extern PyTypeObject XbZblock_Type;
extern PyTypeObject XbZsmalloc_Type;
extern PyTypeObject XbXcfmalloc_Type;

/* Helpers for twins' constructors: an int attribute of the pure allocator. */
int xb_attr_i64(PyObject *obj, const char *name, int64_t *out);
/* A growable array of fixed-size items, zero-filled on growth; -1 + MemoryError. */
int xb_grow(void **items, size_t *cap, size_t need, size_t item_size);
/* The same without the zero fill, for arrays whose items are set before they are read:
 * capacity never touched stays out of RSS (large blocks are mmap'd). */
int xb_grow_raw(void **items, size_t *cap, size_t need, size_t item_size);

#endif
