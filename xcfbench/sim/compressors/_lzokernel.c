/*
 * _lzokernel.c - the Linux kernel's LZO1X-1 and LZO-RLE compressors, an
 * LZO1X decoder, and the length of the kernel's software 842 output, for
 * xcfbench's size models (xcfbench.sim.compressors._lzokernel).
 *
 * Models lib/lzo/lzo1x_compress.c as in Linux 3.7 up to 6.12.y: the LZO
 * 2.06 based encoder with a 2^13-entry dictionary cleared for every chunk,
 * and the 64-bit CTZ match extension built on x86-64 and arm64.  It covers
 * lzo-rle (5.1+) with its M4 length clamp, and the output-bounded "_safe"
 * variants that zswap reaches through the crypto API since the 6.15 fix
 * (backported to 6.12.y).  Written from a description of the behaviour
 * (xcfbench spec modern-compressors.md, sections 2, 3 and 7), not copied
 * from the kernel.
 *
 * The decoder is an independent bounds-checked LZO1X decoder that also
 * reads lzo-rle (bitstream version 1) streams.  There is no 842 encoder
 * or decoder here: only the length sw842_compress() would produce.
 *
 * Python API:
 *   compress(data, rle, cap=None) -> bytes | None
 *   size(data, rle, cap=None)     -> int (-1 where compress gives None)
 *   decompress(data, out_len)     -> bytes (ValueError on bad input)
 *   sw842_size(data)              -> int (lib/842 sw842_compress length)
 *
 * cap models the _safe variant's destination size: the kernel gives up
 * (LZO_E_OUTPUT_OVERRUN) as soon as one of its room checks fails, and
 * some of those checks ask for more room than is finally used, so a page
 * can fail with a cap it would in the end have fitted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Bitstream constants (lzodefs.h). */
#define M1_MAX_OFFSET	0x0400
#define M2_MAX_OFFSET	0x0800
#define M3_MAX_OFFSET	0x4000
#define M2_MAX_LEN	8
#define M3_MAX_LEN	33
#define M4_MAX_LEN	9
#define M3_MARKER	32
#define M4_MARKER	16
#define M4_MAX_OFFSET_V0 0xbfff
#define M4_MAX_OFFSET_V1 0xbffe
#define MIN_ZERO_RUN	4
#define MAX_ZERO_RUN	(2047 + MIN_ZERO_RUN)
#define LZO_RLE_VERSION	1

#define D_BITS		13
#define D_SIZE		(1u << D_BITS)
#define D_MASK		(D_SIZE - 1)

/*
 * Output bound: lzo1x_worst_compress() of include/linux/lzo.h, plus 2 for
 * the lzo-rle header and 64 bytes of slack.
 */
#define WORST(n)	((n) + (n) / 16 + 64 + 3 + 2 + 64)

/* Pages normally fit the on-stack buffers; larger inputs use the heap. */
#define STACK_IN_MAX	8192

typedef uint16_t dict_t;

static inline uint32_t load_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/*
 * Encoder state shared by the chunk loop and the tail.  lim is NULL for
 * the unbounded call (zram: 8 KiB destination, never reached); otherwise
 * the end of the caller's destination.
 */
struct enc {
	uint8_t *op;
	uint8_t *lim;
	uint8_t *base;		/* first byte of the output */
	int state_offset;	/* where 1-3 trailing literals are OR-ed in */
	int rle;
};

/* The room checks of the _safe variant; true when it would bail out. */
#define NO_ROOM(e, n) \
	((e)->lim && (size_t)((e)->lim - (e)->op) < (size_t)(n))

/* Count of 255-steps in an extended length, written as zero bytes. */
static int put_ext_len(struct enc *e, size_t n)
{
	while (n > 255) {
		if (NO_ROOM(e, 1))
			return -1;
		n -= 255;
		*e->op++ = 0;
	}
	if (NO_ROOM(e, 1))
		return -1;
	*e->op++ = (uint8_t)n;
	return 0;
}

/* OR a short literal count into the previous instruction. */
static inline void mark_state(struct enc *e, size_t t)
{
	uint8_t *p = e->op + e->state_offset;

	if (p >= e->base)	/* never false for real streams */
		*p |= (uint8_t)t;
}

/*
 * Emit t pending literals starting at ii, ahead of a match or a run.
 * The room checks mirror the kernel's, which over-ask for short runs
 * because its copies are done in fixed 4- and 16-byte moves.
 */
