// Replay rounds: the outcome of a frame must not depend on where the round (batch) boundaries fall.
// Captures are written with PcapWriter into a temporary directory and replayed in memory.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { replay } from '../../src/dataplane/replay.js';
import { PcapWriter } from '../../src/dataplane/devices/pcap/writer.js';
import { openCaptureBytes } from '../../src/dataplane/devices/pcap/reader.js';
import { clusterYaml, W1, W2 } from '../dataplane/harness.js';
import { udp } from '../dataplane/frames.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-rounds-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function capture(name: string, frames: Uint8Array[]): string {
  const file = path.join(dir, name);
  const w = new PcapWriter(file);
  frames.forEach((f, k) => w.write(f, 0, f.length, 1_700_000_000, k * 1000));
  w.close();
  return file;
}

/** A capture of frames at the given times (ns since 1_700_000_000 s). */
function captureAt(name: string, frames: Uint8Array[], ns: number[]): string {
  const file = path.join(dir, name);
  const w = new PcapWriter(file, { nanosecond: true });
  frames.forEach((f, k) => w.write(f, 0, f.length, 1_700_000_000 + Math.floor(ns[k] / 1e9), ns[k] % 1e9));
  w.close();
  return file;
}

/** IPv4 ids of a capture's frames, in file order. */
function ipIds(pcap: Uint8Array): number[] {
  const r = openCaptureBytes(pcap);
  const ids: number[] = [];
  while (r.next()) ids.push((r.buf[r.dataOffset + 18] << 8) | r.buf[r.dataOffset + 19]);
  return ids;
}

function frameCount(pcap: Uint8Array): number {
  const r = openCaptureBytes(pcap);
  let n = 0;
  while (r.next()) n++;
  return n;
}

describe('replay rounds', () => {
  it('fragments every too-big packet, however many arrive in one round', () => {
    // uplink MTU 576: a 1500-byte datagram becomes 3 fragments (2 extra slots per packet)
    const prog = new Programmer(loadConfigText(clusterYaml({ uplinkMtu: 576 }), 'rounds.yaml'), 'node-a', {
      natSeed: 0,
    });
    const n = 300;
    const frames = Array.from({ length: n }, (_, k) =>
      udp({ ethSrc: W1.mac, src: W1.ip, dst: '192.0.2.10', id: k, payload: new Uint8Array(1472) }),
    );
    const res = replay(prog.env, {
      inputs: [{ port: W1.port, path: capture('big.pcap', frames) }],
      outDir: null,
    });
    const fragmented = res.counters.find((c) => c.reason === 'fragmented')?.value ?? 0;
    const failed = res.counters.find((c) => c.reason === 'fragmentation-failed')?.value ?? 0;
    const out = frameCount(res.outputs.get('uplink')!);
    // every packet is accounted for: 3 fragments out, or counted as failed
    expect(fragmented + failed).toBe(n);
    expect(out).toBe(3 * fragmented);
    // a round takes only as many frames as can all be fragmented at the smallest path MTU
    expect(failed).toBe(0);
    expect(out).toBe(3 * n);
  });

  it('merges several inputs in timestamp order, ties to the input named first, across rounds', () => {
    const prog = new Programmer(loadConfigText(clusterYaml(), 'rounds.yaml'), 'node-a', { natSeed: 0 });
    // two inputs with runs of frames, interleavings and equal timestamps, over several 1-ms rounds
    let seed = 7;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
    const mk = (w: typeof W1, base: number, n: number) => {
      const ns: number[] = [];
      let t = 0;
      for (let k = 0; k < n; k++) {
        t += rand() % 4 === 0 ? 0 : (rand() % 3) * 7_000 + (rand() % 2) * 150_000; // ties and runs
        ns.push(t);
      }
      const frames = ns.map((_, k) =>
        udp({ ethSrc: w.mac, src: w.ip, dst: '192.0.2.10', id: base + k, payload: new Uint8Array(18) }),
      );
      return { ns, frames, ids: frames.map((_, k) => base + k) };
    };
    const a = mk(W1, 0, 700);
    const b = mk(W2, 10_000, 700);
    const res = replay(prog.env, {
      inputs: [
        { port: W1.port, path: captureAt('a.pcap', a.frames, a.ns) },
        { port: W2.port, path: captureAt('b.pcap', b.frames, b.ns) },
      ],
      outDir: null,
    });
    // expected: by time, ties to input a (named first), each input in file order
    const all = [
      ...a.ns.map((t, k) => ({ t, inp: 0, k, id: a.ids[k] })),
      ...b.ns.map((t, k) => ({ t, inp: 1, k, id: b.ids[k] })),
    ].sort((x, y) => x.t - y.t || x.inp - y.inp || x.k - y.k);
    expect(res.frames).toBe(1400);
    expect(ipIds(res.outputs.get('uplink')!)).toEqual(all.map((x) => x.id));
  });
});
