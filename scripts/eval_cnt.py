#!/usr/bin/env python3
"""Edge-set agreement of `tidewatch coordination --compat cnt` with the
coordination-network-toolkit (CNT) 1.5.2, per network type.

The idea: both tools read the same CSV (CNT's own input layout) made from a
generated stream; CNT computes its co-tweet, co-link, co-retweet and
co-reply networks; tidewatch computes the compatible edge list; the two edge
sets are compared per type.

Steps:

1. `tidewatch gen` writes a stream of POSTS posts over one day (planted
   campaigns in an organic background), unless --data is given.
2. The stream becomes CNT's CSV: message_id, user_id, username, repost_id,
   reply_id, message, timestamp (integer unix seconds), urls (space
   separated, taken from the text). Ids and users are prefixed with the
   platform, since CNT de-duplicates on message_id alone.
3. CNT (installed with pip into a virtual environment in a temporary
   directory) loads that CSV and computes the four networks with the same
   window and minimum weight. The rows are loaded through CNT's
   `preprocess_data` with the urls cell split on spaces and empty strings
   dropped: CNT 1.5.2's own CSV loader turns an empty urls cell into one url
   "", which links every post without a link to every other one in the
   co-link network. Self-loops are dropped as CNT's exporter does.
4. `tidewatch ingest` pseudonymises the same CSV with a fresh data
   directory's keyring; `tidewatch coordination --data DIR --input CSV
   --compat cnt --format csv` computes the edges with the same keyring. The
   ingested file, in the CSV's order, maps each user to its pseudonym (in
   memory only; nothing is printed about accounts).
5. Scope: tidewatch outputs only edges whose accounts lie in a connected
   component (all types together, direction ignored) of at least k = 5
   accounts — its privacy rule. The same rule is applied to CNT's edges
   before comparing, so both sides are compared over the same scope; the
   number of CNT edges outside it is reported too.

Run: `python3 scripts/eval_cnt.py [--posts 300000] [--window 60]
[--min-weight 2] [--tidewatch target/release/tidewatch] [--data FILE]`.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime

TYPES = {
    # tidewatch type: (CNT command, CNT compute function name)
    "co-post": ("co_tweet", "compute_co_tweet_network"),
    "co-link": ("co_link", "compute_co_link_network"),
    "co-repost": ("co_retweet", "compute_co_retweet_parallel"),
    "co-reply": ("co_reply", "compute_co_reply_network"),
}

LINK = re.compile(r"https?://\S+")


def links_of(text):
    """Links as a reader would copy them: trailing punctuation left out."""
    out = []
    for m in LINK.findall(text):
        m = m.rstrip(".,;:!?)\"'")
        if m and m not in out:
            out.append(m)
    return out


def to_cnt_csv(jsonl, out_csv):
    n = 0
    with open(jsonl, encoding="utf-8") as f, open(out_csv, "w", newline="", encoding="utf-8") as o:
        w = csv.writer(o)
        w.writerow(["message_id", "user_id", "username", "repost_id", "reply_id", "message", "timestamp", "urls"])
        for line in f:
            p = json.loads(line)
            if not p.get("author") or not p.get("created_at"):
                continue
            plat = p.get("platform", "x")
            user = f"{plat}.{p['author']}"
            t = int(datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")).timestamp())
            pid = lambda v: f"{plat}.{v}" if v else ""
            text = p.get("text", "")
            w.writerow([pid(p["id"]), user, user, pid(p.get("repost_of")), pid(p.get("reply_to")), text, t,
                        " ".join(links_of(text))])
            n += 1
    return n


CNT_RUNNER = r"""
import csv, sys, json
from coordination_network_toolkit.preprocess import preprocess_data
from coordination_network_toolkit import compute_networks as cn
from coordination_network_toolkit.graph import get_edge_rows
db, path, window, minw, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with open(path, encoding="utf-8") as f:
    r = csv.reader(f)
    next(r)
    preprocess_data(db, ((*row[:-1], [u for u in row[-1].split(" ") if u]) for row in r))
cn.compute_co_tweet_network(db, window, min_edge_weight=minw, n_threads=2)
cn.compute_co_link_network(db, window, min_edge_weight=minw, n_threads=2)
cn.compute_co_retweet_parallel(db, window, min_edge_weight=minw, n_threads=2)
cn.compute_co_reply_network(db, window, min_edge_weight=minw, n_threads=2)
with open(out, "w") as o:
    for cmd in ["co_tweet", "co_link", "co_retweet", "co_reply"]:
        for u1, u2, wt, c in get_edge_rows(db, cmd):
            o.write(json.dumps([u1, u2, wt, c]) + "\n")
