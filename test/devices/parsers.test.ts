// Property tests of what the devices parse from untrusted input: the virtio-net header in front of
// every frame from a TAP with offloads or a packet socket (finishVnet), and the VXLAN frames the UDP
// uplink turns into datagrams (vxlanPayload) and the outer headers it synthesizes in front of
// received ones. Whatever the bytes, they only return or drop (counted), never throw, never let a
// frame longer than its slot through.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Batch, HEADROOM, PKT_GSO } from '../../src/dataplane/graph/packet.js';
import { PortInput } from '../../src/dataplane/devices/device.js';
import { finishVnet } from '../../src/dataplane/devices/fd.js';
import { UDP_OUTER_LEN, synthVxlanOuter, vxlanFrame, vxlanPayload } from '../../src/dataplane/devices/udp.js';
import { VNET_HDR_LEN } from '../../src/dataplane/wire/virtio.js';

function portInput(): PortInput {
  const pi = new PortInput();
  pi.c = new Float64Array(pi.decl.reasons!.length);
  pi.base = 0;
  return pi;
}

const SLOT = 4096;

describe('finishVnet (virtio-net header of received frames)', () => {
  const frame = fc.record({
    hdr: fc.uint8Array({ minLength: VNET_HDR_LEN, maxLength: VNET_HDR_LEN }),
    // biased toward the interesting header fields: gso_type 0/1/0x81, flags 0/1
    gsoType: fc.constantFrom(0, 1, 0x81, 3, 4, 255),
    flags: fc.constantFrom(0, 1, 2, 255),
    body: fc.uint8Array({ minLength: 0, maxLength: 200 }),
    // what the kernel reported: may exceed the slot (truncated) or be shorter than the header
    len: fc.integer({ min: 0, max: SLOT + 100 }),
  });

  it('only returns or drops: kept frames fit their slot, drops are counted under one reason each', () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 8 }), fc.boolean(), (frames, gso) => {
        const b = new Batch(8, undefined, 0, SLOT);
        const pi = portInput();
        frames.forEach((f, i) => {
          const hdr = b.off[i] - VNET_HDR_LEN;
          b.u8.set(f.hdr, hdr);
          b.u8[hdr] = f.flags;
          b.u8[hdr + 1] = f.gsoType;
          b.u8.set(f.body.subarray(0, Math.min(f.body.length, b.slotData)), b.off[i]);
          b.len[i] = f.len;
        });
        const n = frames.length;
        finishVnet(b, 0, n, gso, pi);
        pi.truncated(b.claim(n, 1, 0, 0, gso));
        for (let i = 0; i < b.count; i++) {
          expect(b.len[i]).toBeLessThanOrEqual(b.slotData);
          expect(b.off[i]).toBe(i * SLOT + HEADROOM);
          if ((b.flags[i] & PKT_GSO) !== 0) {
            expect(gso).toBe(true);
            expect(b.gso[i]).toBeGreaterThan(0);
          }
        }
        const dropped = pi.c[0] + pi.c[1] + pi.c[2];
        expect(pi.c.every((v) => v >= 0)).toBe(true);
        expect(dropped).toBe(n - b.count);
      }),
      { numRuns: 500 },
    );
  });
});

describe('UDP uplink framing', () => {
  it('vxlanPayload: any bytes give -1 or a payload inside the frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), fc.boolean(), (bytes, vx) => {
        const u8 = new Uint8Array(bytes.length + 16);
        u8.set(bytes, 8);
        if (vx && bytes.length > 42) {
          // make it look like IPv4/UDP to 4789 more often
          u8[8 + 12] = 8;
          u8[8 + 13] = 0;
          u8[8 + 14] = 0x45;
          u8[8 + 23] = 17;
          u8[8 + 36] = 4789 >> 8;
          u8[8 + 37] = 4789 & 255;
        }
        const at = vxlanPayload(u8, 8, bytes.length, 4789);
        if (at >= 0) {
          expect(at).toBeGreaterThanOrEqual(8 + UDP_OUTER_LEN);
          expect(at + vxlanFrame.len).toBeLessThanOrEqual(8 + bytes.length);
        } else expect(at).toBe(-1);
      }),
      { numRuns: 2000 },
    );
  });

  it('a synthesized outer header parses back to the payload it was written in front of', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1500 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (payloadLen, src, sport, dst) => {
          const u8 = new Uint8Array(64 + UDP_OUTER_LEN + payloadLen).fill(0xa5);
          const mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
          const len = synthVxlanOuter(u8, 64, payloadLen, mac, 0, src, sport, dst, 4789);
          expect(len).toBe(UDP_OUTER_LEN + payloadLen);
          expect(vxlanPayload(u8, 64, len, 4789)).toBe(64 + UDP_OUTER_LEN);
          expect(vxlanFrame.len).toBe(payloadLen);
          expect(vxlanFrame.dst).toBe(dst >>> 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
