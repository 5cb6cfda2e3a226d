import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { internetChecksum, onesSum } from '../../src/dataplane/wire/checksum.js';
import * as ip4 from '../../src/dataplane/wire/ipv4.js';
import * as F from './fixtures.js';
import { FILL, filled, ip, place, toHex } from './helpers.js';

const A = ip('10.65.0.24');
const B = ip('10.65.1.7');

/** IPv4 header offset and bytes available after it, for a fixture placed at the default offset. */
function ipOf(h: string): { u8: Uint8Array; o: number; avail: number } {
  const { u8, off, len } = place(h);
  return { u8, o: off + 14, avail: len - 14 };
}

function csum(u8: Uint8Array, o: number): number {
  return (u8[o + ip4.IP4_CSUM] << 8) | u8[o + ip4.IP4_CSUM + 1];
}

describe('ipv4 readers and parse', () => {
  it('reads a plain UDP datagram', () => {
    const { u8, o, avail } = ipOf(F.UDP_FRAME);
    expect(ip4.ip4Check(u8, o, avail)).toBe(ip4.IP4_OK);
    expect(ip4.ip4Src(u8, o)).toBe(A);
    expect(ip4.ip4Dst(u8, o)).toBe(B);
    expect(ip4.ip4Hlen(u8, o)).toBe(20);
    expect(ip4.ip4TotalLen(u8, o)).toBe(41);
    expect(ip4.ip4Proto(u8, o)).toBe(ip4.IPPROTO_UDP);
    expect(ip4.ip4Ttl(u8, o)).toBe(64);
    expect(ip4.ip4IsFragment(u8, o)).toBe(false);
    expect(ip4.parseIpv4(u8, o, avail)).toEqual({
      version: 4,
      ihl: 5,
      hlen: 20,
      tos: 0,
      totalLen: 41,
      id: 0x1234,
      df: true,
      mf: false,
      fragOffset: 0,
      ttl: 64,
      proto: 17,
      checksum: 0x12f0,
      src: A,
      dst: B,
      options: new Uint8Array(0),
      payloadOff: o + 20,
      payloadLen: 21,
      err: 0,
      errName: 'ok',
    });
  });

  it('reads addresses with the top bit set as unsigned', () => {
    const u8 = filled(40);
    ip4.emitIp4Header(u8, 0, 0xfffffffe, 0xe0000001, 17, 20, 1, 0, 0, 0);
    expect(ip4.ip4Src(u8, 0)).toBe(0xfffffffe);
    expect(ip4.ip4Dst(u8, 0)).toBe(0xe0000001);
  });

  it('skips options: the payload starts at IHL*4', () => {
    const { u8, o, avail } = ipOf(F.UDP_OPTIONS_FRAME);
    expect(ip4.ip4Check(u8, o, avail)).toBe(ip4.IP4_OK);
    expect(ip4.ip4Hlen(u8, o)).toBe(32);
    const rec = ip4.parseIpv4(u8, o, avail)!;
    expect(rec.ihl).toBe(8);
    // RR option: type 7, length 11, pointer 4, two routers, then end-of-list padding
    expect(toHex(rec.options)).toBe('070b040a0000010a00000200');
    expect(rec.payloadOff).toBe(o + 32);
    // UDP source port 1234 right at the payload offset
    expect((u8[rec.payloadOff] << 8) | u8[rec.payloadOff + 1]).toBe(1234);
    expect(rec.payloadLen).toBe(18);
  });

  it('flags fragments: MF set, or a non-zero offset', () => {
    const first = ipOf(F.FRAG_FIRST_FRAME);
    expect(ip4.ip4Check(first.u8, first.o, first.avail)).toBe(ip4.IP4_OK);
    expect(ip4.ip4IsFragment(first.u8, first.o)).toBe(true);
    expect(ip4.ip4IsLaterFragment(first.u8, first.o)).toBe(false);
    expect(ip4.parseIpv4(first.u8, first.o, first.avail)).toMatchObject({ mf: true, fragOffset: 0 });
    const later = ipOf(F.FRAG_LATER_FRAME);
    expect(ip4.ip4IsFragment(later.u8, later.o)).toBe(true);
    expect(ip4.ip4IsLaterFragment(later.u8, later.o)).toBe(true);
    expect(ip4.parseIpv4(later.u8, later.o, later.avail)).toMatchObject({ mf: false, fragOffset: 6 });
    const df = ipOf(F.UDP_FRAME);
    expect(ip4.ip4IsFragment(df.u8, df.o)).toBe(false);
  });
});

