/**
 * The whole screen of a run, as a pure function of a snapshot, the terminal size and the UI state:
 * the scrollback (`<Static>`) above, and a live region below that is never taller than the terminal
 * minus one line and never wider than it.
 */
import React from 'react';
import {Box, Static, Text} from 'ink';
import type {Snapshot, StaticItem} from '../live-store.ts';
import {displayPath, duration, fit} from './format.ts';
import {HostTable, layoutHosts} from './HostTable.tsx';
import {ScrollbackItem} from './Scrollback.tsx';

/** What the user did with the keyboard. */
export interface UiState {
  /** The host picked with ↑/↓. */
  readonly selected: string | null;
  /** The host whose log is open (enter). */
  readonly expanded: string | null;
}

/** Props of the header. */
export interface HeaderProps {
  /** The run. */
  readonly snapshot: Snapshot;
  /** Terminal width. */
  readonly width: number;
  /** Show the second line (play and task). */
  readonly twoLines: boolean;
}

/** `provision · files · inventory.yml · APPLY · 12s` and `PLAY [web] · task 3/11: nginx : config`. */
export function Header({snapshot: s, width, twoLines}: HeaderProps): React.JSX.Element {
  const elapsed = duration(s.finished ? s.finished.durationMs : s.now - s.startedAt);
  const mode = s.info.check ? 'CHECK' : 'APPLY';
  const fixed = `provision ·  · ${mode} · ${elapsed}`.length;
  const room = Math.max(0, width - fixed);
  const pbRoom = Math.min(s.info.playbook.length, Math.max(4, Math.ceil(room / 2)));
  const playbook = fit(s.info.playbook, pbRoom);
  const inventory = fit(displayPath(s.info.inventory), Math.max(0, room - playbook.length - 3));
  let second = '';
  if (s.play) {
    second = `PLAY [${s.play.name}]`;
    if (s.task) second += s.task.handler ? ` · handler: ${s.task.label}` : ` · task ${s.task.index}/${s.play.tasks}: ${s.task.label}`;
  } else if (!s.finished) {
    second = 'starting…';
  }
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold>provision</Text> · {playbook}
        {inventory ? <Text dimColor> · {inventory}</Text> : null} ·{' '}
        <Text bold color={s.info.check ? 'cyan' : 'yellow'}>
          {mode}
        </Text>{' '}
        · {elapsed}
      </Text>
      {twoLines ? <Text wrap="truncate">{fit(second, width) || ' '}</Text> : null}
    </Box>
  );
}

/** Props of the footer. */
export interface FooterProps {
  /** Terminal width. */
  readonly width: number;
  /** The user asked to stop. */
  readonly stopping: boolean;
  /** A host's log is open. */
  readonly expanded: boolean;
}

/** The keys, or the stopping notice. */
export function Footer({width, stopping, expanded}: FooterProps): React.JSX.Element {
  if (stopping) {
    return (
      <Text wrap="truncate" color="yellow">
        {fit('stopping: running tasks finish, nothing new starts (Ctrl-C again: stop at once)', width)}
      </Text>
    );
  }
  const keys = expanded ? 'q stop · ↑↓ host · enter/esc close log' : 'q stop · ↑↓ host · enter log';
  return (
    <Text wrap="truncate" dimColor>
      {fit(keys, width)}
    </Text>
  );
}

/** Props of the last line once the run is over. */
export interface FinalLineProps {
  /** The run. */
  readonly snapshot: Snapshot;
  /** Terminal width. */
  readonly width: number;
}

/** `✔ 6 hosts · 60 changed · 0 failed · 3.2s`. */
export function FinalLine({snapshot: s, width}: FinalLineProps): React.JSX.Element {
  let changed = 0;
  let failed = 0;
  let unreachable = 0;
  for (const h of s.hosts) {
    changed += h.counts.changed;
    failed += h.counts.failed;
    unreachable += h.counts.unreachable;
  }
  const bad = failed + unreachable > 0;
  const interrupted = s.finished?.interrupted ?? false;
  const mark = interrupted ? '■' : bad ? '✘' : '✔';
  const text = `${mark} ${interrupted ? 'INTERRUPTED' : 'done'} · ${s.hosts.length} ${s.hosts.length === 1 ? 'host' : 'hosts'} · ${changed} ${s.info.check ? 'would change' : 'changed'} · ${failed} failed · ${unreachable} unreachable · ${duration(s.finished?.durationMs ?? 0)}`;
  return (
    <Text wrap="truncate" bold color={interrupted ? 'yellow' : bad ? 'red' : 'green'}>
      {fit(text, width)}
    </Text>
  );
}

/** Props of the whole view. */
export interface LiveViewProps {
  /** The run, as of this render. */
  readonly snapshot: Snapshot;
  /** Terminal columns. */
  readonly columns: number;
  /** Terminal rows: the live region takes at most rows - 1 lines. */
  readonly rows: number;
  /** Keyboard state. */
  readonly ui: UiState;
}

/** Lines of the live region at a terminal height (pure; the tests check it against the frame). */
export function liveBudget(rows: number): {readonly lines: number; readonly header: 1 | 2; readonly footer: 0 | 1} {
  const lines = Math.max(1, rows - 1);
  return {lines, header: lines >= 5 ? 2 : 1, footer: lines >= 4 ? 1 : 0};
}

export function LiveView({snapshot, columns, rows, ui}: LiveViewProps): React.JSX.Element {
  const width = Math.max(1, columns);
  const budget = liveBudget(rows);
  const renderItem = (item: StaticItem): React.JSX.Element => (
    <ScrollbackItem key={item.id} item={item} width={width} check={snapshot.info.check} />
  );
  if (snapshot.finished) {
    return (
      <>
        <Static items={snapshot.statics as StaticItem[]}>{renderItem}</Static>
        <Box flexDirection="column" width={width}>
          <FinalLine snapshot={snapshot} width={width} />
        </Box>
      </>
    );
  }
  const layout = layoutHosts(snapshot.hosts, budget.lines - budget.header - budget.footer, ui.selected, ui.expanded);
  return (
    <>
      <Static items={snapshot.statics as StaticItem[]}>{renderItem}</Static>
      <Box flexDirection="column" width={width}>
        <Header snapshot={snapshot} width={width} twoLines={budget.header === 2} />
        {layout.height > 0 ? <HostTable snapshot={snapshot} layout={layout} width={width} selected={ui.selected} /> : null}
        {budget.footer ? <Footer width={width} stopping={snapshot.stopping} expanded={ui.expanded !== null} /> : null}
      </Box>
    </>
  );
}
