/**
 * The hosts part of the live region: one row per host while they fit, and past that (or from 50
 * hosts) a summary line with the failing and running hosts only. Every row is exactly one terminal
 * line no wider than the terminal, so the live region's height is known before it is drawn and
 * never exceeds the screen (which would make ink clear and redraw everything: flicker).
 */
import React from 'react';
import {Box, Text} from 'ink';
import {GROUP_FROM, type HostView, type LogLine, type Snapshot} from '../live-store.ts';
import {bar, cell, duration, fit, phaseMark, statusColor} from './format.ts';

/** From this many hosts the table groups finished hosts even when the terminal is tall enough (and the scrollback groups changes). */
export {GROUP_FROM};

/** What the host area shows, decided before rendering (pure). */
export interface HostLayout {
  /** Rows in display order. */
  readonly rows: readonly HostView[];
  /** Grouped: a summary line first, and only failing and running hosts get a row. */
  readonly grouped: boolean;
  /** Failing and running hosts left without a row (the "… N more" line). */
  readonly hidden: {readonly failing: number; readonly running: number};
  /** Whether the "… N more" line is shown. */
  readonly more: boolean;
  /** The expanded host's log and how many of its lines fit. */
  readonly log: {readonly host: HostView; readonly lines: number} | null;
  /** Lines the host area takes (summary + rows + "more" line + log panel). */
  readonly height: number;
}

const isBad = (h: HostView): boolean => h.phase === 'failed' || h.phase === 'unreachable';

/**
 * Choose the rows for a host area of at most `height` lines. The selected host is shown when there is
 * room for any row; the expanded host's log takes up to half the area.
 */
export function layoutHosts(hosts: readonly HostView[], height: number, selected: string | null, expanded: string | null): HostLayout {
  const none = {failing: 0, running: 0};
  let area = Math.max(0, height);
  if (area === 0) return {rows: [], grouped: false, hidden: none, more: false, log: null, height: 0};
  const expandedHost = expanded === null ? undefined : hosts.find((h) => h.name === expanded);
  let log: HostLayout['log'] = null;
  if (expandedHost && area >= 3) {
    const lines = Math.min(expandedHost.log.length, Math.max(1, Math.floor(area / 2) - 1));
    log = {host: expandedHost, lines};
    area -= lines + 1;
  }
  const logHeight = log ? log.lines + 1 : 0;
  if (hosts.length < GROUP_FROM && hosts.length <= area) {
    return {rows: hosts, grouped: false, hidden: none, more: false, log, height: hosts.length + logHeight};
  }
  // Grouped: the summary line, then failing hosts, then running ones; finished, idle and waiting
  // hosts are counted in the summary only.
  const room = area - 1;
  const wanted = [...hosts.filter(isBad), ...hosts.filter((h) => h.phase === 'running')];
  let rows: HostView[];
  if (wanted.length <= room) rows = wanted;
  else rows = wanted.slice(0, Math.max(0, room - 1)); // one line for "… N more"
  const sel = selected === null ? undefined : hosts.find((h) => h.name === selected);
  if (sel && !rows.includes(sel)) {
    // Make room for the selected host's row, and for the "more" line if anything else stays hidden.
    const fitsWith = (r: readonly HostView[]): boolean => r.length + 1 + (wanted.some((h) => h !== sel && !r.includes(h)) ? 1 : 0) <= room;
    while (rows.length > 0 && !fitsWith(rows)) rows = rows.slice(0, -1);
    if (fitsWith(rows)) rows = [...rows, sel];
  }
  const shown = new Set(rows);
  const hidden = {
    failing: wanted.filter((h) => isBad(h) && !shown.has(h)).length,
    running: wanted.filter((h) => !isBad(h) && !shown.has(h)).length,
  };
  const more = hidden.failing + hidden.running > 0 && rows.length < room;
  return {rows, grouped: true, hidden, more, log, height: 1 + rows.length + (more ? 1 : 0) + logHeight};
}

/** Column widths for host rows at a terminal width. */
export interface Columns {
  readonly width: number;
  readonly name: number;
  readonly bar: number;
  readonly progress: number;
  readonly counts: boolean;
  readonly elapsed: number;
}

export function columnsFor(width: number, hosts: readonly HostView[]): Columns {
  const longest = Math.max(4, ...hosts.map((h) => h.name.length));
  const name = Math.min(longest, width >= 60 ? 20 : Math.max(4, Math.floor(width / 4)));
  const progress = Math.max(3, ...hosts.map((h) => `${h.done}/${h.total}`.length));
  return {
    width,
    name,
    bar: width >= 110 ? 16 : width >= 72 ? 10 : 0,
    progress,
    counts: width >= 96,
    elapsed: width >= 48 ? 6 : 0,
  };
}

function countsText(h: HostView, check: boolean): string {
  const c = h.counts;
  return `ok=${c.ok} ${check ? 'would' : 'chg'}=${c.changed} fail=${c.failed + c.unreachable} skip=${c.skipped}`;
}

