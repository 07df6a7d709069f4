/*
 * _lzokernel.c - the Linux kernel's LZO1X-1 and LZO-RLE compressors, an
 * LZO1X decoder, and the kernel's software 842 compressor with a decoder,
 * for xcfbench's size models (xcfbench.sim.compressors._lzokernel).
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
 * reads lzo-rle (bitstream version 1) streams.  The 842 encoder models
 * lib/842 sw842_compress() bit for bit (section 7; checked against the
 * public kernel sources, not copied); its decoder is an independent
 * bounds-checked reader of that format that checks the CRC.
 *
 * Python API:
 *   compress(data, rle, cap=None) -> bytes | None
 *   size(data, rle, cap=None)     -> int (-1 where compress gives None)
 *   decompress(data, out_len)     -> bytes (ValueError on bad input)
 *   sw842_size(data)              -> int (lib/842 sw842_compress length)
 *   sw842_compress(data)          -> bytes (lib/842 sw842_compress output)
 *   sw842_decompress(data, out_len) -> bytes (ValueError on bad input)
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
 * ---- sw842 (lib/842: 842_compress.c, 842_decompress.c, 842.h) ----
 *
 * The page is taken 8 bytes at a time.  Each group becomes a REPEAT of
 * the previous group, a ZEROS template, or the first template of the
 * kernel's list (ordered by cost) whose index operands can all be found
 * in the rolling tables of recent 2-, 4- and 8-byte values; the last
 * template (8 literal bytes) always fits.  An index names the table slot
 * most recently written with the value: the kernel's hash chains put the
 * newest node first and its lookup stops at the first equal value.
 *
 * One encoder serves both calls.  sw842_size() runs it in count-only
 * mode (bits are counted, nothing is written, no CRC is computed);
 * sw842_compress() writes the bitstream: most significant bit first,
 * then END, crc32_be(0, input) in 32 bits, zero bits to the byte and
 * zero bytes to a multiple of 8.
 */
#define SW_OP_BITS	5
#define SW_REPEAT_BITS	6
#define SW_REPEAT_MAX	63	/* repeat count is stored minus one */
#define SW_SHORT_BITS	3
#define SW_SHORT_MAX	7
#define SW_CRC_BITS	32
#define SW_I2_BITS	8
#define SW_I4_BITS	9
#define SW_I8_BITS	8

/* The special templates' codes; 0x00-0x19 are the regular ones. */
#define SW_OP_REPEAT	0x1b
#define SW_OP_ZEROS	0x1c
#define SW_OP_SHORT	0x1d
#define SW_OP_END	0x1e

/* Ring sizes follow the index widths. */
#define SW_N2		(1u << SW_I2_BITS)
#define SW_N4		(1u << SW_I4_BITS)
#define SW_N8		(1u << SW_I8_BITS)

#if defined(__GNUC__)
#define SW_INLINE	static inline __attribute__((always_inline))
#else
#define SW_INLINE	static inline
#endif

/*
 * Operand kinds in a template: D = literal, I = table index.  Widths are
 * 2, 4 or 8 bytes; 0 ends the template.
 */
enum { SW_D = 0, SW_I = 1 };
struct sw_op { uint8_t kind, width; };
struct sw_tmpl { uint8_t code; struct sw_op op[4]; };