static int put_literals(struct enc *e, const uint8_t *ii, size_t t)
{
	if (t == 0)
		return 0;
	if (t <= 3) {
		mark_state(e, t);
		if (NO_ROOM(e, 4))
			return -1;
	} else if (t <= 16) {
		if (NO_ROOM(e, 17))
			return -1;
		*e->op++ = (uint8_t)(t - 3);
	} else {
		if (t <= 18) {
			if (NO_ROOM(e, 1))
				return -1;
			*e->op++ = (uint8_t)(t - 3);
		} else {
			if (NO_ROOM(e, 1))
				return -1;
			*e->op++ = 0;
			if (put_ext_len(e, t - 18))
				return -1;
		}
		if (NO_ROOM(e, t))
			return -1;
	}
	memcpy(e->op, ii, t);
	e->op += t;
	return 0;
}

/*
 * One chunk (at most 48 KiB) with a fresh dictionary.  *tp carries in the
 * literals still pending from the previous chunk and carries out those
 * left at the end of this one.  Returns 0, or -1 on a failed room check.
 */
static int compress_chunk(struct enc *e, const uint8_t *in, size_t in_len,
			  size_t *tp, dict_t *dict)
{
	const uint8_t *const in_end = in + in_len;
	const uint8_t *const ip_end = in + in_len - 20;
	const uint8_t *ip = in, *ii = in;
	size_t ti = *tp;

	ip += ti < 4 ? 4 - ti : 0;

	for (;;) {
		const uint8_t *m_pos = NULL;
		size_t t, m_len, m_off;
		uint32_t dv, run = 0;

		/* Unmatched: skip ahead, faster the longer the literal run. */
		ip += 1 + ((size_t)(ip - ii) >> 5);
next:
		if (ip >= ip_end)
			break;
		dv = load_le32(ip);

		if (dv == 0 && e->rle) {
			/*
			 * Zero run.  Only the length matters, so a plain scan
			 * gives the same answer as the kernel's word scan.
			 */
			const uint8_t *ir = ip + 4;
			const uint8_t *limit = ip_end;

			if ((size_t)(ip_end - ip) > MAX_ZERO_RUN + 1)
				limit = ip + MAX_ZERO_RUN + 1;
			while (ir + 8 <= limit && load_le64(ir) == 0)
				ir += 8;
			while (ir < limit && *ir == 0)
				ir++;
			run = (uint32_t)(ir - ip);
			if (run > MAX_ZERO_RUN)
				run = MAX_ZERO_RUN;
		} else {
			/* Zero words never enter the dictionary under rle. */
			uint32_t h = ((dv * 0x1824429du) >> (32 - D_BITS)) & D_MASK;

			m_pos = in + dict[h];
			dict[h] = (dict_t)(ip - in);
			if (dv != load_le32(m_pos))
				continue;
		}

		/* Literals from the previous chunk join the first run. */
		ii -= ti;
		ti = 0;
		t = (size_t)(ip - ii);
		if (put_literals(e, ii, t))
			return -1;

		if (run) {
			uint32_t l = run - MIN_ZERO_RUN;

			ip += run;
			if (NO_ROOM(e, 4))
				return -1;
			e->op[0] = (uint8_t)(0x18 | (l & 7));
			e->op[1] = 0xfc;	/* low 2 bits take the literal state */
			e->op[2] = 0xff;
			e->op[3] = (uint8_t)(l >> 3);
			e->op += 4;
			e->state_offset = -3;
			ii = ip;
			run = 0;	/* goto next skips the initialiser */
			goto next;
		}

		/*
		 * Match length, 8 bytes at a time as the kernel's CTZ64 path:
		 * a full 8-byte step that reaches ip_end ends the match there,
		 * without looking at how far it really goes.  All loads stay
		 * below in_end - 4.
		 */
		m_len = 4;
		{
			uint64_t v = load_le64(ip + m_len) ^ load_le64(m_pos + m_len);

			if (v == 0) {
				do {
					m_len += 8;
					v = load_le64(ip + m_len) ^
					    load_le64(m_pos + m_len);
					if (ip + m_len >= ip_end)
						goto m_len_done;
				} while (v == 0);
			}
			m_len += (size_t)__builtin_ctzll(v) / 8;
		}
m_len_done:
		m_off = (size_t)(ip - m_pos);
		ip += m_len;

		if (m_len <= M2_MAX_LEN && m_off <= M2_MAX_OFFSET) {
			m_off -= 1;
			if (NO_ROOM(e, 2))
				return -1;
			*e->op++ = (uint8_t)(((m_len - 1) << 5) | ((m_off & 7) << 2));
			*e->op++ = (uint8_t)(m_off >> 3);
		} else if (m_off <= M3_MAX_OFFSET) {
			m_off -= 1;
			if (NO_ROOM(e, 1))
				return -1;
			if (m_len <= M3_MAX_LEN) {
				*e->op++ = (uint8_t)(M3_MARKER | (m_len - 2));
			} else {
				*e->op++ = M3_MARKER;
				if (put_ext_len(e, m_len - M3_MAX_LEN))
					return -1;
			}
			if (NO_ROOM(e, 2))
				return -1;
			*e->op++ = (uint8_t)(m_off << 2);
			*e->op++ = (uint8_t)(m_off >> 6);
		} else {
			m_off -= 0x4000;
			if (NO_ROOM(e, 1))
				return -1;
			if (m_len <= M4_MAX_LEN) {
				*e->op++ = (uint8_t)(M4_MARKER | ((m_off >> 11) & 8) |
						     (m_len - 2));
			} else {
				/*
				 * Under lzo-rle these lengths at this distance
				 * would read back as a zero run: shorten.
				 */
				if (e->rle && (m_off & 0x403f) == 0x403f &&
				    m_len >= 261 && m_len <= 264) {
					ip -= m_len - 260;
					m_len = 260;
				}
				*e->op++ = (uint8_t)(M4_MARKER | ((m_off >> 11) & 8));
				if (put_ext_len(e, m_len - M4_MAX_LEN))
					return -1;
			}
			if (NO_ROOM(e, 2))
				return -1;
			*e->op++ = (uint8_t)(m_off << 2);
			*e->op++ = (uint8_t)(m_off >> 6);
		}
		e->state_offset = -2;
		ii = ip;
		goto next;
	}
	*tp = (size_t)(in_end - (ii - ti));
	return 0;
}

