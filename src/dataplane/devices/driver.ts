// The driver loop's round, shared by the live worker (epoll tells it which devices are readable) and
// replay (it reads one frame at a time from the capture whose next frame is the earliest): start a
// round, run the graph's timers when due, receive from devices within the round's budget, run the
// graph over what came in and flush every device.
//
// The receive budget lives here, once: every frame read may later need more slots in the same batch
// (its IPv4 fragments at the smallest path MTU, or the segments of a GSO super-frame before a
// tunnel: Device.slotsPerFrame), so each frame reserves them as it comes in and a device is asked
// for no more frames than the batch can still carry with their reservations. What happens to a
// frame therefore never depends on where it falls in a round.
// Who owns the buffers: the caller owns the batch, the graph and the devices; the driver only
// sequences them. Which thread runs it: the caller's (a worker, or the replay loop). No allocation
// per round or packet.
import type { Graph } from '../graph/graph.js';
import type { Batch } from '../graph/packet.js';
import type { DataplaneEnv } from '../graph/env.js';
import type { Device, DeviceContext } from './device.js';

/** Smallest path MTU of the dataplane: adjacencies and ports (sizes the receive budget). */
export function pathMinMtu(env: DataplaneEnv): number {
  let m = env.adj.minMtu() || 65535;
  const mtu = env.ports.mtu;
  for (let p = 0; p < mtu.length; p++) if (mtu[p] > 0 && mtu[p] < m) m = mtu[p];
  return m;
}

export class Driver {
  /** slots promised to the frames received this round (beyond their own) */
  private reserve = 0;
  private sec = 0;
  private nsec = 0;

  constructor(
    readonly graph: Graph,
    readonly b: Batch,
    /** the devices by port (the graph's sinks array: the owner replaces entries in place) */
    readonly devices: (Device | null)[],
    readonly ctx: DeviceContext,
    /** smallest path MTU (see pathMinMtu; the owner refreshes it when ports or routes change) */
    public minMtu: number,
  ) {}

  /** Starts a round at (sec, nsec): an empty batch, a fresh budget, the round's clock. */
  begin(sec: number, nsec: number): void {
    const b = this.b;
    b.reset();
    b.nowSec = sec;
    b.nowNsec = nsec;
    this.sec = sec;
    this.nsec = nsec;
    this.reserve = 0;
  }

  /** Runs the graph's timers at `now` (seconds) and transmits what they generated. Begin again after. */
  timers(now: number): void {
    this.graph.tick(this.b, now);
    this.flush();
  }

  /**
   * Reads from `dev` until it has nothing pending (a read that returns fewer frames than asked), the
   * round's budget is spent or `max` frames were taken. Returns the frames taken off the device. A failed read is counted and reported through
   * the context (the device is then marked failed and not read until re-armed).
   */
  receive(dev: Device, max = Infinity): number {
    if (dev.failed) return 0;
    const b = this.b;
    const per = dev.slotsPerFrame(this.minMtu);
    let total = 0;
    for (;;) {
      let want = Math.min(max - total, Math.floor((b.capacity - b.count - this.reserve) / per));
      // an empty batch always takes one frame (a tiny batch at a tiny MTU must still make progress)
      if (want <= 0 && b.count === 0 && total < max) want = 1;
      if (want <= 0) break;
      const at = b.count;
      const got = dev.read(b, want, this.sec, this.nsec);
      if (got < 0) {
        this.ctx.readFailed(dev, -got);
        break;
      }
      if (got === 0) break;
      total += got;
      this.reserve += (b.count - at) * (per - 1);
      // fewer than asked: the device is drained (Device.read), and asking again would only cost a
      // system call that answers EAGAIN; whatever arrives later makes the poller report it again
      if (got < want) break;
    }
    return total;
  }

  /** Runs the graph over what the round received and transmits. */
  process(): void {
    if (this.b.count > 0) this.graph.run(this.b);
    this.flush();
  }

  /** Flushes every device (each writes its round's frames in one call). */
  flush(): void {
    const d = this.devices;
    for (let p = 0; p < d.length; p++) {
      const dev = d[p];
      if (dev !== null && dev !== undefined) dev.flush();
    }
  }

  /** End of input (replay): lets the graph release or count what it still holds, and transmits. */
  finish(): void {
    this.b.reset();
    this.graph.finish(this.b);
    this.flush();
  }
}
