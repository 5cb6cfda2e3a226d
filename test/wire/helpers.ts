// Test helpers for the wire modules: buffers pre-filled with 0xa5 (so forgotten fields show) with a
// frame placed at a non-zero offset, and a bounds-recording proxy to prove checked views only read
// inside the window they were given.
import { hex } from './fixtures.js';

export const FILL = 0xa5;
export const HEADROOM = 64;

/** A 0xa5-filled buffer of `size` bytes with the hex frame copied at `off`. */
export function place(h: string, off = HEADROOM, size = 2048): { u8: Uint8Array; off: number; len: number } {
  const bytes = hex(h);
  const u8 = new Uint8Array(size).fill(FILL);
  u8.set(bytes, off);
  return { u8, off, len: bytes.length };
}

export function filled(size = 256): Uint8Array {
  return new Uint8Array(size).fill(FILL);
}

export function toHex(u8: Uint8Array, off = 0, len = u8.length - off): string {
  return Buffer.from(u8.buffer, u8.byteOffset + off, len).toString('hex');
}

export function ip(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((b) => parseInt(b, 16)));
}

/**
 * Wraps `u8` so every indexed read outside [lo, hi) is recorded in `bad` (the read still returns what
 * a Uint8Array would: undefined past the end). Only for functions that index and read `.length`.
 */
export function guarded(u8: Uint8Array, lo: number, hi: number): { view: Uint8Array; bad: number[] } {
  const bad: number[] = [];
  const view = new Proxy(u8, {
    get(target, prop) {
      if (typeof prop === 'string' && /^-?\d+$/.test(prop)) {
        const i = Number(prop);
        if (i < lo || i >= hi) bad.push(i);
        return target[i];
      }
      if (prop === 'length') return target.length;
      return Reflect.get(target, prop, target);
    },
  });
  return { view, bad };
}
