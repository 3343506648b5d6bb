#!/usr/bin/env bash
# Runs the Ansible version of the site playbook (site.yml beside this script) against the lab:
#
#   bench/ansible/site/run.sh            # converge
#   bench/ansible/site/run.sh --check    # any ansible-playbook option is passed on (--diff, -v, --limit …)
#   PLAYBOOK=bench/ansible/noop30.yml bench/ansible/site/run.sh -e root=/var/tmp/b30   # another playbook, same setup
#
# Ansible cannot read provision's vault (its own format) nor the lab inventory's paths, which are
# relative to the project root. So, in a temporary directory (removed on exit): a copy of
# inventory/lab.yml with absolute paths (and no group_vars/ beside it: the vault stays out), the
# vault decrypted by provision into a 0600 vars file passed with -e @file, and Ansible's own state
# (ANSIBLE_HOME, local temp, SSH control sockets).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"

inventory=$root/inventory/lab.yml
vault=$root/inventory/group_vars/all/vault.yml
vault_pass=$root/.lab/vault-pass
for f in "$inventory" "$vault" "$vault_pass" "$root/.lab/ssh/id_ed25519" "$root/.lab/known_hosts" "$root/.lab/pebble/lab-ca.pem"; do
  [ -e "$f" ] || { echo "run.sh: $f is missing (is the lab up? node bin/provision.js lab up)" >&2; exit 1; }
done
[ -s "$root/roles/app/files/app.js" ] || { echo "run.sh: roles/app/files/app.js is missing: npm run build:app" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/provision-ansible-site.XXXXXX")
cleanup() {
  # Close the SSH master connections ansible left for ControlPersist, then forget everything.
  local s
  for s in "$tmp"/ansible/cp/*; do
    [ -S "$s" ] && ssh -o ControlPath="$s" -O exit lab >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The inventory, its lab paths (.lab/…: key, known_hosts, vault passphrase, ACME CA) made absolute.
sed -E "s#^([[:space:]]*[A-Za-z0-9_]+:[[:space:]]*)\.lab/#\1$root/.lab/#" "$inventory" > "$tmp/lab.yml"

# The site's passwords, decrypted by provision (only readable by us; deleted with the directory).
(umask 077 && node "$root/bin/provision.js" vault view "$vault" --vault-password-file "$vault_pass" > "$tmp/secrets.yml")
chmod 0600 "$tmp/secrets.yml"

# No ansible.cfg from the working directory or the home: these settings only.
: > "$tmp/ansible.cfg"
export ANSIBLE_CONFIG=$tmp/ansible.cfg
export ANSIBLE_HOME=$tmp/ansible
export ANSIBLE_LOCAL_TEMP=$tmp/ansible/tmp
export ANSIBLE_PIPELINING=True
export ANSIBLE_FORKS=7
export ANSIBLE_HOST_KEY_CHECKING=True
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$root/.lab/known_hosts"
export ANSIBLE_RETRY_FILES_ENABLED=False
export ANSIBLE_NOCOLOR=1
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
mkdir -p "$ANSIBLE_LOCAL_TEMP"

# Not exec: the trap removes the temporary directory when ansible-playbook is done.
ansible-playbook -i "$tmp/lab.yml" -e "@$tmp/secrets.yml" "${PLAYBOOK:-$here/site.yml}" "$@"
