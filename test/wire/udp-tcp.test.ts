import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as ip4 from '../../src/dataplane/wire/ipv4.js';
import { ICMP_CSUM, ICMP_ID, icmpCheck } from '../../src/dataplane/wire/icmp4.js';
import * as tcp from '../../src/dataplane/wire/tcp.js';
import * as udp from '../../src/dataplane/wire/udp.js';
import { l4SetSource } from '../../src/dataplane/wire/l4.js';
import * as F from './fixtures.js';
import { FILL, filled, ip, place, toHex } from './helpers.js';

function at(h: string): { u8: Uint8Array; o: number; l4: number; l4len: number } {
  const { u8, off } = place(h);
  const o = off + 14;
  const hl = ip4.ip4Hlen(u8, o);
  return { u8, o, l4: o + hl, l4len: ip4.ip4TotalLen(u8, o) - hl };
}
const rd16 = (u8: Uint8Array, o: number): number => (u8[o] << 8) | u8[o + 1];

describe('udp', () => {
  it('parses the fixture and verifies its checksum', () => {
    const { u8, o, l4, l4len } = at(F.UDP_FRAME);
    expect(udp.udpCheck(u8, l4, l4len)).toBe(udp.UDP_OK);
    expect(udp.parseUdp(u8, l4, l4len)).toEqual({
      sport: 40000,
      dport: 53,
      len: 21,
      checksum: 0x558f,
      payloadOff: l4 + 8,
      err: 0,
      errName: 'ok',
    });
    expect(udp.udpChecksum(u8, o)).toBe(0x558f);
    expect(udp.udpChecksumOk(u8, o)).toBe(true);
    u8[l4 + 12] ^= 1;
    expect(udp.udpChecksumOk(u8, o)).toBe(false);
  });

  it('computes over the right payload when the IP header has options', () => {
    const { u8, o, l4, l4len } = at(F.UDP_OPTIONS_FRAME);
    expect(udp.udpCheck(u8, l4, l4len)).toBe(0);
    expect(udp.udpSport(u8, l4)).toBe(1234);
    expect(udp.udpDport(u8, l4)).toBe(4321);
    const want = rd16(u8, l4 + udp.UDP_CSUM);
    expect(udp.udpChecksum(u8, o)).toBe(want);
    u8[l4 + 6] = 0xa5;
    udp.udpSetChecksum(u8, o);
    expect(rd16(u8, l4 + 6)).toBe(want);
  });

  it('treats checksum 0 as none', () => {
    const { u8, o, l4 } = at(F.UDP_FRAME);
    u8[l4 + 6] = 0;
    u8[l4 + 7] = 0;
    expect(udp.udpChecksumOk(u8, o)).toBe(true);
    udp.l4SetPort(u8, l4, udp.UDP_SPORT, 1, udp.UDP_CSUM, true);
    expect(udp.udpSport(u8, l4)).toBe(1);
    expect(rd16(u8, l4 + 6)).toBe(0);
  });

  it('refuses short headers and lying lengths', () => {
    const { u8, l4, l4len } = at(F.UDP_FRAME);
    expect(udp.udpCheck(u8, l4, 7)).toBe(udp.UDP_ERR_SHORT);
    expect(udp.parseUdp(u8, l4, 7)).toBeNull();
    expect(udp.udpCheck(u8, l4, l4len - 1)).toBe(udp.UDP_ERR_LEN);
    expect(udp.udpCheck(u8, l4, l4len + 3)).toBe(udp.UDP_OK);
    u8[l4 + 5] = 7;
    expect(udp.udpCheck(u8, l4, l4len)).toBe(udp.UDP_ERR_LEN);
    expect(udp.parseUdp(u8, l4, l4len)!.errName).toBe('bad-length');
  });

  it('emits a header byte for byte', () => {
    const u8 = filled(16);
    udp.emitUdpHeader(u8, 4, 40000, 53, 21, 0x558f);
    expect(toHex(u8, 4, 8)).toBe(F.UDP_FRAME.slice(68, 84));
    expect(u8[3]).toBe(FILL);
    expect(u8[12]).toBe(FILL);
  });

  it('a port change whose checksum computes to 0 is sent as 0xffff (RFC 768)', () => {
    const { u8, o, l4 } = at(F.UDP_FRAME);
    // Choose the source port that makes the full checksum 0: sum of everything else + port = 0xffff.
    udp.l4SetPort(u8, l4, udp.UDP_SPORT, 0, udp.UDP_CSUM, true);
    expect(udp.udpChecksumOk(u8, o)).toBe(true);
    const rest = ~udp.udpChecksum(u8, o) & 0xffff || 0xffff; // fold of the sum without the port
    const port = 0xffff - rest;
    udp.l4SetPort(u8, l4, udp.UDP_SPORT, port, udp.UDP_CSUM, true);
    expect(rd16(u8, l4 + 6)).toBe(0xffff);
    expect(udp.udpChecksum(u8, o)).toBe(0xffff);
    expect(udp.udpChecksumOk(u8, o)).toBe(true);
  });
});

