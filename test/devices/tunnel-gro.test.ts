// An IPIP-carried TCP super-frame as the kernel's IPIP GRO hands it to an AF_PACKET socket with
// PACKET_VNET_HDR (gso_type TCPV4, the partial checksum at the inner TCP header, outer and inner IPv4
// lengths those of the whole super-frame): finishVnet keeps it whole (segment size in b.gso, counted
// under port-input gso-received / gso-tunnel-received), ipip4-input decapsulates it with PKT_GSO kept
// so that the TAP write hands it on whole; with small slots (offloads off) it is dropped and counted.
import { describe, expect, it } from 'vitest';
import { Batch, GSO_SLOT_SIZE, PKT_DECAP, PKT_GSO } from '../../src/dataplane/graph/packet.js';
import { PortInput } from '../../src/dataplane/devices/device.js';
import { finishVnet } from '../../src/dataplane/devices/fd.js';
import { Ipip4Input } from '../../src/dataplane/features/encap/nodes.js';
import type { DataplaneEnv } from '../../src/dataplane/graph/env.js';
import { VNET_HDR_LEN, vnetTunnelTcp4Gso } from '../../src/dataplane/wire/virtio.js';

const PEER = 0x0a000001; // 10.0.0.1
const NODE = 0x0a000002; // 10.0.0.2
const MSS = 1428;
const SEGS = 40;

function portInput(): PortInput {
  const pi = new PortInput();
  pi.c = new Float64Array(pi.decl.reasons!.length);
  pi.base = 0;
  return pi;
}

function reason(pi: PortInput, name: string): number {
  return pi.c[pi.decl.reasons!.findIndex((r) => r.name === name)];
}

function ip4(u8: Uint8Array, at: number, proto: number, total: number, src: number, dst: number): void {
  u8.set([0x45, 0, total >>> 8, total & 255, 0, 1, 0x40, 0, 64, proto, 0, 0], at);
  new DataView(u8.buffer, u8.byteOffset).setUint32(at + 12, src);
  new DataView(u8.buffer, u8.byteOffset).setUint32(at + 16, dst);
}

/** Writes vnet header + Ethernet + outer IPv4 (IPIP) + inner IPv4 + TCP + payload into slot 0. */
function ipipSuperFrame(b: Batch, opts: { start?: number } = {}): number {
  const u8 = b.u8;
  const off = b.off[0];
  const payload = MSS * SEGS;
  const len = 14 + 20 + 20 + 20 + payload;
  u8.fill(0, off, off + 14);
  u8[off + 12] = 0x08;
  ip4(u8, off + 14, 4, len - 14, PEER, NODE);
  ip4(u8, off + 34, 6, len - 34, 0x0a410000, 0x0a410040);
  const tcp = off + 54;
  u8.set([0x9a, 0x10, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0x01, 0], tcp);
  for (let k = 0; k < payload; k++) u8[tcp + 20 + k] = k & 255;
  const hdr = off - VNET_HDR_LEN;
  u8.fill(0, hdr, off);
  u8[hdr] = 1; // NEEDS_CSUM
  u8[hdr + 1] = 1; // TCPV4
  u8[hdr + 2] = 74; // hdr_len (a hint)
  u8[hdr + 4] = MSS & 255;
  u8[hdr + 5] = MSS >>> 8;
  u8[hdr + 6] = opts.start ?? 54; // csum_start: the inner TCP header
  u8[hdr + 8] = 16; // csum_offset
  b.len[0] = len + VNET_HDR_LEN;
  return len;
}

describe('IPIP super-frames from the kernel GRO (GRO on the uplink)', () => {
  it('vnetTunnelTcp4Gso: the segment size of an IPIP TCPv4 super-frame, 0 when csum_start is elsewhere', () => {
    const b = new Batch(1, undefined, 0, GSO_SLOT_SIZE);
    const len = ipipSuperFrame(b);
    const hdr = b.off[0] - VNET_HDR_LEN;
    expect(vnetTunnelTcp4Gso(b.u8, hdr, b.off[0], len)).toBe(MSS);
    ipipSuperFrame(b, { start: 34 });
    expect(vnetTunnelTcp4Gso(b.u8, hdr, b.off[0], len)).toBe(0);
  });

  it('finishVnet keeps it whole and counts it; ipip4-input decapsulates it with PKT_GSO kept', () => {
    const b = new Batch(1, undefined, 0, GSO_SLOT_SIZE);
    const len = ipipSuperFrame(b);
    const pi = portInput();
    finishVnet(b, 0, 1, true, pi);
    expect(b.claim(1, 1, 0, 0, true)).toBe(0);
    expect(b.count).toBe(1);
    expect(b.len[0]).toBe(len);
    expect(b.gso[0]).toBe(MSS);
    expect(b.flags[0] & PKT_GSO).toBe(PKT_GSO);
    expect(reason(pi, 'gso-received')).toBe(1);
    expect(reason(pi, 'gso-tunnel-received')).toBe(1);
    expect(reason(pi, 'gso-unsupported')).toBe(0);

    const env = { params: { tunnelPeers: [PEER], nodeIp: NODE } } as unknown as DataplaneEnv;
    const node = new Ipip4Input(env);
    node.c = new Float64Array(node.decl.reasons!.length);
    const entered: number[] = [];
    node.next = [{ enter: (_b: Batch, i: number) => entered.push(i) > 0 }] as unknown as typeof node.next;
    const off = b.off[0];
    expect(node.pass(b, 0)).toBe(false);
    expect(entered).toEqual([0]);
    expect(node.c[3]).toBe(1); // decapsulated
    // the inner frame: Ethernet moved up in front of the inner IPv4, still a TCP super-frame
    expect(b.off[0]).toBe(off + 20);
    expect(b.len[0]).toBe(len - 20);
    expect(b.flags[0] & (PKT_GSO | PKT_DECAP)).toBe(PKT_GSO | PKT_DECAP);
    expect(b.gso[0]).toBe(MSS);
    expect(b.u8[b.off[0] + 14 + 9]).toBe(6);
    expect((b.u8[b.off[0] + 16] << 8) | b.u8[b.off[0] + 17]).toBe(len - 34);
  });

  it('with small slots (offloads off) it is dropped and counted as gso-unsupported', () => {
    const b = new Batch(1, undefined, 0, GSO_SLOT_SIZE);
    ipipSuperFrame(b);
    const pi = portInput();
    finishVnet(b, 0, 1, false, pi);
    pi.truncated(b.claim(1, 1, 0, 0, false));
    expect(b.count).toBe(0);
    expect(reason(pi, 'gso-unsupported')).toBe(1);
    expect(reason(pi, 'gso-received')).toBe(0);
  });
});
