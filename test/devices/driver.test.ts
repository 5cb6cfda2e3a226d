// The driver's receive budget: each frame reserves the slots it may still need (fragments, GSO
// segments: Device.slotsPerFrame), devices of one round share what is left, an empty batch always
// takes a frame, and `max` bounds one call (replay reads one frame at a time).
import { describe, expect, it } from 'vitest';
import { Batch, gsoSegments, piecesPerFrame } from '../../src/dataplane/graph/packet.js';
import { PortCounters } from '../../src/dataplane/graph/counters.js';
import { DeviceContext } from '../../src/dataplane/devices/device.js';
import { MemDevice } from '../../src/dataplane/devices/mem.js';
import { Driver } from '../../src/dataplane/devices/driver.js';
import { TapDevice } from '../../src/dataplane/devices/tap.js';
import * as io from '../../src/dataplane/devices/native.js';
import type { Graph } from '../../src/dataplane/graph/graph.js';

function context(): DeviceContext {
  const ctx = new DeviceContext(new PortCounters(4));
  for (const n of ctx.nodes()) {
    n.c = new Float64Array(n.decl.reasons!.length);
    n.base = 0;
  }
  return ctx;
}

/** A MemDevice whose frames may need `per` slots each. */
function mem(ctx: DeviceContext, name: string, per: number, frames: number): MemDevice {
  const d = new MemDevice(name, ctx, 64);
  d.slotsPerFrame = () => per;
  for (let k = 0; k < frames; k++) d.inject(new Uint8Array(60).fill(k & 255));
  return d;
}

function driver(ctx: DeviceContext, capacity: number): { d: Driver; runs: number[] } {
  const runs: number[] = [];
  const graph = {
    run: (b: Batch) => runs.push(b.count),
    tick: () => {},
    finish: () => {},
  } as unknown as Graph;
  return { d: new Driver(graph, new Batch(capacity), [], ctx, 1500), runs };
}

describe('driver receive budget', () => {
  it('reserves each frame’s worst case; devices of a round share what is left', () => {
    const ctx = context();
    const { d, runs } = driver(ctx, 64);
    const big = mem(ctx, 'big', 5, 100);
    const small = mem(ctx, 'small', 2, 100);
    d.begin(0, 0);
    expect(d.receive(big)).toBe(12); // floor(64 / 5)
    expect(d.receive(small)).toBe(2); // floor((64 - 12 * 5) / 2)
    d.process();
    expect(runs).toEqual([14]);
    d.begin(0, 0);
    expect(d.receive(small)).toBe(32);
    expect(d.receive(big)).toBe(0);
  });

  it('an empty batch always takes one frame; max bounds one call', () => {
    const ctx = context();
    const { d } = driver(ctx, 4);
    const huge = mem(ctx, 'huge', 10, 3);
    d.begin(0, 0);
    expect(d.receive(huge)).toBe(1);
    expect(d.receive(huge)).toBe(0);
    const one = mem(ctx, 'one', 1, 10);
    d.begin(0, 0);
    expect(d.receive(one, 1)).toBe(1);
    expect(d.receive(one, 2)).toBe(2);
    expect(d.b.count).toBe(3);
  });

  it('TAPs with offloads reserve a super-frame’s segments, plain devices its fragments', () => {
    if (!io.nativeAvailable()) return;
    const ctx = context();
    const b = new Batch(4);
    const fd = io.eventfdCreate();
    try {
      expect(new TapDevice('t', fd, b, ctx, true).slotsPerFrame(1450)).toBe(1 + gsoSegments(1450));
      expect(new TapDevice('t', fd, b, ctx, false).slotsPerFrame(576)).toBe(piecesPerFrame(576, 1514) + 1);
      expect(mem(ctx, 'm', 1, 0).caps.layer).toBe('l2');
    } finally {
      io.close(fd);
    }
  });
});
