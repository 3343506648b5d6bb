/**
 * Pacing of new connections (src/transport/pacing.ts): handshakes at once per sshd, connections per
 * second; then over a real sshd whose MaxStartups is 3: 24 hosts behind it connect at once without
 * one dropped handshake when paced to 2 (below it), while the same storm unpaced has sshd drop some.
 */
import test from 'ava';
import {paced} from '../../src/transport/pacing.ts';
import {connectSsh, resolveConnection, type ConnectionSpec} from '../../src/transport/ssh.ts';
import {UnreachableError} from '../../src/transport/types.ts';
import {startSshd, type Sshd} from '../helpers/sshd.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('at most maxStartups handshakes at once to one endpoint; another endpoint is not held up', async (t) => {
  let now = 0;
  let peak = 0;
  const order: string[] = [];
  const handshake = (name: string) => async (): Promise<string> => {
    peak = Math.max(peak, ++now);
    order.push(name);
    await sleep(30);
    now--;
    return name;
  };
  const a = Array.from({length: 12}, (_, i) => paced('10.0.0.1:22', {maxStartups: 3}, handshake(`a${i}`)));
  const b = paced('10.0.0.2:22', {maxStartups: 3}, handshake('b'));
  t.deepEqual(await Promise.all(a), Array.from({length: 12}, (_, i) => `a${i}`));
  await b;
  t.is(peak, 4, 'three to one sshd, one to the other');
  t.true(order.indexOf('b') < 4, `the other endpoint went at once: ${order.join(' ')}`);
});

test('connections per second: starts spaced by 1/rate across endpoints; a failed handshake frees its slot', async (t) => {
  const starts: number[] = [];
  const t0 = Date.now();
  await Promise.all(Array.from({length: 5}, (_, i) => paced(`10.0.1.${i}:22`, {maxStartups: 10, ratePerS: 20}, async () => void starts.push(Date.now() - t0))));
  // 50 ms apart (timers may fire a few ms early or late against Date.now()).
  for (let i = 1; i < starts.length; i++) t.true(starts[i]! - starts[i - 1]! >= 35, `start ${i} ${starts[i]! - starts[i - 1]!} ms after the previous`);
  t.true(starts.at(-1)! - starts[0]! >= 185, `5 starts over ${starts.at(-1)! - starts[0]!} ms`);
  await t.throwsAsync(paced('10.0.2.1:22', {maxStartups: 1}, async () => Promise.reject(new Error('refused'))), {message: 'refused'});
  t.is(await paced('10.0.2.1:22', {maxStartups: 1}, async () => 'next'), 'next');
});

test('the inventory variables: provision_ssh_max_startups (default 8) and provision_connect_rate; a wrong value is one line', (t) => {
  const base = {ansible_host: '127.0.0.1', ansible_ssh_known_hosts_file: '/dev/null'};
  t.deepEqual(resolveConnection('h', base).pacing, {maxStartups: 8});
  t.deepEqual(resolveConnection('h', {...base, provision_ssh_max_startups: '30', provision_connect_rate: 2.5}).pacing, {maxStartups: 30, ratePerS: 2.5});
  t.throws(() => resolveConnection('h', {...base, provision_ssh_max_startups: 0}), {instanceOf: UnreachableError, message: 'h: provision_ssh_max_startups is not a whole number of 1 or more: 0'});
  t.throws(() => resolveConnection('h', {...base, provision_connect_rate: 'fast'}), {message: 'h: provision_connect_rate is not a number of connections per second above 0: "fast"'});
});

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd({maxStartups: 3});
});
test.after.always(async () => {
  await sshd?.stop();
});

async function storm(maxStartups: number): Promise<number> {
  const spec = (i: number): ConnectionSpec => ({
    host: `h${i}`, address: sshd.address, port: sshd.port, user: 'root', privateKeyPath: sshd.clientKeyPath,
    knownHostsFile: sshd.knownHostsPath, acceptNewHostKeys: false, connectTimeoutMs: 10_000, pacing: {maxStartups},
  });
  const results = await Promise.allSettled(Array.from({length: 24}, (_, i) => connectSsh(spec(i))));
  await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
  return results.filter((r) => r.status === 'rejected').length;
}

test.serial('24 hosts behind one sshd with MaxStartups 3: paced to 2, every handshake goes through; unpaced, sshd drops some', async (t) => {
  t.is(await storm(2), 0);
  const unpaced = await storm(100);
  t.true(unpaced > 0, 'the control: the same storm unpaced does trip sshd');
});