/** Props of one host row. */
export interface HostRowProps {
  /** The host. */
  readonly host: HostView;
  /** Column widths. */
  readonly columns: Columns;
  /** Width of the counts column (the longest counts text of the rows shown). */
  readonly countsWidth: number;
  /** Check mode: "would" instead of "chg". */
  readonly check: boolean;
  /** How long the host has been at it, already formatted (`12s`), or '' before it starts. */
  readonly elapsed: string;
  /** What the row shows of the host, as one string (`rowSignature`): the row redraws when it changes. */
  readonly signature: string;
  /** Selected with ↑/↓ (the `enter` key shows its log). */
  readonly selected: boolean;
}

/** A row's elapsed time at `now`: up to now while running, else up to its last result. */
export function hostElapsed(host: HostView, now: number): string {
  if (host.startedAt === null) return '';
  return duration((host.phase === 'running' ? now : host.lastAt ?? now) - host.startedAt);
}

/** Everything a row shows, as one string: a row is redrawn only when this (or its layout) changes. */
export function rowSignature(h: HostView): string {
  const c = h.counts;
  return `${h.phase}|${h.task}|${h.done}/${h.total}|${c.ok},${c.changed},${c.failed},${c.skipped},${c.unreachable}|${h.pending}`;
}

/** One line: mark, name, progress bar, done/total, counts, elapsed, current task. */
export const HostRow = React.memo(HostRowView, (a, b) =>
  a.host === b.host && a.signature === b.signature && a.elapsed === b.elapsed && a.selected === b.selected && a.check === b.check && a.countsWidth === b.countsWidth &&
  a.columns.width === b.columns.width && a.columns.name === b.columns.name && a.columns.bar === b.columns.bar && a.columns.progress === b.columns.progress && a.columns.counts === b.columns.counts && a.columns.elapsed === b.columns.elapsed,
);

function HostRowView({host, columns: col, countsWidth, check, elapsed: elapsedText, selected}: HostRowProps): React.JSX.Element {
  const {mark, color} = phaseMark(host.phase, host.counts.changed > 0);
  const b = col.bar > 0 ? bar(host.done, host.total, col.bar) : null;
  let used = 3 + col.name + 1 + (b ? col.bar + 1 : 0) + col.progress + 1;
  const counts = col.counts ? `${countsText(host, check).padEnd(countsWidth)} ` : '';
  used += counts.length;
  const elapsed = col.elapsed > 0 ? `${cell(elapsedText, col.elapsed - 1, 'right')} ` : '';
  used += elapsed.length;
  const rest = Math.max(0, col.width - used);
  let task: string;
  let taskColor: string | undefined;
  let dim = false;
  switch (host.phase) {
    case 'waiting':
      task = 'waiting';
      dim = true;
      break;
    case 'finished':
      task = 'done';
      dim = true;
      break;
    case 'failed':
      task = `FAILED: ${host.task ?? ''}`;
      taskColor = 'red';
      break;
    case 'unreachable':
      task = 'UNREACHABLE';
      taskColor = 'magenta';
      break;
    case 'idle':
      task = host.task ?? '';
      dim = true;
      break;
    case 'running':
      task = host.task ?? '';
      break;
  }
  if (check && host.pending && rest > 0) task = `${task} ≈`;
  const line = (
    <Text wrap="truncate">
      <Text color="cyan">{selected ? '›' : ' '}</Text>
      <Text color={color}>{mark}</Text>{' '}
      <Text bold={selected}>{cell(host.name, col.name)}</Text>{' '}
      {b ? (
        <>
          <Text color={host.phase === 'failed' || host.phase === 'unreachable' ? 'red' : 'green'}>{b.full}</Text>
          <Text dimColor>{b.empty}</Text>{' '}
        </>
      ) : null}
      <Text>{cell(`${host.done}/${host.total}`, col.progress, 'right')}</Text>{' '}
      {counts ? <Text dimColor={host.counts.changed === 0 && host.counts.failed === 0}>{counts}</Text> : null}
      {elapsed ? <Text dimColor>{elapsed}</Text> : null}
      <Text color={taskColor} dimColor={dim}>{fit(task, rest)}</Text>
    </Text>
  );
  return line;
}

/** Props of the grouped summary line. */
export interface GroupSummaryProps {
  /** Every host. */
  readonly hosts: readonly HostView[];
  /** The line's width. */
  readonly width: number;
  /** Check mode. */
  readonly check: boolean;
}

