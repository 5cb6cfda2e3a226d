// The native addon without privileges: argument checking (TypeError/RangeError, never a crash), errno
// errors naming call + argument, eventfd/poll/epoll, batched I/O over UDP loopback and eventfds, BPF
// parsing, and EPERM for an unprivileged user (a child that drops to nobody when we are root).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { ADDON, ipv4, isRoot, RxBatch } from './helpers.js';

/** Runs f and returns what it threw. */
function thrown(f: () => unknown): Error & { code?: string; errno?: number; syscall?: string } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('adviseHugePages', () => {
  it('advises the 2 MiB-aligned part of a shared buffer, 0 for a small one, never throws', () => {
    const big = io.adviseHugePages(new SharedArrayBuffer(8 << 20));
    expect(big % (2 << 20)).toBe(0);
    expect(big).toBeLessThanOrEqual(8 << 20);
    expect(io.adviseHugePages(new SharedArrayBuffer(4096))).toBe(0);
  });
});

describe('calitap_io loads', () => {
  it('is built and exports the API', () => {
    expect(ADDON, 'build/Release/calitap_io.node (run node-gyp rebuild)').toBeDefined();
    const b = io.loadNative();
    for (const f of [
      'tapOpen',
      'packetSocket',
      'readBatch',
      'writeBatch',
      'poll',
      'epollWait',
      'eventfdCreate',
    ]) {
      expect(typeof (b as unknown as Record<string, unknown>)[f]).toBe('function');
    }
    expect(b.constants.TUN_F_TSO4).toBe(io.TUN_F.TSO4);
    expect(b.constants.POLLIN).toBe(io.POLLIN);
    expect(b.constants.EPOLLIN).toBe(io.EPOLLIN);
    expect(b.constants.POLL_MAX).toBe(io.POLL_MAX);
  });

  it('reports a missing build clearly', async () => {
    const saved = process.env.CALITAP_IO_ADDON;
    process.env.CALITAP_IO_ADDON = '/nonexistent/calitap_io.node';
    try {
      vi.resetModules();
      const fresh = await import('../../src/dataplane/devices/native.js');
      const e = thrown(() => fresh.eventfdCreate());
      expect(e.code).toBe('io-native-missing');
      expect(e.message).toMatch(/calitap_io.*node-gyp rebuild/);
      expect(fresh.nativeAvailable()).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.CALITAP_IO_ADDON;
      else process.env.CALITAP_IO_ADDON = saved;
      vi.resetModules();
    }
  });
});

