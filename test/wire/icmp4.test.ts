import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { onesSum } from '../../src/dataplane/wire/checksum.js';
import * as icmp from '../../src/dataplane/wire/icmp4.js';
import * as ip4 from '../../src/dataplane/wire/ipv4.js';
import * as F from './fixtures.js';
import { FILL, ip, mac, place, toHex } from './helpers.js';

const HOST = mac('ee:ee:ee:ee:ee:ee');
const R = ip('192.168.0.10');

describe('icmp4 check and parse', () => {
  it('parses an echo request fixture', () => {
    const { u8, off, len } = place(F.ICMP_ECHO_FRAME);
    const o = off + 34;
    expect(icmp.icmpCheck(u8, o, len - 34)).toBe(icmp.ICMP_OK);
    expect(icmp.parseIcmp(u8, o, len - 34)).toEqual({
      type: icmp.ICMP_ECHO_REQUEST,
      code: 0,
      checksum: (u8[o + 2] << 8) | u8[o + 3],
      rest: 0x00770001,
      id: 0x77,
      seq: 1,
      mtu: 1,
      isError: false,
      dataOff: o + 8,
      dataLen: 32,
      err: 0,
      errName: 'ok',
    });
  });

  it('refuses short messages and bad checksums', () => {
    const { u8, off, len } = place(F.ICMP_ECHO_FRAME);
    const o = off + 34;
    expect(icmp.icmpCheck(u8, o, 7)).toBe(icmp.ICMP_ERR_SHORT);
    expect(icmp.parseIcmp(u8, o, 7)).toBeNull();
    expect(icmp.icmpCheck(u8, u8.length - 7, 8)).toBe(icmp.ICMP_ERR_SHORT);
    u8[o + 20] ^= 0x10;
    expect(icmp.icmpCheck(u8, o, len - 34)).toBe(icmp.ICMP_ERR_CHECKSUM);
    expect(icmp.parseIcmp(u8, o, len - 34)!.errName).toBe('bad-checksum');
  });

  it('classifies error types', () => {
    for (const t of [3, 4, 5, 11, 12, 19, 255]) expect(icmp.icmpIsError(t)).toBe(true);
    for (const t of [0, 8, 13, 14, 17, 18]) expect(icmp.icmpIsError(t)).toBe(false);
  });

  it('rewrites the echo id with an incremental checksum', () => {
    const { u8, off, len } = place(F.ICMP_ECHO_FRAME);
    const o = off + 34;
    for (const id of [0, 0xffff, 0x1234, 0x77]) {
      icmp.icmpSetId(u8, o, id);
      expect(icmp.parseIcmp(u8, o, len - 34)).toMatchObject({ id, err: 0 });
    }
  });
});

describe('icmpErrorAllowed (RFC 1812 §4.3.2.7)', () => {
  const allowed = (h: string, edit?: (u8: Uint8Array, off: number) => void): boolean => {
    const { u8, off } = place(h);
    if (edit) edit(u8, off);
    return icmp.icmpErrorAllowed(u8, off, off + 14);
  };
  const setIp = (at: number, v: number) => (u8: Uint8Array, off: number) => {
    u8[off + 14 + at] = v >>> 24;
    u8[off + 15 + at] = v >>> 16;
    u8[off + 16 + at] = v >>> 8;
    u8[off + 17 + at] = v;
  };

  it('allows ordinary unicast datagrams, the first fragment and echo requests', () => {
    expect(allowed(F.UDP_FRAME)).toBe(true);
    expect(allowed(F.TCP_SYN_FRAME)).toBe(true);
    expect(allowed(F.FRAG_FIRST_FRAME)).toBe(true);
    expect(allowed(F.ICMP_ECHO_FRAME)).toBe(true);
  });

  it('refuses ICMP errors, non-initial fragments, broadcast and multicast', () => {
    const e = place(F.TTL_EXPECTED);
    expect(icmp.icmpErrorAllowed(e.u8, e.off, e.off + 14)).toBe(false);
    expect(allowed(F.FRAG_LATER_FRAME)).toBe(false);
    expect(allowed(F.UDP_FRAME, (u8, off) => (u8[off] = 0x01))).toBe(false); // link multicast
    expect(allowed(F.UDP_FRAME, (u8, off) => u8.fill(0xff, off, off + 6))).toBe(false);
    expect(allowed(F.UDP_FRAME, setIp(16, 0xffffffff))).toBe(false);
    expect(allowed(F.UDP_FRAME, setIp(16, ip('239.1.2.3')))).toBe(false);
    for (const src of ['0.0.0.0', '127.0.0.1', '224.0.0.5', '240.0.0.1', '255.255.255.255']) {
      expect(allowed(F.UDP_FRAME, setIp(12, ip(src)))).toBe(false);
    }
    // an ICMP datagram too short to show its type is treated as an error
    expect(allowed(F.ICMP_ECHO_FRAME, (u8, off) => (u8[off + 17] = 20))).toBe(false);
  });
});

