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
# health path when it has one (to its published port, else its own address), else the
# image's own HEALTHCHECK, else "still running at the next look". A container that stops
# fails at once; one the engine cannot inspect (a daemon restarting) is unknown and probing
# goes on until the deadline — healthy is only ever what was observed. Sets HEALTH (the last
# observation) and PROBE_WHY (why it is not healthy).
# (Reached through the EXIT trap and the watchdog.)
probe_health() {
    local id=$1 budget=$2 need=${3:-1} deadline state seen_running=0 ok=0 healthy
    local status exit_code docker_health want publish port addresses path url code
    deadline=$((SECONDS + budget))
    HEALTH=""
    PROBE_WHY=""
    while :; do
        healthy=0
        state=$(timeout 10 docker inspect --format '{{.State.Status}}|{{.State.ExitCode}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{index .Config.Labels "hoist.health-status"}}|{{index .Config.Labels "hoist.publish"}}|{{index .Config.Labels "hoist.port"}}|{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}|{{index .Config.Labels "hoist.health-path"}}' "$id" 2>/dev/null || true)
        IFS='|' read -r status exit_code docker_health want publish port addresses path <<<"$state" || true
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
            # No check at all: running now and still running at the next look.
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
