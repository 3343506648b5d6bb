/** A keyboard for ink without a terminal: raw mode accepted, `type()` delivers keys as ink reads them. */
import {EventEmitter} from 'node:events';

export class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  setRawMode(): void {}
  setEncoding(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
  read = (): string | null => {
    const d = this.data;
    this.data = null;
    return d;
  };
  type(s: string): void {
    this.data = s;
    this.emit('readable');
  }
}
