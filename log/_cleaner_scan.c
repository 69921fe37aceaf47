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
    return PyModule_Create(&module);
}
