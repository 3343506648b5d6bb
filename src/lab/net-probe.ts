/** Small TCP probes: is a port open, does an SSH server greet. */
import {connect} from 'node:net';

/** True if a TCP connection to host:port succeeds within `timeoutMs`. */
export function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({host, port});
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** True if an SSH server at host:22 sends its `SSH-2.0` banner within `timeoutMs`. */
export function sshBanner(host: string, timeoutMs: number, port = 22): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({host, port});
    let buf = '';
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.startsWith('SSH-2.0'));
    });
    s.once('error', () => done(false));
    s.once('end', () => done(false));
  });
}
