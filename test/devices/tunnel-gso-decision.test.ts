// ip4-rewrite's segmentation decision (issue 9): a TCP super-frame (PKT_GSO) routed into IPIP or
// VXLAN is segmented in the graph (TypeScript, replay's path) unless its tunnel port has the
// PortTable.tunnelGso bit (set by the live owner from the device's caps): then it leaves whole,
// wrapped once by the encap node with PKT_GSO kept, for the device to segment at write time. Both
// ways the MTU check uses the segment size (a too-big DF super-frame gets fragmentation-needed).
import { describe, expect, it } from 'vitest';
import { buildGraph } from '../../src/dataplane/graph/build.js';
import { Batch, GSO_SLOT_SIZE, PKT_GSO } from '../../src/dataplane/graph/packet.js';
import type { PortSink } from '../../src/dataplane/graph/env.js';
import { DATAPLANE_FEATURES } from '../../src/dataplane/features/index.js';
import { emitEthernet, ETHERTYPE_IPV4 } from '../../src/dataplane/wire/ethernet.js';
import { emitIp4Header, IPPROTO_TCP } from '../../src/dataplane/wire/ipv4.js';
import { parseIp4, parseMac } from '../../src/common/addr.js';
import { MAC, program } from '../encap/helpers.js';

class Sink implements PortSink {
  frames: { len: number; gso: boolean; proto: number }[] = [];
  tx(b: Batch, i: number): void {
    this.frames.push({ len: b.len[i], gso: (b.flags[i] & PKT_GSO) !== 0, proto: b.u8[b.off[i] + 23] });
  }
  flush(): void {}
}

/** A TCP super-frame from workload `src` (port p) to `dst`: 20000 bytes of payload at MSS `mss`. */
function superFrame(
  b: Batch,
  p: number,
  srcMac: string,
  src: string,
  dst: string,
  mss: number,
  proto: number = IPPROTO_TCP,
): void {
  b.reset();
  const i = b.push(new Uint8Array(0), 0, 0, p, 0, 0);
  const off = b.off[i];
  const u8 = b.u8;
  emitEthernet(u8, off, parseMac(MAC.ee)!, parseMac(srcMac)!, ETHERTYPE_IPV4);
  const payload = 20000;
  emitIp4Header(u8, off + 14, parseIp4(src)!, parseIp4(dst)!, proto, 40 + payload, 64, 1, 0x4000, 0);
  const t = off + 34;
  u8.fill(0, t, t + 20);
  u8[t + 1] = 80;
  u8[t + 3] = 81;
  u8[t + 12] = 5 << 4;
  u8[t + 13] = 0x18;
  b.len[i] = 54 + payload;
  b.flags[i] = PKT_GSO;
  b.gso[i] = mss;
}

function setup(tunnelGso: boolean): {
  run: (src: string, mac: string, port: string, dst: string, mss: number, proto?: number) => Sink;
  counters: () => Map<string, number>;
} {
  const prog = program('node-a');
  const env = prog.env;
  env.nbr.setStatic(parseIp4('10.0.0.2')!, parseMac(MAC.nodeB)!);
  env.nbr.setStatic(parseIp4('10.0.0.254')!, parseMac(MAC.gwA)!);
  const sinks = env.ports.names.map(() => new Sink());
  const built = buildGraph(env, sinks, 256, DATAPLANE_FEATURES);
  if (tunnelGso) env.ports.tunnelGso[0] = 1;
  const b = new Batch(256, undefined, 0, GSO_SLOT_SIZE);
  return {
    run: (src, mac, port, dst, mss, proto) => {
      for (const s of sinks) s.frames = [];
      superFrame(b, env.ports.index(port)!, mac, src, dst, mss, proto);
      built.graph.run(b);
      return sinks[0];
    },
    counters: () => {
      const m = new Map<string, number>();
      for (const c of built.graph.counters.rows()) m.set(`${c.node}: ${c.reason}`, c.value);
      return m;
    },
  };
}

describe('ip4-rewrite: tunnel super-frames whole only for ports with tunnelGso', () => {
  for (const [what, src, mac, port, dst, proto, outer] of [
    ['IPIP', '10.67.0.2', '0a:58:0a:43:00:02', 'cali-a67', '10.67.0.66', 4, 20],
    ['VXLAN', '10.66.0.2', MAC.a66, 'cali-a66', '10.66.0.66', 17, 50],
  ] as const) {
    it(`${what}: without the bit, segmented in the graph (replay's path)`, () => {
      const w = setup(false);
      const up = w.run(src, mac, port, dst, 1000);
      expect(up.frames.length).toBe(20);
      expect(up.frames.every((f) => !f.gso && f.proto === proto && f.len === 14 + outer + 40 + 1000)).toBe(
        true,
      );
      expect(w.counters().get('ip4-rewrite: gso-segmented')).toBe(1);
    });
    it(`${what}: with the bit, one super-frame wrapped once, PKT_GSO kept`, () => {
      const w = setup(true);
      const up = w.run(src, mac, port, dst, 1000);
      expect(up.frames).toEqual([{ len: 14 + outer + 40 + 20000, gso: true, proto }]);
      expect(w.counters().get('ip4-rewrite: gso-segmented') ?? 0).toBe(0);
    });
    it(`${what}: with the bit, a segment over the tunnel MTU still gets fragmentation-needed`, () => {
      const w = setup(true);
      const up = w.run(src, mac, port, dst, 1460);
      expect(up.frames).toEqual([]);
      expect(w.counters().get('ip4-rewrite: fragmentation-needed')).toBe(1);
    });
  }
});

describe('ip4-rewrite: only TCP super-frames are handed on whole', () => {
  it('a non-TCP super-frame (a tunnel one from the uplink GRO that was not decapsulated) is dropped', () => {
    const w = setup(true);
    const up = w.run('10.67.0.2', '0a:58:0a:43:00:02', 'cali-a67', '10.67.0.66', 1000, 17);
    expect(up.frames.length).toBe(0);
    expect(w.counters().get('ip4-rewrite: gso-segmentation-failed')).toBe(1);
  });
});
