#!/usr/bin/env bash
# Instructions per operation of the authorization server's and the SQLite
# store's Go benchmarks, counted by valgrind's callgrind (see instructions.sh
# for the method: each benchmark at 200 and at 400 iterations, the difference
# divided by 200). With a second source tree of the module, such as an
# earlier commit checked out with `git worktree add` or `git archive`, it
# counts both and prints their ratio: a before/after comparison that the
# machine's load does not move.
#   bash bench/instructions_as.sh [BEFORE_TREE]   (needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
build() { # tree tag
  (cd "$1" && go test -c -o "$tmp/$2-as.test" ./authserver/ && go test -c -o "$tmp/$2-sqlite.test" ./internal/store/sqlite/)
}
count() { # binary regex iterations -> total instructions
  GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$1" \
    -test.run=NONE -test.bench="$2" -test.benchtime="$3x" -test.cpu=1 >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$tmp/cg"
}
per_op() { local a b; a=$(count "$1" "$2" 200); b=$(count "$1" "$2" 400); echo $(( (b - a) / 200 )); }
build . after
if [ -n "$before" ]; then
  build "$before" before
  echo "| benchmark | instructions/op | before | ratio |"
  echo "|---|--:|--:|--:|"
else
  echo "| benchmark | instructions/op |"
  echo "|---|--:|"
fi
for b in as:IntrospectJWT$ as:ClientCredentials/jwt$ as:ClientCredentials/opaque$ as:Refresh$ \
         sqlite:GetClient$ sqlite:GetAccessToken$ sqlite:CreateAccessToken$ sqlite:RotateRefreshToken$; do
  pkg=${b%%:*} re=${b#*:}
  n=$(per_op "$tmp/after-$pkg.test" "$re")
  if [ -n "$before" ]; then
    m=$(per_op "$tmp/before-$pkg.test" "$re")
    echo "| $pkg $re | $n | $m | $(awk "BEGIN{printf \"%.2f\", $n/$m}") |"
  else
    echo "| $pkg $re | $n |"
  fi
done
