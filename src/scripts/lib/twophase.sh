#!/bin/bash
# requires: core look
# hoist's host library, two-phase rollouts: what a stage left that never switched.

# The containers bg_discard_staged removed.
DISCARDED=()

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# Removes the containers of the app that a two-phase rollout staged and that never switched
# (label hoist.staged-by; $1: only those of run $1, else any run's): left by a run whose
# staging failed elsewhere, or that was killed between its phases. Never one nginx routes to,
# never one that served once (a retained release). Sets DISCARDED (their names).
bg_discard_staged() {
    local run=${1:-} live id name state color publish by ids=()
    DISCARDED=()
    live=$(bg_conf_live "$BG_CONF")
    mapfile -t ids < <(docker ps -aq --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --filter "label=$STAGED_LABEL${run:+=$run}")
    for id in ${ids[@]+"${ids[@]}"}; do
        IFS='|' read -r name state color publish by <<<"$(docker inspect --format "{{.Name}}|{{.State.Status}}|{{index .Config.Labels \"hoist.color\"}}|{{index .Config.Labels \"hoist.publish\"}}|{{index .Config.Labels \"$STAGED_LABEL\"}}" "$id" 2>/dev/null)"
        name=${name#/}
        [[ -n $name ]] || continue
        if [[ $state == running && -n $live && "$color $publish" == "$live" ]]; then continue; fi
        if bg_was_live "$name"; then continue; fi
        docker rm -f "$id" >/dev/null || fail "could not remove $name, staged by run $by"
        DISCARDED+=("$name")
        log "removed $name: staged by run $by, never switched"
    done
}

}
