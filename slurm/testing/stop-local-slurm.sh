#!/usr/bin/env bash
# stop-local-slurm.sh - stop the cluster started by start-local-slurm.sh (docs/local-slurm.md).
# Cancels all jobs, stops slurmd/slurmctld (and job steps they left), and stops munged
# only if start-local-slurm.sh started it. Safe to run when nothing is running.
# Knobs: SLURM_STOP_KEEP_JOBS=1 = do not cancel jobs: pending jobs come back on the next start and
#        running job steps are left running (the next slurmd re-adopts them).
set -uo pipefail

CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
MUNGE_MARK=/run/munge/.started-by-local-slurm
DBD_PID=/run/slurmdbd.pid
MYSQL_PID=/run/mysqld/mysqld.pid
MYSQL_MARK=/run/mysqld/.started-by-local-slurm

log() { echo "[stop-local-slurm] $*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }

alive() {  # alive PID COMM (rejects zombies and recycled PIDs)
  local pid=$1 comm=$2 st
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || return 1
  st=$(sed 's/^.*) //' /proc/"$pid"/stat 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_of() { cat "$1" 2>/dev/null || true; }
wait_gone() {  # wait_gone SECONDS PID COMM
  local n=$(( $1 * 10 ))
  for _ in $(seq "$n"); do alive "$2" "$3" || return 0; sleep 0.1; done
  return 1
}
stop_pid() {  # stop_pid PIDFILE COMM
  local pid; pid=$(pid_of "$1")
  if alive "$pid" "$2"; then
    log "stopping $2 ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone 15 "$pid" "$2" || { log "$2 ($pid) still up, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; wait_gone 5 "$pid" "$2"; }
  fi
  rm -f "$1"
}
stepds() {  # live slurmstepd processes (job steps) - only our slurmd starts these
  local p
  for p in /proc/[0-9]*; do
    alive "${p#/proc/}" slurmstepd && echo "${p#/proc/}"
  done
  return 0
}
children() {  # children PID (via /proc, no procps needed)
  local p
  for p in /proc/[0-9]*; do
    [ "$(sed 's/^.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f2)" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}
tree() {  # tree PID: PID's descendants, deepest first
  local c
  for c in $(children "$1"); do tree "$c"; echo "$c"; done
}

ctld=$(pid_of "$CTLD_PID"); slurmd=$(pid_of "$SLURMD_PID")
if alive "$ctld" slurmctld && scontrol ping >/dev/null 2>&1; then
  if [ "${SLURM_STOP_KEEP_JOBS:-0}" != 1 ]; then
    jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
      log "cancelling jobs: $(tr '\n' ' ' <<<"$jobs")"
      # shellcheck disable=SC2086  # one argument per job id
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 100); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
    fi
  fi
  log "scontrol shutdown"
  scontrol shutdown >/dev/null 2>&1 || true   # saves state, stops slurmctld and slurmd
  wait_gone 15 "$ctld" slurmctld
  wait_gone 15 "$slurmd" slurmd
fi
stop_pid "$SLURMD_PID" slurmd
stop_pid "$CTLD_PID" slurmctld

# job steps that outlived the cancel (job ignoring signals): kill the job's processes, then the
# stepd (killing only the stepd would orphan the job script)
if [ "${SLURM_STOP_KEEP_JOBS:-0}" != 1 ]; then
  for p in $(stepds); do
    log "killing leftover slurmstepd $p and its processes"
    for c in $(tree "$p"); do kill -KILL "$c" 2>/dev/null || true; done
    kill -TERM "$p" 2>/dev/null || true
    wait_gone 5 "$p" slurmstepd || kill -KILL "$p" 2>/dev/null || true
  done
fi

# SLURM_ACCOUNTING=dbd extras: slurmdbd, and mariadbd only if start-local-slurm.sh started it
stop_pid "$DBD_PID" slurmdbd
ypid=$(pid_of "$MYSQL_PID")
if [ -f "$MYSQL_MARK" ] && [ "$(cat "$MYSQL_MARK")" = "$ypid" ] && alive "$ypid" mariadbd; then
  log "stopping mariadbd ($ypid)"
  kill -TERM "$ypid"; wait_gone 30 "$ypid" mariadbd || log "mariadbd ($ypid) still shutting down"
fi
rm -f "$MYSQL_MARK"

# munged: only if start-local-slurm.sh started it
mpid=$(pid_of "$MUNGE_PID")
if [ -f "$MUNGE_MARK" ] && [ "$(cat "$MUNGE_MARK")" = "$mpid" ] && alive "$mpid" munged; then
  stop_pid "$MUNGE_PID" munged
elif alive "$mpid" munged; then
  log "leaving munged ($mpid) running: not started by start-local-slurm.sh"
fi
rm -f "$MUNGE_MARK"
log "stopped"
