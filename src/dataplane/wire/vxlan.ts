// VXLAN (RFC 7348) header and UDP source-port hashing: the format only, no I/O.
//
//   outer Ethernet 14 | outer IPv4 20 | UDP 8 | VXLAN 8 | inner Ethernet 14 | inner IPv4 ...
//
// VXLAN header (RFC 7348 §5): flags (I bit 0x08 = VNI valid), 24 reserved bits, VNI (24 bits),
// 8 reserved bits. Calico uses VNI 4096 on UDP port 4789 with UDP checksum 0 (allowed for IPv4 by
// RFC 7348 §5: "UDP Checksum: It SHOULD be transmitted as zero").

export const VXLAN_HLEN = 8;
export const VXLAN_FLAGS_I = 0x08;
/** outer IPv4 + UDP + VXLAN + inner Ethernet */
export const VXLAN_OVERHEAD = 20 + 8 + VXLAN_HLEN + 14;
/** Linux's default ip_local_port_range, which the kernel's vxlan driver hashes source ports into. */
export const VXLAN_SPORT_MIN = 32768;
export const VXLAN_SPORT_MAX = 60999;

export const VXLAN_OK = 0;
export const VXLAN_ERR_SHORT = 1;
export const VXLAN_ERR_FLAGS = 2;
export const VXLAN_ERR_NAMES: readonly string[] = ['ok', 'short', 'bad-flags'];

/** Writes the 8-byte VXLAN header at off. */
export function emitVxlanHeader(u8: Uint8Array, off: number, vni: number): void {
  u8[off] = VXLAN_FLAGS_I;
  u8[off + 1] = 0;
  u8[off + 2] = 0;
  u8[off + 3] = 0;
  u8[off + 4] = (vni >>> 16) & 255;
  u8[off + 5] = (vni >>> 8) & 255;
  u8[off + 6] = vni & 255;
  u8[off + 7] = 0;
}

/** Checks a VXLAN header of `avail` bytes; returns VXLAN_OK or an error code. */
export function vxlanCheck(u8: Uint8Array, off: number, avail: number): number {
  if (avail < VXLAN_HLEN) return VXLAN_ERR_SHORT;
  if ((u8[off] & VXLAN_FLAGS_I) === 0) return VXLAN_ERR_FLAGS;
  return VXLAN_OK;
}

export function vxlanVni(u8: Uint8Array, off: number): number {
  return (u8[off + 4] << 16) | (u8[off + 5] << 8) | u8[off + 6];
}

/**
 * UDP source port for an inner flow (RFC 7348 §5: "a hash of fields from the inner packet"), stable
 * per flow, in [VXLAN_SPORT_MIN, VXLAN_SPORT_MAX]. `ports` is the inner L4 port pair (0 if none).
 */
export function vxlanSourcePort(src: number, dst: number, proto: number, ports: number): number {
  let h = Math.imul(src ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ dst, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ports, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15) ^ proto, 0x165667b1);
  h = (h ^ (h >>> 16)) >>> 0;
  return VXLAN_SPORT_MIN + (h % (VXLAN_SPORT_MAX - VXLAN_SPORT_MIN + 1));
}
