/*
 * convert.c: Erlang terms to Python objects and back, as the type table in
 * docs/types.md describes.
 *
 * Both directions are lossless where the table says so (integers of any
 * size, atoms, non-UTF-8 binaries) and refuse what they cannot represent
 * with a TypeError or ValueError that names the type and the place in the
 * value ("at args[0]['key']"), never a substitute value.
 *
 * Every function is given the conversion's struct pyerl_conv: the context
 * whose types (erlang.Atom, Pid, Ref) it makes and recognises, and the
 * call's large binaries (buffers.h) and references (objref.h).
 *
 * A reference to a Python object (objref.c) becomes the object itself, if
 * it is an object of the conversion's context and has not been released.
 * The other way, erlang.ref(obj) becomes a new reference to obj, and an
 * object with no Erlang form becomes the reference it came as in the
 * call's arguments, if it came as one. A channel (channel.c) becomes an
 * erlang.Channel holding it, and an erlang.Channel the channel's term.
 *
 * A binary becomes str when it is UTF-8 text, else bytes. Wrapped as
 * {'$py_bytes', Bin} (py:bytes/1, and py.erl's binary => bytes) it is
 * bytes, and as {'$py_str', Bin} (binary => str) str or an error; with
 * set_bytes_tuples(true) (the application's bytes_tuples) a {bytes, Bin}
 * tuple is bytes too, as the reference system has it.
 *
 * None becomes the atom set_none_atom/1 chose (none, nil or undefined; py.erl
 * sets it from the application's none_atom), each of which becomes None.
 *
 * Recursion is bounded by PYERL_MAX_DEPTH. Each level keeps a small `struct
 * path` on the stack pointing at its parent, so the place of an error can be
 * written out without any cost to conversions that succeed.
 *
 * Integers beyond 64 bits travel through the external term format: ERTS has
 * no NIF call that makes or reads a bignum, but enif_term_to_binary and
 * enif_binary_to_term do, and Python's int.to_bytes/from_bytes speak the same
 * little-endian magnitude.
 */
#include "convert.h"

#include "atoms.h"
#include "buffers.h"
#include "channel.h"
#include "context.h"
#include "erts_access.h"
#include "errors.h"
#include "module_state.h"
#include "objref.h"
#include "utf8.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define EXT_VERSION 131
#define EXT_SMALL_BIG 110
#define EXT_LARGE_BIG 111
#define EXT_ATOM_UTF8 118
#define EXT_SMALL_ATOM_UTF8 119
#define MAX_ATOM_CHARS 255
#define ATOM_UTF8_MAX (MAX_ATOM_CHARS * 4)
#define SMALL_ARRAY 16

/* ---- where in a value we are, for error messages --------------------- */

enum path_kind { PATH_ROOT, PATH_INDEX, PATH_TERM_KEY, PATH_PY_KEY, PATH_KEY_ITSELF };

struct path {
    const struct path *up;
    enum path_kind kind;
    const char *root;  /* PATH_ROOT */
    Py_ssize_t index;  /* PATH_INDEX */
    ErlNifEnv *env;    /* PATH_TERM_KEY */
    ERL_NIF_TERM term; /* PATH_TERM_KEY */
    PyObject *py;      /* PATH_PY_KEY, borrowed */
};

static size_t
format_step(const struct path *p, char *buf, size_t size)
{
    char key[48];
    PyObject *repr;
    int n = 0;

    switch (p->kind) {
    case PATH_ROOT:
        n = snprintf(buf, size, "%s", p->root);
        break;
    case PATH_INDEX:
        n = snprintf(buf, size, "[%zd]", p->index);
        break;
    case PATH_TERM_KEY:
        enif_snprintf(key, sizeof key, "%T", p->term);
        n = snprintf(buf, size, "[%s]", key);
        break;
    case PATH_PY_KEY:
        repr = PyObject_Repr(p->py);
        if (repr && PyUnicode_AsUTF8(repr)) {
            n = snprintf(buf, size, "[%.40s]", PyUnicode_AsUTF8(repr));
        } else {
            n = snprintf(buf, size, "[<%s key>]", Py_TYPE(p->py)->tp_name);
        }
        Py_XDECREF(repr);
        PyErr_Clear();
        break;
    case PATH_KEY_ITSELF:
        n = snprintf(buf, size, " (a key)");
        break;
    }
    return n < 0 ? 0 : ((size_t)n >= size ? size - 1 : (size_t)n);
}

