/**
 * Make docs/tui.png from a real run: a loopback sshd (the test helper), six hosts, the slow fixture
 * playbook in a 120x34 tmux window; the screen is captured with its colours (`capture-pane -e`)
 * while the run is under way, turned into an SVG (one cell per character, DejaVu Sans Mono) and
 * rasterised by `rsvg-convert` (apt-get install -y tmux librsvg2-bin).
 * `npx tsx bench/tui-screenshot.ts [out.png]`
 * `npx tsx bench/tui-screenshot.ts --lab [out.png]`: the site's first run on a fresh lab instead
 * (`provision lab up` first), captured once every play has made changes on its way.
 */
import {execFile, execFileSync} from 'node:child_process';
import {mkdtempSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {promisify} from 'node:util';
import {startSshd, writeLoopbackInventory} from '../test/helpers/sshd.ts';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const lab = process.argv.includes('--lab');
const out = resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? join(root, 'docs', 'tui.png'));
const COLS = 120;
const ROWS = 34;
const socket = `provision-shot-${process.pid}`;

// ---------------------------------------------------------------------------------------------------
// ANSI (as tmux prints it) → cells

interface Style {
  fg: number | string | null;
  bg: number | string | null;
  bold: boolean;
  dim: boolean;
  reverse: boolean;
}
interface Cell {
  ch: string;
  style: Style;
}

const plain = (): Style => ({fg: null, bg: null, bold: false, dim: false, reverse: false});

function sgr(style: Style, params: number[]): Style {
  const s = {...style};
  if (params.length === 0) params = [0];
  let skip = 0; // a colour's own parameters, already read
  for (const [i, p] of params.entries()) {
    if (skip > 0) {
      skip--;
      continue;
    }
    if (p === 0) Object.assign(s, plain());
    else if (p === 1) s.bold = true;
    else if (p === 2) s.dim = true;
    else if (p === 22) s.bold = s.dim = false;
    else if (p === 7) s.reverse = true;
    else if (p === 27) s.reverse = false;
    else if (p >= 30 && p <= 37) s.fg = p - 30;
    else if (p >= 90 && p <= 97) s.fg = p - 90 + 8;
    else if (p === 39) s.fg = null;
    else if (p >= 40 && p <= 47) s.bg = p - 40;
    else if (p >= 100 && p <= 107) s.bg = p - 100 + 8;
    else if (p === 49) s.bg = null;
    else if ((p === 38 || p === 48) && params[i + 1] === 5) {
      const v = params[i + 2] ?? null; // cut short: the default colour
      if (p === 38) s.fg = v;
      else s.bg = v;
      skip = 2;
    } else if ((p === 38 || p === 48) && params[i + 1] === 2) {
      const rgb = params.slice(i + 2, i + 5);
      const hex = rgb.length === 3 ? `#${rgb.map((n) => n.toString(16).padStart(2, '0')).join('')}` : null; // cut short: the default colour
      if (p === 38) s.fg = hex;
      else s.bg = hex;
      skip = 4;
    }
  }
  return s;
}

