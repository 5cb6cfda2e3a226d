// IPv4 fragmentation (RFC 791 §3.2, RFC 815 offsets in 8-byte units) of a packet without DF that
// does not fit the next hop's MTU. Used by ip4-rewrite; the first fragment stays in the packet's own
// slot, the others take fresh slots of the same batch (the Ethernet header is copied to each). Options
// are copied into later fragments only when their "copied" flag is set (RFC 791 §3.1).
import type { Batch } from '../packet.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import {
  IP4_FRAG,
  IP4_MF,
  IP4_OFFMASK,
  IP4_TOTLEN,
  ip4Hlen,
  ip4SetChecksum,
  ip4TotalLen,
} from '../../wire/ipv4.js';

/**
 * Splits packet i so that every piece is at most `mtu` bytes of IP. Returns the number of extra
 * packets created (their indices are b.count - extra .. b.count - 1), or -1 when it cannot be done
 * (batch full, MTU too small for the header): the caller drops and counts.
 */
export function fragmentIp4(b: Batch, i: number, mtu: number, scratch: Uint8Array): number {
  const u8 = b.u8;
  const off = b.off[i];
  const ip = off + ETH_HLEN;
  const hlen = ip4Hlen(u8, ip);
  const total = ip4TotalLen(u8, ip);
  const payload = total - hlen;
  // header of later fragments: the fixed 20 bytes plus the options marked "copied"
  let laterHlen = 20;
  scratch.set(u8.subarray(ip, ip + 20), 0);
  for (let o = ip + 20; o < ip + hlen;) {
    const t = u8[o];
    if (t === 0) break; // end of options
    if (t === 1) {
      o++;
      continue;
    }
    const l = u8[o + 1];
    if (l < 2 || o + l > ip + hlen) break;
    if ((t & 0x80) !== 0) {
      scratch.set(u8.subarray(o, o + l), laterHlen);
      laterHlen += l;
    }
    o += l;
  }
  while ((laterHlen & 3) !== 0) scratch[laterHlen++] = 0;
  const firstChunk = (mtu - hlen) & ~7;
  const laterChunk = (mtu - laterHlen) & ~7;
  if (firstChunk <= 0 || laterChunk <= 0) return -1;
  const extra = Math.ceil(Math.max(0, payload - firstChunk) / laterChunk);
  if (b.count + extra > b.capacity) return -1;

  const fragWord = (u8[ip + IP4_FRAG] << 8) | u8[ip + IP4_FRAG + 1];
  const baseOff = fragWord & IP4_OFFMASK; // the packet may itself be a fragment
  const lastMf = fragWord & IP4_MF;
  const keepFlags = fragWord & ~(IP4_OFFMASK | IP4_MF);
  // later fragments first: they copy payload out of slot i before the first fragment is cut
  let pos = firstChunk;
  for (let k = 0; k < extra; k++) {
    const chunk = Math.min(laterChunk, payload - pos);
    const j = b.alloc(i);
    const fo = b.off[j];
    u8.copyWithin(fo, off, off + ETH_HLEN);
    u8.set(scratch.subarray(0, laterHlen), fo + ETH_HLEN);
    const fip = fo + ETH_HLEN;
    u8[fip] = 0x40 | (laterHlen >>> 2);
    u8.copyWithin(fip + laterHlen, ip + hlen + pos, ip + hlen + pos + chunk);
    const last = pos + chunk >= payload;
    const word = keepFlags | (last ? lastMf : IP4_MF) | (baseOff + (pos >>> 3));
    u8[fip + IP4_FRAG] = word >>> 8;
    u8[fip + IP4_FRAG + 1] = word & 255;
    u8[fip + IP4_TOTLEN] = (laterHlen + chunk) >>> 8;
    u8[fip + IP4_TOTLEN + 1] = (laterHlen + chunk) & 255;
    ip4SetChecksum(u8, fip);
    b.len[j] = ETH_HLEN + laterHlen + chunk;
    b.adj[j] = b.adj[i];
    b.txPort[j] = b.txPort[i];
    b.flags[j] = b.flags[i];
    pos += chunk;
  }
  const word = keepFlags | IP4_MF | baseOff;
  u8[ip + IP4_FRAG] = word >>> 8;
  u8[ip + IP4_FRAG + 1] = word & 255;
  u8[ip + IP4_TOTLEN] = (hlen + firstChunk) >>> 8;
  u8[ip + IP4_TOTLEN + 1] = (hlen + firstChunk) & 255;
  ip4SetChecksum(u8, ip);
  b.len[i] = ETH_HLEN + hlen + firstChunk;
  return extra;
}