static void
format_path(const struct path *p, char *buf, size_t size)
{
    const struct path *steps[PYERL_MAX_DEPTH * 2 + 4];
    size_t count = 0, used = 0;

    for (; p && count < sizeof steps / sizeof steps[0]; p = p->up) {
        steps[count++] = p;
    }
    buf[0] = '\0';
    while (count > 0 && used + 1 < size) {
        used += format_step(steps[--count], buf + used, size - used);
    }
}

/* Raises exc_type with the message and the place; returns NULL/0 for the
 * caller to pass on. */
static void
fail_at(PyObject *exc_type, const struct path *p, const char *fmt, ...)
{
    char message[256], where[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    format_path(p, where, sizeof where);
    PyErr_Format(exc_type, "%s (at %s)", message, where);
}

/* Replaces the pending Python exception by one that also gives the place. */
static void
refail_at(const struct path *p, const char *what)
{
    PyObject *exc = pyerl_take_exception();
    PyObject *text = exc ? PyObject_Str(exc) : NULL;
    PyObject *type = exc ? (PyObject *)Py_TYPE(exc) : PyExc_ValueError;

    PyErr_Clear();
    /* Unicode errors cannot be made from a message alone. */
    if (PyObject_IsSubclass(type, PyExc_UnicodeError) == 1) {
        type = PyExc_ValueError;
    }
    fail_at(type, p, "%s: %s", what, text && PyUnicode_AsUTF8(text) ? PyUnicode_AsUTF8(text) : "?");
    Py_XDECREF(text);
    Py_XDECREF(exc);
}

/* ---- atoms ------------------------------------------------------------ */

/* UTF-8 text of an atom into buf (at least ATOM_UTF8_MAX + 1 bytes), NUL
 * terminated; returns its length or -1. An atom may hold NUL characters:
 * they are kept, so the length is the only end to trust. */
static Py_ssize_t
atom_utf8(ErlNifEnv *env, ERL_NIF_TERM atom, char *buf, size_t size)
{
    unsigned char latin1[MAX_ATOM_CHARS + 1];
    ErlNifBinary ext;
    size_t len, used = 0, i;
    const unsigned char *text;
    int got = enif_get_atom(env, atom, (char *)latin1, sizeof latin1, ERL_NIF_LATIN1);

    if (got > 0) {
        for (i = 0; i + 1 < (size_t)got && used + 3 <= size; i++) {
            if (latin1[i] < 0x80) {
                buf[used++] = (char)latin1[i];
            } else {
                buf[used++] = (char)(0xC0 | (latin1[i] >> 6));
                buf[used++] = (char)(0x80 | (latin1[i] & 0x3F));
            }
        }
        buf[used] = '\0';
        return (Py_ssize_t)used;
    }
    /* Not Latin-1: read the UTF-8 name from the external format. */
    if (!enif_is_atom(env, atom) || !enif_term_to_binary(env, atom, &ext)) {
        return -1;
    }
    if (ext.size >= 3 && ext.data[1] == EXT_SMALL_ATOM_UTF8) {
        len = ext.data[2];
        text = ext.data + 3;
    } else if (ext.size >= 4 && ext.data[1] == EXT_ATOM_UTF8) {
        len = ((size_t)ext.data[2] << 8) | ext.data[3];
        text = ext.data + 4;
    } else {
        enif_release_binary(&ext);
        return -1;
    }
    if (len + 1 > size) {
        enif_release_binary(&ext);
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    enif_release_binary(&ext);
    return (Py_ssize_t)len;
}

Py_ssize_t
pyerl_name_text(ErlNifEnv *env, ERL_NIF_TERM term, char *buf, size_t size)
{
    ErlNifBinary bin;
    Py_ssize_t len;

    if (enif_is_atom(env, term)) {
        len = atom_utf8(env, term, buf, size);
        return len < 0 || memchr(buf, '\0', (size_t)len) ? -1 : len;
    }
    if (!pyerl_inspect_binary(env, term, &bin) || bin.size + 1 > size ||
        memchr(bin.data, '\0', bin.size)) {
        return -1;
    }
    memcpy(buf, bin.data, bin.size);
    buf[bin.size] = '\0';
    return (Py_ssize_t)bin.size;
}

/* What None becomes: an atom, set while calls may be converting. */
static _Atomic ERL_NIF_TERM none_atom;
/* Whether {bytes, Bin} is bytes; set likewise. */
static atomic_int bytes_tuples;
/* The markers' atoms: made at load, atoms live for ever. */
static ERL_NIF_TERM bytes_marker, str_marker;

ERL_NIF_TERM
pyerl_nif_set_bytes_tuples(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    if (argv[0] != ATOM(true) && argv[0] != ATOM(false)) {
        return enif_make_badarg(env);
    }
    atomic_store_explicit(&bytes_tuples, argv[0] == ATOM(true), memory_order_relaxed);
    return ATOM(ok);
}

ERL_NIF_TERM
pyerl_nif_set_none_atom(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    if (argv[0] != ATOM(none) && argv[0] != ATOM(nil) && argv[0] != ATOM(undefined)) {
        return enif_make_badarg(env);
    }
    atomic_store_explicit(&none_atom, argv[0], memory_order_relaxed);
    return ATOM(ok);
}

void
pyerl_convert_init(ErlNifEnv *env)
{
    /* Once: a reload of the library keeps what was set. */
    ERL_NIF_TERM unset = 0;

    atomic_compare_exchange_strong(&none_atom, &unset, ATOM(none));
    bytes_marker = enif_make_atom(env, "$py_bytes");
    str_marker = enif_make_atom(env, "$py_str");
}

static PyObject *
atom_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM atom)
{
    char text[ATOM_UTF8_MAX + 1];
    Py_ssize_t len;

    if (atom == ATOM(true)) {
        Py_RETURN_TRUE;
    }
    if (atom == ATOM(false)) {
        Py_RETURN_FALSE;
    }
    if (atom == ATOM(none) || atom == ATOM(undefined) || atom == ATOM(nil)) {
        Py_RETURN_NONE;
    }
    /* The floats Erlang has no form for travel as these atoms, both ways. */
    if (atom == ATOM(nan)) {
        return PyFloat_FromDouble(NAN);
    }
    if (atom == ATOM(infinity) || atom == ATOM(neg_infinity)) {
        return PyFloat_FromDouble(atom == ATOM(infinity) ? INFINITY : -INFINITY);
    }
    len = atom_utf8(env, atom, text, sizeof text);
    if (len < 0) {
        PyErr_SetString(PyExc_SystemError, "unreadable atom");
        return NULL;
    }
    return pyerl_atom_from_utf8(cv->ctx->state, text, len);
}

static int
atom_to_term(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out, const struct path *p)
{
    Py_ssize_t chars = PyUnicode_GET_LENGTH(obj), len;
    unsigned char ext[4 + ATOM_UTF8_MAX];
    const char *utf8;

    if (chars > MAX_ATOM_CHARS) {
        fail_at(PyExc_ValueError, p, "atom name of %zd characters is longer than 255", chars);
        return 0;
    }
    if (PyUnicode_KIND(obj) == PyUnicode_1BYTE_KIND) {
        *out = enif_make_atom_len(env, (const char *)PyUnicode_1BYTE_DATA(obj), (size_t)chars);
        return 1;
    }
    utf8 = PyUnicode_AsUTF8AndSize(obj, &len);
    if (!utf8) {
        refail_at(p, "atom name is not valid UTF-8");
        return 0;
    }
    ext[0] = EXT_VERSION;
    ext[1] = EXT_ATOM_UTF8;
    ext[2] = (unsigned char)(len >> 8);
    ext[3] = (unsigned char)(len & 0xFF);
    memcpy(ext + 4, utf8, (size_t)len);
    if (!enif_binary_to_term(env, ext, 4 + (size_t)len, out, 0)) {
        fail_at(PyExc_ValueError, p, "cannot make an atom of this name");
        return 0;
    }
    return 1;
}

/* ---- integers --------------------------------------------------------- */

static PyObject *
bignum_to_py(ErlNifEnv *env, ERL_NIF_TERM term)
{
    ErlNifBinary ext;
    size_t n, head;
    int negative;
    PyObject *magnitude = NULL, *value = NULL, *result = NULL;

    if (!enif_term_to_binary(env, term, &ext)) {
        return PyErr_NoMemory();
    }
    if (ext.size >= 4 && ext.data[1] == EXT_SMALL_BIG) {
        n = ext.data[2];
        head = 3;
    } else if (ext.size >= 7 && ext.data[1] == EXT_LARGE_BIG) {
        n = ((size_t)ext.data[2] << 24) | ((size_t)ext.data[3] << 16) | ((size_t)ext.data[4] << 8) |
            ext.data[5];
        head = 6;
    } else {
        PyErr_SetString(PyExc_SystemError, "unexpected integer encoding");
        goto done;
    }
    negative = ext.data[head];
    magnitude = PyBytes_FromStringAndSize((const char *)ext.data + head + 1, (Py_ssize_t)n);
    if (!magnitude) {
        goto done;
    }
    value = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "Os", magnitude, "little");
    if (value) {
        result = negative ? PyNumber_Negative(value) : Py_NewRef(value);
    }
done:
    enif_release_binary(&ext);
    Py_XDECREF(magnitude);
    Py_XDECREF(value);
    return result;
}

