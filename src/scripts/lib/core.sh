#!/bin/bash
# requires:
# hoist's host library, core: what every script needs. A host never sources these files:
# hoist renders one self-contained script per run (src/script.rs): the header of HOIST_*
# parameters, then the modules the body needs (each module's `# requires:` line names the
# modules it calls into; src/script.rs holds the table), then the body. Loading a module only
# sets variable defaults and defines functions; a body starts with `begin_script`, which sets
# the shell options and the result traps.
#
# Contract with hoist for the bodies that change a host: stdout carries a few short progress
# lines and ends with one `HOIST-RESULT {json}` line; details go to stderr. Never `set -x`:
# the env file's contents must not reach any log.
#
# Exit codes. A script exits only with one of hoist's own codes, never with a code a failing
# command passed through (exit_code maps every other one to 1): the SSM agent gives some codes
# meanings of its own (amazon-ssm-agent: 168 counts as success, 169 as failed, 194 reboots the
# instance, 137 reads as timed out or cancelled), and hoist judges a host by its code too.
#   0    done: deployed, unchanged, staged, discarded; a status that could look
#   1    failed (whatever the command that failed exited with)
#   2    invalid: the parameters were refused before anything changed
#   75   locked: another deploy or rollback of the app holds the host's lock
#   130  interrupted by SIGINT (the rollback ran; see the result's reason)
#   143  interrupted by SIGTERM (likewise)
#
# Stdout is bounded: the SSM agent keeps only the first 23,980 bytes of it, and the result
# line must be among them. Each progress line is cut to LOG_LINE_MAX bytes, progress moves to
# stderr once LOG_STDOUT_MAX bytes went to stdout, and the result's free text is cut to
# RESULT_TEXT_MAX bytes (state.sh), all on character boundaries; whatever is cut is on stderr
# in full.

