#!/usr/bin/env bash
# examples.sh - the example programs run and print what they should.
set -euo pipefail
b=${1:?build dir}/examples
[[ -x $b/showcase ]] || exit 77
out=$("$b/worker_pool")
[[ $out == "1000 results; the longest Collatz chain below 1001 starts at 871 (178 steps)" ]] ||
    { echo "worker_pool: $out"; exit 1; }
out=$("$b/pipeline")
first=$(echo "$out" | cut -d' ' -f1-10)
[[ $first == "2 3 5 7 11 13 17 19 23 29" ]] || { echo "pipeline: $first"; exit 1; }
[[ $(echo "$out" | wc -w) == 100 ]] || { echo "pipeline printed $(echo "$out" | wc -w) primes"; exit 1; }
[[ $(echo "$out" | awk '{print $100}') == 541 ]] || { echo "pipeline: 100th prime wrong"; exit 1; }
out=$("$b/showcase" quick)
for want in "spawned and finished 10000 goroutines" "1000 goroutines parked" \
            "channel ping-pong: 1000 round trips" "every value arrived" \
            "gort_free_os_memory" "200 loopback connections, 2000 echoes"; do
    grep -q "$want" <<<"$out" || { echo "showcase lacks: $want"; echo "$out"; exit 1; }
done
out=$("$b/echo_server" selftest 200)
[[ $out == "echo_server: 200 clients, every echo matched" ]] || { echo "echo_server: $out"; exit 1; }
out=$("$b/fetch_many" 500)
[[ $out == "fetch_many: 500 of 500 fetches answered (22000 bytes), GOMAXPROCS="* ]] || { echo "fetch_many: $out"; exit 1; }
echo "examples ok"