static PyObject *
integer_to_py(ErlNifEnv *env, ERL_NIF_TERM term)
{
    ErlNifSInt64 i;
    ErlNifUInt64 u;

    if (enif_get_int64(env, term, &i)) {
        return PyLong_FromLongLong((long long)i);
    }
    if (enif_get_uint64(env, term, &u)) {
        return PyLong_FromUnsignedLongLong((unsigned long long)u);
    }
    return bignum_to_py(env, term);
}

static int
bignum_to_term(ErlNifEnv *env, PyObject *value, ERL_NIF_TERM *out, const struct path *p)
{
    PyObject *zero = PyLong_FromLong(0), *magnitude = NULL, *bits = NULL, *bytes = NULL;
    unsigned char *ext = NULL;
    size_t n, head;
    int negative = zero ? PyObject_RichCompareBool(value, zero, Py_LT) : -1;
    int ok = 0;

    if (negative < 0 || !(magnitude = PyNumber_Absolute(value)) ||
        !(bits = PyObject_CallMethod(magnitude, "bit_length", NULL))) {
        goto done;
    }
    n = (PyLong_AsSize_t(bits) + 7) / 8;
    if (PyErr_Occurred()) {
        goto done;
    }
    if (n > UINT32_MAX ||
        !(bytes = PyObject_CallMethod(magnitude, "to_bytes", "ns", (Py_ssize_t)n, "little"))) {
        fail_at(PyExc_ValueError, p, "integer is too large for Erlang");
        goto done;
    }
    head = n <= 255 ? 3 : 6;
    ext = enif_alloc(head + 1 + n);
    if (!ext) {
        PyErr_NoMemory();
        goto done;
    }
    ext[0] = EXT_VERSION;
    if (n <= 255) {
        ext[1] = EXT_SMALL_BIG;
        ext[2] = (unsigned char)n;
    } else {
        ext[1] = EXT_LARGE_BIG;
        ext[2] = (unsigned char)(n >> 24);
        ext[3] = (unsigned char)(n >> 16);
        ext[4] = (unsigned char)(n >> 8);
        ext[5] = (unsigned char)n;
    }
    ext[head] = (unsigned char)negative;
    memcpy(ext + head + 1, PyBytes_AS_STRING(bytes), n);
    if (!enif_binary_to_term(env, ext, head + 1 + n, out, 0)) {
        fail_at(PyExc_ValueError, p, "integer of %zu bytes is too large for Erlang", n);
        goto done;
    }
    ok = 1;
done:
    enif_free(ext);
    Py_XDECREF(zero);
    Py_XDECREF(magnitude);
    Py_XDECREF(bits);
    Py_XDECREF(bytes);
    return ok;
}