/* Templates in the kernel's order, cheapest first, with their codes. */
static const struct sw_tmpl sw_templates[] = {
	{0x19, {{SW_I, 8}}},
	{0x18, {{SW_I, 4}, {SW_I, 4}}},
	{0x17, {{SW_I, 4}, {SW_I, 2}, {SW_I, 2}}},
	{0x13, {{SW_I, 2}, {SW_I, 2}, {SW_I, 4}}},
	{0x12, {{SW_I, 2}, {SW_I, 2}, {SW_I, 2}, {SW_I, 2}}},
	{0x16, {{SW_I, 4}, {SW_I, 2}, {SW_D, 2}}},
	{0x15, {{SW_I, 4}, {SW_D, 2}, {SW_I, 2}}},
	{0x0e, {{SW_I, 2}, {SW_D, 2}, {SW_I, 4}}},
	{0x09, {{SW_D, 2}, {SW_I, 2}, {SW_I, 4}}},
	{0x11, {{SW_I, 2}, {SW_I, 2}, {SW_I, 2}, {SW_D, 2}}},
	{0x10, {{SW_I, 2}, {SW_I, 2}, {SW_D, 2}, {SW_I, 2}}},
	{0x0d, {{SW_I, 2}, {SW_D, 2}, {SW_I, 2}, {SW_I, 2}}},
	{0x08, {{SW_D, 2}, {SW_I, 2}, {SW_I, 2}, {SW_I, 2}}},
	{0x14, {{SW_I, 4}, {SW_D, 4}}},
	{0x04, {{SW_D, 4}, {SW_I, 4}}},
	{0x0f, {{SW_I, 2}, {SW_I, 2}, {SW_D, 4}}},
	{0x0c, {{SW_I, 2}, {SW_D, 2}, {SW_I, 2}, {SW_D, 2}}},
	{0x0b, {{SW_I, 2}, {SW_D, 4}, {SW_I, 2}}},
	{0x07, {{SW_D, 2}, {SW_I, 2}, {SW_I, 2}, {SW_D, 2}}},
	{0x06, {{SW_D, 2}, {SW_I, 2}, {SW_D, 2}, {SW_I, 2}}},
	{0x03, {{SW_D, 4}, {SW_I, 2}, {SW_I, 2}}},
	{0x0a, {{SW_I, 2}, {SW_D, 2}, {SW_D, 4}}},
	{0x05, {{SW_D, 2}, {SW_I, 2}, {SW_D, 4}}},
	{0x02, {{SW_D, 4}, {SW_I, 2}, {SW_D, 2}}},
	{0x01, {{SW_D, 4}, {SW_D, 2}, {SW_I, 2}}},
	{0x00, {{SW_D, 8}}},
};
#define SW_NTEMPLATES	((int)(sizeof(sw_templates) / sizeof(sw_templates[0])))

/* Decoder: template code -> position in sw_templates (filled at import). */
static int8_t sw_by_code[SW_NTEMPLATES];

/* Bits of an operand: literals are 8 per byte, indices 8/9/8 bits. */
static unsigned int sw_op_bits(struct sw_op op)
{
	if (op.kind == SW_D)
		return op.width * 8u;
	return op.width == 4 ? SW_I4_BITS : op.width == 2 ? SW_I2_BITS
							  : SW_I8_BITS;
}

