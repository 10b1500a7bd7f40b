#!/bin/bash
# requires: core
# hoist's host library, engine: waiting for the Docker engine, a container's state, and the
# health probe every gate and restore uses.

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# Waits up to $1 seconds for the Docker engine to answer (a daemon restart, a hung engine).
# (Reached through the EXIT trap and the watchdog.)
wait_engine() {
    local deadline=$((SECONDS + $1))
    until timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

# `running`, `exited`, … of a container, or nothing when the engine cannot say (unknown).
# (Reached through the EXIT trap and the watchdog.)
container_status() {
    timeout 10 docker inspect --format '{{.State.Status}}' "$1" 2>/dev/null || true
}

# Probes container $1 until it is healthy ($3 observations in a row, default 1; a failed one
# starts the count again) or $2 seconds pass, with the check the container
# was created with (its `hoist.health-*`, `hoist.publish` and `hoist.port` labels, so a
# rolled-back release is judged by its own check, not the failed release's): HTTP on the
# health path when it has one (to its published port, else its own address); else its
# `hoist.health-check`: `command:<base64>` (the words, NUL-separated, run with `docker exec`:
# exit 0 is healthy), `tcp` (the port accepts a connection), `docker` (the image's
# HEALTHCHECK must say healthy; an image without one fails), or `running:N`: the container
# keeps running, with the same start and no restart, for N seconds (the image's HEALTHCHECK
# is not asked). A release made before hoist labelled its check: the image's HEALTHCHECK
# when it has one, else running until the next look. A container that stops fails at once; one the engine cannot inspect (a daemon
# restarting) is unknown and probing goes on until the deadline — healthy is only ever what
# was observed. Sets HEALTH (the last observation) and PROBE_WHY (why it is not healthy).
# (Reached through the EXIT trap and the watchdog.)
probe_health() {
    local id=$1 budget=$2 need=${3:-1} deadline state seen_running=0 ok=0 healthy
    local status exit_code docker_health want publish port addresses path url code check
    local started restarts first_start="" first_seen=0 host need_up since up
    deadline=$((SECONDS + budget))
    HEALTH=""
    PROBE_WHY=""
    while :; do
        healthy=0
        state=$(timeout 10 docker inspect --format '{{.State.Status}}|{{.State.ExitCode}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{index .Config.Labels "hoist.health-status"}}|{{index .Config.Labels "hoist.publish"}}|{{index .Config.Labels "hoist.port"}}|{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}|{{index .Config.Labels "hoist.health-path"}}|{{index .Config.Labels "hoist.health-check"}}|{{.State.StartedAt}}|{{.RestartCount}}' "$id" 2>/dev/null || true)
        IFS='|' read -r status exit_code docker_health want publish port addresses path check started restarts <<<"$state" || true
        if [[ -z $status ]]; then
            HEALTH="unknown: the Docker engine does not answer"
        elif [[ $status != running ]]; then
            HEALTH="container $status"
            PROBE_WHY="container stopped ($status, exit code $exit_code)"
            return 1
        elif [[ -n $path ]]; then
            url=""
            if [[ -n $publish ]]; then
                url="http://127.0.0.1:$publish$path"
            elif [[ -n ${addresses%% *} ]]; then
                url="http://${addresses%% *}:$port$path"
            fi
            if [[ -z $url ]]; then
                HEALTH="no address to probe yet"
            else
                code=$(curl --globoff -s -o /dev/null -w '%{http_code}' \
                    --max-time "$((HOIST_HEALTH_INTERVAL + 2))" "$url" || true)
                HEALTH="http ${code:-000} from $path"
                if [[ $code == "${want:-200}" ]]; then healthy=1; else
                    PROBE_WHY="$url answered ${code:-000} (expected ${want:-200}) for ${budget}s"
                fi
            fi
        elif [[ $check == command:* ]]; then
            # The words travel base64-encoded (a label is text) and reach `docker exec` as
            # they were written: no shell of hoist's reads them.
            # Its output is not kept: it may hold what the container knows.
            if printf '%s' "${check#command:}" | base64 -d |
                timeout "$((HOIST_HEALTH_INTERVAL + 2))" xargs -0 docker exec "$id" >/dev/null 2>&1; then
                HEALTH="command exited 0"
                healthy=1
            else
                HEALTH="command failed"
                PROBE_WHY="the health command did not exit 0 for ${budget}s"
            fi
        elif [[ $check == tcp ]]; then
            host=127.0.0.1
            if [[ -z $publish ]]; then host=${addresses%% *} publish=$port; fi
            if [[ -z $host ]]; then
                HEALTH="no address to probe yet"
            elif timeout "$((HOIST_HEALTH_INTERVAL + 2))" bash -c "exec 3<>\"/dev/tcp/\$0/\$1\"" "$host" "$publish" 2>/dev/null; then
                HEALTH="tcp $host:$publish accepts"
                healthy=1
            else
                HEALTH="tcp $host:$publish refused"
                PROBE_WHY="nothing accepted a connection on $host:$publish for ${budget}s"
            fi
        elif [[ $check == docker && -z $docker_health ]]; then
            HEALTH="no HEALTHCHECK"
            PROBE_WHY="healthcheck.docker is set, and the image has no HEALTHCHECK"
            return 1
        elif [[ $check == running:* ]]; then
            # No check at all: running since its last start (the engine's StartedAt; else
            # since the first look) for N seconds, without a restart while watched.
            need_up=${check#running:}
            [[ $need_up =~ ^[0-9]+$ ]] || need_up=0
            if [[ -z $first_start ]]; then
                first_start="$started $restarts" first_seen=$SECONDS
            elif [[ "$started $restarts" != "$first_start" ]]; then
                PROBE_WHY="the container restarted (restart count ${restarts:-?}) before it ran ${need_up}s"
                HEALTH="restarted"
                return 1
            fi
            # In milliseconds: whole seconds would pass a container up for 2.1 s as 3 s.
            since=$(date -d "$started" +%s%3N 2>/dev/null || true)
            now_ms
            if [[ $since =~ ^[0-9]+$ ]] && ((since > 0)); then
                up=$((NOW_MS - since))
            else
                up=$(((SECONDS - first_seen) * 1000))
            fi
            if ((up >= need_up * 1000)); then
                HEALTH="running for $((up / 1000))s (no health check configured; ${need_up}s needed)"
                healthy=1
            else
                HEALTH="running for $((up / 1000))s of ${need_up}s"
                PROBE_WHY="it must keep running ${need_up}s"
            fi
        elif [[ -n $docker_health ]]; then
            HEALTH="docker $docker_health"
            case $docker_health in
                healthy) healthy=1 ;;
                unhealthy)
                    PROBE_WHY="Docker reports the container unhealthy"
                    return 1
                    ;;
                *) PROBE_WHY="not healthy after ${budget}s (Docker status: $docker_health)" ;;
            esac
        else
            # A release made before hoist labelled its check: running now and still running
            # at the next look.
            if ((seen_running)); then
                HEALTH="running (no health check configured)"
                healthy=1
            fi
            seen_running=1
            [[ -n $HEALTH ]] || HEALTH="running"
        fi
        if ((healthy)); then
            ok=$((ok + 1))
            if ((ok >= need)); then
                if ((need > 1)); then HEALTH="$HEALTH ($ok in a row)"; fi
                return 0
            fi
        else
            ok=0
        fi
        if ((SECONDS >= deadline)); then
            if ((ok)); then PROBE_WHY="only $ok healthy answer(s) in a row of the $need needed in ${budget}s ($HEALTH)"; fi
            [[ -n $PROBE_WHY ]] || PROBE_WHY="no healthy answer for ${budget}s ($HEALTH)"
            return 1
        fi
        snooze "$HOIST_HEALTH_INTERVAL"
    done
}

}
