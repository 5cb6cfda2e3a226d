import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Batch, PKT_GSO } from '../../src/dataplane/graph/packet.js';
import { segmentTcp4 } from '../../src/dataplane/graph/nodes/segment.js';
import { emitEthernet, ETHERTYPE_IPV4 } from '../../src/dataplane/wire/ethernet.js';
import { emitIp4Header, IPPROTO_TCP, ip4Check, IP4_OK } from '../../src/dataplane/wire/ipv4.js';
import { tcpChecksumOk, TCP_ACK_FLAG, TCP_CWR, TCP_FIN, TCP_PSH } from '../../src/dataplane/wire/tcp.js';
import { l4AdjustPartialForAddr } from '../../src/dataplane/wire/l4.js';
import { pseudoHeaderSum, onesSum, fold } from '../../src/dataplane/wire/checksum.js';

const MAC = new Uint8Array([2, 0, 0, 0, 0, 1]);

/** A GSO super-frame in slot 0: Ethernet + IPv4 + TCP (20 B) + `payload` bytes 0..255 repeating. */
function superFrame(b: Batch, payload: number, flags: number): Uint8Array {
  b.reset();
  const i = b.push(new Uint8Array(0), 0, 0, 1, 0, 0);
  const off = b.off[i];
  const u8 = b.u8;
  emitEthernet(u8, off, MAC, MAC, ETHERTYPE_IPV4);
  emitIp4Header(u8, off + 14, 0x0a410002, 0xc000020a, IPPROTO_TCP, 40 + payload, 64, 0x1234, 0x4000, 0);
  const t = off + 34;
  u8.fill(0, t, t + 20);
  u8[t] = 0x9c; // sport 40000
  u8[t + 1] = 0x40;
  u8[t + 3] = 80;
  u8[t + 4] = 0; // seq 0x000003e8
  u8[t + 6] = 0x03;
  u8[t + 7] = 0xe8;
  u8[t + 12] = 5 << 4;
  u8[t + 13] = flags;
  const data = new Uint8Array(payload).map((_, k) => k & 255);
  u8.set(data, t + 20);
  b.len[i] = 54 + payload;
  b.flags[i] = PKT_GSO;
  return data;
}

describe('software TCP segmentation (GSO super-frames before encapsulation)', () => {
  it('cuts 3000 bytes at MSS 1400 into 1400 + 1400 + 200 with correct headers', () => {
    const b = new Batch(64, undefined, 0, 8192);
    const data = superFrame(b, 3000, TCP_ACK_FLAG | TCP_PSH | TCP_FIN | TCP_CWR);
    expect(segmentTcp4(b, 0, 1400)).toBe(2);
    expect(b.count).toBe(3);
    const order = [0, 1, 2];
    const got: number[] = [];
    order.forEach((i, k) => {
      const u8 = b.u8;
      const ip = b.off[i] + 14;
      const t = ip + 20;
      const chunk = [1400, 1400, 200][k];
      expect(b.len[i]).toBe(54 + chunk);
      expect(ip4Check(u8, ip, b.len[i] - 14)).toBe(IP4_OK);
      expect((u8[ip + 2] << 8) | u8[ip + 3]).toBe(40 + chunk);
      expect((u8[ip + 4] << 8) | u8[ip + 5]).toBe(0x1234 + k);
      const seq = ((u8[t + 4] << 24) | (u8[t + 5] << 16) | (u8[t + 6] << 8) | u8[t + 7]) >>> 0;
      expect(seq).toBe(1000 + k * 1400);
      const fl = u8[t + 13];
      expect((fl & TCP_CWR) !== 0).toBe(k === 0);
      expect((fl & (TCP_PSH | TCP_FIN)) !== 0).toBe(k === 2);
      expect(fl & TCP_ACK_FLAG).toBe(TCP_ACK_FLAG);
      expect(tcpChecksumOk(u8, ip)).toBe(true);
      got.push(...u8.subarray(t + 20, t + 20 + chunk));
    });
    expect(Uint8Array.from(got)).toEqual(data);
  });

  it('refuses when the batch has no room (the caller drops and counts)', () => {
    const b = new Batch(2, undefined, 0, 8192);
    superFrame(b, 3000, TCP_ACK_FLAG);
    expect(segmentTcp4(b, 0, 1000)).toBe(-1);
  });

  it('any payload and MSS: segments reassemble to the payload, every checksum valid', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6000 }), fc.integer({ min: 200, max: 1460 }), (payload, mss) => {
        const b = new Batch(64, undefined, 0, 8192);
        const data = superFrame(b, payload, TCP_ACK_FLAG | TCP_PSH);
        const extra = segmentTcp4(b, 0, mss);
        expect(extra).toBe(Math.max(1, Math.ceil(payload / mss)) - 1);
        const got: number[] = [];
        for (let i = 0; i < b.count; i++) {
          const ip = b.off[i] + 14;
          expect(tcpChecksumOk(b.u8, ip)).toBe(true);
          got.push(...b.u8.subarray(ip + 40, b.off[i] + b.len[i]));
        }
        expect(Uint8Array.from(got)).toEqual(data);
      }),
      { seed: 0x5e9, numRuns: 60 },
    );
  });
});

describe('partial (pseudo-header) checksum after an address change', () => {
  it('equals the partial sum computed from scratch with the new address', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (src, dst, nsrc) => {
          const u8 = new Uint8Array(20);
          const partial = (s: number) => fold(pseudoHeaderSum(s, dst, IPPROTO_TCP, 1500));
          u8[16] = partial(src) >>> 8;
          u8[17] = partial(src) & 255;
          l4AdjustPartialForAddr(u8, 0, 16, src, nsrc);
          const want = partial(nsrc);
          const got = (u8[16] << 8) | u8[17];
          // one's complement has two zeros: 0x0000 and 0xffff are the same sum
          expect(got === want || (got % 0xffff === 0 && want % 0xffff === 0)).toBe(true);
        },
      ),
      { seed: 0x5ea, numRuns: 500 },
    );
    void onesSum;
  });
});
