// Shared harness of the encapsulation (test/encap) and NAT graph (test/nat-graph) tests: programs a node
// from pcaps/encap/cluster.yaml, replays scapy-made captures through the real graph with outputs kept in
// memory, and checks the outputs three ways: field readers written here from the RFCs (not the wire
// modules, so a wire bug cannot hide itself), scapy (pcaps/encap/decode.py) and tshark. The external
// decoders are optional: when missing, the checks using them are skipped with the reason printed.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { replay, type ReplayResult } from '../../src/dataplane/replay.js';
import { openCaptureBytes } from '../../src/dataplane/devices/pcap/reader.js';
import { PcapWriter } from '../../src/dataplane/devices/pcap/writer.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CAP_DIR = path.join(ROOT, 'pcaps/encap');
export const PY = '/usr/bin/python3';

export const NODE_A = '10.0.0.1';
export const NODE_B = '10.0.0.2';
export const NODE_C = '10.1.0.3';
export const MAC = {
  nodeA: '52:54:00:00:00:0a',
  nodeB: '52:54:00:00:00:0b',
  nodeC: '52:54:00:00:00:0c',
  gwA: '52:54:00:00:00:fe',
  gwC: '52:54:00:00:01:fe',
  vtepA: '66:07:02:c1:cc:60',
  vtepB: '66:89:3a:22:7a:ac',
  vtepC: '66:1a:b9:f1:6e:af',
  ee: 'ee:ee:ee:ee:ee:ee',
  a65: '0a:58:0a:41:00:02',
  a66: '0a:58:0a:42:00:02',
  b66: '0a:58:0a:42:00:42',
};

export function cap(name: string): string {
  return path.join(CAP_DIR, name);
}

const CLUSTER = fs.readFileSync(cap('cluster.yaml'), 'utf8');

/** The cluster config plus extra YAML documents (e.g. a FelixConfiguration). */
export function program(
  node: string,
  extraYaml = '',
  opts: { natSeed?: number; natCapacity?: number } = {},
): Programmer {
  const text = extraYaml === '' ? CLUSTER : `${CLUSTER}\n---\n${extraYaml}`;
  return new Programmer(loadConfigText(text, 'cluster.yaml'), node, { natSeed: 0, ...opts });
}

export interface Frame {
  bytes: Uint8Array;
  tsSec: number;
  tsNsec: number;
}

export interface Run {
  res: ReplayResult;
  /** port name → frames it transmitted */
  out: Map<string, Frame[]>;
  /** "node: reason" → value (non-zero counters only) */
  counters: Record<string, number>;
  tx(port: string): Frame[];
}

/** Replays `inputs` (port → capture path) on the programmer's dataplane; outputs stay in memory. */
export function run(prog: Programmer, inputs: Record<string, string>): Run {
  const res = replay(prog.env, {
    inputs: Object.entries(inputs).map(([port, p]) => ({ port, path: p })),
    outDir: null,
  });
  const out = new Map<string, Frame[]>();
  for (const [port, bytes] of res.outputs) out.set(port, framesOf(bytes));
  const counters: Record<string, number> = {};
  for (const c of res.counters) counters[`${c.node}: ${c.reason}`] = c.value;
  return { res, out, counters, tx: (p) => out.get(p) ?? [] };
}

/** The frames of a pcap held in memory. */
export function framesOf(pcap: Uint8Array): Frame[] {
  const r = openCaptureBytes(pcap);
  const frames: Frame[] = [];
  try {
    while (r.next()) {
      // a copy in a plain Uint8Array (Buffer#slice would be a view into the capture)
      const bytes = Uint8Array.prototype.slice.call(r.buf, r.dataOffset, r.dataOffset + r.capLen);
      frames.push({ bytes, tsSec: r.tsSec, tsNsec: r.tsNsec });
    }
  } finally {
    r.close();
  }
  return frames;
}

export function readCapture(name: string): Frame[] {
  return framesOf(new Uint8Array(fs.readFileSync(cap(name))));
}

