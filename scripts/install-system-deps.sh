#!/bin/sh
# Install the system packages natexp's tests need that pip cannot provide.
#
#   Chromium (Debian package "chromium"): tests/report/test_browser.py renders the HTML report
#   in headless Chromium. Without it that test is skipped locally and FAILS under CI (CI set).
#
# Idempotent: does nothing when Chromium is already installed. Installs only when running as
# root on a system with apt-get (Debian/Ubuntu); otherwise says what to do and exits 0, so
# `make test` still runs the rest of the suite. Prints what it did.
set -eu

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install-system-deps: chromium already installed ($CHROMIUM): nothing to do"
    exit 0
fi
for other in chromium chromium-browser google-chrome; do
    if command -v "$other" >/dev/null 2>&1; then
        echo "install-system-deps: found $(command -v "$other"): nothing to do" \
             "(set CHROMIUM=$(command -v "$other") if it is not at $CHROMIUM)"
        exit 0
    fi
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: chromium missing and not running as root: skipped." \
         "Install it with: sudo apt-get install -y chromium (the browser test is skipped" \
         "without it, and fails when CI is set)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: chromium missing and apt-get not available: skipped." \
         "Install Chromium with your system's package manager."
    exit 0
fi

echo "install-system-deps: installing chromium with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ -x "$CHROMIUM" ]; then
    echo "install-system-deps: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
    echo "install-system-deps: apt-get finished but $CHROMIUM is missing" >&2
    exit 1
fi