export function parseAnsi(text: string): Cell[][] {
  const lines: Cell[][] = [];
  let style = plain();
  for (const raw of text.replace(/\n$/, '').split('\n')) {
    const row: Cell[] = [];
    const re = /\x1b\[([0-9;:]*)m|\x1b\[[0-9;?]*[A-Za-z]|([\s\S])/gu;
    for (let m = re.exec(raw); m; m = re.exec(raw)) {
      if (m[1] !== undefined) style = sgr(style, m[1] === '' ? [] : m[1].split(/[;:]/).map(Number));
      else if (m[2] !== undefined) row.push({ch: m[2], style});
    }
    lines.push(row);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------
// cells → SVG

const palette = ['#1d1f21', '#e0636b', '#98c379', '#e5c07b', '#61afef', '#c678dd', '#56b6c2', '#c5c8c6', '#5c6370', '#ff7b84', '#b5e890', '#ffd68a', '#7cc4ff', '#e29cff', '#7fdbe6', '#ffffff'];
const BG = '#1d1f21';
const FG = '#c5c8c6';

function colour(c: number | string | null, fallback: string): string {
  if (c === null) return fallback;
  if (typeof c === 'string') return c;
  if (c < 16) return palette[c] ?? fallback;
  if (c >= 232) {
    const v = 8 + (c - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const n = c - 16;
  const k = [0, 95, 135, 175, 215, 255];
  return `rgb(${k[Math.floor(n / 36)]},${k[Math.floor(n / 6) % 6]},${k[n % 6]})`;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function toSvg(lines: Cell[][], title: string): string {
  const fontSize = 15;
  const cw = 9.03; // DejaVu Sans Mono advance at 15px (0.602 em)
  const lh = 19;
  const pad = 16;
  const bar = 30;
  const width = Math.ceil(COLS * cw + 2 * pad);
  const height = Math.ceil(ROWS * lh + 2 * pad + bar);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" rx="10" fill="#2b2d31"/>`,
    `<rect y="${bar}" width="${width}" height="${height - bar}" fill="${BG}"/>`,
    ...['#ff5f57', '#febc2e', '#28c840'].map((c, i) => `<circle cx="${20 + i * 20}" cy="${bar / 2}" r="6" fill="${c}"/>`),
    `<text x="${width / 2}" y="${bar / 2 + 5}" fill="#9a9da3" font-family="DejaVu Sans" font-size="13" text-anchor="middle">${esc(title)}</text>`,
    `<g font-family="DejaVu Sans Mono" font-size="${fontSize}" xml:space="preserve">`,
  ];
  lines.slice(0, ROWS).forEach((row, y) => {
    const baseY = bar + pad + y * lh;
    row.forEach((cell, x) => {
      const s = cell.style;
      let fg = colour(s.fg, FG);
      let bg = s.bg === null ? null : colour(s.bg, BG);
      if (s.reverse) [fg, bg] = [bg ?? BG, fg];
      if (bg) parts.push(`<rect x="${(pad + x * cw).toFixed(2)}" y="${baseY}" width="${cw.toFixed(2)}" height="${lh}" fill="${bg}"/>`);
      if (cell.ch === ' ') return;
      const attrs = `${s.bold ? ' font-weight="bold"' : ''}${s.dim ? ' opacity="0.6"' : ''}`;
      parts.push(`<text x="${(pad + x * cw).toFixed(2)}" y="${baseY + lh - 5}" fill="${fg}"${attrs}>${esc(cell.ch)}</text>`);
    });
  });
  parts.push('</g></svg>');
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// the run

/** Poll the pane until `ready` says the screen is worth a picture; returns it with its colours. */
async function captureWhen(ready: (text: string) => boolean, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const {stdout} = await execFileP('tmux', ['-L', socket, 'capture-pane', '-p', '-e', '-t', 'shot']);
    const text = stdout.replace(/\x1b\[[0-9;:]*m/g, '');
    if (ready(text)) return stdout;
    if (Date.now() > deadline) throw new Error(`no suitable screen; last:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function mainLab(): Promise<void> {
  const cmd = 'env -u CI -u CONTINUOUS_INTEGRATION TERM=xterm-256color node bin/provision.js run site --diff; sleep 30';
  await execFileP('tmux', ['-L', socket, 'new-session', '-d', '-x', String(COLS), '-y', String(ROWS), '-s', 'shot', '-c', root, cmd]);
  try {
    // Under way in the load balancers' play: the web servers done, diffs in the scrollback.
    const screen = await captureWhen((t) => /load balancers/.test(t) && /^ . lb1 /m.test(t) && /^@@ |^\s+@@ /m.test(t), 600_000);
    const dir = mkdtempSync(join(tmpdir(), 'prov-shot-'));
    const svgPath = join(dir, 'tui.svg');
    writeFileSync(svgPath, toSvg(parseAnsi(screen), `provision run site --diff   (the lab, first run; tmux ${COLS}x${ROWS})`));
    execFileSync('rsvg-convert', ['-o', out, svgPath]);
    console.log(`wrote ${out}`);
    // Let the run finish before the session goes.
    await captureWhen((t) => /PLAY RECAP|recap/i.test(t), 600_000).catch(() => undefined);
  } finally {
    await execFileP('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const sshd = await startSshd();
  const dir = mkdtempSync(join(tmpdir(), 'prov-shot-'));
  try {
    const hosts = ['web1', 'web2', 'web3', 'db1', 'db2', 'lb1'];
    const inv = writeLoopbackInventory(sshd, dir, Object.fromEntries(hosts.map((h, i) => [h, {pause: Number((1.2 + i * 0.3).toFixed(1))}])), {provision_audit_log: false});
    const args = ['run', 'test/fixtures/project/playbooks/slow.ts', '-i', inv, '-e', 'fail_on=web3', '--diff'];
    const cmd = `env -u CI -u CONTINUOUS_INTEGRATION TERM=xterm-256color node bin/provision.js ${args.map((a) => `'${a}'`).join(' ')}; sleep 30`;
    await execFileP('tmux', ['-L', socket, 'new-session', '-d', '-x', String(COLS), '-y', String(ROWS), '-s', 'shot', '-c', root, cmd]);
    const deadline = Date.now() + 60_000;
    let screen = '';
    for (;;) {
      const {stdout} = await execFileP('tmux', ['-L', socket, 'capture-pane', '-p', '-e', '-t', 'shot']);
      const text = stdout.replace(/\x1b\[[0-9;:]*m/g, '');
      // Under way: a failure in the scrollback, some hosts done with the task, some still running it.
      if (/FAILED: check config/.test(text) && /^ ▸ /m.test(text) && /^ ▹ /m.test(text) && /task [567]\/7/.test(text)) {
        screen = stdout;
        break;
      }
      if (Date.now() > deadline) throw new Error(`no suitable screen; last:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const svg = toSvg(parseAnsi(screen), `provision run slow -i inventory.yml --diff   (tmux ${COLS}x${ROWS})`);
    const svgPath = join(dir, 'tui.svg');
    writeFileSync(svgPath, svg);
    execFileSync('rsvg-convert', ['-o', out, svgPath]);
    console.log(`wrote ${out}`);
  } finally {
    await execFileP('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
    await sshd.stop();
  }
}

await (lab ? mainLab() : main());
