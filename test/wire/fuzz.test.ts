// Property tests over arbitrary and mutated bytes: every checked view and parse* only returns (never
// throws), reads only inside the window it was given, and accepts only what is actually valid.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as arp from '../../src/dataplane/wire/arp.js';
import { onesSum } from '../../src/dataplane/wire/checksum.js';
import * as eth from '../../src/dataplane/wire/ethernet.js';
import * as icmp from '../../src/dataplane/wire/icmp4.js';
import * as ip4 from '../../src/dataplane/wire/ipv4.js';
import * as tcp from '../../src/dataplane/wire/tcp.js';
import * as udp from '../../src/dataplane/wire/udp.js';
import * as F from './fixtures.js';
import { guarded } from './helpers.js';

type Check = (u8: Uint8Array, off: number, len: number) => number;
type Parse = (u8: Uint8Array, off: number, len: number) => { err: number; errName: string } | null;

const rd16 = (u8: Uint8Array, o: number): number => (u8[o] << 8) | u8[o + 1];

/** name, checked view, parse, the header offset inside a fixture frame, and what OK must imply */
const views: Array<{
  name: string;
  check: Check;
  parse: Parse;
  names: readonly string[];
  hdr: number;
  valid: (u8: Uint8Array, off: number, len: number) => boolean;
}> = [
  {
    name: 'ethernet',
    check: eth.ethCheck,
    parse: eth.parseEthernet,
    names: eth.ETH_ERR_NAMES,
    hdr: 0,
    valid: (u8, o, len) => len >= 14 && rd16(u8, o + 12) !== 0x8100 && rd16(u8, o + 12) !== 0x88a8,
  },
  {
    name: 'arp',
    check: arp.arpCheck,
    parse: arp.parseArp,
    names: arp.ARP_ERR_NAMES,
    hdr: 14,
    valid: (u8, o, len) =>
      len >= 28 &&
      rd16(u8, o) === 1 &&
      rd16(u8, o + 2) === 0x0800 &&
      u8[o + 4] === 6 &&
      u8[o + 5] === 4 &&
      (rd16(u8, o + 6) === 1 || rd16(u8, o + 6) === 2),
  },
  {
    name: 'ipv4',
    check: ip4.ip4Check,
    parse: ip4.parseIpv4,
    names: ip4.IP4_ERR_NAMES,
    hdr: 14,
    valid: (u8, o, len) => {
      const hl = (u8[o] & 15) * 4;
      const tot = rd16(u8, o + 2);
      return u8[o] >> 4 === 4 && hl >= 20 && hl <= tot && tot <= len && onesSum(u8, o, hl) === 0xffff;
    },
  },
  {
    name: 'icmp',
    check: icmp.icmpCheck,
    parse: icmp.parseIcmp,
    names: icmp.ICMP_ERR_NAMES,
    hdr: 34,
    valid: (u8, o, len) => len >= 8 && onesSum(u8, o, len) === 0xffff,
  },
  {
    name: 'udp',
    check: udp.udpCheck,
    parse: udp.parseUdp,
    names: udp.UDP_ERR_NAMES,
    hdr: 34,
    valid: (u8, o, len) => len >= 8 && rd16(u8, o + 4) >= 8 && rd16(u8, o + 4) <= len,
  },
  {
    name: 'tcp',
    check: tcp.tcpCheck,
    parse: tcp.parseTcp,
    names: tcp.TCP_ERR_NAMES,
    hdr: 34,
    valid: (u8, o, len) => len >= 20 && u8[o + 12] >> 4 >= 5 && (u8[o + 12] >> 4) * 4 <= len,
  },
];

const FIXTURES = [
  F.ARP_REQUEST,
  F.ARP_REPLY_PADDED,
  F.UDP_FRAME,
  F.UDP_OPTIONS_FRAME,
  F.TCP_SYN_FRAME,
  F.TCP_DATA_FRAME,
  F.ICMP_ECHO_FRAME,
  F.VLAN_FRAME,
  F.FRAG_LATER_FRAME,
  F.TTL_EXPECTED,
].map((h) => F.hex(h));

/** Arbitrary bytes, or a fixture with a few bytes changed: reaches the deep branches too. */
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 120 }),
  fc
    .record({
      f: fc.constantFrom(...FIXTURES),
      edits: fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 3 }),
      pre: fc.constantFrom(0, 0, 0, 1, 5),
    })
    .map(({ f, edits, pre }) => {
      const u8 = new Uint8Array(pre + f.length);
      u8.set(f, pre);
      for (const [i, v] of edits) u8[i % u8.length] = v;
      return u8;
    }),
);

/**
 * bytes plus an offset and length that may lie partly or wholly outside the array; half the time the
 * window starts where the header sits in an unshifted fixture and runs to the end of the bytes.
 */
const input = (hdr: number) =>
  bytes.chain((u8) =>
    fc.oneof(
      fc.record({
        u8: fc.constant(u8),
        off: fc.integer({ min: -4, max: u8.length + 4 }),
        len: fc.integer({ min: -4, max: u8.length + 8 }),
      }),
      fc.record({ u8: fc.constant(u8), off: fc.constant(hdr), len: fc.constant(u8.length - hdr) }),
    ),
  );

describe('checked views and parsers over arbitrary input', () => {
  for (const v of views) {
    it(`${v.name}: returns a named code, reads only its window, accepts only valid headers`, () => {
      let accepted = 0;
      fc.assert(
        fc.property(input(v.hdr), ({ u8, off, len }) => {
          const { view, bad } = guarded(u8, off, off + len);
          const code = v.check(view, off, len);
          expect(bad).toEqual([]);
          expect(Number.isInteger(code) && code >= 0 && code < v.names.length).toBe(true);
          if (code === 0) {
            accepted++;
            expect(off >= 0 && off + len <= u8.length).toBe(true);
            expect(v.valid(u8, off, len)).toBe(true);
          }
          const rec = v.parse(u8, off, len);
          if (rec !== null) {
            expect(rec.err).toBe(code);
            expect(rec.errName).toBe(v.names[code]);
          } else {
            expect(code).toBe(1); // every module's code 1 is "short"
          }
        }),
        { numRuns: 1500 },
      );
      expect(accepted).toBeGreaterThan(0); // the generator does reach the accepting path
    });

    it(`${v.name}: fixture headers at their offset, cut at every length`, () => {
      for (const f of FIXTURES) {
        for (let len = 0; len <= f.length - v.hdr; len++) {
          const code = v.check(f, v.hdr, len);
          if (code === 0) expect(v.valid(f, v.hdr, len)).toBe(true);
          expect(() => v.parse(f, v.hdr, len)).not.toThrow();
        }
      }
    });
  }

  it('arpIsProbe / arpIsGratuitous / icmpErrorAllowed never throw on checked input', () => {
    fc.assert(
      fc.property(bytes, (u8) => {
        if (arp.arpCheck(u8, 14, u8.length - 14) === 0) {
          expect(typeof arp.arpIsProbe(u8, 14)).toBe('boolean');
          expect(typeof arp.arpIsGratuitous(u8, 14)).toBe('boolean');
        }
        if (eth.ethCheck(u8, 0, u8.length) === 0 && ip4.ip4Check(u8, 14, u8.length - 14) === 0) {
          const { view, bad } = guarded(u8, 0, u8.length);
          expect(typeof icmp.icmpErrorAllowed(view, 0, 14)).toBe('boolean');
          expect(bad).toEqual([]);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
