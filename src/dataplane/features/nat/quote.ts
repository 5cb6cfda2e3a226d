// snat4-in2out's helper for ICMP errors calitap builds itself about a packet snat4-out2in translated
// (nodes.ts): the quote is put back as the remote end sent it. Packet bytes only; no I/O.
import {
  ip4Dst,
  ip4Hlen,
  ip4SetDst,
  ip4TotalLen,
  IP4_PROTO,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from '../../wire/ipv4.js';
import { l4AdjustForAddr, l4SetPort } from '../../wire/l4.js';
import { TCP_CSUM } from '../../wire/tcp.js';
import { UDP_CSUM } from '../../wire/udp.js';
import { ICMP_CSUM, ICMP_HLEN, ICMP_ID, icmpSetChecksum } from '../../wire/icmp4.js';
import type { NatTable } from '../../tables/nat/table.js';

/**
 * An ICMP error calitap itself builds about a packet snat4-out2in translated (e.g. fragmentation
 * needed toward a pod): the quote shows the pod's address and port, which the remote end never saw.
 * Put the translated destination (natIp:natPort) back into the quote so the remote end's PMTU
 * discovery works through NAT (RFC 5508 §7). `ip` is the error's IP header, `flow` the NAT flow.
 */
export function untranslateQuote(u8: Uint8Array, ip: number, nat: NatTable, flow: number): void {
  const l4 = ip + ip4Hlen(u8, ip);
  const end = ip + ip4TotalLen(u8, ip);
  const inner = l4 + ICMP_HLEN;
  if (inner + 20 > end) return;
  const ihl = (u8[inner] & 15) * 4;
  const iproto = u8[inner + IP4_PROTO];
  const il4 = inner + ihl;
  const podIp = ip4Dst(u8, inner);
  ip4SetDst(u8, inner, nat.natIp(flow));
  if (iproto === IPPROTO_TCP || iproto === IPPROTO_UDP) {
    const csum = iproto === IPPROTO_TCP ? TCP_CSUM : UDP_CSUM;
    const udp = iproto === IPPROTO_UDP;
    if (il4 + csum + 2 <= end) {
      l4AdjustForAddr(u8, il4, csum, podIp, nat.natIp(flow), udp);
      l4SetPort(u8, il4, 2, nat.natPort(flow), csum, udp);
    } else if (il4 + 4 <= end) {
      u8[il4 + 2] = nat.natPort(flow) >>> 8;
      u8[il4 + 3] = nat.natPort(flow) & 255;
    }
  } else if (iproto === IPPROTO_ICMP && il4 + 8 <= end) {
    l4SetPort(u8, il4, ICMP_ID, nat.natPort(flow), ICMP_CSUM, false);
  }
  icmpSetChecksum(u8, l4, end - l4);
}
