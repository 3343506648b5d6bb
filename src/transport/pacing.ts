/**
 * Pacing of new SSH connections, so a large run does not trip an sshd's or a firewall's limits:
 *
 * - **Handshakes at once per sshd** (address and port, a jump host included): at most `maxStartups`
 *   connections between TCP connect and login (`provision_ssh_max_startups`, default 8). sshd drops new
 *   connections beyond its MaxStartups (default 10:30:100: at random from 10 unauthenticated, all
 *   from 100). Keep this below the server's value: a slot is freed when the login completes, a moment
 *   before sshd's listener counts it done (measured: paced to exactly MaxStartups 3, 22 of 24
 *   connections were dropped; paced to 2, none). Hosts behind one jump host all log in to it: 100
 *   forks through a bastion would otherwise be a storm of 100 handshakes on its sshd.
 * - **New connections per second**, all hosts together (`provision_connect_rate`; unset: no limit),
 *   for firewalls and NATs that rate-limit new connections from one source.
 *
 * Once logged in, a connection holds no slot: it is the handshakes that sshd limits.
 */
import pLimit, {type LimitFunction} from 'p-limit';

export interface Pacing {
  /** Handshakes in flight to one sshd (its MaxStartups). */
  readonly maxStartups: number;
  /** New connections per second from this controller; undefined: no limit. */
  readonly ratePerS?: number;
}

/** Below sshd's default MaxStartups (10), with room for the moment between login and sshd's count. */
export const DEFAULT_MAX_STARTUPS = 8;

const slots = new Map<string, LimitFunction>();
let nextStartMs = 0;

/** Run `handshake` (connect and log in to `endpoint`, `address:port`) within the pacing's limits. */
export async function paced<T>(endpoint: string, pacing: Pacing | undefined, handshake: () => Promise<T>): Promise<T> {
  let limit = slots.get(endpoint);
  if (!limit) slots.set(endpoint, (limit = pLimit(pacing?.maxStartups ?? DEFAULT_MAX_STARTUPS)));
  const slot = limit;
  try {
    return await slot(async () => {
      const rate = pacing?.ratePerS;
      if (rate !== undefined && rate > 0) {
        const now = Date.now();
        const at = Math.max(now, nextStartMs);
        nextStartMs = at + 1000 / rate;
        if (at > now) await new Promise((r) => setTimeout(r, at - now));
      }
      return handshake();
    });
  } finally {
    if (slot.activeCount === 0 && slot.pendingCount === 0 && slots.get(endpoint) === slot) slots.delete(endpoint);
  }
}
