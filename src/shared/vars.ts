/**
 * Reading Ansible-style variables, for the engine and the CLI alike.
 */

/** Ansible's booleans in inventory variables: true, 'yes', 'true', 'on', '1', 1. */
export function truthy(v: unknown): boolean {
  return v === true || (typeof v === 'string' && ['true', 'yes', '1', 'on'].includes(v.toLowerCase())) || v === 1;
}
