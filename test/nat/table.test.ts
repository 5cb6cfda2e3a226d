// Unit tests of the SNAT table: TCP close tracking and timeouts, UDP stream detection, port allocation
// rules (reserved ports, reuse towards other remotes, determinism by seed), incremental expiry, options.
import { describe, expect, it } from 'vitest';
import {
  NAT_CLASS_TCP_CLOSE,
  NAT_CLASS_TCP_ESTABLISHED,
  NAT_CLASS_TCP_SYN_SENT,
  NAT_CLASS_TCP_TIME_WAIT,
  NAT_CLASS_TCP_TRANSITORY,
  NAT_CLASS_UDP,
  NAT_CLASS_UDP_STREAM,
  NAT_CLASS_ICMP,
  NAT_FULL,
  NAT_MISS,
  NAT_NO_PORT,
  NAT_ST_ESTABLISHED,
  NatTable,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
} from '../../src/dataplane/tables/nat/table.js';

const POD = 0x0a410018; // 10.65.0.24
const WEB = 0x5db8d822; // 93.184.216.34
const NAT = 0xc0a80164; // 192.168.1.100

function table(extra: Partial<Parameters<typeof NatTable.create>[0]> = {}): NatTable {
  return NatTable.create({ capacity: 1024, natIps: [NAT], portLo: 32768, portHi: 60999, seed: 1, ...extra });
}

describe('TCP state tracking', () => {
  it('SYN, SYN-ACK, ACK -> established (7440 s); FIN both ways -> time-wait (120 s)', () => {
    const t = table();
    let now = 100;
    const i = t.createOut(6, POD, 40000, WEB, 443, now);
    expect(i).toBeGreaterThanOrEqual(0);
    t.tcpUpdate(i, TCP_SYN, true, now);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_SYN_SENT);
    const j = t.lookupIn(6, WEB, 443, NAT, t.natPort(i), now);
    expect(j).toBe(i);
    t.tcpUpdate(j, TCP_SYN | TCP_ACK, false, now);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_SYN_SENT);
    t.tcpUpdate(i, TCP_ACK, true, now);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_ESTABLISHED);
    expect(t.flags(i) & NAT_ST_ESTABLISHED).toBeTruthy();
    // Idle for 2 h 3 min: still there; the established timeout is RFC 5382's 2 h 4 min.
    now += 7380;
    expect(t.lookupOut(6, POD, 40000, WEB, 443, now)).toBe(i);
    t.tcpUpdate(i, TCP_FIN | TCP_ACK, true, now);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_TRANSITORY);
    t.tcpUpdate(i, TCP_FIN | TCP_ACK, false, now);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_TIME_WAIT);
    expect(t.lookupOut(6, POD, 40000, WEB, 443, now + 120)).toBe(i);
    expect(t.lookupOut(6, POD, 40000, WEB, 443, now + 241)).toBe(NAT_MISS);
    expect(t.expire(now + 241)).toBe(1);
    expect(t.size).toBe(0);
  });

  it('RST either way closes with the 10 s timeout', () => {
    for (const fromInside of [true, false]) {
      const t = table();
      const i = t.createOut(6, POD, 40001, WEB, 443, 0);
      t.tcpUpdate(i, TCP_SYN, true, 0);
      t.tcpUpdate(i, TCP_SYN | TCP_ACK, false, 0);
      t.tcpUpdate(i, TCP_ACK, true, 0);
      t.tcpUpdate(i, TCP_RST, fromInside, 5);
      expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_CLOSE);
      expect(t.lookupOut(6, POD, 40001, WEB, 443, 15)).toBe(i);
      expect(t.lookupIn(6, WEB, 443, NAT, t.natPort(i), 26)).toBe(NAT_MISS);
      expect(t.expire(26)).toBe(1);
    }
  });

  it('an unanswered SYN expires after 120 s; a closed flow reopened by a new SYN', () => {
    const t = table();
    const i = t.createOut(6, POD, 40002, WEB, 80, 0);
    t.tcpUpdate(i, TCP_SYN, true, 0);
    expect(t.lookupOut(6, POD, 40002, WEB, 80, 120)).toBe(i);
    expect(t.lookupOut(6, POD, 40002, WEB, 80, 241)).toBe(NAT_MISS);
    // A new connection on the same tuple after the old one was reset.
    const k = t.createOut(6, POD, 40002, WEB, 80, 241);
    expect(t.size).toBe(1);
    t.tcpUpdate(k, TCP_RST, false, 241);
    expect(t.timeoutClass(k)).toBe(NAT_CLASS_TCP_CLOSE);
    t.tcpUpdate(k, TCP_SYN, true, 242);
    expect(t.timeoutClass(k)).toBe(NAT_CLASS_TCP_SYN_SENT);
  });

  it('mid-stream pickup: established once both directions carried ACKs', () => {
    const t = table();
    const i = t.createOut(6, POD, 40003, WEB, 443, 0);
    t.tcpUpdate(i, TCP_ACK, true, 0);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_SYN_SENT);
    t.tcpUpdate(i, TCP_ACK, false, 0);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_TCP_ESTABLISHED);
  });
});