/*
 * lzo1x_1_compress / lzorle1x_1_compress (and their _safe forms when lim
 * is set).  out must hold WORST(in_len) bytes.  Returns the length, or -1
 * when the bounded variant would fail.
 */
static Py_ssize_t lzo_encode(const uint8_t *in, size_t in_len, uint8_t *out,
			     size_t cap, int rle, dict_t *dict)
{
	struct enc e = {
		.op = out, .lim = cap ? out + cap : NULL, .base = out,
		.state_offset = -2, .rle = rle,
	};
	const uint8_t *ip = in;
	const uint8_t *data_start;
	size_t l = in_len, t = 0;
	size_t chunk_max;

	/* A v0 stream never starts with 17 except for empty input. */
	if (rle) {
		if (NO_ROOM(&e, 2))
			return -1;
		*e.op++ = 17;
		*e.op++ = LZO_RLE_VERSION;
		chunk_max = (size_t)M4_MAX_OFFSET_V1 + 1;
	} else {
		chunk_max = (size_t)M4_MAX_OFFSET_V0 + 1;
	}
	data_start = e.op;

	while (l > 20) {
		size_t ll = l < chunk_max ? l : chunk_max;

		/* Chunks never share history: pages compress independently. */
		memset(dict, 0, D_SIZE * sizeof(dict_t));
		if (compress_chunk(&e, ip, ll, &t, dict))
			return -1;
		ip += ll;
		l -= ll;
	}
	t += l;

	if (t > 0) {
		const uint8_t *ii = in + in_len - t;

		if (e.op == data_start && t <= 238) {
			if (NO_ROOM(&e, 1))
				return -1;
			*e.op++ = (uint8_t)(17 + t);
		} else if (t <= 3) {
			mark_state(&e, t);
		} else if (t <= 18) {
			if (NO_ROOM(&e, 1))
				return -1;
			*e.op++ = (uint8_t)(t - 3);
		} else {
			if (NO_ROOM(&e, 1))
				return -1;
			*e.op++ = 0;
			if (put_ext_len(&e, t - 18))
				return -1;
		}
		if (NO_ROOM(&e, t))
			return -1;
		memcpy(e.op, ii, t);
		e.op += t;
	}

	/* End of stream: an M4 "match" at distance 0x4000. */
	if (NO_ROOM(&e, 3))
		return -1;
	*e.op++ = M4_MARKER | 1;
	*e.op++ = 0;
	*e.op++ = 0;
	return e.op - out;
}

