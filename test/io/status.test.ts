// Honest per-frame transmit status and receive errors (issue 8 §2): writeBatchStatus reports every
// frame (0 accepted, -errno refused / not tried) and returns the number accepted, never throwing for a
// syscall error; readBatch throws hard errors with a stable errno `code` and reports the error that
// ended a batch in rxError. Unprivileged part: eventfds (write() mode: EINVAL per frame, EAGAIN when
// full) and UDP loopback (sendmmsg mode). Live part (root): a TAP that goes down (EIO) and away
// (EBADFD), and a packet socket on a veth whose peer is in a namespace made here (ENETDOWN).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { ip, ipv4, liveSkipReason, RxBatch, sh, tryIp } from './helpers.js';

const { EAGAIN, EBADF, EINVAL, EMSGSIZE } = io.ERRNO;

/** Puts a little-endian u64 eventfd write of `v` at slot i; len 8 (or `len`). */
function eventfdFrame(b: RxBatch, i: number, v: bigint, len = 8): void {
  new DataView(b.arena).setBigUint64(b.offsets[i], v, true);
  b.lens[i] = len;
}

describe('writeBatchStatus: a status for every frame', () => {
  it('eventfd (write() per frame): accepted, refused (EINVAL) and not tried (EAGAIN when full)', () => {
    const fd = io.eventfdCreate();
    const b = new RxBatch(8);
    eventfdFrame(b, 0, 1n); // counter 1
    eventfdFrame(b, 1, 1n, 4); // shorter than 8 bytes: EINVAL, this frame only
    eventfdFrame(b, 2, 0xffffffffffffffffn); // the one value eventfd refuses: EINVAL
    eventfdFrame(b, 3, 0xfffffffffffffffdn); // counter at its maximum, 2^64 - 2
    eventfdFrame(b, 4, 1n); // would overflow: EAGAIN, the fd is full
    eventfdFrame(b, 5, 1n); // not tried
    const status = new Int32Array(8).fill(12345);
    expect(io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 6, status)).toBe(2);
    expect(Array.from(status.subarray(0, 6))).toEqual([0, -EINVAL, -EINVAL, 0, -EAGAIN, -EAGAIN]);
    expect(status[6]).toBe(12345); // beyond count: untouched
    expect(Array.from(status.subarray(0, 6), io.txErrorKind)).toEqual([
      'sent',
      'refused',
      'refused',
      'sent',
      'full',
      'full',
    ]);
    expect(io.errnoName(status[1])).toBe('EINVAL');
    expect(io.errnoName(status[4])).toBe('EAGAIN');
    expect(io.ioErrorLine('cali1', 'write', status[1])).toBe('port cali1: write failed: EINVAL');
    // The older writeBatch on the same fd: consumed frames, positive errno, stops at EAGAIN.
    const legacy = new Int32Array(8).fill(777);
    expect(io.eventfdRead(fd)).toBeGreaterThan(2 ** 63); // 2^64 - 2, as a double
    expect(io.writeBatch(fd, b.u8, b.offsets, b.lens, 6, legacy)).toBe(4);
    expect(Array.from(legacy.subarray(0, 5))).toEqual([0, EINVAL, EINVAL, 0, 777]);
    io.close(fd);
  });

  it('a broken fd: every frame gets -EBADF, 0 accepted, nothing thrown (either I/O mode)', () => {
    const b = new RxBatch(4);
    b.lens.fill(8);
    for (const make of [() => io.eventfdCreate(), () => io.udpSocket('127.0.0.1', 0)]) {
      const fd = make();
      io.close(fd);
      const status = new Int32Array(4);
      expect(io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 4, status)).toBe(0);
      expect(Array.from(status)).toEqual([-EBADF, -EBADF, -EBADF, -EBADF]);
      expect(io.txErrorKind(status[0])).toBe('device');
    }
    const never = 1 << 30; // an fd number no process has, mode unknown to the wrapper: fstat fails
    const status = new Int32Array(2);
    expect(io.writeBatchStatus(never, b.u8, b.offsets, b.lens, 2, status)).toBe(0);
    expect(Array.from(status)).toEqual([-EBADF, -EBADF]);
    // count 0 touches nothing
    status.fill(5);
    expect(io.writeBatchStatus(never, b.u8, b.offsets, b.lens, 0, status)).toBe(0);
    expect(Array.from(status)).toEqual([5, 5]);
  });

  it('UDP loopback (sendmmsg): refused frames in the middle of chunks, broken call for all', () => {
    const rx = io.udpSocket('127.0.0.1', 0, { rcvbuf: 1 << 20 });
    const tx = io.udpSocket('127.0.0.1', 0);
    const n = 150; // three sendmmsg chunks
    const b = new RxBatch(n, 66000 + 128);
    const dst = new Uint32Array(n).fill(ipv4('127.0.0.1'));
    const ports = new Uint16Array(n).fill(io.sockName(rx).port);
    const bad = new Set([0, 63, 64, 100, 149]);
    for (let i = 0; i < n; i++) b.lens[i] = bad.has(i) ? 66000 : 10 + (i % 50); // > 65507: EMSGSIZE
    const status = new Int32Array(n).fill(1);
    expect(io.writeBatchStatus(tx, b.u8, b.offsets, b.lens, n, status, dst, ports)).toBe(n - bad.size);
    for (let i = 0; i < n; i++) expect(status[i], `frame ${i}`).toBe(bad.has(i) ? -EMSGSIZE : 0);
    let got = 0;
    const r = new RxBatch(64);
    for (let tries = 0; got < n - bad.size && tries < 200; tries++) {
      io.poll(Int32Array.of(rx), 100);
      got += io.readBatch(rx, r.u8, r.offsets, r.lens, 64, r.capacity);
    }
    expect(got).toBe(n - bad.size);
    // Unconnected UDP without destinations: the socket cannot send anything (a device error).
    expect(io.writeBatchStatus(tx, b.u8, b.offsets, b.lens.fill(10), 3, status)).toBe(0);
    expect(Array.from(status.subarray(0, 3), io.errnoName)).toEqual([
      'EDESTADDRREQ',
      'EDESTADDRREQ',
      'EDESTADDRREQ',
    ]);
    expect(io.txErrorKind(status[0])).toBe('device');
    io.close(rx);
    io.close(tx);
  });

  it('txErrorKind sorts errnos exactly as the addon does', () => {
    const native = new Set(io.loadNative().constants.TX_DROP_ERRNOS);
    expect(native.size).toBeGreaterThan(10);
    for (let e = 1; e < 200; e++) {
      const kind = io.txErrorKind(-e);
      if (e === EAGAIN) expect(kind).toBe('full');
      else expect(kind, io.errnoName(e)).toBe(native.has(e) ? 'refused' : 'device');
    }
    expect(io.txErrorKind(0)).toBe('sent');
  });

  it('argument errors still throw', () => {
    const b = new RxBatch(4);
    const n = io.loadNative();
    const fd = io.eventfdCreate();
    expect(() =>
      n.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 1, 0, undefined as unknown as Int32Array),
    ).toThrow(TypeError);
    expect(() => io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 3, new Int32Array(2))).toThrow(RangeError);
    expect(() => io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 1, new Int32Array(0))).toThrow(RangeError);
    expect(() =>
      io.writeBatchStatus(fd, b.u8, b.offsets, Uint32Array.of(1 << 20), 1, new Int32Array(1)),
    ).toThrow(RangeError);
    io.close(fd);
  });
});

