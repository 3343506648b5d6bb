#!/usr/bin/env bash
# README's set-up command: on a fresh Debian 12 machine, as root, install everything, bring the lab
# up and run the site playbook on it (the main job on the embedded default inventory, inventory/lab.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
node bin/provision.js lab up
node bin/provision.js run site --no-tui "$@"