describe('tcp', () => {
  it('parses a SYN with options and verifies its checksum', () => {
    const { u8, o, l4, l4len } = at(F.TCP_SYN_FRAME);
    expect(tcp.tcpCheck(u8, l4, l4len)).toBe(tcp.TCP_OK);
    const rec = tcp.parseTcp(u8, l4, l4len)!;
    expect(rec).toMatchObject({
      sport: 43210,
      dport: 80,
      seq: 0x01020304,
      ack: 0,
      hlen: 40,
      flags: tcp.TCP_SYN,
      window: 64240,
      urgent: 0,
      payloadOff: l4 + 40,
      err: 0,
    });
    expect(toHex(rec.options).slice(0, 8)).toBe('020405b4'); // MSS 1460
    expect(tcp.tcpChecksum(u8, o)).toBe(rec.checksum);
    expect(tcp.tcpChecksumOk(u8, o)).toBe(true);
  });

  it('verifies a segment with an odd-length payload and sets the checksum', () => {
    const { u8, o, l4, l4len } = at(F.TCP_DATA_FRAME);
    expect(l4len).toBe(34);
    expect(tcp.tcpFlags(u8, l4)).toBe(tcp.TCP_PSH | tcp.TCP_ACK_FLAG);
    expect(tcp.tcpSport(u8, l4)).toBe(43210);
    expect(tcp.tcpDport(u8, l4)).toBe(80);
    expect(tcp.tcpChecksumOk(u8, o)).toBe(true);
    const want = rd16(u8, l4 + tcp.TCP_CSUM);
    u8[l4 + 16] = 0;
    expect(tcp.tcpChecksumOk(u8, o)).toBe(false);
    tcp.tcpSetChecksum(u8, o);
    expect(rd16(u8, l4 + 16)).toBe(want);
  });

  it('refuses short headers and bad data offsets', () => {
    const { u8, l4, l4len } = at(F.TCP_SYN_FRAME);
    expect(tcp.tcpCheck(u8, l4, 19)).toBe(tcp.TCP_ERR_SHORT);
    expect(tcp.parseTcp(u8, l4, 19)).toBeNull();
    expect(tcp.tcpCheck(u8, l4, 39)).toBe(tcp.TCP_ERR_LEN);
    u8[l4 + 12] = 0x40;
    expect(tcp.tcpCheck(u8, l4, l4len)).toBe(tcp.TCP_ERR_DOFF);
    expect(tcp.parseTcp(u8, l4, l4len)).toMatchObject({
      errName: 'bad-data-offset',
      options: new Uint8Array(0),
    });
    u8[l4 + 12] = 0xf0;
    expect(tcp.tcpCheck(u8, l4, l4len)).toBe(tcp.TCP_ERR_LEN);
  });
});