/*
 * Safe decoder.  Every read of input and every write or back-reference
 * of output is checked first; any violation is an error (-1).  Returns
 * the number of bytes produced.
 */
#define NEED_IN(n)	do { if ((size_t)(ip_end - ip) < (size_t)(n)) return -1; } while (0)
#define NEED_OUT(n)	do { if ((size_t)(op_end - op) < (size_t)(n)) return -1; } while (0)

/* Extended length: zero bytes add 255 each, then a non-zero byte. */
static int get_ext_len(const uint8_t **ipp, const uint8_t *ip_end,
		       size_t base, size_t *t)
{
	const uint8_t *ip = *ipp;
	size_t zeros = 0;

	NEED_IN(1);
	while (*ip == 0) {
		ip++;
		zeros++;
		NEED_IN(1);
		/* Far longer than any output we could hold: reject. */
		if (zeros > ((size_t)1 << 24))
			return -1;
	}
	*t = base + zeros * 255 + *ip++;
	*ipp = ip;
	return 0;
}

static Py_ssize_t lzo_decode(const uint8_t *in, size_t in_len,
			     uint8_t *out, size_t out_len)
{
	const uint8_t *ip = in;
	const uint8_t *const ip_end = in + in_len;
	uint8_t *op = out;
	uint8_t *const op_end = out + out_len;
	size_t t, next, dist;
	int version = 0;
	int state = 0;		/* literals after the last instruction; 4 = long run */

	if (in_len < 3)
		return -1;
	if (in_len >= 5 && ip[0] == 17) {
		version = ip[1];
		ip += 2;
	}

	NEED_IN(1);
	if (*ip > 17) {
		/* First-byte literal run of *ip - 17 bytes. */
		t = *ip++ - 17;
		if (t < 4) {
			next = t;
			goto copy_trailing;
		}
		goto copy_run;
	}

	for (;;) {
		NEED_IN(1);
		t = *ip++;
		if (t < 16) {
			if (state == 0) {
				/* Literal run of 4 or more. */
				if (t == 0 && get_ext_len(&ip, ip_end, 15, &t))
					return -1;
				t += 3;
copy_run:
				NEED_IN(t);
				NEED_OUT(t);
				memcpy(op, ip, t);
				op += t;
				ip += t;
				state = 4;
				continue;
			}
			NEED_IN(1);
			next = t & 3;
			if (state != 4) {
				/* M1 after 1-3 literals: 2 bytes, distance <= 1 KiB. */
				dist = 1 + (t >> 2) + ((size_t)*ip++ << 2);
				t = 2;
			} else {
				/* M1 right after a long run: 3 bytes, 2-3 KiB back. */
				dist = 1 + M2_MAX_OFFSET + (t >> 2) +
				       ((size_t)*ip++ << 2);
				t = 3;
			}
		} else if (t >= 64) {
			/* M2: 3-8 bytes within 2 KiB. */
			NEED_IN(1);
			next = t & 3;
			dist = 1 + ((t >> 2) & 7) + ((size_t)*ip++ << 3);
			t = (t >> 5) + 1;
		} else if (t >= 32) {
			/* M3: within 16 KiB. */
			t = (t & 31) + 2;
			if (t == 2 && get_ext_len(&ip, ip_end, 31 + 2, &t))
				return -1;
			NEED_IN(2);
			next = (size_t)ip[0] | ((size_t)ip[1] << 8);
			ip += 2;
			dist = 1 + (next >> 2);
			next &= 3;
		} else {
			/* 16..31: M4 (16-48 KiB), end marker, or an rle zero run. */
			NEED_IN(2);
			next = (size_t)ip[0] | ((size_t)ip[1] << 8);
			if (version && (t & 0xf8) == 0x18 &&
			    (next & 0xfffc) == 0xfffc) {
				NEED_IN(3);
				t = ((t & 7) | ((size_t)ip[2] << 3)) + MIN_ZERO_RUN;
				NEED_OUT(t);
				memset(op, 0, t);
				op += t;
				next &= 3;
				ip += 3;
				goto copy_trailing;
			}
			dist = (t & 8) << 11;
			t = (t & 7) + 2;
			if (t == 2) {
				if (get_ext_len(&ip, ip_end, 7 + 2, &t))
					return -1;
				NEED_IN(2);
				next = (size_t)ip[0] | ((size_t)ip[1] << 8);
			}
			ip += 2;
			dist += next >> 2;
			next &= 3;
			if (dist == 0) {
				/* End marker: M4 of length 3, all input used. */
				if (t != 3 || ip != ip_end)
					return -1;
				return op - out;
			}
			dist += 0x4000;
		}

		/* Back-reference must stay inside what was produced. */
		if (dist > (size_t)(op - out))
			return -1;
		NEED_OUT(t);
		{
			/* Forward byte copy: overlaps repeat a pattern. */
			const uint8_t *m_pos = op - dist;
			size_t i;

			for (i = 0; i < t; i++)
				op[i] = m_pos[i];
			op += t;
		}
copy_trailing:
		state = (int)next;
		NEED_IN(next);
		NEED_OUT(next);
		memcpy(op, ip, next);
		op += next;
		ip += next;
	}
}