"""


def components_filter(edges, k):
    """Edges (set of (s, t, type) -> weight) whose accounts lie in a
    component of at least k accounts, all types together."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (s, t, _) in edges:
        a, b = find(s), find(t)
        if a != b:
            parent[a] = b
    size = defaultdict(int)
    for x in list(parent):
        size[find(x)] += 1
    return {e: w for e, w in edges.items() if size[find(e[0])] >= k}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--window", type=int, default=60, help="seconds")
    ap.add_argument("--min-weight", type=int, default=2)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--tidewatch", default="target/release/tidewatch")
    ap.add_argument("--data", help="canonical JSON Lines to use instead of generating")
    ap.add_argument("--venv", help="an existing virtual environment with CNT 1.5.2")
    args = ap.parse_args()
    tw = os.path.abspath(args.tidewatch)

    with tempfile.TemporaryDirectory() as tmp:
        def sh(cmd, **kw):
            return subprocess.run(cmd, check=True, cwd=tmp, **kw)

        venv = args.venv
        if not venv:
            venv = os.path.join(tmp, "venv")
            sh([sys.executable, "-m", "venv", venv])
            sh([os.path.join(venv, "bin", "pip"), "install", "-q", "coordination-network-toolkit==1.5.2"])
        data = args.data and os.path.abspath(args.data)
        if not data:
            data = os.path.join(tmp, "gen.jsonl")
            sh([tw, "gen", "--posts", str(args.posts), "--days", "1", "--seed", str(args.seed), "--out", data],
               stdout=subprocess.DEVNULL)
        cnt_csv = os.path.join(tmp, "cnt.csv")
        rows = to_cnt_csv(data, cnt_csv)

        # CNT.
        runner = os.path.join(tmp, "run_cnt.py")
        with open(runner, "w") as f:
            f.write(CNT_RUNNER)
        t0 = time.time()
        sh([os.path.join(venv, "bin", "python"), runner, os.path.join(tmp, "cnt.db"), cnt_csv, str(args.window),
            str(args.min_weight), os.path.join(tmp, "cnt_edges.jsonl")], stdout=subprocess.DEVNULL)
        cnt_secs = time.time() - t0
        names = {v[0]: k for k, v in TYPES.items()}
        cnt = {}
        with open(os.path.join(tmp, "cnt_edges.jsonl")) as f:
            for line in f:
                u1, u2, w, c = json.loads(line)
                cnt[(u1, u2, names[c])] = w

        # tidewatch: pseudonyms from the same keyring as the edges.
        dd = os.path.join(tmp, "data")
        ingested = os.path.join(tmp, "ingested.jsonl")
        sh([tw, "ingest", "--data", dd, "--format", "csv", "--csv", "cnt", "--out", ingested, cnt_csv],
           stderr=subprocess.DEVNULL)
        pseudonym = {}
        with open(cnt_csv, encoding="utf-8") as f, open(ingested, encoding="utf-8") as g:
            r = csv.reader(f)
            next(r)
            for row, line in zip(r, g):
                pseudonym[row[1]] = json.loads(line)["author"]
        t0 = time.time()
        out = sh([tw, "coordination", "--data", dd, "--input", cnt_csv, "--compat", "cnt", "--format", "csv",
                  "--window", f"{args.window}s", "--min-weight", str(args.min_weight), "--k", str(args.k)],
                 capture_output=True, text=True).stdout
        tw_secs = time.time() - t0
        tide = {}
        for row in list(csv.reader(out.splitlines()))[1:]:
            tide[(row[0], row[1], row[3])] = int(row[2])

    cnt_p = {(pseudonym.get(s, "?" + s), pseudonym.get(t, "?" + t), ty): w for (s, t, ty), w in cnt.items()}
    in_scope = components_filter(cnt_p, args.k)
    report = {"rows": rows, "window_s": args.window, "min_weight": args.min_weight, "k": args.k,
              "cnt_seconds": round(cnt_secs, 1), "tidewatch_seconds": round(tw_secs, 1), "types": {}}
    for ty in TYPES:
        a = {e: w for e, w in in_scope.items() if e[2] == ty}
        b = {e: w for e, w in tide.items() if e[2] == ty}
        both = set(a) & set(b)
        report["types"][ty] = {
            "cnt_edges_all": sum(1 for e in cnt_p if e[2] == ty),
            "cnt_edges_in_k_scope": len(a),
            "tidewatch_edges": len(b),
            "common": len(both),
            "only_cnt": len(set(a) - set(b)),
            "only_tidewatch": len(set(b) - set(a)),
            "same_weight": sum(1 for e in both if a[e] == b[e]),
            "jaccard": round(len(both) / max(1, len(set(a) | set(b))), 4),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
