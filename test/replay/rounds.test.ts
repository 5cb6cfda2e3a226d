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
import { clusterYaml, W1 } from '../dataplane/harness.js';
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
});
