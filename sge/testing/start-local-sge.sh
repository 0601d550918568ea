#!/usr/bin/env bash
# Start a real single-host Son of Grid Engine 8.1.9 (Debian 12 packages) for integration tests.
#
# Needs root, no systemd. Idempotent: if the cluster already answers and is configured, it only
# verifies (load values, a trivial job) and exits 0; a half-done start is completed.
# LOCAL_SGE_RECONFIGURE=1 re-applies the configuration to a running cluster (after editing this).
# On success it writes the client environment to $LOCAL_SGE_ENV_FILE (/tmp/bootgpu-local-sge.env)
# and prints it. Follows /work/shared/notes/grid-engine.md; docs in docs/local-grid-engine.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=local-sge-common.sh
. "$here/local-sge-common.sh"

[[ $(id -u) == 0 ]] || die "must run as root"

NPROC=$(nproc)
MEM_KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)   # KiB, so SGE's "K" suffix
HVMEM_DEFAULT="$((MEM_KB / NPROC))K"                       # per-slot default (pitfall 3)
PACKAGES=(gridengine-master gridengine-exec gridengine-client)
work=$(mktemp -d /tmp/bootgpu-sge-start.XXXXXX)
policy_rc_added=""
cleanup() {
    rm -rf "$work"
    if [[ -n $policy_rc_added ]]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

write_env_file() {
    local tmp="$LOCAL_SGE_ENV_FILE.$$"
    cat >"$tmp" <<EOF
# Written by sge/testing/start-local-sge.sh: client environment for the local Grid Engine.
export SGE_ROOT=$SGE_ROOT
export SGE_CELL=$SGE_CELL
export PATH="/usr/bin:/usr/sbin:\${PATH}"
EOF
    chmod 0644 "$tmp"
    mv -f "$tmp" "$LOCAL_SGE_ENV_FILE"
    log "environment (written to $LOCAL_SGE_ENV_FILE):"
    sed -n 's/^export /  export /p' "$LOCAL_SGE_ENV_FILE" >&2
}

# ---------------------------------------------------------------------------------------------
# queue readiness: both queues listed, load value reported, no state flags (u/a/E/d...)
queue_line() { qstat -f -q "$1" 2>/dev/null | awk -v q="$1@" 'index($1, q) == 1'; }
queues_ready() {
    local q line load states
    for q in cpu.q gpu.q; do
        line=$(queue_line "$q")
        [[ -n $line ]] || return 1
        load=$(awk '{ print $4 }' <<<"$line")
        states=$(awk '{ print $6 }' <<<"$line")
        [[ $load != "-NA-" && -z $states ]] || return 1
    done
}
clear_error_states() {
    local q states
    for q in cpu.q gpu.q; do
        states=$(queue_line "$q" | awk '{ print $6 }')
        if [[ $states == *E* ]]; then
            log "queue $q in error state E; clearing (qmod -cq)"
            qmod -cq "$q" >/dev/null
        fi
    done
}
trivial_job() { timeout 60 qsub -sync y -b y -q cpu.q -o /dev/null -e /dev/null /bin/true >/dev/null; }

verify() {
    wait_for 60 "cpu.q and gpu.q to report a load value and no state flags" queues_ready || {
        clear_error_states
        wait_for 30 "queues to become ready after clearing" queues_ready || {
            qstat -f >&2 || true
            die "queues not ready"
        }
    }
    log "queues ready: $(qstat -f | awk '$1 ~ /^(cpu|gpu)\.q@/ { printf "%s load=%s  ", $1, $4 }')"
    trivial_job || { qstat -f >&2 || true; die "trivial job 'qsub -sync y -b y -q cpu.q /bin/true' failed"; }
    log "trivial job 'qsub -sync y -b y -q cpu.q /bin/true' succeeded"
}

execd_gone() { ! execd_alive; }
fully_configured() {
    qconf -sq cpu.q >/dev/null 2>&1 && qconf -sq gpu.q >/dev/null 2>&1 &&
        [[ $(qconf -sconf global | awk '$1 == "min_uid" { print $2 }') == 0 ]]
}

# ---------------------------------------------------------------------------------------------
# Fast path: already running and configured -> verify only.
# LOCAL_SGE_RECONFIGURE=1 skips it and re-applies the whole configuration to the running cluster.
if [[ ${LOCAL_SGE_RECONFIGURE:-0} != 1 ]] && qmaster_alive && execd_alive && qmaster_answers && fully_configured; then
    log "local Grid Engine already running (qmaster pid $(qmaster_pid), execd pid $(execd_pid)); verifying"
    verify
    write_env_file
    log "done (already running) in $(elapsed)s"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# 1. Install (skipped when already installed).
installed() {
    local p
    for p in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || return 1
    done
}
if installed; then
    log "packages already installed"
else
    log "installing ${PACKAGES[*]}"
    debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $SGE_HOST
EOF
    # Keep daemons (ours, exim4) from being started by the package scripts.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_rc_added=1
    fi
    apt-get update -qq >/dev/null
    log "apt-get update done"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${PACKAGES[@]}" >"$work/apt.log" 2>&1 || {
        tail -n 40 "$work/apt.log" >&2
        die "apt-get install failed"
    }
    if [[ -n $policy_rc_added ]]; then rm -f /usr/sbin/policy-rc.d; policy_rc_added=""; fi
    log "packages installed"