describe('NAT rewrites keep L4 checksums right (property, vs full recompute)', () => {
  const port = fc.oneof(fc.constantFrom(0, 0xffff, 1), fc.nat(0xffff));
  const addr = fc.oneof(fc.constantFrom(0, 0xffffffff), fc.nat(0xffffffff));

  /** A random UDP or TCP datagram with a valid IP header and L4 checksum. */
  const datagram = fc
    .record({
      isUdp: fc.boolean(),
      ihl: fc.integer({ min: 5, max: 8 }),
      payload: fc.uint8Array({ maxLength: 64 }),
      hdr: fc.uint8Array({ minLength: 60, maxLength: 60 }),
      src: addr,
      dst: addr,
    })
    .map(({ isUdp, ihl, payload, hdr, src, dst }) => {
      const hl = ihl * 4;
      const l4h = isUdp ? 8 : 20;
      const tot = hl + l4h + payload.length;
      const u8 = new Uint8Array(tot);
      u8.set(hdr.subarray(0, hl + l4h));
      u8.set(payload, hl + l4h);
      ip4.emitIp4Header(u8, 0, src, dst, isUdp ? 17 : 6, tot, 64, 1, 0, 0);
      u8[0] = 0x40 | ihl;
      ip4.ip4SetChecksum(u8, 0);
      if (isUdp) {
        u8[hl + 4] = (tot - hl) >>> 8;
        u8[hl + 5] = (tot - hl) & 0xff;
        udp.udpSetChecksum(u8, 0);
      } else {
        u8[hl + 12] = 0x50;
        tcp.tcpSetChecksum(u8, 0);
      }
      return { u8, isUdp, l4: hl };
    });

  const expectValid = (u8: Uint8Array, isUdp: boolean, l4: number): void => {
    if (isUdp) {
      expect(rd16(u8, l4 + 6)).toBe(udp.udpChecksum(u8, 0));
      expect(udp.udpChecksumOk(u8, 0)).toBe(true);
    } else {
      expect(rd16(u8, l4 + 16)).toBe(tcp.tcpChecksum(u8, 0));
      expect(tcp.tcpChecksumOk(u8, 0)).toBe(true);
    }
  };

  it('l4SetPort (source and destination)', () => {
    fc.assert(
      fc.property(datagram, port, port, ({ u8, isUdp, l4 }, sp, dp) => {
        const cs = isUdp ? udp.UDP_CSUM : tcp.TCP_CSUM;
        udp.l4SetPort(u8, l4, 0, sp, cs, isUdp);
        expectValid(u8, isUdp, l4);
        tcp.l4SetPort(u8, l4, 2, dp, cs, isUdp);
        expectValid(u8, isUdp, l4);
        expect(rd16(u8, l4)).toBe(sp);
        expect(rd16(u8, l4 + 2)).toBe(dp);
      }),
      { numRuns: 1000 },
    );
  });

  it('ip4SetSrc/Dst + l4AdjustForAddr', () => {
    fc.assert(
      fc.property(datagram, addr, addr, ({ u8, isUdp, l4 }, s, d) => {
        const cs = isUdp ? udp.UDP_CSUM : tcp.TCP_CSUM;
        const os = ip4.ip4Src(u8, 0);
        ip4.ip4SetSrc(u8, 0, s);
        udp.l4AdjustForAddr(u8, l4, cs, os, s, isUdp);
        expectValid(u8, isUdp, l4);
        const od = ip4.ip4Dst(u8, 0);
        ip4.ip4SetDst(u8, 0, d);
        tcp.l4AdjustForAddr(u8, l4, cs, od, d, isUdp);
        expectValid(u8, isUdp, l4);
        expect(ip4.ip4Check(u8, 0, u8.length)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('l4SetSource (address and source port in one pass) = l4AdjustForAddr then l4SetPort', () => {
    fc.assert(
      fc.property(datagram, addr, port, ({ u8, isUdp, l4 }, s, sp) => {
        const cs = isUdp ? udp.UDP_CSUM : tcp.TCP_CSUM;
        const twoStep = u8.slice();
        const os = ip4.ip4Src(u8, 0);
        ip4.ip4SetSrc(twoStep, 0, s);
        udp.l4AdjustForAddr(twoStep, l4, cs, os, s, isUdp);
        udp.l4SetPort(twoStep, l4, 0, sp, cs, isUdp);
        ip4.ip4SetSrc(u8, 0, s);
        l4SetSource(u8, l4, cs, os, s, sp, isUdp);
        expectValid(u8, isUdp, l4);
        expect(toHex(u8)).toBe(toHex(twoStep));
      }),
      { numRuns: 1000 },
    );
  });

  it('ICMP echo id via l4SetPort', () => {
    const { u8, off, len } = place(F.ICMP_ECHO_FRAME);
    const o = off + 34;
    fc.assert(
      fc.property(port, (id) => {
        udp.l4SetPort(u8, o, ICMP_ID, id, ICMP_CSUM, false);
        expect(rd16(u8, o + ICMP_ID)).toBe(id);
        expect(icmpCheck(u8, o, len - 34)).toBe(0);
      }),
    );
    expect(ip('10.65.0.24')).toBe(ip4.ip4Src(u8, off + 14));
  });
});
