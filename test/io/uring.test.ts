// readBatchUring / writeBatchUring (native/uring.c): TAP batches with one io_uring_enter per batch.
// Unprivileged part: eventfds (read()/write()-like fds) for the per-frame status (accepted, refused,
// EAGAIN tail), broken fds and argument errors. Live part (root): a TAP moved into a namespace made
// here, with and without a vnet header: echo requests written with the ring reach the namespace's
// kernel in order and intact (its echo replies, read with the ring, come back in the same order with
// the same payloads), reads past the pending frames end the batch (EAGAIN), a downed interface
// refuses frames (EIO) and a deleted one breaks the fd (EBADFD). Everything made here is deleted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { csum, ip, ipv4, liveSkipReason, parseIp4, RxBatch, sleep, tryIp } from './helpers.js';

const { EAGAIN, EBADF, EINVAL, EIO } = io.ERRNO;

function eventfdFrame(b: RxBatch, i: number, v: bigint, len = 8): void {
  new DataView(b.arena).setBigUint64(b.offsets[i], v, true);
  b.lens[i] = len;
}

describe('io_uring batches: status and errors', () => {
  const ring = io.uringCreate();
  afterAll(() => io.uringClose(ring));

  it('writes: accepted, refused (EINVAL) and not tried (EAGAIN when full), as writeBatchStatus', () => {
    const fd = io.eventfdCreate();
    const b = new RxBatch(8);
    eventfdFrame(b, 0, 1n);
    eventfdFrame(b, 1, 1n, 4); // shorter than 8 bytes: EINVAL
    eventfdFrame(b, 2, 0xffffffffffffffffn); // the one value eventfd refuses: EINVAL
    eventfdFrame(b, 3, 0xfffffffffffffffdn); // counter at its maximum
    eventfdFrame(b, 4, 1n); // would overflow: EAGAIN
    eventfdFrame(b, 5, 1n);
    const status = new Int32Array(8).fill(12345);
    expect(io.writeBatchUring(ring, fd, b.u8, b.offsets, b.lens, 6, status)).toBe(2);
    expect(Array.from(status.subarray(0, 6))).toEqual([0, -EINVAL, -EINVAL, 0, -EAGAIN, -EAGAIN]);
    expect(status[6]).toBe(12345);
    // reads: one 8-byte counter per read, then EAGAIN ends the batch (the eventfd reset to 0)
    const r = new RxBatch(4);
    expect(io.readBatchUring(ring, fd, r.u8, r.offsets, r.lens, 4, r.capacity)).toBe(1);
    expect(r.lens[0]).toBe(8);
    expect(new DataView(r.arena).getBigUint64(r.offsets[0], true)).toBe(0xfffffffffffffffen);
    expect(io.readBatchUring(ring, fd, r.u8, r.offsets, r.lens, 4, r.capacity)).toBe(0);
    io.close(fd);
  });

  it('more frames than the ring holds take several io_uring_enter calls', () => {
    const small = io.uringCreate(4);
    const fd = io.eventfdCreate(0, true); // semaphore: every read takes 1
    const n = 11;
    const b = new RxBatch(n);
    for (let i = 0; i < n; i++) eventfdFrame(b, i, 1n);
    const status = new Int32Array(n);
    expect(io.writeBatchUring(small, fd, b.u8, b.offsets, b.lens, n, status)).toBe(n);
    expect(io.readBatchUring(small, fd, b.u8, b.offsets, b.lens, n, b.capacity)).toBe(n);
    expect(io.readBatchUring(small, fd, b.u8, b.offsets, b.lens, n, b.capacity)).toBe(0);
    // waves from a small first guess: 1, 2, 4 (ring size), 4 reads: all 11 counts, in one call
    expect(io.writeBatchUring(small, fd, b.u8, b.offsets, b.lens, n, status)).toBe(n);
    expect(io.readBatchUring(small, fd, b.u8, b.offsets, b.lens, n, b.capacity, undefined, 1)).toBe(n);
    // a wave with an empty read is the last: 3 pending, first wave 2 (full), second wave 4 (1 empty)
    expect(io.writeBatchUring(small, fd, b.u8, b.offsets, b.lens, 3, status)).toBe(3);
    expect(io.readBatchUring(small, fd, b.u8, b.offsets, b.lens, n, b.capacity, undefined, 2)).toBe(3);
    expect(io.readBatchUring(small, fd, b.u8, b.offsets, b.lens, n, b.capacity, undefined, 2)).toBe(0);
    io.close(fd);
    io.uringClose(small);
  });

  it('a broken fd: every frame -EBADF on write, EBADF thrown on read', () => {
    const fd = io.eventfdCreate();
    io.close(fd);
    const b = new RxBatch(4);
    b.lens.fill(8);
    const status = new Int32Array(4);
    expect(io.writeBatchUring(ring, fd, b.u8, b.offsets, b.lens, 4, status)).toBe(0);
    expect(Array.from(status)).toEqual([-EBADF, -EBADF, -EBADF, -EBADF]);
    expect(() => io.readBatchUring(ring, fd, b.u8, b.offsets, b.lens, 4, b.capacity)).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'read' }),
    );
    status.fill(5);
    expect(io.writeBatchUring(ring, fd, b.u8, b.offsets, b.lens, 0, status)).toBe(0);
    expect(Array.from(status)).toEqual([5, 5, 5, 5]);
  });

  it('argument errors throw TypeError / RangeError; a closed ring throws EBADF', () => {
    const n = io.loadNative();
    const b = new RxBatch(4);
    const fd = io.eventfdCreate();
    const st = new Int32Array(4);
    expect(() => n.readBatchUring({}, fd, b.u8, b.offsets, b.lens, 1, 64)).toThrow(TypeError);
    expect(() => io.readBatchUring(ring, fd, b.u8, b.offsets, b.lens, 5, 64)).toThrow(RangeError);
    expect(() => io.readBatchUring(ring, fd, b.u8, b.offsets, b.lens, 4, 1 << 20)).toThrow(RangeError);
    expect(() => io.writeBatchUring(ring, fd, b.u8, b.offsets, b.lens, 4, new Int32Array(2))).toThrow(
      RangeError,
    );
    b.lens[0] = 1 << 20;
    expect(() => io.writeBatchUring(ring, fd, b.u8, b.offsets, b.lens, 1, st)).toThrow(RangeError);
    expect(() => n.uringCreate(0)).toThrow(RangeError);
    const gone = io.uringCreate(2);
    io.uringClose(gone);
    io.uringClose(gone); // idempotent
    expect(() => io.writeBatchUring(gone, fd, b.u8, b.offsets, b.lens, 0, st)).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
    io.close(fd);
  });
});

