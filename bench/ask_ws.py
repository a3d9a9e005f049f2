#!/usr/bin/env python3
"""Free-text questions to `t2s serve` over its WebSocket API, with every frame the server sends (evidence run).

Starts `t2s serve --port 0` with the given serve flags, prints /api/info (which model answers), asks each question
(db:question pairs) on one connection and prints its stage events, then its SQL, whether it executed, and rows.
With --hash-dir, hashes every file under that folder before and after and fails if one changed (serve must open a
user's --db-dir read-only).

  bench/ask_ws.py ./build/t2s --ask "retail:How many stores are there?" --hash-dir DIR -- --db-dir DIR
"""
import argparse
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import Ws, http_json  # noqa: E402


def hashes(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in sorted(files):
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("t2s")
    ap.add_argument("--ask", action="append", required=True, help="db:question (repeatable)")
    ap.add_argument("--hash-dir", help="folder whose files must be byte-identical after the run")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for each answer")
    argv = sys.argv[1:]
    serve_args = argv[argv.index("--") + 1:] if "--" in argv else []
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    a.serve_args = serve_args
    before = hashes(a.hash_dir) if a.hash_dir else None
    proc = subprocess.Popen([a.t2s, "serve", "--port", "0", "--log-level", "warn"] + a.serve_args,
                            stdout=subprocess.PIPE, text=True)
    failures = 0
    try:
        port = None
        for line in proc.stdout:
            if "http://127.0.0.1:" in line:
                port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
                break
        if port is None:
            raise SystemExit("serve did not print its address")
        info = http_json(port, "/api/info")
        print("info:", {k: v for k, v in info.items() if k != "examples"})
        ws = Ws(port)
        for n, item in enumerate(a.ask):
            db, question = item.split(":", 1)
            qid = f"q{n}"
            t0 = time.time()
            ws.send({"type": "ask", "id": qid, "db": db, "question": question})
            print(f"\n>>> [{db}] {question}")
            while True:
                f = ws.recv(a.timeout)
                if f.get("id") != qid or f["type"] == "accepted":
                    continue
                if f["type"] == "stage":
                    print(f"  {f.get('stage', '?'):<22} {f.get('state', ''):<8} {f.get('ms', 0):9.1f} ms"
                          f"  {f.get('calls', 0)} calls  {f.get('detail', '')}"[:160])
                    continue
                print(f"  {f['type']} after {time.time() - t0:.2f} s:")
                if f["type"] == "result":
                    print("  sql:", f.get("sql"))
                    print("  executed:", f.get("executed"), f.get("error", ""))
                    print("  columns:", f.get("columns"), "rows:", (f.get("rows") or [])[:5])
                    failures += not f.get("executed")
                else:
                    print("  ", f)
                    failures += 1
                break
        ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if before is not None:
        after = hashes(a.hash_dir)
        same = before == after
        print(f"\n{len(after)} files under {a.hash_dir}: {'byte-identical' if same else 'CHANGED'} after serve")
        failures += not same
    print(f"{len(a.ask)} questions, {failures} without an executed answer or with a changed folder")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
