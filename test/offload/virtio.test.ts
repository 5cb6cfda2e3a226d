// The 24-byte virtio_net_hdr_v1_hash_tunnel writer (wire/virtio.ts vnetWriteVxlanTcp4Gso): byte
// vector into a buffer pre-filled with 0xa5 (every field written, hash and num_buffers zero), the
// layout constants, and refusals for frames that are not VXLAN over IPv4 around TCP/IPv4.
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
});
