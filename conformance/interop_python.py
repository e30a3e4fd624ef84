#!/usr/bin/env python3
"""Interop test: the Python `websockets` client library against a real ringcast process.

Starts $RINGCAST_BIN (default target/release/ringcast) on an ephemeral port, reads the port from
its "ringcast listening on ws://IP:PORT/ (N workers)" line, and runs each check as a real client.
No sleeps: every wait is for an event, bounded by a timeout. Prints one line per check and ends
with "N passed, M failed"; exits 1 on any failure.

The room and pub/sub phases run twice: over ws://, then over wss:// against a server with
--tls-cert/--tls-key (a certificate made with the openssl CLI at start, verified by the client)
and a --plain-listen port beside it, where a wss:// and a ws:// client share a room
(docs/running.md#tls).

Environment: RINGCAST_BIN, INTEROP_SERVER_ARGS (extra server flags), INTEROP_TIMEOUT (s, default 10).
"""
import ssl
import subprocess
import tempfile
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import shlex
import signal
import sys
import time
import traceback

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.environ.get("RINGCAST_BIN", os.path.join(REPO, "target", "release", "ringcast"))
# 1 MiB messages plus frame header must fit both limits, whatever their defaults are
SERVER_ARGS = shlex.split(os.environ.get(
    "INTEROP_SERVER_ARGS", "--max-message-bytes 4194304 --max-backpressure 16777216"))
T = float(os.environ.get("INTEROP_TIMEOUT", "10"))
LOGDIR = os.path.join(REPO, "target", "interop")


class Server:
    def __init__(self, args, name):
        self.args, self.name = args, name

    async def start(self):
        os.makedirs(LOGDIR, exist_ok=True)
        self.stderr = open(os.path.join(LOGDIR, f"{self.name}.stderr"), "wb")
        self.proc = await asyncio.create_subprocess_exec(
            BIN, "--listen", "127.0.0.1:0", *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=self.stderr)
        prefix = "ringcast listening on "
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            if not line:
                raise RuntimeError(f"ringcast exited before listening (see {self.stderr.name})")
            text = line.decode(errors="replace").strip()
            if text.startswith(prefix):
                self.url = text[len(prefix):].split()[0]
                # "… on wss://A/ and ws://B/ (N workers)" with --plain-listen
                self.plain_url = text.split(" and ")[1].split()[0] if " and " in text else None
                break
        self.drain = asyncio.create_task(self._drain())
        print(f"# ringcast pid {self.proc.pid}: {text}", flush=True)

    async def _drain(self):
        while await self.proc.stdout.readline():
            pass

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.stderr.close()
        return self.proc.returncode


SERVER = Server(SERVER_ARGS, "python-ringcast")
# The client side of the wss:// phases: trusts the certificate made by `make_certificate`.
TLS_CONTEXT = None


def make_certificate():
    """A self-signed certificate for 127.0.0.1 and localhost; returns the server's TLS flags."""
    global TLS_CONTEXT
    d = tempfile.mkdtemp(prefix="ringcast-interop-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    TLS_CONTEXT = ssl.create_default_context(cafile=cert)
    return ["--tls-cert", cert, "--tls-key", key, "--plain-listen", "127.0.0.1:0"]


def connect(url, **kw):
    """websockets' connect, with the test certificate trusted for wss:// URLs."""
    if url.startswith("wss://"):
        kw.setdefault("ssl", TLS_CONTEXT)
    return ws_connect(url, **kw)


def room(name):
    return f"py-{name}-{secrets.token_hex(4)}"


def client(subprotocol=None, **kw):
    opts = dict(open_timeout=T, close_timeout=T, ping_interval=None, max_size=None)
    opts.update(kw)
    return connect(SERVER.url, subprotocols=[subprotocol] if subprotocol else None, **opts)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), T)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def short(v):
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


async def expect_first(ws, want):
    got = await recv(ws)
    check(got == want, f"expected {short(want)}, first message received was {short(got)}")


