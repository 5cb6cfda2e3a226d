// An in-memory device, the way wireguard-go tests its device with a fake TUN: frames a test injects
// are read like a TAP's, frames the graph transmits are kept (copied out of the arena at flush) in
// `sent`. Faults are injected on purpose: a read or write that fails with an errno (a broken device),
// frames refused one by one (ENOBUFS...), and a limited room per flush (back-pressure: the rest are
// not taken, as a full TAP queue answers EAGAIN). It makes the driver loop and the worker loop
// testable without root.
// Who owns the buffers: injected frames are the test's until read (copied into the batch); `sent`
// holds copies. Which thread runs it: the owner of the batch. Allocates per frame: tests only.
import type { Batch } from '../graph/packet.js';
import { EAGAIN, ERRNO, L2_PLAIN, QueuedDevice, type DeviceCaps, type DeviceContext } from './device.js';

export interface MemDeviceOptions {
  caps?: DeviceCaps;
}

export class MemDevice extends QueuedDevice {
  private readonly rxq: Uint8Array[] = [];
  /** frames the device accepted, oldest first */
  readonly sent: Uint8Array[] = [];
  /** frames handed per read() call (batching) */
  readonly readSizes: number[] = [];
  /** frames accepted at most per flush; the rest are not taken (-EAGAIN: queue-full) */
  txRoom = Infinity;
  private refuseLeft = 0;
  private refuseErrno = 0;
  private readErrno = 0;
  private writeErrno = 0;
  private u8: Uint8Array | null = null;

  constructor(name: string, ctx: DeviceContext, capacity: number, o: MemDeviceOptions = {}) {
    super(name, o.caps ?? L2_PLAIN, -1, ctx, capacity);
  }

  /** Queues frames to be read. */
  inject(...frames: Uint8Array[]): void {
    for (const f of frames) this.rxq.push(f);
  }

  /** Frames waiting to be read. */
  get pending(): number {
    return this.rxq.length;
  }

  /** Readable: frames are waiting or a read error is armed (as epoll reports an error). */
  get readable(): boolean {
    return this.rxq.length > 0 || this.readErrno !== 0;
  }

  /** The next read fails with errno (once). */
  failRead(errno: number = ERRNO.EBADFD): void {
    this.readErrno = errno;
  }

  /** Every write fails with errno (a broken device) until cleared with 0. */
  failWrite(errno: number = ERRNO.EBADFD): void {
    this.writeErrno = errno;
  }

  /** The next `count` frames written are refused one by one with errno. */
  refuse(count: number, errno: number = ERRNO.ENOBUFS): void {
    this.refuseLeft = count;
    this.refuseErrno = errno;
  }

  /** Takes and returns what was sent so far. */
  take(): Uint8Array[] {
    return this.sent.splice(0);
  }

  read(b: Batch, max: number, sec: number, nsec: number): number {
    if (this.readErrno !== 0) {
      const e = this.readErrno;
      this.readErrno = 0;
      return -e;
    }
    let got = 0;
    while (got < max && this.rxq.length > 0) {
      const f = this.rxq.shift()!;
      if (b.push(f, 0, f.length, this.port, sec, nsec) < 0) this.ctx.input.truncated(1);
      got++;
    }
    if (got > 0) this.readSizes.push(got);
    return got;
  }

  override tx(b: Batch, i: number): void {
    this.u8 = b.u8;
    super.tx(b, i);
  }

  protected send(n: number): void {
    const st = this.status;
    let room = this.txRoom;
    for (let k = 0; k < n; k++) {
      if (this.writeErrno !== 0) st[k] = -this.writeErrno;
      else if (this.refuseLeft > 0) {
        this.refuseLeft--;
        st[k] = -this.refuseErrno;
      } else if (room > 0) {
        room--;
        this.sent.push(this.u8!.slice(this.offs[k], this.offs[k] + this.lens[k]));
        st[k] = 0;
      } else st[k] = -EAGAIN;
    }
  }
}
