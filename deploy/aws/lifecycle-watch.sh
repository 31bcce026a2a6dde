#!/usr/bin/env bash
# Scale-in without killing a job (run by streamup-lifecycle.service, as root). The Auto Scaling group's
# "drain" termination hook holds an instance chosen for scale-in in Terminating:Wait; the instance metadata
# then reports target-lifecycle-state "Terminated". This waits for that, stops the worker (SIGTERM: running
# jobs finish within --drain-seconds, else are cancelled and their messages made visible again; systemd
# waits up to TimeoutStopSec) and tells Auto Scaling to go on. Needs AWS_REGION, STREAMUP_ASG_NAME and
# STREAMUP_LIFECYCLE_HOOK (bootstrap.sh writes them to /etc/streamup/worker.env) and the aws CLI.
set -euo pipefail
imds() {
  local token
  token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
until [[ $(imds autoscaling/target-lifecycle-state || true) == Terminated ]]; do
  sleep 5
done
echo "scale-in: draining streamup-worker"
systemctl stop streamup-worker.service
aws autoscaling complete-lifecycle-action --region "$AWS_REGION" \
  --auto-scaling-group-name "$STREAMUP_ASG_NAME" --lifecycle-hook-name "$STREAMUP_LIFECYCLE_HOOK" \
  --instance-id "$(imds instance-id)" --lifecycle-action-result CONTINUE
echo "scale-in: worker stopped, lifecycle action completed"