async def relay(payload):
    """a and b in one room: a's message reaches b intact, and is not echoed to a."""
    r = room("relay")
    async with client(r) as a, client(r) as b:
        await a.send(payload)
        got = await recv(b)
        check(type(got) is type(payload), f"opcode changed: sent {type(payload).__name__}, got {type(got).__name__}")
        check(got == payload, f"payload changed: {len(got)} bytes arrived for {len(payload)} sent")
        marker = "marker-" + secrets.token_hex(4)
        await b.send(marker)
        await expect_first(a, marker)   # a got b's marker first, so no echo of its own message


async def t_handshake_subprotocol():
    r = room("hs")
    async with client(r) as ws:
        check(ws.subprotocol == r, f"server chose subprotocol {ws.subprotocol!r}, want {r!r}")
        check(ws.response.status_code == 101, f"status {ws.response.status_code}")
        check(ws.response.headers.get("Sec-WebSocket-Protocol") == r, "Sec-WebSocket-Protocol not echoed")
        # websockets offers permessage-deflate; ringcast accepts it (t_deflate_negotiated_and_relayed)
        check(negotiated(ws) == ["permessage-deflate"], f"extensions {negotiated(ws)}")


async def t_handshake_first_acceptable_token():
    r1, r2 = room("first"), room("second")
    async with connect(SERVER.url, subprotocols=[r1, r2], open_timeout=T, ping_interval=None) as ws:
        check(ws.subprotocol == r1, f"server chose {ws.subprotocol!r}, want the first offered {r1!r}")


async def t_lobby_without_subprotocol():
    async with client() as a, client() as b:
        check(a.subprotocol is None, f"no protocol offered but server chose {a.subprotocol!r}")
        check("Sec-WebSocket-Protocol" not in a.response.headers, "101 carries a Sec-WebSocket-Protocol")
        msg = "lobby-" + secrets.token_hex(4)
        await a.send(msg)
        # other lobby clients (from nothing else here) cannot interfere: wait for our message
        deadline = time.monotonic() + T
        while True:
            got = await asyncio.wait_for(b.recv(), max(0.1, deadline - time.monotonic()))
            if got == msg:
                break


async def t_text():
    await relay("hello, room")


async def t_binary():
    await relay(bytes(range(256)) * 4)


async def t_unicode_text():
    await relay("héllo wörld — 日本語 — 🎉🚀 — ∑∞ — ʕ•ᴥ•ʔ")


async def t_empty_messages():
    await relay("")
    await relay(b"")


async def t_binary_1mib():
    await relay(os.urandom(1 << 20))


async def t_fragmented_text():
    r = room("frag")
    parts = ["frag-one ", "frag-two ", "🎉 three ", "four"]
    async with client(r) as a, client(r) as b:
        await a.send(parts)          # websockets sends an iterable as one fragmented message
        got = await recv(b)
        check(got == "".join(parts), f"got {short(got)}")


async def t_fragmented_binary():
    r = room("fragb")
    parts = [os.urandom(1000), os.urandom(70000), os.urandom(3)]
    async with client(r) as a, client(r) as b:
        await a.send(parts)
        got = await recv(b)
        check(got == b"".join(parts), f"reassembled {len(got)} bytes, want {sum(map(len, parts))}")


async def t_fragmented_utf8_split_codepoint():
    r = room("fragu")
    whole = "🎉".encode()            # 4 bytes, split inside the code point
    async with client(r) as a, client(r) as b:
        # websockets sends str fragments only as whole str; send raw frames through the protocol
        from websockets.frames import Frame, Opcode
        a.protocol.send_frame(Frame(Opcode.TEXT, whole[:2], fin=False))
        a.protocol.send_frame(Frame(Opcode.CONT, whole[2:], fin=True))
        a.send_data()
        got = await recv(b)
        check(got == "🎉", f"got {short(got)}")