static int
int_to_term(ErlNifEnv *env, PyObject *value, ERL_NIF_TERM *out, const struct path *p)
{
    int overflow;
    long long i = PyLong_AsLongLongAndOverflow(value, &overflow);
    unsigned long long u;

    if (!overflow) {
        if (i == -1 && PyErr_Occurred()) {
            return 0;
        }
        *out = enif_make_int64(env, (ErlNifSInt64)i);
        return 1;
    }
    if (overflow > 0) {
        u = PyLong_AsUnsignedLongLong(value);
        if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
            *out = enif_make_uint64(env, (ErlNifUInt64)u);
            return 1;
        }
        PyErr_Clear();
    }
    return bignum_to_term(env, value, out, p);
}

/* ---- Erlang to Python ------------------------------------------------- */

static PyObject *term_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term,
                            const struct path *p, int depth);

/* What a binary becomes: str if it is UTF-8 text, else bytes (AS_TEXT_OR_BYTES);
 * bytes (AS_BYTES); str, or an error (AS_TEXT). */
enum binary_as { AS_TEXT_OR_BYTES, AS_BYTES, AS_TEXT };

static PyObject *
binary_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term, const struct path *p,
             enum binary_as as)
{
    ErlNifBinary bin;
    PyObject *obj;
    size_t ascii;

