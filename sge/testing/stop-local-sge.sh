#!/usr/bin/env bash
# Stop the local Grid Engine started by start-local-sge.sh: execd (and its jobs) first with
# 'qconf -kej all', then qmaster with 'qconf -km'. Daemons are identified only by their pid files
# checked against /proc/PID/exe; if the polite way fails, that pid (and only it) gets SIGTERM,
# then SIGKILL. Idempotent: nothing running -> exit 0. Packages and configuration stay.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=local-sge-common.sh
. "$here/local-sge-common.sh"

[[ $(id -u) == 0 ]] || die "must run as root"
if [[ ! -f $SGE_COMMON/bootstrap ]]; then
    log "Grid Engine not installed; nothing to stop"
    exit 0
fi

# Resolve the pid files while qmaster can still tell us the execd spool dir.
QMASTER_PIDFILE=$(qmaster_pidfile)
EXECD_SPOOL=$(execd_spool_dir)
qm_pid() { pid_of_daemon "$QMASTER_PIDFILE" "$SGE_QMASTER_BIN"; }
ex_pid() { execd_pid "$EXECD_SPOOL"; }
qm_gone() { ! qm_pid >/dev/null; }
ex_gone() { ! ex_pid >/dev/null; }

# kill_verified NAME PIDFN GONEFN: SIGTERM then SIGKILL the pid, re-verified before each signal.
kill_verified() {
    local name=$1 pidfn=$2 gonefn=$3 pid
    pid=$($pidfn) || return 0
    log "$name (pid $pid) still running; sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
    wait_for 15 "$name to exit after SIGTERM" "$gonefn" && return 0
    pid=$($pidfn) || return 0
    log "$name (pid $pid) ignores SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 10 "$name to exit after SIGKILL" "$gonefn"
}

if ex_gone && qm_gone; then
    log "local Grid Engine is not running; nothing to stop"
    exit 0
fi

# 1. execd and its jobs.
if ! ex_gone; then
    pid=$(ex_pid)
    log "stopping sge_execd (pid $pid) and its jobs: qconf -kej all"
    if qmaster_answers; then qconf -kej all >/dev/null 2>&1 || true; fi
    if wait_for 30 "sge_execd to exit" ex_gone; then
        log "sge_execd stopped"
    else
        kill_verified sge_execd ex_pid ex_gone || die "could not stop sge_execd"
    fi
fi

# 2. qmaster.
if ! qm_gone; then
    pid=$(qm_pid)
    log "stopping sge_qmaster (pid $pid): qconf -km"
    if qmaster_answers; then qconf -km >/dev/null 2>&1 || true; fi
    if wait_for 60 "sge_qmaster to exit" qm_gone; then
        log "sge_qmaster stopped"
    else
        kill_verified sge_qmaster qm_pid qm_gone || die "could not stop sge_qmaster"
    fi
fi

log "local Grid Engine stopped in $(elapsed)s"
