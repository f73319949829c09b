/*
 * atoms.c: every atom the NIF returns, made once at load.
 *
 * Atoms are never made from data at run time except where a user asked for
 * one explicitly (erlang.Atom, bounded in length by convert.c), so the list
 * below is the whole of what the NIF adds to the atom table.
 */
#include "pyerl.h"

struct pyerl_atoms pyerl_atoms;

void
pyerl_atoms_init(ErlNifEnv *env)
{
#define PYERL_ATOM_MAKE(name) pyerl_atoms.name = enif_make_atom(env, #name);
    PYERL_ATOM_NAMES(PYERL_ATOM_MAKE)
#undef PYERL_ATOM_MAKE
}
