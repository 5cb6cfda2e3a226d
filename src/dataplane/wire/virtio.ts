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