fi
[[ -f $SGE_COMMON/bootstrap ]] || die "$SGE_COMMON/bootstrap missing: cell not created by the packages"

# ---------------------------------------------------------------------------------------------
# 2. Host name (pitfall 1): the hostname resolves to 127.0.0.1 -> localhost; alias it.
if ! qmaster_alive; then
    if [[ $(cat "$SGE_COMMON/host_aliases" 2>/dev/null) != "$SGE_HOST localhost" ]]; then
        echo "$SGE_HOST localhost" >"$SGE_COMMON/host_aliases"
        log "wrote host_aliases: $SGE_HOST localhost"
    fi
    if [[ $(cat "$SGE_COMMON/act_qmaster" 2>/dev/null) != "$SGE_HOST" ]]; then
        echo "$SGE_HOST" >"$SGE_COMMON/act_qmaster"
        log "wrote act_qmaster: $SGE_HOST"
    fi
    chmod 0644 "$SGE_COMMON/host_aliases" "$SGE_COMMON/act_qmaster"
fi
resolved=$(/usr/lib/gridengine/gethostname -aname 2>/dev/null || true)
[[ $resolved == "$SGE_HOST" ]] || die "gethostname -aname says '$resolved', expected '$SGE_HOST'"

# ---------------------------------------------------------------------------------------------
# 3. qmaster
if qmaster_alive; then
    log "sge_qmaster already running (pid $(qmaster_pid))"
else
    log "starting sge_qmaster"
    start_daemon "$SGE_QMASTER_START"
fi
wait_for 60 "qmaster to answer 'qconf -sh'" qmaster_answers || die "qmaster does not answer"
log "qmaster answers (pid $(qmaster_pid))"

# ---------------------------------------------------------------------------------------------
# 4. Global config (pitfalls 2, 6): min_uid/min_gid 0 so root may submit; unbuffered accounting.
#    Must happen before execd starts: a running execd keeps the old values.
qconf -sconf global | sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' | grep -v '^#' >"$work/global.orig"
awk '
    $1 == "min_uid" || $1 == "min_gid" { printf "%-28s 0\n", $1; next }
    $1 == "reporting_params" {
        line = $0
        if (line !~ /accounting_flush_time=/) line = line " accounting_flush_time=00:00:00"
        else gsub(/accounting_flush_time=[^ ]*/, "accounting_flush_time=00:00:00", line)
        print line; next
    }
    { print }
' "$work/global.orig" >"$work/global"
if ! cmp -s "$work/global.orig" "$work/global"; then
    if execd_alive; then
        log "global config changes while execd runs: stopping execd first"
        qconf -ke "$SGE_HOST" >/dev/null 2>&1 || true
        wait_for 30 "execd to exit" execd_gone || die "execd did not exit"
    fi
    (cd "$work" && quietly qconf -Mconf global)
    log "global config: min_uid=0 min_gid=0, accounting_flush_time=00:00:00"
