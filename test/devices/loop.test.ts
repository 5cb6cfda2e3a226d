// The worker loop on MemDevices (no root, no threads), the way wireguard-go tests its device with a
// fake TUN: batching within the round budget, workloads added and removed mid-traffic without loss
// on other ports or a graph rebuild, a device that fails on read or write (counted, reported with
// the port's name and errno, not read until re-armed), back-pressure counted truthfully, and the
// test-only crash message gated.
import { describe, expect, it } from 'vitest';
import { World, UPLINK } from './world.js';
import { EE, arp, mac, ping, udp } from '../dataplane/frames.js';
import { GW_IP, GW_MAC, NODE_IP, UPLINK_MAC, W1, W2 } from '../dataplane/harness.js';
import { ERRNO } from '../../src/dataplane/devices/device.js';
import { TX_ERROR, TX_QUEUE_FULL, TX_REFUSED } from '../../src/dataplane/graph/counters.js';
import { rxBudget } from '../../src/dataplane/graph/packet.js';

const A = { name: W1.port, ip: W1.ip, mac: W1.mac };
const B = { name: W2.port, ip: W2.ip, mac: W2.mac };

/** A ping from workload `from` to `to` with IP id `id` (so arrivals can be matched). */
function pingFrom(from: typeof A, to: { ip: string }, id: number): Uint8Array {
  return ping({ ethSrc: from.mac, ethDst: EE, src: from.ip, dst: to.ip, id });
}

/** The IP ids of frames, in order. */
const ids = (frames: Uint8Array[]): number[] => frames.map((f) => (f[18] << 8) | f[19]);

function twoWorkloads(o: ConstructorParameters<typeof World>[0] = {}): World {
  const w = new World(o);
  w.drain();
  return w;
}