    if (!pyerl_inspect_binary(env, term, &bin)) {
        fail_at(PyExc_TypeError, p, "a bitstring whose size is not whole bytes has no Python form");
        return NULL;
    }
    if (as == AS_BYTES) {
        obj = PyBytes_FromStringAndSize((const char *)bin.data, (Py_ssize_t)bin.size);
    } else if ((ascii = pyerl_ascii_prefix(bin.data, bin.size)) == bin.size) {
        /* What the decoder would do, without reading the text again. */
        if ((obj = PyUnicode_New((Py_ssize_t)bin.size, 127))) {
            memcpy(PyUnicode_DATA(obj), bin.data, bin.size);
        }
    } else if (pyerl_utf8_valid(bin.data + ascii, bin.size - ascii)) {
        obj = PyUnicode_DecodeUTF8((const char *)bin.data, (Py_ssize_t)bin.size, "strict");
    } else if (as == AS_TEXT) {
        fail_at(PyExc_ValueError, p, "a binary that is not UTF-8 text cannot be a str");
        return NULL;
    } else {
        obj = PyBytes_FromStringAndSize((const char *)bin.data, (Py_ssize_t)bin.size);
    }
    if (obj && cv->large) {
        pyerl_large_args_note(cv->large, env, term, bin.size, obj);
    }
    return obj;
}

/* A proper list to a new list, or a new tuple when as_tuple is set. */
static PyObject *
sequence_from_list(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term,
                   const struct path *p, int depth, int as_tuple)
{
    unsigned length;
    ERL_NIF_TERM head;
    struct path step = {.up = p, .kind = PATH_INDEX};
    PyObject *sequence, *item;

    if (!enif_get_list_length(env, term, &length)) {
        fail_at(PyExc_TypeError, p, "an improper list has no Python form");
        return NULL;
    }
    sequence = as_tuple ? PyTuple_New(length) : PyList_New(length);
    if (!sequence) {
        return NULL;
    }
    for (step.index = 0; enif_get_list_cell(env, term, &head, &term); step.index++) {
        item = term_to_py(cv, env, head, &step, depth + 1);
        if (!item) {
            Py_DECREF(sequence);
            return NULL;
        }
        if (as_tuple) {
            PyTuple_SET_ITEM(sequence, step.index, item);
        } else {
            PyList_SET_ITEM(sequence, step.index, item);
        }
    }
    return sequence;
}

static PyObject *
tuple_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term, const struct path *p,
            int depth)
{
    int arity;
    const ERL_NIF_TERM *elements;
    struct path step = {.up = p, .kind = PATH_INDEX};
    PyObject *tuple, *item;

    pyerl_get_tuple(env, term, &arity, &elements);
    if (arity == 2 && enif_is_binary(env, elements[1])) {
        if (elements[0] == bytes_marker ||
            (elements[0] == ATOM(bytes) &&
             atomic_load_explicit(&bytes_tuples, memory_order_relaxed))) {
            return binary_to_py(cv, env, elements[1], p, AS_BYTES);
        }
        if (elements[0] == str_marker) {
            return binary_to_py(cv, env, elements[1], p, AS_TEXT);
        }
    }
    tuple = PyTuple_New(arity);
    if (!tuple) {
        return NULL;
    }
    for (step.index = 0; step.index < arity; step.index++) {
        item = term_to_py(cv, env, elements[step.index], &step, depth + 1);
        if (!item) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, step.index, item);
    }
    return tuple;
}

/* Stores key: value in dict, refusing keys Python cannot hash and keys that
 * Python holds equal although Erlang does not (1 and 1.0, 1 and true). */
static int
dict_put_new(PyObject *dict, PyObject *key, PyObject *value, const struct path *p)
{
    Py_ssize_t before = PyDict_GET_SIZE(dict);

    if (PyObject_Hash(key) == -1) {
        PyErr_Clear();
        fail_at(PyExc_TypeError, p, "a map key that becomes a Python %s cannot be a dict key",
                Py_TYPE(key)->tp_name);
        return -1;
    }
    if (PyDict_SetItem(dict, key, value) < 0) {
        return -1;
    }
    if (PyDict_GET_SIZE(dict) == before) {
        fail_at(PyExc_ValueError, p, "two keys of the map are one key in Python");
        return -1;
    }
    return 0;
}

static PyObject *
map_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term, const struct path *p,
          int depth)
{
    ErlNifMapIterator iter;
    ERL_NIF_TERM key_term, value_term;
    struct path key_step = {.up = p, .kind = PATH_KEY_ITSELF};
    struct path value_step = {.up = p, .kind = PATH_TERM_KEY, .env = env};
    PyObject *dict = PyDict_New(), *key = NULL, *value = NULL;

    if (!dict || !enif_map_iterator_create(env, term, &iter, ERL_NIF_MAP_ITERATOR_FIRST)) {
        Py_XDECREF(dict);
        return NULL;
    }
    while (enif_map_iterator_get_pair(env, &iter, &key_term, &value_term)) {
        value_step.term = key_term;
        key = term_to_py(cv, env, key_term, &key_step, depth + 1);
        value = key ? term_to_py(cv, env, value_term, &value_step, depth + 1) : NULL;
        if (!value || dict_put_new(dict, key, value, &value_step) < 0) {
            Py_CLEAR(dict);
            break;
        }
        Py_CLEAR(key);
        Py_CLEAR(value);
        enif_map_iterator_next(env, &iter);
    }
    Py_XDECREF(key);
    Py_XDECREF(value);
    enif_map_iterator_destroy(env, &iter);
    return dict;
}

