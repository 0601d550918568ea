#!/usr/bin/env bash
# Smoke check of the local Grid Engine started by start-local-sge.sh. Submits real jobs and proves:
#   - an array job (-t 1-3) sees $SGE_TASK_ID,
#   - -hold_jid on that array waits for all of its tasks,
#   - -l h_vmem=1G -pe smp 2 gives NSLOTS=2 and ulimit -v = 2 x 1G,
#   - -q gpu.q -l gpu=1 runs (also with -pe smp 2),
#   - a job without -l gpu is never scheduled to gpu.q (gpu is FORCED),
#   - qsub -sync y returns the job's exit code.
# Exits non-zero if any check fails. Runs as any user the cluster accepts (root included).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=local-sge-common.sh
. "$here/local-sge-common.sh"

qmaster_answers || die "Grid Engine does not answer (run sge/testing/start-local-sge.sh)"

dir=$(mktemp -d /tmp/bootgpu-sge-check.XXXXXX)
chmod 0755 "$dir"
submitted=()
cleanup() {
    if ((${#submitted[@]})); then qdel "${submitted[@]}" >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

failures=0
pass() { log "PASS: $*"; }
fail() { log "FAIL: $*"; failures=$((failures + 1)); }
# common qsub options: our scratch dir for output, a POSIX shell, a recognisable name
QSUB=(qsub -S /bin/sh -wd "$dir" -o "$dir" -e "$dir" -N bootgpu_check)
sync_qsub() { timeout 120 "${QSUB[@]}" -sync y "$@" >>"$dir/qsub.log" 2>&1; }
show() { sed 's/^/    /' "$@" >&2 2>/dev/null || true; }

# --- 1. array job with $SGE_TASK_ID ------------------------------------------------------------
cat >"$dir/array.sh" <<'EOF'
sleep 2
echo "$SGE_TASK_ID" >"task.$SGE_TASK_ID.tmp" && mv "task.$SGE_TASK_ID.tmp" "task.$SGE_TASK_ID"
EOF
out=$("${QSUB[@]}" -terse -q cpu.q -t 1-3 "$dir/array.sh" 2>&1)
array_jid=${out%%.*}
if [[ $array_jid =~ ^[0-9]+$ ]]; then
    submitted+=("$array_jid")
else
    fail "array job submission: $out"
    array_jid=""
fi

# --- 2. -hold_jid on the array: runs only after all three tasks wrote their file ---------------
cat >"$dir/hold.sh" <<'EOF'
for i in 1 2 3; do
    [ "$(cat "task.$i" 2>/dev/null)" = "$i" ] || { echo "task.$i missing or wrong"; exit 1; }
done
echo "all tasks done"
EOF
if [[ -n $array_jid ]]; then
    if sync_qsub -q cpu.q -hold_jid "$array_jid" -o "$dir/hold.out" -j y "$dir/hold.sh"; then
        pass "array -t 1-3 wrote SGE_TASK_ID 1,2,3 and -hold_jid $array_jid waited for all tasks"
    else
        fail "array / -hold_jid:"; show "$dir/hold.out" "$dir/qsub.log"
    fi
fi

# --- 3. -l h_vmem=1G -pe smp 2: NSLOTS=2, ulimit -v = h_vmem x slots ---------------------------
cat >"$dir/pe.sh" <<'EOF'
echo "NSLOTS=$NSLOTS ulimit_v=$(ulimit -v) QUEUE=$QUEUE"
[ "$NSLOTS" = 2 ] && [ "$(ulimit -v)" = 2097152 ]
EOF
if sync_qsub -q cpu.q -l h_vmem=1G -pe smp 2 -o "$dir/pe.out" -j y "$dir/pe.sh"; then
    pass "-l h_vmem=1G -pe smp 2: $(cat "$dir/pe.out")"
else
    fail "-l h_vmem=1G -pe smp 2 (want NSLOTS=2 ulimit_v=2097152):"; show "$dir/pe.out"
fi

# --- 4. gpu.q with -l gpu=1 ---------------------------------------------------------------------
cat >"$dir/queue.sh" <<'EOF'
echo "QUEUE=$QUEUE NSLOTS=$NSLOTS"
[ "$QUEUE" = "$1" ]
EOF
if sync_qsub -q gpu.q -l gpu=1 -o "$dir/gpu.out" -j y "$dir/queue.sh" gpu.q; then
    pass "-q gpu.q -l gpu=1 ran: $(cat "$dir/gpu.out")"
else
    fail "-q gpu.q -l gpu=1:"; show "$dir/gpu.out"
fi
if sync_qsub -l gpu=1 -pe smp 2 -o "$dir/gpu2.out" -j y "$dir/queue.sh" gpu.q; then
    pass "-l gpu=1 -pe smp 2 (no -q) ran on gpu.q: $(cat "$dir/gpu2.out")"
else
    fail "-l gpu=1 -pe smp 2:"; show "$dir/gpu2.out"
fi

# --- 5. no -l gpu -> never gpu.q ------------------------------------------------------------------
if out=$(qsub -w v -q gpu.q -b y /bin/true 2>&1); then
    fail "qsub -w v -q gpu.q without -l gpu was accepted as schedulable: $out"
else
    pass "qsub -w v -q gpu.q without -l gpu is rejected: $(grep -m1 -i forced <<<"$out" || head -n1 <<<"$out")"
fi
if out=$(qsub -w v -q gpu.q -l gpu=1 -b y /bin/true 2>&1); then
    pass "qsub -w v -q gpu.q -l gpu=1 verifies"
else
    fail "qsub -w v -q gpu.q -l gpu=1 does not verify: $out"
fi
# A job forced at gpu.q without -l gpu must stay pending while the scheduler runs (every 1 s).
out=$("${QSUB[@]}" -terse -q gpu.q -b y /bin/true 2>&1)
pending_jid=${out%%.*}
if [[ $pending_jid =~ ^[0-9]+$ ]]; then
    submitted+=("$pending_jid")
    # Meanwhile, jobs that name no queue must land in cpu.q.
    plain_ok=1
    for i in 1 2; do
        sync_qsub -o "$dir/plain.$i.out" -j y "$dir/queue.sh" cpu.q || plain_ok=0
    done
    if ((plain_ok)); then
        pass "jobs without -q and -l gpu ran in cpu.q"
    else
        fail "jobs without -q ran elsewhere:"; show "$dir"/plain.*.out
    fi
    sleep 2
    state=$(qstat | awk -v j="$pending_jid" '$1 == j { print $5 }')
    if [[ $state == qw ]]; then
        pass "job $pending_jid with -q gpu.q and no -l gpu stays pending (qw)"
    else
        fail "job $pending_jid with -q gpu.q and no -l gpu is in state '${state:-gone}', not qw"
    fi
    qdel "$pending_jid" >/dev/null 2>&1 || true
else
    fail "submitting the pending gpu.q job: $out"
fi

# --- 6. qsub -sync y returns the job's exit code ---------------------------------------------------
sync_qsub -q cpu.q -b y -o /dev/null -j y 'exit 3'
rc=$?
if [[ $rc == 3 ]]; then
    pass "qsub -sync y returned the job's exit code (3)"
else
    fail "qsub -sync y of 'exit 3' returned $rc"
fi

if ((failures)); then
    log "$failures check(s) FAILED"
    qstat -f >&2 || true
    exit 1
fi
log "all checks passed in $(elapsed)s"