describe('readBatch errors', () => {
  it('a hard error throws with errno code and syscall; rxError has it too; EAGAIN is 0 frames', () => {
    const fd = io.eventfdCreate();
    const b = new RxBatch(2);
    const rxError = Int32Array.of(99);
    expect(io.readBatch(fd, b.u8, b.offsets, b.lens, 2, b.capacity, undefined, undefined, rxError)).toBe(0);
    expect(rxError[0]).toBe(0); // EAGAIN: nothing pending, no error
    io.eventfdWrite(fd, 3);
    let e: unknown;
    try {
      io.readBatch(fd, b.u8, b.offsets, b.lens, 1, 4, undefined, undefined, rxError); // eventfd needs 8 bytes
    } catch (x) {
      e = x;
    }
    expect(io.isIoSysError(e)).toBe(true);
    const err = e as io.IoSysError;
    expect([err.code, err.errno, err.syscall]).toEqual(['EINVAL', EINVAL, 'read']);
    expect(err.message).toBe(`readBatch(fd ${fd}): read: Invalid argument (EINVAL)`);
    expect(rxError[0]).toBe(-EINVAL);
    expect(io.ioErrorLine('eth1', 'read', e)).toBe(
      `port eth1: read failed: EINVAL (readBatch(fd ${fd}): read: Invalid argument (EINVAL))`,
    );
    expect(io.readBatch(fd, b.u8, b.offsets, b.lens, 2, b.capacity, undefined, undefined, rxError)).toBe(1);
    expect(rxError[0]).toBe(0);
    expect(() =>
      io.readBatch(fd, b.u8, b.offsets, b.lens, 1, 8, undefined, undefined, new Int32Array(0)),
    ).toThrow(RangeError);
    io.close(fd);
  });
});

