/*
 * gc_notice.c: a resource that holds a pid and a copied message, and
 * sends the message from its destructor.
 *
 * py_pool uses it for references to objects on other nodes: each such
 * reference carries one, and when the last copy on this node is collected
 * the pool hears of it and tells the member holding the object to drop
 * it. The destructor sends, with pyerl_send (worker.h: enif_send from a
 * destructor is allowed, and an exiting process's env is retried as
 * none), and frees; it takes no lock and no GIL, and knows no Python.
 */
#include "gc_notice.h"

#include "atoms.h"
#include "worker.h"

struct gc_notice {
    ErlNifPid to;
    ErlNifEnv *msg_env; /* holds msg; sent, then freed, by the destructor */
    ERL_NIF_TERM msg;
};

/* Set by load and upgrade while calls may be reading it. */
static ErlNifResourceType *_Atomic notice_type;

static void
notice_dtor(ErlNifEnv *env, void *arg)
{
    struct gc_notice *n = arg;

    if (!n->msg_env) {
        return;
    }
    (void)pyerl_send(env, &n->to, n->msg_env, n->msg);
    enif_free_env(n->msg_env);
}

int
pyerl_gc_notice_init(ErlNifEnv *env)
{
    ErlNifResourceType *type = enif_open_resource_type(
        env, NULL, "pyerl_gc_notice", notice_dtor, ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);

    if (!type) {
        return -1;
    }
    notice_type = type;
    return 0;
}

ERL_NIF_TERM
pyerl_nif_gc_notice(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct gc_notice *n;
    ERL_NIF_TERM term;
    ErlNifPid to;

    (void)argc;
    if (!enif_get_local_pid(env, argv[0], &to)) {
        return enif_make_badarg(env);
    }
    n = enif_alloc_resource(notice_type, sizeof *n);
    if (!n) {
        return enif_make_tuple2(env, ATOM(error), ATOM(enomem));
    }
    n->to = to;
    n->msg_env = enif_alloc_env();
    if (!n->msg_env) {
        enif_release_resource(n);
        return enif_make_tuple2(env, ATOM(error), ATOM(enomem));
    }
    n->msg = enif_make_copy(n->msg_env, argv[1]);
    term = enif_make_resource(env, n);
    enif_release_resource(n);
    return term;
}