fi
[[ $(qconf -sconf global | awk '$1 == "min_uid" { print $2 }') == 0 ]] || die "min_uid is not 0"

# 5. Scheduler (pitfall 6): run every second, flush on submit/finish.
qconf -ssconf >"$work/sched"
sed -i -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
    -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
    -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' "$work/sched"
quietly qconf -Msconf "$work/sched"
log "scheduler: schedule_interval 0:0:1, flush_submit_sec 1, flush_finish_sec 1"

# 6. Complexes (pitfalls 3, 4): h_vmem consumable with non-zero default; gpu per job, FORCED.
qconf -sc >"$work/complex.orig"
awk -v def="$HVMEM_DEFAULT" '
    $1 == "h_vmem" { print "h_vmem h_vmem MEMORY <= YES YES " def " 0"; next }
    $1 == "gpu" { next }
    { print }
    END { print "gpu gpu INT <= FORCED JOB 0 0" }
' "$work/complex.orig" >"$work/complex"
if ! diff -q <(grep -v '^#' "$work/complex.orig" | awk '{$1=$1; print}' | sort) \
             <(grep -v '^#' "$work/complex" | awk '{$1=$1; print}' | sort) >/dev/null; then
    quietly qconf -Mc "$work/complex"
fi
qconf -sc | awk '$1 == "gpu" && $5 == "FORCED" && $6 == "JOB" { ok = 1 } END { exit !ok }' \
    || die "complex gpu not configured"
log "complexes: h_vmem consumable (default $HVMEM_DEFAULT per slot), gpu INT FORCED JOB"

# 7. Hosts: submit host, exec host with slots and memory.
qconf -ss 2>/dev/null | grep -qx "$SGE_HOST" || quietly qconf -as "$SGE_HOST"
cat >"$work/exechost" <<EOF
hostname              $SGE_HOST
load_scaling          NONE
complex_values        slots=$NPROC,h_vmem=${MEM_KB}K
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
if qconf -se "$SGE_HOST" >/dev/null 2>&1; then
    quietly qconf -Me "$work/exechost"
else
    quietly qconf -Ae "$work/exechost"
fi
log "exec host $SGE_HOST: slots=$NPROC, h_vmem=${MEM_KB}K"

# 8. Parallel environment smp.
cat >"$work/smp" <<'EOF'
pe_name            smp
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
if qconf -sp smp >/dev/null 2>&1; then quietly qconf -Mp "$work/smp"; else quietly qconf -Ap "$work/smp"; fi
log "PE smp: allocation_rule \$pe_slots, slots 999"

# 9. Queues. load_thresholds NONE: on 2 cores a busy test run must not put queues in alarm state.
write_queue() { # NAME COMPLEX_VALUES
    cat >"$work/$1" <<EOF
qname                 $1
hostlist              $SGE_HOST
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               smp
rerun                 FALSE
slots                 $NPROC
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        $2
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
EOF
    if qconf -sq "$1" >/dev/null 2>&1; then quietly qconf -Mq "$work/$1"; else quietly qconf -Aq "$work/$1"; fi
}
write_queue cpu.q NONE
write_queue gpu.q gpu=1
log "queues: cpu.q (slots $NPROC, pe smp), gpu.q (slots $NPROC, pe smp, gpu=1)"
# The default all.q would take jobs that name no queue, including those meant to test gpu.q.
if qconf -sq all.q >/dev/null 2>&1; then
    quietly qconf -dq all.q
    log "removed all.q"
fi

# ---------------------------------------------------------------------------------------------
# 10. execd
if execd_alive; then
    log "sge_execd already running (pid $(execd_pid))"
else
    log "starting sge_execd"
    start_daemon "$SGE_EXECD_START"
    wait_for 30 "execd pid file" execd_alive || die "sge_execd did not start"
    log "sge_execd running (pid $(execd_pid))"
fi

verify
write_env_file
log "done: local Grid Engine up in $(elapsed)s"
