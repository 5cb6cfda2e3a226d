// Replay's progress hook for the CLI's progress printer: frames and input bytes done out of the
// inputs' total size, at most once per 250 ms of the injected clock, and once at the end.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { replay } from '../../src/dataplane/replay.js';
import { PcapWriter } from '../../src/dataplane/devices/pcap/writer.js';
import { clusterYaml, W1, W2 } from '../dataplane/harness.js';
import { udp } from '../dataplane/frames.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-progress-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function capture(name: string, n: number, stepNs: number): string {
  const file = path.join(dir, name);
  const w = new PcapWriter(file);
  for (let k = 0; k < n; k++) {
    const f = udp({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip, id: k });
    const t = k * stepNs;
    w.write(f, 0, f.length, 1_700_000_000 + Math.floor(t / 1e9), t % 1e9);
  }
  w.close();
  return file;
}

describe('replay progress', () => {
  const prog = new Programmer(loadConfigText(clusterYaml(), 'progress.yaml'), 'node-a', { natSeed: 0 });

  it('reports at most every 250 ms of clock time, monotonically, and once at the end', () => {
    const n = 2000;
    const file = capture('many.pcap', n, 1_000_000); // 1 ms apart: one round per frame
    const size = fs.statSync(file).size;
    let now = 0;
    const calls: [number, number, number][] = [];
    const res = replay(prog.env, {
      inputs: [{ port: W1.port, path: file }],
      outDir: null,
      clock: () => (now += 100),
      onProgress: (f, b, t) => calls.push([f, b, t]),
    });
    expect(res.frames).toBe(n);
    expect(calls.at(-1)).toEqual([n, size, size]);
    // every call but the last is at least 250 ms of clock after the one before
    expect(calls.length - 1).toBeLessThanOrEqual(Math.floor(now / 250));
    expect(calls.length).toBeGreaterThan(10);
    for (let k = 1; k < calls.length; k++) {
      expect(calls[k][0]).toBeGreaterThanOrEqual(calls[k - 1][0]);
      expect(calls[k][1]).toBeGreaterThanOrEqual(calls[k - 1][1]);
      expect(calls[k][1]).toBeLessThanOrEqual(size);
      expect(calls[k][2]).toBe(size);
    }
  });

  it('does not read the clock without a hook', () => {
    const file = capture('few.pcap', 10, 1_000_000);
    let reads = 0;
    const res = replay(prog.env, {
      inputs: [{ port: W1.port, path: file }],
      outDir: null,
      clock: () => ++reads,
    });
    expect(res.frames).toBe(10);
    expect(reads).toBe(0);
  });
});
