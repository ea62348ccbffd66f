# Shared by the scripts/bench-*.sh that drive backends through 'vhostj bench': a work directory
# removed on exit with whatever backend is still running, waiting for a socket, stopping, and a
# backend's CPU time. Source it after ROOT is set; then call bench_init NAME.

bench_init() { # name: the work directory's prefix and the messages' name
  BENCH_NAME=$1
  work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-$1.XXXXXX")
  pid=
  trap bench_cleanup EXIT
}

bench_cleanup() {
  [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}

bench_fail() { echo "$BENCH_NAME: $*" >&2; exit 1; }

wait_socket() { # socket log: up to 20 s for a backend (started as $pid) to listen
  for _ in $(seq 400); do [[ -S "$1" ]] && return 0; sleep 0.05; done
  bench_fail "no socket $1: $(cat "$2")"
}

stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=; }

cpu_ticks() { # utime + stime of a process and its threads, in 1/100 s
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# run_blk_jobs NAME SOCKET: each "rw bs iodepth" of the array 'jobs' through 'vhostj bench blk',
# one JSON line per job appended to $results (with the backend's CPU time over ramp + run).
run_blk_jobs() {
  for j in "${jobs[@]}"; do
    read -r rw bs qd <<<"$j"
    local t0 t1 json
    t0=$(cpu_ticks "$pid")
    json=$("$ROOT/bin/vhostj" bench blk --socket "$2" --rw "$rw" --bs "$bs" --iodepth "$qd" --runtime "$runtime" \
      --ramp_time "${ramp:-1}" --json)
    t1=$(cpu_ticks "$pid")
    echo "{\"backend\":\"$1\",\"backend_cpu_s\":$(( t1 - t0 ))e-2,\"wall_s\":$(python3 -c "print($runtime+${ramp:-1})"),${json#\{}" \
      | tee -a "$results" >&2
  done
}
