import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { parseIp4 } from '../../src/common/addr.js';

const CONFIG = new URL('../../pcaps/sample-config.yaml', import.meta.url).pathname;

/** The NAT port the first flow of a fresh table gets. */
function firstPort(opts: { natSeed?: number }): number {
  const prog = new Programmer(loadConfigFile(CONFIG), 'node-a', opts);
  const nat = prog.env.nat!;
  const f = nat.createOut(6, parseIp4('10.65.0.2')!, 40000, parseIp4('192.0.2.10')!, 80, 1000);
  expect(f).toBeGreaterThanOrEqual(0);
  return nat.natPort(f);
}

describe('programmer: NAT port allocation', () => {
  it('is reproducible with a seed (replay --seed)', () => {
    expect(firstPort({ natSeed: 0 })).toBe(firstPort({ natSeed: 0 }));
    expect(firstPort({ natSeed: 7 })).toBe(firstPort({ natSeed: 7 }));
  });

  it('is unpredictable without one (the live daemon, RFC 6056)', () => {
    const ports = new Set([firstPort({}), firstPort({}), firstPort({}), firstPort({})]);
    expect(ports.size).toBeGreaterThan(1);
  });
});
