# A FastAPI application whose handlers call Erlang, and as_serve(n),
# which drives it with n requests through its TestClient. Run in __main__
# by fastapi_app_serves_two_hundred_requests, where fastapi is installed.
import logging, warnings, gc
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

as_app = FastAPI()

@as_app.middleware('http')
async def as_tag_request(request: Request, call_next):
    tag = await erlang.async_call('as_identity', request.url.path)
    response = await call_next(request)
    response.headers['x-erlang-tag'] = tag
    return response

@as_app.get('/users/{uid}')
async def as_get_user(uid: int):
    return await erlang.async_call('get_user', uid)

@as_app.get('/triple/{x}')
async def as_get_triple(x: int):
    a, b = await asyncio.gather(erlang.async_call('as_triple', x),
                                erlang.async_call('as_sleep', 1, x))
    return {'triple': a, 'same': b}

@as_app.get('/fail')
async def as_get_fail():
    try:
        await erlang.async_call('as_raise', 'x')
    except erlang.ErlangError as e:
        return {'erlang_error': str(e)}

class as_Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
    def emit(self, record):
        self.records.append(record.getMessage())

def as_serve(n):
    records = as_Records()
    logging.getLogger('asyncio').addHandler(records)
    bad = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            with TestClient(as_app) as client:
                for i in range(n):
                    kind = i % 3
                    if kind == 0:
                        r = client.get(f'/users/{i}')
                        ok = r.json() == {'id': i, 'name': f'user{i}'}
                    elif kind == 1:
                        r = client.get(f'/triple/{i}')
                        ok = r.json() == {'triple': 3 * i, 'same': i}
                    else:
                        r = client.get('/fail')
                        ok = r.json() == {'erlang_error': '{as_bad,<<"x">>}'}
                    ok = ok and r.status_code == 200 and r.headers['x-erlang-tag'] == r.url.path
                    if not ok:
                        bad.append((i, r.status_code, r.text))
            gc.collect()
    finally:
        logging.getLogger('asyncio').removeHandler(records)
    return (n - len(bad), bad[:3], [str(w.message) for w in caught], records.records)
