// arenaDontFork: the worker's arena is advised MADV_DONTFORK (whole pages inside it), so the control
// thread's child processes neither copy nor write-protect it; the arena stays intact and usable in
// the parent, and a child process still runs.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { arenaDontFork } from '../../src/dataplane/devices/native.js';

describe('arenaDontFork', () => {
  it('advises the whole pages of the arena; children still run and the arena is untouched', () => {
    const sab = new SharedArrayBuffer((4 << 20) + 100);
    const u8 = new Uint8Array(sab);
    for (let k = 0; k < u8.length; k += 4093) u8[k] = k & 255;
    const n = arenaDontFork(u8);
    expect(n % 4096).toBe(0);
    expect(n).toBeGreaterThanOrEqual((4 << 20) - 8192);
    expect(n).toBeLessThanOrEqual(u8.length);
    expect(spawnSync('true').status).toBe(0);
    for (let k = 0; k < u8.length; k += 4093) expect(u8[k]).toBe(k & 255);
    u8[u8.length - 1] = 9; // still writable after a fork
    expect(u8[u8.length - 1]).toBe(9);
    expect(arenaDontFork(new Uint8Array(new SharedArrayBuffer(100)))).toBe(0); // no whole page inside
  });
});