describe('errno errors name the call and the argument', () => {
  it('interface name too long', () => {
    const long = 'x'.repeat(16);
    for (const f of [
      () => io.ifIndex(long),
      () => io.ifMac(long),
      () => io.packetSocket(long),
      () => io.tapOpen(long),
      () => io.setTxQueueLen(long, 1000),
    ]) {
      const e = thrown(f);
      expect(e.code).toBe('EINVAL');
      expect(e.message).toContain(long);
      expect(e.message).toMatch(/longer than 15/);
    }
    expect(thrown(() => io.ifIndex('')).code).toBe('EINVAL');
  });

  it('nonexistent interface → ENODEV', () => {
    const name = `ctnx${process.pid}`;
    for (const [f, call] of [
      [() => io.ifIndex(name), 'ifIndex'],
      [() => io.ifMac(name), 'ifMac'],
      [() => io.ifSetUp(name), 'ifSetUp'],
      [() => io.packetSocket(name), 'packetSocket'],
    ] as const) {
      const e = thrown(f);
      expect(e).toBeInstanceOf(Error);
      expect(io.isIoSysError(e)).toBe(true);
      expect(e.code).toBe('ENODEV');
      expect(e.errno).toBe(19);
      expect(e.message).toBe(`${call}("${name}"): ${e.syscall}: No such device (ENODEV)`);
    }
  });

  it('closed fd → EBADF from every fd call', () => {
    const b = new RxBatch(4);
    const fd = io.eventfdCreate();
    io.close(fd);
    const cases: [() => unknown, string][] = [
      [() => io.readBatch(fd, b.arena, b.offsets, b.lens, 4, b.capacity), 'readBatch'],
      [() => io.writeBatch(fd, b.arena, b.offsets, b.lens.fill(42), 1), 'writeBatch'],
      [() => io.poll(Int32Array.of(fd), 0), 'poll'],
      [() => io.close(fd), 'close'],
      [() => io.eventfdRead(fd), 'eventfdRead'],
      [() => io.tapSetOffload(fd, 0), 'tapSetOffload'],
      [() => io.sockName(fd), 'sockName'],
    ];
    for (const [f, call] of cases) {
      const e = thrown(f);
      expect(e.code, call).toBe('EBADF');
      expect(e.message).toContain(`${call}(fd ${fd})`);
      expect(e.message).toContain('Bad file descriptor');
    }
    // An fd number no process can have, in both I/O modes (mode known from the wrapper or detected).
    const big = 1 << 30;
    expect(thrown(() => io.readBatch(big, b.u8, b.offsets, b.lens, 1, 100)).code).toBe('EBADF');
    const ep = io.epollCreate();
    expect(thrown(() => io.epollAdd(ep, big)).code).toBe('EBADF');
    expect(thrown(() => io.epollWait(big, new Int32Array(4), 0)).code).toBe('EBADF');
    io.close(ep);
  });

  it('wrong argument types → TypeError, bad ranges → RangeError, no crash', () => {
    const b = new RxBatch(4);
    const n = io.loadNative();
    const fd = io.eventfdCreate();
    const typeErrors: (() => unknown)[] = [
      () => n.tapOpen(5 as unknown as string),
      () => n.tapOpen('ok', 'flags' as unknown as io.TapFlags),
      () => n.tapOpen('ok', { multiQueue: 'yes' as unknown as boolean }),
      () => n.ifIndex(undefined as unknown as string),
      () => n.ifIndex('a\0b'),
      () => n.readBatch('3' as unknown as number, b.u8, b.offsets, b.lens, 1, 10, 0),
      () => n.readBatch(fd, {} as Uint8Array, b.offsets, b.lens, 1, 10, 0),
      () => n.readBatch(fd, b.u8, new Uint16Array(4) as unknown as Uint32Array, b.lens, 1, 10, 0),
      () => n.readBatch(fd, b.u8, b.offsets, new Float64Array(4) as unknown as Uint32Array, 1, 10, 0),
      () => n.readBatch(fd, b.u8, b.offsets, b.lens, '1' as unknown as number, 10, 0),
      () => n.readBatch(fd, b.u8, b.offsets, b.lens, 1, 10, 0, [1] as unknown as Uint32Array),
      () => n.writeBatch(fd, b.u8, b.offsets, b.lens, 1, 0, new Uint32Array(4) as unknown as Int32Array),
      () => (n.readBatch as unknown as () => number)(),
      () => n.poll([fd] as unknown as Int32Array, 0),
      () => n.epollWait(fd, new Uint32Array(2) as unknown as Int32Array, 0),
      () => n.epollWait(fd, new Int32Array(2), 0, 1 as unknown as boolean),
      () => n.packetSocket('lo', { bpf: [1, 2] as unknown as Uint8Array }),
      () => n.packetSocket('lo', 3 as unknown as object),
      () => n.udpSocket('not-an-ip', 0),
      () => n.udpSocket('1.2.3.4.5', 0),
      () => n.tapSetPersist(fd, 1 as unknown as boolean),
      () => io.readBatch(fd, 'arena' as unknown as Uint8Array, b.offsets, b.lens, 1, 10),
      () => io.packetSocket('lo', { fanoutMode: 'random' as io.FanoutMode }),
    ];
    for (const f of typeErrors) {
      const e = thrown(f);
      expect(e, String(f)).toBeInstanceOf(TypeError);
    }
    const rangeErrors: (() => unknown)[] = [
      () => io.readBatch(fd, b.u8, b.offsets, b.lens, 5, 10), // count > offsets.length
      () => io.readBatch(fd, b.u8, b.offsets, b.lens, 1, b.u8.length), // slot leaves the arena
      () => io.readBatch(fd, b.u8, b.offsets, b.lens, 1, 0),
      () => io.readBatch(fd, b.u8, b.offsets, b.lens, -1, 10),
      () => io.readBatch(fd, b.u8, b.offsets, b.lens, 1.5, 10),
      () => io.writeBatch(fd, b.u8, b.offsets, Uint32Array.of(1 << 20, 0, 0, 0), 1),
      () => io.writeBatch(fd, b.u8, b.offsets, b.lens, 2, new Int32Array(1)),
      () => io.poll(new Int32Array(32), 0),
      () => io.poll(Int32Array.of(fd), -2),
      () => io.epollWait(fd, new Int32Array(0), 0),
      () => io.ifSetMtu('lo', 10),
      () => io.packetSocket('lo', { bpf: new Uint8Array(12) }),
      () => io.packetSocket('lo', { fanoutGroup: 70000 }),
      () => io.udpSocket('127.0.0.1', 70000),
      () => io.rawSocket(256),
    ];
    for (const f of rangeErrors) {
      const e = thrown(f);
      expect(e, String(f)).toBeInstanceOf(RangeError);
    }
    io.close(fd);
  });
});

