#!/usr/bin/env bash
# Chromium and its WebDriver for the web demo's browser test
# (tests/tools/test_web_demo.py), from Debian's packages.
#
# Returns at once when both are installed. Installing needs root (CI and the
# project's machines run as root); otherwise it says what to install.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if { have chromium || have chromium-browser; } && have chromedriver; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
  echo "setup_browser.sh: the browser test needs Chromium and chromedriver;" \
       "install them (Debian/Ubuntu: apt-get install chromium chromium-driver)" >&2
  exit 1
fi
echo "[browser] installing chromium and chromium-driver (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
echo "[browser] ok: $(chromium --version)"
