// Helpers for the native I/O tests: root detection, `ip`/namespace plumbing with guaranteed cleanup,
// frame builders (ARP, IPv4/UDP/ICMP) and a poll-and-read loop over a SharedArrayBuffer arena.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { nativeAddonPath, poll, readBatch } from '../../src/dataplane/devices/native.js';

export const isRoot = process.getuid?.() === 0;
export const hasIp = existsSync('/usr/sbin/ip') || existsSync('/sbin/ip') || existsSync('/usr/bin/ip');
export const hasTcpdump = (() => {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
export const hasPython = (() => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Why the live tests skip here, or '' when they can run. */
export const liveSkipReason = !isRoot
  ? 'needs root (CAP_NET_ADMIN for TAP, netns, veth)'
  : !hasIp
    ? 'needs iproute2 (`ip`)'
    : !existsSync('/dev/net/tun')
      ? 'needs /dev/net/tun'
      : '';
if (liveSkipReason) console.warn(`test/io: live TAP/packet-socket tests skipped: ${liveSkipReason}`);

export const ADDON = nativeAddonPath();

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function ip(...args: string[]): string {
  return sh('ip', args);
}

/** Runs and ignores failure (cleanup). */
export function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    /* already gone */
  }
}

/** Runs cmd inside netns `ns` and resolves with its exit code (stdout/stderr collected). */
export function nsRun(ns: string, cmd: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** `ip -s -j link show dev` counters of an interface (in netns ns, or the current one). */
export function linkStats(dev: string, ns?: string): { rx: number; tx: number } {
  const args = ns
    ? ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev]
    : ['-s', '-j', 'link', 'show', 'dev', dev];
  const j = JSON.parse(ip(...args)) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[];
  return { rx: j[0].stats64.rx.packets, tx: j[0].stats64.tx.packets };
}

export function ipv4(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function macBytes(text: string): number[] {
  return text.split(':').map((h) => parseInt(h, 16));
}

export function macText(u8: Uint8Array, off: number): string {
  return Array.from(u8.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** One's-complement checksum of u8[off, off+len). */
export function csum(u8: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len - 1; i += 2) s += (u8[off + i] << 8) | u8[off + i + 1];
  if (len & 1) s += u8[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Writes an Ethernet+ARP frame at off; returns its length (42). */
export function writeArp(
  u8: Uint8Array,
  off: number,
  op: 1 | 2,
  ethDst: string,
  sha: string,
  spa: string,
  tha: string,
  tpa: string,
): number {
  const dv = new DataView(u8.buffer, u8.byteOffset);
  u8.set(macBytes(ethDst), off);
  u8.set(macBytes(sha), off + 6);
  dv.setUint16(off + 12, 0x0806);
  dv.setUint16(off + 14, 1); // Ethernet
  dv.setUint16(off + 16, 0x0800);
  u8[off + 18] = 6;
  u8[off + 19] = 4;
  dv.setUint16(off + 20, op);
  u8.set(macBytes(sha), off + 22);
  dv.setUint32(off + 28, ipv4(spa));
  u8.set(macBytes(tha), off + 32);
  dv.setUint32(off + 38, ipv4(tpa));
  return 42;
}

export interface ArpInfo {
  op: number;
  sha: string;
  spa: number;
  tpa: number;
}

export function parseArp(u8: Uint8Array, off: number, len: number): ArpInfo | null {
  const dv = new DataView(u8.buffer, u8.byteOffset);
  if (len < 42 || dv.getUint16(off + 12) !== 0x0806) return null;
  return {
    op: dv.getUint16(off + 20),
    sha: macText(u8, off + 22),
    spa: dv.getUint32(off + 28),
    tpa: dv.getUint32(off + 38),
  };
}

/** IPv4 protocol and addresses of an Ethernet frame, or null. */
export function parseIp4(
  u8: Uint8Array,
  off: number,
  len: number,
): { proto: number; src: number; dst: number; ihl: number; dport: number } | null {
  const dv = new DataView(u8.buffer, u8.byteOffset);
  if (len < 34 || dv.getUint16(off + 12) !== 0x0800) return null;
  const ihl = (u8[off + 14] & 0x0f) * 4;
  const proto = u8[off + 23];
  const dport = proto === 17 && len >= 14 + ihl + 4 ? dv.getUint16(off + 14 + ihl + 2) : 0;
  return { proto, src: dv.getUint32(off + 26), dst: dv.getUint32(off + 30), ihl, dport };
}

/**
 * Turns the ICMP echo request at `off` into its echo reply in place (swap MACs and addresses, type 0,
 * fresh ICMP checksum; the IPv4 checksum is unchanged by the swap).
 */
export function echoReplyInPlace(u8: Uint8Array, off: number, len: number): void {
  const tmp = u8.slice(off, off + 6);
  u8.copyWithin(off, off + 6, off + 12);
  u8.set(tmp, off + 6);
  const src = u8.slice(off + 26, off + 30);
  u8.copyWithin(off + 26, off + 30, off + 34);
  u8.set(src, off + 30);
  const ihl = (u8[off + 14] & 0x0f) * 4;
  const icmp = off + 14 + ihl;
  const totalLen = (u8[off + 16] << 8) | u8[off + 17];
  const icmpLen = Math.min(totalLen - ihl, len - 14 - ihl);
  u8[icmp] = 0;
  u8[icmp + 2] = 0;
  u8[icmp + 3] = 0;
  const c = csum(u8, icmp, icmpLen);
  u8[icmp + 2] = c >> 8;
  u8[icmp + 3] = c & 0xff;
}

/** A worker-style receive batch over a SharedArrayBuffer arena. */
export class RxBatch {
  readonly arena: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly offsets: Uint32Array;
  readonly lens: Uint32Array;
  constructor(
    readonly size = 64,
    readonly slot = 2048,
  ) {
    this.arena = new SharedArrayBuffer(size * slot);
    this.u8 = new Uint8Array(this.arena);
    this.offsets = new Uint32Array(size);
    this.lens = new Uint32Array(size);
    for (let i = 0; i < size; i++) this.offsets[i] = i * slot + 64; // 64 bytes of headroom
  }
  get capacity(): number {
    return this.slot - 64;
  }
}

/**
 * Polls fds and reads batches until `done(frames so far)` is true or timeoutMs passes. Calls
 * onFrame(fdIndex, batch, i) per frame read. Blocks the thread in poll() (bounded by timeoutMs).
 */
export function pumpUntil(
  fds: number[],
  batch: RxBatch,
  timeoutMs: number,
  onFrame: (fdIndex: number, b: RxBatch, i: number) => void,
  done: () => boolean,
): void {
  const pfds = Int32Array.from(fds);
  const end = Date.now() + timeoutMs;
  while (!done() && Date.now() < end) {
    const bits = poll(pfds, Math.max(1, Math.min(100, end - Date.now())));
    for (let k = 0; k < fds.length; k++) {
      if (!(bits & (1 << k))) continue;
      const n = readBatch(fds[k], batch.u8, batch.offsets, batch.lens, batch.size, batch.capacity);
      for (let i = 0; i < n; i++) onFrame(k, batch, i);
    }
  }
}

/** Sleeps without blocking the event loop. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lets spawned commands run while the main thread would otherwise block in poll(). */
export async function pumpAsync(
  fds: number[],
  batch: RxBatch,
  timeoutMs: number,
  onFrame: (fdIndex: number, b: RxBatch, i: number) => void,
  done: () => boolean,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done() && Date.now() < end) {
    pumpUntil(fds, batch, 20, onFrame, done);
    await sleep(5);
  }
}
