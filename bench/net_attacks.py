#!/usr/bin/env python3
"""Network attacks on `t2s serve`, loopback only, bounded in count and time (docs/reliability.md, part B).

Starts `t2s serve --port 0` itself and prints one line per attack with what the server did:
  send-queue   one WebSocket client sends N `status` frames and never reads: server RSS before/peak/after it leaves
  half-open    K connections each send half an upgrade request and stay: is /healthz still answered?
  origin       a WebSocket upgrade from `Origin: http://evil.example`: accepted (101) or refused?
  deadline     an ask with deadline_ms 1e-300, and one whose question is whitespace: accepted or bad_request?
  malformed    a request line of garbage, and 20 KB of headers: HTTP status answered (or "closed")
  token        (only with --token) /api/info without, and with, `Authorization: Bearer`

usage: bench/net_attacks.py ./build/cli/t2s [--frames 400000] [--half-open 4100] [--token T] [-- serve flags...]
"""
import argparse
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def ws_frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def upgrade_request(port, origin=None, token=None, path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append(f"Origin: {origin}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_head(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def status_of(head):
    if not head:
        return "closed"
    return head.split(b"\r\n", 1)[0].decode(errors="replace")


def ws_open(port, origin=None, token=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(upgrade_request(port, origin, token))
    head = read_head(s)
    return s, status_of(head)


def ws_recv_text(sock, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            c = sock.recv(65536)
            if not c:
                raise ConnectionError("closed")
            buf += c
    need(2)
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        need(4)
        n = struct.unpack(">H", buf[2:4])[0]
        off = 4
    elif n == 127:
        need(10)
        n = struct.unpack(">Q", buf[2:10])[0]
        off = 10
    need(off + n)
    return buf[off:off + n].decode(errors="replace")


def http_get(port, path, token=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if token:
        req += f"Authorization: Bearer {token}\r\n"
    s.sendall((req + "\r\n").encode())
    head = read_head(s)
    s.close()
    return status_of(head)


def attack_send_queue(pid, port, frames, token):
    before = rss_mb(pid)
    s, st = ws_open(port, token=token)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frame = ws_frame('{"type":"status"}')
    peak, sent, t0 = before, 0, time.time()
    s.settimeout(10)
    try:
        batch = frame * 1000
        while sent < frames and time.time() - t0 < 120:
            s.sendall(batch)
            sent += 1000
            if sent % 20000 == 0:
                peak = max(peak, rss_mb(pid))
    except OSError as e:
        dropped = f"dropped by the server after {sent} frames ({e.__class__.__name__})"
    else:
        dropped = f"not dropped ({sent} frames sent)"
    peak = max(peak, rss_mb(pid))
    s.close()
    time.sleep(3)
    after = rss_mb(pid)
    print(f"send-queue: {st}; {dropped}; server RSS before {before:.0f} MB, peak {peak:.0f} MB, "
          f"3 s after the client left {after:.0f} MB")


def attack_half_open(pid, port, count, token):
    socks = []
    part = upgrade_request(port, token=token)[:60]
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(part)
            socks.append(s)
        except OSError:
            break
    time.sleep(1)
    server_fds = fds(pid)
    try:
        health = http_get(port, "/healthz")
    except OSError as e:
        health = f"failed ({e.__class__.__name__}: {e})"
    try:
        w, st = ws_open(port, token=token)
        w.close()
    except OSError as e:
        st = f"failed ({e.__class__.__name__})"
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                continue
            alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    print(f"half-open: {len(socks)} half-sent upgrades open (server fds {server_fds}); new client /healthz: {health}; "
          f"new WebSocket: {st}; half-open still connected: {alive}")


def attack_origin(port, token):
    s, st = ws_open(port, origin="http://evil.example", token=token)
    s.close()
    s2, st2 = ws_open(port, origin=f"http://127.0.0.1:{port}", token=token)
    s2.close()
    print(f"origin: evil.example -> {st}; same origin -> {st2}")


def attack_inputs(port, token):
    s, st = ws_open(port, token=token)
    out = []
    for frame in ({"type": "ask", "id": "d", "db": "retail", "question": "How many stores?", "deadline_ms": 1e-300},
                  {"type": "ask", "id": "w", "db": "retail", "question": " \t\n "}):
        s.sendall(ws_frame(json.dumps(frame)))
        reply = json.loads(ws_recv_text(s))
        out.append(f"{frame['id']}: {reply['type']}" + (f" {reply.get('code')}" if reply["type"] == "error" else ""))
    s.close()
    print("inputs: deadline 1e-300 -> " + out[0] + "; whitespace question -> " + out[1])


def attack_malformed(port):
    res = []
    for raw in (b"GARBAGE GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(raw)
            res.append(status_of(read_head(s)))
        except OSError as e:
            res.append(f"closed ({e.__class__.__name__})")
        s.close()
    print(f"malformed: garbage request line -> {res[0]}; 20 KB header -> {res[1]}")


def attack_token(port, token):
    print(f"token: /api/info without -> {http_get(port, '/api/info')}; with -> {http_get(port, '/api/info', token)}; "
          f"/healthz without -> {http_get(port, '/healthz')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("t2s")
    ap.add_argument("--frames", type=int, default=400000)
    ap.add_argument("--half-open", type=int, default=4100)
    ap.add_argument("--token")
    ap.add_argument("--db-dir", default="out/synthetic")
    a, extra = ap.parse_known_args()
    a.serve_args = [x for x in extra if x != "--"]
    cmd = [a.t2s, "serve", "--port", "0", "--db-dir", a.db_dir, "--log-level", "error", "--max-seconds", "900"]
    if a.token:
        cmd += ["--token", a.token]
    proc = subprocess.Popen(cmd + a.serve_args, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        proc.stdout.readline()
        print(f"t2s serve pid {proc.pid} port {port}; RSS {rss_mb(proc.pid):.0f} MB, fds {fds(proc.pid)}")
        attack_inputs(port, a.token)
        attack_malformed(port)
        attack_origin(port, a.token)
        if a.token:
            attack_token(port, a.token)
        attack_half_open(proc.pid, port, a.half_open, a.token)
        time.sleep(1)
        attack_send_queue(proc.pid, port, a.frames, a.token)
        print(f"after: RSS {rss_mb(proc.pid):.0f} MB, fds {fds(proc.pid)}; /healthz {http_get(port, '/healthz')}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