const pid = process.pid;
const NS = `ctsns${pid}`;
const A = `ctsv${pid}a`;
const B = `ctsv${pid}b`;
const TAP = `ctst${pid}`;

describe.skipIf(liveSkipReason !== '')(
  `device errors (live${liveSkipReason ? `: skipped, ${liveSkipReason}` : ''})`,
  () => {
    const fds: number[] = [];
    beforeAll(() => {
      tryIp('netns', 'del', NS);
      tryIp('link', 'del', A);
      ip('netns', 'add', NS);
      ip('link', 'add', A, 'type', 'veth', 'peer', 'name', B, 'netns', NS);
      sh('sysctl', ['-qw', `net.ipv6.conf.${A}.disable_ipv6=1`]);
      // the peer too: its IPv6 start-up frames (DAD, MLD, RS) would land on the packet socket below
      sh('ip', ['netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${B}.disable_ipv6=1`]);
      ip('link', 'set', A, 'up');
      ip('-n', NS, 'link', 'set', B, 'up');
    });
    afterAll(() => {
      for (const fd of fds) {
        try {
          io.close(fd);
        } catch {
          /* closed by the test */
        }
      }
      tryIp('link', 'del', TAP);
      tryIp('link', 'del', A);
      tryIp('netns', 'del', NS);
    });

    it('TAP: down → each frame refused with EIO; deleted → EBADFD on write (status) and read (thrown)', () => {
      const { fd } = io.tapOpen(TAP);
      fds.push(fd);
      const b = new RxBatch(4);
      b.u8.fill(0xff, b.offsets[0], b.offsets[0] + 6); // broadcast, to nobody: the TAP is down
      b.lens.fill(60);
      const status = new Int32Array(4);
      expect(io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 3, status)).toBe(0);
      expect(Array.from(status.subarray(0, 3), io.errnoName)).toEqual(['EIO', 'EIO', 'EIO']);
      expect(io.txErrorKind(status[0])).toBe('refused');

      ip('link', 'del', TAP);
      expect(io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 3, status)).toBe(0);
      expect(Array.from(status.subarray(0, 3), io.errnoName)).toEqual(['EBADFD', 'EBADFD', 'EBADFD']);
      expect(io.txErrorKind(status[0])).toBe('device');
      let e: unknown;
      try {
        io.readBatch(fd, b.u8, b.offsets, b.lens, 4, b.capacity);
      } catch (x) {
        e = x;
      }
      expect(io.isIoSysError(e) && e.code).toBe('EBADFD');
      expect(io.ioErrorLine(TAP, 'read', e)).toMatch(
        new RegExp(`^port ${TAP}: read failed: EBADFD \\(readBatch`),
      );
    });

    it('packet socket: interface down → readBatch reports ENETDOWN in rxError, writes refused', () => {
      const fd = io.packetSocket(A);
      fds.push(fd);
      const b = new RxBatch(4);
      const rxError = new Int32Array(1);
      // frames already queued (none expected; drained so that the reads below see only the error)
      for (let k = 0; k < 16; k++)
        if (io.readBatch(fd, b.u8, b.offsets, b.lens, 4, b.capacity, undefined, undefined, rxError) === 0)
          break;
      ip('link', 'set', A, 'down');
      // The kernel queues ENETDOWN on the socket once: readBatch returns 0 frames and says why.
      expect(io.readBatch(fd, b.u8, b.offsets, b.lens, 4, b.capacity, undefined, undefined, rxError)).toBe(0);
      expect(io.errnoName(rxError[0])).toBe('ENETDOWN');
      expect(io.readBatch(fd, b.u8, b.offsets, b.lens, 4, b.capacity, undefined, undefined, rxError)).toBe(0);
      expect(rxError[0]).toBe(0); // reported once
      b.lens.fill(60);
      const status = new Int32Array(4);
      expect(io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 4, status)).toBe(0);
      expect(Array.from(status, io.txErrorKind)).toEqual(['refused', 'refused', 'refused', 'refused']);
      expect(io.errnoName(status[0])).toBe('ENETDOWN');
      ip('link', 'set', A, 'up');
      expect(io.writeBatchStatus(fd, b.u8, b.offsets, b.lens, 4, status)).toBe(4);
      expect(Array.from(status)).toEqual([0, 0, 0, 0]);
    });
  },
);