describe('UDP and ICMP', () => {
  it('UDP: 30 s until a reply, then the 180 s stream timeout', () => {
    const t = table();
    const i = t.createOut(17, POD, 5353, 0x08080808, 53, 0);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_UDP);
    expect(t.lookupIn(17, 0x08080808, 53, NAT, t.natPort(i), 10)).toBe(i);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_UDP_STREAM);
    expect(t.lookupOut(17, POD, 5353, 0x08080808, 53, 190)).toBe(i);
    expect(t.lookupOut(17, POD, 5353, 0x08080808, 53, 371)).toBe(NAT_MISS);
    const j = t.createOut(17, POD, 5354, 0x08080808, 53, 0);
    expect(t.lookupOut(17, POD, 5354, 0x08080808, 53, 31)).toBe(NAT_MISS);
    expect(j).not.toBe(i);
  });

  it('ICMP echo: the identifier is translated like a port, 30 s timeout', () => {
    const t = table();
    const i = t.createOut(1, POD, 0x1234, 0x01010101, 0, 0);
    expect(t.timeoutClass(i)).toBe(NAT_CLASS_ICMP);
    expect(t.lookupIn(1, 0x01010101, 0, NAT, t.natPort(i), 30)).toBe(i);
    expect(t.lookupIn(1, 0x01010101, 0, NAT, t.natPort(i), 61)).toBe(NAT_MISS);
  });

  it('ticksPerSecond: milliseconds clock', () => {
    const t = table({ ticksPerSecond: 1000 });
    const i = t.createOut(17, POD, 5353, 0x08080808, 53, 1_000_000);
    expect(t.lookupOut(17, POD, 5353, 0x08080808, 53, 1_030_000)).toBe(i);
    expect(t.lookupOut(17, POD, 5353, 0x08080808, 53, 1_060_001)).toBe(NAT_MISS);
  });

  it('a clock a little behind last-seen (another thread) does not expire or rewind a flow', () => {
    const t = table();
    const i = t.createOut(17, POD, 5353, 0x08080808, 53, 1000);
    expect(t.lookupOut(17, POD, 5353, 0x08080808, 53, 998)).toBe(i);
    expect(t.lastSeen(i)).toBe(1000);
    expect(t.expire(999)).toBe(0);
  });

  it('the u32 clock may wrap', () => {
    const t = table();
    const i = t.createOut(17, POD, 5353, 0x08080808, 53, 0xfffffff0);
    expect(t.lookupOut(17, POD, 5353, 0x08080808, 53, 5)).toBe(i);
    expect(t.lastSeen(i)).toBe(5);
  });
});

