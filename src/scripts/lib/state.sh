#!/bin/bash
# requires: core
# hoist's host library, state: the run's lock, its state file, its private tmpfs directory,
# its watchdog, and its exit (on_exit, which prints HOIST-RESULT). The restore of an
# unfinished run is the strategy's own (restore_recreate in release.sh, restore_blue_green in
# bluegreen.sh): `restore` calls the one the state names when the script carries it.

# The release this run makes live: one it created (TARGET_NEW=1: removed again when the run
# fails) or a retained one it starts again (TARGET_NEW=0: stopped again when the run fails);
# its name is core.sh's TARGET_NAME.
TARGET_ID=""
TARGET_NEW=1
RESTORE_NOTE=""
# 1: the run changed nothing worth a history record (a rollback to what already runs).
NO_HISTORY=0
# 1 once HOIST_APP is checked (check_app): only then does the run write the app's history.
APP_VALID=0
# The result line's free text is cut to this many bytes (see the top of core.sh).
RESULT_TEXT_MAX=2000
# Where the run is, kept in the state file so that a restore knows what to undo: "" until the
# state file exists, then prepare (nothing stopped yet; a created container may exist), stop
# (the running release is being stopped), start, gate (the target runs, unverified), verified
# (the target passed its health gate and stays); blue-green's stage, switch, verify, retire.
# From `stop` to `gate` (blue-green: `switch` and `verify`) a failure restores the previous
# release.
PHASE=""
# Blue-green (STRATEGY=blue-green; empty for recreate's stop-then-start): the restore undoes
# its phases instead of recreate's. Kept in the state file, so that the watchdog and the next
# deploy restore from what the run recorded, whatever their header says.
STRATEGY=""
# 1: a restore moved traffic back to the previous release (history says `rolled-back`).
SWITCHED_BACK=0
# The run's private tmpfs directory (private_dir), and the tmpfs this run mounted there.
PRIVATE_DIR=""
ENV_MOUNT=""
# TMPDIR as the run found it (private_dir points TMPDIR into the tmpfs; on_exit puts it back).
OUTER_TMPDIR=""
LOCK_FILE=""
LOCK_HELD=0
STATE_FILE=""
STATE_PRIVATE=""
STATE_MOUNTED=""
GUARD_PID=""
# How long a restore waits for an engine that does not answer (a daemon restart).
ENGINE_WAIT=120
# What on_exit runs first, whatever the outcome: each module that keeps a secret on disk adds
# the function that removes it.
EXIT_CLEANUPS=()

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# The run's progress, kept on persistent disk (not tmpfs) so that a watchdog — or after a
# crash, the next deploy — knows what to put back. One `key value` line at a time.
note_state() { printf '%s %s\n' "$1" "${2:-1}" >>"$STATE_FILE"; }

set_phase() {
    PHASE=$1
    note_state phase "$1"
    mark "$1"
}

# Reads a state file written by note_state into the restore variables.
# (Runs in the watchdog and at the next deploy.)
# shellcheck disable=SC2034 # blue-green's keys are read by its modules, where the script has them
load_state() {
    local key val
    ACTION=""
    TARGET_ID=""
    TARGET_NAME=""
    TARGET_NEW=1
    PREV_IDS=()
    PREV_NAME=""
    PHASE=prepare
    STRATEGY=""
    BG_LEGACY_IDS=()
    BG_NGINX_ARGS=()
    while read -r key val; do
        case $key in
            started) STARTED_EPOCH=$val ;;
            action) ACTION=$val ;;
            release) HOIST_RELEASE=$val ;;
            image) HOIST_IMAGE=$val ;;
            new)
                TARGET_ID=$val
                TARGET_NEW=1
                ;;
            target)
                TARGET_ID=$val
                TARGET_NEW=0
                ;;
            new_name | target_name) TARGET_NAME=$val ;;
            prev) PREV_IDS+=("$val") ;;
            prev_name) PREV_NAME=$val ;;
            phase) PHASE=$val ;;
            # Written by earlier versions of this script, which had no phases.
            stopping) PHASE=stop ;;
            healthy) PHASE=verified ;;
            private) STATE_PRIVATE=$val ;;
            mounted) STATE_MOUNTED=$val ;;
            strategy) STRATEGY=$val ;;
            old_upstream) BG_OLD_UPSTREAM=$val ;;
            new_upstream) BG_NEW_UPSTREAM=$val ;;
            legacy) BG_LEGACY_IDS+=("$val") ;;
            nginx_conf) BG_CONF=$val ;;
            nginx_backup) BG_BACKUP=$val ;;
            nginx_port) BG_NGINX_PORT=$val ;;
            nginx_bin) BG_NGINX_BIN=$val ;;
            nginx_arg) BG_NGINX_ARGS+=("$val") ;;
            nginx_lock) BG_NGINX_LOCK=$val ;;
            reloaded) BG_RELOADED=1 ;;
            drain) BG_DRAIN=$val ;;
            policy) BG_POLICY=$val ;;
        esac
    done <"$1"
}

