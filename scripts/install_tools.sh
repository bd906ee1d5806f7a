#!/usr/bin/env bash
# Install what the tests and native tools need beyond the Python venv: the Debian
# packages listed in scripts/debian-packages.txt that are missing, and kotlinc
# (npm package kotlin-compiler, pinned in scripts/kotlin/package.json) for the
# JVM test of android_demo's Kotlin. Quiet when everything is there; needs root
# (or sudo) only when a Debian package is missing.
# Exit 2 with one `error:` line when something cannot be installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

install_debian_packages() {
  local wanted missing=() pkg sudo=""
  mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/debian-packages.txt")
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "error: missing Debian packages ${missing[*]} and not root: install them, or run as root" >&2; exit 2
    fi
  fi
  echo "installing Debian packages: ${missing[*]}"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/mobileformer-apt.log 2>&1; then
    tail -n 20 /tmp/mobileformer-apt.log >&2
    echo "error: could not install Debian packages ${missing[*]} (log: /tmp/mobileformer-apt.log)" >&2
    exit 2
  fi
}

install_kotlinc() {
  local dir="$here/kotlin"
  [ -f "$dir/node_modules/kotlin-compiler/bin/kotlinc" ] && return 0
  if ! command -v npm >/dev/null; then
    echo "error: npm not found: install Node.js with npm (it installs kotlinc into scripts/kotlin)" >&2; exit 2
  fi
  echo "installing kotlinc (npm kotlin-compiler into scripts/kotlin)"
  if ! npm ci --prefix "$dir" --no-audit --no-fund >/tmp/mobileformer-npm.log 2>&1; then
    tail -n 20 /tmp/mobileformer-npm.log >&2
    echo "error: could not install kotlinc (log: /tmp/mobileformer-npm.log)" >&2
    exit 2
  fi
}

install_debian_packages
install_kotlinc
