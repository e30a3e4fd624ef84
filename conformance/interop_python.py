#!/usr/bin/env python3
"""Interop test: the Python `websockets` client library against a real ringcast process.

Starts $RINGCAST_BIN (default target/release/ringcast) on an ephemeral port, reads the port from
its "ringcast listening on ws://IP:PORT/ (N workers)" line, and runs each check as a real client.
No sleeps: every wait is for an event, bounded by a timeout. Prints one line per check and ends
with "N passed, M failed"; exits 1 on any failure.

Environment: RINGCAST_BIN, INTEROP_SERVER_ARGS (extra server flags), INTEROP_TIMEOUT (s, default 10).
"""
import asyncio
import os
import secrets
import shlex
import signal
import sys
import time
import traceback

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.environ.get("RINGCAST_BIN", os.path.join(REPO, "target", "release", "ringcast"))
# 1 MiB messages plus frame header must fit both limits, whatever their defaults are
SERVER_ARGS = shlex.split(os.environ.get(
    "INTEROP_SERVER_ARGS", "--max-message-bytes 4194304 --max-backpressure 16777216"))
T = float(os.environ.get("INTEROP_TIMEOUT", "10"))
LOGDIR = os.path.join(REPO, "target", "interop")


class Server:
    async def start(self):
        os.makedirs(LOGDIR, exist_ok=True)
        self.stderr = open(os.path.join(LOGDIR, "python-ringcast.stderr"), "wb")
        self.proc = await asyncio.create_subprocess_exec(
            BIN, "--listen", "127.0.0.1:0", *SERVER_ARGS,
            stdout=asyncio.subprocess.PIPE, stderr=self.stderr)
        prefix = "ringcast listening on "
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            if not line:
                raise RuntimeError(f"ringcast exited before listening (see {self.stderr.name})")
            text = line.decode(errors="replace").strip()
            if text.startswith(prefix):
                self.url = text[len(prefix):].split()[0]
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


SERVER = Server()


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
        # websockets offers permessage-deflate; ringcast negotiates no extension
        check(ws.response.headers.get("Sec-WebSocket-Extensions") is None,
              f"unexpected extension {ws.response.headers.get('Sec-WebSocket-Extensions')!r}")


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


TESTS = [
    t_handshake_subprotocol, t_handshake_first_acceptable_token, t_lobby_without_subprotocol,
    t_text, t_binary, t_unicode_text, t_empty_messages, t_binary_1mib,
    t_fragmented_text, t_fragmented_binary, t_fragmented_utf8_split_codepoint, t_order,
    t_ping_pong, t_close_1000, t_close_4000, t_room_isolation, t_member_leaves,
    t_sigterm_close_1001,
]


async def main():
    if not os.access(BIN, os.X_OK):
        print(f"ringcast binary not found at {BIN} (set RINGCAST_BIN or build it)")
        print("0 passed, 1 failed")
        return 1
    try:
        await SERVER.start()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL start: {type(e).__name__}: {e}")
        proc = getattr(SERVER, "proc", None)
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    try:
        for t in TESTS:
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
        rc = await SERVER.stop()
        if rc not in (0, None):
            print(f"# ringcast exit status {rc} (stderr: {SERVER.stderr.name})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
