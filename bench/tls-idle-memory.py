#!/usr/bin/env python3
"""Idle memory per connection: opens N WebSocket connections (ws:// or wss://) to a running
ringcast, upgrades each (room `idle`), leaves them idle, and prints the server's RSS growth per
connection. Compare a plain port with a TLS port of the same server (docs/running.md#tls):

  ringcast --listen 127.0.0.1:18443 --tls-cert cert.pem --tls-key key.pem \
           --plain-listen 127.0.0.1:18080 --workers 2 &
  python3 bench/tls-idle-memory.py $! 127.0.0.1 18080 10000 plain
  # restart the server, then
  python3 bench/tls-idle-memory.py $! 127.0.0.1 18443 10000 tls

Arguments: server pid, host, port, connections, plain|tls. The certificate is not verified.
"""
import socket, ssl, sys, time, resource
h=resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
pid, host, port, n, use_tls = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "tls"
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
ctx = ssl.create_default_context(); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
req = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: idle\r\n\r\n"
time.sleep(0.5)
before = rss()
socks = []
for i in range(n):
    s = socket.create_connection((host, port))
    if use_tls: s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf: buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf
    socks.append(s)
time.sleep(1.0)
after = rss()
print(f"{'wss' if use_tls else 'ws'} n={n} rss_before={before}KiB rss_after={after}KiB per_conn={(after-before)*1024/n:.0f} B")
