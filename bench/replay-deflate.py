#!/usr/bin/env python3
"""History replays with and without permessage-deflate (docs/compression.md#replays).

Starts `ringcast --history-size 100`, publishes 100 chat-like JSON messages of ~1 KB to one
topic, then, rounds times alternating, 100 fresh subscribers (offering permessage-deflate or
not) resume it with `since:{"last":100}` at once. Per round: the server's CPU time (the sum of
its threads' /proc schedstat run time, ns) from the first subscribe sent to the last replayed
frame read, and the wire bytes the subscribers read (frame headers included).
Prints each round and the medians per mode.

    cargo build -p ringcast --release --bin ringcast
    python3 bench/replay-deflate.py --server target/release/ringcast [--rounds 7]
"""

import argparse
import base64
import glob
import os
import random
import re
import socket
import statistics
import subprocess

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
WORDS = ("hey anyone seen the new build works for me lunch at noon deploy is green thanks ok "
         "ship it tomorrow").split()


def chat(rng, size=1000):
    """Chat-like JSON (loadtest --filler chat's shape): an array of short chat lines."""
    lines, i = [], 180_000_000
    while sum(len(x) + 1 for x in lines) < size - 2:
        i += rng.randint(1, 5)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 11)))
        lines.append('{"id":%d,"user":"%s","text":"%s"}' % (i, rng.choice(USERS), text))
    return "[" + ",".join(lines) + "]"


def connect(port, deflate):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           f"Sec-WebSocket-Protocol: pubsub\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           + (OFFER if deflate else "") + "\r\n")
    s.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert (b"permessage-deflate" in head.lower()) == deflate, head
    return s


def send_text(s, text):
    data = text.encode()
    n = len(data)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big"))
    s.sendall(head + b"\0\0\0\0" + data)  # a zero mask


def read_exact(s, n, buf):
    while len(buf) < n:
        chunk = s.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    return buf


def read_frames(s, count):
    """Reads `count` frames; returns (wire bytes, frames with RSV1)."""
    buf, wire, rsv1 = b"", 0, 0
    for _ in range(count):
        buf = read_exact(s, 2, buf)
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            buf = read_exact(s, 4, buf)
            n, at = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            buf = read_exact(s, 10, buf)
            n, at = int.from_bytes(buf[2:10], "big"), 10
        buf = read_exact(s, at + n, buf)
        rsv1 += bool(buf[0] & 0x40)
        wire += at + n
        buf = buf[at + n:]
    return wire, rsv1


def cpu_ns(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(f).read().split()[0])
        except (OSError, ValueError):
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="target/release/ringcast")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--messages", type=int, default=100)
    a = ap.parse_args()
    srv = subprocess.Popen([a.server, "--listen", "127.0.0.1:0", "--workers", "2",
                            "--history-size", str(a.messages)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in srv.stdout:
            m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        rng = random.Random(7)
        pub = connect(port, False)
        payload = 0
        for i in range(a.messages):
            data = chat(rng)
            payload += len(data)
            send_text(pub, '{"op":"publish","topic":"r","id":%d,"data":%s}' % (i, data))
            read_frames(pub, 1)
        print(f"{a.messages} messages, {payload / a.messages:.0f} B of data each on average")
        results = {False: [], True: []}
        for r in range(a.rounds):
            for deflate in (False, True):
                subs = [connect(port, deflate) for _ in range(a.subscribers)]
                before = cpu_ns(srv.pid)
                for s in subs:
                    send_text(s, '{"op":"subscribe","topic":"r","id":1,"since":{"last":%d}}'
                              % a.messages)
                wire = rsv1 = 0
                for s in subs:
                    w, c = read_frames(s, 1 + a.messages)
                    wire, rsv1 = wire + w, rsv1 + c
                cpu = cpu_ns(srv.pid) - before
                for s in subs:
                    s.close()
                deliveries = a.subscribers * a.messages
                results[deflate].append((cpu / deliveries, wire / deliveries))
                print(f"round {r} deflate={deflate}: server CPU {cpu / 1e6:.1f} ms, "
                      f"{cpu / deliveries / 1e3:.2f} us and {wire / deliveries:.0f} wire B "
                      f"per replayed message, {rsv1} compressed frames")
        for deflate, rows in results.items():
            cpu = statistics.median(x[0] for x in rows) / 1e3
            wire = statistics.median(x[1] for x in rows)
            print(f"median deflate={deflate}: {cpu:.2f} us CPU, {wire:.0f} wire B per message")
    finally:
        srv.kill()


if __name__ == "__main__":
    main()
