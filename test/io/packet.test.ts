// Live AF_PACKET / raw socket tests (root). A veth pair: our end `ctv<pid>a` stays in this namespace,
// its peer goes into a namespace made by the test, whose kernel sends UDP to a static neighbour.
// Two packet sockets in one PACKET_FANOUT group (round robin) with a tcpdump-compiled BPF filter share
// the frames; a frame written with writeBatch (sendmmsg) gets the namespace's ARP reply back, and
// PACKET_IGNORE_OUTGOING keeps our own transmissions out of our reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import {
  hasPython,
  hasTcpdump,
  ip,
  ipv4,
  liveSkipReason,
  nsRun,
  parseArp,
  parseIp4,
  pumpAsync,
  RxBatch,
  sh,
  tryIp,
  writeArp,
} from './helpers.js';

const pid = process.pid;
const NS = `cttpns${pid}`;
const A = `ctv${pid}a`;
const B = `ctv${pid}b`;
const fds: number[] = [];
const track = (fd: number): number => (fds.push(fd), fd);

const skip = liveSkipReason || (!hasTcpdump ? 'needs tcpdump' : !hasPython ? 'needs python3' : '');

describe.skipIf(skip !== '')(`packet and raw sockets (live${skip ? `: skipped, ${skip}` : ''})`, () => {
  beforeAll(() => {
    tryIp('netns', 'del', NS);
    tryIp('link', 'del', A);
    ip('netns', 'add', NS);
    ip('link', 'add', A, 'type', 'veth', 'peer', 'name', B, 'netns', NS);
    sh('sysctl', ['-qw', `net.ipv6.conf.${A}.disable_ipv6=1`]);
    ip('link', 'set', A, 'up');
    ip('netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${B}.disable_ipv6=1`);
    ip('-n', NS, 'addr', 'add', '10.252.0.1/24', 'dev', B);
    ip('-n', NS, 'link', 'set', B, 'up');
    ip('-n', NS, 'neigh', 'replace', '10.252.0.2', 'lladdr', '02:00:00:00:02:02', 'dev', B);
  });

  afterAll(() => {
    for (const fd of fds) {
      try {
        io.close(fd);
      } catch {
        /* closed */
      }
    }
    tryIp('link', 'del', A);
    tryIp('netns', 'del', NS);
  });

  it('fanout (lb) over two filtered sockets; writeBatch via sendmmsg; own tx ignored', async () => {
    const bpf = io.bpfFromTcpdump('arp or (udp and dst port 9999)', A);
    expect(bpf.length % 8).toBe(0);
    const group = 1000 + (pid % 60000);
    const s1 = track(io.packetSocket(A, { fanoutGroup: group, fanoutMode: 'lb', bpf, rcvbuf: 1 << 20 }));
    const s2 = track(io.packetSocket(A, { fanoutGroup: group, fanoutMode: 'lb', bpf, rcvbuf: 1 << 20 }));
    // A third socket with another fanout mode cannot join the group.
    expect(() => io.packetSocket(A, { fanoutGroup: group, fanoutMode: 'hash' })).toThrow(
      /packetSocket\("ctv\d+a"\): PACKET_FANOUT: .*\((EINVAL|EALREADY)\)/,
    );

    // Round robin alternates per frame: two wanted frames then one filtered one, so wanted frames
    // land on both sockets.
    const n = 40;
    const gen = nsRun(NS, [
      'python3',
      '-c',
      `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(${n / 2}):\n for port in (9999,9999,9998):\n  s.sendto(b'y'*20,('10.252.0.2',port))`,
    ]);
    let genDone = false;
    void gen.then(() => (genDone = true));
    const per = [0, 0];
    let other = 0;
    const b = new RxBatch(64);
    await pumpAsync(
      [s1, s2],
      b,
      8000,
      (k, batch, i) => {
        const p = parseIp4(batch.u8, batch.offsets[i], batch.lens[i]);
        if (p && p.proto === 17 && p.dport === 9999) per[k]++;
        else other++;
      },
      () => genDone && per[0] + per[1] >= n,
    );
    expect((await gen).code).toBe(0);
    expect(per[0] + per[1]).toBe(n);
    expect(other).toBe(0); // the filter dropped port 9998 (and anything else)
    expect(per[0]).toBeGreaterThan(0);
    expect(per[1]).toBeGreaterThan(0);

    // Ask the namespace who has 10.252.0.1; its ARP reply comes back through the fanout group.
    const myMac = '02:00:00:00:02:02';
    const tx = new RxBatch(2);
    tx.lens[0] = writeArp(
      tx.u8,
      tx.offsets[0],
      1,
      'ff:ff:ff:ff:ff:ff',
      myMac,
      '10.252.0.2',
      '00:00:00:00:00:00',
      '10.252.0.1',
    );
    tx.u8.fill(0, tx.offsets[0] + 42, tx.offsets[0] + 60);
    tx.lens[0] = 60; // padded to the Ethernet minimum
    const st = new Int32Array(1).fill(-1);
    expect(io.writeBatch(s1, tx.arena, tx.offsets, tx.lens, 1, st)).toBe(1);
    expect(st[0]).toBe(0);
    let replies = 0;
    let ownRequests = 0;
    await pumpAsync(
      [s1, s2],
      b,
      5000,
      (_k, batch, i) => {
        const arp = parseArp(batch.u8, batch.offsets[i], batch.lens[i]);
        if (arp?.op === 2 && arp.spa === ipv4('10.252.0.1')) replies++;
        if (arp?.op === 1 && arp.sha === myMac) ownRequests++;
      },
      () => replies > 0,
    );
    expect(replies).toBe(1);
    expect(ownRequests).toBe(0);
  });

  it('PACKET_IGNORE_OUTGOING decides whether host transmissions are read; frames over the MTU are drops', async () => {
    const arpOnly = io.bpfFromTcpdump('arp', A);
    const observer = track(io.packetSocket(A, { ignoreOutgoing: false, bpf: arpOnly }));
    const ignorer = track(io.packetSocket(A, { bpf: arpOnly }));
    const sender = track(io.packetSocket(A, { bpf: arpOnly }));
    const tx = new RxBatch(3, 4096);
    const mac = '02:00:00:00:02:03';
    tx.lens[0] = writeArp(
      tx.u8,
      tx.offsets[0],
      1,
      'ff:ff:ff:ff:ff:ff',
      mac,
      '10.252.0.3',
      '00:00:00:00:00:00',
      '10.252.0.1',
    );
    tx.lens[1] = 3000; // > MTU 1500 + 14: EMSGSIZE, consumed as a drop
    tx.lens[2] = tx.lens[0];
    tx.u8.copyWithin(tx.offsets[2], tx.offsets[0], tx.offsets[0] + tx.lens[0]);
    const st = new Int32Array(3).fill(-1);
    expect(io.writeBatch(sender, tx.u8, tx.offsets, tx.lens, 3, st)).toBe(3);
    expect(Array.from(st)).toEqual([0, 90, 0]);
    const seen = [0, 0, 0];
    const b = new RxBatch(16);
    await pumpAsync(
      [observer, ignorer, sender],
      b,
      3000,
      (k, batch, i) => {
        const arp = parseArp(batch.u8, batch.offsets[i], batch.lens[i]);
        if (arp?.op === 1 && arp.sha === mac) seen[k]++;
      },
      () => seen[0] >= 2,
    );
    // the sender never reads its own frames; the ignorer skips every host transmission
    expect(seen).toEqual([2, 0, 0]);
  });

  it('interface down: readBatch returns 0 (ENETDOWN is an event), writeBatch counts drops', () => {
    const s = track(io.packetSocket(A));
    const b = new RxBatch(8);
    while (io.readBatch(s, b.u8, b.offsets, b.lens, 8, b.capacity) > 0);
    ip('link', 'set', A, 'down');
    try {
      expect(io.poll(Int32Array.of(s), 1000)).toBe(1); // POLLERR: the pending ENETDOWN
      expect(io.readBatch(s, b.u8, b.offsets, b.lens, 8, b.capacity)).toBe(0);
      expect(io.poll(Int32Array.of(s), 0)).toBe(0); // reported once
      b.lens.fill(60, 0, 2);
      const st = new Int32Array(2).fill(-1);
      expect(io.writeBatch(s, b.u8, b.offsets, b.lens, 2, st)).toBe(2);
      expect(Array.from(st)).toEqual([100, 100]); // ENETDOWN
    } finally {
      ip('link', 'set', A, 'up');
    }
  });

  it('raw IPv4 sockets: protocol 4 with a tiny buffer; hdrIncl send and recvmmsg with source addresses', () => {
    track(io.rawSocket(4, { rcvbuf: 1 }));
    // Protocol 253 (experimentation) over loopback in this namespace.
    const rx = track(io.rawSocket(253, { rcvbuf: 1 << 16 }));
    const tx = track(io.rawSocket(253, { hdrIncl: true }));
    const b = new RxBatch(4);
    const off = b.offsets[0];
    const dv = new DataView(b.arena);
    b.u8.set([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 253, 0, 0], off);
    dv.setUint32(off + 12, ipv4('127.0.0.1'));
    dv.setUint32(off + 16, ipv4('127.0.0.1'));
    b.u8.fill(0x77, off + 20, off + 28);
    b.lens[0] = 28;
    expect(io.writeBatch(tx, b.u8, b.offsets, b.lens, 1, undefined, Uint32Array.of(ipv4('127.0.0.1')))).toBe(
      1,
    );
    io.poll(Int32Array.of(rx), 1000);
    const src = new Uint32Array(4);
    const r = new RxBatch(4);
    const got = io.readBatch(rx, r.u8, r.offsets, r.lens, 4, r.capacity, src);
    expect(got).toBeGreaterThanOrEqual(1);
    expect(r.lens[0]).toBe(28); // raw reads include the IPv4 header
    expect(r.u8[r.offsets[0] + 9]).toBe(253);
    expect(r.u8[r.offsets[0] + 27]).toBe(0x77);
    expect(src[0]).toBe(ipv4('127.0.0.1'));
  });
});