# Shreds what a dead run left in its private tmpfs directory and unmounts it.
# (Runs in the watchdog and at the next deploy.)
sweep_private() {
    if [[ -n ${STATE_PRIVATE:-} && -d $STATE_PRIVATE ]]; then
        local f
        while IFS= read -r -d '' f; do shred_file "$f"; done < <(find "$STATE_PRIVATE" -type f -print0)
        rm -rf "${STATE_PRIVATE:?}"/docker.* "${STATE_PRIVATE:?}/tmp"
    fi
    if [[ -n ${STATE_MOUNTED:-} ]]; then umount "$STATE_MOUNTED" && rmdir "$STATE_MOUNTED"; fi
    STATE_PRIVATE=""
    STATE_MOUNTED=""
}

# Puts back what an unfinished run changed, for every path that can end one (the EXIT trap,
# the watchdog after a SIGKILL, the next deploy after a crash): the restore of the run's
# strategy (STRATEGY, from the state file when another run left it): restore_recreate
# (release.sh) or restore_blue_green (bluegreen.sh), each in the module of its strategy's
# switch. A script that does not carry that module (a recreate deploy finding an interrupted
# blue-green run) cannot undo it and says which run can. Sets ROLLED_BACK and RESTORE_NOTE; returns non-zero when the previous release
# is not serving.
# (Reached through the EXIT trap and the watchdog.)
restore() {
    # By name: restore_recreate or restore_blue_green, whichever this script carries.
    local undo="restore_${STRATEGY:-recreate}"
    undo=${undo//-/_}
    ROLLED_BACK=false
    if ! declare -F "$undo" >/dev/null; then
        RESTORE_NOTE="this script cannot undo a ${STRATEGY:-recreate} run; a ${STRATEGY:-recreate} deploy or a rollback of ${HOIST_APP:-the app} can"
        return 1
    fi
    # `return $?`: a bare `return` in a function run by a trap returns the status of the
    # command before the trap.
    "$undo"
    return $?
}

# Finishes a run that died without its EXIT trap, from its state file: private files
# shredded, the previous release restored unless the target had passed its gate, and one
# history record. $1 is the status to record (`killed`, `interrupted`), $2 what happened.
# (Runs in the watchdog and at the next deploy.)
recover() {
    local state=$1 status=$2 what=$3
    load_state "$state"
    sweep_private
    STATUS=$status
    if [[ $PHASE == verified || $PHASE == retire ]]; then
        # Blue-green's retire: the new release is live and verified; its restore stops the
        # old one.
        if [[ $PHASE == retire ]]; then restore || warn "$RESTORE_NOTE"; fi
        ROLLED_BACK=false
        if ((TARGET_NEW)); then
            REASON="$what after the new release passed its health gate; it stays"
        else
            REASON="$what after release $HOIST_RELEASE passed its health gate; it stays"
        fi
    elif restore; then
        REASON="$what; ${RESTORE_NOTE:-nothing had changed}"
    else
        REASON="$what; restoring the previous release FAILED: $RESTORE_NOTE"
    fi
    append_history "$(result_json)"
    rm -f "$state"
}

# The dead man's switch. A transport cancels a command, and ends one that runs past its
# timeout, by SIGKILLing its process group (SSM always does): no trap runs then. This watchdog
# lives in its own session, holds the run's lock (it inherits fd 9), and when the run dies
# without clearing its state file it finishes the job the EXIT trap could not.
# (Runs in the watchdog process.)
guard() {
    local pid=$1 state=$2
    exec </dev/null >/dev/null 2>&1
    trap '' INT TERM HUP
    while kill -0 "$pid" 2>/dev/null && [[ -e $state ]]; do sleep 0.5 9>&-; done
    [[ -s $state ]] || exit 0
    recover "$state" killed "the deploy was killed (cancelled or timed out) and its watchdog cleaned up"
}

# Everything the watchdog needs, as a self-contained program: the parameters a restore reads,
# the run's own defaults, and every function this script defines, which are exactly those of
# the modules rendered into it (a recreate script's watchdog carries no nginx code); then each
# module's `*_globals` function, which sets the defaults of the variables its restore reads
# (the state file sets the rest). No secret is ever in a variable here.
watchdog_program() {
    local f
    declare -p HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT \
        HOIST_HEALTH_START_PERIOD HOIST_STOP_TIMEOUT HOIST_STATE_DIR ENGINE_WAIT HISTORY_KEEP ACTION \
        LOG_LINE_MAX LOG_STDOUT_MAX
    printf 'STATUS=killed REASON="" HEALTH="" PROBE_WHY="" ROLLED_BACK=false RESTORE_NOTE=""\n'
    printf 'STATE_PRIVATE="" STATE_MOUNTED="" STARTED_EPOCH=%s\n' "$STARTED_EPOCH"
    printf 'STRATEGY="" SWITCHED_BACK=0 LOG_STDOUT_BYTES=0\n'
    declare -f
    for f in $(compgen -A function); do
        if [[ $f == *_globals ]]; then printf '%s\n' "$f"; fi
    done
    # shellcheck disable=SC2016 # the watchdog's own "$@", not this shell's
    printf 'guard "$@"\n'
}

# Takes the app's host lock (shared by deploys and rollbacks; $1 says who holds it, in the
# lock file), and reconciles a run that died here before (its state file is still there).
take_lock() {
    mkdir -p "$HOIST_RUN_DIR"
    chmod 0755 "$HOIST_RUN_DIR"
    LOCK_FILE="$HOIST_RUN_DIR/$HOIST_APP.lock"
    exec 9<>"$LOCK_FILE"
    if ! flock -n 9; then
        local holder
        holder=$(head -c 200 "$LOCK_FILE" 2>/dev/null || true)
        finish locked "another deploy holds the lock on $HOIST_APP (${holder:-release unknown})"
    fi
    LOCK_HELD=1
    printf '%s, pid %s, since %s\n' "$1" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE"
    # The run's state file and history go here: a read-only or full disk fails the run now,
    # before anything changed.
    local dir="$HOIST_STATE_DIR/$HOIST_APP"
    if ! { mkdir -p "$dir" && chmod 0700 "$dir" && printf 'x\n' >"$dir/.write-check" && rm -f "$dir/.write-check"; } 2>/dev/null; then
        rm -f "$dir/.write-check" 2>/dev/null || true
        fail "cannot write to $dir (a read-only or full disk?): nothing changed"
    fi
    STATE_FILE="$dir/deploy.state"

    # A state file left behind means a run here died with neither its EXIT trap nor its
    # watchdog finishing (the host crashed, or the engine stayed down): put things right first.
    if [[ -s $STATE_FILE ]]; then
        log "a previous deploy on this host was interrupted; reconciling it first"
        (recover "$STATE_FILE" interrupted "the deploy was interrupted (host crash or reboot) and the next deploy reconciled it") ||
            fail "could not reconcile the interrupted deploy recorded in $STATE_FILE"
        warn "reconciled: $(tail -n 1 "$HOIST_STATE_DIR/$HOIST_APP/history.jsonl" 2>/dev/null || true)"
    fi
}

# Starts the run's state file (HOIST_RELEASE and HOIST_IMAGE name what it deploys), its
# watchdog and its private tmpfs. From here on, every way the run can end restores what PHASE
# says.
begin_state() {
    {
        printf 'started %s\nrelease %s\nimage %s\n' "$STARTED_EPOCH" "$HOIST_RELEASE" "$HOIST_IMAGE"
        if [[ -n $ACTION ]]; then printf 'action %s\n' "$ACTION"; fi
        printf 'phase prepare\n'
    } >"$STATE_FILE"
    PHASE=prepare
    if command -v setsid >/dev/null; then
        local watchdog="$HOIST_STATE_DIR/$HOIST_APP/watchdog.sh"
        watchdog_program >"$watchdog"
        setsid bash "$watchdog" "$$" "$STATE_FILE" </dev/null >/dev/null 2>&1 &
        GUARD_PID=$!
    else
        warn "setsid is missing: a deploy killed by its transport (cancel, timeout) cannot restore the previous release"
    fi
    # The private tmpfs and TMPDIR in it, from here on (the first moment the run may: the
    # lock is held and an interrupted run's tmpfs is swept). The watchdog, started above,
    # keeps the TMPDIR it was given: it outlives the tmpfs.
    private_dir optional || true
}

# The run's private directory for secrets (env file, registry login): always tmpfs,
# mounted here when /run is not one. Emptied on every exit path. From here on TMPDIR is its
# `tmp` directory, so that whatever the run starts puts its temporary files there too
# (mktemp, here-documents and here-strings of bash before 5.1). begin_state calls it with
# `optional` (it then returns 1 where there is no tmpfs, for a run that may have no secret);
# a run that writes a secret calls it again without, and fails there.
private_dir() {
    if [[ -n $PRIVATE_DIR ]]; then return 0; fi
    local dir="$HOIST_RUN_DIR/$HOIST_APP"
    mkdir -p "$dir"
    chmod 0700 "$dir"
    if [[ $(stat -f -c %T "$dir") != tmpfs ]]; then
        if mount -t tmpfs -o size=4m,mode=0700,nosuid,nodev,noexec "hoist-$HOIST_APP" "$dir" 2>/dev/null; then
            ENV_MOUNT=$dir
            note_state mounted "$dir"
        fi
        if [[ $(stat -f -c %T "$dir") != tmpfs ]]; then
            [[ ${1:-} != optional ]] || return 1
            fail "refusing to write secrets outside tmpfs: $dir is not tmpfs and mounting one failed"
        fi
    fi
    PRIVATE_DIR=$dir
    note_state private "$dir"
    mkdir -p "$dir/tmp"
    OUTER_TMPDIR=${TMPDIR:-}
    export TMPDIR="$dir/tmp"
}

# Shreds what TMPDIR holds in the private directory, removes it and puts TMPDIR back.
# (Reached through the EXIT trap.)
remove_private_tmp() {
    if [[ -z $PRIVATE_DIR || ! -d $PRIVATE_DIR/tmp ]]; then return 0; fi
    local f
    while IFS= read -r -d '' f; do shred_file "$f"; done < <(find "$PRIVATE_DIR/tmp" -type f -print0)
    rm -rf "${PRIVATE_DIR:?}/tmp"
    if [[ -n $OUTER_TMPDIR ]]; then export TMPDIR=$OUTER_TMPDIR; else unset TMPDIR; fi
}

# The last lines of container $1's log (named $2) on stderr, every secret value of the run
# masked in them; not at all when the run has a value too short to be masked. The host knew
# the values it read itself, and hoist never did: this is the only place they can be masked.
# (Reached through the EXIT trap.)
relay_log() {
    if ! mask_forms; then
        warn "last log lines of $2: not shown (a secret of this run is shorter than $MASK_MIN bytes and could not be masked in them)"
        return 0
    fi
    warn "last log lines of $2:"
    timeout 10 docker logs --tail 20 "$1" 2>&1 | mask_lines >&2
}

# Whether the run did what its body is for: deployed, found the release already running
# (unchanged), staged it (a two-phase rollout's first phase) or discarded what a run staged.
# (Reached through the EXIT trap.)
succeeded() {
    case $STATUS in deployed | unchanged | staged | discarded) return 0 ;; esac
    return 1
}

