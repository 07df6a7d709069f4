/*
 * The seed's experiment in one call: a program writes n pages in order inside a memory
 * cgroup, reclaim pushes the oldest out in batches, and zcache 3.1 stores each through
 * the allocator's twin.
 *
 * This is engine.run's write loop, memcg.py's touch() and zcache.py's put() for the
 * case where nothing else happens (no churn, no page trace written, no bytes kept): the
 * engine takes it when it can and the Python loop otherwise, and tests/test_native.py
 * holds the two to the same JSON.  Without re-references the LRU is a FIFO, so the
 * resident pages are always one range of indexes and cost no memory; each stored page
 * costs its slot's handle and length (12 bytes), nothing that grows with the bytes.
 */
#include "xb.h"

#define HIST_SHIFT 5        /* engine.HIST_SHIFT */
#define HIST_BUCKETS ((XB_PAGE_SIZE * 2 >> HIST_SHIFT) + 1)
#define ZV_CHUNK_SHIFT 6    /* zcache.ZV_CHUNK_SHIFT */
#define ZV_BUCKETS (XB_PAGE_SIZE >> ZV_CHUNK_SHIFT)

enum reject { POLICY, COMPRESS_POOR, MEAN_COMPRESS_POOR, ALLOC_FAIL, NREJECT };

struct zcache {
	int64_t policy_pages, max_zsize, max_mean_zsize, hdr_size;
	int64_t curr, succ_puts, failed_puts, compr_data_size;
	int64_t rejects[NREJECT];
	int64_t curr_dist[ZV_BUCKETS], cumul_dist[ZV_BUCKETS];
};

/* zcache.put() for a new swap offset: 1 stored, 0 refused, -1 with an exception. */
static int zcache_put(struct zcache *z, xb_alloc *a, int64_t clen, int64_t *handle)
{
	const xb_ops *ops = a->ops;
	int reason;

	if (z->curr > z->policy_pages) {
		reason = POLICY;
	} else if (clen > z->max_zsize) {
		reason = COMPRESS_POOR;
	} else if (clen > z->max_mean_zsize && z->curr > 0 &&
		   ops->pool_pages(a) * XB_PAGE_SIZE / z->curr > z->max_mean_zsize) {
		reason = MEAN_COMPRESS_POOR;
	} else {
		int64_t size = clen + z->hdr_size, h = ops->malloc(a, (uint64_t)size), chunk;

		if (h == XB_ERROR)
			return -1;
		if (h != XB_REFUSED) {
			chunk = (size + (1 << ZV_CHUNK_SHIFT) - 1) >> ZV_CHUNK_SHIFT;
			*handle = h;
			z->curr++;
			z->compr_data_size += clen;
			z->curr_dist[chunk]++;
			z->cumul_dist[chunk]++;
			z->succ_puts++;
			return 1;
		}
		reason = ALLOC_FAIL;
	}
	z->rejects[reason]++;
	z->failed_puts++;
	return 0;
}

static PyObject *list_of(const int64_t *v, Py_ssize_t n)
{
	PyObject *out = PyList_New(n);
	Py_ssize_t i;

	for (i = 0; out && i < n; i++) {
		PyObject *x = PyLong_FromLongLong(v[i]);

		if (!x) {
			Py_CLEAR(out);
			break;
		}
		PyList_SET_ITEM(out, i, x);
	}
	return out;
}

/*
 * zcache_write(alloc, clens, n_pages, capacity, batch, zcache_knobs, compact_every,
 *              sample_every, progress) -> dict
 *
 * clens: the compressed length of workload page i is clens[i % len(clens)] (a buffer of
 * int32).  zcache_knobs: (policy_pages, zv_max_zsize, zv_max_mean_zsize, hdr_size).
 * progress(done, total) is called at every hundredth of the pages, or None.
 */
