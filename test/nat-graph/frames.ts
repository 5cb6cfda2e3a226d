// Frames the NAT graph tests build at test time: the Internet side's answers to what calitap sent (they
// depend on the nat ip:port calitap chose) and ICMP errors quoting translated packets. Built with the wire
// modules' emitters and full (not incremental) checksums, into fresh arrays owned by the test.
import { emitEthernet } from '../../src/dataplane/wire/ethernet.js';
import { emitIp4Header } from '../../src/dataplane/wire/ipv4.js';
import { tcpSetChecksum } from '../../src/dataplane/wire/tcp.js';
import { udpSetChecksum } from '../../src/dataplane/wire/udp.js';
import { icmpSetChecksum } from '../../src/dataplane/wire/icmp4.js';
import { ip, type Frame } from '../encap/helpers.js';

function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((b) => parseInt(b, 16)));
}

export interface PacketOpts {
  ethSrc: string;
  ethDst: string;
  src: string;
  dst: string;
  proto: number;
  /** the L4 header and payload; its checksum is computed here */
  l4: Uint8Array;
  ttl?: number;
  id?: number;
  df?: boolean;
  /** seconds (fractions allowed) */
  t: number;
}

/** An Ethernet + IPv4 frame with correct IPv4 and L4 (TCP/UDP/ICMP) checksums. */
export function packet(o: PacketOpts): Frame {
  const u8 = new Uint8Array(14 + 20 + o.l4.length);
  emitEthernet(u8, 0, macBytes(o.ethDst), macBytes(o.ethSrc), 0x0800);
  emitIp4Header(
    u8,
    14,
    ip(o.src),
    ip(o.dst),
    o.proto,
    20 + o.l4.length,
    o.ttl ?? 60,
    o.id ?? 0x4242,
    o.df ? 0x4000 : 0,
    0,
  );
  u8.set(o.l4, 34);
  if (o.proto === 6) tcpSetChecksum(u8, 14);
  else if (o.proto === 17) udpSetChecksum(u8, 14);
  else if (o.proto === 1) icmpSetChecksum(u8, 34, o.l4.length);
  const sec = Math.floor(o.t);
  return { bytes: u8, tsSec: sec, tsNsec: Math.round((o.t - sec) * 1e9) };
}

export function tcpSeg(sport: number, dport: number, seq: number, ack: number, flags: number): Uint8Array {
  const h = new Uint8Array(20);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, sport);
  dv.setUint16(2, dport);
  dv.setUint32(4, seq);
  dv.setUint32(8, ack);
  h[12] = 5 << 4;
  h[13] = flags;
  dv.setUint16(14, 65535);
  return h;
}

export function udpDgram(sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const d = new Uint8Array(8 + payload.length);
  const dv = new DataView(d.buffer);
  dv.setUint16(0, sport);
  dv.setUint16(2, dport);
  dv.setUint16(4, d.length);
  d.set(payload, 8);
  return d;
}

/** An ICMP message: type, code, the 4 bytes after the checksum (id/seq, unused/MTU...), then data. */
export function icmpMsg(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[1] = code;
  new DataView(m.buffer).setUint32(4, rest >>> 0);
  m.set(data, 8);
  return m;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;
