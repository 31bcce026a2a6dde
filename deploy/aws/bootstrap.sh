#!/usr/bin/env bash
# Turns a fresh Amazon Linux 2023 instance into a streamup worker; streamup-fleet.yaml's user data runs it
# from the artifacts folder (the wheel, this script, lifecycle-watch.sh and deploy/systemd/*, side by side):
#   bash bootstrap.sh [TORCH_INDEX_URL=URL] KEY=VALUE...
# Every KEY=VALUE except TORCH_INDEX_URL is appended to /etc/streamup/worker.env after the example's
# defaults (systemd takes the last assignment of a variable). Idempotent: a rerun reinstalls and restarts.
set -euo pipefail
dist=$(cd "$(dirname "$0")" && pwd)
torch_index=
settings=()
for arg in "$@"; do
  case $arg in
    TORCH_INDEX_URL=*) torch_index=${arg#TORCH_INDEX_URL=} ;;
    *=*) settings+=("$arg") ;;
    *) echo "bootstrap.sh: expected KEY=VALUE, got '$arg'" >&2; exit 2 ;;
  esac
done
# STREAMUP_SCALE_IN_PROTECTION=1 needs this instance's id: read once here from the instance metadata (IMDSv2),
# so that the worker itself never calls the metadata service.
if printf '%s\n' "${settings[@]}" | grep -qx 'STREAMUP_SCALE_IN_PROTECTION=1'; then
  token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  settings+=("STREAMUP_INSTANCE_ID=$(curl -sf -H "X-aws-ec2-metadata-token: $token" \
    http://169.254.169.254/latest/meta-data/instance-id)")
fi

# Python 3.11 (the torch wheels' Python); the README's install, torch first so the index can pick the build.
dnf install -y -q python3.11
python3.11 -m venv /opt/streamup/venv
/opt/streamup/venv/bin/pip install -q ${torch_index:+--index-url "$torch_index"} torch==2.14.1 torchvision==0.29.1
/opt/streamup/venv/bin/pip install -q "$dist"/streamup-*.whl

id streamup >/dev/null 2>&1 || useradd --system --home-dir /var/lib/streamup --shell /sbin/nologin streamup
install -d -m 0750 -g streamup /etc/streamup
{ cat "$dist/worker.env.example"; printf '%s\n' "${settings[@]}"; } >/etc/streamup/worker.env
chgrp streamup /etc/streamup/worker.env && chmod 0640 /etc/streamup/worker.env
install -m 0755 "$dist/lifecycle-watch.sh" /opt/streamup/lifecycle-watch.sh
install -m 0644 "$dist/streamup-worker.service" "$dist/streamup-lifecycle.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable streamup-worker.service streamup-lifecycle.service
systemctl restart streamup-worker.service streamup-lifecycle.service
