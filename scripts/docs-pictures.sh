#!/usr/bin/env bash
# Makes every picture in the book (docs/src/pictures/) from a real run, so none is drawn by hand.
# Needs root (the walkthrough captures packets on lo); SOCKLAB names the binary (default: the
# release build, built if missing); the first argument, another directory to write to.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/src/pictures}
bin=${SOCKLAB:-target/release/socklab}
[ -x "$bin" ] || cargo build --release
mkdir -p "$out"
# The handshake, the accept queue (held 200 ms), the echo, the close and TIME-WAIT.
"$bin" walkthrough --accept-delay 200ms --svg "$out/walkthrough.svg" > /dev/null
echo "pictures written to $out"
