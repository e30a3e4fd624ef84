#!/usr/bin/env python3
"""Hostile clients for the soak (loadtest/soak.sh), and the monitor of the server process.

Runs for --duration seconds against --addr, with one thread per kind of hostile client:
garbage bytes, ping floods that never read, slowloris heads, half-closes, oversize and
fragmented messages. Between 40% and 70% of the time it also floods connections until the
server runs out of descriptors, and measures the CPU of each worker thread meanwhile.
The monitor samples the server's VmRSS every 0.2 s and kills the server if it passes
--rss-cap-mib, so an unbounded queue cannot take the machine down with it.
Writes a JSON report to --report. Python 3 standard library only.
"""

import argparse
import json
import os
import random
import signal
import socket
import struct
import threading
import time

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: hostile\r\n\r\n"
)
MASK = b"\x01\x02\x03\x04"


def frame(opcode, payload=b"", fin=True, announce=None):
    """A masked client frame; `announce` overrides the length in the header."""
    n = len(payload) if announce is None else announce
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + masked


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n


def connect(addr, timeout=5.0):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def upgraded(addr):
    s = connect(addr)
    s.sendall(UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return s


def drain(s, limit=5.0):
    """Reads until the server closes; returns the bytes (partial on timeout)."""
    s.settimeout(limit)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    return out


def close_code(data):
    """The code of the first Close frame in `data` (server frames are unmasked), or None."""
    at = 0
    while at + 2 <= len(data):
        op, n = data[at] & 0x0F, data[at + 1] & 0x7F
        hl = 2
        if n == 126:
            n, hl = struct.unpack(">H", data[at + 2:at + 4])[0], 4
        elif n == 127:
            n, hl = struct.unpack(">Q", data[at + 2:at + 10])[0], 10
        if op == 0x8 and n >= 2 and at + hl + 2 <= len(data):
            return struct.unpack(">H", data[at + hl:at + hl + 2])[0]
        at += hl + n
    return None


def forever(name, stop, stats, body):
    """Runs `body` until `stop`; any error is counted, never fatal."""
    while not stop.is_set():
        try:
            body()
            stats.add(name)
        except OSError as e:
            stats.add(name + "_error:" + type(e).__name__)
        except Exception as e:  # noqa: BLE001 - a hostile client must never stop the soak
            stats.add(name + "_error:" + type(e).__name__)


def garbage(addr, rng, stats):
    s = connect(addr)
    if rng.random() < 0.5:
        s.close()
        s = upgraded(addr)
    s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))))
    drain(s)
    s.close()


def ping_flood(addr, stop, stats):
    s = upgraded(addr)
    chunk = frame(0x9) * 10000
    s.settimeout(2.0)
    end = time.monotonic() + 5
    sent = 0
    try:
        while time.monotonic() < end and not stop.is_set():
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        stats.add("ping_flood_ended_by_server")
    stats.add("ping_flood_bytes", sent)
    s.close()


def slowloris(addr, stop, stats):
    s = connect(addr)
    start = time.monotonic()
    try:
        for b in UPGRADE:
            if stop.is_set():
                break
            s.sendall(bytes([b]))
            s.settimeout(0.5)
            try:
                if not s.recv(1024):
                    stats.add("slowloris_dropped_after_s", int(time.monotonic() - start))
                    break
            except socket.timeout:
                pass
    except OSError:
        stats.add("slowloris_dropped_after_s", int(time.monotonic() - start))
    s.close()


def half_close(addr, stats):
    s = connect(addr)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: soak\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    if not drain(s).endswith(b"ok"):
        stats.add("half_close_response_lost")
    s.close()


def oversize(addr, rng, stats):
    s = upgraded(addr)
    if rng.random() < 0.5:
        s.sendall(frame(0x2, b"x" * 16, announce=2 << 20))  # over --max-message-bytes
    else:
        s.sendall(frame(0x2, b"y" * 1000, announce=1 << 20)[: 14 + 1000])  # never finished
        s.shutdown(socket.SHUT_WR)
    code = close_code(drain(s))
    stats.add("oversize_close_%s" % code)
    s.close()


