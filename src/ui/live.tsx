/**
 * The live terminal UI of `provision run` (ink). It only consumes run events: `emit` folds each into
 * a store (cheap), and the screen is redrawn from a snapshot at most ~20 times a second, plus once a
 * second for the clocks. Keys: `q` or Ctrl-C stop gracefully (through `onInterrupt`, the same path as
 * SIGINT; Ctrl-C twice stops at once), ↑/↓ pick a host, enter opens or closes its log, esc closes it.
 */
import React, {useEffect, useRef, useState} from 'react';
import {render, useInput, useStdin, useStdout} from 'ink';
import type {RunEvent} from '../core/events.ts';
import {LiveStore, type Snapshot} from './live-store.ts';
import type {Secrets} from '../core/secret.ts';
import {LiveView, type UiState} from './components/LiveView.tsx';

/** Frames per second at most (events are batched between frames). */
export const MAX_FPS = 20;

/** The run, and how to stop it. */
export interface LiveUiInfo {
  readonly playbook: string;
  readonly inventory: string;
  readonly check: boolean;
  readonly diff: boolean;
  /** How many -v: from 1, changes show their command's output. */
  readonly verbose?: number;
  /** Called on `q` (once) and on each Ctrl-C: the CLI aborts gracefully the first time. */
  readonly onInterrupt: () => void;
  readonly stdout?: NodeJS.WriteStream;
  readonly stdin?: NodeJS.ReadStream;
  /** The clock (tests and benchmarks pin it). */
  readonly clock?: () => number;
  /** The run's secrets: masked in everything shown. */
  readonly secrets: Pick<Secrets, 'maskValue'>;
}

export interface LiveUi {
  emit: (e: RunEvent) => void;
  /** Draw the last frame (recap) and give the terminal back. */
  done(): Promise<void>;
}

/** Props of the interactive app. */
export interface LiveAppProps {
  /** The run, as of this render. */
  readonly snapshot: Snapshot;
  /** `q` (first press) or Ctrl-C (every press). */
  readonly onStop: (key: 'q' | 'ctrl-c') => void;
  /** Fixed terminal size (tests); by default the output stream's, following resizes. */
  readonly size?: {readonly columns: number; readonly rows: number};
}

function useTerminalSize(fixed: LiveAppProps['size']): {columns: number; rows: number} {
  const {stdout} = useStdout();
  const read = (): {columns: number; rows: number} => ({columns: stdout.columns || 80, rows: stdout.rows || 24});
  const [size, setSize] = useState(read);
  useEffect(() => {
    if (fixed) return;
    const onResize = (): void => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, fixed]);
  return fixed ? {columns: fixed.columns, rows: fixed.rows} : size;
}

/** The view plus the keyboard: host selection, log expansion, stop. */
export function LiveApp({snapshot, onStop, size}: LiveAppProps): React.JSX.Element {
  const {columns, rows} = useTerminalSize(size);
  const {isRawModeSupported} = useStdin();
  const [ui, setUi] = useState<UiState>({selected: null, expanded: null});
  // The handler may run before React re-subscribes it after a render: read the latest snapshot
  // through a ref and update the UI state from its previous value, never from a stale closure.
  const latest = useRef(snapshot);
  latest.current = snapshot;
  useInput(
    (input, key) => {
      if (key.ctrl && input === 'c') return onStop('ctrl-c');
      if (input === 'q') return onStop('q');
      const s = latest.current;
      if (s.finished) return;
      const names = s.hosts.map((h) => h.name);
      const [first] = names;
      if (first === undefined) return;
      const move = (step: number) => (ui: UiState): UiState => {
        const at = ui.selected === null ? -1 : names.indexOf(ui.selected);
        const selected = names[Math.max(0, Math.min(names.length - 1, at + step))] ?? first; // in range: names is not empty
        return {selected, expanded: ui.expanded === null ? null : selected};
      };
      if (key.downArrow || input === 'j') setUi(move(1));
      else if (key.upArrow || input === 'k') setUi(move(-1));
      else if (key.return || input === 'l') {
        setUi((ui) => {
          const selected = ui.selected ?? first;
          return {selected, expanded: ui.expanded === null ? selected : null};
        });
      } else if (key.escape) setUi((ui) => ({...ui, expanded: null}));
    },
    {isActive: isRawModeSupported === true},
  );
  return <LiveView snapshot={snapshot} columns={columns} rows={rows} ui={ui} />;
}

/** Start the live UI on a terminal. */
export function startLiveUi(info: LiveUiInfo): LiveUi {
  const clock = info.clock ?? Date.now;
  const store = new LiveStore({playbook: info.playbook, inventory: info.inventory, check: info.check, diff: info.diff, verbose: info.verbose ?? 0}, info.secrets, clock);
  // `q` asks once and never forces; each Ctrl-C goes to the CLI (the second one stops at once).
  let asked = false;
  const onStop = (key: 'q' | 'ctrl-c'): void => {
    if (key === 'q' && asked) return;
    asked = true;
    store.markStopping();
    schedule();
    info.onInterrupt();
  };
  const element = (): React.JSX.Element => <LiveApp snapshot={store.snapshot(clock())} onStop={onStop} />;
  const instance = render(element(), {
    stdout: info.stdout ?? process.stdout,
    stdin: info.stdin ?? process.stdin,
    exitOnCtrlC: false,
    maxFps: MAX_FPS,
    // Not incrementalRendering: with <Static> output in between, ink 6.8 leaves stale lines behind.
  });
  const frameMs = Math.ceil(1000 / MAX_FPS);
  let last = -Infinity;
  let drawn = -1;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // A frame costs more with more hosts and more new scrollback: leave at least 3x the CPU time of
  // the last frame between frames (but at least 4 frames a second): a big frame is mostly new
  // scrollback, which costs the same however it is batched.
  let gap = frameMs;
  const flush = (): void => {
    timer = undefined;
    if (closed) return;
    last = performance.now();
    const cpu = process.cpuUsage();
    drawn = store.version;
    instance.rerender(element());
    const used = process.cpuUsage(cpu);
    gap = Math.max(frameMs, Math.min(250, (3 * (used.user + used.system)) / 1000));
  };
  function schedule(): void {
    if (timer || closed) return;
    timer = setTimeout(flush, Math.max(0, last + gap - performance.now()));
  }
  // SIGINT/SIGTERM (e.g. `kill -INT`): the CLI aborts the run; the UI says so.
  const onSignal = (): void => {
    store.markStopping();
    schedule();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The clocks tick once a second even when no event comes.
  const tick = setInterval(() => {
    if (!closed) schedule();
  }, 1000);
  return {
    emit(e) {
      store.apply(e);
      if (store.version !== drawn) schedule();
    },
    async done() {
      if (closed) return;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      clearInterval(tick);
      if (timer) clearTimeout(timer);
      timer = undefined;
      flush();
      closed = true;
      instance.unmount();
      await instance.waitUntilExit();
    },
  };
}