describe('port allocation', () => {
  it('never hands out a reserved port, and reuses a nat port towards other remotes', () => {
    const t = NatTable.create({ capacity: 64, natIps: [NAT], portLo: 4785, portHi: 4792, seed: 3 });
    const seen = new Map<number, number>();
    for (let r = 0; r < 4; r++) {
      for (let s = 0; s < 7; s++) {
        const i = t.createOut(17, POD + s, 1000, WEB + r, 53, 0);
        expect(i).toBeGreaterThanOrEqual(0);
        expect(t.natPort(i)).not.toBe(4789);
        seen.set(t.natPort(i), (seen.get(t.natPort(i)) ?? 0) + 1);
      }
      // 7 allocatable ports towards this remote: the 8th inside flow finds none.
      expect(t.createOut(17, POD + 7, 1000, WEB + r, 53, 0)).toBe(NAT_NO_PORT);
    }
    expect([...seen.keys()].sort()).toEqual([4785, 4786, 4787, 4788, 4790, 4791, 4792]);
    expect([...seen.values()]).toEqual([4, 4, 4, 4, 4, 4, 4]);
    expect(t.counters.noPort).toBe(4);
  });

  it('is deterministic for a seed and varies with it', () => {
    const ports = (seed: number): number[] => {
      const t = table({ seed });
      return Array.from({ length: 50 }, (_, k) => t.natPort(t.createOut(6, POD, 1000 + k, WEB, 443, 0)));
    };
    expect(ports(42)).toEqual(ports(42));
    expect(ports(42)).not.toEqual(ports(43));
  });

  it('spreads inside addresses over several nat ips and keeps each address on one', () => {
    const ips = [NAT, NAT + 1, NAT + 2];
    const t = NatTable.create({ capacity: 4096, natIps: ips, portLo: 1024, portHi: 65535 });
    const used = new Set<number>();
    for (let s = 0; s < 60; s++) {
      const a = t.natIp(t.createOut(6, POD + s, 1000, WEB, 443, 0));
      const b = t.natIp(t.createOut(6, POD + s, 1001, WEB + 1, 80, 0));
      expect(a).toBe(b);
      used.add(a);
    }
    expect([...used].sort()).toEqual(ips);
  });

  it('returns NAT_FULL at capacity and recovers after expiry', () => {
    const t = table({ capacity: 3 });
    for (let k = 0; k < 3; k++) expect(t.createOut(17, POD, 1000 + k, WEB, 53, 0)).toBeGreaterThanOrEqual(0);
    expect(t.createOut(17, POD, 2000, WEB, 53, 0)).toBe(NAT_FULL);
    expect(t.counters.full).toBe(1);
    expect(t.expire(31)).toBe(3);
    expect(t.createOut(17, POD, 2000, WEB, 53, 31)).toBeGreaterThanOrEqual(0);
    expect(t.counters).toMatchObject({ created: 4, expired: 3, full: 1 });
  });

  it('createOut of an existing flow returns it', () => {
    const t = table();
    const i = t.createOut(6, POD, 1000, WEB, 443, 0);
    expect(t.createOut(6, POD, 1000, WEB, 443, 1)).toBe(i);
    expect(t.size).toBe(1);
  });
});

describe('expiry and removal', () => {
  it('expire is incremental: budget slots per call, resuming where it stopped', () => {
    const t = table({ capacity: 1000 });
    for (let k = 0; k < 1000; k++) t.createOut(17, POD, 1000 + k, WEB, 53, 0);
    let freed = 0;
    let calls = 0;
    while (t.size > 0) {
      const n = t.expire(100, 64);
      expect(n).toBeLessThanOrEqual(64);
      freed += n;
      calls++;
    }
    expect(freed).toBe(1000);
    expect(calls).toBe(Math.ceil(1000 / 64));
  });

  it('remove() deletes one flow; freed slots are reused', () => {
    const t = table({ capacity: 2 });
    const a = t.createOut(6, POD, 1, WEB, 443, 0);
    const b = t.createOut(6, POD, 2, WEB, 443, 0);
    expect(t.remove(a)).toBe(true);
    expect(t.remove(a)).toBe(false);
    expect(t.lookupOut(6, POD, 1, WEB, 443, 0)).toBe(NAT_MISS);
    const c = t.createOut(6, POD, 3, WEB, 443, 0);
    expect(c).toBe(a);
    expect(t.lookupOut(6, POD, 2, WEB, 443, 0)).toBe(b);
    expect(t.lookupOut(6, POD, 3, WEB, 443, 0)).toBe(c);
    expect(t.lookupIn(6, WEB, 443, NAT, t.natPort(c), 0)).toBe(c);
  });
});