async def t_order():
    r = room("order")
    async with client(r) as a, client(r) as b:
        for i in range(200):
            await a.send(f"seq {i}")
        for i in range(200):
            got = await recv(b)
            check(got == f"seq {i}", f"message {i} arrived as {short(got)}")


async def t_ping_pong():
    async with client(room("ping")) as ws:
        for payload in (b"ringcast-ping-\x00\xff", b"", bytes(range(125))):
            waiter = await ws.ping(payload)   # resolves only on a Pong carrying this payload
            await asyncio.wait_for(waiter, T)


async def t_close_1000():
    async with client(room("close")) as ws:
        await ws.close(1000, "bye from python")
        check(ws.protocol.close_rcvd is not None, "no Close frame received from the server")
        check(ws.protocol.close_rcvd.code == 1000, f"server closed with {ws.protocol.close_rcvd.code}, want 1000")


async def t_close_4000():
    async with client(room("close")) as ws:
        await ws.close(4000, "application code")
        check(ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4000,
              f"server replied {ws.protocol.close_rcvd}, want code 4000 echoed")


async def t_room_isolation():
    x, y = room("iso-x"), room("iso-y")
    async with client(x) as a, client(x) as b, client(y) as c, client(y) as d:
        await a.send("secret for x")
        await expect_first(b, "secret for x")      # delivered in x ...
        await a.send(b"secret binary for x")
        await expect_first(b, b"secret binary for x")
        await d.send("marker for y")
        await expect_first(c, "marker for y")      # ... and nothing of it reached y


async def t_member_leaves():
    r = room("leave")
    async with client(r) as a, client(r) as b:
        async with client(r) as c:
            pass                                   # c joins and leaves
        await a.send("after leave")
        await expect_first(b, "after leave")


async def t_sigterm_close_1001():
    """Last: SIGTERM → every client gets Close 1001, the process exits 0."""
    async with client(room("bye")) as ws:
        SERVER.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(ws.recv(), T)
            raise AssertionError("received a message instead of a Close")
        except ConnectionClosed:
            pass
        check(ws.protocol.close_rcvd is not None, "connection dropped without a Close frame")
        check(ws.protocol.close_rcvd.code == 1001, f"close code {ws.protocol.close_rcvd.code}, want 1001")
    rc = await asyncio.wait_for(SERVER.proc.wait(), T)
    check(rc == 0, f"ringcast exited with {rc}, want 0")


async def t_wss_and_ws_share_a_room():
    r = room("both")
    check(SERVER.url.startswith("wss://") and SERVER.plain_url, f"not a TLS server: {SERVER.url}")
    async with client(r) as secure, connect(SERVER.plain_url, subprotocols=[r], open_timeout=T,
                                            ping_interval=None) as plain:
        await secure.send("over tls")
        await expect_first(plain, "over tls")
        await plain.send("in plain")
        await expect_first(secure, "in plain")


def negotiated(ws):
    """The extensions websockets negotiated (it offers permessage-deflate by default)."""
    return [e.name for e in ws.protocol.extensions]


async def t_deflate_negotiated_and_relayed():
    """permessage-deflate (docs/compression.md): negotiated with the parameters ringcast
    chooses; a long message, compressed both ways, and a short one (sent plain) relay intact."""
    r = room("deflate")
    async with client(r) as a, client(r) as b, client(r, compression=None) as plain:
        for ws in (a, b):
            check(negotiated(ws) == ["permessage-deflate"], f"extensions {negotiated(ws)}")
            answer = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            check("server_no_context_takeover" in answer and "client_no_context_takeover" in answer,
                  f"answer {answer!r}")
        check(negotiated(plain) == [], f"no offer, yet {negotiated(plain)}")
        long = json.dumps({"user": "alice", "text": "the quick brown fox " * 300})
        for payload in (long, "short", long.encode()):
            await a.send(payload)
            check(await recv(b) == payload, f"b: {short(payload)} changed")
            check(await recv(plain) == payload, f"plain: {short(payload)} changed")


