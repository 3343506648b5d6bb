/**
 * What scrolls above the live region (ink's `<Static>`): play headers, changes (with a diff preview
 * under --diff; from GROUP_FROM hosts, one line per task naming how many hosts changed), failures in
 * full (host, task, command, rc, output), and at the end the recap table and a list of the failures.
 * Written once each, wrapped to the terminal width.
 */
import React from 'react';
import {Box, Text} from 'ink';
import type {HostCounts} from '../../core/events.ts';
import type {StaticItem} from '../live-store.ts';
import {duration, statusWord} from './format.ts';

/** From this many hosts the recap groups hosts with the same counts (failed and unreachable ones stay one line each). */
export const RECAP_GROUP_FROM = 200;

/** Diff lines shown under a change; the rest is counted. */
export const DIFF_PREVIEW_LINES = 16;
/** Output lines shown of a failing command, per stream (the JSON and plain outputs keep all). */
export const OUTPUT_LINES = 200;

/** Props of one scrollback item. */
export interface ScrollbackItemProps {
  /** The item. */
  readonly item: StaticItem;
  /** Terminal width: text wraps at it. */
  readonly width: number;
  /** Check mode: "would change". */
  readonly check: boolean;
}

function DiffPreview({diff, width}: {readonly diff: string; readonly width: number}): React.JSX.Element {
  const lines = diff.replace(/\n$/, '').split('\n');
  const shown = lines.slice(0, DIFF_PREVIEW_LINES);
  return (
    <Box flexDirection="column" width={width} paddingLeft={4}>
      {shown.map((l, i) => (
        <Text key={i} color={l.startsWith('+') ? 'green' : l.startsWith('-') ? 'red' : l.startsWith('@@') ? 'cyan' : undefined} dimColor={l.startsWith(' ')}>
          {l === '' ? ' ' : l}
        </Text>
      ))}
      {lines.length > shown.length ? <Text dimColor>… {lines.length - shown.length} more diff lines</Text> : null}
    </Box>
  );
}

function Output({label, text, color = 'red'}: {readonly label: string; readonly text: string; readonly color?: string}): React.JSX.Element | null {
  const body = text.replace(/\s+$/, '');
  if (body === '') return null;
  const lines = body.split('\n');
  const shown = lines.length > OUTPUT_LINES ? lines.slice(-OUTPUT_LINES) : lines;
  return (
    <Box flexDirection="column">
      <Text color={color} dimColor>
        {label}:
      </Text>
      <Box flexDirection="column" paddingLeft={2}>
        {lines.length > shown.length ? <Text dimColor>… {lines.length - shown.length} earlier lines</Text> : null}
        {shown.map((l, i) => (
          <Text key={i}>{l === '' ? ' ' : l}</Text>
        ))}
      </Box>
    </Box>
  );
}

