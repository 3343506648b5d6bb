/**
 * The probe cache of one host: the answers of probes sent ahead of their tasks, in one round trip per
 * identity, kept until something changes. Each answer remembers the run's change generation when it
 * was read: an answer older than a change elsewhere may be stale (a load balancer's check of the VIP
 * depends on its peer), so a play drops them before it starts (`dropOlderThan`).
 */
import {runProbes, type Identity} from './remote.ts';
import type {ProbeOutput} from './types.ts';
import type {ProbeScript} from '../shared/probe.ts';
import type {Transport} from '../transport/types.ts';

/** A probe a task ahead will need, and who runs it. */
export interface WantedProbe {
  readonly who: Identity;
  readonly probe: ProbeScript;
  /**
   * A later task's probe, asked for ahead of its turn: when its batch fails (it becomes a user an
   * earlier task creates), it is left unanswered, to be probed when its task runs.
   */
  readonly ahead?: boolean;
}

export class ProbeCache {
  readonly #answers = new Map<string, {readonly out: ProbeOutput; readonly gen: number}>();

  has(probe: ProbeScript): boolean {
    return this.#answers.has(probe.script);
  }

  /** The cached answer; undefined when it was never read or has been dropped. */
  get(probe: ProbeScript): ProbeOutput | undefined {
    return this.#answers.get(probe.script)?.out;
  }

  /** Something changed on the host (or may have, part-way): every answer is stale. */
  clear(): void {
    this.#answers.clear();
  }

  /** Drop the answers read before generation `gen`. */
  dropOlderThan(gen: number): void {
    for (const [script, c] of this.#answers) if (c.gen !== gen) this.#answers.delete(script);
  }

  /**
   * Read every wanted probe not cached yet: one round trip per identity (login user, each sudo user),
   * all at once; identical probes are read once. The answers are stamped with generation `gen`.
   */
  async fill(transport: Transport, wanted: readonly WantedProbe[], gen: number): Promise<void> {
    const byWho = new Map<string, {who: Identity; probes: ProbeScript[]; needed: boolean}>();
    for (const {who, probe, ahead} of wanted) {
      const key = who.become ? `${who.method ?? 'sudo'}:${who.user}` : 'login';
      const g = byWho.get(key) ?? {who, probes: [], needed: false};
      if (!g.probes.some((p) => p.script === probe.script) && !this.#answers.has(probe.script)) g.probes.push(probe);
      g.needed ||= ahead !== true;
      byWho.set(key, g);
    }
    await Promise.all([...byWho.values()].map(async ({who, probes, needed}) => {
      if (probes.length === 0) return;
      let outs;
      try {
        outs = await runProbes(transport, who, probes);
      } catch (e) {
        if (needed) throw e;
        return;
      }
      probes.forEach((p, i) => {
        const out = outs[i];
        if (out === undefined) throw new Error(`probe batch returned ${outs.length} answers for ${probes.length} probes`);
        this.#answers.set(p.script, {out: {...out, parsed: new Map()}, gen});
      });
    }));
  }
}
