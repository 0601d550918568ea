#!/usr/bin/env bash
# start-local-slurm.sh - single-host Slurm (munged + slurmctld + slurmd) from Debian
# packages, without systemd, for bootgpu's integration tests (tests/test_slurm_integration.py).
# Idempotent: fresh machine, stopped cluster or running cluster. Must run as root. Tested on
# Debian 12 (slurm-wlm 22.05.8, munge 0.5.15). Partitions cpu (default) and gpu, one fake GPU
# (gres.conf File=/dev/null). Runs beside the local Grid Engine of sge/testing/ (its ports are
# 6444/6445, Slurm's 6817-6819). Follows ../shared/notes/slurm.md; docs in docs/local-slurm.md.
#
# Knobs (environment):
#   SLURM_INSTALL=1              apt-get install the packages if binaries are missing
#   SLURM_RESET_STATE=0          1 = forget all saved jobs / node state (job ids restart at 1)
#   SLURM_START_TIMEOUT=60       seconds to wait for the node to become usable
#   SLURM_ENFORCE=1              1 = bind CPUs (task/affinity) + kill jobs over --mem (polling);
#                                0 = task/none, no memory kill (requests only used for scheduling)
#   SLURM_KILL_INVALID_DEPEND=0  1 = cancel jobs whose dependency can never be satisfied
#   SLURM_MIN_JOB_AGE=3600       seconds finished jobs stay visible to squeue/scontrol
#   SLURM_ACCOUNTING=none        none = no slurmdbd ('sacct' fails, 'sacct -c' reads a jobcomp file);
#                                dbd  = also install/start MariaDB + slurmdbd so 'sacct' works
set -euo pipefail

INSTALL=${SLURM_INSTALL:-1}
RESET=${SLURM_RESET_STATE:-0}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
ENFORCE=${SLURM_ENFORCE:-1}
KILL_DEP=${SLURM_KILL_INVALID_DEPEND:-0}
MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-3600}
ACCT_MODE=${SLURM_ACCOUNTING:-none}
case "$ACCT_MODE" in none|dbd) ;; *) echo "SLURM_ACCOUNTING must be none or dbd" >&2; exit 1;; esac

CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
MUNGE_MARK=/run/munge/.started-by-local-slurm
DBD_CONF=/etc/slurm/slurmdbd.conf
DBD_PID=/run/slurmdbd.pid
MYSQL_PID=/run/mysqld/mysqld.pid
MYSQL_MARK=/run/mysqld/.started-by-local-slurm
LOG=/var/log/slurm
T0=$(date +%s.%N)

