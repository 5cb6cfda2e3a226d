// struct virtio_net_hdr (virtio spec 5.1.6; Linux include/uapi/linux/virtio_net.h), as an AF_PACKET
// socket with PACKET_VNET_HDR puts it in front of every frame (10 bytes, host byte order — little
// endian on the machines calitap runs on). No I/O; the worker that owns the frame calls these.
import { onesSum } from './checksum.js';

export const VNET_HDR_LEN = 10;
export const VNET_FLAGS = 0;
export const VNET_GSO_TYPE = 1;
export const VNET_HDR_LEN_FIELD = 2;
export const VNET_GSO_SIZE = 4;
export const VNET_CSUM_START = 6;
export const VNET_CSUM_OFFSET = 8;
/** the checksum at csum_start + csum_offset still holds only the pseudo-header sum */
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;

export const VNET_OK = 0;
/** a GSO super-frame (TSO/UFO): not segmented by calitap */
export const VNET_ERR_GSO = 1;
/** csum_start/csum_offset point outside the frame */
export const VNET_ERR_CSUM = 2;

/**
 * Completes a partial checksum (CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum; the
 * device is to sum from csum_start to the end and store the complement) for the frame at
 * [frame, frame + len) whose header is at hdr. Returns VNET_OK or an error code.
 */