/*
 * ---- sw842 (lib/842/842_compress.c), size only ----
 *
 * The page is taken 8 bytes at a time.  Each group becomes a REPEAT of
 * the previous group, a ZEROS template, or the first template of the
 * kernel's list (ordered by cost) whose index operands can all be found
 * in the rolling tables of recent 2-, 4- and 8-byte values; the last
 * template (8 literal bytes) always fits.  Only the choice matters for
 * the size, so we track which values are present, not their indices.
 */
#define SW_OP_BITS	5
#define SW_REPEAT_BITS	6
#define SW_REPEAT_MAX	63	/* repeat count is stored minus one */
#define SW_SHORT_BITS	3
#define SW_CRC_BITS	32

/* Ring sizes follow the index widths I2 8, I4 9, I8 8 bits. */
#define SW_N2		256
#define SW_N4		512
#define SW_N8		256

/*
 * Operand kinds in a template: D = literal, I = table index.  Widths are
 * 2, 4 or 8 bytes; 0 ends the template.
 */
enum { SW_D = 0, SW_I = 1 };
struct sw_op { uint8_t kind, width; };

/* Templates in the kernel's order: cheapest first. */
static const struct sw_op sw_templates[26][4] = {
	{{SW_I, 8}},
	{{SW_I, 4}, {SW_I, 4}},
	{{SW_I, 4}, {SW_I, 2}, {SW_I, 2}},
	{{SW_I, 2}, {SW_I, 2}, {SW_I, 4}},
	{{SW_I, 2}, {SW_I, 2}, {SW_I, 2}, {SW_I, 2}},
	{{SW_I, 4}, {SW_I, 2}, {SW_D, 2}},
	{{SW_I, 4}, {SW_D, 2}, {SW_I, 2}},
	{{SW_I, 2}, {SW_D, 2}, {SW_I, 4}},
	{{SW_D, 2}, {SW_I, 2}, {SW_I, 4}},
	{{SW_I, 2}, {SW_I, 2}, {SW_I, 2}, {SW_D, 2}},
	{{SW_I, 2}, {SW_I, 2}, {SW_D, 2}, {SW_I, 2}},
	{{SW_I, 2}, {SW_D, 2}, {SW_I, 2}, {SW_I, 2}},
	{{SW_D, 2}, {SW_I, 2}, {SW_I, 2}, {SW_I, 2}},
	{{SW_I, 4}, {SW_D, 4}},
	{{SW_D, 4}, {SW_I, 4}},
	{{SW_I, 2}, {SW_I, 2}, {SW_D, 4}},
	{{SW_I, 2}, {SW_D, 2}, {SW_I, 2}, {SW_D, 2}},
	{{SW_I, 2}, {SW_D, 4}, {SW_I, 2}},
	{{SW_D, 2}, {SW_I, 2}, {SW_I, 2}, {SW_D, 2}},
	{{SW_D, 2}, {SW_I, 2}, {SW_D, 2}, {SW_I, 2}},
	{{SW_D, 4}, {SW_I, 2}, {SW_I, 2}},
	{{SW_I, 2}, {SW_D, 2}, {SW_D, 4}},
	{{SW_D, 2}, {SW_I, 2}, {SW_D, 4}},
	{{SW_D, 4}, {SW_I, 2}, {SW_D, 2}},
	{{SW_D, 4}, {SW_D, 2}, {SW_I, 2}},
	{{SW_D, 8}},
};
#define SW_NTEMPLATES	26

