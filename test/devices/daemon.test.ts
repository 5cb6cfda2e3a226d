// The control thread's side of device errors and transmit drops: what it does about a failed device
// (re-arm the uplink and live workloads, remove a workload whose namespace is gone, ignore a port
// deleted meanwhile), the re-arm backoff, and the per-port tx drops `calitap stats` sums over workers.
import { describe, expect, it } from 'vitest';
import { deviceErrorAction, rearmDelayMs } from '../../src/control/daemon/daemon.js';
import type { Attached } from '../../src/control/daemon/workloads.js';
import { collectStats } from '../../src/control/daemon/stats.js';
import { PortCounters, TX_ERROR, TX_QUEUE_FULL, TX_REFUSED } from '../../src/dataplane/graph/counters.js';
import { MAX_PORTS, type PortSpec } from '../../src/dataplane/graph/ports.js';

const w = (name: string, port: number, netns: string): Attached => ({
  record: { name, netns, ip: '10.65.0.2', mac: '0a:58:0a:41:00:02', tap: `cali${name}` },
  port,
  fds: [],
});

describe('device errors on the control thread', () => {
  const attached = [w('a', 1, 'ns-a'), w('b', 2, 'ns-b')];
  const exists = (ns: string): boolean => ns === 'ns-a';

  it('re-arms the uplink and workloads that are still there, removes those whose namespace is gone', () => {
    expect(deviceErrorAction({ port: 0, name: 'up0' }, attached, exists).action).toBe('rearm');
    expect(deviceErrorAction({ port: 1, name: 'calia' }, attached, exists)).toEqual({
      action: 'rearm',
      workload: attached[0],
    });
    expect(deviceErrorAction({ port: 2, name: 'calib' }, attached, exists)).toEqual({
      action: 'remove',
      workload: attached[1],
    });
    // deleted meanwhile, or the slot now belongs to another workload
    expect(deviceErrorAction({ port: 3, name: 'calic' }, attached, exists).action).toBe('ignore');
    expect(deviceErrorAction({ port: 1, name: 'calib' }, attached, exists).action).toBe('ignore');
  });

  it('re-arms the host TAP like the uplink', () => {
    expect(deviceErrorAction({ port: 5, name: 'calitap-host0' }, attached, exists, 5).action).toBe('rearm');
    expect(deviceErrorAction({ port: 5, name: 'calitap-host0' }, attached, exists).action).toBe('ignore');
  });

  it('backs off from 100 ms, doubling, to at most 5 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(rearmDelayMs)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });
});

describe('stats: per-port tx drops summed over workers', () => {
  it('sums accepted and refused frames per port and reason', () => {
    const specs: (PortSpec | null)[] = [
      { name: 'up0', kind: 'uplink' },
      null,
      { name: 'calib', kind: 'workload' },
    ];
    const workers = [0, 1].map(() => {
      const pc = new PortCounters(MAX_PORTS);
      pc.txPackets[2] = 10;
      pc.txBytes[2] = 1000;
      pc.txDropped[TX_QUEUE_FULL][2] = 3;
      pc.txDropped[TX_REFUSED][2] = 2;
      pc.txDropped[TX_ERROR][0] = 1;
      return { portCounters: pc.rxPackets.buffer as SharedArrayBuffer, names: [] };
    });
    const st = collectStats(workers, ['up0', 'unused1', 'calib'], specs);
    expect(st.ports).toEqual([
      {
        port: 'up0',
        rxPackets: 0,
        rxBytes: 0,
        txPackets: 0,
        txBytes: 0,
        txDropped: 2,
        txDroppedBy: { 'queue-full': 0, refused: 0, error: 2 },
      },
      {
        port: 'calib',
        rxPackets: 0,
        rxBytes: 0,
        txPackets: 20,
        txBytes: 2000,
        txDropped: 10,
        txDroppedBy: { 'queue-full': 6, refused: 4, error: 0 },
      },
    ]);
  });
});
