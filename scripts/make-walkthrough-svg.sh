#!/usr/bin/env bash
# Remakes docs/walkthrough.svg, the README's picture, from a real walkthrough run (needs
# CAP_NET_RAW for the segments: run as root). The README's own command writes elsewhere, so
# trying it never changes this tracked file.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cargo build --release --quiet
target/release/socklab walkthrough --accept-delay 200ms --svg docs/walkthrough.svg >/dev/null
echo "wrote docs/walkthrough.svg ($(wc -c < docs/walkthrough.svg) bytes)"
