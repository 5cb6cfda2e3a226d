// An fd device over a real file descriptor without root: an eventfd takes 8-byte writes only
// (anything else is EINVAL: the kernel refuses that one frame), refuses more once its counter is full
// (EAGAIN: the device is full) and fails as a whole once closed (EBADF). So the transmit status of
// every frame, the per-port, per-reason accounting and the device-error report are checked against
// the kernel's real answers; and the driver's receive of a closed fd reports a read error.
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { Batch } from '../../src/dataplane/graph/packet.js';
import { PortCounters, TX_ERROR, TX_QUEUE_FULL, TX_REFUSED } from '../../src/dataplane/graph/counters.js';
import { DeviceContext, ERRNO, type Device, type DeviceOp } from '../../src/dataplane/devices/device.js';
import { TapDevice } from '../../src/dataplane/devices/tap.js';
import { Driver } from '../../src/dataplane/devices/driver.js';
import type { Graph } from '../../src/dataplane/graph/graph.js';

/** A context whose counter-only nodes have their own counters (no graph needed). */
function context(): { ctx: DeviceContext; errors: [string, DeviceOp, number][] } {
  const ctx = new DeviceContext(new PortCounters(4));
  for (const n of ctx.nodes()) {
    n.c = new Float64Array(n.decl.reasons!.length);
    n.base = 0;
  }
  const errors: [string, DeviceOp, number][] = [];
  ctx.onError = (d: Device, op, errno) => errors.push([d.name, op, errno]);
  return { ctx, errors };
}

/** Puts an 8-byte little-endian value (or `len` bytes of it) in slot i and hands it to dev. */
function txValue(b: Batch, dev: Device, i: number, value: bigint, len = 8): void {
  new DataView(b.arena).setBigUint64(b.off[i], value, true);
  b.len[i] = len;
  dev.tx(b, i);
}

// both I/O paths: a read()/write() per frame, and the worker's io_uring (CALITAP_URING=1)
describe.skipIf(!io.nativeAvailable()).each([false, true])(
  'fd devices over an eventfd (no root, io_uring: %s)',
  (uring) => {
    const ring = uring ? io.uringCreate() : null;
    afterAll(() => {
      if (ring !== null) io.uringClose(ring);
    });

    it('counts accepted frames as sent and each refusal under its reason', () => {
      const { ctx, errors } = context();
      const b = new Batch(8);
      const fd = io.eventfdCreate();
      try {
        const dev = new TapDevice('efd0', fd, b, ctx, false, true, ring);
        dev.port = 2;
        txValue(b, dev, 0, 1n); // accepted
        txValue(b, dev, 1, 1n, 7); // EINVAL: refused, the batch goes on
        txValue(b, dev, 2, 0xfffffffffffffffdn); // accepted: the counter is now at its maximum
        txValue(b, dev, 3, 1n); // EAGAIN: full, not taken
        txValue(b, dev, 4, 1n); // not tried: full
        dev.flush();
        const pc = ctx.ports;
        expect(pc.txPackets[2]).toBe(2);
        expect(pc.txBytes[2]).toBe(16);
        expect(pc.txDropped[TX_REFUSED][2]).toBe(1);
        expect(pc.txDropped[TX_QUEUE_FULL][2]).toBe(2);
        expect(pc.txDropped[TX_ERROR][2]).toBe(0);
        expect(ctx.output.c[0]).toBe(2); // port-output: queue-full
        expect(ctx.output.c[1]).toBe(1); // port-output: refused
        expect(errors).toEqual([]);
        expect(dev.failed).toBe(false);
      } finally {
        io.close(fd);
      }
    });

    it('a closed fd fails the device: every frame counts as error, reported once (write)', () => {
      const { ctx, errors } = context();
      const b = new Batch(8);
      const fd = io.eventfdCreate();
      const dev = new TapDevice('efd1', fd, b, ctx, false, true, ring);
      dev.port = 1;
      io.close(fd);
      txValue(b, dev, 0, 1n);
      txValue(b, dev, 1, 1n);
      dev.flush();
      txValue(b, dev, 0, 1n);
      dev.flush();
      expect(ctx.ports.txPackets[1]).toBe(0);
      expect(ctx.ports.txDropped[TX_ERROR][1]).toBe(3);
      expect(ctx.output.c[3]).toBe(1); // port-output: write-error (once)
      expect(errors).toEqual([['efd1', 'write', ERRNO.EBADF]]);
      expect(dev.failed).toBe(true);
    });

    it('the driver reads what is pending and reports a read error of a closed fd once', () => {
      const { ctx, errors } = context();
      const b = new Batch(8);
      const fd = io.eventfdCreate();
      const dev = new TapDevice('efd2', fd, b, ctx, false, true, ring);
      dev.port = 3;
      const graph = { run: () => {}, tick: () => {}, finish: () => {} } as unknown as Graph;
      const d = new Driver(graph, b, [dev], ctx, 1500);
      io.eventfdWrite(fd, 5);
      d.begin(1, 0);
      expect(d.receive(dev)).toBe(1); // an eventfd reads as one 8-byte "frame"
      expect(b.count).toBe(1);
      expect(b.len[0]).toBe(8);
      expect(b.rxPort[0]).toBe(3);
      expect(d.receive(dev)).toBe(0); // drained: nothing pending is not an error
      io.close(fd);
      d.begin(2, 0);
      expect(d.receive(dev)).toBe(0);
      expect(d.receive(dev)).toBe(0); // failed: not read again
      expect(errors).toEqual([['efd2', 'read', ERRNO.EBADF]]);
      expect(ctx.input.c[3]).toBe(1); // port-input: read-error
    });
  },
);

describe.skipIf(!io.nativeAvailable())('fd devices and a kernel that refuses io_uring on the fd', () => {
  it('fall back to read()/write() for good (a /proc file: RWF_NOWAIT gives EOPNOTSUPP)', () => {
    const ring = io.uringCreate();
    const { ctx } = context();
    const b = new Batch(8);
    const fd = fs.openSync('/proc/self/stat', 'r');
    try {
      const dev = new TapDevice('proc0', fd, b, ctx, false, true, ring);
      dev.port = 1;
      // through the ring this read throws EOPNOTSUPP; the device reads it with read() instead
      expect(dev.read(b, 1, 0, 0)).toBe(1);
      expect(new TextDecoder().decode(b.u8.subarray(b.off[0], b.off[0] + 12))).toMatch(
        new RegExp(`^${process.pid} `),
      );
      // a write: the ring's -EOPNOTSUPP is not what the port counts; write() answers (EBADF here)
      txValue(b, dev, 1, 1n);
      dev.flush();
      expect(ctx.ports.txDropped[TX_REFUSED][1] + ctx.ports.txDropped[TX_ERROR][1]).toBe(1);
    } finally {
      fs.closeSync(fd);
      io.uringClose(ring);
    }
  });
});
