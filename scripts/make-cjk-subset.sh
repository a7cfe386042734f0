#!/usr/bin/env bash
# Rebuilds src/timeline/tutorial-cjk.woff.b64: the four CJK characters of the walkthrough's
# handshake captions (约 么 好 的: the tutorial's words for SYN, SYN-ACK, ACK), cut out of Noto Sans
# Mono CJK SC Bold (SIL Open Font License 1.1, Debian's fonts-noto-cjk) and base64-encoded, so the
# SVG can embed them (@font-face with a data: URL) and draw them where no CJK font is installed.
# Needs apt-get (downloads the .deb without installing it) and python3-fonttools.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download fonts-noto-cjk >/dev/null
dpkg-deb -x fonts-noto-cjk_*.deb x
/usr/bin/python3 -m fontTools.subset x/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc --font-number=7 \
  --text='约么好的' --flavor=woff --output-file=cjk.woff --layout-features='' --no-hinting \
  --name-IDs='*' --name-legacy --name-languages='*'
base64 -w 100 cjk.woff > "$top/src/timeline/tutorial-cjk.woff.b64"
wc -c "$top/src/timeline/tutorial-cjk.woff.b64"
