// Live TAP tests (root): a TAP opened here is moved into a namespace made by the test (our fd keeps
// working across the move), the namespace's kernel ARPs and pings through it, and we answer with
// writeBatch: ARP reply, then the echo reply, so `ping` itself succeeds. Multi-queue: two queues of one
// TAP, flows spread across them. Everything made here is deleted in afterAll.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import {
  echoReplyInPlace,
  hasPython,
  ip,
  ipv4,
  linkStats,
  liveSkipReason,
  nsRun,
  parseArp,
  parseIp4,
  pumpAsync,
  RxBatch,
  tryIp,
  writeArp,
} from './helpers.js';

const pid = process.pid;
const NS = `cttns${pid}`;
const fds: number[] = [];

function open(name: string, flags?: io.TapFlags): io.TapHandle {
  const h = io.tapOpen(name, flags);
  fds.push(h.fd);
  return h;
}

function closeAll(): void {
  while (fds.length) {
    try {
      io.close(fds.pop()!);
    } catch {
      /* already closed */
    }
  }
}

describe.skipIf(liveSkipReason !== '')(
  `TAP queues (live${liveSkipReason ? `: skipped, ${liveSkipReason}` : ''})`,
  () => {
    beforeAll(() => {
      tryIp('netns', 'del', NS);
      ip('netns', 'add', NS);
      ip('-n', NS, 'link', 'set', 'lo', 'up');
    });

    afterAll(() => {
      closeAll(); // non-persistent TAPs vanish with their last fd
      tryIp('netns', 'del', NS);
    });

    it('opens a TAP, configures it by ioctl, answers ARP and ping from a namespace', async () => {
      const tap = `ctt${pid}`;
      const { fd, name } = open(tap);
      expect(name).toBe(tap);
      expect(io.ifIndex(tap)).toBeGreaterThan(0);
      const hostMac = io.ifMac(tap);
      expect(hostMac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      io.setTxQueueLen(tap, 5000);
      io.ifSetMtu(tap, 1400);
      io.ifSetUp(tap);
      expect(readFileSync(`/sys/class/net/${tap}/tx_queue_len`, 'utf8').trim()).toBe('5000');
      expect(readFileSync(`/sys/class/net/${tap}/mtu`, 'utf8').trim()).toBe('1400');
      expect(Number(readFileSync(`/sys/class/net/${tap}/flags`, 'utf8')) & 1).toBe(1);
      io.ifSetUp(tap, false);
      expect(Number(readFileSync(`/sys/class/net/${tap}/flags`, 'utf8')) & 1).toBe(0);
      // Opening a second (non-multi-queue) fd on a busy TAP is refused.
      expect(() => io.tapOpen(tap)).toThrow(/TUNSETIFF: Device or resource busy \(EBUSY\)/);

      ip('link', 'set', tap, 'netns', NS);
      ip('-n', NS, 'addr', 'add', '10.251.0.1/24', 'dev', tap);
      ip('-n', NS, 'link', 'set', tap, 'up');

      const peerMac = '02:00:00:00:00:02';
      const b = new RxBatch(64);
      const tx = new RxBatch(4);
      const seen = { arpRequests: 0, echoRequests: 0, echoReplied: 0, truncated: 0 };
      const ping = nsRun(NS, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.251.0.2']);
      let pingDone = false;
      void ping.then(() => (pingDone = true));
      await pumpAsync(
        [fd],
        b,
        8000,
        (_k, batch, i) => {
          const off = batch.offsets[i];
          const len = batch.lens[i];
          if (len > batch.capacity) seen.truncated++;
          const arp = parseArp(batch.u8, off, len);
          if (arp && arp.op === 1 && arp.tpa === ipv4('10.251.0.2')) {
            seen.arpRequests++;
            tx.lens[0] = writeArp(
              tx.u8,
              tx.offsets[0],
              2,
              arp.sha,
              peerMac,
              '10.251.0.2',
              arp.sha,
              '10.251.0.1',
            );
            expect(io.writeBatch(fd, tx.arena, tx.offsets, tx.lens, 1)).toBe(1);
            return;
          }
          const p = parseIp4(batch.u8, off, len);
          if (p && p.proto === 1 && p.dst === ipv4('10.251.0.2') && batch.u8[off + 14 + p.ihl] === 8) {
            seen.echoRequests++;
            // reply from the receive slot itself: the arena is the write buffer too
            echoReplyInPlace(batch.u8, off, len);
            const st = new Int32Array(1);
            expect(
              io.writeBatch(fd, batch.u8, batch.offsets.subarray(i), batch.lens.subarray(i), 1, st),
            ).toBe(1);
            expect(st[0]).toBe(0);
            seen.echoReplied++;
          }
        },
        () => pingDone,
      );
      const res = await ping;
      expect(seen.arpRequests).toBeGreaterThanOrEqual(1);
      expect(seen.echoRequests).toBe(2);
      expect(seen.truncated).toBe(0);
      expect(res.out).toMatch(/2 received/);
      expect(res.code).toBe(0);
      expect(ip('-n', NS, 'neigh', 'show', '10.251.0.2')).toContain(peerMac);
      // The kernel counted what we wrote as received on the TAP.
      expect(linkStats(tap, NS).rx).toBeGreaterThanOrEqual(1 + seen.echoReplied);

      // A frame shorter than an Ethernet header is the kernel's to refuse: a counted drop, not a throw.
      tx.lens[0] = 6;
      const st = new Int32Array(1);
      expect(io.writeBatch(fd, tx.u8, tx.offsets, tx.lens, 1, st)).toBe(1);
      expect(st[0]).toBe(22); // EINVAL
    });

    it('multi-queue: two queues of one TAP share the flows; both read and write', async () => {
      const tap = `cttq${pid}`;
      const q0 = open(tap, { multiQueue: true }).fd;
      const q1 = open(tap, { multiQueue: true }).fd;
      expect(q0).not.toBe(q1);
      ip('link', 'set', tap, 'netns', NS);
      ip('-n', NS, 'addr', 'add', '10.251.1.1/24', 'dev', tap);
      ip('-n', NS, 'link', 'set', tap, 'up');
      ip('-n', NS, 'neigh', 'replace', '10.251.1.2', 'lladdr', '02:00:00:00:01:02', 'dev', tap);
      const before = linkStats(tap, NS).rx;

      // Write one ARP request per queue: the namespace's kernel receives both.
      const tx = new RxBatch(2);
      for (const q of [q0, q1]) {
        tx.lens[0] = writeArp(
          tx.u8,
          tx.offsets[0],
          1,
          'ff:ff:ff:ff:ff:ff',
          '02:00:00:00:01:02',
          '10.251.1.2',
          '00:00:00:00:00:00',
          '10.251.1.1',
        );
        expect(io.writeBatch(q, tx.u8, tx.offsets, tx.lens, 1)).toBe(1);
      }

      // 64 UDP flows (distinct source ports) from the namespace: the TAP hashes them over both queues.
      const flows = 64;
      const perQueue = [0, 0];
      const gen = hasPython
        ? nsRun(NS, [
            'python3',
            '-c',
            `import socket\nfor i in range(${flows}):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n s.sendto(b'x'*32,('10.251.1.2',9000))\n s.close()`,
          ])
        : nsRun(NS, ['ping', '-c', String(flows), '-i', '0.01', '-W', '0.1', '10.251.1.2']);
      let genDone = false;
      void gen.then(() => (genDone = true));
      const b = new RxBatch(64);
      let udp = 0;
      await pumpAsync(
        [q0, q1],
        b,
        8000,
        (k, batch, i) => {
          const p = parseIp4(batch.u8, batch.offsets[i], batch.lens[i]);
          if (p && p.dst === ipv4('10.251.1.2') && (p.proto === 17 || p.proto === 1)) {
            perQueue[k]++;
            udp++;
          }
        },
        () => genDone && udp >= flows,
      );
      expect((await gen).code).toBe(0);
      expect(udp).toBe(flows);
      if (hasPython) {
        expect(perQueue[0], `queue 0 got ${perQueue[0]}, queue 1 ${perQueue[1]}`).toBeGreaterThan(0);
        expect(perQueue[1], `queue 0 got ${perQueue[0]}, queue 1 ${perQueue[1]}`).toBeGreaterThan(0);
      }
      expect(linkStats(tap, NS).rx - before).toBeGreaterThanOrEqual(2);
    });

    it('vnet header and offloads: ioctls accepted, frames carry the header', async () => {
      const tap = `cttv${pid}`;
      const { fd } = open(tap, { vnetHdr: true });
      io.tapSetVnetHdrSize(fd, 12);
      io.tapSetOffload(fd, { csum: true, tso4: true, tso6: true, ecn: true });
      io.tapSetOffload(fd, io.TUN_F.CSUM);
      expect(() => io.tapSetVnetHdrSize(fd, 4)).toThrow(/TUNSETVNETHDRSZ: Invalid argument \(EINVAL\)/);
      io.tapSetPersist(fd, true);
      io.tapSetPersist(fd, false);
      ip('link', 'set', tap, 'netns', NS);
      ip('-n', NS, 'addr', 'add', '10.251.2.1/24', 'dev', tap);
      ip('-n', NS, 'link', 'set', tap, 'up');
      const ping = nsRun(NS, ['ping', '-c', '1', '-W', '1', '10.251.2.2']);
      let done = false;
      void ping.then(() => (done = true));
      let arpAt12 = 0;
      const b = new RxBatch(16);
      await pumpAsync(
        [fd],
        b,
        5000,
        (_k, batch, i) => {
          // 12-byte virtio_net_hdr_mrg_rxbuf, then the Ethernet frame
          if (parseArp(batch.u8, batch.offsets[i] + 12, batch.lens[i] - 12)) arpAt12++;
        },
        () => done && arpAt12 > 0,
      );
      await ping;
      expect(arpAt12).toBeGreaterThan(0);
    });

    it('a TAP down drops writes; deleted under its fd, reads and writes throw EBADFD naming the fd', () => {
      const tap = `cttd${pid}`;
      const { fd } = open(tap);
      const b = new RxBatch(4);
      // A TAP that is down refuses frames with EIO: a drop, not a throw.
      b.lens.fill(60);
      const st = new Int32Array(2).fill(-1);
      expect(io.writeBatch(fd, b.u8, b.offsets, b.lens, 2, st)).toBe(2);
      expect(Array.from(st)).toEqual([5, 5]);
      expect(io.readBatch(fd, b.u8, b.offsets, b.lens, 4, b.capacity)).toBe(0);
      ip('link', 'del', tap);
      let err: (Error & { code?: string }) | undefined;
      try {
        io.readBatch(fd, b.u8, b.offsets, b.lens, 4, b.capacity);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.code).toBe('EBADFD');
      expect(err?.message).toContain(`readBatch(fd ${fd})`);
      b.lens[0] = 60;
      expect(() => io.writeBatch(fd, b.u8, b.offsets, b.lens, 1)).toThrow(
        /writeBatch\(fd \d+\): write: .*EBADFD/,
      );
    });
  },
);
