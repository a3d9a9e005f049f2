#!/usr/bin/env python3
"""Most SQLite VM steps of any gold query of a Spider-layout set: gold_vm_steps.py DIR spider|synthetic.

Used to size sqlexec::simulated_limits() (docs/sqlexec.md). Run with /usr/bin/python3 (SQLite 3.40, as t2s links)."""
import sqlite3, json, sys, os
def measure(pairs):
    best = (0, None)
    conns = {}
    for db, sql in pairs:
        c = conns.get(db)
        if c is None:
            c = conns[db] = sqlite3.connect("file:%s?mode=ro&immutable=1" % db, uri=True)
        n = [0]
        def h():
            n[0] += 100
            return 0
        c.set_progress_handler(h, 100)
        c.execute(sql).fetchall()
        if n[0] > best[0]: best = (n[0], sql)
    return best
root = sys.argv[1]; kind = sys.argv[2]
if kind == "spider":
    dev = json.load(open(os.path.join(root, "dev.json")))
else:
    dev = json.load(open(os.path.join(root, "questions.json")))
pairs = [(os.path.join(root, "database", q["db_id"], q["db_id"] + ".sqlite"), q["query"]) for q in dev]
print(kind, len(pairs), measure(pairs))