/* A reference: the object of a reference, an erlang.Channel, or an
 * erlang.Ref. */
static PyObject *
reference_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term,
                const struct path *p)
{
    struct pyerl_objref *ref = pyerl_objref_get(env, term);
    struct pyerl_channel *channel;
    PyObject *obj;

    if (!ref) {
        return (channel = pyerl_channel_get(env, term))
                   ? pyerl_channel_object_new(cv->ctx->state->channel_type, channel)
                   : pyerl_opaque_from_term(cv->ctx->state->ref_type, env, term);
    }
    if (pyerl_objref_ctx(ref) != cv->ctx) {
        fail_at(PyExc_ValueError, p, "a reference to an object of another Python context");
        return NULL;
    }
    if (!(obj = pyerl_objref_object(ref))) {
        fail_at(PyExc_ValueError, p, "a reference whose object was released");
        return NULL;
    }
    if (cv->refs && !pyerl_ref_args_note(cv->refs, term, obj)) {
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

static PyObject *
term_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term, const struct path *p,
           int depth)
{
    double d;

    if (depth > PYERL_MAX_DEPTH) {
        fail_at(PyExc_ValueError, p, "value nested deeper than %d levels", PYERL_MAX_DEPTH);
        return NULL;
    }
    switch (enif_term_type(env, term)) {
    case ERL_NIF_TERM_TYPE_ATOM:
        return atom_to_py(cv, env, term);
    case ERL_NIF_TERM_TYPE_BITSTRING:
        return binary_to_py(cv, env, term, p, AS_TEXT_OR_BYTES);
    case ERL_NIF_TERM_TYPE_FLOAT:
        enif_get_double(env, term, &d);
        return PyFloat_FromDouble(d);
    case ERL_NIF_TERM_TYPE_INTEGER:
        return integer_to_py(env, term);
    case ERL_NIF_TERM_TYPE_LIST:
        return sequence_from_list(cv, env, term, p, depth, 0);
    case ERL_NIF_TERM_TYPE_MAP:
        return map_to_py(cv, env, term, p, depth);
    case ERL_NIF_TERM_TYPE_TUPLE:
        return tuple_to_py(cv, env, term, p, depth);
    case ERL_NIF_TERM_TYPE_PID:
        return pyerl_opaque_from_term(cv->ctx->state->pid_type, env, term);
    case ERL_NIF_TERM_TYPE_REFERENCE:
        return reference_to_py(cv, env, term, p);
    case ERL_NIF_TERM_TYPE_FUN:
        fail_at(PyExc_TypeError, p, "an Erlang fun has no Python form");
        return NULL;
    case ERL_NIF_TERM_TYPE_PORT:
        fail_at(PyExc_TypeError, p, "an Erlang port has no Python form");
        return NULL;
    default:
        fail_at(PyExc_TypeError, p, "this Erlang term has no Python form");
        return NULL;
    }
}

PyObject *
pyerl_term_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term, const char *where)
{
    struct path root = {.kind = PATH_ROOT, .root = where};

    return term_to_py(cv, env, term, &root, 0);
}

PyObject *
pyerl_args_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM list, const char *where)
{
    struct path root = {.kind = PATH_ROOT, .root = where};

    return sequence_from_list(cv, env, list, &root, 0, 1);
}

PyObject *
pyerl_kwargs_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM map, const char *where)
{
    ErlNifMapIterator iter;
    ERL_NIF_TERM key_term, value_term;
    struct path root = {.kind = PATH_ROOT, .root = where};
    struct path step = {.up = &root, .kind = PATH_TERM_KEY, .env = env};
    char name[ATOM_UTF8_MAX + 1];
    Py_ssize_t len;
    PyObject *kwargs = PyDict_New(), *value;
    int ok = 1;

    if (!kwargs || !enif_map_iterator_create(env, map, &iter, ERL_NIF_MAP_ITERATOR_FIRST)) {
        Py_XDECREF(kwargs);
        return NULL;
    }
    while (ok && enif_map_iterator_get_pair(env, &iter, &key_term, &value_term)) {
        step.term = key_term;
        len = pyerl_name_text(env, key_term, name, sizeof name);
        if (len < 0) {
            fail_at(PyExc_TypeError, &step, "names must be atoms or binaries");
            ok = 0;
            break;
        }
        value = term_to_py(cv, env, value_term, &step, 1);
        ok = value && PyDict_SetItemString(kwargs, name, value) == 0;
        Py_XDECREF(value);
        enif_map_iterator_next(env, &iter);
    }
    enif_map_iterator_destroy(env, &iter);
    if (!ok) {
        Py_CLEAR(kwargs);
    }
    return kwargs;
}

