#!/bin/bash
# Compares two mmdb binaries on the JSON Lines that main.go writes: the
# same schema, imports, evals, alignments and searches through each, then
# the outputs side by side. Search hits are compared as sets with their
# scores (the order of exactly tied distances varies between runs of one
# binary: the graph is built in parallel).
#
#   go run ./internal/bench/identity ../shared/data /tmp/ident
#   internal/bench/identity/identity.sh /tmp/mmdb-old /tmp/mmdb-new /tmp/ident
set -u
OLD=$1; NEW=$2; DIR=$3
one() { # BINARY OUT
	B=$1; O=$2; rm -rf "$O"; mkdir -p "$O"; D=$O/db.mmdb
	printf '.define image 512 cosine clip\n.define text 512 cosine clip\n.define rimage 512 cosine rimg\n.define rtext 512 cosine rtxt\n.define sift 128 l2 sift\n.define siftq 128 l2 sift\n' | "$B" shell "$D" > "$O/define.out" 2>&1
	"$B" import "$D" "$DIR/coco.jsonl" "$DIR/sift.jsonl" > "$O/import.out" 2>&1
	for p in "text image" "image text" "rtext rimage" "rtext image" "text rimage"; do "$B" eval --json "$D" $p; done > "$O/eval.out" 2>&1
	{
	for i in 001 017 123 250 499; do
		for s in "SEARCH image NEAR text OF 'c$i' LIMIT 10" "SEARCH image NEAR text OF 'c$i' WHERE n < 100 LIMIT 10" \
			"SEARCH rimage NEAR rtext OF 'c$i' LIMIT 10" "SEARCH image NEAR text OF 'c$i', rtext OF 'c002' WHERE odd = true LIMIT 10"; do
			"$B" query --mode json "$D" "$s"
		done
	done
	for i in $(seq -w 0 99); do "$B" query --mode json "$D" "SEARCH sift NEAR siftq OF 'q0$i' LIMIT 100"; done
	} > "$O/query.out" 2>&1
}
one "$OLD" "$DIR/old"
one "$NEW" "$DIR/new"
for f in define import eval; do
	if cmp -s "$DIR/old/$f.out" "$DIR/new/$f.out"; then echo "$f: identical"; else echo "$f: DIFFERENT (diff $DIR/old/$f.out $DIR/new/$f.out)"; fi
done
python3 - "$DIR/old/query.out" "$DIR/new/query.out" <<'PY'
import json, sys
a, b = (open(p).read().splitlines() for p in sys.argv[1:])
if len(a) != len(b):
    print("query: DIFFERENT line counts", len(a), len(b)); sys.exit(1)
ties = real = 0
for x, y in zip(a, b):
    if x == y:
        continue
    try:
        hx, hy = json.loads(x)["hits"], json.loads(y)["hits"]
    except Exception:
        real += 1; continue
    key = lambda hs: sorted((h["id"], h["score"]) for h in hs)
    if key(hx) == key(hy) and [h["score"] for h in hx] == [h["score"] for h in hy]:
        ties += 1
    else:
        real += 1
print(f"query: {len(a)} searches, {len(a)-ties-real} identical, {ties} differ only in the order of exact ties, {real} differ")
PY