/* Bits of an operand: literals are 8 per byte, indices 8/9/8 bits. */
static int sw_op_bits(struct sw_op op)
{
	if (op.kind == SW_D)
		return op.width * 8;
	return op.width == 4 ? 9 : 8;
}

/*
 * A ring of recent values with a chained hash for membership.  A slot
 * joins the hash only when first written, so the initial zero contents
 * are never found (the kernel initialises its nodes unhashed).  Chains
 * are doubly linked: a repetitive page puts every slot in one bucket,
 * and replacing a slot must not walk the whole chain.
 */
struct sw_ring {
	unsigned int n, bucket_bits;
	int16_t head[2048];
	int16_t next[SW_N4];
	int16_t prev[SW_N4];	/* -1: first of its bucket's chain */
	uint64_t data[SW_N4];
	uint8_t live[SW_N4];
};

static void sw_ring_init(struct sw_ring *r, unsigned int n, unsigned int bits)
{
	r->n = n;
	r->bucket_bits = bits;
	memset(r->head, 0xff, sizeof(int16_t) << bits);
	memset(r->live, 0, n);
}

static inline unsigned int sw_bucket(const struct sw_ring *r, uint64_t v)
{
	return (unsigned int)((v * 0x9e3779b97f4a7c15ull) >> (64 - r->bucket_bits));
}

static int sw_ring_has(const struct sw_ring *r, uint64_t v)
{
	int i;

	for (i = r->head[sw_bucket(r, v)]; i >= 0; i = r->next[i])
		if (r->data[i] == v)
			return 1;
	return 0;
}

static void sw_ring_put(struct sw_ring *r, unsigned int slot, uint64_t v)
{
	unsigned int b;

	if (r->live[slot]) {
		int16_t nx = r->next[slot], pv = r->prev[slot];

		if (pv < 0)
			r->head[sw_bucket(r, r->data[slot])] = nx;
		else
			r->next[pv] = nx;
		if (nx >= 0)
			r->prev[nx] = pv;
	}
	b = sw_bucket(r, v);
	r->data[slot] = v;
	r->next[slot] = r->head[b];
	r->prev[slot] = -1;
	if (r->head[b] >= 0)
		r->prev[r->head[b]] = (int16_t)slot;
	r->head[b] = (int16_t)slot;
	r->live[slot] = 1;
}

struct sw_state {
	struct sw_ring r2, r4, r8;
};

/* Could this template encode the group?  All its indices must exist. */
static int sw_template_fits(const struct sw_state *s, const struct sw_op *t,
			    const uint16_t d2[4], const uint32_t d4[2],
			    uint64_t d8, int8_t found[3][4])
{
	unsigned int b = 0, i;

	for (i = 0; i < 4 && t[i].width; b += t[i].width, i++) {
		int8_t *f;

		if (t[i].kind != SW_I)
			continue;
		/* Look each operand up once per group, as the kernel caches. */
		if (t[i].width == 2) {
			f = &found[0][b >> 1];
			if (*f < 0)
				*f = (int8_t)sw_ring_has(&s->r2, d2[b >> 1]);
		} else if (t[i].width == 4) {
			f = &found[1][b >> 2];
			if (*f < 0)
				*f = (int8_t)sw_ring_has(&s->r4, d4[b >> 2]);
		} else {
			f = &found[2][0];
			if (*f < 0)
				*f = (int8_t)sw_ring_has(&s->r8, d8);
		}
		if (!*f)
			return 0;
	}
	return 1;
}

static int sw_template_cost[SW_NTEMPLATES];

static void sw_init_costs(void)
{
	int c, i;

	for (c = 0; c < SW_NTEMPLATES; c++) {
		int bits = SW_OP_BITS;

		for (i = 0; i < 4 && sw_templates[c][i].width; i++)
			bits += sw_op_bits(sw_templates[c][i]);
		sw_template_cost[c] = bits;
	}
}

/* Compressed length in bytes of sw842_compress(in, len). */
static size_t sw842_bits_to_size(uint64_t bits)
{
	/* Round to bytes, then pad the stream to a multiple of 8 bytes. */
	return (size_t)((bits + 63) / 64) * 8;
}