TESTS = [
    t_deflate_negotiated_and_relayed,
    t_handshake_subprotocol, t_handshake_first_acceptable_token, t_lobby_without_subprotocol,
    t_text, t_binary, t_unicode_text, t_empty_messages, t_binary_1mib,
    t_fragmented_text, t_fragmented_binary, t_fragmented_utf8_split_codepoint, t_order,
    t_ping_pong, t_close_1000, t_close_4000, t_room_isolation, t_member_leaves,
    t_sigterm_close_1001,
]


# ---- pub/sub mode (docs/pubsub.md) and token auth (docs/tokens.md), against a second server ----
# Started with --auth-secret and history on (INTEROP_PUBSUB_ARGS adds flags); tokens are minted
# here with the standard library.

AUTH_SECRET = "interop-" + secrets.token_hex(8)
PUBSUB_ARGS = ["--auth-secret", AUTH_SECRET, "--history-size", "100",
               *shlex.split(os.environ.get("INTEROP_PUBSUB_ARGS", ""))]


def mint(sub=None, rooms=None, read=None, exp_in=300, secret=None, alg="HS256"):
    """An HS256 JWT (alg and secret overridable to forge bad ones)."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    claims = {"exp": int(time.time()) + exp_in}
    for k, v in (("sub", sub), ("rooms", rooms), ("read", read)):
        if v is not None:
            claims[k] = v
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    key = (secret or AUTH_SECRET).encode()
    sig = b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def authed(token, subprotocol="pubsub", header=False):
    """A client of the pub/sub server with `token` in the query, or in Authorization: Bearer."""
    url = PUBSUB.url if header or token is None else f"{PUBSUB.url}?token={token}"
    kw = {"additional_headers": {"Authorization": f"Bearer {token}"}} if header else {}
    return connect(url, subprotocols=[subprotocol], open_timeout=T, close_timeout=T,
                   ping_interval=None, max_size=None, **kw)


def topic(name):
    return f"py-{name}-{secrets.token_hex(4)}"


async def send_json(ws, obj):
    await ws.send(json.dumps(obj))


async def expect_op(ws, op, **fields):
    """The next message is a JSON object with this op (and these fields); returns (obj, raw)."""
    raw = await recv(ws)
    check(isinstance(raw, str), f"expected a text message, got {short(raw)}")
    m = json.loads(raw)
    check(m.get("op") == op, f"expected op {op!r}, got {short(raw)}")
    for k, v in fields.items():
        check(m.get(k) == v, f"{op}: {k}={m.get(k)!r}, want {v!r} in {short(raw)}")
    return m, raw


async def refused_with(status, token, subprotocol="pubsub", header=False):
    try:
        async with authed(token, subprotocol, header):
            pass
    except InvalidStatus as e:
        check(e.response.status_code == status, f"status {e.response.status_code}, want {status}")
        return
    raise AssertionError(f"handshake accepted, want {status}")


async def t_auth_token_accepted():
    async with authed(mint(sub="ann")) as q, authed(mint(sub="ann"), header=True) as h:
        check(q.subprotocol == "pubsub" and h.subprotocol == "pubsub", "pubsub not echoed")
    r = room("authed")
    async with authed(mint(), r) as a, authed(mint(), r, header=True) as b:
        await a.send("room mode with a token")
        await expect_first(b, "room mode with a token")


async def t_auth_refused_401():
    await refused_with(401, None)
    await refused_with(401, mint(secret="not-the-secret"))
    await refused_with(401, mint(exp_in=-60), header=True)
    await refused_with(401, mint(alg="none"))
    await refused_with(401, "garbage", header=True)


async def t_auth_room_claim_403():
    tok = mint(rooms=["py-allowed-*"])
    async with authed(tok, f"py-allowed-{secrets.token_hex(2)}"):
        pass
    await refused_with(403, tok, "py-other")
    async with authed(tok):   # the pubsub token itself is always allowed
        pass


async def t_pubsub_subscribe_publish():
    t = topic("pub")
    data = '{"n" : [1, 2.50],  "s":"\\u00e9 é"}'   # passed through byte for byte
    async with authed(mint()) as a, authed(mint()) as b:
        await send_json(a, {"op": "subscribe", "topic": t, "id": 1})
        await expect_op(a, "subscribed", topic=t, id=1)
        await b.send('{"op":"publish","topic":' + json.dumps(t) + ',"data":' + data + ',"id":"p1"}')
        m, _ = await expect_op(b, "published", topic=t, id="p1")
        check(isinstance(m.get("offset"), int), f"no offset with history on: {m}")
        _, raw = await expect_op(a, "message", topic=t, offset=m["offset"])
        check(data in raw, f"data re-printed: {short(raw)}")
        await send_json(a, {"op": "nonsense", "id": 7})
        await expect_op(a, "error", code="unknown_op", id=7)
        await send_json(a, {"op": "unsubscribe", "topic": t, "id": 2})
        await expect_op(a, "unsubscribed", topic=t, id=2)


async def t_pubsub_presence():
    t = topic("presence")
    async with authed(mint(sub="alice")) as a:
        await send_json(a, {"op": "subscribe", "topic": t, "id": 1, "presence": True})
        await expect_op(a, "subscribed", topic=t, id=1)
        snap, raw = await expect_op(a, "presence", topic=t, count=1)
        check([c.get("user") for c in snap["clients"]] == ["alice"], f"snapshot {short(raw)}")
        async with authed(mint(sub="bob")) as b:
            await send_json(b, {"op": "subscribe", "topic": t})
            joined, _ = await expect_op(a, "join", topic=t, user="bob")
        left, _ = await expect_op(a, "leave", topic=t, user="bob")
        check(joined["client"] == left["client"], "join and leave name different clients")


async def t_pubsub_recovery():
    t = topic("recover")
    async with authed(mint()) as pub:
        async def publish(i):
            await send_json(pub, {"op": "publish", "topic": t, "data": {"i": i}, "id": i})
            return (await expect_op(pub, "published", id=i))[0]["offset"]
        async with authed(mint()) as a:
            await send_json(a, {"op": "subscribe", "topic": t, "id": 1})
            sub, _ = await expect_op(a, "subscribed", id=1)
            epoch, last = sub["epoch"], sub["offset"]
            for i in range(3):
                await publish(i)
                m, _ = await expect_op(a, "message", topic=t, offset=last + 1)
                check(m["data"] == {"i": i}, f"message {m}")
                last += 1
        # a is gone; two messages it misses
        missed = [await publish(i) for i in (3, 4)]
        check(missed == [last + 1, last + 2], f"offsets {missed} after {last}")
        async with authed(mint()) as a2:
            await send_json(a2, {"op": "subscribe", "topic": t, "id": 2,
                                 "since": {"offset": last, "epoch": epoch}})
            await expect_op(a2, "subscribed", id=2, recovered=True)
            for i, off in zip((3, 4), missed):
                m, _ = await expect_op(a2, "message", offset=off)
                check(m["data"] == {"i": i}, f"replayed {m}")
            live = await publish(5)
            m, _ = await expect_op(a2, "message", offset=live)   # no duplicate, no gap
            check(m["data"] == {"i": 5}, f"live {m}")
        async with authed(mint()) as a3:
            await send_json(a3, {"op": "subscribe", "topic": t, "id": 3, "since": {"last": 2}})
            await expect_op(a3, "subscribed")
            got = [(await expect_op(a3, "message"))[0]["data"]["i"] for _ in range(2)]
            check(got == [4, 5], f"last 2 replayed {got}")


async def t_pubsub_forbidden():
    tok = mint(rooms=["py-ok-*"], read=["py-ro-*"])
    async with authed(tok) as a:
        await send_json(a, {"op": "subscribe", "topic": topic("nope"), "id": 1})
        await expect_op(a, "error", code="forbidden", id=1)
        ro = topic("ro")
        await send_json(a, {"op": "subscribe", "topic": ro, "id": 2})
        await expect_op(a, "subscribed", id=2)
        await send_json(a, {"op": "publish", "topic": ro, "data": 1, "id": 3})
        await expect_op(a, "error", code="forbidden", id=3)
        ok = topic("ok")
        await send_json(a, {"op": "publish", "topic": ok, "data": 1, "id": 4})
        await expect_op(a, "published", id=4)   # still usable after the errors


PUBSUB = Server(PUBSUB_ARGS, "python-pubsub-ringcast")
async def t_pubsub_deflate():
    """A subscriber that negotiated permessage-deflate gets a long message intact."""
    t = topic("deflate")
    data = json.dumps({"text": "hello world " * 200})
    async with authed(mint()) as a, authed(mint()) as b:
        check(negotiated(a) == ["permessage-deflate"], f"extensions {negotiated(a)}")
        await send_json(a, {"op": "subscribe", "topic": t, "id": 1})
        await expect_op(a, "subscribed", topic=t, id=1)
        await b.send('{"op":"publish","topic":' + json.dumps(t) + ',"data":' + data + '}')
        _, raw = await expect_op(a, "message", topic=t)
        check(data in raw, f"data changed: {short(raw)}")


PUBSUB_TESTS = [
    t_pubsub_deflate,
    t_auth_token_accepted, t_auth_refused_401, t_auth_room_claim_403,
    t_pubsub_subscribe_publish, t_pubsub_presence, t_pubsub_recovery, t_pubsub_forbidden,
]


async def run_phase(server, tests):
    """Starts `server`, runs `tests` against it, stops it; returns (passed, failed)."""
    try:
        await server.start()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL start {server.name}: {type(e).__name__}: {e}")
        proc = getattr(server, "proc", None)
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        return 0, 1
    passed = failed = 0
    try:
        for t in tests:
            name = t.__name__[2:]
            start = time.monotonic()
            try:
                await asyncio.wait_for(t(), 6 * T)
                passed += 1
                print(f"PASS {name} ({(time.monotonic() - start) * 1000:.0f} ms)", flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure the same way
                failed += 1
                detail = f"{type(e).__name__}: {e}" if str(e) else traceback.format_exc(limit=3)
                print(f"FAIL {name}: {detail}", flush=True)
    finally:
        rc = await server.stop()
        if rc not in (0, None):
            print(f"# ringcast exit status {rc} (stderr: {server.stderr.name})")
    return passed, failed


async def main():
    if not os.access(BIN, os.X_OK):
        print(f"ringcast binary not found at {BIN} (set RINGCAST_BIN or build it)")
        print("0 passed, 1 failed")
        return 1
    global SERVER, PUBSUB
    only = os.environ.get("INTEROP_ONLY")   # "rooms", "pubsub", "rooms-wss" or "pubsub-wss"
    passed = failed = 0
    tls = make_certificate()
    phases = (("rooms", SERVER, TESTS), ("pubsub", PUBSUB, PUBSUB_TESTS),
              ("rooms-wss", Server([*SERVER_ARGS, *tls], "python-wss-ringcast"),
               [t_wss_and_ws_share_a_room, *TESTS]),  # TESTS ends with the SIGTERM drain
              ("pubsub-wss", Server([*PUBSUB_ARGS, *tls], "python-pubsub-wss-ringcast"), PUBSUB_TESTS))
    for phase, server, tests in phases:
        if only and only != phase:
            continue
        # The tests reach their server through these two names.
        if phase.startswith("rooms"):
            SERVER = server
        else:
            PUBSUB = server
        print(f"# phase {phase}", flush=True)
        p, f = await run_phase(server, tests)
        passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
