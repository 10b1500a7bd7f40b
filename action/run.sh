#!/usr/bin/env bash
# Runs one hoist command for the GitHub Action (action.yml), in the working directory the
# action's step set. Every input arrives in the environment, never in this script's text:
#
#   HOIST_COMMAND   deploy, plan, rollback, status, lock (hoist lock status) or unlock
#   HOIST_CONFIG    the config file (--file)
#   HOIST_PLAN      plan: where hoist writes the plan (default hoist-plan.json);
#                   deploy: a reviewed plan to apply (--plan), none when empty
#   HOIST_ARGS      more arguments, split as shell words (quotes and backslashes, as xargs
#                   reads them); nothing in them is expanded or run
#
# hoist itself, under GITHUB_ACTIONS=true, masks the secrets it reads, writes its outputs
# to $GITHUB_OUTPUT and its per-target table to the job summary.
set -euo pipefail

die() {
  printf '::error title=hoist::%s\n' "$*"
  exit 2
}

command=${HOIST_COMMAND:-deploy}
case $command in
  deploy | plan | rollback | status | doctor | lock | unlock) ;;
  *) die "command \`$command\` is not one of deploy, plan, rollback, status, doctor, lock, unlock" ;;
esac

args=()
if [[ -n ${HOIST_ARGS:-} ]]; then
  words=$(mktemp "${RUNNER_TEMP:-/tmp}/hoist-args.XXXXXX")
  printf '%s' "$HOIST_ARGS" | xargs -r printf '%s\0' >"$words" ||
    die "args: cannot split \`$HOIST_ARGS\` into words (an unmatched quote?)"
  mapfile -d '' args <"$words"
  rm -f "$words"
fi

case $command in
  lock) cmd=(hoist lock status --file "${HOIST_CONFIG:-hoist.yaml}") ;;
  *) cmd=(hoist "$command" --file "${HOIST_CONFIG:-hoist.yaml}") ;;
esac
case $command in
  plan) cmd+=(--out "${HOIST_PLAN:-hoist-plan.json}" --format markdown) ;;
  deploy) if [[ -n ${HOIST_PLAN:-} ]]; then cmd+=(--plan "$HOIST_PLAN"); fi ;;
  *) if [[ -n ${HOIST_PLAN:-} ]]; then
       printf '::warning title=hoist::the plan input is for plan and deploy; %s ignores it\n' "$command"
     fi ;;
esac
cmd+=(${args[@]+"${args[@]}"})

# The command line on stderr: stdout is hoist's own (its ::add-mask:: lines come first).
{
  printf 'hoist'
  printf ' %q' "${cmd[@]:1}"
  printf '\n'
} >&2
exec "${cmd[@]}"