export function vnetFinish(u8: Uint8Array, hdr: number, frame: number, len: number): number {
  if (u8[hdr + VNET_GSO_TYPE] !== VNET_GSO_NONE) return VNET_ERR_GSO;
  if ((u8[hdr + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0) return VNET_OK;
  const start = u8[hdr + VNET_CSUM_START] | (u8[hdr + VNET_CSUM_START + 1] << 8);
  const field = start + (u8[hdr + VNET_CSUM_OFFSET] | (u8[hdr + VNET_CSUM_OFFSET + 1] << 8));
  if (field + 2 > len || start >= len) return VNET_ERR_CSUM;
  let c = ~onesSum(u8, frame + start, len - start) & 0xffff;
  // UDP sends a computed 0 as 0xffff (RFC 768); TCP never produces 0 from a non-zero sum
  if (c === 0) c = 0xffff;
  u8[frame + field] = c >>> 8;
  u8[frame + field + 1] = c & 255;
  return VNET_OK;
}

/** Writes an all-zero header at hdr: "this frame is complete, no offload". */
export function vnetClear(u8: Uint8Array, hdr: number): void {
  for (let k = 0; k < VNET_HDR_LEN; k++) u8[hdr + k] = 0;
}

export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_ECN = 0x80;

/** gso_type of the header at hdr without the ECN bit, and its gso_size. */
export function vnetGsoType(u8: Uint8Array, hdr: number): number {
  return u8[hdr + VNET_GSO_TYPE] & ~VNET_GSO_ECN;
}
export function vnetGsoSize(u8: Uint8Array, hdr: number): number {
  return u8[hdr + VNET_GSO_SIZE] | (u8[hdr + VNET_GSO_SIZE + 1] << 8);
}

/**
 * Checks a TCPv4 GSO header against the frame it describes: the checksum must be partial and point at
 * the TCP checksum of an IPv4 frame. Returns the segment size, or 0 when it does not fit.
 */
export function vnetTcp4Gso(u8: Uint8Array, hdr: number, frame: number, len: number): number {
  if ((u8[hdr + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0 || len < 54) return 0;
  const ihl = (u8[frame + 14] & 15) * 4;
  const start = u8[hdr + VNET_CSUM_START] | (u8[hdr + VNET_CSUM_START + 1] << 8);
  const off = u8[hdr + VNET_CSUM_OFFSET] | (u8[hdr + VNET_CSUM_OFFSET + 1] << 8);
  if (start !== 14 + ihl || off !== 16 || u8[frame + 14 + 9] !== 6) return 0;
  return vnetGsoSize(u8, hdr);
}

/**
 * The same check for a TCPv4 super-frame carried in IPIP (outer protocol 4) or VXLAN (outer UDP +
 * VXLAN, inner Ethernet + IPv4): what the kernel's tunnel GRO (ipip_gro_receive, or the UDP
 * tunnel GRO of a VXLAN socket) hands an AF_PACKET socket — gso_type TCPV4, the partial checksum at
 * the inner TCP header (holding the inner pseudo-header sum), outer and inner IPv4 total lengths
 * already those of the whole super-frame. Returns the segment size, or 0 when it does not fit.
 */
export function vnetTunnelTcp4Gso(u8: Uint8Array, hdr: number, frame: number, len: number): number {
  if ((u8[hdr + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0 || !isIp4(u8, frame + 12)) return 0;
  const outerIhl = (u8[frame + 14] & 15) * 4;
  const proto = u8[frame + 14 + 9];
  let inner = 14 + outerIhl; // the inner IPv4 header, from the frame's start
  if (proto === 17) {
    inner += VXLAN_OVER_UDP + 14;
    if (inner > len || !isIp4(u8, frame + inner - 2)) return 0;
  } else if (proto !== 4) return 0;
  if (inner + 40 > len || u8[frame + inner] >>> 4 !== 4 || u8[frame + inner + 9] !== 6) return 0;
  const start = u8[hdr + VNET_CSUM_START] | (u8[hdr + VNET_CSUM_START + 1] << 8);
  const off = u8[hdr + VNET_CSUM_OFFSET] | (u8[hdr + VNET_CSUM_OFFSET + 1] << 8);
  if (start !== inner + (u8[frame + inner] & 15) * 4 || off !== 16) return 0;
  return vnetGsoSize(u8, hdr);
}

/** Writes the header for a TCPv4 GSO super-frame at frame (Ethernet + IPv4 + TCP), segment size mss. */
export function vnetWriteTcp4Gso(u8: Uint8Array, hdr: number, frame: number, mss: number): void {
  const ihl = (u8[frame + 14] & 15) * 4;
  const thl = (u8[frame + 14 + ihl + 12] >>> 4) * 4;
  const hdrLen = 14 + ihl + thl;
  const start = 14 + ihl;
  u8[hdr + VNET_FLAGS] = VNET_F_NEEDS_CSUM;
  u8[hdr + VNET_GSO_TYPE] = VNET_GSO_TCPV4;
  u8[hdr + VNET_HDR_LEN_FIELD] = hdrLen & 255;
  u8[hdr + VNET_HDR_LEN_FIELD + 1] = hdrLen >>> 8;
  u8[hdr + VNET_GSO_SIZE] = mss & 255;
  u8[hdr + VNET_GSO_SIZE + 1] = mss >>> 8;
  u8[hdr + VNET_CSUM_START] = start & 255;
  u8[hdr + VNET_CSUM_START + 1] = start >>> 8;
  u8[hdr + VNET_CSUM_OFFSET] = 16;
  u8[hdr + VNET_CSUM_OFFSET + 1] = 0;
}

// ---------------------------------------------------------------------------------------------------
// struct virtio_net_hdr_v1_hash_tunnel (24 bytes; Linux ≥ 6.17 include/uapi/linux/virtio_net.h, virtio
// 1.4 VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO): the 10-byte header above, then num_buffers (12 bytes:
// struct virtio_net_hdr_v1), hash_value_lo/hi, hash_report, padding (20: struct
// virtio_net_hdr_v1_hash), then the two tunnel offsets. A TAP reads and writes it after
// TUNSETVNETHDRSZ 24 and TUNSETOFFLOAD with TUN_F_UDP_TUNNEL_GSO (drivers/net/tun_vnet.h: the tunnel
// fields sit at sizeof(struct virtio_net_hdr_v1_hash) = 20). All fields little endian.

export const VNET_HDR_TNL_LEN = 24;
export const VNET_NUM_BUFFERS = 10;
export const VNET_HASH_VALUE = 12;
export const VNET_HASH_REPORT = 16;
/** offset of the outer transport (UDP) header from the start of the frame */
export const VNET_OUTER_TH_OFFSET = 20;
/** offset of the inner network (IPv4) header from the start of the frame */
export const VNET_INNER_NH_OFFSET = 22;

/** the checksum is known good (receive side) */
export const VNET_F_DATA_VALID = 2;
/** the outer UDP checksum is partial too (needs TUN_F_UDP_TUNNEL_GSO_CSUM) */
export const VNET_F_UDP_TUNNEL_CSUM = 8;

export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
/** OR-ed into gso_type: the GSO packet sits inside a UDP tunnel over IPv4 (VXLAN, Geneve) */
export const VNET_GSO_UDP_TUNNEL_IPV4 = 0x20;
export const VNET_GSO_UDP_TUNNEL_IPV6 = 0x40;

const VXLAN_OVER_UDP = 8 + 8; // UDP header + VXLAN header (RFC 7348 §5)

/**
 * Writes the 24-byte tunnel header for a VXLAN super-frame at frame: outer Ethernet + IPv4 + UDP +
 * VXLAN + inner Ethernet + IPv4 + TCP, the inner TCP checksum holding the pseudo-header sum
 * (CHECKSUM_PARTIAL). The kernel cuts it into segments of `mss` payload bytes, each a complete VXLAN
 * packet (outer IPv4 length, identification and checksum and UDP length per segment; the outer UDP
 * checksum stays as written, 0 for VXLAN). Returns the header length (hdr_len) or 0 when the frame
 * is not shaped that way.
 */
export function vnetWriteVxlanTcp4Gso(
  u8: Uint8Array,
  hdr: number,
  frame: number,
  len: number,
  mss: number,
): number {
  if (len < 14 + 20 + VXLAN_OVER_UDP + 14 + 20 + 20 || !isIp4(u8, frame + 12) || u8[frame + 14 + 9] !== 17) {
    return 0;
  }
  const outerTh = 14 + (u8[frame + 14] & 15) * 4;
  const innerNh = outerTh + VXLAN_OVER_UDP + 14;
  if (innerNh + 20 > len || !isIp4(u8, frame + innerNh - 2) || u8[frame + innerNh + 9] !== 6) return 0;
  const innerTh = innerNh + (u8[frame + innerNh] & 15) * 4;
  if (innerTh + 20 > len) return 0;
  const thl = (u8[frame + innerTh + 12] >>> 4) * 4;
  const hdrLen = innerTh + thl;
  if (thl < 20 || hdrLen > len) return 0;
  for (let k = 0; k < VNET_HDR_TNL_LEN; k++) u8[hdr + k] = 0;
  u8[hdr + VNET_FLAGS] = VNET_F_NEEDS_CSUM;
  u8[hdr + VNET_GSO_TYPE] = VNET_GSO_TCPV4 | VNET_GSO_UDP_TUNNEL_IPV4;
  le16(u8, hdr + VNET_HDR_LEN_FIELD, hdrLen);
  le16(u8, hdr + VNET_GSO_SIZE, mss);
  le16(u8, hdr + VNET_CSUM_START, innerTh);
  le16(u8, hdr + VNET_CSUM_OFFSET, 16);
  le16(u8, hdr + VNET_OUTER_TH_OFFSET, outerTh);
  le16(u8, hdr + VNET_INNER_NH_OFFSET, innerNh);
  return hdrLen;
}

/** Ethertype 0x0800 at `type`, followed by an IPv4 header (version 4, IHL ≥ 5). */
function isIp4(u8: Uint8Array, type: number): boolean {
  return u8[type] === 0x08 && u8[type + 1] === 0 && u8[type + 2] >>> 4 === 4 && (u8[type + 2] & 15) >= 5;
}

function le16(u8: Uint8Array, off: number, v: number): void {
  u8[off] = v & 255;
  u8[off + 1] = v >>> 8;
}
