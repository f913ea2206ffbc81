#!/usr/bin/env bash
# Peer library for bench/throughput.py only (never a runtime dependency): devinterp 1.3.2 in its
# own virtual environment. It reuses the project's torch through a .pth link instead of
# installing a second multi-GB copy.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=bench/.devinterp-venv
if [ -x "$PEER/bin/python" ] && "$PEER/bin/python" -c "import devinterp" 2>/dev/null; then exit 0; fi
python3 -m venv "$PEER"
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
PEER_SITE=$("$PEER/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$SITE" > "$PEER_SITE/project-venv.pth"
"$PEER/bin/python" -m pip install -q devinterp==1.3.2