describe('eventfd, poll, epoll and batches without privileges', () => {
  it('eventfd counts, poll reports a bitmap, epoll returns ready fds', () => {
    const a = io.eventfdCreate();
    const c = io.eventfdCreate(0, true);
    const fds = Int32Array.of(a, c);
    expect(io.poll(fds, 0)).toBe(0);
    io.eventfdWrite(c, 3);
    expect(io.poll(fds, 0)).toBe(0b10);
    io.eventfdWrite(a);
    io.eventfdWrite(a, 41);
    expect(io.poll(fds, -1)).toBe(0b11);
    expect(io.poll(fds, 0, io.POLLOUT)).toBe(0b11);
    expect(io.eventfdRead(a)).toBe(42);
    expect(io.eventfdRead(a)).toBe(0);
    expect(io.eventfdRead(c)).toBe(1); // semaphore: one at a time
    expect(io.poll(fds, 0)).toBe(0b10);

    const ep = io.epollCreate();
    io.epollAdd(ep, a);
    io.epollAdd(ep, c);
    const ready = new Int32Array(8);
    expect(io.epollWait(ep, ready, 0)).toBe(1);
    expect(ready[0]).toBe(c);
    expect(io.epollWait(ep, ready, 0, true)).toBe(1); // the busy poll's wait: yield, then the same answer
    expect(ready[0]).toBe(c);
    io.epollDel(ep, c);
    // a finite timeout with nothing ready returns 0 (no wall-clock assertion: the return is the event)
    ready.fill(-1);
    expect(io.epollWait(ep, ready, 50)).toBe(0);
    expect(ready[0]).toBe(-1);
    io.eventfdWrite(a);
    expect(io.epollWait(ep, ready, -1)).toBe(1);
    expect(ready[0]).toBe(a);
    io.epollMod(ep, a, io.EPOLLOUT);
    expect(io.epollWait(ep, ready, 0)).toBe(1);
    for (const fd of [ep, a, c]) io.close(fd);
  });

  it('readBatch/writeBatch on an eventfd (read()/write() mode) with every arena form', () => {
    const fd = io.eventfdCreate();
    const b = new RxBatch(4);
    const dv = new DataView(b.arena);
    for (const arena of [b.arena, b.u8]) {
      dv.setBigUint64(b.offsets[1], 5n, true);
      b.lens[1] = 8;
      expect(io.writeBatch(fd, arena, b.offsets.subarray(1), b.lens.subarray(1), 1)).toBe(1);
      b.lens.fill(0);
      expect(io.readBatch(fd, arena, b.offsets, b.lens, 4, b.capacity)).toBe(1);
      expect(b.lens[0]).toBe(8);
      expect(dv.getBigUint64(b.offsets[0], true)).toBe(5n);
      expect(io.readBatch(fd, arena, b.offsets, b.lens, 4, b.capacity)).toBe(0);
    }
    const ab = new ArrayBuffer(64);
    new DataView(ab).setBigUint64(8, 9n, true);
    expect(io.writeBatch(fd, ab, Uint32Array.of(8), Uint32Array.of(8), 1)).toBe(1);
    expect(io.eventfdRead(fd)).toBe(9);
    // count 0 touches nothing
    expect(io.readBatch(fd, b.u8, b.offsets, b.lens, 0, 1)).toBe(0);
    io.close(fd);
  });

  it('UDP loopback: sendmmsg/recvmmsg batches with addresses, truncation and per-frame drops', () => {
    const rx = io.udpSocket('127.0.0.1', 0, { rcvbuf: 1 << 20 });
    const tx = io.udpSocket('127.0.0.1', 0);
    const rxPort = io.sockName(rx).port;
    const txPort = io.sockName(tx).port;
    expect(io.sockName(rx).address).toBe('127.0.0.1');
    expect(rxPort).toBeGreaterThan(0);

    const n = 100; // more than one 64-frame sendmmsg/recvmmsg chunk
    const b = new RxBatch(128);
    const dst = new Uint32Array(n).fill(ipv4('127.0.0.1'));
    const ports = new Uint16Array(n).fill(rxPort);
    const status = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      b.lens[i] = 20 + i;
      b.u8.fill(i, b.offsets[i], b.offsets[i] + b.lens[i]);
    }
    expect(io.writeBatch(tx, b.arena, b.offsets, b.lens, n, status, dst, ports)).toBe(n);
    expect(Array.from(status).every((s) => s === 0)).toBe(true);

    const r = new RxBatch(128);
    const src = new Uint32Array(128);
    const sport = new Uint16Array(128);
    let got = 0;
    for (let tries = 0; got < n && tries < 100; tries++) {
      io.poll(Int32Array.of(rx), 100);
      got += io.readBatch(
        rx,
        r.u8,
        r.offsets.subarray(got),
        r.lens.subarray(got),
        128 - got,
        r.capacity,
        src.subarray(got),
        sport.subarray(got),
      );
    }
    expect(got).toBe(n);
    for (let i = 0; i < n; i++) {
      expect(r.lens[i]).toBe(20 + i);
      expect(r.u8[r.offsets[i]]).toBe(i);
      expect(r.u8[r.offsets[i] + r.lens[i] - 1]).toBe(i);
      expect(src[i]).toBe(ipv4('127.0.0.1'));
      expect(sport[i]).toBe(txPort);
    }

    // A datagram longer than the slot: lens > slotCapacity marks the truncation.
    b.lens[0] = 1500;
    expect(io.writeBatch(tx, b.u8, b.offsets, b.lens, 1, undefined, dst, ports)).toBe(1);
    io.poll(Int32Array.of(rx), 1000);
    expect(io.readBatch(rx, r.u8, r.offsets, r.lens, 1, 100)).toBe(1);
    expect(r.lens[0]).toBe(1500);

    // Per-frame kernel refusals are consumed as drops with their errno; the rest still goes out.
    const big = new RxBatch(2, 70000);
    big.lens[0] = 66000; // > 65507: EMSGSIZE
    big.lens[1] = 10;
    const st = new Int32Array(2).fill(-1);
    expect(io.writeBatch(tx, big.u8, big.offsets, big.lens, 2, st, dst, ports)).toBe(2);
    expect(st[0]).toBe(90); // EMSGSIZE
    expect(st[1]).toBe(0);
    io.poll(Int32Array.of(rx), 1000);
    expect(io.readBatch(rx, r.u8, r.offsets, r.lens, 4, r.capacity)).toBe(1);
    expect(r.lens[0]).toBe(10);

    // Unconnected UDP without destinations is a broken call, not a drop.
    expect(thrown(() => io.writeBatch(tx, b.u8, b.offsets, b.lens.fill(10), 1)).code).toBe('EDESTADDRREQ');
    expect(io.poll(Int32Array.of(rx, tx), 0, io.POLLOUT)).toBe(0b11);
    io.close(rx);
    io.close(tx);
  });

  it('parses tcpdump -dd output into host-order sock_filter structs', () => {
    const text = '{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000806 },\n{ 0x6, 0, 0, 0x00040000 },\n';
    const prog = io.parseTcpdumpDd(text);
    expect(prog.length).toBe(24);
    const dv = new DataView(prog.buffer);
    expect(dv.getUint16(0, true)).toBe(0x28);
    expect(dv.getUint32(4, true)).toBe(12);
    expect([prog[10], prog[11]]).toEqual([0, 1]);
    expect(dv.getUint32(12, true)).toBe(0x806);
    expect(dv.getUint32(20, true)).toBe(0x40000);
    expect(() => io.parseTcpdumpDd('tcpdump: syntax error')).toThrow(/no BPF instructions/);
  });
});