describe('ip4Check edge cases', () => {
  /** Applies `edit` to the UDP fixture's IP header; with `fix`, recomputes the checksum after. */
  function edited(
    edit: (u8: Uint8Array, o: number) => void,
    fix = true,
  ): { u8: Uint8Array; o: number; avail: number } {
    const r = ipOf(F.UDP_FRAME);
    edit(r.u8, r.o);
    if (fix && ip4.ip4Hlen(r.u8, r.o) >= 20) ip4.ip4SetChecksum(r.u8, r.o);
    return r;
  }

  it('short: fewer than 20 bytes, or a window outside the array', () => {
    const { u8, o } = ipOf(F.UDP_FRAME);
    expect(ip4.ip4Check(u8, o, 19)).toBe(ip4.IP4_ERR_SHORT);
    expect(ip4.ip4Check(u8, o, -1)).toBe(ip4.IP4_ERR_SHORT);
    expect(ip4.ip4Check(u8, u8.length - 19, 20)).toBe(ip4.IP4_ERR_SHORT);
    expect(ip4.parseIpv4(u8, o, 19)).toBeNull();
  });

  it('bad version', () => {
    const r = edited((u8, o) => (u8[o] = 0x65));
    expect(ip4.ip4Check(r.u8, r.o, r.avail)).toBe(ip4.IP4_ERR_VERSION);
  });

  it('IHL below 5', () => {
    for (const ihl of [0, 1, 4]) {
      const r = edited((u8, o) => (u8[o] = 0x40 | ihl));
      expect(ip4.ip4Check(r.u8, r.o, r.avail)).toBe(ip4.IP4_ERR_IHL);
      expect(ip4.parseIpv4(r.u8, r.o, r.avail)!.options.length).toBe(0);
    }
  });

  it('IHL beyond the frame', () => {
    const r = edited((u8, o) => (u8[o] = 0x4f)); // 60-byte header, 41 bytes there
    expect(ip4.ip4Check(r.u8, r.o, r.avail)).toBe(ip4.IP4_ERR_HLEN_BEYOND);
    const rec = ip4.parseIpv4(r.u8, r.o, r.avail)!;
    expect(rec.errName).toBe('header-beyond-frame');
    expect(rec.options.length).toBe(0);
  });

  it('total length shorter than the header', () => {
    const r = edited((u8, o) => {
      u8[o + 2] = 0;
      u8[o + 3] = 19;
    });
    expect(ip4.ip4Check(r.u8, r.o, r.avail)).toBe(ip4.IP4_ERR_TOTLEN_SHORT);
    const opt = ipOf(F.UDP_OPTIONS_FRAME);
    opt.u8[opt.o + 3] = 28; // < IHL*4 = 32
    ip4.ip4SetChecksum(opt.u8, opt.o);
    expect(ip4.ip4Check(opt.u8, opt.o, opt.avail)).toBe(ip4.IP4_ERR_TOTLEN_SHORT);
  });

  it('total length beyond the frame: truncated', () => {
    const { u8, o, avail } = ipOf(F.UDP_FRAME);
    expect(ip4.ip4Check(u8, o, avail - 1)).toBe(ip4.IP4_ERR_TOTLEN_BEYOND);
    expect(ip4.parseIpv4(u8, o, avail - 1)).toMatchObject({ errName: 'truncated', payloadLen: 20 });
  });

  it('frames longer than the total length (Ethernet padding) are fine', () => {
    const { u8, o, avail } = ipOf(F.UDP_FRAME);
    expect(ip4.ip4Check(u8, o, avail + 19)).toBe(ip4.IP4_OK);
    expect(ip4.parseIpv4(u8, o, avail + 19)!.payloadLen).toBe(21);
  });

  it('bad checksum, in the fixed header or in the options', () => {
    const r = edited((u8, o) => (u8[o + ip4.IP4_TTL] = 63), false);
    expect(ip4.ip4Check(r.u8, r.o, r.avail)).toBe(ip4.IP4_ERR_CHECKSUM);
    const opt = ipOf(F.UDP_OPTIONS_FRAME);
    opt.u8[opt.o + 25] ^= 1;
    expect(ip4.ip4Check(opt.u8, opt.o, opt.avail)).toBe(ip4.IP4_ERR_CHECKSUM);
  });

  it('names every code for counters', () => {
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_CHECKSUM]).toBe('bad-checksum');
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_SHORT]).toBe('short');
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_VERSION]).toBe('bad-version');
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_IHL]).toBe('bad-ihl');
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_HLEN_BEYOND]).toBe('header-beyond-frame');
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_TOTLEN_SHORT]).toBe('total-length-short');
    expect(ip4.IP4_ERR_NAMES[ip4.IP4_ERR_TOTLEN_BEYOND]).toBe('truncated');
    expect(ip4.IP4_ERR_NAMES.length).toBe(8);
    for (const n of ip4.IP4_ERR_NAMES) expect(n).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });
});