/*
 * A ring of recent values with a chained hash for lookup.  A slot joins
 * the hash only when first written, so the initial zero contents are
 * never found (the kernel initialises its nodes unhashed).  A slot that
 * is written goes to the head of its bucket's chain, so the first equal
 * value on the chain is the newest, as in the kernel.  Chains are doubly
 * linked: a repetitive page puts every slot in one bucket, and replacing
 * a slot must not walk the whole chain.
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

/* The slot most recently written with v, or -1. */
static int sw_ring_find(const struct sw_ring *r, uint64_t v)
{
	int i;

	for (i = r->head[sw_bucket(r, v)]; i >= 0; i = r->next[i])
		if (r->data[i] == v)
			return i;
	return -1;
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

/* Slot lookups of one group; SW_UNCHECKED until looked up. */
#define SW_UNCHECKED	(-2)
struct sw_found {
	int i2[4], i4[2], i8;
};

/*
 * Could this template encode the group?  All its indices must exist.
 * Each operand is looked up at most once per group, as the kernel caches.
 */
SW_INLINE int sw_template_fits(const struct sw_state *s, const struct sw_op *t,
			       const uint16_t d2[4], const uint32_t d4[2],
			       uint64_t d8, struct sw_found *f)
{
	unsigned int b = 0, i;

	for (i = 0; i < 4 && t[i].width; b += t[i].width, i++) {
		int *slot;

		if (t[i].kind != SW_I)
			continue;
		if (t[i].width == 2) {
			slot = &f->i2[b >> 1];
			if (*slot == SW_UNCHECKED)
				*slot = sw_ring_find(&s->r2, d2[b >> 1]);
		} else if (t[i].width == 4) {
			slot = &f->i4[b >> 2];
			if (*slot == SW_UNCHECKED)
				*slot = sw_ring_find(&s->r4, d4[b >> 2]);
		} else {
			slot = &f->i8;
			if (*slot == SW_UNCHECKED)
				*slot = sw_ring_find(&s->r8, d8);
		}
		if (*slot < 0)
			return 0;
	}
	return 1;
}

static unsigned int sw_template_cost[SW_NTEMPLATES];

/* crc32_be (lib/crc32.c): polynomial 0x04c11db7, MSB first, no inversion. */
static uint32_t sw_crc_table[256];

static void sw_init_tables(void)
{
	int c, i;
	uint32_t k, r;

	for (c = 0; c < SW_NTEMPLATES; c++) {
		unsigned int bits = SW_OP_BITS;

		for (i = 0; i < 4 && sw_templates[c].op[i].width; i++)
			bits += sw_op_bits(sw_templates[c].op[i]);
		sw_template_cost[c] = bits;
		sw_by_code[sw_templates[c].code] = (int8_t)c;
	}
	for (k = 0; k < 256; k++) {
		r = k << 24;
		for (i = 0; i < 8; i++)
			r = (r << 1) ^ ((r & 0x80000000u) ? 0x04c11db7u : 0);
		sw_crc_table[k] = r;
	}
}

static uint32_t sw_crc32_be(const uint8_t *p, size_t n)
{
	uint32_t crc = 0;

	while (n--)
		crc = (crc << 8) ^ sw_crc_table[(crc >> 24) ^ *p++];
	return crc;
}

static inline uint16_t sw_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t sw_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * Bit writer, most significant bit first.  acc holds the bits not yet
 * written in its low nacc (< 8) bits; higher bits of acc are stale.
 */
struct sw_out {
	uint8_t *p;
	uint64_t acc;
	unsigned int nacc;
};

/* Append the n (<= 32) low bits of v, which has no higher bits set. */
static inline void sw_put(struct sw_out *o, uint32_t v, unsigned int n)
{
	o->acc = (o->acc << n) | v;
	o->nacc += n;
	while (o->nacc >= 8) {
		o->nacc -= 8;
		*o->p++ = (uint8_t)(o->acc >> o->nacc);
	}
}

/* The operands of template t for the group at g. */
static void sw_put_template(struct sw_out *o, const struct sw_tmpl *t,
			    const uint8_t *g, const struct sw_found *f)
{
	unsigned int b = 0, i;

	sw_put(o, t->code, SW_OP_BITS);
	for (i = 0; i < 4 && t->op[i].width; b += t->op[i].width, i++) {
		struct sw_op op = t->op[i];

		if (op.kind == SW_D) {
			if (op.width == 2) {
				sw_put(o, sw_be16(g + b), 16);
			} else {
				sw_put(o, sw_be32(g + b), 32);
				if (op.width == 8)
					sw_put(o, sw_be32(g + 4), 32);
			}
		} else if (op.width == 2) {
			sw_put(o, (uint32_t)f->i2[b >> 1], SW_I2_BITS);
		} else if (op.width == 4) {
			sw_put(o, (uint32_t)f->i4[b >> 2], SW_I4_BITS);
		} else {
			sw_put(o, (uint32_t)f->i8, SW_I8_BITS);
		}
	}
}

/* Compressed length in bytes from the stream's bits. */
static size_t sw842_bits_to_size(uint64_t bits)
{
	/* Round to bytes, then pad the stream to a multiple of 8 bytes. */
	return (size_t)((bits + 63) / 64) * 8;
}

/* Room sw842_compress() output can need for len input bytes. */
static size_t sw842_bound(size_t len)
{
	/* At most 69 bits a group (template 0x00), SHORT_DATA 64, END+CRC 37. */
	return len / 8 * 9 + 32;
}

/*
 * sw842_compress(in, len): the stream's length in bytes; with emit, the
 * stream itself is written to out (sw842_bound(len) bytes of room).
 * Inlined twice, so that the count-only copy has no writer in it.
 */
SW_INLINE size_t sw842_encode(const uint8_t *in, size_t len,
			      struct sw_state *s, uint8_t *out, const int emit)
{
	uint64_t bits = 0, last = 0, cur;
	size_t pos = 0, n;
	unsigned int repeat = 0;
	struct sw_out o = {out, 0, 0};

#define SW_EMIT(v, nb) do {				\
		bits += (nb);				\
		if (emit)				\
			sw_put(&o, (v), (nb));		\
	} while (0)

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
			SW_EMIT(SW_OP_REPEAT << SW_REPEAT_BITS | (repeat - 1),
				SW_OP_BITS + SW_REPEAT_BITS);
			repeat = 0;
			if (cur == last)
				goto update;
		}
		if (cur == 0) {
			SW_EMIT(SW_OP_ZEROS, SW_OP_BITS);
		} else {
			struct sw_found f = {
				{SW_UNCHECKED, SW_UNCHECKED, SW_UNCHECKED,
				 SW_UNCHECKED},
				{SW_UNCHECKED, SW_UNCHECKED}, SW_UNCHECKED};
			int c;

			for (c = 0; c < SW_NTEMPLATES - 1; c++)
				if (sw_template_fits(s, sw_templates[c].op, d2,
						     d4, d8, &f))
					break;
			bits += sw_template_cost[c];
			if (emit)
				sw_put_template(&o, &sw_templates[c], g, &f);
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
		SW_EMIT(SW_OP_REPEAT << SW_REPEAT_BITS | (repeat - 1),
			SW_OP_BITS + SW_REPEAT_BITS);
	if (len - pos) {
		SW_EMIT(SW_OP_SHORT << SW_SHORT_BITS | (uint32_t)(len - pos),
			SW_OP_BITS + SW_SHORT_BITS);
		for (; pos < len; pos++)
			SW_EMIT(in[pos], 8);
	}
	SW_EMIT(SW_OP_END, SW_OP_BITS);
	bits += SW_CRC_BITS;
	n = sw842_bits_to_size(bits);
	if (emit) {
		sw_put(&o, sw_crc32_be(in, len), SW_CRC_BITS);
		if (o.nacc)
			*o.p++ = (uint8_t)(o.acc << (8 - o.nacc));
		memset(o.p, 0, n - (size_t)(o.p - out));
	}
	return n;
#undef SW_EMIT
}

