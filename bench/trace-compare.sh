#!/bin/bash
# Issue 14, seventh part: syscall counts (strace -c) or on-CPU samples (perf record) of each broker of the compare bench.
#   bench/trace-compare.sh strace OUTDIR BROKERS SECONDS   strace -c -f of each broker child, its whole life (ramp + load);
#                                                         run it with SECONDS 20 and 1 and subtract for the load alone
#   bench/trace-compare.sh perf OUTDIR BROKERS SECONDS     perf record -g (4 kHz on-CPU) of each broker during its load window
#                                                         (SECONDS-2 s); with NODE_OPTIONS=--perf-basic-prof for JS names
#   bench/trace-compare.sh split PERF_DATA [PATTERN...]    samples of a perf file by syscall / GC / SQLite / thread, and the
#                                                         samples whose stack holds each PATTERN (one sample = 250 µs of CPU)
# Needs root (ptrace, perf), `npm run build` first, one round, 1,000 devices at 1,000 heartbeats/s.
set -u
mode=$1
if [[ $mode == split ]]; then
  shift
  exec python3 - "$@" <<'PY'
import collections, re, subprocess, sys
f, pats = sys.argv[1], sys.argv[2:]
out = subprocess.run(['perf', 'script', '-i', f, '-F', 'pid,tid,ip,sym'], capture_output=True, text=True).stdout
rules = [('writev', r'do_writev'), ('read', r'ksys_read'), ('epoll_pwait', r'epoll_pwait'), ('pwrite64', r'pwrite64'),
         ('pread64', r'pread64'), ('fcntl', r'sys_fcntl'), ('futex', r'sys_futex'), ('fsync', r'fsync'),
         ('other syscall', r'do_syscall_64'), ('page fault', r'exc_page_fault'),
         ('GC', r'Heap::|Scavenge|MarkCompact|ConcurrentMarking|Sweeper|Evacuat|IncrementalMarking'), ('SQLite', r'sqlite3'),
         ('JIT compiler', r'PipelineCompilationJob|compiler::')]
cats, hits, total = collections.Counter(), collections.Counter(), 0
for s in out.split('\n\n'):
    lines = [l for l in s.strip().split('\n') if l.strip()]
    if not lines:
        continue
    pid, tid = lines[0].split()[0].split('/')
    total += 1
    where = 'main' if pid == tid else 'other threads'
    name = next((n for n, rx in rules if re.search(rx, s)), 'rest (JS, V8, node)')
    cats[(where, name)] += 1
    for p in pats:
        if p in s:
            hits[p] += 1
print(f'{f}: {total} samples')
for (where, name), n in sorted(cats.items(), key=lambda kv: -kv[1]):
    print(f'  {where:13} {name:20} {n:6} {100 * n / total:5.1f}%')
for p in pats:
    print(f'  stack holds {p}: {hits[p]}')
PY
fi
out=$2 brokers=$3 secs=$4
mkdir -p "$out"
cd "$(dirname "$0")/.."
node dist/bench/run.js --only compare --brokers "$brokers" --rounds 1 --compare-seconds "$secs" >"$out/bench.txt" 2>&1 &
run=$!
declare -A pid=() traced=()
while kill -0 $run 2>/dev/null; do
  for p in $(ps -o pid= --ppid $run); do
    kind=$(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | awk '/broker-child/ {print $3}')
    [[ -n $kind ]] && pid[$kind]=$p
  done
  for k in "${!pid[@]}"; do
    [[ -n ${traced[$k]:-} ]] && continue
    if [[ $mode == strace ]]; then
      traced[$k]=1
      strace -c -f -p "${pid[$k]}" -o "$out/strace-$k.txt" 2>/dev/null &
    elif grep -q "round 1 $k: 1000/s" "$out/bench.txt"; then
      traced[$k]=1
      perf record -q -g -p "${pid[$k]}" -o "$out/perf-$k.data" -- sleep $((secs - 2)) >/dev/null 2>&1 &
    fi
  done
  sleep 0.05
done
wait
grep -E 'CPU per heartbeat|main thread' "$out/bench.txt"