/* ---- Python to Erlang ------------------------------------------------- */

static int py_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out,
                      const struct path *p, int depth);

static int
str_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out,
            const struct path *p)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(obj, &size);

    if (!utf8) {
        refail_at(p, "str is not valid UTF-8");
        return 0;
    }
    return pyerl_buffer_to_term(cv->ctx, cv->large, env, obj, utf8, size, out);
}

/* Converts count items into an Erlang list or tuple. */
static int
items_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *const *items, Py_ssize_t count,
              int as_tuple, ERL_NIF_TERM *out, const struct path *p, int depth)
{
    ERL_NIF_TERM small[SMALL_ARRAY], *terms = small;
    struct path step = {.up = p, .kind = PATH_INDEX};
    int ok = 1;

    if (count > SMALL_ARRAY && !(terms = enif_alloc(sizeof(ERL_NIF_TERM) * (size_t)count))) {
        PyErr_NoMemory();
        return 0;
    }
    for (step.index = 0; ok && step.index < count; step.index++) {
        ok = py_to_term(cv, env, items[step.index], &terms[step.index], &step, depth + 1);
    }
    if (ok) {
        *out = as_tuple ? enif_make_tuple_from_array(env, terms, (unsigned)count)
                        : enif_make_list_from_array(env, terms, (unsigned)count);
    }
    if (terms != small) {
        enif_free(terms);
    }
    return ok;
}

/* Lists, tuples and sets. PySequence_Fast holds its own references to the
 * items, so code run during conversion (__index__, tolist) cannot free them
 * under us even if it changes the container. */
static int
sequence_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, int as_tuple,
                 ERL_NIF_TERM *out, const struct path *p, int depth)
{
    PyObject *fast = PySequence_Fast(obj, "not iterable");
    int ok;

    if (!fast) {
        return 0;
    }
    ok = items_to_term(cv, env, PySequence_Fast_ITEMS(fast), PySequence_Fast_GET_SIZE(fast),
                       as_tuple, out, p, depth);
    Py_DECREF(fast);
    return ok;
}

static int
dict_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *dict, ERL_NIF_TERM *out,
             const struct path *p, int depth)
{
    PyObject *items = PyDict_Items(dict); /* a snapshot: safe if dict changes */
    Py_ssize_t count, i;
    ERL_NIF_TERM *keys = NULL, *values = NULL;
    struct path key_step = {.up = p, .kind = PATH_KEY_ITSELF};
    struct path value_step = {.up = p, .kind = PATH_PY_KEY};
    int ok = 0;

    if (!items) {
        return 0;
    }
    count = PyList_GET_SIZE(items);
    keys = enif_alloc(sizeof(ERL_NIF_TERM) * (size_t)(count + 1));
    values = enif_alloc(sizeof(ERL_NIF_TERM) * (size_t)(count + 1));
    if (!keys || !values) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        value_step.py = PyTuple_GET_ITEM(pair, 0);
        if (!py_to_term(cv, env, PyTuple_GET_ITEM(pair, 0), &keys[i], &key_step, depth + 1) ||
            !py_to_term(cv, env, PyTuple_GET_ITEM(pair, 1), &values[i], &value_step, depth + 1)) {
            goto done;
        }
    }
    if (!enif_make_map_from_arrays(env, keys, values, (size_t)count, out)) {
        fail_at(PyExc_ValueError, p, "two keys of the dict become the same Erlang term");
        goto done;
    }
    ok = 1;
done:
    enif_free(keys);
    enif_free(values);
    Py_DECREF(items);
    return ok;
}

/* numpy arrays and scalars have a lossless plain-Python form, .tolist(). */
static int
is_numpy(PyTypeObject *type)
{
    return strncmp(type->tp_name, "numpy.", 6) == 0;
}