# ---------------------------------------------------------------- the run's result
# shellcheck disable=SC2034 # alone, globals look unused here: other modules and the bodies read them
{
# Empty for a deploy; `rollback` is added to its result and history records as "action".
ACTION=""
STATUS=failed
REASON=""
HEALTH=""
PROBE_WHY=""
# The release this run makes live (its container's name; state.sh has the rest).
TARGET_NAME=""
PREV_IDS=()
PREV_NAME=""
ROLLED_BACK=false
STARTED_EPOCH=$(date +%s)
# When the run started (milliseconds since the epoch), and the phases it went through since:
# the HOIST-RESULT line's marks, `["name",ms],…` (what `deploy --timings` shows).
STARTED_MS=0
NOW_MS=0
MARKS=""
ERR_LINE=""
ERR_CMD=""
# 130 or 143 once SIGINT or SIGTERM interrupted the run.
INTERRUPTED=""
# When nginx started routing to the new color (epoch milliseconds; empty when it did not):
# the HOIST-RESULT line's `switched_at`, from which hoist measures how long the fleet served
# two versions.
SWITCHED_AT=""
# How many records history.jsonl keeps.
HISTORY_KEEP=1000
# Only containers hoist's own `docker create` labelled are releases: images carry no
# `hoist.deployed-at`, so a container run by hand from the app's image is never one.
RELEASE_LABEL=hoist.deployed-at
# What a release id may be (the same rule as hoist's `is_release_id`).
RELEASE_ID_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
RUN_ID_RE='^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}|<run>)$'
# The bounds on stdout (see the top of this file), and what went there so far.
LOG_LINE_MAX=300
LOG_STDOUT_MAX=12000
LOG_STDOUT_BYTES=0
# The run's secret values (secrets.sh's write_env_file), in memory only, and each of them in
# the forms an app may print it (mask_forms): relay_log (state.sh) masks them in the
# container's log. Values shorter than MASK_MIN bytes cannot be masked (masking every `on`
# or `42` would shred the lines, as hoist's own redaction says): while the run has one, the
# log is not relayed at all.
SECRET_VALUES=()
MASK_FORMS=()
MASK_MIN=4
}

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# A progress line, on stdout: cut to LOG_LINE_MAX bytes (in full on stderr when cut), and on
# stderr alone once LOG_STDOUT_MAX bytes of progress went to stdout.
log() {
    local LC_ALL=C line="hoist: $*" short
    short=$(clip "$line" "$LOG_LINE_MAX")
    if ((LOG_STDOUT_BYTES + ${#short} >= LOG_STDOUT_MAX)); then
        printf '%s\n' "$line" >&2
        return 0
    fi
    LOG_STDOUT_BYTES=$((LOG_STDOUT_BYTES + ${#short} + 1))
    printf '%s\n' "$short"
    if [[ $short != "$line" ]]; then printf '%s\n' "$line" >&2; fi
}

warn() { printf 'hoist: %s\n' "$*" >&2; }

# Prints $1 cut to at most $2 bytes and `...`, never inside a UTF-8 character; $1 itself when
# it is no longer.
clip() {
    local LC_ALL=C s=$1
    if ((${#s} <= $2)); then
        printf '%s' "$s"
        return 0
    fi
    s=${s:0:$2}
    # The first byte left out continues a character (10xxxxxx): its first bytes go too.
    if [[ ${1:$2:1} == [$'\x80'-$'\xbf'] ]]; then
        while [[ -n $s && ${s: -1} == [$'\x80'-$'\xbf'] ]]; do s=${s:0:${#s}-1}; done
        s=${s:0:${#s}-1}
    fi
    printf '%s...' "$s"
}

# Sets NOW_MS to the milliseconds since the epoch: bash 5's EPOCHREALTIME (no process
# started), else date's nanoseconds (GNU), else whole seconds.
now_ms() {
    local t=${EPOCHREALTIME:-}
    if [[ $t =~ ^([0-9]+)[.,]([0-9]{3}) ]]; then
        NOW_MS=$((10#${BASH_REMATCH[1]}${BASH_REMATCH[2]}))
        return
    fi
    t=$(date +%s%N)
    if [[ $t =~ ^[0-9]+$ ]]; then
        NOW_MS=$((t / 1000000))
    else
        NOW_MS=$(($(date +%s) * 1000))
    fi
}

# Notes that the run reached $1 (a word) now, for the result's marks.
mark() {
    now_ms
    MARKS+="${MARKS:+,}[\"$1\",$((NOW_MS - STARTED_MS))]"
}

# Strict mode and the result traps; the first thing a body does. $1 is the EXIT handler, a
# function the script defines (on_exit, which prints HOIST-RESULT, or the body's own).
begin_script() {
    set +x
    set -eEuo pipefail
    umask 077
    export LC_ALL=C
    now_ms
    STARTED_MS=$NOW_MS
    [[ $(type -t "$1") == function ]] || return 1
    # shellcheck disable=SC2064 # the handler's name, now
    trap "$1" EXIT
    trap 'ERR_LINE=$LINENO; ERR_CMD=$BASH_COMMAND' ERR
    trap 'REASON="interrupted by SIGTERM"; INTERRUPTED=143; exit 143' TERM
    trap 'REASON="interrupted by SIGINT"; INTERRUPTED=130; exit 130' INT
}

# Prints the code the run exits with: one of hoist's own (see the top of this file), from
# STATUS and whether a signal interrupted the run; never the code of the command that failed.
# (Reached through the EXIT trap.)
exit_code() {
    case $STATUS in
        deployed | ok | unchanged | staged | discarded) printf 0 ;;
        invalid) printf 2 ;;
        locked) printf 75 ;;
        *) printf '%s' "${INTERRUPTED:-1}" ;;
    esac
}

# Prints a JSON string literal: escapes backslash, quote and control characters.
# (Reached through the EXIT trap.)
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
    printf '"%s"' "$s"
}

# The one record shape of history.jsonl and of the HOIST-RESULT line (a rollback's records
# end with "action":"rollback"). $1 overrides STATUS (a rollback's history says
# `rolled-back` where its result says `deployed`).
# (Reached through the EXIT trap.)
result_json() {
    printf '{"app":%s,"release":%s,"status":%s,"container":%s,"previous":%s,"image":%s,"reason":%s,"rolled_back":%s,"health":%s,"seconds":%d,"time":%s%s}' \
        "$(json_str "${HOIST_APP:-}")" "$(json_str "${HOIST_RELEASE:-}")" "$(json_str "${1:-$STATUS}")" \
        "$(json_str "$TARGET_NAME")" "$(json_str "$PREV_NAME")" "$(json_str "${HOIST_IMAGE:-}")" \
        "$(json_str "$REASON")" "$ROLLED_BACK" "$(json_str "$HEALTH")" \
        "$(($(date +%s) - STARTED_EPOCH))" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" \
        "${ACTION:+,\"action\":$(json_str "$ACTION")}${MARKS:+,\"marks\":[$MARKS]}${SWITCHED_AT:+,\"switched_at\":$SWITCHED_AT}"
}

# (Reached through the EXIT trap and the watchdog.)
# Appends one record; the file keeps the last HISTORY_KEEP records (older ones are dropped,
# oldest first, so it cannot grow without bound on a host deployed to for years).
append_history() {
    local dir="$HOIST_STATE_DIR/$HOIST_APP" file
    file="$dir/history.jsonl"
    mkdir -p "$dir" 2>/dev/null || return 0
    printf '%s\n' "$1" >>"$file" || {
        warn "could not append to $file"
        return 0
    }
    if (($(wc -l <"$file") > HISTORY_KEEP)); then
        if ! { tail -n "$HISTORY_KEEP" "$file" >"$file.tmp" && mv -f "$file.tmp" "$file"; }; then
            warn "could not trim $file"
        fi
    fi
}

# Ends the run with a status and a reason; the EXIT trap does the rest.
finish() {
    STATUS=$1
    REASON=$2
    exit "$(exit_code)"
}

fail() { finish failed "$1"; }

# Sleeps in the background and waits for it, so that a signal's trap runs at once instead of
# after the sleep (bash runs traps only between foreground commands).
snooze() {
    sleep "$1" 8>&- 9>&- &
    wait $! || true
}

# Sets MASK_FORMS to every value of SECRET_VALUES in each form an app may print it: as is,
# with each tab a space (word splitting), JSON-escaped (also with `\/`), percent-encoded (a
# password in a URL); longest first, so
# that a value holding another one is masked whole. Returns 1 when a value is shorter than
# MASK_MIN bytes (it cannot be masked). No value is written to a file or given to a
# program's command line: builtins only. (Reached through the EXIT trap.)
mask_forms() {
    local v json pct hex c i
    MASK_FORMS=()
    for v in ${SECRET_VALUES[@]+"${SECRET_VALUES[@]}"}; do
        [[ -n $v ]] || continue
        ((${#v} >= MASK_MIN)) || return 1
        json=${v//\\/\\\\}
        json=${json//\"/\\\"}
        json=${json//$'\t'/\\t}
        pct=""
        for ((i = 0; i < ${#v}; i++)); do
            c=${v:i:1}
            case $c in
                [A-Za-z0-9._~-]) pct+=$c ;;
                *)
                    printf -v hex '%02X' "'$c"
                    pct+="%${hex: -2}"
                    ;;
            esac
        done
        add_mask_form "$v"
        # As an unquoted `echo $VALUE` prints it: each tab a space.
        add_mask_form "${v//$'\t'/ }"
        add_mask_form "$json"
        add_mask_form "${json//\//\\/}"
        add_mask_form "$pct"
    done
}

# Adds $1 to MASK_FORMS, which stays sorted longest first, once. (Reached through the EXIT
# trap.)
add_mask_form() {
    local i=0 n=${#MASK_FORMS[@]}
    while ((i < n)) && ((${#MASK_FORMS[i]} >= ${#1})); do
        [[ ${MASK_FORMS[i]} != "$1" ]] || return 0
        i=$((i + 1))
    done
    MASK_FORMS=(${MASK_FORMS[@]+"${MASK_FORMS[@]:0:i}"} "$1" ${MASK_FORMS[@]+"${MASK_FORMS[@]:i}"})
}

# Copies stdin to stdout, each line indented with `  | ` and every form in MASK_FORMS
# replaced with `***`. (Reached through the EXIT trap.)
mask_lines() {
    local line form
    while IFS= read -r line || [[ -n $line ]]; do
        for form in ${MASK_FORMS[@]+"${MASK_FORMS[@]}"}; do
            line=${line//"$form"/***}
        done
        printf '  | %s\n' "$line"
    done
}

forget_secrets() {
    SECRET_VALUES=()
    MASK_FORMS=()
}

shred_file() { shred -u "$1" 2>/dev/null || rm -f "$1"; }

# Each named parameter is set (not empty).
need() {
    local name
    for name; do
        if [[ -z ${!name:-} ]]; then
            finish invalid "parameter $name is not set"
        fi
    done
}

# Each named parameter is a whole number.
need_number() {
    local p
    for p; do
        [[ ${!p} =~ ^[0-9]+$ ]] || finish invalid "parameter $p is not a number: '${!p}'"
    done
}

# HOIST_APP names paths and labels: checked before anything uses it.
check_app() {
    [[ $HOIST_APP =~ ^[a-z][a-z0-9-]{0,31}$ ]] || finish invalid "app name '$HOIST_APP' is not valid"
    # shellcheck disable=SC2034 # on_exit reads it (state.sh), where the script has one
    APP_VALID=1
}

check_release_id() {
    [[ $1 =~ $RELEASE_ID_RE ]] || finish invalid "release '$1' is not valid"
}

# A deploy run's id (20261126T001500Z-1a2b3c4d), or `<run>` in a plan made with none (a local
# deploy of a reviewed plan): what a staged container's hoist.staged-by label holds.
check_run_id() {
    [[ $1 =~ $RUN_ID_RE ]] || finish invalid "parameter HOIST_RUN is '$1'"
}

require_tools() {
    local tool
    for tool; do
        command -v "$tool" >/dev/null || fail "$tool is not installed on this host"
    done
}

require_engine() {
    timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fail "cannot reach the Docker engine on this host"
}

}