describe('options and sharing', () => {
  it('rejects bad options', () => {
    expect(() => NatTable.create({ natIps: [] })).toThrow(/natIps/);
    expect(() => NatTable.create({ natIps: [NAT], capacity: 0 })).toThrow(/capacity/);
    expect(() => NatTable.create({ natIps: [NAT], portLo: 4789, portHi: 4789 })).toThrow(/reservedPorts/);
    expect(() => NatTable.create({ natIps: [NAT], portLo: 2000, portHi: 1000 })).toThrow(/portHi/);
  });

  it('attach() over the structured-cloned shared object sees the same flows', () => {
    const t = table();
    const i = t.createOut(6, POD, 1000, WEB, 443, 0);
    const u = NatTable.attach(structuredClone(t.shared));
    expect(u.lookupOut(6, POD, 1000, WEB, 443, 0)).toBe(i);
    const j = u.createOut(17, POD, 1000, WEB, 53, 0);
    expect(t.lookupIn(17, WEB, 53, NAT, u.natPort(j), 0)).toBe(j);
    expect(t.size).toBe(2);
    expect(u.memoryBytes()).toBe(t.memoryBytes());
  });

  it('memory is about 89 bytes per flow at 1 M flows', () => {
    const t = NatTable.create({ capacity: 1 << 20, natIps: [NAT] });
    expect(t.memoryBytes() / (1 << 20)).toBeLessThan(90);
  });

  it('batch lookups return what single lookups return (hits, misses, expired)', () => {
    const t = table({ capacity: 64 });
    const n = 100;
    const keysOut = new Int32Array(n * 5);
    const keysIn = new Int32Array(n * 5);
    for (let k = 0; k < n; k++) {
      const proto = [6, 17, 1][k % 3];
      const key = [proto, POD + (k % 7), 1000 + k, WEB + (k % 5), 443];
      // 60 flows, half created at 0 (gone by 200 s), half at 50; 40 keys never created.
      const i = k < 60 ? t.createOut(key[0], key[1], key[2], key[3], key[4], k < 30 ? 0 : 50) : NAT_MISS;
      keysOut.set(key, k * 5);
      keysIn.set([proto, key[3], 443, NAT, i >= 0 ? t.natPort(i) : 7], k * 5);
    }
    const out = new Int32Array(n);
    for (const now of [60, 200]) {
      const single = Array.from({ length: n }, (_, k) => t.lookupOut(...keyOf(keysOut, k, now)));
      t.lookupOutBatch(keysOut, n, now, out);
      expect([...out]).toEqual(single);
      expect(single.filter((x) => x >= 0).length).toBeGreaterThan(5);
      expect(single.filter((x) => x < 0).length).toBeGreaterThan(20);
      const singleIn = Array.from({ length: n }, (_, k) => t.lookupIn(...keyOf(keysIn, k, now)));
      t.lookupInBatch(keysIn, n, now, out);
      expect([...out]).toEqual(singleIn);
      expect(singleIn).toEqual(single);
    }
  });
});

describe('batch lookups, larger', () => {
  it('agree with single lookups over batches larger than 256, repeated keys and chains', () => {
    const t = table({ capacity: 1024 });
    const flows: number[][] = [];
    for (let k = 0; k < 900; k++) {
      const key = [6, POD + (k % 13), 2000 + k, WEB + (k % 11), 80];
      if (t.createOut(key[0], key[1], key[2], key[3], key[4], 10) >= 0) flows.push(key);
    }
    const n = 700;
    const keys = new Int32Array(n * 5);
    let x = 12345;
    for (let k = 0; k < n; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      // mostly live flows (some twice in the batch), some never created
      const key = x % 10 === 0 ? [17, POD, 9, WEB, 9 + k] : flows[(x >>> 8) % flows.length];
      keys.set(key, k * 5);
    }
    const out = new Int32Array(n);
    t.lookupOutBatch(keys, n, 20, out);
    const single = Array.from({ length: n }, (_, k) => t.lookupOut(...keyOf(keys, k, 20)));
    expect([...out]).toEqual(single);
    expect(single.filter((f) => f < 0).length).toBeGreaterThan(30);
  });

  it('calls advise once with the new memory before anything is written', () => {
    const seen: SharedArrayBuffer[] = [];
    const t = table({
      advise: (sab) => {
        seen.push(sab);
        expect(new Int32Array(sab).every((w) => w === 0)).toBe(true);
      },
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(t.shared.sab);
    expect(t.createOut(6, POD, 1000, WEB, 443, 0)).toBeGreaterThanOrEqual(0);
  });
});

function keyOf(keys: Int32Array, k: number, now: number): [number, number, number, number, number, number] {
  const q = k * 5;
  return [keys[q], keys[q + 1], keys[q + 2], keys[q + 3], keys[q + 4], now];
}