describe('ipv4 emit and rewrites', () => {
  it('emits the UDP fixture header byte for byte', () => {
    const u8 = filled(64);
    ip4.emitIp4Header(u8, 5, A, B, ip4.IPPROTO_UDP, 41, 64, 0x1234, ip4.IP4_DF, 0);
    expect(toHex(u8, 5, 20)).toBe(F.UDP_FRAME.slice(28, 68));
    expect(u8[4]).toBe(FILL);
    expect(u8[25]).toBe(FILL);
  });

  it('emits a header with TOS, fragment word and the high bits of every field', () => {
    const u8 = filled(20);
    ip4.emitIp4Header(u8, 0, A, B, 1, 0xfedc, 255, 0xabcd, ip4.IP4_MF | 0x1fff, 0xc8);
    expect(ip4.ip4Check(u8, 0, 20)).toBe(ip4.IP4_ERR_TOTLEN_BEYOND); // header correct, checksum too
    expect(onesSum(u8, 0, 20)).toBe(0xffff);
    expect(ip4.parseIpv4(u8, 0, 20)).toMatchObject({
      tos: 0xc8,
      totalLen: 0xfedc,
      id: 0xabcd,
      mf: true,
      df: false,
      fragOffset: 0x1fff,
      ttl: 255,
      proto: 1,
    });
  });

  it('ip4SetChecksum covers the options', () => {
    const { u8, o, avail } = ipOf(F.UDP_OPTIONS_FRAME);
    const want = csum(u8, o);
    u8[o + 10] = 0x5a;
    u8[o + 11] = 0x5a;
    ip4.ip4SetChecksum(u8, o);
    expect(csum(u8, o)).toBe(want);
    expect(ip4.ip4Check(u8, o, avail)).toBe(0);
  });

  it('decrements TTL with a valid checksum (fixture)', () => {
    const { u8, o, avail } = ipOf(F.UDP_OPTIONS_FRAME);
    ip4.ip4DecTtl(u8, o);
    expect(ip4.ip4Ttl(u8, o)).toBe(16);
    expect(ip4.ip4Check(u8, o, avail)).toBe(0);
  });

  it('sets source and destination with a valid checksum (fixture)', () => {
    const { u8, o, avail } = ipOf(F.TCP_SYN_FRAME);
    ip4.ip4SetSrc(u8, o, ip('192.168.0.10'));
    ip4.ip4SetDst(u8, o, 0xfffffffe);
    expect(ip4.ip4Src(u8, o)).toBe(ip('192.168.0.10'));
    expect(ip4.ip4Dst(u8, o)).toBe(0xfffffffe);
    expect(ip4.ip4Check(u8, o, avail)).toBe(0);
  });

  /** A random valid header, options included (biased to 0x00/0xff bytes). */
  const header = fc
    .record({
      ihl: fc.integer({ min: 5, max: 15 }),
      body: fc.uint8Array({ minLength: 60, maxLength: 60 }),
      byte: fc.constantFrom(0, 0xff),
      useByte: fc.boolean(),
    })
    .map(({ ihl, body, byte, useByte }) => {
      const u8 = useByte ? new Uint8Array(60).fill(byte) : Uint8Array.from(body);
      u8[0] = 0x40 | ihl;
      u8[2] = 0;
      u8[3] = ihl * 4;
      ip4.ip4SetChecksum(u8, 0);
      return u8;
    });

  function fullRecompute(u8: Uint8Array): number {
    const c = Uint8Array.from(u8);
    c[10] = 0;
    c[11] = 0;
    return internetChecksum(c, 0, ip4.ip4Hlen(c, 0));
  }

  it('property: ip4DecTtl == full recompute', () => {
    fc.assert(
      fc.property(header, fc.integer({ min: 1, max: 255 }), (u8, ttl) => {
        u8[8] = ttl;
        ip4.ip4SetChecksum(u8, 0);
        ip4.ip4DecTtl(u8, 0);
        expect(u8[8]).toBe(ttl - 1);
        expect(csum(u8, 0)).toBe(fullRecompute(u8));
        expect(ip4.ip4Check(u8, 0, 60)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('property: ip4SetSrc / ip4SetDst == full recompute', () => {
    const addr = fc.oneof(fc.constantFrom(0, 0xffffffff, 0xffff0000, 0x0000ffff), fc.nat(0xffffffff));
    fc.assert(
      fc.property(header, addr, addr, (u8, s, d) => {
        ip4.ip4SetSrc(u8, 0, s);
        expect(csum(u8, 0)).toBe(fullRecompute(u8));
        ip4.ip4SetDst(u8, 0, d);
        expect(csum(u8, 0)).toBe(fullRecompute(u8));
        expect(ip4.ip4Src(u8, 0)).toBe(s >>> 0);
        expect(ip4.ip4Dst(u8, 0)).toBe(d >>> 0);
        expect(ip4.ip4Check(u8, 0, 60)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });
});
