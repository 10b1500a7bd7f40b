#!/usr/bin/env bash
# What the emulator cannot settle, asked of real AWS. Opt-in: never run by CI or tests/run.
#
# Someone with an AWS account runs it against ONE throwaway EC2 instance that runs the SSM
# agent, Docker and the AWS CLI, with an instance profile that may read
# /hoist-smoke/* parameters and pull from ECR:
#
#   HOIST_SMOKE_INSTANCE=i-0123456789abcdef0 AWS_REGION=eu-west-1 tests/aws-smoke.sh
#
# It answers the rows tests/fleet/CONFORMANCE.md marks "unverified" and prints one line per
# question, `measured: …`, to paste into that file with the date and the region:
#   1. the largest `commands` payload SendCommand accepts (and the error past it);
#   2. whether PutParameter takes Overwrite=false together with Tags;
#   3. what the agent appends to stdout and stderr when it cuts them;
#   4. whether GetCommandInvocation can still say InProgress after ListCommandInvocations
#      said the invocation ended;
#   5. how many of 12 PutParameter calls sent at once are throttled (AWS publishes no rate);
#   6. a real deploy, status and rollback of examples/hello (needs HOIST_SMOKE_DEPLOY=1, an
#      ECR repository the account may create, and the instance tagged Env=smoke).
# It creates only /hoist-smoke/* parameters and deletes them again; commands it sends are
# `true`, `printf`, or hoist's own.
set -euo pipefail
cd "$(dirname "$0")/.."

instance=${HOIST_SMOKE_INSTANCE:?set HOIST_SMOKE_INSTANCE to a throwaway instance id}
: "${AWS_REGION:?set AWS_REGION}"
export AWS_REGION AWS_DEFAULT_REGION=$AWS_REGION
command -v aws >/dev/null || {
  echo "aws-smoke: the AWS CLI is needed" >&2
  exit 2
}
work=$(mktemp -d)
cleanup() {
  rm -rf "$work" examples/hello/.hoist-smoke.yaml
  aws ssm delete-parameter --name /hoist-smoke/overwrite-tags >/dev/null 2>&1 || true
  for n in $(seq 1 12); do
    aws ssm delete-parameter --name "/hoist-smoke/rate-$n" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

say() { printf 'measured: %s\n' "$*"; }

# Sends AWS-RunShellScript with one `commands` element of $1 bytes (a comment line padded to
# size, then `true`); prints the command id, or the error code.
send_sized() {
  local size=$1 pad params
  pad=$(head -c "$((size - 6))" /dev/zero | tr '\0' 'x')
  python3 - "$pad" >"$work/params.json" <<'PY'
import json, sys
print(json.dumps({"commands": ["#" + sys.argv[1] + "\ntrue"]}))
PY
  params="file://$work/params.json"
  if aws ssm send-command --instance-ids "$instance" --document-name AWS-RunShellScript \
    --parameters "$params" --query Command.CommandId --output text 2>"$work/err"; then
    return 0
  fi
  grep -o '([A-Za-z]*)' "$work/err" | head -n 1
  return 1
}

wait_command() {
  local id=$1 status
  for _ in $(seq 1 120); do
    status=$(aws ssm list-command-invocations --command-id "$id" \
      --query 'CommandInvocations[0].Status' --output text)
    case $status in Success | Failed | Cancelled | TimedOut) return 0 ;; esac
    sleep 1
  done
  return 1
}

echo "1. the largest commands payload SendCommand accepts"
low=30000 high=70000
while ((high - low > 64)); do
  mid=$(((low + high) / 2))
  if id=$(send_sized "$mid"); then
    low=$mid
    wait_command "$id" || true
  else
    high=$mid
    last_error=$id
  fi
done
say "SendCommand accepted a commands element of $low bytes and refused $high bytes with ${last_error:-?}"

echo "2. PutParameter with Overwrite=false and Tags together"
if aws ssm put-parameter --name /hoist-smoke/overwrite-tags --type SecureString \
  --value smoke --no-overwrite --tags Key=hoist,Value=smoke >/dev/null 2>"$work/err"; then
  say "PutParameter accepted --no-overwrite with --tags"
