/**
 * An example role: a directory, a file rendered from a template, and a handler that runs only when
 * the file changed. Everything it writes lives under `site_root` (inventory/group_vars/all.yml).
 */
import {command, defineRole, file, template, type TaskContext} from 'provision';

/** `site_root`, refused unless it is an absolute path. */
function siteRoot(ctx: TaskContext): string {
  const root = String(ctx.vars.site_root ?? '');
  if (!root.startsWith('/')) throw new Error(`site_root must be an absolute path, got '${root}'`);
  return root;
}

export default defineRole({
  name: 'hello',
  defaults: {
    /** Where everything this role manages lives (inventory/group_vars/all.yml sets it too). */
    site_root: '/srv/hello',
    /** The greeting written into hello.conf. */
    hello_message: 'Hello from provision',
  },
  tasks: [
    file((ctx) => ({path: siteRoot(ctx), state: 'directory', mode: '0755'}), {name: 'site directory'}),
    // templates/hello.conf.mustache, with the host's variables.
    template((ctx) => ({src: 'hello.conf.mustache', dest: `${siteRoot(ctx)}/hello.conf`, mode: '0644'}), {name: 'hello.conf', notify: 'hello.conf changed'}),
  ],
  handlers: [
    // Runs once, at the end of the play, when a task notified it. A real role would reload a service
    // here (`service({name: 'nginx', state: 'reloaded'}, {name: ...})`); this one records the change.
    command((ctx) => ({argv: ['sh', '-c', 'date -u >> "$1/changes.log"', 'sh', siteRoot(ctx)]}), {name: 'hello.conf changed'}),
  ],
});
