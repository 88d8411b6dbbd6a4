#!/usr/bin/env bash
# Installs every build, runtime and test dependency of berth (Debian 12, as root). Idempotent:
# a machine that has everything returns at once without touching apt.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build ccache pkg-config clang-format clang-tidy
  # the fuzz preset: clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # libraries
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev liblmdb-dev
  libcurl4-openssl-dev libssl-dev libarchive-dev libisal-dev zlib1g-dev libzstd-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev libre2-dev
  libseccomp-dev libcap-dev libbtrfsutil-dev libasio-dev
  # containerd's API .proto files (taken at build time) and the gogo protos they import
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev
  golang-github-gogo-googleapis-dev golang-github-containerd-cgroups-dev
  # runtime
  runc crun criu containernetworking-plugins iproute2 iptables
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev containerd docker-registry busybox-static umoci
  skopeo btrfs-progs tmux procps jq curl openssl perl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian's containerd package may start its own daemon through the service manager; berth's
# tests never use it (benchmarks start their own on temporary roots).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi
