#!/usr/bin/env bash
# The test command of the README: installs what is missing, then runs every test tier that
# runs without containers (units, the deterministic simulation, real processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cargo test --workspace --locked
