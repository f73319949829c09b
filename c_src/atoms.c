/*
 * atoms.c: every atom the NIF returns, made once at load.
 *
 * Atoms are never made from data at run time except where a user asked for
 * one explicitly (erlang.Atom, bounded in length by convert.c), so the list
 * below is the whole of what the NIF adds to the atom table.
 */
#include "atoms.h"

struct pyerl_atoms pyerl_atoms;

/* Atoms live as long as the VM, so a reload (upgrade, or load after an
 * unload) finds the table right already and leaves it alone: calls still
 * running read it meanwhile. Load callbacks run one at a time. */
void
pyerl_atoms_init(ErlNifEnv *env)
{
    static int made;

    if (made) {
        return;
    }
#define PYERL_ATOM_MAKE(name) pyerl_atoms.name = enif_make_atom(env, #name);
    PYERL_ATOM_NAMES(PYERL_ATOM_MAKE)
#undef PYERL_ATOM_MAKE
    made = 1;
}