# (Reached through the EXIT trap.)
on_exit() {
    local code=$?
    # A second Ctrl-C or SIGTERM must not cut the rollback short.
    trap '' INT TERM
    trap - EXIT
    set +e
    if ! succeeded && [[ -z $REASON ]]; then
        if [[ -n $ERR_CMD ]]; then
            REASON="command failed at line $ERR_LINE (exit $code): $ERR_CMD"
        else
            REASON="the script stopped with exit status $code"
        fi
    fi
    local cleanup
    for cleanup in ${EXIT_CLEANUPS[@]+"${EXIT_CLEANUPS[@]}"}; do "$cleanup"; done
    if [[ $STATUS == failed && ($PHASE == verified || $PHASE == retire) ]]; then
        # Blue-green's retire: the new release is live and verified; its restore stops the
        # old one.
        if [[ $PHASE == retire ]]; then restore || warn "$RESTORE_NOTE"; fi
        if ((TARGET_NEW)); then
            REASON="$REASON; the new release had passed its health gate and stays"
        else
            REASON="$REASON; release ${HOIST_RELEASE:-} had passed its health gate and stays"
        fi
    elif [[ $STATUS == failed ]]; then
        if [[ -n $TARGET_ID ]]; then relay_log "$TARGET_ID" "$TARGET_NAME"; fi
        if restore; then
            if [[ $ROLLED_BACK == true ]]; then
                REASON="$REASON; rolled back: $RESTORE_NOTE"
                log "rolled back: $RESTORE_NOTE"
            fi
        else
            REASON="$REASON; rolling back to ${PREV_NAME:-the previous release} FAILED: $RESTORE_NOTE"
        fi
    fi
    forget_secrets
    remove_private_tmp
    if [[ -n $ENV_MOUNT ]]; then
        umount "$ENV_MOUNT" 2>/dev/null && rmdir "$ENV_MOUNT" 2>/dev/null
    fi
    # The result line stays short (it must be within what SSM keeps of stdout): the reason in
    # full goes to stderr below.
    local line full=$REASON
    REASON=$(clip "$REASON" "$RESULT_TEXT_MAX")
    line=$(result_json)
    if ((APP_VALID && !NO_HISTORY)) && [[ $STATUS != invalid ]]; then
        if [[ $ACTION == rollback && $STATUS == deployed ]]; then
            # History says what happened; the result says `deployed`, like any deploy's.
            append_history "$(result_json rolled-back)"
        elif [[ -z $ACTION && $STATUS == failed && $ROLLED_BACK == true ]] && ((SWITCHED_BACK)); then
            # A blue-green deploy whose traffic had moved to it, and was moved back.
            append_history "$(result_json rolled-back)"
        else
            append_history "$line"
        fi
    fi
    # Settled (deployed, or restored, or reported as not restored): the watchdog stands down.
    if [[ -n $STATE_FILE ]]; then rm -f "$STATE_FILE"; fi
    if [[ -n $GUARD_PID ]]; then
        # It ignores TERM (so that it outlives whatever kills the run); with the state file
        # gone it has nothing left to do.
        kill -KILL "$GUARD_PID" 2>/dev/null
        wait "$GUARD_PID" 2>/dev/null
    fi
    if ((LOCK_HELD)); then
        : >"$LOCK_FILE"
    fi
    if [[ $STATUS == unchanged || $STATUS == staged || $STATUS == discarded ]]; then
        log "$STATUS: $full"
    elif [[ $STATUS != deployed ]]; then
        warn "$STATUS: $full"
    fi
    printf 'HOIST-RESULT %s\n' "$line"
    exit "$(exit_code)"
}

}
