/* The log cleaner's per-record loops in C (optional: kbroker.log.cleaner_scan falls back
 * to the same functions in Python when this module is not built).
 *
 * Both functions walk the records section of a v2 record batch (already decompressed):
 * each record is  length:varint  attributes:int8  timestamp_delta:varlong
 * offset_delta:varint  key_length:varint key  value_length:varint value  headers...
 * with zigzag varints.  Nothing past the value is read; a record is skipped by its
 * length.  Malformed input raises ValueError (the caller turns it into
 * CorruptRecordBatch).
 *
 * scan_keys(data, count, base_offset, long_digest, latest) -> (offsets, digests, tombstones,
 *                                                              keep)
 *     offsets: list[int] (base_offset + offset_delta), digests: list[bytes | None]
 *     (the key itself up to 16 bytes, else long_digest(key); None for no key),
 *     tombstones: bytes, one 0/1 per record (1: no value); keep: with a dict ``latest``
 *     (digest -> offset), one 0/1 per record: 1 if it has a key whose latest offset is
 *     absent or not after the record's; b"" when ``latest`` is None.
 *
 * filter_records(data, count, keep, old_base_ts, new_base_ts) -> (records, base_ts, max_ts)
 *     The records i with keep[i] != 0, each re-encoded with its timestamp delta made
 *     relative to new_base_ts (None: the first kept record's timestamp); every other
 *     byte of a record is copied as it is.  base_ts is the base used, max_ts the
 *     largest kept absolute timestamp (-1 when none is kept).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SHORT_KEY_BYTES 16
#define MAX_VARINT_BYTES 10

/* One zigzag varint at *pos (< end); -1 on a bad/short varint. */
static int
read_varint(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *pos, int64_t *out)
{
    uint64_t result = 0;
    int shift = 0;
    Py_ssize_t p = *pos;
    for (int i = 0; i < MAX_VARINT_BYTES; i++) {
        if (p >= end)
            return -1;
        unsigned char b = buf[p++];
        result |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            *out = (int64_t)((result >> 1) ^ (~(result & 1) + 1));
            *pos = p;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

static Py_ssize_t
write_varint(unsigned char *out, int64_t value)
{
    uint64_t z = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    Py_ssize_t n = 0;
    while (z >= 0x80) {
        out[n++] = (unsigned char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    out[n++] = (unsigned char)z;
    return n;
}

static PyObject *
corrupt(const char *what, Py_ssize_t index)
{
    PyErr_Format(PyExc_ValueError, "record %zd: %s", index, what);
    return NULL;
}

/* Position just past the attributes, timestamp and offset delta of the record at *pos;
 * fills length/record_end/ts/offset_delta/ts_start.  0 ok, else sets an error. */
typedef struct {
    Py_ssize_t record_end;
    Py_ssize_t ts_start;  /* first byte of the timestamp delta */
    Py_ssize_t after_ts;  /* first byte of the offset delta */
    Py_ssize_t pos;       /* first byte of the key length */
    int64_t timestamp_delta;
    int64_t offset_delta;
} record_head;

static int
read_head(const unsigned char *buf, Py_ssize_t end, Py_ssize_t pos, Py_ssize_t index,
          record_head *h)
{
    int64_t length;
    if (read_varint(buf, end, &pos, &length) < 0 || length < 6 || length > end - pos) {
        corrupt("bad record length", index);
        return -1;
    }
    h->record_end = pos + (Py_ssize_t)length;
    pos += 1; /* attributes */
    h->ts_start = pos;
    if (read_varint(buf, h->record_end, &pos, &h->timestamp_delta) < 0) {
        corrupt("bad timestamp delta", index);
        return -1;
    }
    h->after_ts = pos;
    if (read_varint(buf, h->record_end, &pos, &h->offset_delta) < 0) {
        corrupt("bad offset delta", index);
        return -1;
    }
    h->pos = pos;
    return 0;
}

static PyObject *
scan_keys(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t count;
    long long base_offset;
    PyObject *long_digest, *latest;
    if (!PyArg_ParseTuple(args, "y*nLOO", &view, &count, &base_offset, &long_digest, &latest))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    Py_ssize_t end = view.len;
    PyObject *offsets = NULL, *digests = NULL, *tombs = NULL, *keeps = NULL, *result = NULL;
    int judge = latest != Py_None;
    if (judge && !PyDict_Check(latest)) {
        PyErr_SetString(PyExc_TypeError, "latest must be a dict or None");
        PyBuffer_Release(&view);
        return NULL;
    }
    if (count < 0 || count > end) {
        corrupt("record count does not fit the batch", 0);
        goto done;
    }
    offsets = PyList_New(count);
    digests = PyList_New(count);
    tombs = PyBytes_FromStringAndSize(NULL, count);
    keeps = PyBytes_FromStringAndSize(NULL, judge ? count : 0);
    if (offsets == NULL || digests == NULL || tombs == NULL || keeps == NULL)
        goto done;
    char *tomb = PyBytes_AS_STRING(tombs);
    char *keep = PyBytes_AS_STRING(keeps);
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        record_head h;
        if (read_head(buf, end, pos, i, &h) < 0)
            goto done;
        pos = h.pos;
        int64_t key_length, value_length;
        if (read_varint(buf, h.record_end, &pos, &key_length) < 0 || key_length < -1
            || key_length > h.record_end - pos) {
            corrupt("bad key length", i);
            goto done;
        }
        PyObject *digest;
        if (key_length < 0) {
            digest = Py_NewRef(Py_None);
        }
        else {
            digest = PyBytes_FromStringAndSize((const char *)buf + pos, (Py_ssize_t)key_length);
            if (digest == NULL)
                goto done;
            if (key_length > SHORT_KEY_BYTES) {
                PyObject *hashed = PyObject_CallOneArg(long_digest, digest);
                Py_DECREF(digest);
                if (hashed == NULL)
                    goto done;
                digest = hashed;
            }
            pos += (Py_ssize_t)key_length;
        }
        PyList_SET_ITEM(digests, i, digest);
        if (read_varint(buf, h.record_end, &pos, &value_length) < 0 || value_length < -1
            || value_length > h.record_end - pos) {
            corrupt("bad value length", i);
            goto done;
        }
        tomb[i] = value_length < 0;
        long long absolute = base_offset + h.offset_delta;
        PyObject *offset = PyLong_FromLongLong(absolute);
        if (offset == NULL)
            goto done;
        PyList_SET_ITEM(offsets, i, offset);
        if (judge) {
            if (digest == Py_None) {
                keep[i] = 0;
            }
            else {
                PyObject *found = PyDict_GetItemWithError(latest, digest); /* borrowed */
                if (found == NULL) {
                    if (PyErr_Occurred())
                        goto done;
                    keep[i] = 1;
                }
                else {
                    long long at = PyLong_AsLongLong(found);
                    if (at == -1 && PyErr_Occurred())
                        goto done;
                    keep[i] = at <= absolute;
                }
            }
        }
        pos = h.record_end;
    }
    if (pos != end) {
        corrupt("bytes left after the records", count);
        goto done;
    }
    result = PyTuple_Pack(4, offsets, digests, tombs, keeps);
done:
    Py_XDECREF(offsets);
    Py_XDECREF(digests);
    Py_XDECREF(tombs);
    Py_XDECREF(keeps);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
filter_records(PyObject *self, PyObject *args)
{
    Py_buffer view, keep;
    Py_ssize_t count;
    long long old_base_ts;
    PyObject *new_base_obj;
    if (!PyArg_ParseTuple(args, "y*ny*LO", &view, &count, &keep, &old_base_ts, &new_base_obj))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    const unsigned char *keep_flags = (const unsigned char *)keep.buf;
    Py_ssize_t end = view.len;
    PyObject *result = NULL;
    unsigned char *out = NULL;
    int have_base = new_base_obj != Py_None;
    int64_t new_base = 0, max_ts = -1;
    if (have_base) {
        new_base = PyLong_AsLongLong(new_base_obj);
        if (new_base == -1 && PyErr_Occurred())
            goto done;
    }
    if (count < 0 || count > end || keep.len != count) {
        corrupt("record count does not fit the batch", 0);
        goto done;
    }
    /* A re-encoded record grows by at most the two varints that change. */
    out = PyMem_Malloc((size_t)end + (size_t)count * 2 * MAX_VARINT_BYTES + 1);
    if (out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t pos = 0, n = 0;
    int any = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        record_head h;
        if (read_head(buf, end, pos, i, &h) < 0)
            goto done;
        if (keep_flags[i]) {
            int64_t ts = (int64_t)old_base_ts + h.timestamp_delta;
            if (!have_base) {
                new_base = ts;
                have_base = 1;
            }
            if (!any || ts > max_ts)
                max_ts = ts;
            any = 1;
            unsigned char head[1 + MAX_VARINT_BYTES];
            head[0] = buf[h.ts_start - 1]; /* attributes */
            Py_ssize_t head_len = 1 + write_varint(head + 1, ts - new_base);
            Py_ssize_t tail_len = h.record_end - h.after_ts;
            n += write_varint(out + n, (int64_t)(head_len + tail_len));
            memcpy(out + n, head, (size_t)head_len);
            n += head_len;
            memcpy(out + n, buf + h.after_ts, (size_t)tail_len);
            n += tail_len;
        }
        pos = h.record_end;
    }
    if (pos != end) {
        corrupt("bytes left after the records", count);
        goto done;
    }
    {
        PyObject *records = PyBytes_FromStringAndSize((const char *)out, n);
        if (records == NULL)
            goto done;
        result = Py_BuildValue("(NLL)", records, (long long)(have_base ? new_base : -1),
                               (long long)max_ts);
    }
done:
    PyMem_Free(out);
    PyBuffer_Release(&view);
    PyBuffer_Release(&keep);
    return result;
}


/* ---- OffsetTable: the offset map in C (Kafka's SkimpyOffsetMap idea) -------------------
 *
 * An open-addressing table (linear probing, power-of-two slots, at most 3/4 full) of
 * fixed-size key names -> latest offset.  A key name is the key itself, zero-padded,
 * when it has at most 16 bytes, else long_digest(key) (its MD5, 16 bytes), with its
 * length, so no Python object exists per entry.  ``capacity`` is the logical bound
 * (the dedupe buffer's key count): map_section never makes the table hold more keys.
 * The table grows by doubling as keys arrive (memory follows the keys present, not the
 * bound).  Slot positions mix the name with a per-table seed, so keys chosen to
 * collide cost probes, never correctness.
 *
 * OffsetTable(capacity, seed)
 *   len(t); t.get(name) -> int (-1: absent); t.put(name, offset); t.clear()
 *   t.map_section(data, count, base_offset, start_offset, long_digest) -> bool
 *       every keyed record at or past start_offset: name -> its offset (later records
 *       win); False, with the table unchanged, if its new keys would pass capacity.
 *   t.judge(data, count, base_offset, long_digest) -> (keep, tombstones)
 *       as scan_keys' keep and tombstones, looked up in this table.
 */

#define TABLE_MIN_SLOTS 64

typedef struct {
    uint64_t a, b;   /* the name's 16 bytes */
    int64_t offset;  /* -1: an empty slot */
    int64_t length;  /* the name's length, 0..16 */
} slot_t;

typedef struct {
    PyObject_HEAD
    slot_t *slots;
    Py_ssize_t mask;  /* slot count - 1 */
    Py_ssize_t size;
    Py_ssize_t capacity;
    uint64_t seed;
} OffsetTable;

typedef struct {
    uint64_t a, b;
    int64_t length;
} name_t;

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t
hash_of(const OffsetTable *t, const name_t *n)
{
    uint64_t h = mix64(n->a ^ t->seed)
                 ^ mix64(n->b + 0x9e3779b97f4a7c15ULL * (uint64_t)(n->length + 1));
    return mix64(h);
}

/* The slot holding ``n``, or the empty one where it would go (the table is never
 * full, see table_reserve), probing from ``hash``. */
static Py_ssize_t
probe(const OffsetTable *t, const name_t *n, uint64_t hash)
{
    Py_ssize_t i = (Py_ssize_t)(hash & (uint64_t)t->mask);
    for (;;) {
        const slot_t *s = &t->slots[i];
        if (s->offset < 0 || (s->a == n->a && s->b == n->b && s->length == n->length))
            return i;
        i = (i + 1) & t->mask;
    }
}

static Py_ssize_t
slot_of(const OffsetTable *t, const name_t *n)
{
    return probe(t, n, hash_of(t, n));
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* One keyed record of a batch, named and hashed: a batch's records are all hashed and
 * their home slots prefetched before the first probe, so the cache misses of a large
 * table overlap instead of coming one after another. */
typedef struct {
    name_t name;
    uint64_t hash;
    int64_t offset;
    Py_ssize_t index;  /* the record's position in the batch */
} keyed_t;

static slot_t *
new_slots(Py_ssize_t count)
{
    if ((size_t)count > PY_SSIZE_T_MAX / sizeof(slot_t))
        return NULL;
    slot_t *slots = PyMem_Malloc((size_t)count * sizeof(slot_t));
    if (slots != NULL)
        for (Py_ssize_t i = 0; i < count; i++)
            slots[i].offset = -1;
    return slots;
}

/* Room for ``more`` further keys at most 3/4 full: 0, or -1 with MemoryError. */
static int
table_reserve(OffsetTable *t, Py_ssize_t more)
{
    Py_ssize_t want = t->size + more;
    Py_ssize_t count = t->mask + 1;
    if (want <= count / 4 * 3)
        return 0;
    while (want > count / 4 * 3) {
        if (count > PY_SSIZE_T_MAX / 4) {
            PyErr_NoMemory();
            return -1;
        }
        count *= 2;
    }
    slot_t *slots = new_slots(count);
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    slot_t *old = t->slots;
    Py_ssize_t old_count = t->mask + 1;
    t->slots = slots;
    t->mask = count - 1;
    for (Py_ssize_t i = 0; i < old_count; i++) {
        if (old[i].offset >= 0) {
            name_t n = {old[i].a, old[i].b, old[i].length};
            t->slots[slot_of(t, &n)] = old[i];
        }
    }
    PyMem_Free(old);
    return 0;
}

static void
name_from(name_t *n, const unsigned char *key, Py_ssize_t length)
{
    unsigned char padded[SHORT_KEY_BYTES] = {0};
    memcpy(padded, key, (size_t)length);
    memcpy(&n->a, padded, 8);
    memcpy(&n->b, padded + 8, 8);
    n->length = length;
}

/* The name of a key of any length: 0, or -1 with an exception. */
static int
key_name(name_t *n, const unsigned char *key, Py_ssize_t length, PyObject *long_digest)
{
    if (length <= SHORT_KEY_BYTES) {
        name_from(n, key, length);
        return 0;
    }
    PyObject *hashed = PyObject_CallFunction(long_digest, "y#", (const char *)key, length);
    if (hashed == NULL)
        return -1;
    if (!PyBytes_Check(hashed) || PyBytes_GET_SIZE(hashed) != SHORT_KEY_BYTES) {
        Py_DECREF(hashed);
        PyErr_SetString(PyExc_TypeError, "long_digest must return 16 bytes");
        return -1;
    }
    name_from(n, (const unsigned char *)PyBytes_AS_STRING(hashed), SHORT_KEY_BYTES);
    Py_DECREF(hashed);
    return 0;
}

/* A Python bytes name (at most 16 bytes, as key_digest makes them): 0, or -1. */
static int
name_arg(name_t *n, PyObject *obj)
{
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) > SHORT_KEY_BYTES) {
        PyErr_SetString(PyExc_TypeError, "a key name is bytes of at most 16");
        return -1;
    }
    name_from(n, (const unsigned char *)PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
    return 0;
}

/* One record's key and value of a records section (see scan_keys): the key's position
 * and length (-1: none), the value's length, the absolute offset. */
typedef struct {
    Py_ssize_t key_pos;
    int64_t key_length;
    int64_t value_length;
    int64_t offset;
} record_key;

static int
read_record_key(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *pos, Py_ssize_t index,
                int64_t base_offset, record_key *r)
{
    record_head h;
    if (read_head(buf, end, *pos, index, &h) < 0)
        return -1;
    Py_ssize_t p = h.pos;
    if (read_varint(buf, h.record_end, &p, &r->key_length) < 0 || r->key_length < -1
        || r->key_length > h.record_end - p) {
        corrupt("bad key length", index);
        return -1;
    }
    r->key_pos = p;
    if (r->key_length > 0)
        p += (Py_ssize_t)r->key_length;
    if (read_varint(buf, h.record_end, &p, &r->value_length) < 0 || r->value_length < -1
        || r->value_length > h.record_end - p) {
        corrupt("bad value length", index);
        return -1;
    }
    /* wraps instead of overflowing on hostile deltas (the batch is judged as a whole) */
    r->offset = (int64_t)((uint64_t)base_offset + (uint64_t)h.offset_delta);
    *pos = h.record_end;
    return 0;
}

static PyObject *
table_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Py_ssize_t capacity;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "nK", &capacity, &seed))
        return NULL;
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "capacity must be positive");
        return NULL;
    }
    OffsetTable *t = (OffsetTable *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    t->slots = new_slots(TABLE_MIN_SLOTS);
    if (t->slots == NULL) {
        Py_DECREF(t);
        return PyErr_NoMemory();
    }
    t->mask = TABLE_MIN_SLOTS - 1;
    t->size = 0;
    t->capacity = capacity;
    t->seed = (uint64_t)seed;
    return (PyObject *)t;
}