static size_t sw842_size(const uint8_t *in, size_t len, struct sw_state *s)
{
	uint64_t bits = 0, last = 0, cur;
	size_t pos = 0;
	unsigned int repeat = 0;

	sw_ring_init(&s->r2, SW_N2, 10);
	sw_ring_init(&s->r4, SW_N4, 11);
	sw_ring_init(&s->r8, SW_N8, 10);

	if (len >= 8) {
		memcpy(&last, in, 8);
		last = ~last;	/* the first group never repeats */
	}
	for (; len - pos >= 8; pos += 8) {
		const uint8_t *g = in + pos;
		uint16_t d2[4];
		uint32_t d4[2];
		uint64_t d8;
		unsigned int i;

		memcpy(&cur, g, 8);
		/* Byte order is irrelevant for equality: keep native. */
		d8 = cur;
		memcpy(&d4[0], g, 4);
		memcpy(&d4[1], g + 4, 4);
		for (i = 0; i < 4; i++)
			memcpy(&d2[i], g + 2 * i, 2);

		if (cur == last && ++repeat <= SW_REPEAT_MAX)
			goto update;
		if (repeat) {
			/* A full REPEAT (64 groups) swallows this group too. */
			bits += SW_OP_BITS + SW_REPEAT_BITS;
			repeat = 0;
			if (cur == last)
				goto update;
		}
		if (cur == 0) {
			bits += SW_OP_BITS;
		} else {
			int8_t found[3][4];
			int c;

			memset(found, -1, sizeof(found));
			for (c = 0; c < SW_NTEMPLATES - 1; c++)
				if (sw_template_fits(s, sw_templates[c], d2, d4,
						     d8, found))
					break;
			bits += sw_template_cost[c];
		}
update:
		/* Every group enters the rings, repeats and zeros included. */
		last = cur;
		sw_ring_put(&s->r8, (unsigned int)((pos >> 3) % SW_N8), d8);
		for (i = 0; i < 2; i++)
			sw_ring_put(&s->r4,
				    (unsigned int)((pos >> 2) % SW_N4) + i, d4[i]);
		for (i = 0; i < 4; i++)
			sw_ring_put(&s->r2,
				    (unsigned int)((pos >> 1) % SW_N2) + i, d2[i]);
	}
	if (repeat)
		bits += SW_OP_BITS + SW_REPEAT_BITS;
	if (len - pos)
		bits += SW_OP_BITS + SW_SHORT_BITS + 8 * (len - pos);
	bits += SW_OP_BITS + SW_CRC_BITS;	/* END template, CRC-32 */
	return sw842_bits_to_size(bits);
}

/* ---- Python glue ---- */

static int get_input(PyObject *obj, Py_buffer *view)
{
	return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}

/*
 * Run the encoder into scratch space.  Returns the length (or -1 for a
 * bounded overrun) and leaves the output in *outp; *heapp is set when the
 * scratch had to come from the heap and must be freed by the caller.
 */
static Py_ssize_t encode_view(Py_buffer *v, int rle, size_t cap,
			      uint8_t *stack_out, uint8_t **outp, void **heapp)
{
	dict_t dict[D_SIZE];
	size_t n = (size_t)v->len;
	uint8_t *out = stack_out;

	*heapp = NULL;
	if (n > STACK_IN_MAX) {
		*heapp = PyMem_Malloc(WORST(n));
		if (!*heapp)
			return -2;
		out = *heapp;
	}
	*outp = out;
	return lzo_encode(v->buf, n, out, cap, rle, dict);
}

static int parse_args(PyObject *args, PyObject *kw, const char *fmt,
		      char **names, Py_buffer *v, int *rle, Py_ssize_t *cap)
{
	PyObject *data, *capobj = Py_None;

	if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, names, &data, rle,
					 &capobj))
		return -1;
	*cap = 0;
	if (capobj != Py_None) {
		*cap = PyLong_AsSsize_t(capobj);
		if (*cap == -1 && PyErr_Occurred())
			return -1;
		if (*cap <= 0) {
			PyErr_SetString(PyExc_ValueError, "cap must be positive");
			return -1;
		}
	}
	return get_input(data, v);
}

