#!/usr/bin/env python3
"""Soak test of `t2s serve` (loopback only, bounded; not part of CI; docs/reliability.md, part B).

Starts `t2s serve --port 0` with the given flags, then for --minutes keeps --clients WebSocket clients busy asking
the benchmark's own example questions (from /api/info), each with up to --in-flight questions outstanding; every
client reconnects after --reconnect-every questions (connection churn), and one in --abandon-every questions is
asked on a connection that is then dropped mid-workflow (the server must cancel it, not leak it). Every 10 s it
samples the server's RSS and open file descriptors. At the end it stops asking, waits for the answers still due,
and checks that every question asked on a kept connection got exactly one answer (a result or an error).

  bench/soak.py ./build/cli/t2s [--minutes 10] [--clients 16] -- [serve flags, e.g. --db-dir out/synthetic]
  bench/soak.py ./build/cli/t2s --minutes 0.5        (the short option: a 30-second smoke run)

Prints one line per sample and a summary; exits 1 when an answer is missing or duplicated, or when RSS or fds grow
over the second half of the run by more than --max-rss-growth-mb / --max-fd-growth.
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from net_attacks import fds, rss_mb, upgrade_request, ws_frame  # noqa: E402


class Ws:
    """A minimal blocking WebSocket client (text frames, unmasked server frames)."""

    def __init__(self, port, token=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(upgrade_request(port, token=token))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            c = self.s.recv(4096)
            if not c:
                raise ConnectionError("closed during handshake")
            self.buf += c
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode())

    def send(self, obj):
        self.s.sendall(ws_frame(json.dumps(obj)))

    def recv(self, timeout):
        self.s.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                n, off = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = int.from_bytes(self.buf[2:4], "big"), 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = int.from_bytes(self.buf[2:10], "big"), 10
                if n < 126 or off > 2:
                    if len(self.buf) >= off + n:
                        op = self.buf[0] & 0x0F
                        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
                        if op == 0x8:
                            raise ConnectionError("server closed")
                        if op == 0x9:  # ping: answer with a masked pong
                            self.s.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                            continue
                        if op == 0x1:
                            return json.loads(payload)
                        continue
            c = self.s.recv(65536)
            if not c:
                raise ConnectionError("closed")
            self.buf += c

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.asked = 0
        self.results = 0
        self.errors = {}
        self.duplicates = 0
        self.missing = 0
        self.abandoned = 0
        self.latencies = []

    def error(self, code):
        with self.lock:
            self.errors[code] = self.errors.get(code, 0) + 1


def client(idx, port, a, examples, tally, stop):
    rng = random.Random(idx)
    seq = 0
    while not stop.is_set():
        try:
            ws = Ws(port, a.token)
        except OSError as e:
            tally.error("connect:" + e.__class__.__name__)
            time.sleep(0.5)
            continue
        pending = {}  # id -> send time
        answered = set()
        asked_here = 0
        abandon = rng.random() < 1.0 / max(1, a.abandon_every)
        try:
            while True:
                while (not stop.is_set() and len(pending) < a.in_flight and asked_here < a.reconnect_every):
                    db, q = rng.choice(examples)
                    seq += 1
                    qid = f"c{idx}-{seq}"
                    ws.send({"type": "ask", "id": qid, "db": db, "question": q})
                    pending[qid] = time.time()
                    asked_here += 1
                    with tally.lock:
                        tally.asked += 1
                if abandon and asked_here >= 1:
                    with tally.lock:  # dropped mid-workflow: these ids are not expected to be answered
                        tally.asked -= len(pending)
                        tally.abandoned += len(pending)
                    pending.clear()
                    break
                if not pending:
                    break
                f = ws.recv(a.answer_timeout)
                fid = f.get("id")
                if f["type"] in ("result", "error") and fid is not None:
                    if fid in answered:
                        with tally.lock:
                            tally.duplicates += 1
                        continue
                    if fid not in pending:
                        continue
                    answered.add(fid)
                    t = pending.pop(fid)
                    with tally.lock:
                        tally.latencies.append(time.time() - t)
                        if f["type"] == "result":
                            tally.results += 1
                    if f["type"] == "error":
                        tally.error(f.get("code", "?"))
        except (OSError, ConnectionError, ValueError) as e:
            with tally.lock:
                tally.missing += len(pending)
            tally.error("client:" + e.__class__.__name__)
        finally:
            # A short grace to see duplicates of what was already answered before closing.
            ws.close()


def http_json(port, path, token=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if token:
        req += f"Authorization: Bearer {token}\r\n"
    s.sendall((req + "\r\n").encode())
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("t2s")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--reconnect-every", type=int, default=20)
    ap.add_argument("--abandon-every", type=int, default=10, help="one connection in N is dropped mid-workflow")
    ap.add_argument("--answer-timeout", type=float, default=120)
    ap.add_argument("--token")
    ap.add_argument("--max-rss-growth-mb", type=float, default=20)
    ap.add_argument("--max-fd-growth", type=int, default=8)
    a, extra = ap.parse_known_args()
    a.serve_args = [x for x in extra if x != "--"]
    cmd = [a.t2s, "serve", "--port", "0", "--log-level", "warn"] + a.serve_args
    if a.token:
        cmd += ["--token", a.token]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        print(line.strip(), "|", proc.stdout.readline().strip(), flush=True)
        info = http_json(port, "/api/info", a.token)
        examples = [(db, q) for db, qs in info["databases"].items() for q in qs]
        if not examples:
            raise SystemExit("soak: the server offers no example questions")
        tally, stop = Tally(), threading.Event()
        threads = [threading.Thread(target=client, args=(i, port, a, examples, tally, stop), daemon=True)
                   for i in range(a.clients)]
        t0 = time.time()
        samples = []
        for t in threads:
            t.start()
        end = t0 + a.minutes * 60
        next_sample = t0
        while time.time() < end:
            if time.time() >= next_sample:
                s = (time.time() - t0, rss_mb(proc.pid), fds(proc.pid), tally.asked, tally.results)
                samples.append(s)
                print(f"t={s[0]:6.0f}s rss={s[1]:7.1f}MB fds={s[2]:4d} asked={s[3]} results={s[4]}", flush=True)
                next_sample += 10
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=a.answer_timeout + 30)
        time.sleep(2)
        final = (time.time() - t0, rss_mb(proc.pid), fds(proc.pid), tally.asked, tally.results)
        samples.append(final)
        half = [s for s in samples if s[0] >= a.minutes * 30]
        rss_growth = max(s[1] for s in half) - min(s[1] for s in half) if half else 0
        fd_growth = final[2] - samples[0][2]
        answered = tally.results + sum(v for k, v in tally.errors.items() if ":" not in k)
        lat = sorted(tally.latencies)
        p50 = lat[len(lat) // 2] if lat else 0
        p99 = lat[int(len(lat) * 0.99)] if lat else 0
        print(f"soak: {a.minutes} min, {a.clients} clients; asked {tally.asked} (kept connections), answered "
              f"{answered} (results {tally.results}, errors {dict(tally.errors)}), missing {tally.missing}, "
              f"duplicates {tally.duplicates}, abandoned mid-workflow {tally.abandoned}; latency p50 {p50:.2f} s "
              f"p99 {p99:.2f} s")
        print(f"soak: RSS first {samples[0][1]:.1f} MB, max {max(s[1] for s in samples):.1f} MB, last {final[1]:.1f} MB,"
              f" second-half spread {rss_growth:.1f} MB; fds first {samples[0][2]}, max "
              f"{max(s[2] for s in samples)}, last {final[2]}")
        health = "alive" if proc.poll() is None else f"exited {proc.returncode}"
        ok = (tally.missing == 0 and tally.duplicates == 0 and answered == tally.asked and
              rss_growth <= a.max_rss_growth_mb and fd_growth <= a.max_fd_growth and proc.poll() is None)
        print(f"soak: server {health}; {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