static void
table_dealloc(OffsetTable *t)
{
    PyMem_Free(t->slots);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static Py_ssize_t
table_len(OffsetTable *t)
{
    return t->size;
}

static PyObject *
table_get(OffsetTable *t, PyObject *obj)
{
    name_t n;
    if (name_arg(&n, obj) < 0)
        return NULL;
    return PyLong_FromLongLong((long long)t->slots[slot_of(t, &n)].offset);
}

static PyObject *
table_put(OffsetTable *t, PyObject *args)
{
    PyObject *obj;
    long long offset;
    name_t n;
    if (!PyArg_ParseTuple(args, "OL", &obj, &offset) || name_arg(&n, obj) < 0)
        return NULL;
    if (offset < 0) {
        PyErr_SetString(PyExc_ValueError, "offsets are not negative");
        return NULL;
    }
    Py_ssize_t i = slot_of(t, &n);
    if (t->slots[i].offset < 0) {
        if (t->size >= t->capacity) {
            PyErr_SetString(PyExc_OverflowError, "offset map is full");
            return NULL;
        }
        if (table_reserve(t, 1) < 0)
            return NULL;
        i = slot_of(t, &n);
        t->size++;
    }
    t->slots[i] = (slot_t){n.a, n.b, offset, n.length};
    Py_RETURN_NONE;
}

static PyObject *
table_clear(OffsetTable *t, PyObject *unused)
{
    slot_t *slots = new_slots(TABLE_MIN_SLOTS);
    if (slots == NULL)
        return PyErr_NoMemory();
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = TABLE_MIN_SLOTS - 1;
    t->size = 0;
    Py_RETURN_NONE;
}

typedef struct {
    Py_ssize_t slot;
    int64_t previous;  /* the slot's offset before (-1: the key was new) */
} undo_t;

/* Parse every record of a section: the keyed ones (at or past ``min_offset``) named,
 * hashed and their home slots prefetched into ``keyed`` (room for ``count``),
 * ``*n_keyed`` of them; ``tomb`` (NULL: not wanted) gets 1 per record without a
 * value.  Nothing is read past the section.  0, or -1 with an exception. */
static int
collect_keyed(const OffsetTable *t, const unsigned char *buf, Py_ssize_t end,
              Py_ssize_t count, int64_t base_offset, int64_t min_offset,
              PyObject *long_digest, keyed_t *keyed, Py_ssize_t *n_keyed, char *tomb)
{
    Py_ssize_t pos = 0, n = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        record_key r;
        if (read_record_key(buf, end, &pos, i, base_offset, &r) < 0)
            return -1;
        if (tomb != NULL)
            tomb[i] = r.value_length < 0;
        if (r.key_length < 0 || r.offset < min_offset)
            continue;
        keyed_t *k = &keyed[n++];
        if (key_name(&k->name, buf + r.key_pos, (Py_ssize_t)r.key_length, long_digest) < 0)
            return -1;
        k->hash = hash_of(t, &k->name);
        k->offset = r.offset;
        k->index = i;
        PREFETCH(&t->slots[k->hash & (uint64_t)t->mask]);
    }
    if (pos != end) {
        corrupt("bytes left after the records", count);
        return -1;
    }
    *n_keyed = n;
    return 0;
}

