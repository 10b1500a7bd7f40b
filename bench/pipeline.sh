#!/bin/bash
# The GitHub Actions job hoist replaces, as a script: log in to the registry, build, push,
# then `aws ssm send-command` with the pull-and-run commands every such job pastes, wait for
# each instance with `aws ssm wait command-executed`, and print each invocation's output.
# (The usual job SSHes in; over SSM it is the same steps, which is the fairest comparison.)
#
# Everything comes from the environment (bench/speed.py sets it):
#   REGISTRY REPO TAG VERSION CONTEXT   the image: registry host, repository, tag, build arg
#   INSTANCE_IDS                        space-separated
#   APP PORT SECRET_NAME SECRET_VALUE   the container: name, published port, one secret
#   BUILDER                             buildkit, classic (DOCKER_BUILDKIT=1/0), or default
#   DOCKER                              the docker CLI to build and push with (default: docker)
#   AWS_*                               the AWS CLI's endpoint, credentials and region
set -euo pipefail

image="$REGISTRY/$REPO:$TAG"
docker=${DOCKER:-docker}
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
case ${BUILDER:-buildkit} in
    buildkit) export DOCKER_BUILDKIT=1 ;;
    classic) export DOCKER_BUILDKIT=0 ;;
    default) unset DOCKER_BUILDKIT ;;
esac

aws ecr get-login-password --region "$region" |
    "$docker" login --username AWS --password-stdin "$REGISTRY" >/dev/null
"$docker" build -q --build-arg "VERSION=$VERSION" -t "$image" "$CONTEXT" >/dev/null
"$docker" push -q "$image" >/dev/null

# What such jobs run on the instance: log in, pull, write the env file, replace the
# container, delete the env file.
remote=$(
    cat <<EOF
set -e
aws ecr get-login-password --region $region | docker login --username AWS --password-stdin $REGISTRY >/dev/null
docker pull -q $image >/dev/null
umask 077
printf '%s=%s\n' '$SECRET_NAME' '$SECRET_VALUE' > /tmp/$APP.env
docker rm -f $APP >/dev/null 2>&1 || true
docker run -d --name $APP --restart unless-stopped --env-file /tmp/$APP.env -p $PORT:8080 $image
rm -f /tmp/$APP.env
EOF
)
params=$(python3 -c 'import json, sys; print(json.dumps({"commands": [sys.argv[1]]}))' "$remote")
read -r -a ids <<<"$INSTANCE_IDS"
command_id=$(aws ssm send-command --region "$region" --document-name AWS-RunShellScript \
    --instance-ids "${ids[@]}" --parameters "$params" --query Command.CommandId --output text)
status=0
for id in "${ids[@]}"; do
    aws ssm wait command-executed --region "$region" --command-id "$command_id" --instance-id "$id" || status=1
    aws ssm get-command-invocation --region "$region" --command-id "$command_id" --instance-id "$id" \
        --query '[Status, StandardErrorContent]' --output text || status=1
done
exit "$status"
