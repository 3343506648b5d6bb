/**
 * What the live UI costs: scripted run events (1, 6, 100 and 2,000 hosts, 11 tasks each, one failure)
 * played over a few seconds into `startLiveUi` on a fake 120x40 terminal; prints the frames per second
 * drawn, the bytes written, the CPU the renderer used (the same events into a no-op emit are the
 * baseline) and per frame. `npx tsx bench/tui.ts [seconds] [host counts, e.g. 1,6,100,2000]`.
 */
import {EventEmitter} from 'node:events';
import type {RunEvent} from '../src/core/events.ts';
import {startLiveUi} from '../src/ui/live.tsx';
import {Secrets} from '../src/core/secret.ts';
import {hostNames, script} from '../test/ui/script.ts';
import {FakeStdin} from '../test/helpers/fake-stdin.ts';

const seconds = Number(process.argv[2] ?? 5);

class Terminal extends EventEmitter {
  columns = 120;
  rows = 40;
  isTTY = true;
  frames = 0;
  bytes = 0;
  private inFrame = false;
  write(s: string, cb?: () => void): boolean {
    // A frame is several writes in one go (synchronized-output marks, erase, scrollback, live
    // region): count the writes of one turn of the event loop as one frame.
    if (!this.inFrame) {
      this.inFrame = true;
      this.frames++;
      setImmediate(() => (this.inFrame = false));
    }
    this.bytes += s.length;
    cb?.();
    return true;
  }
}

/** Play `events` evenly over `ms`, in 10 ms ticks, into `emit`. */
async function play(events: readonly RunEvent[], ms: number, emit: (e: RunEvent) => void): Promise<void> {
  const started = performance.now();
  let i = 0;
  while (i < events.length) {
    const due = Math.min(events.length, Math.ceil(((performance.now() - started) / ms) * events.length));
    for (const e of events.slice(i, due)) emit(e);
    i = Math.max(i, due);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function measure(hosts: number): Promise<void> {
  const names = hostNames(hosts);
  const [, second] = names;
  const events = script({hosts, fail: second !== undefined ? {[second]: 5} : {}, diff: true});
  const ms = seconds * 1000;

  const base0 = process.cpuUsage();
  await play(events, ms, () => undefined);
  const base = process.cpuUsage(base0);

  const term = new Terminal();
  const ui = startLiveUi({playbook: 'site', inventory: 'inventory/lab.yml', check: false, diff: true, onInterrupt: () => undefined, stdout: term as unknown as NodeJS.WriteStream, stdin: new FakeStdin() as unknown as NodeJS.ReadStream, secrets: new Secrets()});
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await play(events, ms, ui.emit);
  await ui.done();
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const used = (cpu.user + cpu.system - base.user - base.system) / 1000;

  // A burst: every event at once, then one frame.
  const burstTerm = new Terminal();
  const burst = startLiveUi({playbook: 'site', inventory: 'inventory/lab.yml', check: false, diff: true, onInterrupt: () => undefined, stdout: burstTerm as unknown as NodeJS.WriteStream, stdin: new FakeStdin() as unknown as NodeJS.ReadStream, secrets: new Secrets()});
  const b0 = performance.now();
  for (const e of events) burst.emit(e);
  await burst.done();
  const burstMs = performance.now() - b0;

  console.log(
    `${String(hosts).padStart(4)} hosts: ${String(events.length).padStart(5)} events in ${(wall / 1000).toFixed(1)} s → ` +
      `${(term.frames / (wall / 1000)).toFixed(1)} frames/s, ${(term.bytes / 1024 / (wall / 1000)).toFixed(0)} KiB/s written, ` +
      `renderer CPU ${used.toFixed(0)} ms = ${((used / wall) * 100).toFixed(1)}% of one core, ${(used / Math.max(1, term.frames)).toFixed(1)} ms a frame; ` +
      `all events at once: ${burstMs.toFixed(0)} ms, ${burstTerm.frames} frames`,
  );
}

console.log(`node ${process.version}, events played over ${seconds} s into a fake 120x40 terminal`);
for (const n of (process.argv[3] ?? '1,6,100,2000').split(',').map(Number)) await measure(n);
