// Native TAP I/O benchmark (root only; not a test): frames/s through readBatch/writeBatch with the
// kernel in the loop. Two TAPs go into a throwaway namespace with IPv4 forwarding on; we writeBatch
// 64-byte UDP frames into TAP A (addressed to A's MAC), the namespace's kernel routes them out of TAP B
// (static neighbour), and we readBatch them back from B. One thread, so the numbers are "one worker
// core incl. the kernel's forwarding work done in our syscalls".
// Run: `npx tsc -p tsconfig.build.json && node dist/bench/io.bench.js [--seconds 3] [--batch 64]`.
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import * as io from '../src/dataplane/devices/native.js';

export interface IoBenchResult {
  batch: number;
  seconds: number;
  written: number;
  read: number;
  /** frames/s accepted by writeBatch */
  writePps: number;
  /** frames/s returned by readBatch (after the kernel forwarded them) */
  readPps: number;
  /** wall time inside writeBatch / readBatch per frame */
  writeNsPerFrame: number;
  readNsPerFrame: number;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

export function runIoBench(seconds = 3, batch = 64): IoBenchResult {
  const pid = process.pid;
  const ns = `cttbns${pid}`;
  const a = `ctba${pid}`;
  const b = `ctbb${pid}`;
  const fdA = io.tapOpen(a).fd;
  const fdB = io.tapOpen(b).fd;
  try {
    const macA = io.ifMac(a);
    io.setTxQueueLen(a, 10000);
    io.setTxQueueLen(b, 10000);
    ip('netns', 'add', ns);
    for (const d of [a, b]) ip('link', 'set', d, 'netns', ns);
    ip('netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0');
    ip('-n', ns, 'addr', 'add', '10.253.0.1/24', 'dev', a);
    ip('-n', ns, 'addr', 'add', '10.253.1.1/24', 'dev', b);
    ip('-n', ns, 'link', 'set', a, 'up');
    ip('-n', ns, 'link', 'set', b, 'up');
    ip('-n', ns, 'neigh', 'replace', '10.253.1.2', 'lladdr', '02:00:00:00:bb:02', 'dev', b);

    const slot = 2048;
    const tx = new Uint8Array(new SharedArrayBuffer(batch * slot));
    const rx = new Uint8Array(new SharedArrayBuffer(batch * slot));
    const txOff = new Uint32Array(batch);
    const txLen = new Uint32Array(batch);
    const rxOff = new Uint32Array(batch);
    const rxLen = new Uint32Array(batch);
    const frame = udpFrame(macA);
    for (let i = 0; i < batch; i++) {
      txOff[i] = rxOff[i] = i * slot + 128;
      txLen[i] = frame.length;
      tx.set(frame, txOff[i]);
    }
    // warm-up (and let IPv6 DAD chatter pass)
    const drain = (): number => {
      let n = 0;
      for (let r; (r = io.readBatch(fdB, rx, rxOff, rxLen, batch, slot - 128)) > 0;) n += r;
      return n;
    };
    for (let i = 0; i < 1000; i++) {
      io.writeBatch(fdA, tx, txOff, txLen, batch);
      drain();
    }
    let written = 0;
    let read = 0;
    let wNs = 0n;
    let rNs = 0n;
    const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    const t0 = process.hrtime.bigint();
    let now = t0;
    while (now < end) {
      const start = now;
      written += io.writeBatch(fdA, tx, txOff, txLen, batch);
      const mid = process.hrtime.bigint();
      read += drain();
      now = process.hrtime.bigint();
      wNs += mid - start;
      rNs += now - mid;
    }
    const total = Number(now - t0);
    return {
      batch,
      seconds: total / 1e9,
      written,
      read,
      writePps: written / (total / 1e9),
      readPps: read / (total / 1e9),
      writeNsPerFrame: Number(wNs) / Math.max(1, written),
      readNsPerFrame: Number(rNs) / Math.max(1, read),
    };
  } finally {
    io.close(fdA);
    io.close(fdB);
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not created */
    }
  }
}

/** Ethernet + IPv4 + UDP, 60 bytes, 10.253.0.2:1234 → 10.253.1.2:9, to dstMac. */
function udpFrame(dstMac: string): Uint8Array {
  const f = new Uint8Array(60);
  const dv = new DataView(f.buffer);
  f.set(
    dstMac.split(':').map((h) => parseInt(h, 16)),
    0,
  );
  f.set([0x02, 0, 0, 0, 0xaa, 0x02], 6);
  dv.setUint16(12, 0x0800);
  f.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 253, 0, 2, 10, 253, 1, 2], 14);
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += dv.getUint16(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  dv.setUint16(24, ~s & 0xffff);
  dv.setUint16(34, 1234);
  dv.setUint16(36, 9);
  dv.setUint16(38, 26);
  return f;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  if (process.getuid?.() !== 0) {
    console.log('io.bench: skipped (needs root for TAP devices and a network namespace)');
  } else {
    const r = runIoBench(arg('--seconds', 3), arg('--batch', 64));
    console.log(
      `io.bench: batch ${r.batch}: writeBatch ${(r.writePps / 1e6).toFixed(3)} Mpps ` +
        `(${r.writeNsPerFrame.toFixed(0)} ns/frame incl. kernel forwarding), ` +
        `readBatch ${(r.readPps / 1e6).toFixed(3)} Mpps (${r.readNsPerFrame.toFixed(0)} ns/frame), ` +
        `${r.written} written, ${r.read} read (${Math.max(0, 100 * (1 - r.read / Math.max(1, r.written))).toFixed(1)} % lost)`,
    );
  }
}
