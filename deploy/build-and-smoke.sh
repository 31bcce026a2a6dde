#!/usr/bin/env bash
# Build the streamup image with podman and run it once for real against a local S3/SQS (moto) endpoint:
# `streamup upscale s3://… s3://…`, `streamup worker` on one queued job, and deploy/systemd's unit under a
# real systemd. CI does not run this (no container engine there); run it by hand on Debian as root:
#
#   apt-get install -y podman buildah debootstrap runc
#   deploy/build-and-smoke.sh                  # base from Debian's default mirror, torch and the rest from PyPI
#
# Where no registry base image is reachable, the base is built from Debian packages: debootstrap a minimal
# bookworm with python3 (3.11, the Python the torch wheels are built for), make a venv at /opt/python (inside
# the image) and put it first on PATH, so the Dockerfile's `pip install` behaves as on python:3.11-slim
# (Debian's own Python refuses system-wide pip installs, PEP 668). BASE=python:3.11-slim skips that and uses
# the registry.
#
# Where packages come from: every variable below is empty by default, which means the public defaults
# (debootstrap's own Debian mirror, PyPI). Set them for a local mirror or an offline build.
#   DEBIAN_MIRROR  the Debian mirror debootstrap fetches the base from (e.g. http://HOST/debian)
#   WHEELS         space-separated folders holding PEP 503 simple indexes (DIR/simple/...); each is mounted
#                  read-only into the build and added as file://DIR/simple to PIP_EXTRA_INDEX_URL
#   PIP_INDEX_URL  a package index in PyPI's place (a mirror), passed to the build
#   CA_BUNDLE      a CA file mounted over the image's bundle during builds (for a TLS-intercepting proxy)
# Other environment: IMAGE (default streamup:smoke), BASE (default: the debootstrapped
# localhost/streamup-base), ENGINE_OPTS (global podman options, e.g. "--runtime runc --storage-driver vfs"),
# LIMITS (ulimits for builds and runs), SKIP_BUILD=1 (smoke-test the existing IMAGE again), KEEP=1 (keep the
# logs). In a sandbox with cgroups v1+v2 ("hybrid", which crun refuses) and without CAP_SYS_RESOURCE
# (podman's default nproc/nofile limits cannot be set), add:
#   ENGINE_OPTS="--runtime runc" LIMITS="--ulimit nproc=4096:4096 --ulimit nofile=20000:20000"
# It prints what a build record needs: build seconds, image size, the runs' output.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
IMAGE=${IMAGE:-streamup:smoke}
BASE_IMAGE=localhost/streamup-base:bookworm
BASE=${BASE:-$BASE_IMAGE}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}
WHEELS=${WHEELS:-}
PIP_INDEX_URL=${PIP_INDEX_URL:-}
CA_BUNDLE=${CA_BUNDLE:-}
read -r -a PODMAN <<<"podman ${ENGINE_OPTS:-}"
read -r -a LIMITS <<<"${LIMITS:-}"
PY=${PY:-$REPO/.venv/bin/python}   # the dev venv: boto3 and moto[server] for the local endpoint
WORK=$(mktemp -d /var/tmp/streamup-smoke.XXXXXX)
MOTO_PID=
cleanup() {
  [[ -n $MOTO_PID ]] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

build_base() {
  if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    say "base $BASE_IMAGE exists (podman rmi it to rebuild)"; return
  fi
  say "debootstrap bookworm (minbase + python3) -> $BASE_IMAGE"
  local root=$WORK/rootfs start=$SECONDS
  # No mirror argument: debootstrap picks its own default mirror for bookworm.
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$WORK/debootstrap.log"
  chroot "$root" python3 -m venv /opt/python
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  echo "base built in $((SECONDS - start)) s, $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes"
}

build_image() {
  local args=(--network host "${LIMITS[@]}" --build-arg "BASE=$BASE" -t "$IMAGE") index=() dir
  [[ -n $CA_BUNDLE ]] && args+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  for dir in $WHEELS; do
    args+=(--volume "$dir:$dir:ro")
    index+=("file://$dir/simple")
  done
  ((${#index[@]})) && args+=(--build-arg "PIP_EXTRA_INDEX_URL=${index[*]}")
  [[ -n $PIP_INDEX_URL ]] && args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
  say "podman build ${args[*]} ."
  local start=$SECONDS
  "${PODMAN[@]}" build "${args[@]}" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
  BUILD_SECONDS=$((SECONDS - start))
  local size
  size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
  echo "image $IMAGE built in $BUILD_SECONDS s; size $size bytes ($((size / 1024 / 1024)) MiB)"
  "${PODMAN[@]}" history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-150 | head -12
}

start_moto() {
  MOTO_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  ENDPOINT=http://127.0.0.1:$MOTO_PORT
  "$REPO/.venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  export AWS_ENDPOINT_URL=$ENDPOINT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  for _ in $(seq 50); do curl -fs "$ENDPOINT/moto-api/" -o /dev/null && return; sleep 0.2; done
  echo "moto server did not start"; cat "$WORK/moto.log"; exit 1
}

# `podman run` against the host's 127.0.0.1: host network, the same AWS variables, read-only root.
run_image() {
  "${PODMAN[@]}" run --rm --network host "${LIMITS[@]}" --read-only --tmpfs /tmp \
    --tmpfs /home/streamup/.cache:rw,mode=1777 \
    -e AWS_ENDPOINT_URL -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION -e AWS_DEFAULT_REGION \
    -e STREAMUP_HTTP_HOST=127.0.0.1 "$IMAGE" "$@"
}

smoke() {
  start_moto
  say "moto on $ENDPOINT: bucket, queues, input"
  read -r JOB_QUEUE STATUS_QUEUE < <("$PY" - "$REPO/examples/sample.mp4" <<'EOF'
import sys, boto3
boto3.client("s3").create_bucket(Bucket="smoke")
boto3.client("s3").upload_file(sys.argv[1], "smoke", "in/sample.mp4")
sqs = boto3.client("sqs")
print(sqs.create_queue(QueueName="upscale-cpu-queue")["QueueUrl"],
      sqs.create_queue(QueueName="upscale-status-queue")["QueueUrl"])
EOF
)
  say "streamup upscale s3://smoke/in/sample.mp4 s3://smoke/out/cli_x2.mp4 (default model, CPU)"
  local start=$SECONDS
  run_image upscale --no-progress s3://smoke/in/sample.mp4 s3://smoke/out/cli_x2.mp4
  echo "exit 0 after $((SECONDS - start)) s"

  say "streamup worker --max-jobs 1 on one job"
  "$PY" - "$JOB_QUEUE" <<'EOF'
import json, sys, boto3
job = {"jobId": "smoke-1", "inputKey": "in/sample.mp4", "outputKey": "out/worker_x2.mp4",
       "parameters": {"device": "cpu", "scale_factor": "2"}}
boto3.client("sqs").send_message(QueueUrl=sys.argv[1], MessageBody=json.dumps(job))
print("sent", json.dumps(job))
EOF
  start=$SECONDS
  SQS_QUEUE_URL=$JOB_QUEUE S3_BUCKET_NAME=smoke STATUS_QUEUE_URL=$STATUS_QUEUE \
    run_image worker --queue-url "$JOB_QUEUE" --bucket smoke --status-queue-url "$STATUS_QUEUE" \
    --max-jobs 1 --log-format json
  echo "worker exit 0 after $((SECONDS - start)) s"

  say "outputs and status events"
  "$PY" - "$STATUS_QUEUE" "$JOB_QUEUE" <<'EOF'
import json, sys, boto3
s3, sqs = boto3.client("s3"), boto3.client("sqs")
for key in ("out/cli_x2.mp4", "out/worker_x2.mp4"):
    head = s3.head_object(Bucket="smoke", Key=key)
    print(f"s3://smoke/{key}: {head['ContentLength']} bytes, metadata {head['Metadata']}")
events = []
while batch := sqs.receive_message(QueueUrl=sys.argv[1], MaxNumberOfMessages=10).get("Messages"):
    events += [json.loads(m["Body"]) for m in batch]
for event in events:
    print("status:", json.dumps(event, sort_keys=True))
statuses = [e["status"] for e in events]
assert statuses[0] == "RUNNING" and statuses[-1] == "SUCCEEDED", statuses
left = sqs.get_queue_attributes(QueueUrl=sys.argv[2], AttributeNames=["All"])["Attributes"]
print("job queue after the run:", {k: v for k, v in left.items() if k.startswith("ApproximateNumber")})
EOF
}

# deploy/systemd/streamup-worker.service, hardening and all, under a real systemd (PID 1 of a container made
# from the image plus Debian's systemd): it starts, answers /readyz, runs a job, and on `systemctl stop`
# drains and exits 0 (Result=success, no restart). Its port 9400 is on the host network.
smoke_systemd() {
  say "streamup-worker.service under systemd"
  printf '%s\n' "FROM $IMAGE" "USER root" \
    "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd systemd-sysv >/dev/null && mkdir -p /opt/streamup && ln -s /opt/python /opt/streamup/venv" \
    "COPY streamup-worker.service /etc/systemd/system/" "RUN systemctl enable streamup-worker.service" \
    'ENTRYPOINT ["/sbin/init"]' 'CMD []' >"$WORK/Containerfile.systemd"
  local args=(--network host "${LIMITS[@]}" -t "$IMAGE-systemd" -f "$WORK/Containerfile.systemd")
  [[ -n $CA_BUNDLE ]] && args+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  "${PODMAN[@]}" build "${args[@]}" "$REPO/deploy/systemd" >"$WORK/build-systemd.log" 2>&1 \
    || { tail -20 "$WORK/build-systemd.log"; exit 1; }
  { cat "$REPO/deploy/systemd/worker.env.example"
    printf '%s\n' "SQS_QUEUE_URL=$JOB_QUEUE" "STATUS_QUEUE_URL=$STATUS_QUEUE" S3_BUCKET_NAME=smoke \
      STREAMUP_HTTP_HOST=127.0.0.1 "AWS_ENDPOINT_URL=$ENDPOINT" AWS_ACCESS_KEY_ID=testing \
      AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1; } >"$WORK/worker.env"
  "$PY" - "$JOB_QUEUE" <<'EOF'
import json, sys, boto3
boto3.client("sqs").send_message(QueueUrl=sys.argv[1], MessageBody=json.dumps(
    {"jobId": "smoke-systemd", "inputKey": "in/sample.mp4", "outputKey": "out/systemd_x2.mp4",
     "parameters": {"device": "cpu", "scale_factor": 2}}))
EOF
  local box=streamup-systemd-smoke start=$SECONDS
  "${PODMAN[@]}" run -d --rm --name "$box" --network host --systemd=always "${LIMITS[@]}" \
    -v "$WORK/worker.env:/etc/streamup/worker.env:ro" "$IMAGE-systemd" >/dev/null
  "$PY" - <<'EOF'
import time, boto3
s3 = boto3.client("s3")
for _ in range(300):
    if s3.list_objects_v2(Bucket="smoke", Prefix="out/systemd_x2.mp4").get("KeyCount"):
        break
    time.sleep(2)
else:
    raise SystemExit("no output after 600 s")
EOF
  echo "job done after $((SECONDS - start)) s; /readyz: $(curl -s 127.0.0.1:9400/readyz)"
  start=$SECONDS
  "${PODMAN[@]}" exec "$box" systemctl stop streamup-worker
  echo "systemctl stop took $((SECONDS - start)) s"
  "${PODMAN[@]}" exec "$box" systemctl show streamup-worker -p Result -p ExecMainStatus -p NRestarts
  "${PODMAN[@]}" exec "$box" systemd-analyze security streamup-worker --no-pager | tail -1
  "${PODMAN[@]}" exec "$box" journalctl -u streamup-worker --no-pager -o cat | cut -c1-200
  "${PODMAN[@]}" stop -t 5 "$box" >/dev/null
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  build_base
  build_image
fi
smoke
smoke_systemd
say "done: image $IMAGE"
