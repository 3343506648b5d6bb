/**
 * The haproxy role stores the stats password as SHA-512 crypt (`$6$`): the hash must be the one
 * glibc's crypt() (which HAProxy calls) and `openssl passwd -6` make, byte for byte.
 */
import test from 'ava';
import {commandWorks} from '../helpers/cli.ts';
import fc from 'fast-check';
import {execFileSync} from 'node:child_process';
import {sha512Crypt} from '../../roles/haproxy/sha512crypt.ts';

const itoa64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

test('sha512Crypt: the example of Drepper\'s specification ("Hello world!", 5000 rounds); salts it refuses', (t) => {
  t.is(sha512Crypt('Hello world!', 'saltstring'), '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
  // A salt longer than 16 characters is refused rather than silently cut, as crypt() would.
  t.throws(() => sha512Crypt('x', 'toolongsaltstring'), {message: /1-16 characters/});
  t.throws(() => sha512Crypt('x', ''), {message: /1-16 characters/});
  t.throws(() => sha512Crypt('x', 'salt$'), {message: /1-16 characters/});
});

const openssl = commandWorks('openssl', ['version']);

const opensslCrypt = (password: string, salt: string): string =>
  execFileSync('openssl', ['passwd', '-6', '-salt', salt, '--', password], {encoding: 'utf8'}).trimEnd();

/**
 * Passwords: printable ASCII up to 100 bytes (past the 64-byte block of the algorithm's first loops)
 * and any Unicode up to 60 code points (at most 240 bytes: openssl cuts passwords at 256). Never empty
 * (openssl prints `<NULL>` for one) and without NUL (not in an argv). `size: 'max'`: lengths spread
 * over the whole range (fast-check's default keeps them short: no password past 64 bytes in 50 runs).
 */
const password = fc.oneof(fc.string({minLength: 1, maxLength: 100, size: 'max'}), fc.fullUnicodeString({minLength: 1, maxLength: 60, size: 'max'}))
  .filter((p) => !p.includes('\0'));
const salt = fc.stringOf(fc.constantFrom(...itoa64), {minLength: 1, maxLength: 16, size: 'max'});

(openssl ? test : test.skip)(`sha512Crypt equals openssl passwd -6 for random passwords and salts${openssl ? '' : ' (skipped: openssl not installed)'}`, (t) => {
  let compared = 0;
  // A difference throws with the (shrunk) password and salt.
  fc.assert(
    fc.property(password, salt, (p, s) => {
      compared++;
      const ours = sha512Crypt(p, s);
      return /^\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/.test(ours) && ours === opensslCrypt(p, s);
    }),
    {seed: 512, numRuns: 50},
  );
  t.is(compared, 50);
});