const pid = process.pid;
const NS = `cturns${pid}`;
const PEER_MAC = [0x02, 0, 0, 0, 0, 0x02];
const NS_IP = '10.252.0.1';
const PEER_IP = '10.252.0.2';
const VNET = 10;

/** An ICMP echo request from PEER to NS, seq `seq`, `payload` bytes of (seq + k) & 0xff; length. */
function echoRequest(u8: Uint8Array, off: number, nsMac: number[], seq: number, payload: number): number {
  u8.set(nsMac, off);
  u8.set(PEER_MAC, off + 6);
  u8[off + 12] = 0x08;
  u8[off + 13] = 0;
  const ipo = off + 14;
  const total = 20 + 8 + payload;
  u8.fill(0, ipo, ipo + 28);
  u8[ipo] = 0x45;
  u8[ipo + 2] = total >> 8;
  u8[ipo + 3] = total & 0xff;
  u8[ipo + 8] = 64;
  u8[ipo + 9] = 1;
  const dv = new DataView(u8.buffer, u8.byteOffset);
  dv.setUint32(ipo + 12, ipv4(PEER_IP));
  dv.setUint32(ipo + 16, ipv4(NS_IP));
  dv.setUint16(ipo + 10, csum(u8, ipo, 20));
  const ic = ipo + 20;
  u8[ic] = 8;
  dv.setUint16(ic + 4, 0x4242);
  dv.setUint16(ic + 6, seq);
  for (let k = 0; k < payload; k++) u8[ic + 8 + k] = (seq + k) & 0xff;
  dv.setUint16(ic + 2, csum(u8, ic, 8 + payload));
  return 14 + total;
}