/** Writes frames as a classic pcap (nanosecond timestamps are truncated to microseconds). */
export function writePcap(file: string, frames: Frame[]): string {
  const w = new PcapWriter(file);
  for (const f of frames) w.write(f.bytes, 0, f.bytes.length, f.tsSec, f.tsNsec);
  w.close();
  return file;
}

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `calitap-${tag}-`));
}

// ------------------------------------------------------------------------------- independent readers

export function ip(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
export function ipStr(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}
export function macStr(u8: Uint8Array, off = 0): string {
  return Array.from(u8.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}
export function hex(u8: Uint8Array): string {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
}
export function u16(u8: Uint8Array, o: number): number {
  return (u8[o] << 8) | u8[o + 1];
}
export function u32(u8: Uint8Array, o: number): number {
  return ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
}

/** RFC 1071 sum of 16-bit words, folded (not complemented). */
export function sum16(u8: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let k = 0; k + 1 < len; k += 2) s += (u8[off + k] << 8) | u8[off + k + 1];
  if (len & 1) s += u8[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export interface Ip4 {
  off: number;
  hlen: number;
  tos: number;
  len: number;
  id: number;
  df: boolean;
  mf: boolean;
  fragOff: number;
  ttl: number;
  proto: number;
  src: string;
  dst: string;
  csumOk: boolean;
  l4: number;
}

export function ip4At(u8: Uint8Array, off: number): Ip4 {
  const hlen = (u8[off] & 15) * 4;
  const fw = u16(u8, off + 6);
  return {
    off,
    hlen,
    tos: u8[off + 1],
    len: u16(u8, off + 2),
    id: u16(u8, off + 4),
    df: (fw & 0x4000) !== 0,
    mf: (fw & 0x2000) !== 0,
    fragOff: fw & 0x1fff,
    ttl: u8[off + 8],
    proto: u8[off + 9],
    src: ipStr(u32(u8, off + 12)),
    dst: ipStr(u32(u8, off + 16)),
    csumOk: u8[off] >> 4 === 4 && sum16(u8, off, hlen) === 0xffff,
    l4: off + hlen,
  };
}

/** True when the TCP/UDP checksum of the (unfragmented) datagram at ipOff verifies (UDP 0: none). */
export function l4ChecksumOk(u8: Uint8Array, ipOff: number): boolean {
  const h = ip4At(u8, ipOff);
  const l4len = h.len - h.hlen;
  if (h.proto === 17 && u16(u8, h.l4 + 6) === 0) return true;
  if (h.proto === 1) return sum16(u8, h.l4, l4len) === 0xffff;
  const pseudo =
    (u32(u8, ipOff + 12) >>> 16) +
    (u32(u8, ipOff + 12) & 0xffff) +
    (u32(u8, ipOff + 16) >>> 16) +
    (u32(u8, ipOff + 16) & 0xffff) +
    h.proto +
    l4len;
  return sum16(u8, h.l4, l4len, pseudo) === 0xffff;
}

export interface Eth {
  dst: string;
  src: string;
  type: number;
}
export function ethAt(u8: Uint8Array, off = 0): Eth {
  return { dst: macStr(u8, off), src: macStr(u8, off + 6), type: u16(u8, off + 12) };
}

/** Bytes of the IP packet (after a 14-byte Ethernet header) of an input frame, TTL lowered by `hops`. */
export function forwarded(frame: Uint8Array, hops = 1): Uint8Array {
  const p = Uint8Array.prototype.slice.call(frame, 14, 14 + u16(frame, 16));
  p[8] -= hops;
  p[10] = 0;
  p[11] = 0;
  const c = ~sum16(p, 0, (p[0] & 15) * 4) & 0xffff;
  p[10] = c >>> 8;
  p[11] = c & 255;
  return p;
}

// ------------------------------------------------------------------------------- external decoders

function probe(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  if (r.error) return `${cmd}: ${r.error.message}`;
  if (r.status !== 0)
    return `${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`;
  return null;
}

/** null when scapy is usable, else why not (the checks print it and are skipped). */
export const SCAPY_MISSING: string | null = probe(PY, ['-c', 'import scapy.all']);
export const TSHARK_MISSING: string | null = probe('tshark', ['-v']);

export interface ScapyLayer {
  layer: string;
  csum_ok?: boolean | null;
  csum_zero?: boolean;
  is_fragment?: boolean;
  options_hex?: string;
  [field: string]: unknown;
}
export interface ScapyFile {
  frames: ScapyLayer[][];
  reassembled: { bytes: string; layers: ScapyLayer[] }[];
}

/** Decodes pcap files with pcaps/encap/decode.py (one scapy start for all of them). */
export function scapyDecode(files: string[]): Record<string, ScapyFile> {
  const outText = execFileSync(PY, [cap('decode.py'), ...files], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(outText) as Record<string, ScapyFile>;
}

/** Layers of one frame by name, in order (e.g. two 'IP' for IPIP). */
export function layers(frame: ScapyLayer[], name: string): ScapyLayer[] {
  return frame.filter((l) => l.layer === name);
}

/** Every checksum scapy judged in a frame: [layer name, verdict] (null verdicts left out). */
export function verdicts(frame: ScapyLayer[]): [string, boolean][] {
  return frame
    .filter((l) => typeof l.csum_ok === 'boolean')
    .map((l) => [l.layer, l.csum_ok as boolean] as [string, boolean]);
}

export interface TsharkRow {
  frame: number;
  ip: string;
  udp: string;
  tcp: string;
  icmp: string;
  expert: string;
}

/**
 * tshark's checksum verdicts per frame (1 good, 0 bad, 2 unverified, 3 not present: Wireshark's
 * checksum.status values), with IPv4/UDP/TCP validation on.
 */
export function tsharkChecksums(file: string): TsharkRow[] {
  const outText = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-o',
      'ip.check_checksum:TRUE',
      '-o',
      'udp.check_checksum:TRUE',
      '-o',
      'tcp.check_checksum:TRUE',
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'frame.number',
      '-e',
      'ip.checksum.status',
      '-e',
      'udp.checksum.status',
      '-e',
      'tcp.checksum.status',
      '-e',
      'icmp.checksum.status',
      '-e',
      '_ws.expert.message',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return outText
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [frame, ipS, udp, tcp, icmp, expert] = l.split('|');
      return { frame: Number(frame), ip: ipS, udp, tcp, icmp, expert: expert ?? '' };
    });
}

/** True when tshark found a bad checksum in the row (status 0 anywhere, or a "Bad checksum" note). */
export function tsharkRowBad(r: TsharkRow): boolean {
  return (
    [r.ip, r.udp, r.tcp, r.icmp].some((s) => s.split(',').includes('0')) || /Bad checksum/i.test(r.expert)
  );
}

/**
 * Runs tshark once over the frames of several groups (one tshark start instead of one per file) and
 * returns, per group, the rows tshark judged bad (frame numbers counted within the group, from 1).
 */
export function tsharkBadByGroup(dir: string, groups: Record<string, Frame[]>): Record<string, TsharkRow[]> {
  const all: Frame[] = [];
  const where: { key: string; first: number; n: number }[] = [];
  for (const [key, frames] of Object.entries(groups)) {
    where.push({ key, first: all.length + 1, n: frames.length });
    all.push(...frames);
  }
  const rows = tsharkChecksums(writePcap(path.join(dir, 'tshark-all.pcap'), all));
  if (rows.length !== all.length)
    throw new Error(`tshark printed ${rows.length} rows for ${all.length} frames`);
  const out: Record<string, TsharkRow[]> = {};
  for (const w of where) {
    out[w.key] = rows
      .filter((r) => r.frame >= w.first && r.frame < w.first + w.n && tsharkRowBad(r))
      .map((r) => ({ ...r, frame: r.frame - w.first + 1 }));
  }
  return out;
}
