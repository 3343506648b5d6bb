/**
 * SHA-512 crypt (`$6$salt$hash`, Drepper's algorithm, 5000 rounds), as `openssl passwd -6` and glibc's
 * crypt() make it: HAProxy checks `userlist` passwords with crypt(), so the stats password is stored
 * hashed and never appears in haproxy.cfg, in diffs or in output. Pure; checked against openssl.
 */
import {createHash, type Hash} from 'node:crypto';

const itoa64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const sha = (): Hash => createHash('sha512');

function repeatTo(src: Buffer, length: number): Buffer {
  return Buffer.alloc(length, src); // filled with src, repeated
}

/** Hashes computed in this run: 5000 rounds of SHA-512 cost ~6 ms, and every bind of a task asks again. */
const computed = new Map<string, string>();

/** `$6$<salt>$<86 chars>`; `salt` is at most 16 characters of `[./0-9A-Za-z]`. */
export function sha512Crypt(password: string, salt: string): string {
  const id = `${salt}\0${password}`;
  let h = computed.get(id);
  if (h === undefined) computed.set(id, (h = computeSha512Crypt(password, salt)));
  return h;
}

function computeSha512Crypt(password: string, salt: string): string {
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error('sha512Crypt: the salt must be 1-16 characters of [./0-9A-Za-z]');
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt, 'utf8');
  const b = sha().update(p).update(s).update(p).digest();
  const actx = sha().update(p).update(s);
  let i: number;
  for (i = p.length; i > 64; i -= 64) actx.update(b);
  actx.update(b.subarray(0, i));
  for (i = p.length; i > 0; i >>= 1) actx.update(i & 1 ? b : p);
  const a = actx.digest();
  const dpCtx = sha();
  for (i = 0; i < p.length; i++) dpCtx.update(p);
  const pp = repeatTo(dpCtx.digest(), p.length);
  const dsCtx = sha();
  for (i = 0; i < 16 + a.readUInt8(0); i++) dsCtx.update(s);
  const ss = dsCtx.digest().subarray(0, s.length);
  let c = a;
  for (let r = 0; r < 5000; r++) {
    const ctx = sha();
    ctx.update(r & 1 ? pp : c);
    if (r % 3) ctx.update(ss);
    if (r % 7) ctx.update(pp);
    ctx.update(r & 1 ? c : pp);
    c = ctx.digest();
  }
  const groups: readonly (readonly [number, number, number])[] = [
    [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7],
    [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35],
    [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
  ];
  let out = '';
  const emit = (w: number, n: number): void => {
    for (let k = 0; k < n; k++, w >>= 6) out += itoa64.charAt(w & 0x3f);
  };
  for (const [x, y, z] of groups) emit((c.readUInt8(x) << 16) | (c.readUInt8(y) << 8) | c.readUInt8(z), 4);
  emit(c.readUInt8(63), 2);
  return `$6$${salt}$${out}`;
}
