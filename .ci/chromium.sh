#!/usr/bin/env bash
# Headless Chromium for the comparison page's browser test (benchmarks/test/compare-report.test.ts):
# Debian's `chromium` package, installed from apt when missing. Nothing is downloaded besides the package.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium.sh: $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "chromium.sh: installing chromium from apt"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
echo "chromium.sh: $(chromium --version 2>/dev/null | head -1)"