describe('unprivileged callers get EPERM', () => {
  // As root, a child node drops to nobody (65534) before loading the addon; otherwise we are already
  // unprivileged and call in-process.
  const sys = (f: string): number => Number(readFileSync(`/sys/class/net/lo/${f}`, 'utf8'));
  const loMtu = Math.min(sys('mtu'), 65535);
  const loQlen = sys('tx_queue_len');
  const probe = `
    const m = require(${JSON.stringify(ADDON ?? '')});
    if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534); }
    const out = {};
    const tryCode = (k, f) => { try { f(); out[k] = 'ok'; } catch (e) { out[k] = e.code + ' ' + e.message; } };
    tryCode('tapOpen', () => m.tapOpen('ctp' + process.pid));
    tryCode('packetSocket', () => m.packetSocket('lo'));
    tryCode('rawSocket', () => m.rawSocket(4, { rcvbuf: 1 }));
    // Same values as now, so nothing changes even if a call were (wrongly) allowed.
    tryCode('ifSetMtu', () => m.ifSetMtu('lo', ${loMtu}));
    tryCode('setTxQueueLen', () => m.setTxQueueLen('lo', ${loQlen}));
    console.log(JSON.stringify(out));
  `;
  it('tapOpen / packetSocket / rawSocket / interface ioctls', () => {
    let res: Record<string, string>;
    if (isRoot) {
      const p = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
      expect(p.status, p.stderr).toBe(0);
      res = JSON.parse(p.stdout) as Record<string, string>;
    } else {
      res = {};
      const n = io.loadNative();
      const tryCode = (k: string, f: () => unknown): void => {
        const e = thrown(f);
        res[k] = `${e.code} ${e.message}`;
      };
      tryCode('tapOpen', () => n.tapOpen(`ctp${process.pid}`));
      tryCode('packetSocket', () => n.packetSocket('lo'));
      tryCode('rawSocket', () => n.rawSocket(4, { rcvbuf: 1 }));
      tryCode('ifSetMtu', () => n.ifSetMtu('lo', loMtu));
      tryCode('setTxQueueLen', () => n.setTxQueueLen('lo', loQlen));
    }
    // /dev/net/tun is often 0666 (then TUNSETIFF says EPERM), sometimes 0600 (then open() says EACCES).
    expect(res.tapOpen).toMatch(
      /^(EPERM tapOpen\("ctp\d+"\): TUNSETIFF: Operation not permitted|EACCES tapOpen\("ctp\d+"\): open \/dev\/net\/tun: Permission denied)/,
    );
    expect(res.packetSocket).toMatch(
      /^EPERM packetSocket\("lo"\): socket\(AF_PACKET\): Operation not permitted/,
    );
    expect(res.rawSocket).toMatch(/^EPERM rawSocket\(4\)/);
    expect(res.ifSetMtu).toMatch(/^EPERM ifSetMtu\("lo"\): SIOCSIFMTU/);
    expect(res.setTxQueueLen).toMatch(/^EPERM setTxQueueLen\("lo"\): SIOCSIFTXQLEN/);
  });
});

