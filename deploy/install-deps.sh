#!/usr/bin/env bash
# Installs what building surge needs on a fresh Debian/Ubuntu machine: libclang (RocksDB's
# bindings) and a C++ compiler, plus poppler-utils (pdftoppm: the label tests and the quick
# start render the PDF label preview to PNG) and fonts-noto-cjk (the CJK font labels draw
# Chinese text with). protoc comes from the protoc-bin-vendored crate. A Rust
# toolchain (1.85 or newer, with rustfmt and clippy) must already be installed (rustup).
set -euo pipefail
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v objcopy >/dev/null 2>&1 || need+=(binutils)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "surge needs a Rust toolchain (1.85+): install it with rustup, then run this again" >&2
  exit 1
fi
