/** Small pure helpers shared by the live UI's components: durations, fitting text to a width, marks. */
import {isAbsolute, relative} from 'node:path';
import type {HostPhase} from '../live-store.ts';

/** `40ms`, `1.4s`, `12s`, `1m05s`, `1h02m`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Cut `text` to at most `width` characters, with `…` when cut. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** Pad or cut to exactly `width` characters. */
export function cell(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const t = fit(text, width);
  return align === 'left' ? t.padEnd(width) : t.padStart(width);
}

/** A progress bar of `width` cells: the done part and the rest, separately (they take two colours). */
export function bar(done: number, total: number, width: number): {readonly full: string; readonly empty: string} {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const n = Math.round(ratio * width);
  return {full: '━'.repeat(n), empty: '─'.repeat(width - n)};
}

/** The status mark of a host and its colour. */
export function phaseMark(phase: HostPhase, changed: boolean): {readonly mark: string; readonly color: string} {
  switch (phase) {
    case 'waiting':
      return {mark: '·', color: 'gray'};
    case 'running':
      return {mark: '▸', color: 'cyan'};
    case 'idle':
      return {mark: '▹', color: 'blue'};
    case 'finished':
      return {mark: '✔', color: changed ? 'yellow' : 'green'};
    case 'failed':
      return {mark: '✘', color: 'red'};
    case 'unreachable':
      return {mark: '⊘', color: 'magenta'};
  }
}

/** Colour of a result status. */
export const statusColor = {ok: 'green', changed: 'yellow', failed: 'red', skipped: 'cyan', unreachable: 'magenta'} as const;

/** The word for a status; in check mode "changed" reads "would change". */
export function statusWord(status: keyof typeof statusColor, check: boolean): string {
  if (status === 'changed' && check) return 'would change';
  return status;
}

/** A path as the user would type it: relative to the working directory when under it. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  if (!isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