describe('junk arguments never crash the process', () => {
  it('every function, random argument lists from a pool of bad values', () => {
    const n = io.loadNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
    // Only values that cannot name a real fd or interface, so no call can have a side effect.
    const badFd = [-1, 1 << 30, 2.5, NaN, Infinity, -Infinity, 2 ** 31, -(2 ** 31) - 1];
    const badName = ['x'.repeat(16), 'a/b', 'x'.repeat(300), 'é'.repeat(8)];
    const junk = [
      undefined,
      null,
      true,
      '',
      '3',
      {},
      [],
      [1, 2],
      Symbol('s'),
      10n,
      () => 1,
      new Uint8Array(0),
      new Uint8Array(8),
      new Uint32Array(4),
      Int32Array.of(1 << 30, -1), // poll: POLLNVAL at once (an fd of 0 could block on stdin)
      new Uint16Array(3),
      new Float64Array(2),
      new DataView(new ArrayBuffer(8)),
      new SharedArrayBuffer(16),
      new ArrayBuffer(16),
      { fanoutGroup: 'x' },
      { bpf: new Uint8Array(7) },
      { rcvbuf: -1 },
      { multiQueue: 1 },
      Object.create(null),
      new Proxy({}, {}),
    ];
    const pool = [...badFd, ...badName, ...junk];
    let seed = 12345;
    const rnd = (k: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % k;
    };
    const fns = Object.keys(n).filter((k) => typeof n[k] === 'function' && !/Create$/.test(k));
    let calls = 0;
    for (let iter = 0; iter < 4000; iter++) {
      const f = fns[rnd(fns.length)];
      const argc = rnd(10);
      const args = Array.from({ length: argc }, () => pool[rnd(pool.length)]);
      if (f === 'tapOpen' && (typeof args[0] !== 'string' || args[0] === '')) args[0] = 'a/b';
      try {
        n[f](...args);
      } catch (e) {
        expect(e, `${f}(${args.map((a) => typeof a).join(', ')})`).toBeInstanceOf(Error);
      }
      calls++;
    }
    expect(calls).toBe(4000);
  });
});
