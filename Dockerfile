# homeonorm's image: a build stage compiles the binary against the libtorch of PyPI's
# torch==2.11.0 wheel; the final stage keeps only the binary and that libtorch (with
# the wheel's CUDA libraries), runs as a non-root user, and has `homeonorm` as its
# entry point.
#
#   docker build -t homeonorm .                                   # CUDA 13 runtime base
#   docker build --build-arg BASE=debian:bookworm-slim -t homeonorm .
#
# BASE: any glibc image with apt (Debian 12+, Ubuntu 24.04+). Behind a proxy with its
# own CA, put its certificate in docker/ca-certificates/ (*.crt); where no rustup host
# is reachable, put a Rust toolchain (bin/cargo, bin/rustc, lib/) in docker/toolchain/.
# scripts/docker-test.sh does both from the machine it runs on.
ARG BASE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${BASE} AS build
# Marks the build stage's images, so that scripts/docker-test.sh can remove them.
LABEL org.homeonorm.stage=build
COPY docker/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl build-essential python3 python3-venv \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# pip and cargo trust the system's certificates (a proxy's CA included).
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOMEONORM_TORCH_VENV=/opt/torch-2.11.0
COPY docker/toolchain/ /opt/rust/
RUN if [ -x /opt/rust/bin/cargo ]; then \
        ln -s /opt/rust/bin/cargo /opt/rust/bin/rustc /usr/local/bin/; \
    else \
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
        && ln -s /root/.cargo/bin/cargo /root/.cargo/bin/rustc /usr/local/bin/; \
    fi
WORKDIR /src
COPY . .
# The commit each run's provenance.json records (.git is not copied): `docker build
# --build-arg HOMEONORM_COMMIT=$(git rev-parse HEAD)`; empty: not recorded.
ARG HOMEONORM_COMMIT=""
RUN HOMEONORM_COMMIT="$HOMEONORM_COMMIT" scripts/with-libtorch.sh cargo build --release --locked \
    && install -m 755 target/release/homeonorm /usr/local/bin/homeonorm

FROM ${BASE}
# libtorch needs glibc, libstdc++ and libgomp; the binary's run path points into the venv.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 homeonorm
COPY --from=build /opt/torch-2.11.0/lib /opt/torch-2.11.0/lib
COPY --from=build /usr/local/bin/homeonorm /usr/local/bin/homeonorm
# The experiment files, for jobs that run them as shipped.
COPY experiments /opt/homeonorm/experiments
USER homeonorm
WORKDIR /work
ENTRYPOINT ["homeonorm"]
CMD ["info"]
