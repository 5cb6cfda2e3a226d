// Byte vectors for the IPIP and VXLAN header emitters (src/dataplane/wire/ipip.ts, src/dataplane/wire/vxlan.ts): each emit
// writes into a buffer pre-filled with 0xa5 so a forgotten field or a write outside the header shows.
// Expected IPv4 headers (checksums included) were produced by scapy:
//   raw(IP(src=..., dst=..., proto=4, ttl=64, id=..., flags=..., tos=..., len=...)).hex()
import { describe, expect, it } from 'vitest';
import { IPIP_OVERHEAD, IPIP_TTL, emitIpipOuter } from '../../src/dataplane/wire/ipip.js';
import {
  VXLAN_ERR_FLAGS,
  VXLAN_ERR_SHORT,
  VXLAN_HLEN,
  VXLAN_OK,
  VXLAN_OVERHEAD,
  VXLAN_SPORT_MAX,
  VXLAN_SPORT_MIN,
  emitVxlanHeader,
  vxlanCheck,
  vxlanSourcePort,
  vxlanVni,
} from '../../src/dataplane/wire/vxlan.js';
import { hex, ip } from './helpers.js';

function filled(n: number): Uint8Array {
  return new Uint8Array(n).fill(0xa5);
}

describe('IPIP outer header (RFC 2003 §3.1)', () => {
  it('overhead and outer TTL are the ones Calico uses', () => {
    expect(IPIP_OVERHEAD).toBe(20);
    expect(IPIP_TTL).toBe(64);
  });

  it('emits a 20-byte header, DF and TOS copied, protocol 4, TTL 64, checksum right', () => {
    const u8 = filled(28);
    emitIpipOuter(u8, 4, ip('10.0.0.1'), ip('10.1.0.3'), 84, true, 0xb8, 0x1234);
    expect(hex(u8)).toBe('a5a5a5a5' + '45b8006812344000400413a20a0000010a010003' + 'a5a5a5a5');
  });

  it('without DF the flags word is zero; total length covers 1480 inner bytes', () => {
    const u8 = filled(24);
    emitIpipOuter(u8, 2, ip('10.0.0.1'), ip('10.0.0.2'), 1480, false, 0, 0xfffe);
    expect(hex(u8)).toBe('a5a5' + '450005dcfffe00004004611d0a0000010a000002' + 'a5a5');
  });
});

describe('VXLAN header (RFC 7348 §5)', () => {
  it('overhead is outer IPv4 + UDP + VXLAN + inner Ethernet = 50', () => {
    expect(VXLAN_HLEN).toBe(8);
    expect(VXLAN_OVERHEAD).toBe(50);
  });

  it('emits flags I, reserved zero, VNI 4096 (Calico default), reserved zero', () => {
    const u8 = filled(12);
    emitVxlanHeader(u8, 2, 4096);
    expect(hex(u8)).toBe('a5a5' + '0800000000100000' + 'a5a5');
  });

  it('emits a 24-bit VNI big-endian and ignores bits above 24', () => {
    const u8 = filled(8);
    emitVxlanHeader(u8, 0, 0xabcdef);
    expect(hex(u8)).toBe('08000000abcdef00');
    emitVxlanHeader(u8, 0, 0x1000001);
    expect(hex(u8)).toBe('0800000000000100');
  });

  it('check and VNI reader: I flag required, 8 bytes required, other flags tolerated', () => {
    const u8 = Uint8Array.from([0x08, 0, 0, 0, 0, 0x10, 0, 0]);
    expect(vxlanCheck(u8, 0, 8)).toBe(VXLAN_OK);
    expect(vxlanVni(u8, 0)).toBe(4096);
    expect(vxlanCheck(u8, 0, 7)).toBe(VXLAN_ERR_SHORT);
    u8[0] = 0x00;
    expect(vxlanCheck(u8, 0, 8)).toBe(VXLAN_ERR_FLAGS);
    u8[0] = 0x0c; // I + a GPE-style bit: receivers ignore reserved bits (RFC 7348 §5)
    expect(vxlanCheck(u8, 0, 8)).toBe(VXLAN_OK);
  });
});

describe('VXLAN UDP source port (RFC 7348 §5: hash of the inner flow)', () => {
  it('lies in the Linux ephemeral range 32768..60999', () => {
    expect([VXLAN_SPORT_MIN, VXLAN_SPORT_MAX]).toEqual([32768, 60999]);
    let x = 12345;
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 0; k < 200000; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const p = vxlanSourcePort(x, Math.imul(x, 31) >>> 0, k & 1 ? 6 : 17, Math.imul(x, 7) >>> 0);
      if (!Number.isInteger(p)) throw new Error(`port ${p}`);
      lo = Math.min(lo, p);
      hi = Math.max(hi, p);
    }
    expect(lo).toBeGreaterThanOrEqual(32768);
    expect(hi).toBeLessThanOrEqual(60999);
    // 200 000 random flows reach both ends of the range
    expect(lo).toBeLessThan(32768 + 50);
    expect(hi).toBeGreaterThan(60999 - 50);
  });

  it('is stable per flow and differs between flows', () => {
    const a = vxlanSourcePort(ip('10.66.0.2'), ip('10.66.0.66'), 17, (5000 << 16) | 7000);
    expect(vxlanSourcePort(ip('10.66.0.2'), ip('10.66.0.66'), 17, (5000 << 16) | 7000)).toBe(a);
    const others = [
      vxlanSourcePort(ip('10.66.0.2'), ip('10.66.0.66'), 17, (5001 << 16) | 7000),
      vxlanSourcePort(ip('10.66.0.2'), ip('10.66.0.66'), 6, (5000 << 16) | 7000),
      vxlanSourcePort(ip('10.66.0.3'), ip('10.66.0.66'), 17, (5000 << 16) | 7000),
      vxlanSourcePort(ip('10.66.0.2'), ip('10.66.0.67'), 17, (5000 << 16) | 7000),
    ];
    for (const o of others) expect(o).not.toBe(a);
  });

  it('spreads flows over the range (ECMP entropy): 10 000 flows of one pod pair use many ports', () => {
    const seen = new Set<number>();
    const buckets = new Uint32Array(16);
    for (let sp = 0; sp < 10000; sp++) {
      const p = vxlanSourcePort(ip('10.66.0.2'), ip('10.66.0.66'), 6, ((20000 + sp) << 16) | 443);
      seen.add(p);
      buckets[Math.floor(((p - 32768) * 16) / (60999 - 32768 + 1))]++;
    }
    expect(seen.size).toBeGreaterThan(8000);
    for (const n of buckets) expect(n).toBeGreaterThan(10000 / 16 / 2);
  });
});
