#!/usr/bin/env bash
# Installs Debian's Chromium for the web UI's end-to-end tests (test/e2e/ui.test.ts) when it is
# missing. CI runs this as root before `npm test`; elsewhere it uses sudo when it can.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no apt-get here; install Chromium at /usr/bin/chromium to run the UI tests" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ensure-chromium: not root and no sudo; install the 'chromium' package to run the UI tests" >&2
    exit 0
  fi
fi
echo "ensure-chromium: installing Debian's chromium package…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
