#!/usr/bin/env bash
# Install the Debian packages listed in scripts/debian-packages.txt that are missing.
# Quiet when everything is there; needs root (or sudo) only when something is missing.
# Exit 2 with one `error:` line when a package cannot be installed.
set -euo pipefail
list="$(dirname "${BASH_SOURCE[0]}")/debian-packages.txt"
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list")
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
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