else
  say "PutParameter refused --no-overwrite with --tags: $(head -n 1 "$work/err")"
fi

echo "3. what the agent appends to output it cuts"
python3 - >"$work/params.json" <<'PY'
import json
script = "head -c 30000 /dev/zero | tr '\\0' 'o'; head -c 12000 /dev/zero | tr '\\0' 'e' >&2"
print(json.dumps({"commands": [script]}))
PY
id=$(aws ssm send-command --instance-ids "$instance" --document-name AWS-RunShellScript \
  --parameters "file://$work/params.json" --query Command.CommandId --output text)
wait_command "$id"
aws ssm get-command-invocation --command-id "$id" --instance-id "$instance" \
  --output json >"$work/cut.json"
python3 - "$work/cut.json" <<'PY'
import json, sys
inv = json.load(open(sys.argv[1]))
for stream in ("StandardOutputContent", "StandardErrorContent"):
    text = inv[stream]
    tail = text.rstrip("oe")[-60:] if text.rstrip("oe") else ""
    print(f"measured: {stream}: {len(text.encode())} bytes, {len(text)} characters, "
          f"ends with {text[-40:]!r}, non-padding tail {tail!r}")
PY

echo "4. can GetCommandInvocation lag ListCommandInvocations?"
lagged=0
for _ in 1 2 3 4 5; do
  id=$(aws ssm send-command --instance-ids "$instance" --document-name AWS-RunShellScript \
    --parameters 'commands=["printf done"]' --query Command.CommandId --output text)
  for _ in $(seq 1 200); do
    listed=$(aws ssm list-command-invocations --command-id "$id" \
      --query 'CommandInvocations[0].Status' --output text)
    if [[ $listed == Success ]]; then
      got=$(aws ssm get-command-invocation --command-id "$id" --instance-id "$instance" \
        --query Status --output text)
      [[ $got == Success ]] || lagged=$((lagged + 1))
      break
    fi
  done
done
say "GetCommandInvocation said something else than Success right after the list said Success in $lagged of 5 tries"

echo "5. PutParameter: 12 at once"
for n in $(seq 1 12); do
  (AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=1 aws ssm put-parameter --name "/hoist-smoke/rate-$n" --type String --value x --overwrite \
    --cli-read-timeout 10 >/dev/null 2>"$work/put-$n.err" || true) &
done
wait
throttled=$(cat "$work"/put-*.err | grep -c -i 'throttl\|rate exceeded' || true)
say "PutParameter: $throttled of 12 calls sent at once were throttled (the CLI retrying none)"

if [[ ${HOIST_SMOKE_DEPLOY:-0} == 1 ]]; then
  echo "6. a real deploy, status and rollback of examples/hello"
  hoist=${HOIST:-target/debug/hoist}
  [[ -x $hoist ]] || cargo build --quiet
  # Beside the example, so that its build context and Dockerfile are found.
  cfg=examples/hello/.hoist-smoke.yaml
  sed -e "s/^region: .*/region: $AWS_REGION/" -e 's/Env: \[staging\]/Env: [smoke]/' \
    examples/hello/hoist.yaml >"$cfg"
  export HELLO_API_TOKEN=${HELLO_API_TOKEN:-smoke-$RANDOM$RANDOM}
  "$hoist" deploy -f "$cfg" && say "deploy of examples/hello: ok"
  "$hoist" status -f "$cfg" && say "status: ok"
  # A second release, so that a rollback has one to go back to.
  sed -i 's/VERSION: "1.0.0"/VERSION: "1.0.1"/' "$cfg"
  "$hoist" deploy -f "$cfg" --release smoke-2 && say "second deploy: ok"
  "$hoist" rollback -f "$cfg" && say "rollback: ok"
else
  echo "6. skipped: set HOIST_SMOKE_DEPLOY=1 for a real deploy, status and rollback"
fi
