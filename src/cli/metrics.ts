/**
 * The drift state as Prometheus metrics (prom-client): the same text for `--listen`'s /metrics and
 * for `--textfile`'s node_exporter file. A fresh registry per rendering, from the state alone: what is
 * served is exactly what the last check left (docs/watch.md lists the metrics).
 */
import {Gauge, Registry} from 'prom-client';
import {driftedHosts, type DriftState} from './drift.ts';

/** The registry of `state`'s metrics. Labels are the state's values, masked when they were observed. */
export function driftRegistry(state: DriftState): Registry {
  const registry = new Registry();
  const registers = [registry];
  const tasks = new Gauge({name: 'provision_drift_tasks', help: '1 when the last check found the task would change on the host (drifted), else 0', labelNames: ['host', 'play', 'task'] as const, registers});
  for (const t of state.tasks) tasks.set({host: t.host, play: t.play, task: t.task}, t.state === 'drifted' ? 1 : 0);
  new Gauge({name: 'provision_drift_hosts', help: 'Hosts with at least one drifted task', registers}).set(driftedHosts(state).length);
  const duration = new Gauge({name: 'provision_check_duration_seconds', help: 'Wall time of the last check, in seconds (0 before the first)', registers});
  duration.set(state.durationMs === null ? 0 : state.durationMs / 1000);
  const success = new Gauge({name: 'provision_check_last_success_timestamp', help: 'Unix time (seconds) the last check that completed with no failed host started (0: none yet)', registers});
  success.set(state.lastSuccessAt === null ? 0 : Date.parse(state.lastSuccessAt) / 1000);
  const unreachable = new Gauge({name: 'provision_unreachable', help: '1 when the host could not be reached at its last check (or is backed off since), else 0', labelNames: ['host'] as const, registers});
  for (const [host, h] of Object.entries(state.hosts)) unreachable.set({host}, h.unreachable ? 1 : 0);
  return registry;
}

/** The Prometheus text exposition of `state`. */
export function metricsText(state: DriftState): Promise<string> {
  return driftRegistry(state).metrics();
}

/** The Content-Type of metricsText's text. */
export const metricsContentType = new Registry().contentType;
