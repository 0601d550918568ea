# Shared helpers for start-local-sge.sh / stop-local-sge.sh / check-local-sge.sh.
# Sourced, not executed. See docs/local-grid-engine.md and /work/shared/notes/grid-engine.md.

# Debian 12's gridengine packages put the cell here; nothing else is supported.
export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
# Debian installs qsub & co. in /usr/bin and the daemons in /usr/sbin.
export PATH="/usr/bin:/usr/sbin:/bin:/sbin${PATH:+:$PATH}"

# Written by start-local-sge.sh; source it to talk to the cluster.
LOCAL_SGE_ENV_FILE=${LOCAL_SGE_ENV_FILE:-/tmp/bootgpu-local-sge.env}

SGE_HOST=$(hostname)
SGE_COMMON="$SGE_ROOT/$SGE_CELL/common"
# /usr/sbin/sge_* are Debian's wrapper scripts (they set SGE_ROOT/SGE_CELL if unset and exec the
# real binary); /proc/PID/exe of a running daemon is the real binary in /usr/lib/gridengine.
SGE_QMASTER_START=/usr/sbin/sge_qmaster
SGE_EXECD_START=/usr/sbin/sge_execd
SGE_QMASTER_BIN=/usr/lib/gridengine/sge_qmaster
SGE_EXECD_BIN=/usr/lib/gridengine/sge_execd

_t0=$EPOCHREALTIME
elapsed() { awk -v a="$_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[%6ss] %s\n' "$(elapsed)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# qmaster's pid file lives in its spool dir, named in the cell's bootstrap file.
qmaster_pidfile() {
    local dir
    dir=$(awk '$1 == "qmaster_spool_dir" { print $2 }' "$SGE_COMMON/bootstrap" 2>/dev/null)
    echo "${dir:-/var/spool/gridengine/qmaster}/qmaster.pid"
}

# execd's pid file is <execd_spool_dir>/<name>/execd.pid. execd_spool_dir is in the global
# config, which needs a running qmaster to read; fall back to Debian's default. <name> is what
# execd resolves itself to, which here is "localhost" (the hostname resolves to 127.0.0.1), not
# the aliased name, so try every per-host directory.
execd_spool_dir() {
    local dir=""
    if qmaster_alive; then
        dir=$(qconf -sconf global 2>/dev/null | awk '$1 == "execd_spool_dir" { print $2 }')
    fi
    echo "${dir:-/var/spool/gridengine/execd}"
}

# pid_of_daemon PIDFILE BINARY: print the pid if PIDFILE names a live process whose
# /proc/PID/exe is BINARY; fail otherwise (no file, stale pid, pid reused by something else).
pid_of_daemon() {
    local pidfile=$1 bin=$2 pid exe
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 1
    exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ $exe == "$(readlink -f "$bin")" ]] || return 1
    echo "$pid"
}

qmaster_pid() { pid_of_daemon "$(qmaster_pidfile)" "$SGE_QMASTER_BIN"; }
qmaster_alive() { qmaster_pid >/dev/null; }
# execd_pid [SPOOL_DIR]: pid of the verified live execd, from the first pid file that names one.
execd_pid() {
    local dir=${1:-$(execd_spool_dir)} f
    for f in "$dir/$SGE_HOST/execd.pid" "$dir/localhost/execd.pid" "$dir"/*/execd.pid; do
        pid_of_daemon "$f" "$SGE_EXECD_BIN" && return 0
    done
    return 1
}
execd_alive() { execd_pid >/dev/null; }

# Does qmaster answer client requests?
qmaster_answers() { qconf -sh >/dev/null 2>&1; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
    local limit=$1 what=$2; shift 2
    local deadline
    deadline=$(awk -v n="$EPOCHREALTIME" -v l="$limit" 'BEGIN { printf "%.3f", n + l }')
    until "$@"; do
        if awk -v n="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
            log "timed out after ${limit}s waiting for: $what"
            return 1
        fi
        sleep 0.2
    done
}

# quietly CMD...: run a (qconf) command, showing its output only if it fails.
quietly() {
    local out
    out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; die "failed: $*"; }
}

# Start a daemon with a clean environment from /, as the notes recommend; it daemonises.
start_daemon() {
    # setsid: the daemons leave the caller's session, so ending the shell or job that started
    # them (a test runner, a CI step) does not take them down
    (cd / && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SGE_ROOT="$SGE_ROOT" SGE_CELL="$SGE_CELL" setsid "$1" </dev/null)
}
