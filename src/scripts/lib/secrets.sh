#!/bin/bash
# requires: core state aws
# hoist's host library, secrets: the release's env file on the run's private tmpfs, with the
# secrets from hoist's channel and those the host reads itself with its own role.

# The env file (on the private tmpfs), removed on every way out.
ENV_FILE=""
EXIT_CLEANUPS+=(remove_env_file)

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# The secret NAME=value lines: on stdin (local transport) or in an SSM SecureString
# parameter the host fetches with its own role. Never in this script's text.
read_secrets() {
    case $HOIST_ENV_SOURCE in
        stdin) cat ;;
        ssm-parameter)
            # Runs in a subshell: report and let the missing names fail the deploy.
            if [[ -z $HOIST_SECRET_PARAMETER ]]; then
                warn "HOIST_SECRET_PARAMETER is not set"
            elif ! command -v aws >/dev/null; then
                warn "the AWS CLI is not installed on this host (needed to fetch secrets)"
            else
                aws_retry ssm get-parameter ${HOIST_REGION:+--region "$HOIST_REGION"} --with-decryption \
                    --name "$HOIST_SECRET_PARAMETER" --query Parameter.Value --output text ||
                    warn "could not read the secret parameter $HOIST_SECRET_PARAMETER"
            fi
            ;;
    esac
}

# Writes the release's env file (clear values, secrets from the channel, secrets the host
# reads itself) on the private tmpfs; sets ENV_FILE, and keeps the secret values in
# SECRET_VALUES (in memory: what relay_log masks).
write_env_file() {
    private_dir
    ENV_FILE="$PRIVATE_DIR/$HOIST_RELEASE.env"
    : >"$ENV_FILE"
    local kv
    for kv in ${HOIST_ENV_CLEAR[@]+"${HOIST_ENV_CLEAR[@]}"}; do
        printf '%s\n' "$kv" >>"$ENV_FILE"
    done
    if ((${#HOIST_ENV_SECRETS[@]})); then
        local line name seen=" " missing=()
        # Through a pipe into this shell (lastpipe: the loop's variables stay set). Secrets
        # never go through a here-string or a here-document, which bash before 5.1 writes to
        # a temporary file, nor a process substitution (a named pipe in TMPDIR where
        # /dev/fd is missing); tests/it/script_secrets.rs checks it.
        shopt -s lastpipe
        read_secrets | while IFS= read -r line || [[ -n $line ]]; do
            [[ -z $line ]] && continue
            name=${line%%=*}
            if [[ $line != *=* || ! " ${HOIST_ENV_SECRETS[*]} " == *" $name "* ]]; then
                fail "the secret channel carried an unexpected entry (${name:0:40})"
            fi
            printf '%s\n' "$line" >>"$ENV_FILE"
            SECRET_VALUES+=("${line#*=}")
            seen+="$name "
        done
        shopt -u lastpipe
        for name in "${HOIST_ENV_SECRETS[@]}"; do
            [[ $seen == *" $name "* ]] || missing+=("$name")
        done
        ((${#missing[@]} == 0)) || fail "secrets missing from the secret channel: ${missing[*]}"
    fi
    local entry kind id key value name
    for entry in ${HOIST_HOST_SECRETS[@]+"${HOIST_HOST_SECRETS[@]}"}; do
        IFS='|' read -r name kind id key <<<"$entry"
        value=$(host_secret "$kind" "$id" "$key" 2>"$PRIVATE_DIR/fetch.err") ||
            fail "secret $name: cannot read it from $(describe_source "$kind" "$id" "$key"): $(tail -n 1 "$PRIVATE_DIR/fetch.err" | tr -d '\r')"
        [[ $value != *$'\n'* && $value != *$'\r'* ]] ||
            fail "secret $name from $(describe_source "$kind" "$id" "$key") holds a line break; an env file holds one NAME=value per line"
        printf '%s=%s\n' "$name" "$value" >>"$ENV_FILE"
        SECRET_VALUES+=("$value")
    done
    value=""
    rm -f "$PRIVATE_DIR/fetch.err"
}

describe_source() {
    case $1 in
        ssm) printf 'ssm:%s' "$2" ;;
        *) printf 'secretsmanager:%s%s' "$2" "${3:+#$3}" ;;
    esac
}

# Prints one secret this host reads itself, with its own role (never through hoist):
# an SSM parameter, or a Secrets Manager secret (one field of its JSON with a key).
host_secret() {
    local kind=$1 id=$2 key=$3
    command -v aws >/dev/null || {
        echo "the AWS CLI is not installed on this host" >&2
        return 1
    }
    case $kind in
        ssm)
            aws_retry ssm get-parameter ${HOIST_REGION:+--region "$HOIST_REGION"} --with-decryption \
                --name "$id" --query Parameter.Value --output text
            ;;
        secretsmanager)
            if [[ -z $key ]]; then
                aws_retry secretsmanager get-secret-value ${HOIST_REGION:+--region "$HOIST_REGION"} \
                    --secret-id "$id" --query SecretString --output text
            else
                # A pipe: the secret's JSON is never in a variable or a here-string (a file on
                # disk in bash before 5.1).
                aws_retry secretsmanager get-secret-value ${HOIST_REGION:+--region "$HOIST_REGION"} \
                    --secret-id "$id" --query SecretString --output text | json_field "$key"
            fi
            ;;
    esac
}

# Prints field $1 of the JSON object on stdin (python3, else jq).
json_field() {
    if command -v python3 >/dev/null; then
        python3 -c 'import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit("the secret is not a JSON object")
if not isinstance(doc, dict) or sys.argv[1] not in doc:
    sys.exit("the secret has no field %s" % sys.argv[1])
v = doc[sys.argv[1]]
sys.stdout.write(v if isinstance(v, str) else json.dumps(v))' "$1"
    elif command -v jq >/dev/null; then
        jq -er --arg k "$1" 'if type == "object" and has($k) then .[$k] | if type == "string" then . else tojson end else error("the secret has no field \($k)") end'
    else
        echo "reading a field of a JSON secret needs python3 or jq on this host" >&2
        return 1
    fi
}

remove_env_file() {
    if [[ -n $ENV_FILE && -e $ENV_FILE ]]; then
        shred_file "$ENV_FILE"
    fi
    ENV_FILE=""
}

}
