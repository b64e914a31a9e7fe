#!/usr/bin/env bash
# Evaluation (not a unit test): ingest every file under the evaluation data's
# formats/ with --format auto, per source, and compare the post counts with
# the compiled canonical files. Usage: scripts/check_formats.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
cargo build --release -q
bin=target/release/tidewatch
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
check() { # name, canonical file (or a number), directory
  local name="$1" want="$2" dir="$3"
  mapfile -t files < <(find "$data/formats/$dir" -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.ndjson' -o -name '*.rss' -o -name '*.zst' -o -name '*.gz' \) | sort)
  "$bin" ingest --data "$tmp/data" --out "$tmp/$name.jsonl" "${files[@]}" 2>"$tmp/$name.log" || true
  local got; got=$(grep -c . "$tmp/$name.jsonl" | tr -d ' ')
  local dels; dels=$(grep -c '^{"delete"' "$tmp/$name.jsonl" || true)
  got=$((got - dels))
  if [[ "$want" =~ ^[0-9]+$ ]]; then local expect="$want"; else local expect; expect=$(grep -c . "$data/canonical/$want"); fi
  local verdict=ok; [[ "$got" == "$expect" ]] || { verdict=DIFFERENT; status=1; }
  printf '%-18s %6d files  %7d posts  %7d expected  %s\n' "$name" "${#files[@]}" "$got" "$expect" "$verdict"
}
check twitter_v1 twitter_v1_python_twitter.jsonl twitter_v1
check twitter_v2 twitter_v2_twarc_csv.jsonl twitter_v2
check jetstream bluesky_jetstream.jsonl bluesky_jetstream
check mastodon mastodon_py_cassettes.jsonl mastodon
check reddit reddit_praw_cassettes.jsonl reddit
# The canonical RSS file splits each daily item into its news bullets; a feed
# reader sees one post per item: 275 unique items across the snapshots.
check rss 275 rss
exit $status
