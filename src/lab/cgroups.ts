/**
 * A cgroup of its own for every lab host. Without one (no systemd on the machine, nspawn run with
 * --keep-unit), every container's systemd manages the *same* cgroup directories, so one host's unit
 * finishing removes the cgroup another host's unit is being started in ("Failed at step CGROUP ...
 * No such file or directory"), at random, more so when hosts boot or install the same services
 * together. So nspawn is started inside `<our cgroup>/provision-lab/<host>` in every hierarchy.
 */
import {existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync} from 'node:fs';
import {join} from 'node:path';

/** The directory of our own cgroup in every mounted hierarchy (v1 controllers, name=systemd, v2). */
export function ownCgroupDirs(): string[] {
  const mounts: {point: string; type: string; opts: string[]}[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [type, , superOpts = ''] = right.split(' ');
    if (type !== 'cgroup' && type !== 'cgroup2') continue;
    const f = left.split(' ');
    if (f[3] !== '/') continue; // a bind of a sub-tree: skip
    mounts.push({point: (f[4] ?? '').replace(/\\040/g, ' '), type, opts: superOpts.split(',')});
  }
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, id, ctrls = '', path = '/'] = m;
    const mount =
      id === '0' && ctrls === ''
        ? mounts.find((x) => x.type === 'cgroup2')
        : mounts.find((x) => x.type === 'cgroup' && ctrls.split(',').every((c) => x.opts.includes(c)));
    if (mount) dirs.push(join(mount.point, path));
  }
  return [...new Set(dirs)];
}

/** Create the host's cgroup in every hierarchy; returns the `cgroup.procs` files to join. */
export function prepareHostCgroups(host: string): string[] {
  const procs: string[] = [];
  for (const base of ownCgroupDirs()) {
    // cpuset: a new cpuset cgroup has no CPUs and refuses tasks; the host stays in ours.
    if (/\/cpuset(\/|$)/.test(base)) continue;
    const dir = join(base, 'provision-lab', host);
    try {
      mkdirSync(dir, {recursive: true});
      if (existsSync(join(dir, 'cgroup.procs'))) procs.push(join(dir, 'cgroup.procs'));
    } catch {
      /* a hierarchy we may not write: leave nspawn there */
    }
  }
  return procs;
}

/** Remove an empty cgroup tree bottom-up (cgroup directories are removed one by one with rmdir). */
function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    try {
      if (statSync(p).isDirectory()) removeTree(p);
    } catch {
      /* raced */
    }
  }
  try {
    rmdirSync(dir);
  } catch {
    /* still busy: reported by leftovers() */
  }
}

/** Remove the host's cgroups (after its processes are gone), and `provision-lab/` when empty. */
export function removeHostCgroups(host: string): void {
  for (const base of ownCgroupDirs()) {
    removeTree(join(base, 'provision-lab', host));
    try {
      rmdirSync(join(base, 'provision-lab'));
    } catch {
      /* other hosts still there */
    }
  }
}

/** Lab cgroup directories still present. */
export function leftoverCgroups(): string[] {
  return ownCgroupDirs().map((b) => join(b, 'provision-lab')).filter((d) => existsSync(d));
}

/** The host's memory use from its own memory cgroup (v1 or v2), in KiB, if available. */
export function cgroupMemoryKiB(host: string): number | undefined {
  for (const base of ownCgroupDirs()) {
    const dir = join(base, 'provision-lab', host);
    for (const f of ['memory.usage_in_bytes', 'memory.current']) {
      try {
        return Math.round(Number(readFileSync(join(dir, f), 'utf8').trim()) / 1024);
      } catch {
        /* not this hierarchy */
      }
    }
  }
  return undefined;
}
