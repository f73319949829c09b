/*
 * convert.h: Erlang terms to Python objects and back (convert.c).
 */
#ifndef PYERL_CONVERT_H
#define PYERL_CONVERT_H

#include "common.h"

struct pyerl_ctx;
struct pyerl_large_args;
struct pyerl_ref_args;

/* Containers nested deeper than this are refused with a clear error. It
 * bounds the C stack used by conversion on every thread that converts. */
#define PYERL_MAX_DEPTH 512

/* What a conversion needs besides the value: the context whose objects it
 * makes or reads (its erlang module's types, its list of dropped objects),
 * and the large binaries and the references of the call being run, noted
 * on the way in and looked up on the way out (NULL: none). The functions
 * below that take one run with the GIL of its context held. */
struct pyerl_conv {
    struct pyerl_ctx *ctx;
    struct pyerl_large_args *large;
    struct pyerl_ref_args *refs;
};

/* Erlang term to a new Python reference, or NULL with an exception set. GIL
 * held. `where` names the value in error messages ("args", "result"). */
/* At load, after the atoms: None becomes `none' until set_none_atom/1 says
 * otherwise, and {bytes, Bin} is a tuple until set_bytes_tuples/1 does. */
void pyerl_convert_init(ErlNifEnv *env);

/* set_bytes_tuples(Bool): whether {bytes, Bin} becomes Python bytes. */
ERL_NIF_TERM pyerl_nif_set_bytes_tuples(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* set_none_atom(Atom): what None becomes, none, nil or undefined. */
ERL_NIF_TERM pyerl_nif_set_none_atom(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

PyObject *pyerl_term_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM term,
                           const char *where);

/* Python object to a term made in env. Returns 1, or 0 with an exception set
 * (TypeError or ValueError naming the type and where it was). GIL held. */
int pyerl_py_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out,
                     const char *where);

/* A list of arguments to a new tuple, or NULL with an exception set. GIL
 * held. */
PyObject *pyerl_args_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM list,
                           const char *where);

/* Keyword arguments or eval locals: a map whose keys are atoms or binaries,
 * to a new dict with str keys, or NULL with an exception set. GIL held. */
PyObject *pyerl_kwargs_to_py(const struct pyerl_conv *cv, ErlNifEnv *env, ERL_NIF_TERM map,
                             const char *where);

/* Text of an atom or binary into buf as NUL-terminated UTF-8. Returns its
 * length, or -1 when the term is neither, is too long, or holds a NUL byte.
 * No GIL needed. */
Py_ssize_t pyerl_name_text(ErlNifEnv *env, ERL_NIF_TERM term, char *buf, size_t size);

#endif
