// The host TAP's control side without a kernel: which addresses count as the host's (from `ip -j -4
// addr show`), the kernel route it asks for per pool, and the programmer's host port: the host's
// /32s on it (never over a workload's), updated when the addresses change.
import { describe, expect, it } from 'vitest';
import { hostAddrs, hostRouteArgs, parseAddrs } from '../../src/control/daemon/host-port.js';
import { ifAddrs4 } from '../../src/dataplane/devices/native.js';
import { programmer } from '../dataplane/harness.js';
import { ip } from '../dataplane/frames.js';
import { baseYaml, WEB } from '../policy/helpers.js';
import { KIND_HOST } from '../../src/dataplane/graph/ports.js';

const IP_JSON = JSON.stringify([
  { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  {
    ifname: 'up0',
    addr_info: [
      { family: 'inet', local: '10.0.0.1', prefixlen: 24 },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
    ],
  },
  { ifname: 'eth1', addr_info: [{ family: 'inet', local: '192.168.7.1', prefixlen: 24 }] },
  { ifname: 'odd', addr_info: [{ family: 'inet', local: '169.254.1.1', prefixlen: 32 }, { family: 'inet' }] },
]);

describe('the host TAP (control side)', () => {
  it("takes the namespace's IPv4 addresses, martians and 169.254.1.1 left out", () => {
    expect(parseAddrs(IP_JSON)).toEqual([ip('10.0.0.1'), ip('192.168.7.1')]);
    expect(parseAddrs('not json')).toEqual([]);
    expect(parseAddrs('{}')).toEqual([]);
  });

  it('reads the addresses in-process (getifaddrs) and filters them the same way', () => {
    const all = ifAddrs4();
    expect(all.every((a) => Number.isInteger(a) && a >= 0 && a <= 0xffffffff)).toBe(true);
    expect(hostAddrs(all)).toEqual(
      all.filter((a) => a >>> 24 !== 127 && a >>> 24 !== 0 && a >>> 24 < 224 && a !== ip('169.254.1.1')),
    );
    expect(
      hostAddrs([ip('127.0.0.1'), ip('10.0.0.1'), ip('169.254.1.1'), ip('224.0.0.1'), ip('0.1.2.3')]),
    ).toEqual([ip('10.0.0.1')]);
  });

  it('routes a pool through 169.254.1.1 on the TAP, sourced from the node IP, at the pod MTU', () => {
    expect(hostRouteArgs('10.65.0.0/16', 'calitap-host0', ip('10.0.0.1'), 1450).join(' ')).toBe(
      'route replace 10.65.0.0/16 via 169.254.1.1 dev calitap-host0 onlink src 10.0.0.1 mtu 1450',
    );
  });

  it("puts the host's /32s on the host port and follows address changes", () => {
    const prog = programmer(`${baseYaml()}\n# host-port unit\n`);
    const h = { name: 'calitap-host0', mac: '52:54:00:aa:bb:cc', mtu: 1500 };
    const p = prog.attachHost({ ...h, addrs: [ip('10.0.0.1'), ip('192.168.7.1'), ip(WEB.ip)] });
    expect(prog.env.ports.kind[p]).toBe(KIND_HOST);
    expect(prog.env.ports.host).toBe(p);
    const route = (a: string) => prog.route({ addr: ip(a), len: 32 });
    expect(route('10.0.0.1')).toMatchObject({ via: 'local', port: 'calitap-host0', source: 'host' });
    expect(route('192.168.7.1')?.source).toBe('host');
    expect(route(WEB.ip)?.source).not.toBe('host'); // a workload's address stays the workload's
    expect(prog.attachHost({ ...h, addrs: [ip('10.0.0.1'), ip('192.168.8.1')] })).toBe(p);
    expect(route('192.168.7.1')).toBeUndefined();
    expect(route('192.168.8.1')?.source).toBe('host');
    expect(prog.env.ports.sourceAllowed(p, ip('192.168.8.1'))).toBe(true);
    expect(prog.env.ports.sourceAllowed(p, ip('192.168.7.1'))).toBe(false);
    expect(() => prog.attachHost({ ...h, name: 'other', addrs: [] })).toThrow(/another host port/);
  });
});
