// Latency by construction, without clocks: a frame read in a round leaves in that same round (nothing
// waits for a batch to fill, a later round or a timer), a device that gave fewer frames than asked is
// not read again in the round (no EAGAIN-only system call), timers run after the round's frames are
// written, busy polling (opt-in) keeps waiting with timeout 0 for a while after traffic, and GRO
// writes every frame of a round in that round (no frame is held for the next one).
// Rounds are driven by hand on MemDevices (World) and GRO writes to a regular file; nothing here
// measures time.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { World } from './world.js';
import { EE, ping } from '../dataplane/frames.js';
import { W1, W2 } from '../dataplane/harness.js';
import { TICK_MS } from '../../src/dataplane/live/loop.js';
import type { Batch } from '../../src/dataplane/graph/packet.js';
import { GroWriter } from '../../src/dataplane/devices/gro-write.js';
import { Tcp4GroNode } from '../../src/dataplane/devices/gro-node.js';
import { nativeAvailable } from '../../src/dataplane/devices/native.js';
import { bulkSeg, queue, type Seg } from '../gro/frames.js';

const pingAB = (id: number): Uint8Array => ping({ ethSrc: W1.mac, ethDst: EE, src: W1.ip, dst: W2.ip, id });

/**
 * A world with both workloads attached, every control message applied, and its first round run (the
 * first round starts the graph's clocks: its timers run before its reads, the only time they do).
 */
function world(o: ConstructorParameters<typeof World>[0] = {}): World {
  const w = new World(o);
  w.drain();
  w.round();
  return w;
}

/** Counts the read() calls a device gets (the system calls a TAP or socket would make). */
function countReads(w: World, name: string): { calls: number } {
  const dev = w.dev(name);
  const read = dev.read.bind(dev);
  const c = { calls: 0 };
  dev.read = (b: Batch, max: number, sec: number, nsec: number): number => {
    c.calls++;
    return read(b, max, sec, nsec);
  };
  return c;
}

describe('worker loop latency (MemDevices)', () => {
  it('a single frame is written in the round that read it, with no timer due', () => {
    const w = world();
    const ticks = w.loop.built.graph;
    let timerRuns = 0;
    const tick = ticks.tick.bind(ticks);
    ticks.tick = (b, now) => {
      timerRuns++;
      tick(b, now);
    };
    const rounds = w.loop.rounds;
    w.dev(W1.port).inject(pingAB(1));
    w.round(); // 1 ms later: no timer is due
    expect(w.loop.rounds).toBe(rounds + 1);
    expect(timerRuns).toBe(0);
    const out = w.dev(W2.port).take();
    expect(out).toHaveLength(1);
    expect((out[0][18] << 8) | out[0][19]).toBe(1);
    // and the next single frame, alone in its round, too: no threshold to reach
    w.dev(W1.port).inject(pingAB(2));
    w.round();
    expect(w.dev(W2.port).take()).toHaveLength(1);
    expect(timerRuns).toBe(0);
  });

  it('a device that gave fewer frames than asked is read once per round', () => {
    const w = world();
    const reads = countReads(w, W1.port);
    w.dev(W1.port).inject(pingAB(1), pingAB(2), pingAB(3));
    w.round();
    expect(reads.calls).toBe(1);
    expect(w.dev(W2.port).take()).toHaveLength(3);
    // a device with more than the budget is read until the budget is spent, and the rest waits
    // for the next round (the poller reports it again)
    for (let k = 0; k < 300; k++) w.dev(W1.port).inject(pingAB(k));
    reads.calls = 0;
    w.round();
    expect(w.dev(W1.port).pending).toBeGreaterThan(0);
    expect(w.dev(W2.port).take().length).toBe(300 - w.dev(W1.port).pending);
    w.drain();
    expect(w.dev(W1.port).pending).toBe(0);
  });

  it('sleeps between rounds by default; busy polling waits with timeout 0 for a while after traffic', () => {
    const idle = world({ idleMs: 100 });
    idle.dev(W1.port).inject(pingAB(1));
    idle.round();
    expect(idle.loop.nextWait()).toBe(100);

    const w = world({ idleMs: 100, busyPollMs: 0.2 });
    expect(w.loop.nextWait()).toBe(100); // no traffic yet: sleep
    w.dev(W1.port).inject(pingAB(1));
    w.round();
    expect(w.dev(W2.port).take()).toHaveLength(1);
    // the round read a frame: keep polling (the reply may come within the window)...
    expect(w.loop.nextWait()).toBe(0);
    w.clockMs += 0.1;
    expect(w.loop.nextWait()).toBe(0);
    // ...and sleep once the window has passed without frames
    w.clockMs += 0.2;
    expect(w.loop.nextWait()).toBe(100);
  });

  it('timers due in a round run after its frames are written', () => {
    const w = world();
    const g = w.loop.built.graph;
    const b = w.dev(W2.port);
    const sentAtTick: number[] = [];
    const tick = g.tick.bind(g);
    g.tick = (batch, now) => {
      sentAtTick.push(b.sent.length);
      tick(batch, now);
    };
    w.dev(W1.port).inject(pingAB(1));
    w.clockMs += TICK_MS; // the timers are due in this round
    w.round();
    expect(sentAtTick).toEqual([1]);
    expect(b.take()).toHaveLength(1);
  });
});

const seg = (k: number, flow = 0): Seg => bulkSeg(k, { flow });

describe.skipIf(!nativeAvailable())('GRO holds nothing across rounds', () => {
  it('every frame a round queued is written by that round’s flush; a lone segment leaves at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calitap-lat-'));
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    try {
      const node = new Tcp4GroNode();
      node.c = new Float64Array(8);
      const w = new GroWriter(8, node);
      const status = new Int32Array(8).fill(1);
      // round 1: two segments of one flow, merged into one super-frame and written now
      const r1 = queue([seg(0), seg(1)]);
      w.send(fd, r1.u8, r1.hdr, r1.lens, 2, status);
      expect([...status.subarray(0, 2)]).toEqual([0, 0]);
      const after1 = readFileSync(file).length;
      // one output frame: the first frame whole (virtio header included) + the second's payload
      expect(after1).toBe(r1.lens[0] + 1000);
      // round 2: the flow's next segment alone, written in its own round (not held for a partner)
      const r2 = queue([seg(2)]);
      status.fill(1);
      w.send(fd, r2.u8, r2.hdr, r2.lens, 1, status);
      expect(status[0]).toBe(0);
      expect(readFileSync(file).length).toBe(after1 + r2.lens[0]);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });
});
