// The plain-ssh column of `npm run bench` (scale): one OpenSSH session per host, at most --forks at
// once, each running the script of its host (DIR/<host>.sh, on stdin to `sh -s`): the commands a
// provision no-op sent to a host, replayed. Exits 1 if any session failed.
//
//   node bench/plain-ssh.mjs --dir DIR --port N --key FILE --known-hosts FILE --forks N
import {spawn} from 'node:child_process';
import {readdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import pLimit from 'p-limit';

const {values} = parseArgs({options: {dir: {type: 'string'}, port: {type: 'string'}, key: {type: 'string'}, 'known-hosts': {type: 'string'}, forks: {type: 'string', default: '100'}}});
const scripts = readdirSync(values.dir).filter((n) => n.endsWith('.sh')).sort();
const limit = pLimit(Number(values.forks));
const session = (file) => new Promise((resolve) => {
  const child = spawn('ssh', ['-T', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${values['known-hosts']}`,
    '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-i', values.key, '-p', values.port, 'root@127.0.0.1', 'sh -s'], {stdio: ['pipe', 'ignore', 'pipe']});
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => undefined);
  child.stdin.end(readFileSync(join(values.dir, file)));
  child.on('close', (code) => resolve(code === 0 ? undefined : `${file}: exit ${code} ${err.trim().split('\n').at(-1) ?? ''}`));
});
const failed = (await Promise.all(scripts.map((f) => limit(() => session(f))))).filter(Boolean);
console.log(`${scripts.length - failed.length} of ${scripts.length} sessions ok`);
if (failed.length) {
  console.error(failed.slice(0, 5).join('\n'));
  process.exit(1);
}
