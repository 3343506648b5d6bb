/** Ansible run by the differential tests: quiet, with no user config, its state in a scratch folder. */
import {join} from 'node:path';

/** The environment for `ansible-*` commands whose state goes under `scratch`. */
export function ansibleEnv(scratch: string): Record<string, string> {
  return {
    ANSIBLE_HOME: join(scratch, 'home'),
    ANSIBLE_LOCAL_TEMP: join(scratch, 'tmp'),
    ANSIBLE_CONFIG: join(scratch, 'none.cfg'),
    ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
    ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
    ANSIBLE_LOCALHOST_WARNING: 'false',
    ANSIBLE_DEPRECATION_WARNINGS: 'false',
    ANSIBLE_NOCOLOR: '1',
  };
}

/**
 * `ansibleEnv` for `ansible-inventory` over directories: ansible-core 2.18's INVENTORY_IGNORE_EXTS
 * default (no longer `.ini`), which provision follows; older ansible-cores skip `.ini` files in an
 * inventory directory.
 */
export function ansibleInventoryEnv(scratch: string): Record<string, string> {
  return {...ansibleEnv(scratch), ANSIBLE_INVENTORY_IGNORE: '.pyc,.pyo,.swp,.bak,~,.rpm,.md,.txt,.rst,.orig,.cfg,.retry'};
}