describe.skipIf(liveSkipReason !== '')(
  `io_uring batches on a TAP (live${liveSkipReason ? `: skipped, ${liveSkipReason}` : ''})`,
  () => {
    const ring = io.uringCreate();
    const fds: number[] = [];
    beforeAll(() => {
      tryIp('netns', 'del', NS);
      ip('netns', 'add', NS);
    });
    afterAll(() => {
      for (const fd of fds.splice(0)) {
        try {
          io.close(fd);
        } catch {
          /* closed by the test */
        }
      }
      io.uringClose(ring);
      tryIp('netns', 'del', NS);
    });

    for (const vnetHdr of [false, true]) {
      it(`echo requests written in order arrive intact; replies read in order (vnet header: ${vnetHdr})`, async () => {
        const name = `ctu${vnetHdr ? 'v' : 'p'}${pid}`;
        const { fd } = io.tapOpen(name, { vnetHdr });
        fds.push(fd);
        io.adoptFd(fd);
        ip('link', 'set', name, 'netns', NS);
        ip('-n', NS, 'addr', 'add', `${NS_IP}/24`, 'dev', name);
        ip('-n', NS, 'link', 'set', name, 'up');
        ip('-n', NS, 'neigh', 'replace', PEER_IP, 'lladdr', '02:00:00:00:00:02', 'dev', name);
        const mac = ip('-n', NS, '-j', 'link', 'show', name);
        const nsMac = (JSON.parse(mac) as { address: string }[])[0].address
          .split(':')
          .map((h) => parseInt(h, 16));
        const hdr = vnetHdr ? VNET : 0;
        const n = 100;
        const tx = new RxBatch(n);
        for (let i = 0; i < n; i++) {
          tx.u8.fill(0, tx.offsets[i] - hdr, tx.offsets[i]); // a zero vnet header: no offloads
          tx.lens[i] = hdr + echoRequest(tx.u8, tx.offsets[i], nsMac, i, 20 + (i % 64));
          tx.offsets[i] -= hdr;
        }
        const status = new Int32Array(n).fill(1);
        expect(io.writeBatchUring(ring, fd, tx.u8, tx.offsets, tx.lens, n, status)).toBe(n);
        expect(Array.from(new Set(status))).toEqual([0]);

        // read the replies (skipping whatever else the namespace sends) with batches larger than
        // what is pending: each ends at EAGAIN
        const rx = new RxBatch(64);
        for (let i = 0; i < 64; i++) rx.offsets[i] -= hdr;
        const seqs: number[] = [];
        let calls = 0;
        for (let tries = 0; seqs.length < n && tries < 200; tries++) {
          const got = io.readBatchUring(ring, fd, rx.u8, rx.offsets, rx.lens, 64, rx.capacity + hdr);
          calls++;
          for (let i = 0; i < got; i++) {
            const off = rx.offsets[i] + hdr;
            const len = rx.lens[i] - hdr;
            const p = parseIp4(rx.u8, off, len);
            if (p === null || p.proto !== 1 || rx.u8[off + 14 + p.ihl] !== 0) continue; // not an echo reply
            const ic = off + 14 + p.ihl;
            const seq = (rx.u8[ic + 6] << 8) | rx.u8[ic + 7];
            const payload = len - 14 - p.ihl - 8;
            expect(payload, `reply ${seq}`).toBe(20 + (seq % 64));
            for (let k = 0; k < payload; k++) {
              if (rx.u8[ic + 8 + k] !== ((seq + k) & 0xff)) expect.fail(`reply ${seq}: payload byte ${k}`);
            }
            seqs.push(seq);
          }
          if (got < 64) await sleep(10);
        }
        expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i));
        expect(calls).toBeGreaterThanOrEqual(2); // 100 replies, 64 per call at most
        await sleep(50);
        // nothing pending (IPv6 noise aside): a whole batch of empty reads returns what there is
        const left = io.readBatchUring(ring, fd, rx.u8, rx.offsets, rx.lens, 64, rx.capacity + hdr);
        expect(left).toBeLessThan(64);

        // interface down: the TAP refuses every frame with EIO (dropped, not broken)
        ip('-n', NS, 'link', 'set', name, 'down');
        expect(io.writeBatchUring(ring, fd, tx.u8, tx.offsets, tx.lens, 3, status)).toBe(0);
        expect(Array.from(status.subarray(0, 3))).toEqual([-EIO, -EIO, -EIO]);
        expect(io.txErrorKind(status[0])).toBe('refused');
        // interface deleted: the fd is broken (EBADFD on every frame, thrown by a read)
        ip('-n', NS, 'link', 'del', name);
        expect(io.writeBatchUring(ring, fd, tx.u8, tx.offsets, tx.lens, 3, status)).toBe(0);
        expect(Array.from(status.subarray(0, 3), io.errnoName)).toEqual(['EBADFD', 'EBADFD', 'EBADFD']);
        expect(() => io.readBatchUring(ring, fd, rx.u8, rx.offsets, rx.lens, 4, rx.capacity)).toThrow(
          expect.objectContaining({ code: 'EBADFD' }),
        );
      });
    }
  },
);