describe('emitIcmpErrorInPlace', () => {
  /** Runs the builder on `orig` placed at 64 in a 0xa5 buffer; compares with the scapy-built frame. */
  function check(orig: string, expected: string, type: number, code: number, mtu: number): void {
    const { u8, off, len } = place(orig, 64, 2048);
    const cap = off + 1600;
    const n = icmp.emitIcmpErrorInPlace(u8, off, len, cap, type, code, mtu, R, HOST);
    expect(n).toBe(expected.length / 2);
    expect(toHex(u8, off, n)).toBe(expected);
    expect(u8.subarray(0, off).every((b) => b === FILL)).toBe(true);
    expect(u8.subarray(cap).every((b) => b === FILL)).toBe(true);
    expect(ip4.ip4Check(u8, off + 14, n - 14)).toBe(0);
    expect(icmp.icmpCheck(u8, off + 34, n - 34)).toBe(0);
  }

  it('time exceeded quoting a whole small datagram (TOS kept as Linux does)', () => {
    check(F.TTL_ORIG, F.TTL_EXPECTED, icmp.ICMP_TIME_EXCEEDED, icmp.ICMP_TTL_EXCEEDED, 0);
  });

  it('frag-needed with the next-hop MTU, quote cut to a 576-byte datagram', () => {
    expect(F.BIG_ORIG.length / 2).toBe(1514);
    check(F.BIG_ORIG, F.FRAG_NEEDED_EXPECTED, icmp.ICMP_DEST_UNREACH, icmp.ICMP_FRAG_NEEDED, 1450);
    expect(F.FRAG_NEEDED_EXPECTED.length / 2).toBe(14 + 576);
  });

  it('port unreachable: Ethernet padding is not quoted (odd-length quote)', () => {
    expect(F.PADDED_ORIG.length / 2).toBe(60);
    check(F.PADDED_ORIG, F.PORT_UNREACH_EXPECTED, icmp.ICMP_DEST_UNREACH, icmp.ICMP_PORT_UNREACH, 0);
  });

  it('quotes the original options too', () => {
    check(F.OPTIONS_ORIG, F.OPTIONS_TTL_EXPECTED, icmp.ICMP_TIME_EXCEEDED, 0, 0);
  });

  it('cuts the quote to the slot capacity and never writes past it', () => {
    const { u8, off, len } = place(F.BIG_ORIG, 64, 2048);
    const orig = Uint8Array.from(u8.subarray(off + 14, off + len));
    const cap = off + 14 + 28 + 101;
    const n = icmp.emitIcmpErrorInPlace(u8, off, len, cap, 3, 4, 1450, R, HOST);
    expect(n).toBe(14 + 28 + 101);
    expect(off + n).toBe(cap);
    expect(ip4.ip4Check(u8, off + 14, n - 14)).toBe(0);
    expect(icmp.icmpCheck(u8, off + 34, n - 34)).toBe(0);
    expect(toHex(u8, off + 42, 101)).toBe(toHex(orig, 0, 101));
    // the rest of the original frame after cap is untouched (it was never moved there)
    expect(toHex(u8, cap, 50)).toBe(F.BIG_ORIG.slice(2 * (cap - off), 2 * (cap - off) + 100));
  });

  it('refuses (returns 0, writes nothing) when the slot cannot hold the original header', () => {
    const { u8, off, len } = place(F.OPTIONS_ORIG, 64, 2048);
    const before = Uint8Array.from(u8);
    expect(icmp.emitIcmpErrorInPlace(u8, off, len, off + 14 + 28 + 31, 11, 0, 0, R, HOST)).toBe(0);
    expect(icmp.emitIcmpErrorInPlace(u8, off, 33, off + 1000, 11, 0, 0, R, HOST)).toBe(0);
    expect(u8).toEqual(before);
    expect(icmp.emitIcmpErrorInPlace(u8, off, len, off + 14 + 28 + 32, 11, 0, 0, R, HOST)).toBe(74);
  });

  it('property: any checked datagram, any capacity: valid error, exact quote, writes only in the slot', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 15 }),
        fc.integer({ min: 0, max: 1480 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 1600 }),
        fc.nat(0xffff),
        (ihl, payload, pad, capExtra, seed) => {
          const off = 32;
          const u8 = new Uint8Array(off + 14 + 60 + 1480 + 30 + 8).fill(FILL);
          const hl = ihl * 4;
          const tot = hl + payload;
          const ipo = off + 14;
          for (let i = off; i < ipo + tot + pad; i++) u8[i] = (i * 31 + seed) & 0xff;
          u8[ipo] = 0x40 | ihl;
          u8[ipo + 2] = tot >>> 8;
          u8[ipo + 3] = tot & 0xff;
          ip4.ip4SetChecksum(u8, ipo);
          const frameLen = 14 + tot + pad;
          expect(ip4.ip4Check(u8, ipo, frameLen - 14)).toBe(0);
          const orig = Uint8Array.from(u8.subarray(ipo, ipo + tot));
          const cap = Math.min(u8.length - 8, off + capExtra);
          const before = Uint8Array.from(u8);
          const n = icmp.emitIcmpErrorInPlace(u8, off, frameLen, cap, 11, 0, 0, R, HOST);
          expect(toHex(u8, 0, off)).toBe(toHex(before, 0, off));
          expect(toHex(u8, cap)).toBe(toHex(before, cap));
          if (n === 0) {
            expect(u8).toEqual(before);
            expect(cap - ipo - 28).toBeLessThan(hl);
            return;
          }
          expect(off + n).toBeLessThanOrEqual(cap);
          expect(n - 14).toBeLessThanOrEqual(576);
          const q = n - 42;
          expect(q).toBe(Math.min(tot, 548, cap - ipo - 28));
          expect(ip4.ip4Check(u8, ipo, n - 14)).toBe(0);
          expect(ip4.ip4Dst(u8, ipo)).toBe(ip4.ip4Src(orig, 0));
          expect(onesSum(u8, ipo + 20, n - 34)).toBe(0xffff);
          expect(toHex(u8, ipo + 28, q)).toBe(toHex(orig, 0, q));
        },
      ),
      { numRuns: 300 },
    );
  });
});