log() { echo "[start-local-slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

# alive PID COMM: true if PID runs (not a zombie) and its comm is COMM.
# (PID 1 here does not reap promptly, so 'kill -0' alone would accept zombies.)
alive() {
  local pid=$1 comm=$2 st
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || return 1
  st=$(sed 's/^.*) //' /proc/"$pid"/stat 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_of() { cat "$1" 2>/dev/null || true; }
running() { alive "$(pid_of "$1")" "$2"; }
stop_pid() {  # stop_pid PIDFILE COMM : SIGTERM, wait up to 15 s, then SIGKILL
  local pid; pid=$(pid_of "$1")
  if alive "$pid" "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do alive "$pid" "$2" || break; sleep 0.1; done
    alive "$pid" "$2" && { log "$2 ($pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; }
  fi
  rm -f "$1"
}
wait_for() {  # wait_for SECONDS CMD... : poll every 0.2 s
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- 1. packages
if ! command -v munged >/dev/null || ! command -v slurmctld >/dev/null ||
   ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
  [ "$INSTALL" = 1 ] || die "slurm/munge not installed and SLURM_INSTALL=0"
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
if [ "$ACCT_MODE" = dbd ] && { ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; }; then
  [ "$INSTALL" = 1 ] || die "slurmdbd/mariadb-server not installed and SLURM_INSTALL=0"
  log "installing slurmdbd mariadb-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmdbd mariadb-server >/dev/null
fi
getent passwd slurm >/dev/null || die "user 'slurm' missing (normally created by slurm-wlm-basic-plugins)"
getent passwd munge >/dev/null || die "user 'munge' missing (normally created by munge)"

# ---------------------------------------------------------------- 2. munge
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0600 /etc/munge/munge.key
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  stop_pid "$MUNGE_PID" munged          # only a stale/hung munged listed in munged's own pidfile
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 munge_ok || die "munged did not come up; see /var/log/munge/munged.log"
  pid_of "$MUNGE_PID" > "$MUNGE_MARK"   # so stop-local-slurm.sh only stops a munged we started
fi

# ---------------------------------------------------------------- 3. config
NODE=$(hostname -s)
HW=$(slurmd -C | sed -n '1s/^NodeName=[^ ]* //p')   # CPUs=.. Boards=.. ... RealMemory=..
[[ "$HW" == *CPUs=* && "$HW" == *RealMemory=* ]] || die "unexpected 'slurmd -C' output: $HW"
if [ "$ENFORCE" = 1 ]; then
  TASK=task/affinity
  ACCT=$'JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherFrequency=1\nJobAcctGatherParams=OverMemoryKill'
else
  TASK=task/none
  ACCT='JobAcctGatherType=jobacct_gather/none'
fi
DEP=""; [ "$KILL_DEP" = 1 ] && DEP="DependencyParameters=kill_invalid_depend"
if [ "$ACCT_MODE" = dbd ]; then
  STORAGE=$'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=127.0.0.1\nAccountingStorageTRES=gres/gpu'
else
  STORAGE='AccountingStorageType=accounting_storage/none'
fi

NEW_CONF=$(cat <<EOF
# generated by start-local-slurm.sh - single-host test cluster, do not use in production
ClusterName=local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=${TASK}
ReturnToService=2
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=${LOG}/slurmctld.log
SlurmdLogFile=${LOG}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
KillWait=5
# scheduling: react to submit/finish within ~1 s instead of 3-60 s
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
${DEP}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
EnforcePartLimits=ALL
MinJobAge=${MIN_JOB_AGE}
# without slurmdbd plain sacct is unavailable; 'sacct -c' reads the jobcomp file
${STORAGE}
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG}/jobcomp.log
${ACCT}
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 ${HW} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${NODE} MaxTime=INFINITE State=UP
EOF
)
# a GPU gres needs File= (22.05 drops file-less GPUs); /dev/null is a fine fake device
NEW_GRES="NodeName=${NODE} Name=gpu File=/dev/null"

CHANGED=0
install -d -m 0755 /etc/slurm
if [ "$(cat "$CONF" 2>/dev/null)" != "$NEW_CONF" ]; then
  if [ -e "$CONF" ] && [[ "$(head -1 "$CONF")" != *"generated by start-local-slurm.sh"* ]]; then
    cp -p "$CONF" "$CONF.bak.$(date +%s)"; log "backed up foreign $CONF"
  fi
  printf '%s\n' "$NEW_CONF" > "$CONF"; CHANGED=1
fi
if [ "$(cat "$GRES" 2>/dev/null)" != "$NEW_GRES" ]; then
  printf '%s\n' "$NEW_GRES" > "$GRES"; CHANGED=1
fi
chmod 0644 "$CONF" "$GRES"

install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld "$LOG"
install -d -o root -g root -m 0755 /var/spool/slurmd

# ---------------------------------------------------------------- 4. daemons
if { [ "$CHANGED" = 1 ] || [ "$RESET" = 1 ]; } &&
   { running "$CTLD_PID" slurmctld || running "$SLURMD_PID" slurmd; }; then
  log "config changed or reset requested: restarting slurm daemons"
  stop_pid "$SLURMD_PID" slurmd
  stop_pid "$CTLD_PID" slurmctld
fi
if [ "$RESET" = 1 ]; then
  log "SLURM_RESET_STATE=1: wiping saved state"
  find /var/spool/slurmctld /var/spool/slurmd -mindepth 1 -delete
fi

if [ "$ACCT_MODE" = dbd ]; then
  # MariaDB (unix socket only) + slurmdbd; sacct/sacctmgr then work
  mysql_ok() { mariadb -e 'select 1' >/dev/null 2>&1; }
  if ! mysql_ok; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    log "starting mariadbd"
    setsid -f /usr/sbin/mariadbd --user=mysql --skip-networking \
      --innodb-buffer-pool-size=1024M --innodb-lock-wait-timeout=900 \
      </dev/null >>"$LOG/mariadbd.log" 2>&1
    wait_for 30 mysql_ok || { tail -20 "$LOG/mariadbd.log" >&2; die "mariadbd did not come up"; }
    pid_of "$MYSQL_PID" > "$MYSQL_MARK"
  fi
  # a fresh slurmctld state restarts job ids at 1: drop old accounting rows or sacct mixes jobs
  if ! running "$CTLD_PID" slurmctld && [ ! -e /var/spool/slurmctld/job_state ] &&
     [ -n "$(mariadb -N -e "SHOW DATABASES LIKE 'slurm_acct_db'")" ]; then
    log "fresh slurmctld state: emptying accounting database"
    stop_pid "$DBD_PID" slurmdbd
    mariadb -e "DROP DATABASE slurm_acct_db"
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'slurm-local-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  NEW_DBD=$(cat <<EOF
# generated by start-local-slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=${DBD_PID}
LogFile=${LOG}/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-local-test
StorageLoc=slurm_acct_db
EOF
)
  if [ "$(cat "$DBD_CONF" 2>/dev/null)" != "$NEW_DBD" ]; then
    printf '%s\n' "$NEW_DBD" > "$DBD_CONF"
    stop_pid "$DBD_PID" slurmdbd
  fi
  chown slurm:slurm "$DBD_CONF"; chmod 0600 "$DBD_CONF"   # slurmdbd refuses other modes/owners
  if ! running "$DBD_PID" slurmdbd; then
    rm -f "$DBD_PID"
    log "starting slurmdbd"
    slurmdbd
  fi
  wait_for 30 sacctmgr -n list cluster || { tail -20 "$LOG/slurmdbd.log" >&2; die "slurmdbd not responding"; }
fi

if ! running "$CTLD_PID" slurmctld; then
  rm -f "$CTLD_PID"          # slurmctld (running as SlurmUser) cannot delete its root-owned pidfile
  log "starting slurmctld"
  slurmctld
fi
wait_for 30 scontrol ping || { tail -20 "$LOG/slurmctld.log" >&2; die "slurmctld not responding"; }

if ! running "$SLURMD_PID" slurmd; then
  log "starting slurmd"
  slurmd
fi

# ---------------------------------------------------------------- 5. wait for the node
node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle|mixed|allocated|completing) return 0;; *) return 1;; esac; }
deadline=$(( $(date +%s) + TIMEOUT )); resumed=0
until node_ready; do
  st=$(node_state)
  # a DRAIN/DOWN left over from saved state or an earlier bad config does not clear on its own
  if [ "$resumed" = 0 ] && [[ "$st" =~ ^(drained|draining|down|inval)$ ]]; then
    log "node is '$st' ($(sinfo -h -n "$NODE" -o '%E')), resuming it"
    scontrol update nodename="$NODE" state=resume || true; resumed=1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -20 "$LOG/slurmd.log" >&2
    die "node $NODE not usable after ${TIMEOUT}s (state '$st')"
  fi
  sleep 0.2
done
log "ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s: node $NODE $(node_state)"
sinfo -o '%P %a %D %T %N %G'
