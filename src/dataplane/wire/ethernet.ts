// Ethernet II framing (IEEE 802.3 §3.2.6 "Length/Type" ≥ 0x0600; RFC 894 for IPv4 over Ethernet).
// Frames flow in from TAP/uplink ports as (u8, off, len) views of the worker's packet arena (owned by
// the port layer; we only read or write in place) and out the same way. Runs on the dataplane worker
// threads; `parseEthernet` is for tests and `--trace` only. 802.1Q/802.1ad tagged frames are refused
// by `ethCheck` (`ETH_ERR_VLAN`): the graph drops them with a counter, calitap links are untagged.
import { formatMac } from '../../common/addr.js';

export const ETH_HLEN = 14;
export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
/** Every IPv4/ARP frame is at least this long after the 4-byte FCS is stripped (802.3 min 64). */
export const ETH_MIN_FRAME = 60;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_IPV6 = 0x86dd;

export const ETH_OK = 0;
export const ETH_ERR_SHORT = 1;
export const ETH_ERR_VLAN = 2;
/** Counter names indexed by `ethCheck` result. */
export const ETH_ERR_NAMES: readonly string[] = ['ok', 'short', 'vlan-tagged'];

/** Copies the 6-byte MAC at `mac[macOff]` to `u8[off]`. */
export function writeMac(u8: Uint8Array, off: number, mac: Uint8Array, macOff = 0): void {
  u8[off] = mac[macOff];
  u8[off + 1] = mac[macOff + 1];
  u8[off + 2] = mac[macOff + 2];
  u8[off + 3] = mac[macOff + 3];
  u8[off + 4] = mac[macOff + 4];
  u8[off + 5] = mac[macOff + 5];
}

export function macEq(u8: Uint8Array, off: number, mac: Uint8Array, macOff = 0): boolean {
  return (
    u8[off] === mac[macOff] &&
    u8[off + 1] === mac[macOff + 1] &&
    u8[off + 2] === mac[macOff + 2] &&
    u8[off + 3] === mac[macOff + 3] &&
    u8[off + 4] === mac[macOff + 4] &&
    u8[off + 5] === mac[macOff + 5]
  );
}

/** True for ff:ff:ff:ff:ff:ff at `off`. */
export function isBroadcast(u8: Uint8Array, off: number): boolean {
  return (u8[off] & u8[off + 1] & u8[off + 2] & u8[off + 3] & u8[off + 4] & u8[off + 5]) === 0xff;
}

/** True when the I/G bit (least significant bit of the first octet) is set: multicast or broadcast. */
export function isMulticast(u8: Uint8Array, off: number): boolean {
  return (u8[off] & 1) === 1;
}

export function ethType(u8: Uint8Array, off: number): number {
  return (u8[off + ETH_TYPE] << 8) | u8[off + ETH_TYPE + 1];
}

/** Writes a 14-byte Ethernet II header at `off`. */
export function emitEthernet(
  u8: Uint8Array,
  off: number,
  dst: Uint8Array,
  src: Uint8Array,
  ethertype: number,
): void {
  writeMac(u8, off + ETH_DST, dst);
  writeMac(u8, off + ETH_SRC, src);
  u8[off + ETH_TYPE] = ethertype >>> 8;
  u8[off + ETH_TYPE + 1] = ethertype & 0xff;
}

/**
 * Checked view for untrusted frames: `len` bytes at `off`. Returns `ETH_OK` or an error code (index
 * into `ETH_ERR_NAMES`). A frame that claims more bytes than the array holds counts as short.
 */
export function ethCheck(u8: Uint8Array, off: number, len: number): number {
  if (!(off >= 0) || !(len >= ETH_HLEN) || off + len > u8.length) return ETH_ERR_SHORT;
  const t = (u8[off + ETH_TYPE] << 8) | u8[off + ETH_TYPE + 1];
  if (t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ) return ETH_ERR_VLAN;
  return ETH_OK;
}

export interface EthernetRecord {
  dst: string;
  src: string;
  ethertype: number;
  /** 802.1Q/802.1ad tag control information (PCP/DEI/VID), when tagged */
  vlanTci?: number;
  /** ethertype after the tag, when tagged */
  innerEthertype?: number;
  payloadOff: number;
  payloadLen: number;
  /** `ethCheck` result */
  err: number;
  errName: string;
}

/** Parsed record for tests/trace; null when not even 14 bytes are there. Never throws. */
export function parseEthernet(u8: Uint8Array, off: number, len: number): EthernetRecord | null {
  const err = ethCheck(u8, off, len);
  if (err === ETH_ERR_SHORT) return null;
  const ethertype = ethType(u8, off);
  const rec: EthernetRecord = {
    dst: formatMac(u8, off + ETH_DST),
    src: formatMac(u8, off + ETH_SRC),
    ethertype,
    payloadOff: off + ETH_HLEN,
    payloadLen: len - ETH_HLEN,
    err,
    errName: ETH_ERR_NAMES[err],
  };
  if (err === ETH_ERR_VLAN && len >= ETH_HLEN + 4) {
    rec.vlanTci = (u8[off + 14] << 8) | u8[off + 15];
    rec.innerEthertype = (u8[off + 16] << 8) | u8[off + 17];
    rec.payloadOff = off + ETH_HLEN + 4;
    rec.payloadLen = len - ETH_HLEN - 4;
  }
  return rec;
}
