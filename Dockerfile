# streamup in a container: `docker run IMAGE upscale s3://bucket/in.mp4 s3://bucket/out.mp4`.
#
#   docker build -t streamup .                                         # PyPI torch: CUDA build, also runs on CPU
#   docker build -t streamup:cpu \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .  # CPU-only torch: far smaller
#   (most of the CUDA build's pip layer is the nvidia libraries, torch and triton; `podman history IMAGE`,
#   which deploy/build-and-smoke.sh prints, shows the layer sizes of a given build)
#
# The GPU needs no CUDA base image: PyPI's torch wheels carry the CUDA runtime; the host's NVIDIA driver and
# the NVIDIA container toolkit (`docker run --gpus all`) provide the rest. FFmpeg comes inside PyAV's wheel.
# Weights: bundled default model; others from a read-only volume at /weights, or downloaded at first use and
# verified against the SHA-256 manifest into the user cache (mount /home/streamup/.cache to keep them).
ARG BASE=python:3.11-slim
FROM ${BASE}

# Empty: the default package index (its Linux torch wheels are the CUDA build).
ARG TORCH_INDEX_URL=
# Empty: PyPI. A package index in PyPI's place (a mirror).
ARG PIP_INDEX_URL=
# Empty: PyPI only. Extra indexes pip also searches, e.g. local simple indexes mounted into the build so the
# multi-GB torch/CUDA wheels come from disk: `podman build --volume DIR:DIR:ro
# --build-arg PIP_EXTRA_INDEX_URL=file://DIR/simple .` (deploy/build-and-smoke.sh's WHEELS does this). pip
# reads both from the environment; as build arguments they are not kept in the image.
ARG PIP_EXTRA_INDEX_URL=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMUP_WEIGHTS_DIR=/weights

WORKDIR /src
COPY pyproject.toml README.md ./
COPY weights ./weights
COPY streamup ./streamup
# The README's install line, split in two so TORCH_INDEX_URL picks the torch build without touching the rest.
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.14.1 torchvision==0.29.1 \
 && pip install . \
 && rm -rf /src \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin streamup

USER streamup
WORKDIR /home/streamup
ENTRYPOINT ["streamup"]
CMD ["--help"]
