#!/usr/bin/env bash
# The test command: installs what is missing on a fresh Debian machine (as root), starts the
# services the tests use (dockerd, a local registry, etcd) and runs every test in the release
# profile — the same profile as `cargo run --release`, so everything is compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

packages=(clang libclang-dev protobuf-compiler libprotobuf-dev docker.io etcd-server docker-registry iptables iproute2 conntrack busybox-static curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c "import kubernetes" 2>/dev/null; then
    log "installing the Python kubernetes client"
    python3 -m pip install -q kubernetes
fi

# The official Prometheus client's parsers check the /metrics expositions (tests/metrics.rs).
if ! python3 -c "import prometheus_client" 2>/dev/null; then
    log "installing the Python Prometheus client"
    python3 -m pip install -q prometheus-client
fi

# componentize-py builds the Python example plugin (examples/plugins/require-labels-py).
componentize_py=0.25.1
if [[ "$(componentize-py --version 2>/dev/null)" != "componentize-py $componentize_py" ]]; then
    log "installing componentize-py $componentize_py"
    python3 -m pip install -q "componentize-py==$componentize_py"
    if command -v pyenv >/dev/null; then pyenv rehash; fi
    hash -r
fi

state=/var/tmp/hortator-ci
mkdir -p "$state"

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    (dockerd >"$state/dockerd.log" 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$state/dockerd.log"; echo "dockerd did not start" >&2; exit 1; }
fi

if ! curl -sf http://127.0.0.1:5000/v2/ >/dev/null; then
    log "starting docker-registry on 127.0.0.1:5000"
    cat >"$state/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $state/registry
http:
  addr: 127.0.0.1:5000
YAML
    (docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 &)
    for _ in $(seq 1 40); do curl -sf http://127.0.0.1:5000/v2/ >/dev/null && break; sleep 0.25; done
fi

if ! curl -sf http://127.0.0.1:2379/health >/dev/null; then
    log "starting etcd on 127.0.0.1:2379"
    (etcd --data-dir "$state/etcd" --listen-client-urls http://127.0.0.1:2379 \
        --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
        >"$state/etcd.log" 2>&1 &)
    for _ in $(seq 1 40); do curl -sf http://127.0.0.1:2379/health >/dev/null && break; sleep 0.25; done
fi

# rust-toolchain.toml lists wasm32-wasip2; with RUSTUP_AUTO_INSTALL=0 rustup will not fetch it
# by itself, so ask for it (a no-op once installed).
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "adding the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hortator-target}"
export CARGO_TERM_COLOR=never
# Cargo never removes the test and bench executables of earlier builds (each ~200 MB, a new
# one per change); those not relinked for a day go, so that the target directory stays bounded.
for dir in "$CARGO_TARGET_DIR/release/deps" "$CARGO_TARGET_DIR/release/examples"; do
    if [[ -d "$dir" ]]; then
        find "$dir" -maxdepth 1 -type f -executable -name '*-*' ! -name '*.so' -mtime +1 -delete
    fi
done
log "building (release) into $CARGO_TARGET_DIR"
cargo build --release --workspace --all-targets
log "running the tests"
cargo test --release --workspace -- --test-threads 2
log "running the guest SDK's and the scheduler plugins' tests (natively)"
cargo test --release --manifest-path sdk/rust/Cargo.toml
cargo test --release --manifest-path plugins/Cargo.toml -p default-scheduler
cargo test --release --manifest-path examples/plugins/binpack/Cargo.toml
