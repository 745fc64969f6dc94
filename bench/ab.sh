#!/bin/bash
# Alternating runs of whole commands, for ratios measured in the same run on a shared machine: each command
# runs N times in turn under `perf stat -e task-clock` (CPU time of all its threads); prints min and median
# CPU and wall time per command.   usage: bench/ab.sh N "cmd1 args" "cmd2 args" ...
N=$1
shift
tmp=$(mktemp -d)
for i in $(seq $N); do
  k=0
  for c in "$@"; do
    k=$((k+1))
    s=$(date +%s%N)
    cpu=$(perf stat -x, -e task-clock $c 2>&1 >/dev/null | grep task-clock | cut -d, -f1)
    e=$(date +%s%N)
    echo "$cpu $(( (e-s)/1000000 ))" >> $tmp/$k
  done
done
k=0
for c in "$@"; do
  k=$((k+1))
  cpu=$(cut -d' ' -f1 $tmp/$k | sort -n | awk '{a[NR]=$1} END {printf "min %.0f med %.0f", a[1], a[int((NR+1)/2)]}')
  wall=$(cut -d' ' -f2 $tmp/$k | sort -n | awk '{a[NR]=$1} END {printf "min %d med %d", a[1], a[int((NR+1)/2)]}')
  echo "CPU ms: $cpu | wall ms: $wall | $c"
done
rm -rf $tmp