static PyObject *py_compress(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = {"data", "rle", "cap", NULL};
	uint8_t stack_out[WORST(STACK_IN_MAX)];
	Py_buffer v;
	int rle;
	Py_ssize_t cap, n;
	uint8_t *out;
	void *heap;
	PyObject *res;

	if (parse_args(args, kw, "Op|O:compress", names, &v, &rle, &cap))
		return NULL;
	n = encode_view(&v, rle, (size_t)cap, stack_out, &out, &heap);
	PyBuffer_Release(&v);
	if (n == -2)
		return PyErr_NoMemory();
	if (n < 0)
		res = Py_NewRef(Py_None);
	else
		res = PyBytes_FromStringAndSize((const char *)out, n);
	PyMem_Free(heap);
	return res;
}

static PyObject *py_size(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = {"data", "rle", "cap", NULL};
	uint8_t stack_out[WORST(STACK_IN_MAX)];
	Py_buffer v;
	int rle;
	Py_ssize_t cap, n;
	uint8_t *out;
	void *heap;

	if (parse_args(args, kw, "Op|O:size", names, &v, &rle, &cap))
		return NULL;
	n = encode_view(&v, rle, (size_t)cap, stack_out, &out, &heap);
	PyBuffer_Release(&v);
	PyMem_Free(heap);
	if (n == -2)
		return PyErr_NoMemory();
	return PyLong_FromSsize_t(n);
}

static PyObject *py_decompress(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = {"data", "out_len", NULL};
	Py_buffer v;
	Py_ssize_t out_len, n;
	PyObject *res;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*n:decompress", names,
					 &v, &out_len))
		return NULL;
	if (out_len < 0) {
		PyBuffer_Release(&v);
		PyErr_SetString(PyExc_ValueError, "out_len must be >= 0");
		return NULL;
	}
	res = PyBytes_FromStringAndSize(NULL, out_len);
	if (!res) {
		PyBuffer_Release(&v);
		return NULL;
	}
	n = lzo_decode(v.buf, (size_t)v.len,
		       (uint8_t *)PyBytes_AS_STRING(res), (size_t)out_len);
	PyBuffer_Release(&v);
	if (n < 0) {
		Py_DECREF(res);
		PyErr_SetString(PyExc_ValueError,
				"malformed LZO1X stream or output over out_len");
		return NULL;
	}
	if (n != out_len && _PyBytes_Resize(&res, n) < 0)
		return NULL;
	return res;
}

static PyObject *py_sw842_size(PyObject *self, PyObject *arg)
{
	static struct sw_state st;	/* guarded by the GIL */
	Py_buffer v;
	size_t n;

	if (get_input(arg, &v))
		return NULL;
	n = sw842_size(v.buf, (size_t)v.len, &st);
	PyBuffer_Release(&v);
	return PyLong_FromSize_t(n);
}

static PyMethodDef methods[] = {
	{"sw842_size", py_sw842_size, METH_O,
	 "sw842_size(data) -> int\n\n"
	 "Length of the Linux sw842_compress output for data (padded to 8)."},
	{"compress", (PyCFunction)(void (*)(void))py_compress,
	 METH_VARARGS | METH_KEYWORDS,
	 "compress(data, rle, cap=None) -> bytes or None\n\n"
	 "Linux lzo1x_1_compress (rle=False) or lzorle1x_1_compress (rle=True).\n"
	 "With cap, the _safe variant with a cap-byte destination: None when\n"
	 "it would fail with LZO_E_OUTPUT_OVERRUN."},
	{"size", (PyCFunction)(void (*)(void))py_size,
	 METH_VARARGS | METH_KEYWORDS,
	 "size(data, rle, cap=None) -> int\n\n"
	 "len(compress(data, rle, cap)), or -1 where compress gives None."},
	{"decompress", (PyCFunction)(void (*)(void))py_decompress,
	 METH_VARARGS | METH_KEYWORDS,
	 "decompress(data, out_len) -> bytes\n\n"
	 "Bounds-checked LZO1X / lzo-rle decoder producing at most out_len\n"
	 "bytes; ValueError on malformed input."},
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT, "xcfbench.sim.compressors._lzokernel",
	"Linux kernel LZO1X-1 / LZO-RLE compressor model, a safe LZO1X decoder\n"
	"and the length of sw842_compress output.",
	-1, methods,
};

PyMODINIT_FUNC PyInit__lzokernel(void)
{
	sw_init_costs();
	return PyModule_Create(&moduledef);
}