describe('worker loop on MemDevices', () => {
  it('reads in batches within the round budget and delivers every frame in order', () => {
    const w = twoWorkloads();
    const budget = rxBudget(256, 1500, 1514);
    expect(budget).toBe(128);
    const n = 1000;
    for (let k = 0; k < n; k++) w.dev(A.name).inject(pingFrom(A, B, k));
    const rounds = w.drain();
    expect(rounds).toBe(Math.ceil(n / budget));
    expect(w.dev(A.name).readSizes.every((s) => s <= budget)).toBe(true);
    expect(w.dev(A.name).readSizes.reduce((a, s) => a + s, 0)).toBe(n);
    expect(ids(w.dev(B.name).take())).toEqual([...Array(n).keys()]);
    expect(w.pc.rxPackets[w.port(A.name)]).toBe(n);
    expect(w.pc.txPackets[w.port(B.name)]).toBe(n);
  });

  it('shares one round budget between the devices that are readable', () => {
    const w = twoWorkloads();
    for (let k = 0; k < 100; k++) {
      w.dev(A.name).inject(pingFrom(A, B, k));
      w.dev(B.name).inject(pingFrom(B, A, k));
    }
    w.round();
    const first = w.dev(A.name).readSizes[0] + (w.dev(B.name).readSizes[0] ?? 0);
    expect(first).toBe(128);
    w.drain();
    expect(w.dev(B.name).take()).toHaveLength(100);
    expect(w.dev(A.name).take()).toHaveLength(100);
  });

  it('adds and removes 20 workloads mid-traffic: no frame of the other flow is lost, nothing rebuilt', () => {
    const w = twoWorkloads();
    const graph = w.loop.built.graph;
    const rounds0 = w.loop.rounds;
    let sent = 0;
    const others = Array.from({ length: 20 }, (_, k) => ({
      name: `caliw${k}`,
      ip: `10.65.0.${10 + k}`,
      mac: `0a:58:0a:41:00:${(10 + k).toString(16).padStart(2, '0')}`,
    }));
    const traffic = (): void => {
      for (let j = 0; j < 30; j++) {
        w.dev(A.name).inject(pingFrom(A, B, sent));
        w.dev(B.name).inject(pingFrom(B, A, sent));
        sent++;
      }
    };
    for (const o of others) {
      w.add(o.name, o.ip, o.mac);
      traffic();
      w.round();
    }
    // every new workload is reachable, and reaches the others
    for (const o of others) w.dev(A.name).inject(pingFrom(A, o, 60000));
    w.drain();
    for (const o of others) expect(ids(w.dev(o.name).take())).toEqual([60000]);
    const removed = others.map((o) => w.dev(o.name));
    for (const o of others) {
      w.del(o.name);
      traffic();
      w.round();
    }
    w.drain();
    expect(ids(w.dev(B.name).take())).toEqual([...Array(sent).keys()]);
    expect(ids(w.dev(A.name).take())).toEqual([...Array(sent).keys()]);
    // every port change was acknowledged, the graph is the one built at the start
    expect(w.applied().length).toBe(40);
    expect(w.loop.built.graph).toBe(graph);
    expect(w.loop.rounds).toBeGreaterThan(rounds0);
    // removed devices are not read any more, and traffic to them has no route
    removed[0].inject(pingFrom(others[0], A, 1));
    w.round();
    expect(removed[0].pending).toBe(1);
    // (its /32 is withdrawn: the address falls back to node-a's affine block, a blackhole)
    const blackholed = w.c('ip4-lookup: blackhole');
    w.dev(A.name).inject(pingFrom(A, others[0], 2));
    w.drain();
    expect(removed[0].sent).toHaveLength(0);
    expect(w.c('ip4-lookup: blackhole')).toBe(blackholed + 1);
  });

  it('keeps the packets ip4-arp holds across a port change (no rebuild)', () => {
    const w = twoWorkloads({ staticNeighbors: false });
    // to the internet via the gateway, whose MAC is not known yet: held, and an ARP request goes out
    w.dev(A.name).inject(udp({ ethSrc: A.mac, ethDst: EE, src: A.ip, dst: '192.0.2.7', id: 4242 }));
    w.round();
    const up = w.dev(UPLINK);
    const asked = up.take();
    expect(asked).toHaveLength(1);
    expect((asked[0][12] << 8) | asked[0][13]).toBe(0x0806);
    // a workload comes and goes meanwhile
    w.add('calix', '10.65.0.30', '0a:58:0a:41:00:30');
    w.round();
    w.del('calix');
    w.round();
    // the gateway answers: the held packet leaves
    up.inject(arp({ op: 2, sha: GW_MAC, spa: GW_IP, tha: UPLINK_MAC, tpa: NODE_IP, dst: UPLINK_MAC }));
    w.drain();
    const out = up.take();
    expect(out).toHaveLength(1);
    expect([...out[0].subarray(0, 6)]).toEqual([...mac(GW_MAC)]);
    expect((out[0][18] << 8) | out[0][19]).toBe(4242);
  });

  it('a device that fails on read is counted, reported once with its name and errno, and re-armed', () => {
    const w = twoWorkloads();
    const a = w.dev(A.name);
    a.failRead(ERRNO.EBADFD);
    a.inject(pingFrom(A, B, 1));
    w.round();
    expect(w.deviceErrors()).toEqual([
      {
        type: 'device-error',
        id: 0,
        port: w.port(A.name),
        name: A.name,
        op: 'read',
        errno: 77,
        code: 'EBADFD',
      },
    ]);
    expect(w.c('port-input: read-error')).toBe(1);
    expect(a.failed).toBe(true);
    // not read while failed, nor written: frames for it count as error (not sent); B still reads
    w.dev(B.name).inject(pingFrom(B, A, 2));
    w.round();
    w.round();
    expect(a.pending).toBe(1);
    expect(w.dev(B.name).pending).toBe(0);
    expect(a.take()).toEqual([]);
    expect(w.pc.txDropped[TX_ERROR][w.port(A.name)]).toBe(1);
    expect(w.deviceErrors()).toHaveLength(1);
    // a re-arm naming another device is ignored; the right one resumes reading
    w.inbox.push({ type: 'rearm', port: w.port(A.name), name: 'calizz' });
    w.round();
    expect(a.pending).toBe(1);
    w.inbox.push({ type: 'rearm', port: w.port(A.name), name: A.name });
    w.dev(B.name).inject(pingFrom(B, A, 3));
    w.drain();
    expect(a.pending).toBe(0);
    expect(ids(w.dev(B.name).take())).toEqual([1]);
    expect(ids(a.take())).toEqual([3]);
  });

  it('a device that fails on write: its frames count as error, one report, none counted as sent', () => {
    const w = twoWorkloads();
    const b = w.dev(B.name);
    b.failWrite(ERRNO.EBADF);
    for (let k = 0; k < 5; k++) w.dev(A.name).inject(pingFrom(A, B, k));
    w.round();
    for (let k = 5; k < 8; k++) w.dev(A.name).inject(pingFrom(A, B, k));
    w.round();
    const pb = w.port(B.name);
    expect(w.deviceErrors()).toEqual([
      { type: 'device-error', id: 0, port: pb, name: B.name, op: 'write', errno: 9, code: 'EBADF' },
    ]);
    expect(w.pc.txPackets[pb]).toBe(0);
    expect(w.pc.txDropped[TX_ERROR][pb]).toBe(8);
    expect(w.c('port-output: error')).toBe(8);
    expect(w.c('port-output: write-error')).toBe(1);
    b.failWrite(0);
    w.inbox.push({ type: 'rearm', port: pb, name: B.name });
    w.dev(A.name).inject(pingFrom(A, B, 9));
    w.drain();
    expect(ids(b.take())).toEqual([9]);
    expect(w.pc.txPackets[pb]).toBe(1);
  });

  it('back-pressure: only frames the device accepted count as sent; the rest per port and reason', () => {
    const w = twoWorkloads();
    const b = w.dev(B.name);
    const pb = w.port(B.name);
    b.txRoom = 10;
    for (let k = 0; k < 50; k++) w.dev(A.name).inject(pingFrom(A, B, k));
    w.round();
    expect(b.take()).toHaveLength(10);
    expect(w.pc.txPackets[pb]).toBe(10);
    expect(w.pc.txDropped[TX_QUEUE_FULL][pb]).toBe(40);
    expect(w.c('port-output: queue-full')).toBe(40);
    b.txRoom = Infinity;
    b.refuse(5, ERRNO.ENOBUFS);
    for (let k = 0; k < 20; k++) w.dev(A.name).inject(pingFrom(A, B, 100 + k));
    w.round();
    expect(ids(b.take())).toEqual([...Array(15).keys()].map((k) => 105 + k));
    expect(w.pc.txPackets[pb]).toBe(25);
    expect(w.pc.txDropped[TX_REFUSED][pb]).toBe(5);
    expect(w.c('port-output: refused')).toBe(5);
    // a refusal is not a device failure
    expect(w.deviceErrors()).toHaveLength(0);
    // every frame received is accounted for: sent or refused
    const pa = w.port(A.name);
    const dropped = w.pc.txDropped.reduce((s, a) => s + a[pb], 0);
    expect(w.pc.rxPackets[pa]).toBe(w.pc.txPackets[pb] + dropped);
  });

  it('obeys the test-only crash message only with test hooks on', () => {
    const w = twoWorkloads();
    w.inbox.push({ type: 'crash' });
    expect(() => w.round()).not.toThrow();
    const t = twoWorkloads({ testHooks: true });
    t.inbox.push({ type: 'crash' });
    expect(() => t.round()).toThrow(/crash requested/);
  });

  it('stops on a stop message', () => {
    const w = twoWorkloads();
    w.inbox.push({ type: 'stop' });
    w.loop.run();
    expect(w.loop.stopping).toBe(true);
  });
});
