// calitap ↔ FRR bgpd (iBGP AS 64512, no zebra) in a namespace this test creates: session, routes
// both ways, route refresh in both directions.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIp4, formatPrefix4 } from '../../src/common/addr.js';
import { BgpSpeaker } from '../../src/control/bgp/speaker.js';
import { frrConf } from '../../bench/bgp-lab.js';
import { have, isRoot, Lab } from '../../bench/bgp-lab.js';
import { waitUntil } from './rawpeer.js';

const BGPD = '/usr/lib/frr/bgpd';
const ok = isRoot && have(BGPD) && have('vtysh');
const why = !isRoot ? 'requires root' : 'requires root and frr';

describe.skipIf(!ok)(`bgp interop: calitap ↔ FRR bgpd (${why}, network namespaces)`, () => {
  let lab: Lab;
  let bgpd: ChildProcess;
  let s: BgpSpeaker;

  const vtysh = (cmd: string) => lab.exec('vtysh', ['--vty_socket', lab.dir, '-d', 'bgpd', '-c', cmd]);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const json = (cmd: string): any => JSON.parse(vtysh(cmd));
  const neighbor = () => json(`show bgp neighbors ${lab.ip(1)} json`)[lab.ip(1)] ?? {};

  beforeAll(async () => {
    lab = Lab.create('f');
    const conf = lab.writeFile(
      'bgpd.conf',
      frrConf({
        routerId: lab.ip(2),
        localAs: 64512,
        peer: lab.ip(1),
        peerAs: 64512,
        networks: ['10.67.0.0/26'],
      }),
    );
    bgpd = lab.spawn('bgpd', BGPD, [
      '-Z',
      '-S',
      '-n',
      '-f',
      conf,
      '--vty_socket',
      lab.dir,
      '-i',
      `${lab.dir}/bgpd.pid`,
    ]);
    await waitUntil(
      () => {
        try {
          vtysh('show bgp summary');
          return true;
        } catch {
          return false;
        }
      },
      15_000,
      'bgpd vty socket',
    );
  });

  afterAll(async () => {
    await s?.abort();
    if (lab) {
      if (process.env.CALITAP_TEST_LOGS) console.log(lab.log('bgpd'));
      await lab.kill(bgpd);
      await lab.destroy();
    }
  });

  it('session comes up and routes flow both ways', async () => {
    s = new BgpSpeaker({
      routerId: lab.ip(1),
      localAs: 64512,
      listenAddress: lab.ip(1),
      holdTime: 9,
      connectRetry: 1,
      idleHoldTime: 0.5,
      peers: [{ peerAddress: lab.ip(2), asNumber: 64512, peerType: 'global' }],
    });
    s.originate('10.65.0.0/26');
    await s.start();
    await waitUntil(() => s.status()[0].state === 'up', 30_000, 'session up');
    await waitUntil(() => s.lookup('10.67.0.0/26'), 15_000, 'FRR’s network');
    expect(formatIp4(s.lookup('10.67.0.0/26')!.nextHop)).toBe(lab.ip(2));
    expect(neighbor().bgpState).toBe('Established');
    await waitUntil(
      () => json('show bgp ipv4 unicast json').routes?.['10.65.0.0/26'],
      15_000,
      'FRR learns our block',
    );
    const paths = json('show bgp ipv4 unicast json').routes['10.65.0.0/26'];
    expect(paths[0].nexthops[0].ip).toBe(lab.ip(1));
    expect(paths[0].locPrf ?? paths[0].localPref).toBe(100);
    expect([...s.routes()].map((r) => formatPrefix4(r.prefix))).toEqual(['10.67.0.0/26']);
  });

  it('route refresh: we ask FRR, FRR asks us', async () => {
    const before = s.status()[0].updatesReceived;
    const frrRefreshIn = () => Number(neighbor().messageStats?.routeRefreshRecv ?? 0);
    const r0 = frrRefreshIn();
    expect(s.requestRouteRefresh(lab.ip(2))).toBe(true);
    await waitUntil(() => frrRefreshIn() > r0, 10_000, 'FRR counts our ROUTE-REFRESH');
    await waitUntil(() => s.status()[0].updatesReceived > before, 10_000, 'FRR re-sends its routes');

    vtysh(`clear bgp ipv4 unicast ${lab.ip(1)} soft in`);
    await waitUntil(() => s.status()[0].refreshesReceived > 0, 10_000, 'ROUTE-REFRESH from FRR');
    expect(s.status()[0].state).toBe('up');
    await waitUntil(
      () => json('show bgp ipv4 unicast json').routes?.['10.65.0.0/26'],
      10_000,
      'our block still there',
    );
  });
});