static int
numpy_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out,
              const struct path *p, int depth)
{
    PyObject *plain = PyObject_CallMethod(obj, "tolist", NULL);
    int ok;

    if (!plain) {
        refail_at(p, "numpy value could not be turned into a list");
        return 0;
    }
    if (is_numpy(Py_TYPE(plain))) {
        fail_at(PyExc_TypeError, p, "Python value of type '%s' has no Erlang form",
                Py_TYPE(obj)->tp_name);
        Py_DECREF(plain);
        return 0;
    }
    ok = py_to_term(cv, env, plain, out, p, depth + 1);
    Py_DECREF(plain);
    return ok;
}

static int
index_to_term(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out, const struct path *p)
{
    PyObject *value = PyNumber_Index(obj);
    int ok;

    if (!value) {
        refail_at(p, "__index__ failed");
        return 0;
    }
    ok = int_to_term(env, value, out, p);
    Py_DECREF(value);
    return ok;
}

/* erlang.ref(obj): a new reference to obj. */
static int
object_ref_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *wrapper,
                   ERL_NIF_TERM *out, const struct path *p)
{
    PyObject *obj = pyerl_object_ref_target(wrapper);

    if (!obj) {
        fail_at(PyExc_ValueError, p, "an erlang.ref that was cleared");
        return 0;
    }
    return pyerl_objref_make(cv->ctx, env, obj, out);
}

static int
py_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out,
           const struct path *p, int depth)
{
    PyTypeObject *type = Py_TYPE(obj);
    struct pyerl_channel *channel;
    double d;

    if (depth > PYERL_MAX_DEPTH) {
        fail_at(PyExc_ValueError, p, "value nested deeper than %d levels", PYERL_MAX_DEPTH);
        return 0;
    }
    if (obj == Py_None) {
        *out = atomic_load_explicit(&none_atom, memory_order_relaxed);
        return 1;
    }
    if (PyBool_Check(obj)) {
        *out = obj == Py_True ? ATOM(true) : ATOM(false);
        return 1;
    }
    if (PyLong_Check(obj)) {
        return int_to_term(env, obj, out, p);
    }
    if (PyFloat_Check(obj)) {
        d = PyFloat_AS_DOUBLE(obj);
        *out = isfinite(d) ? enif_make_double(env, d)
               : isnan(d)  ? ATOM(nan)
               : d > 0     ? ATOM(infinity)
                           : ATOM(neg_infinity);
        return 1;
    }
    if (PyUnicode_Check(obj)) {
        return !PyUnicode_CheckExact(obj) && pyerl_is_atom(obj) ? atom_to_term(env, obj, out, p)
                                                                : str_to_term(cv, env, obj, out, p);
    }
    if (PyBytes_Check(obj)) {
        return pyerl_buffer_to_term(cv->ctx, cv->large, env, obj, PyBytes_AS_STRING(obj),
                                    PyBytes_GET_SIZE(obj), out);
    }
    if (PyByteArray_Check(obj)) {
        /* Mutable: copied. */
        return pyerl_buffer_to_term(cv->ctx, cv->large, env, NULL, PyByteArray_AS_STRING(obj),
                                    PyByteArray_GET_SIZE(obj), out);
    }
    if (PyList_Check(obj) || PyAnySet_Check(obj)) {
        return sequence_to_term(cv, env, obj, 0, out, p, depth);
    }
    if (PyTuple_Check(obj)) {
        return items_to_term(cv, env, ((PyTupleObject *)obj)->ob_item, PyTuple_GET_SIZE(obj), 1,
                             out, p, depth);
    }
    if (PyDict_Check(obj)) {
        return dict_to_term(cv, env, obj, out, p, depth);
    }
    if (pyerl_is_opaque(obj)) {
        return pyerl_opaque_to_term(env, obj, out);
    }
    if (pyerl_is_object_ref(obj)) {
        return object_ref_to_term(cv, env, obj, out, p);
    }
    if ((channel = pyerl_channel_of_object(obj))) {
        *out = pyerl_channel_term(env, channel);
        return 1;
    }
    if (is_numpy(type)) {
        return numpy_to_term(cv, env, obj, out, p, depth);
    }
    if (PyIndex_Check(obj)) {
        return index_to_term(env, obj, out, p);
    }
    if (cv->refs && pyerl_ref_args_find(cv->refs, env, obj, out)) {
        return 1;
    }
    fail_at(PyExc_TypeError, p, "Python value of type '%s' has no Erlang form", type->tp_name);
    return 0;
}

int
pyerl_py_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out,
                 const char *where)
{
    struct path root = {.kind = PATH_ROOT, .root = where};

    return py_to_term(cv, env, obj, out, &root, 0);
}