static size_t sw842_size(const uint8_t *in, size_t len, struct sw_state *s)
{
	return sw842_encode(in, len, s, NULL, 0);
}

static size_t sw842_compress(const uint8_t *in, size_t len,
			     struct sw_state *s, uint8_t *out)
{
	return sw842_encode(in, len, s, out, 1);
}

/*
 * Bounds-checked bit reader, most significant bit first.  sw_get() takes
 * 1 to 32 bits and fails (-1) when the input ends first.
 */
struct sw_in {
	const uint8_t *p;
	size_t len;		/* bytes */
	size_t bit;		/* bits consumed */
};

static int sw_get(struct sw_in *r, unsigned int n, uint32_t *v)
{
	size_t byte = r->bit >> 3;
	unsigned int need = (unsigned int)(r->bit & 7) + n;
	unsigned int nb = (need + 7) / 8, i;
	uint64_t w = 0;

	if (byte > r->len || r->len - byte < nb)
		return -1;
	for (i = 0; i < nb; i++)
		w = w << 8 | r->p[byte + i];
	*v = (uint32_t)((w >> (nb * 8 - need)) & ((1ull << n) - 1));
	r->bit += n;
	return 0;
}

#define SW_BAD		(-1)	/* malformed stream or output over out_len */
#define SW_BAD_CRC	(-2)	/* decoded, but the CRC does not match */