export function ScrollbackItem({item, width, check}: ScrollbackItemProps): React.JSX.Element {
  switch (item.kind) {
    case 'play':
      return (
        <Box width={width} marginTop={1}>
          <Text bold>
            PLAY [{item.name}] <Text dimColor>· {item.hosts} {item.hosts === 1 ? 'host' : 'hosts'}</Text>
          </Text>
        </Box>
      );
    case 'result': {
      if (item.status === 'changed') {
        const word = statusWord('changed', check);
        const why = item.msg && item.msg !== 'changed' && item.msg !== word ? ` · ${item.msg}` : '';
        return (
          <Box flexDirection="column" width={width}>
            <Text>
              <Text color="yellow">~ </Text>
              <Text bold>{item.host}</Text> · {item.task} · <Text color="yellow">{word}</Text>
              <Text dimColor>{why}</Text>
              {item.pending ? <Text color="cyan"> ≈ rests on an earlier would-change</Text> : null}
            </Text>
            {item.stdout || item.stderr ? (
              <Box flexDirection="column" paddingLeft={4}>
                <Output label="stdout" text={item.stdout ?? ''} color="yellow" />
                <Output label="stderr" text={item.stderr ?? ''} color="yellow" />
              </Box>
            ) : null}
            {item.diff ? <DiffPreview diff={item.diff} width={width} /> : null}
          </Box>
        );
      }
      if (item.status === 'unreachable') {
        return (
          <Box width={width}>
            <Text color="magenta">
              ⊘ <Text bold>{item.host}</Text> · {item.task} · UNREACHABLE: {item.msg}
            </Text>
          </Box>
        );
      }
      return (
        <Box flexDirection="column" width={width}>
          <Text color={item.ignored ? 'yellow' : 'red'}>
            ✘ <Text bold>{item.host}</Text> · {item.task} · {item.ignored ? 'failed (ignored)' : 'FAILED'}: {item.msg}
            {item.pending ? <Text color="cyan"> ≈ rests on an earlier would-change</Text> : null}
          </Text>
          <Box flexDirection="column" paddingLeft={4}>
            {item.cmd ? (
              <Text>
                <Text color="red" dimColor>
                  cmd:{' '}
                </Text>
                {item.cmd}
              </Text>
            ) : null}
            {item.rc !== undefined && item.rc !== null ? (
              <Text>
                <Text color="red" dimColor>
                  rc:{' '}
                </Text>
                {item.rc}
              </Text>
            ) : null}
            <Output label="stdout" text={item.stdout ?? ''} />
            <Output label="stderr" text={item.stderr ?? ''} />
          </Box>
          {item.diff ? <DiffPreview diff={item.diff} width={width} /> : null}
        </Box>
      );
    }
    case 'changes': {
      const word = statusWord('changed', check);
      const more = item.count - item.hosts.length;
      return (
        <Box width={width}>
          <Text>
            <Text color="yellow">~ </Text>
            <Text bold>{item.count} {item.count === 1 ? 'host' : 'hosts'}</Text> · {item.task} · <Text color="yellow">{word}</Text>
            <Text dimColor>
              {' '}· {item.hosts.join(', ')}
              {more > 0 ? `, … ${more} more` : ''}
              {item.diffs ? ' · diffs: each host\'s in --no-tui or --json output' : ''}
            </Text>
            {item.pending > 0 ? <Text color="cyan"> ≈ {item.pending} rest on an earlier would-change</Text> : null}
          </Text>
        </Box>
      );
    }
    case 'recap': {
      const all = Object.entries(item.hosts).sort(([a], [b]) => (a < b ? -1 : 1)); // by host name (unique)
      // From RECAP_GROUP_FROM hosts: failed and unreachable hosts one line each, the others one line per
      // set of identical counts (the plain and JSON outputs keep a line per host).
      const grouped = all.length >= RECAP_GROUP_FROM;
      const bad = (k: HostCounts): boolean => k.failed > 0 || k.unreachable > 0;
      const groups = new Map<string, {counts: HostCounts; names: string[]}>();
      if (grouped) {
        for (const [n, k] of all) {
          if (bad(k)) continue;
          const key = `${k.ok} ${k.changed} ${k.skipped}`;
          const g = groups.get(key) ?? {counts: k, names: []};
          g.names.push(n);
          groups.set(key, g);
        }
      }
      // Rows: [label, counts, the group's first names (grouped rows only)].
      const named = (names: readonly string[]): string => ` (${names.slice(0, 3).join(', ')}${names.length > 3 ? `, … ${names.length - 3} more` : ''})`;
      const recap: [string, HostCounts, string][] = grouped
        ? [...all.filter(([, k]) => bad(k)).map(([n, k]): [string, HostCounts, string] => [n, k, '']), ...[...groups.values()].map((g): [string, HostCounts, string] => [`${g.names.length} hosts`, g.counts, named(g.names)])]
        : all.map(([n, k]) => [n, k, '']);
      const w = Math.max(0, ...recap.map(([n]) => n.length));
      return (
        <Box flexDirection="column" width={width} marginTop={1}>
          <Text bold>
            PLAY RECAP <Text dimColor>· {item.interrupted ? 'interrupted after' : 'finished in'} {duration(item.durationMs)}{item.check ? ' · check mode: nothing was changed' : ''}{grouped ? ` · ${all.length} hosts, grouped by their counts` : ''}</Text>
          </Text>
          {recap.map(([n, k, names]) => {
            const bad = k.failed > 0 || k.unreachable > 0;
            return (
              <Text key={n}>
                <Text color={bad ? 'red' : k.changed ? 'yellow' : 'green'}>{n.padEnd(w)}</Text> : ok={String(k.ok).padEnd(4)}
                <Text color={k.changed ? 'yellow' : undefined}>{check ? 'would change' : 'changed'}={String(k.changed).padEnd(4)}</Text>
                <Text color={k.unreachable ? 'magenta' : undefined}>unreachable={String(k.unreachable).padEnd(4)}</Text>
                <Text color={k.failed ? 'red' : undefined}>failed={String(k.failed).padEnd(4)}</Text>skipped={k.skipped}
                {names ? <Text dimColor>{names}</Text> : null}
              </Text>
            );
          })}
        </Box>
      );
    }
    case 'failures':
      return (
        <Box flexDirection="column" width={width} marginTop={1}>
          <Text bold color="red">
            {item.lines.length} {item.lines.length === 1 ? 'failure' : 'failures'} (in full above):
          </Text>
          {item.lines.map((l, i) => (
            <Text key={i} color={l.unreachable ? 'magenta' : 'red'}>
              {l.unreachable ? '⊘' : '✘'} {l.host} · {l.task}: {l.msg}
            </Text>
          ))}
        </Box>
      );
  }
}
