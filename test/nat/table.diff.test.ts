// Differential test: the shared-memory SNAT table against the naive Map model (test/nat/model.ts) on
// random flows from a FIXED seed, with clock advances (expiry), full-table and port exhaustion.
import { describe, expect, it } from 'vitest';
import { checkInvariants, makeHarness, step, type DiffConfig, type Op } from './diff.js';

/** xorshift32, fixed seed: the same ops every run. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface Space {
  insideIps: number[];
  insidePorts: number[];
  remoteIps: number[];
  remotePorts: number[];
  protos: number[];
  dts: number[];
}

function genOps(n: number, seed: number, cfg: DiffConfig, sp: Space): Op[] {
  const r = rng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const ops: Op[] = [];
  for (let k = 0; k < n; k++) {
    const x = r();
    const flow = {
      p: pick(sp.protos),
      s: pick(sp.insideIps),
      sp: pick(sp.insidePorts),
      d: pick(sp.remoteIps),
      dp: pick(sp.remotePorts),
    };
    if (x < 0.35) ops.push({ op: 'create', ...flow });
    else if (x < 0.55) ops.push({ op: 'lookupOut', ...flow });
    else if (x < 0.75) {
      const np = cfg.portLo + Math.floor(r() * (cfg.portHi - cfg.portLo + 1));
      ops.push({ op: 'lookupIn', p: flow.p, r: flow.d, rp: flow.dp, nat: pick(cfg.natIps), np });
    } else if (x < 0.9) {
      const flags = pick([0x02, 0x12, 0x10, 0x18, 0x11, 0x01, 0x04, 0x14, 0x00]);
      ops.push({ op: 'tcp', s: flow.s, sp: flow.sp, d: flow.d, dp: flow.dp, flags, fromInside: r() < 0.5 });
    } else if (x < 0.97) ops.push({ op: 'advance', dt: pick(sp.dts) });
    else ops.push({ op: 'expire' });
  }
  return ops;
}

const IP = (a: number, b: number, c: number, d: number): number =>
  ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

const cases: { name: string; cfg: DiffConfig; space: Space; ops: number }[] = [
  {
    name: 'tiny table and port range (full and no-port)',
    cfg: {
      capacity: 16,
      natIps: [IP(192, 168, 1, 100)],
      portLo: 4000,
      portHi: 4005,
      reservedPorts: [4002],
      seed: 7,
    },
    space: {
      insideIps: [IP(10, 65, 0, 1), IP(10, 65, 0, 2), IP(10, 65, 0, 3)],
      insidePorts: [1000, 1001, 1002],
      remoteIps: [IP(8, 8, 8, 8), IP(1, 1, 1, 1)],
      remotePorts: [53, 443],
      protos: [6, 17, 1],
      dts: [0, 1, 5, 29, 30, 31, 119, 121, 200],
    },
    ops: 20000,
  },
  {
    name: 'two nat ips, range across the VXLAN port, bounded probing',
    cfg: {
      capacity: 64,
      natIps: [IP(192, 168, 1, 100), IP(192, 168, 1, 101)],
      portLo: 4785,
      portHi: 4795,
      maxPortProbes: 4,
      seed: 12345,
    },
    space: {
      insideIps: [1, 2, 3, 4, 5, 6].map((x) => IP(10, 65, 1, x)),
      insidePorts: [33000, 33001, 33002, 65535],
      remoteIps: [IP(93, 184, 216, 34), IP(255, 255, 255, 255)],
      remotePorts: [80, 65535],
      protos: [6, 17],
      dts: [0, 0, 1, 10, 31, 181, 241, 7441],
    },
    ops: 20000,
  },
  {
    name: 'roomier table, short custom timeouts',
    cfg: {
      capacity: 300,
      natIps: [IP(172, 16, 0, 1)],
      portLo: 32768,
      portHi: 32900,
      reservedPorts: [32800, 32801],
      seed: 99,
      timeouts: {
        tcpEstablished: 50,
        tcpSynSent: 5,
        udp: 3,
        udpStream: 9,
        icmp: 2,
        tcpClose: 1,
        tcpTimeWait: 4,
      },
    },
    space: {
      insideIps: Array.from({ length: 20 }, (_, k) => IP(10, 66, 0, k + 1)),
      insidePorts: [40000, 40001, 40002, 40003, 40004],
      remoteIps: [IP(8, 8, 8, 8), IP(8, 8, 4, 4), IP(9, 9, 9, 9)],
      remotePorts: [53, 80, 443],
      protos: [6, 17, 1],
      dts: [0, 1, 2, 3, 4, 6, 10, 51],
    },
    ops: 30000,
  },
];

describe('nat table vs naive model (fixed seed)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const h = makeHarness(c.cfg);
      const ops = genOps(c.ops, 0xc0ffee, c.cfg, c.space);
      ops.forEach((o, k) => {
        step(h, o);
        if (k % 500 === 0) checkInvariants(h, c.cfg);
      });
      checkInvariants(h, c.cfg);
      // The run must actually have exercised exhaustion and expiry.
      const cnt = h.table.counters;
      if (c.cfg.capacity <= 64) expect(cnt.full + cnt.noPort).toBeGreaterThan(0);
      expect(cnt.expired).toBeGreaterThan(0);
    });
  }
});
