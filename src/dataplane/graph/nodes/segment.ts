// TCP segmentation offload in software (the part of a NIC's TSO calitap has to do itself): a GSO
// super-frame (up to 64 KiB of TCP from a workload whose TAP has offloads on) that must be
// encapsulated is cut into MSS-sized segments before IPIP/VXLAN, because a tunnel cannot carry the
// super-frame and the kernel cannot segment inside our encapsulation. Like Linux's tcp_gso_segment:
// each segment gets the headers, its slice of the payload, IPv4 total length, identification + k,
// sequence number + offset, FIN/PSH only on the last and CWR only on the first segment, and full
// IPv4 and TCP checksums. The first segment stays in the packet's own slot; the others take fresh
// slots of the same batch (RFC 9293 §3.1 header fields; RFC 791 for IPv4).
import { PKT_GSO, type Batch } from '../packet.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { IP4_ID, IP4_TOTLEN, ip4Hlen, ip4SetChecksum, ip4TotalLen } from '../../wire/ipv4.js';
import {
  TCP_CSUM,
  TCP_FLAGS,
  TCP_SEQ,
  TCP_FIN,
  TCP_PSH,
  TCP_CWR,
  tcpHlen,
  tcpSetChecksum,
} from '../../wire/tcp.js';

/**
 * Cuts packet i (Ethernet + IPv4 + TCP, PKT_GSO) into segments of at most `mss` payload bytes.
 * Returns the number of extra packets created (indices b.count - extra .. b.count - 1), or -1 when
 * the batch has no room or the headers are not plain TCP/IPv4 (the caller drops and counts).
 */
export function segmentTcp4(b: Batch, i: number, mss: number): number {
  const u8 = b.u8;
  const off = b.off[i];
  const ip = off + ETH_HLEN;
  const ihl = ip4Hlen(u8, ip);
  const tcp = ip + ihl;
  const thl = tcpHlen(u8, tcp);
  const total = ip4TotalLen(u8, ip);
  const hdrs = ETH_HLEN + ihl + thl;
  const payload = total - ihl - thl;
  if (mss <= 0 || payload < 0 || tcp + thl > off + b.len[i]) return -1;
  const n = Math.max(1, Math.ceil(payload / mss));
  const extra = n - 1;
  if (b.count + extra > b.capacity) return -1;
  const id0 = (u8[ip + IP4_ID] << 8) | u8[ip + IP4_ID + 1];
  const seq0 =
    ((u8[tcp + TCP_SEQ] << 24) |
      (u8[tcp + TCP_SEQ + 1] << 16) |
      (u8[tcp + TCP_SEQ + 2] << 8) |
      u8[tcp + TCP_SEQ + 3]) >>>
    0;
  const flags0 = u8[tcp + TCP_FLAGS];
  // later segments first: they copy their payload out of slot i before the first one is cut
  for (let k = 1; k < n; k++) {
    const chunk = Math.min(mss, payload - k * mss);
    const j = b.alloc(i);
    const fo = b.off[j];
    u8.copyWithin(fo, off, off + hdrs);
    u8.copyWithin(fo + hdrs, off + hdrs + k * mss, off + hdrs + k * mss + chunk);
    finish(
      u8,
      fo + ETH_HLEN,
      ihl,
      chunk,
      (id0 + k) & 0xffff,
      (seq0 + k * mss) >>> 0,
      k === n - 1 ? flags0 & ~TCP_CWR : flags0 & ~(TCP_FIN | TCP_PSH | TCP_CWR),
    );
    b.len[j] = hdrs + chunk;
    b.adj[j] = b.adj[i];
    b.txPort[j] = b.txPort[i];
    b.flags[j] = b.flags[i] & ~PKT_GSO;
  }
  const first = Math.min(mss, payload);
  finish(u8, ip, ihl, first, id0, seq0, n === 1 ? flags0 : flags0 & ~(TCP_FIN | TCP_PSH));
  b.len[i] = hdrs + first;
  b.flags[i] &= ~PKT_GSO;
  return extra;
}

function finish(
  u8: Uint8Array,
  ip: number,
  ihl: number,
  chunk: number,
  id: number,
  seq: number,
  flags: number,
): void {
  const tcp = ip + ihl;
  const total = ihl + tcpHlen(u8, tcp) + chunk;
  u8[ip + IP4_TOTLEN] = total >>> 8;
  u8[ip + IP4_TOTLEN + 1] = total & 255;
  u8[ip + IP4_ID] = id >>> 8;
  u8[ip + IP4_ID + 1] = id & 255;
  ip4SetChecksum(u8, ip);
  u8[tcp + TCP_SEQ] = seq >>> 24;
  u8[tcp + TCP_SEQ + 1] = (seq >>> 16) & 255;
  u8[tcp + TCP_SEQ + 2] = (seq >>> 8) & 255;
  u8[tcp + TCP_SEQ + 3] = seq & 255;
  u8[tcp + TCP_FLAGS] = flags;
  u8[tcp + TCP_CSUM] = 0;
  u8[tcp + TCP_CSUM + 1] = 0;
  tcpSetChecksum(u8, ip);
}