/*
 * sw842_decompress(): decode into out (out_len bytes of room); the
 * number of bytes produced, or SW_BAD / SW_BAD_CRC.  Accepts what the
 * kernel accepts and checks what it checks (indices behind the output,
 * REPEAT after some output, a SHORT_DATA length of 1..7, the CRC over
 * the output), and in addition every read and every write.  Like the
 * kernel, it stops at END and ignores what follows the CRC.
 */
static Py_ssize_t sw842_decode(const uint8_t *in, size_t in_len,
			       uint8_t *out, size_t out_len)
{
	struct sw_in r = {in, in_len, 0};
	size_t o = 0;
	uint32_t code, v, crc;

	for (;;) {
		if (sw_get(&r, SW_OP_BITS, &code))
			return SW_BAD;
		if (code == SW_OP_END)
			break;
		if (code == SW_OP_REPEAT) {
			unsigned int k;

			if (sw_get(&r, SW_REPEAT_BITS, &v))
				return SW_BAD;
			/* The kernel checks for some output; it copies 8. */
			if (o < 8 || out_len - o < (v + 1) * 8u)
				return SW_BAD;
			for (k = 0; k <= v; k++, o += 8)
				memcpy(out + o, out + o - 8, 8);
		} else if (code == SW_OP_ZEROS) {
			if (out_len - o < 8)
				return SW_BAD;
			memset(out + o, 0, 8);
			o += 8;
		} else if (code == SW_OP_SHORT) {
			if (sw_get(&r, SW_SHORT_BITS, &v) || v == 0 ||
			    out_len - o < v)
				return SW_BAD;
			while (v--) {
				uint32_t byte;

				if (sw_get(&r, 8, &byte))
					return SW_BAD;
				out[o++] = (uint8_t)byte;
			}
		} else if (code < (uint32_t)SW_NTEMPLATES) {
			const struct sw_tmpl *t = &sw_templates[sw_by_code[code]];
			unsigned int i;

			for (i = 0; i < 4 && t->op[i].width; i++) {
				size_t w = t->op[i].width;

				if (out_len - o < w)
					return SW_BAD;
				if (t->op[i].kind == SW_D) {
					unsigned int k;

					/* 16 or 32 bits at a time, big-endian */
					for (k = 0; k < w; k += w == 2 ? 2 : 4) {
						unsigned int nb = w == 2 ? 16 : 32;

						if (sw_get(&r, nb, &v))
							return SW_BAD;
						if (nb == 16) {
							out[o + k] = (uint8_t)(v >> 8);
							out[o + k + 1] = (uint8_t)v;
						} else {
							out[o + k] = (uint8_t)(v >> 24);
							out[o + k + 1] = (uint8_t)(v >> 16);
							out[o + k + 2] = (uint8_t)(v >> 8);
							out[o + k + 3] = (uint8_t)v;
						}
					}
				} else {
					unsigned int ib = sw_op_bits(t->op[i]);
					size_t fifo = w << ib;
					size_t total = o & ~(size_t)7, off;

					if (sw_get(&r, ib, &v))
						return SW_BAD;
					off = (size_t)v * w;
					/* The ring of the last fifo bytes */
					if (total > fifo) {
						size_t section = total - total % fifo;

						if (off >= total % fifo)
							section -= fifo;
						off += section;
					}
					if (off + w > total)
						return SW_BAD;
					memcpy(out + o, out + off, w);
				}
				o += w;
			}
		} else {
			return SW_BAD;	/* 0x1a, 0x1f: no such template */
		}
	}
	if (sw_get(&r, SW_CRC_BITS, &crc))
		return SW_BAD;
	if (crc != sw_crc32_be(out, o))
		return SW_BAD_CRC;
	return (Py_ssize_t)o;
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

	(void)self;
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

	(void)self;
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

	(void)self;
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

static struct sw_state sw842_state;	/* guarded by the GIL */

static PyObject *py_sw842_size(PyObject *self, PyObject *arg)
{
	Py_buffer v;
	size_t n;

	(void)self;
	if (get_input(arg, &v))
		return NULL;
	n = sw842_size(v.buf, (size_t)v.len, &sw842_state);
	PyBuffer_Release(&v);
	return PyLong_FromSize_t(n);
}

static PyObject *py_sw842_compress(PyObject *self, PyObject *arg)
{
	Py_buffer v;
	PyObject *res;
	size_t n;

	(void)self;
	if (get_input(arg, &v))
		return NULL;
	if ((size_t)v.len > (size_t)PY_SSIZE_T_MAX / 2) {
		PyBuffer_Release(&v);
		return PyErr_NoMemory();
	}
	res = PyBytes_FromStringAndSize(NULL,
					(Py_ssize_t)sw842_bound((size_t)v.len));
	if (!res) {
		PyBuffer_Release(&v);
		return NULL;
	}
	n = sw842_compress(v.buf, (size_t)v.len, &sw842_state,
			   (uint8_t *)PyBytes_AS_STRING(res));
	PyBuffer_Release(&v);
	if (_PyBytes_Resize(&res, (Py_ssize_t)n) < 0)
		return NULL;
	return res;
}

static PyObject *py_sw842_decompress(PyObject *self, PyObject *args,
				     PyObject *kw)
{
	static char *names[] = {"data", "out_len", NULL};
	Py_buffer v;
	Py_ssize_t out_len, n;
	PyObject *res;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*n:sw842_decompress",
					 names, &v, &out_len))
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
	n = sw842_decode(v.buf, (size_t)v.len,
			 (uint8_t *)PyBytes_AS_STRING(res), (size_t)out_len);
	PyBuffer_Release(&v);
	if (n < 0) {
		Py_DECREF(res);
		PyErr_SetString(PyExc_ValueError,
				n == SW_BAD_CRC
				? "842 stream fails its CRC check"
				: "malformed 842 stream or output over out_len");
		return NULL;
	}
	if (n != out_len && _PyBytes_Resize(&res, n) < 0)
		return NULL;
	return res;
}

static PyMethodDef methods[] = {
	{"sw842_size", py_sw842_size, METH_O,
	 "sw842_size(data) -> int\n\n"
	 "Length of the Linux sw842_compress output for data (padded to 8);\n"
	 "len(sw842_compress(data)), without building the bytes."},
	{"sw842_compress", py_sw842_compress, METH_O,
	 "sw842_compress(data) -> bytes\n\n"
	 "The Linux lib/842 sw842_compress output for data (any length)."},
	{"sw842_decompress", (PyCFunction)(void (*)(void))py_sw842_decompress,
	 METH_VARARGS | METH_KEYWORDS,
	 "sw842_decompress(data, out_len) -> bytes\n\n"
	 "Bounds-checked 842 decoder producing at most out_len bytes; checks\n"
	 "the stream's CRC as the kernel does.  ValueError on bad input."},
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
	"Linux kernel LZO1X-1 / LZO-RLE compressor model, a safe LZO1X decoder,\n"
	"and the kernel's software 842 encoder with a safe decoder.",
	-1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lzokernel(void)
{
	sw_init_tables();
	return PyModule_Create(&moduledef);
}