PyObject *xb_zcache_write(PyObject *module, PyObject *args)
{
	PyObject *alloc_obj, *progress, *samples = NULL, *out = NULL;
	Py_buffer clens;
	long long n_pages, capacity, batch, compact_every, sample_every;
	struct zcache z = {0};
	int64_t hist[HIST_BUCKETS] = {0};
	int64_t oldest = 0, next_slot = 0, stores = 0, evictions = 0, reclaims = 0;
	int64_t peak_pool, pages_compacted = 0, i, step, period;
	const int32_t *clen_of;
	xb_alloc *a;

	if (!PyArg_ParseTuple(args, "O!y*LLL(LLLL)LLO:zcache_write", &XbAlloc_Type, &alloc_obj,
			      &clens, &n_pages, &capacity, &batch, &z.policy_pages, &z.max_zsize,
			      &z.max_mean_zsize, &z.hdr_size, &compact_every, &sample_every,
			      &progress))
		return NULL;
	a = (xb_alloc *)alloc_obj;
	period = clens.len / (Py_ssize_t)sizeof(int32_t);
	clen_of = clens.buf;
	if (period < 1 || batch < 1 || capacity < batch || sample_every < 1 ||
	    (compact_every && !a->ops->compact)) {
		PyErr_SetString(PyExc_ValueError, "zcache_write: bad arguments");
		goto done;
	}
	samples = PyList_New(0);
	if (!samples)
		goto done;
	step = n_pages / 100 > 1 ? n_pages / 100 : 1;
	peak_pool = a->ops->pool_pages(a);
	for (i = 0; i < n_pages; i++) {
		/* memcg touch(): charging page i past the capacity reclaims a batch first */
		if (i - oldest >= capacity) {
			int64_t victim, end = oldest + (batch < i - oldest ? batch : i - oldest);

			reclaims++;
			evictions += end - oldest;
			for (victim = oldest; victim < end; victim++) {
				int64_t clen = clen_of[victim % period], handle, p;
				int rc;

				if (clen < 0) {
					PyErr_SetString(PyExc_ValueError, "the 3.1 lzo1x call never fails");
					goto done;
				}
				hist[(clen >> HIST_SHIFT) < HIST_BUCKETS - 1 ? clen >> HIST_SHIFT
									     : HIST_BUCKETS - 1]++;
				stores++;
				next_slot++;
				rc = zcache_put(&z, a, clen, &handle);
				if (rc < 0)
					goto done;
				p = a->ops->pool_pages(a);
				if (p > peak_pool)
					peak_pool = p;
				if (compact_every && stores % compact_every == 0) {
					p = a->ops->compact(a);
					if (p < 0)
						goto done;
					pages_compacted += p;
				}
			}
			oldest = end;
		}
		if ((i + 1) % sample_every == 0 || i + 1 == n_pages) {
			int64_t live = z.compr_data_size + z.hdr_size * z.curr;
			PyObject *row = Py_BuildValue("[LLLL]", (long long)(i + 1), (long long)z.curr,
						      (long long)a->ops->pool_pages(a),
						      (long long)((live + XB_PAGE_SIZE - 1) / XB_PAGE_SIZE));

			if (!row || PyList_Append(samples, row) < 0) {
				Py_XDECREF(row);
				goto done;
			}
			Py_DECREF(row);
		}
		if (progress != Py_None && ((i + 1) % step == 0 || i + 1 == n_pages)) {
			PyObject *r = PyObject_CallFunction(progress, "LL", (long long)(i + 1), n_pages);

			if (!r)
				goto done;
			Py_DECREF(r);
		}
	}
	out = Py_BuildValue(
		"{s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:N,s:N,s:N,s:N,s:O}",
		"resident_pages", (long long)(n_pages - oldest), "evictions", (long long)evictions,
		"reclaims", (long long)reclaims, "stores", (long long)stores,
		"swap_slots_used", (long long)next_slot, "peak_pool", (long long)peak_pool,
		"pages_compacted", (long long)pages_compacted, "curr", (long long)z.curr,
		"succ_puts", (long long)z.succ_puts, "failed_puts", (long long)z.failed_puts,
		"compr_data_size", (long long)z.compr_data_size,
		"rejects", list_of(z.rejects, NREJECT),
		"zv_curr_dist_counts", list_of(z.curr_dist, ZV_BUCKETS),
		"zv_cumul_dist_counts", list_of(z.cumul_dist, ZV_BUCKETS),
		"hist", list_of(hist, HIST_BUCKETS), "samples", samples);
done:
	Py_XDECREF(samples);
	PyBuffer_Release(&clens);
	return out;
}