/** `100 hosts: ✔ 40 finished ▸ 55 running ▹ 2 done with this task ✘ 3 failed · ok=… chg=…`. */
export function GroupSummary({hosts, width, check}: GroupSummaryProps): React.JSX.Element {
  const by = {waiting: 0, running: 0, idle: 0, finished: 0, failed: 0, unreachable: 0};
  const total = {ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0};
  for (const h of hosts) {
    by[h.phase]++;
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += h.counts[k];
  }
  const parts: {text: string; short: string; color: string}[] = [];
  if (by.finished) parts.push({text: `✔ ${by.finished} finished`, short: `✔${by.finished}`, color: 'green'});
  if (by.running) parts.push({text: `▸ ${by.running} running`, short: `▸${by.running}`, color: 'cyan'});
  if (by.idle) parts.push({text: `▹ ${by.idle} done with this task`, short: `▹${by.idle}`, color: 'blue'});
  if (by.waiting) parts.push({text: `· ${by.waiting} waiting`, short: `·${by.waiting}`, color: 'gray'});
  if (by.failed) parts.push({text: `✘ ${by.failed} failed`, short: `✘${by.failed}`, color: 'red'});
  if (by.unreachable) parts.push({text: `⊘ ${by.unreachable} unreachable`, short: `⊘${by.unreachable}`, color: 'magenta'});
  const head = `${hosts.length} hosts: `;
  const tail = `  ok=${total.ok} ${check ? 'would' : 'chg'}=${total.changed} fail=${total.failed + total.unreachable} skip=${total.skipped}`;
  // Long labels when they all fit, else the short ones (`▸37 ✘2`).
  const long = parts.map((p) => p.text).join('  ').length <= width - head.length;
  const shown = parts.map((p) => ({text: long ? p.text : p.short, color: p.color}));
  const left = width - head.length - shown.map((p) => p.text).join(long ? '  ' : ' ').length;
  return (
    <Text wrap="truncate">
      <Text bold>{fit(head, width)}</Text>
      {shown.map((p, i) => (
        <Text key={p.text} color={p.color}>
          {i > 0 ? (long ? '  ' : ' ') : ''}
          {p.text}
        </Text>
      ))}
      {left >= tail.length ? <Text dimColor>{tail}</Text> : null}
    </Text>
  );
}

/** Props of a host's expanded log. */
export interface LogPanelProps {
  /** The host whose log is shown. */
  readonly host: HostView;
  /** How many of its last lines to show. */
  readonly lines: number;
  /** The panel's width. */
  readonly width: number;
  /** Check mode ("would change"). */
  readonly check: boolean;
}

function logLine(l: LogLine, check: boolean): string {
  const word = l.status === 'changed' && check ? 'would change' : l.status;
  return `${word.padEnd(12)} ${l.task}  ${duration(l.ms)}${l.msg && l.msg !== l.status ? `  ${l.msg}` : ''}${l.pending ? '  ≈ rests on an earlier would-change' : ''}`;
}

/** The last results of one host, under a title line. */
export function LogPanel({host, lines, width, check}: LogPanelProps): React.JSX.Element {
  const shown = lines > 0 ? host.log.slice(-lines) : [];
  const title = `── log of ${host.name}: ${shown.length} of ${host.log.length} results (enter/esc closes) `;
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate" color="cyan">
        {fit(title + '─'.repeat(Math.max(0, width - title.length)), width)}
      </Text>
      {shown.map((l, i) => (
        <Text key={i} wrap="truncate" color={statusColor[l.status]}>
          {fit(`  ${logLine(l, check)}`.replace(/\n/g, ' '), width)}
        </Text>
      ))}
    </Box>
  );
}

/** Props of the host area. */
export interface HostTableProps {
  /** The run. */
  readonly snapshot: Snapshot;
  /** What to show, from `layoutHosts`. */
  readonly layout: HostLayout;
  /** Terminal width. */
  readonly width: number;
  /** The selected host, if any. */
  readonly selected: string | null;
}

export function HostTable({snapshot, layout, width, selected}: HostTableProps): React.JSX.Element {
  const check = snapshot.info.check;
  const col = columnsFor(width, layout.rows);
  const countsWidth = col.counts ? Math.max(0, ...layout.rows.map((h) => countsText(h, check).length)) : 0;
  const fits = 3 + col.name + 1 + (col.bar ? col.bar + 1 : 0) + col.progress + 1 + (col.counts ? countsWidth + 1 : 0) + col.elapsed <= width;
  const columns = fits ? col : {...col, counts: false};
  return (
    <Box flexDirection="column" width={width}>
      {layout.grouped ? <GroupSummary hosts={snapshot.hosts} width={width} check={check} /> : null}
      {layout.rows.map((h) => (
        <HostRow key={h.name} host={h} signature={rowSignature(h)} columns={columns} countsWidth={countsWidth} check={check} elapsed={hostElapsed(h, snapshot.now)} selected={h.name === selected} />
      ))}
      {layout.more ? (
        <Text wrap="truncate" dimColor>
          {fit(`  … and ${[layout.hidden.failing ? `${layout.hidden.failing} more failing` : '', layout.hidden.running ? `${layout.hidden.running} more running` : ''].filter(Boolean).join(', ')}`, width)}
        </Text>
      ) : null}
      {layout.log ? <LogPanel host={layout.log.host} lines={layout.log.lines} width={width} check={check} /> : null}
    </Box>
  );
}
