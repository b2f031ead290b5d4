# GPU cluster image: CUDA 13 runtime, libtorch from the same PyPI wheel as CI,
# built by the same scripts (scripts/setup-libtorch.sh, scripts/with-libtorch.sh).
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl build-essential python3 python3-venv python3-pip git \
    && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH \
    HOMEONORM_TORCH_VENV=/opt/torch-2.11.0

WORKDIR /src
COPY . .
RUN scripts/with-libtorch.sh cargo build --release \
    && install -m 755 target/release/homeonorm /usr/local/bin/homeonorm \
    && rm -rf target /root/.cargo/registry

# The binary carries libtorch's folder (inside /opt/torch-2.11.0) on its run path.
WORKDIR /work
ENTRYPOINT ["homeonorm"]
CMD ["info"]
