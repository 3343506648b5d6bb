/**
 * prometheus-mysqld-exporter (Debian's package, 0.14 on Debian 12) on the database hosts, for the
 * monitoring host to scrape on :9104. It logs in over the local socket as the exporter account the
 * `database` role creates on the primary (replicated to the replicas); its credentials live in a
 * 0640 root:prometheus file passed with --config.my-cnf, never on a command line or in the unit's
 * environment. Run it after the `database` role.
 */
import {apt, copy, defineRole, file, Secret, secret, service, template} from '../../src/index.ts';
import type {TaskContext} from '../../src/index.ts';

function exporterPassword(ctx: TaskContext): string {
  const v = ctx.vars.mysql_exporter_password;
  if (v instanceof Secret) return v.reveal();
  if (typeof v !== 'string' || v === '') throw new Error('variable mysql_exporter_password is not set (put it in the vault, or -e @.lab/test-secrets.yml in the lab)');
  if (/["\n]/.test(v)) throw new Error('mysql_exporter_password must not contain a double quote or a newline (my.cnf value)');
  return v;
}

export default defineRole({
  name: 'mysqld_exporter',
  defaults: {
    mysqld_exporter_listen_address: ':9104',
    /** The credentials file (mode 0640, root:prometheus). */
    mysqld_exporter_my_cnf: '/etc/prometheus/mysqld-exporter.cnf',
    /** The account (created by the `database` role as `mysql_exporter_user`@localhost). */
    mysql_exporter_user: 'exporter',
    mysqld_exporter_socket: '/run/mysqld/mysqld.sock',
    /** More exporter flags, e.g. ['--collect.info_schema.processlist']. */
    mysqld_exporter_extra_args: [] as readonly string[],
  },
  tasks: [
    apt({packages: ['prometheus-mysqld-exporter']}, {name: 'mysqld exporter package'}),
    file({path: '/etc/prometheus', state: 'directory', mode: '0755'}, {name: 'exporter config directory'}),
    // The whole file is a secret: its diff shows as ***, and the password is masked in every output.
    copy((ctx) => ({
      dest: String(ctx.vars.mysqld_exporter_my_cnf),
      content: secret(ctx.render('my.cnf.mustache', {
        user: String(ctx.vars.mysql_exporter_user),
        password: ctx.secret(exporterPassword(ctx)).reveal(),
        socket: String(ctx.vars.mysqld_exporter_socket),
      })),
      owner: 'root',
      group: 'prometheus',
      mode: '0640',
    }), {name: 'exporter credentials', noLog: true, notify: 'restart mysqld exporter'}),
    // Owner and mode as the package's postinst sets them (so an upgrade does not fight this task).
    template({src: 'default.mustache', dest: '/etc/default/prometheus-mysqld-exporter', owner: 'prometheus', group: 'prometheus', mode: '0640'},
      {name: 'exporter arguments', notify: 'restart mysqld exporter'}),
    service({name: 'prometheus-mysqld-exporter', state: 'started', enabled: true, daemonReload: true}, {name: 'mysqld exporter service'}),
  ],
  handlers: [
    service({name: 'prometheus-mysqld-exporter', state: 'restarted', daemonReload: true}, {name: 'restart mysqld exporter'}),
  ],
});
