#!/usr/bin/env python3
"""Agreement of tidewatch's sentiment scores with the reference vaderSentiment.

Runs the reference package (pip install vaderSentiment==3.3.2) over the
English posts ("lang": "en") of a canonical JSONL file, runs tidewatch's
`sentiment_scores` example over the same posts, and prints, for each of
compound, pos, neu and neg and for all four at once, the share of posts on
which the two agree within 1e-3, then the first disagreements.

Usage: scripts/vader_agreement.py [CANONICAL_JSONL] [--show N]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

TOLERANCE = 1e-3
FIELDS = ("compound", "pos", "neu", "neg")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = REPO_ROOT.parent / "shared" / "data" / "canonical" / "tweeteval.jsonl"


def english_lines(path):
    """The raw JSONL lines of posts tagged English, and their texts."""
    lines, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            post = json.loads(line)
            if post.get("lang") == "en" and isinstance(post.get("text"), str):
                lines.append(line)
                texts.append(post["text"])
    return lines, texts


def tidewatch_scores(lines):
    """Scores from tidewatch, one (compound, pos, neu, neg) tuple per line."""
    cmd = ["cargo", "run", "--release", "-q", "-p", "tidewatch-core",
           "--example", "sentiment_scores"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, input="\n".join(lines) + "\n",
                          capture_output=True, text=True, check=True)
    if done.stderr.strip():
        print("tidewatch:", done.stderr.strip())
    rows = [tuple(float(x) for x in row.split("\t"))
            for row in done.stdout.splitlines()]
    if len(rows) != len(lines):
        sys.exit(f"tidewatch wrote {len(rows)} lines for {len(lines)} posts")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default=str(DEFAULT_INPUT))
    parser.add_argument("--show", type=int, default=10,
                        help="how many disagreements to list")
    args = parser.parse_args()

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lines, texts = english_lines(args.input)
    if not lines:
        sys.exit("no English posts found")
    analyzer = SentimentIntensityAnalyzer()
    reference = [analyzer.polarity_scores(t) for t in texts]
    ours = tidewatch_scores(lines)

    agree = {f: 0 for f in FIELDS}
    agree_all = 0
    identical = 0
    disagreements = []
    for i, (ref, got) in enumerate(zip(reference, ours)):
        ok = [abs(ref[f] - g) <= TOLERANCE for f, g in zip(FIELDS, got)]
        for f, good in zip(FIELDS, ok):
            agree[f] += good
        if all(ok):
            agree_all += 1
        if all(ref[f] == g for f, g in zip(FIELDS, got)):
            identical += 1
        else:
            disagreements.append(i)

    n = len(lines)
    print(f"{n} English posts from {args.input}")
    for f in FIELDS:
        print(f"  {f:<9} within {TOLERANCE:g}: {agree[f]}/{n} = {100 * agree[f] / n:.3f}%")
    print(f"  all four  within {TOLERANCE:g}: {agree_all}/{n} = {100 * agree_all / n:.3f}%")
    print(f"  all four identical:     {identical}/{n} = {100 * identical / n:.3f}%")
    for i in disagreements[:args.show]:
        ref = reference[i]
        print(f"- post {i}: {texts[i]!r}")
        print("    reference:", " ".join(f"{f}={ref[f]}" for f in FIELDS))
        print("    tidewatch:", " ".join(f"{f}={g}" for f, g in zip(FIELDS, ours[i])))


if __name__ == "__main__":
    main()