def fragmented(addr, rng, stats):
    s = upgraded(addr)
    part = b"f" * 4096
    msg = frame(0x2, part, fin=False)
    n = rng.randint(50, 400)  # up to 1.6 MB: the larger ones pass --max-message-bytes
    for _ in range(n):
        msg += frame(0x0, part, fin=False)
    msg += frame(0x0, part, fin=True) + frame(0x8, struct.pack(">H", 1000))
    s.sendall(msg)
    stats.add("fragmented_close_%s" % close_code(drain(s)))
    s.close()


def thread_ticks(pid):
    """{tid: (name, utime+stime)} for the server's threads."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[tid] = (name, int(fields[11]) + int(fields[12]))
    return out


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:") and "Z" in line.split()[1]:
                    return None  # exited, not yet reaped
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--flood", type=int, default=1200, help="connections of the fd-limit phase")
    ap.add_argument("--rss-cap-mib", type=int, default=1024)
    ap.add_argument("--report", required=True)
    args = ap.parse_args()
    rng = random.Random(14)
    stats = Stats()
    stop = threading.Event()
    addr = args.addr
    host, port = addr.rsplit(":", 1)
    kinds = {
        "garbage": lambda: garbage(addr, rng, stats),
        "ping_flood": lambda: ping_flood(addr, stop, stats),
        "slowloris": lambda: slowloris(addr, stop, stats),
        "half_close": lambda: half_close(addr, stats),
        "oversize": lambda: oversize(addr, rng, stats),
        "fragmented": lambda: fragmented(addr, rng, stats),
    }
    threads = [
        threading.Thread(target=forever, args=(k, stop, stats, f), daemon=True)
        for k, f in kinds.items()
    ]
    for _ in range(3):  # a few concurrent slowloris heads
        threads.append(threading.Thread(
            target=forever, args=("slowloris", stop, stats, kinds["slowloris"]), daemon=True))
    for t in threads:
        t.start()

    tck = os.sysconf("SC_CLK_TCK")
    start = time.monotonic()
    flood_from, flood_to = start + 0.4 * args.duration, start + 0.7 * args.duration
    flood = []
    peak_rss = 0
    peak_fds = 0
    peak_worker_cpu = 0.0
    killed_for_rss = False
    last = (time.monotonic(), thread_ticks(args.pid))
    while time.monotonic() - start < args.duration:
        now = time.monotonic()
        rss = rss_kib(args.pid)
        if rss is None:
            break  # the server is gone
        peak_rss = max(peak_rss, rss)
        peak_fds = max(peak_fds, fd_count(args.pid))
        if rss > args.rss_cap_mib * 1024:
            killed_for_rss = True
            os.kill(args.pid, signal.SIGKILL)
            break
        if flood_from <= now < flood_to and len(flood) < args.flood:
            # Connections complete in the kernel's backlog whether or not the server accepts.
            for _ in range(100):
                try:
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex((host, int(port)))
                    flood.append(s)
                except OSError:
                    stats.add("flood_connect_error")
                    break
        elif now >= flood_to and flood:
            for s in flood:
                s.close()
            stats.add("flood_connections", len(flood))
            flood = []
        if now - last[0] >= 1.0:
            ticks = thread_ticks(args.pid)
            if flood_from + 1 <= now < flood_to:
                for tid, (name, t) in ticks.items():
                    if name.startswith("ringcast-w") and tid in last[1]:
                        share = (t - last[1][tid][1]) / tck / (now - last[0])
                        peak_worker_cpu = max(peak_worker_cpu, share)
            last = (now, ticks)
        time.sleep(0.2)
    stop.set()
    for s in flood:
        s.close()
    for t in threads:
        t.join(timeout=10)
    report = {
        "peak_rss_mib": round(peak_rss / 1024, 1),
        "peak_fds": peak_fds,
        "peak_worker_cpu_at_fd_limit": round(peak_worker_cpu, 3),
        "killed_for_rss": killed_for_rss,
        "server_alive": rss_kib(args.pid) is not None,
        "hostile": dict(sorted(stats.counts.items())),
    }
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
