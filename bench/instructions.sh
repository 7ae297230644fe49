#!/usr/bin/env bash
# Instructions per operation of Go benchmarks, counted by valgrind's callgrind:
# repeatable on a shared, noisy machine where wall-clock benchmarks are not.
# Each benchmark runs at 200 and at 400 iterations; the difference divided by
# 200 is the cost of one operation, without the set-up.
#   bash bench/instructions.sh        (needs valgrind: apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/jose.test" ./internal/jose/
go test -c -o "$tmp/resource.test" ./resource/
go test -c -o "$tmp/outbound.test" ./outbound/
count() { # binary regex iterations -> total instructions
  GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$1" \
    -test.run=NONE -test.bench="$2" -test.benchtime="$3x" -test.cpu=1 >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$tmp/cg"
}
per_op() { local a b; a=$(count "$1" "$2" 200); b=$(count "$1" "$2" 400); echo $(( (b - a) / 200 )); }
raw=$(per_op "$tmp/jose.test" 'RawES256Verify$')
cold=$(per_op "$tmp/resource.test" 'VerifyES256Cold$')
cached=$(per_op "$tmp/resource.test" 'VerifyES256Cached$')
exchange=$(per_op "$tmp/outbound.test" 'ExchangeCacheHit$')
echo "| operation | instructions/op | ratio to raw ES256 verify |"
echo "|---|--:|--:|"
echo "| raw ES256 signature check (go-jose, token pre-parsed) | $raw | 1.00 |"
echo "| resource.Verifier, ES256, cold (cache off) | $cold | $(awk "BEGIN{printf \"%.3f\", $cold/$raw}") |"
echo "| resource.Verifier, verified-token cache hit | $cached | $(awk "BEGIN{printf \"%.3f\", $cached/$raw}") |"
echo "| outbound.Exchange, cache hit | $exchange | $(awk "BEGIN{printf \"%.3f\", $exchange/$raw}") |"