static keyed_t *
new_keyed(Py_ssize_t count)
{
    if ((size_t)count > PY_SSIZE_T_MAX / sizeof(keyed_t) - 1)
        return NULL;
    return PyMem_Malloc((size_t)(count + 1) * sizeof(keyed_t));
}

static PyObject *
table_map_section(OffsetTable *t, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t count;
    long long base_offset, start_offset;
    PyObject *long_digest;
    if (!PyArg_ParseTuple(args, "y*nLLO", &view, &count, &base_offset, &start_offset,
                          &long_digest))
        return NULL;
    PyObject *result = NULL;
    keyed_t *keyed = NULL;
    undo_t *undo = NULL;
    Py_ssize_t n_keyed = 0;
    if (count < 0 || count > view.len) {
        corrupt("record count does not fit the batch", 0);
        goto out;
    }
    if (start_offset < 0)
        start_offset = 0; /* a negative offset (a hostile batch) would read as "empty" */
    /* no rehash below: the hashes' slots and the slot numbers in ``undo`` stay valid */
    if (table_reserve(t, count) < 0)
        goto out;
    keyed = new_keyed(count);
    undo = PyMem_Malloc((size_t)(count + 1) * sizeof(undo_t));
    if (keyed == NULL || undo == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    if (collect_keyed(t, (const unsigned char *)view.buf, view.len, count, base_offset,
                      start_offset, long_digest, keyed, &n_keyed, NULL) < 0)
        goto out;
    Py_ssize_t size_before = t->size;
    for (Py_ssize_t i = 0; i < n_keyed; i++) {
        const keyed_t *k = &keyed[i];
        Py_ssize_t s = probe(t, &k->name, k->hash);
        undo[i] = (undo_t){s, t->slots[s].offset};
        if (t->slots[s].offset < 0)
            t->size++;
        t->slots[s] = (slot_t){k->name.a, k->name.b, k->offset, k->name.length};
    }
    if (t->size <= t->capacity) {
        result = Py_NewRef(Py_True);
        goto out;
    }
    /* too many new keys: undo, newest first (each insertion only filled a slot that
     * was empty before it, so the probe chains come back as they were) */
    for (Py_ssize_t i = n_keyed - 1; i >= 0; i--)
        t->slots[undo[i].slot].offset = undo[i].previous;
    t->size = size_before;
    result = Py_NewRef(Py_False);
out:
    PyMem_Free(keyed);
    PyMem_Free(undo);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
table_judge(OffsetTable *t, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t count;
    long long base_offset;
    PyObject *long_digest;
    if (!PyArg_ParseTuple(args, "y*nLO", &view, &count, &base_offset, &long_digest))
        return NULL;
    PyObject *keeps = NULL, *tombs = NULL, *result = NULL;
    keyed_t *keyed = NULL;
    Py_ssize_t n_keyed = 0;
    if (count < 0 || count > view.len) {
        corrupt("record count does not fit the batch", 0);
        goto out;
    }
    keeps = PyBytes_FromStringAndSize(NULL, count);
    tombs = PyBytes_FromStringAndSize(NULL, count);
    keyed = new_keyed(count);
    if (keeps == NULL || tombs == NULL || keyed == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto out;
    }
    char *keep = PyBytes_AS_STRING(keeps);
    memset(keep, 0, (size_t)count); /* no key: dropped */
    if (collect_keyed(t, (const unsigned char *)view.buf, view.len, count, base_offset,
                      INT64_MIN, long_digest, keyed, &n_keyed, PyBytes_AS_STRING(tombs)) < 0)
        goto out;
    for (Py_ssize_t i = 0; i < n_keyed; i++) {
        const keyed_t *k = &keyed[i];
        int64_t latest = t->slots[probe(t, &k->name, k->hash)].offset;
        keep[k->index] = latest < 0 || latest <= k->offset; /* absent (-1): kept */
    }
    result = PyTuple_Pack(2, keeps, tombs);
out:
    PyMem_Free(keyed);
    Py_XDECREF(keeps);
    Py_XDECREF(tombs);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef table_methods[] = {
    {"get", (PyCFunction)table_get, METH_O, "The name's latest offset, -1 if absent."},
    {"put", (PyCFunction)table_put, METH_VARARGS, "name -> offset."},
    {"clear", (PyCFunction)table_clear, METH_NOARGS, "Remove every key."},
    {"map_section", (PyCFunction)table_map_section, METH_VARARGS, "Map a records section."},
    {"judge", (PyCFunction)table_judge, METH_VARARGS, "(keep, tombstones) of a section."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods table_as_sequence = {
    .sq_length = (lenfunc)table_len,
};

static PyTypeObject OffsetTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kbroker.log._cleaner_scan.OffsetTable",
    .tp_basicsize = sizeof(OffsetTable),
    .tp_dealloc = (destructor)table_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Key name -> latest offset, bounded (the cleaner's offset map).",
    .tp_methods = table_methods,
    .tp_as_sequence = &table_as_sequence,
    .tp_new = table_new,
};

static PyMethodDef methods[] = {
    {"scan_keys", scan_keys, METH_VARARGS, "Offsets, key digests and tombstone flags."},
    {"filter_records", filter_records, METH_VARARGS, "The kept records, re-based."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cleaner_scan", "The log cleaner's record loops.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cleaner_scan(void)
{
    if (PyType_Ready(&OffsetTableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "OffsetTable", (PyObject *)&OffsetTableType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
