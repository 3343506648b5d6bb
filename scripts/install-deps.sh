#!/usr/bin/env bash
# Installs everything provision, its tests and its lab need on Debian 12 (as root): apt packages, then npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "provision needs Node.js 20 or newer (node --version: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

packages=(
  openssh-server openssh-client   # integration tests: a real sshd on loopback
  ansible                         # tests compare with ansible-inventory; the benchmark runs ansible-playbook
  tmux                            # the terminal UI's end-to-end test
  sudo                            # become with a password (sudo -S, su): the integration tests
  systemd-container debootstrap apt-cacher-ng pebble iproute2 openssl   # provision lab
  curl ca-certificates            # end-to-end checks from the controller
  zip unzip git python3-venv cron # module tests: unarchive's zips, git's bare repos, pip's venvs, cron's crontab
  prometheus prometheus-alertmanager   # the site's alert tests: promtool check/test rules, amtool check-config
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  # Services are not started by the install (policy-rc.d says no): the lab and the tests run their own.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
npm ci --no-audit --no-fund
