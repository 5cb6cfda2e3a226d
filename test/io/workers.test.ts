// The addon in worker_threads: two workers load it at the same time (a NAN addon would fail here with
// "Module did not self-register"), each does a readBatch/writeBatch round trip on its own eventfd and
// blocks in epollWait on a shared stop eventfd that the main thread signals (the shutdown path) while
// the main thread uses the addon too. As root each worker also owns one queue of a multi-queue TAP
// inside a test namespace: it writes frames there and reads the flows the kernel hashes to it.
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { ADDON, hasPython, ip, linkStats, liveSkipReason, nsRun, sleep, tryIp, writeArp } from './helpers.js';

// Plain CommonJS (workers do not get vitest's TypeScript transform): the raw addon, positional args.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const m = require(workerData.addon);
const { id, tapFd, stopFd, frame, writes } = workerData;
const SLOT = 2048, N = 32;
const arena = new Uint8Array(new SharedArrayBuffer(N * SLOT));
const dv = new DataView(arena.buffer);
const offs = new Uint32Array(N).map((_, i) => i * SLOT + 64);
const lens = new Uint32Array(N);
const efd = m.eventfdCreate(0);
dv.setBigUint64(offs[0], BigInt(100 + id), true);
lens[0] = 8;
const w = m.writeBatch(efd, arena, offs, lens, 1, 0);
lens[0] = 0;
dv.setBigUint64(offs[0], 0n, true);
const r = m.readBatch(efd, arena, offs, lens, 1, SLOT - 64, 0);
const efdValue = Number(dv.getBigUint64(offs[0], true));
const efdLen = lens[0];
const ep = m.epollCreate();
m.epollAdd(ep, stopFd);
if (tapFd >= 0) m.epollAdd(ep, tapFd);
let written = 0;
if (tapFd >= 0) {
  arena.set(frame, offs[0]);
  lens[0] = frame.length;
  for (let i = 0; i < writes; i++) written += m.writeBatch(tapFd, arena, offs, lens, 1, 1);
}
parentPort.postMessage({ type: 'ready', id });
let read = 0, timedOut = false, stopped = false;
const ready = new Int32Array(4);
while (!stopped) {
  const n = m.epollWait(ep, ready, 10000);
  if (n === 0) { timedOut = true; break; }
  for (let i = 0; i < n; i++) {
    if (ready[i] === stopFd) stopped = true; // level-triggered and never read: wakes every worker
    else read += m.readBatch(tapFd, arena, offs, lens, N, SLOT - 64, 1);
  }
}
m.close(ep);
m.close(efd);
parentPort.postMessage({ type: 'done', id, w, r, efdLen, efdValue, written, read, timedOut });
`;

interface Done {
  type: 'done';
  id: number;
  w: number;
  r: number;
  efdLen: number;
  efdValue: number;
  written: number;
  read: number;
  timedOut: boolean;
}

const pid = process.pid;
const NS = `cttwns${pid}`;
const TAP = `cttw${pid}`;
const live = liveSkipReason === '';
const cleanup: (() => void)[] = [];

afterAll(() => {
  for (const f of cleanup.reverse()) f();
});

describe('addon in worker threads', () => {
  it(`loads in two workers at once and in the main thread; epoll wake-up via eventfd${live ? ' (+ TAP queue per worker)' : ` (TAP part skipped: ${liveSkipReason})`}`, async () => {
    expect(ADDON).toBeDefined();
    const tapFds = [-1, -1];
    if (live) {
      tryIp('netns', 'del', NS);
      ip('netns', 'add', NS);
      cleanup.push(() => tryIp('netns', 'del', NS));
      tapFds[0] = io.tapOpen(TAP, { multiQueue: true }).fd;
      tapFds[1] = io.tapOpen(TAP, { multiQueue: true }).fd;
      cleanup.push(() => tapFds.forEach((fd) => io.close(fd)));
      ip('link', 'set', TAP, 'netns', NS);
      ip('netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${TAP}.disable_ipv6=1`);
      ip('-n', NS, 'addr', 'add', '10.251.3.1/24', 'dev', TAP);
      ip('-n', NS, 'link', 'set', TAP, 'up');
      ip('-n', NS, 'neigh', 'replace', '10.251.3.2', 'lladdr', '02:00:00:00:03:02', 'dev', TAP);
    }
    const frame = new Uint8Array(60);
    writeArp(
      frame,
      0,
      1,
      'ff:ff:ff:ff:ff:ff',
      '02:00:00:00:03:02',
      '10.251.3.2',
      '00:00:00:00:00:00',
      '10.251.3.1',
    );
    const writes = 5;
    const rxBefore = live ? linkStats(TAP, NS).rx : 0;

    const stopFd = io.eventfdCreate();
    cleanup.push(() => io.close(stopFd));
    const workers = [0, 1].map(
      (id) =>
        new Worker(WORKER, {
          eval: true,
          workerData: { addon: ADDON, id, tapFd: tapFds[id], stopFd, frame, writes },
        }),
    );
    cleanup.push(() => workers.forEach((w) => void w.terminate()));
    const ready = workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.on('message', (m: { type: string }) => m.type === 'ready' && resolve());
          w.on('error', reject);
        }),
    );
    const done = workers.map(
      (w) =>
        new Promise<Done>((resolve, reject) => {
          w.on('message', (m: Done) => m.type === 'done' && resolve(m));
          w.on('error', reject);
          w.on('exit', (code) => reject(new Error(`worker exited ${code} before reporting`)));
        }),
    );
    await Promise.all(ready);

    // The main thread's own instance, while both workers sit in epoll_wait.
    const mine = io.eventfdCreate();
    io.eventfdWrite(mine, 7);
    expect(io.eventfdRead(mine)).toBe(7);
    io.close(mine);

    const flows = 64;
    if (live) {
      const gen = hasPython
        ? nsRun(NS, [
            'python3',
            '-c',
            `import socket\nfor i in range(${flows}):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n s.sendto(b'w'*32,('10.251.3.2',9000))\n s.close()`,
          ])
        : nsRun(NS, ['ping', '-c', String(flows), '-i', '0.01', '-W', '0.1', '10.251.3.2']);
      expect((await gen).code).toBe(0);
      await sleep(300);
    }
    io.eventfdWrite(stopFd); // shutdown: wakes both workers
    const results = await Promise.all(done);
    for (const r of results) {
      expect(r.timedOut).toBe(false);
      expect(r.w).toBe(1);
      expect(r.r).toBe(1);
      expect(r.efdLen).toBe(8);
      expect(r.efdValue).toBe(100 + r.id);
    }
    if (live) {
      expect(results.map((r) => r.written)).toEqual([writes, writes]);
      expect(results[0].read + results[1].read).toBeGreaterThanOrEqual(flows);
      expect(linkStats(TAP, NS).rx - rxBefore).toBeGreaterThanOrEqual(2 * writes);
    }
  });
});
