// The 24-byte virtio_net_hdr_v1_hash_tunnel writer (wire/virtio.ts vnetWriteVxlanTcp4Gso): byte
// vector into a buffer pre-filled with 0xa5 (every field written, hash and num_buffers zero), the
// layout constants, refusals for frames that are not VXLAN over IPv4 around TCP/IPv4, and random bytes:
// it only returns (0 or a header length inside the frame) and writes nothing but the 24 header bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_UDP_TUNNEL_IPV4,
  VNET_HDR_TNL_LEN,
  VNET_INNER_NH_OFFSET,
  VNET_OUTER_TH_OFFSET,
  vnetWriteVxlanTcp4Gso,
} from '../../src/dataplane/wire/virtio.js';

/** Outer Ethernet + IPv4 (ihl words) + UDP + VXLAN + inner Ethernet + IPv4 + TCP (doff words). */
function frame(outerIhl = 5, innerIhl = 5, doff = 5, payload = 3000): Uint8Array {
  const ot = 14 + outerIhl * 4;
  const inh = ot + 16 + 14;
  const it = inh + innerIhl * 4;
  const u8 = new Uint8Array(it + doff * 4 + payload);
  u8[12] = 8;
  u8[14] = 0x40 | outerIhl;
  u8[14 + 9] = 17;
  u8[inh - 2] = 8;
  u8[inh] = 0x40 | innerIhl;
  u8[inh + 9] = 6;
  u8[it + 12] = doff << 4;
  return u8;
}

describe('vnetWriteVxlanTcp4Gso', () => {
  it('writes every field of the 24-byte header (little endian), zero hash and num_buffers', () => {
    const f = frame(6, 5, 8);
    const buf = new Uint8Array(64 + f.length).fill(0xa5);
    buf.set(f, 64);
    const hdr = 40; // 24 bytes, ending at the frame
    expect(vnetWriteVxlanTcp4Gso(buf, hdr, 64, f.length, 1448)).toBe(14 + 24 + 16 + 14 + 20 + 32);
    const outerTh = 14 + 24;
    const innerNh = outerTh + 16 + 14;
    const innerTh = innerNh + 20;
    expect(Array.from(buf.subarray(hdr, hdr + VNET_HDR_TNL_LEN))).toEqual([
      VNET_F_NEEDS_CSUM,
      VNET_GSO_TCPV4 | VNET_GSO_UDP_TUNNEL_IPV4, // 0x21
      (innerTh + 32) & 255,
      (innerTh + 32) >> 8, // hdr_len
      1448 & 255,
      1448 >> 8, // gso_size
      innerTh & 255,
      innerTh >> 8, // csum_start
      16,
      0, // csum_offset: the TCP checksum
      0,
      0, // num_buffers
      0,
      0,
      0,
      0, // hash_value
      0,
      0, // hash_report
      0,
      0, // padding
      outerTh,
      0,
      innerNh,
      0,
    ]);
    expect(buf[hdr + VNET_OUTER_TH_OFFSET]).toBe(38);
    expect(buf[hdr + VNET_INNER_NH_OFFSET]).toBe(68);
    expect(buf[hdr - 1]).toBe(0xa5);
    expect(buf.subarray(64)).toEqual(f); // the frame itself is not touched
  });

  it('refuses what is not VXLAN/UDP/IPv4 around TCP/IPv4, or too short', () => {
    const buf = new Uint8Array(24);
    const udpInner = frame();
    udpInner[14 + 20 + 16 + 14 + 9] = 17;
    const tcpOuter = frame();
    tcpOuter[14 + 9] = 6;
    expect(vnetWriteVxlanTcp4Gso(buf, 0, 0, 0, 1448)).toBe(0);
    for (const f of [udpInner, tcpOuter, frame().subarray(0, 14 + 20 + 16 + 14 + 20 + 19)]) {
      const all = new Uint8Array(24 + f.length);
      all.set(f, 24);
      expect(vnetWriteVxlanTcp4Gso(all, 0, 24, f.length, 1448)).toBe(0);
    }
  });

  it('random and mutated bytes: returns 0 or a length inside the frame, touches only the header', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .tuple(
              fc.integer({ min: 5, max: 15 }),
              fc.integer({ min: 5, max: 15 }),
              fc.integer({ min: 5, max: 15 }),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
            )
            .map(([a, b, c, flips]) => {
              const f = frame(a, b, c, 10);
              for (const [at, v] of flips) f[at % f.length] = v;
              return f;
            }),
        ),
        fc.nat(),
        (f, cut) => {
          const len = cut % (f.length + 1);
          const buf = new Uint8Array(24 + f.length).fill(0xa5);
          buf.set(f, 24);
          const r = vnetWriteVxlanTcp4Gso(buf, 0, 24, len, 1000);
          expect(r === 0 || (r >= 14 + 20 + 16 + 14 + 20 + 20 && r <= len)).toBe(true);
          expect(buf.subarray(24)).toEqual(f);
          if (r === 0) expect(buf.subarray(0, 24).every((x) => x === 0xa5)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
