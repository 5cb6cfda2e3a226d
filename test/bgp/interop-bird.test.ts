// calitap ↔ BIRD 2 iBGP (AS 64512) in a network namespace this test creates. calitap's speaker runs
// here in the root namespace on the veth end 10.200.N.1; BIRD runs in the namespace on 10.200.N.2.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIp4, formatPrefix4, parseIp4 } from '../../src/common/addr.js';
import type { BestRoute } from '../../src/control/bgp/rib.js';
import { BgpSpeaker, type BgpSpeakerOptions } from '../../src/control/bgp/speaker.js';
import { Bird, birdConf } from '../../bench/bgp-lab.js';
import { have, isRoot, Lab } from '../../bench/bgp-lab.js';
import { waitUntil } from './rawpeer.js';

const ok = isRoot && have('bird') && have('birdc');
const why = !isRoot ? 'requires root' : 'requires root and bird2';

describe.skipIf(!ok)(`bgp interop: calitap ↔ BIRD 2 iBGP (${why}, network namespaces)`, () => {
  let lab: Lab;
  let bird: Bird;
  const speakers: BgpSpeaker[] = [];
  let changes: [string, BestRoute | null][] = [];

  function speaker(extra: Partial<BgpSpeakerOptions> = {}): BgpSpeaker {
    const s = new BgpSpeaker({
      routerId: lab.ip(1),
      localAs: 64512,
      listenAddress: lab.ip(1),
      holdTime: 9,
      connectRetry: 1,
      idleHoldTime: 0.5,
      peers: [{ peerAddress: lab.ip(2), asNumber: 64512, peerType: 'global' }],
      onRouteChange: (p, b) => changes.push([formatPrefix4(p), b]),
      ...extra,
    });
    speakers.push(s);
    return s;
  }
  const learned = (s: BgpSpeaker) =>
    Object.fromEntries([...s.routes()].map((r) => [formatPrefix4(r.prefix), formatIp4(r.nextHop)]));

  beforeAll(async () => {
    lab = Lab.create('b');
    bird = new Bird(
      lab,
      'bird',
      birdConf({
        routerId: lab.ip(2),
        localAs: 64512,
        statics: ['10.66.0.0/26', '10.66.0.64/26'],
        peers: [
          { name: 'calitap1', ip: lab.ip(1), asn: 64512 },
          // BIRD believes 10.200.N.3 is in AS 64999: our OPEN must be refused with Bad Peer AS
          { name: 'wrongas', ip: lab.ip(3), asn: 64999 },
          // eBGP: BIRD in AS 65001, calitap (10.200.N.4) in AS 64512
          { name: 'ebgp1', ip: lab.ip(4), asn: 64512, extra: '  local as 65001;' },
        ],
      }),
    );
    bird.start();
    await bird.ready();
  });

  afterAll(async () => {
    await Promise.all(speakers.map((s) => s.abort()));
    if (lab) {
      if (process.env.CALITAP_TEST_LOGS) console.log(lab.log('bird'));
      await lab.destroy();
    }
  });

  it('session comes up and routes flow both ways with the right next hops and LOCAL_PREF', async () => {
    const s = speaker();
    s.originate('10.65.0.0/26');
    s.originate('10.65.0.64/26');
    await s.start();
    await waitUntil(() => s.status()[0].state === 'up', 20_000, 'session Established');
    await waitUntil(() => s.routeCount === 2, 10_000, 'BIRD’s blocks');
    expect(learned(s)).toEqual({ '10.66.0.0/26': lab.ip(2), '10.66.0.64/26': lab.ip(2) });
    expect(s.lookup('10.66.0.0/26')?.attrs).toMatchObject({ origin: 0, asPath: [], localPref: 100 });
    await waitUntil(
      () => Object.keys(bird.routesFrom('calitap1')).length === 2,
      10_000,
      'BIRD learns our blocks',
    );
    expect(bird.routesFrom('calitap1')).toEqual({ '10.65.0.0/26': lab.ip(1), '10.65.0.64/26': lab.ip(1) });
    const detail = bird.cli('show route 10.65.0.0/26 all');
    expect(detail).toMatch(/BGP\.local_pref: 100/);
    expect(detail).toMatch(/BGP\.origin: IGP/);
    expect(bird.protocol('calitap1').info).toBe('Established');
  });

  it('withdrawal reaches BIRD', async () => {
    const s = speakers[0];
    s.withdraw('10.65.0.64/26');
    await waitUntil(() => !('10.65.0.64/26' in bird.routesFrom('calitap1')), 10_000, 'BIRD drops the block');
    expect(Object.keys(bird.routesFrom('calitap1'))).toEqual(['10.65.0.0/26']);
  });

  it('hold timer expires while BIRD is SIGSTOPped; the session recovers after SIGCONT', async () => {
    const s = speakers[0];
    lab.signal(bird.child!, 'SIGSTOP');
    try {
      await waitUntil(() => s.status()[0].state !== 'up', 15_000, 'hold timer expiry');
      expect(s.status()[0].info).toMatch(/Sent: Hold Timer Expired/);
      expect(s.routeCount).toBe(0); // we sent a NOTIFICATION, so no graceful restart
    } finally {
      lab.signal(bird.child!, 'SIGCONT');
    }
    await waitUntil(() => s.status()[0].state === 'up', 30_000, 'session back');
    await waitUntil(() => s.routeCount === 2, 10_000, 'routes back');
  });

  it('BIRD restart (graceful): calitap keeps BIRD’s routes stale, then BIRD refreshes them', async () => {
    const s = speakers[0];
    changes = [];
    bird.cli('graceful restart');
    await lab.kill(bird.child!, 'SIGTERM', 10_000).catch(() => {});
    await waitUntil(() => s.status()[0].state !== 'up', 15_000, 'session loss noticed');
    expect(s.routeCount).toBe(2);
    expect(s.lookup('10.66.0.0/26')?.stale).toBe(true);
    bird.start(true);
    await bird.ready();
    await waitUntil(() => s.status()[0].state === 'up', 30_000, 'session back');
    await waitUntil(() => s.lookup('10.66.0.0/26')?.stale === false, 20_000, 'routes refreshed');
    expect(s.routeCount).toBe(2);
    // no withdrawal was ever reported for BIRD's blocks
    expect(changes.filter(([, b]) => b === null)).toEqual([]);
  });

  it('calitap restart: BIRD keeps our routes during graceful restart, End-of-RIB confirms them', async () => {
    await waitUntil(() => bird.protocol('calitap1').info === 'Established', 20_000, 'BIRD Established');
    await waitUntil(() => '10.65.0.0/26' in bird.routesFrom('calitap1'), 10_000, 'BIRD has our block');
    const old = speakers.shift()!;
    await old.abort(); // crash: TCP goes away without a NOTIFICATION
    await waitUntil(() => bird.protocol('calitap1').info !== 'Established', 15_000, 'BIRD notices');
    // BIRD (graceful restart helper) still routes to our block once it has noticed the loss (a check at
    // an event, not repeated checks after sleeps); the route is still there when we are back, below
    expect(bird.routesFrom('calitap1')).toHaveProperty(['10.65.0.0/26']);
    const s2 = speaker({ restarting: true });
    s2.originate('10.65.0.0/26');
    await s2.start();
    await waitUntil(() => s2.status()[0].state === 'up', 30_000, 'new session');
    await waitUntil(() => bird.protocol('calitap1').info === 'Established', 10_000, 'BIRD Established again');
    await waitUntil(() => s2.routeCount === 2, 10_000, 'BIRD’s routes learned again');
    expect(bird.routesFrom('calitap1')).toEqual({ '10.65.0.0/26': lab.ip(1) });
  });

  it('a peer that has us in the wrong AS refuses our OPEN with Bad Peer AS (2/2)', async () => {
    lab.addRootAddress(3);
    const s = new BgpSpeaker({
      routerId: lab.ip(3),
      localAs: 64512,
      listenAddress: lab.ip(3),
      connectRetry: 1,
      idleHoldTime: 0.5,
      peers: [{ peerAddress: lab.ip(2), asNumber: 64512 }],
    });
    speakers.push(s);
    await s.start();
    await waitUntil(() => /Bad Peer AS/.test(s.status()[0].info), 20_000, 'Bad Peer AS from BIRD');
    expect(s.status()[0].info).toMatch(/Received: OPEN Message Error\/Bad Peer AS \(2\/2\)/);
    expect(bird.cli('show protocols all wrongas')).toMatch(/Bad peer AS/i);
  });

  it('eBGP: AS paths are prepended and the next hop is the sender, both ways', async () => {
    lab.addRootAddress(4);
    const s = new BgpSpeaker({
      routerId: lab.ip(4),
      localAs: 64512,
      listenAddress: lab.ip(4),
      connectRetry: 1,
      idleHoldTime: 0.5,
      peers: [{ peerAddress: lab.ip(2), asNumber: 65001, peerType: 'global' }],
    });
    speakers.push(s);
    s.originate('10.65.4.0/26');
    await s.start();
    await waitUntil(() => s.status()[0].state === 'up', 20_000, 'eBGP session up');
    await waitUntil(() => s.routeCount === 2, 10_000, 'BIRD’s blocks over eBGP');
    const r = s.lookup('10.66.0.0/26')!;
    expect(r).toMatchObject({ ibgp: false, nextHop: parseIp4(lab.ip(2)) });
    expect(r.attrs.asPath).toEqual([{ type: 2, asns: [65001] }]);
    await waitUntil(
      () => '10.65.4.0/26' in bird.routesFrom('ebgp1'),
      10_000,
      'BIRD learns our block over eBGP',
    );
    const detail = bird.cli('show route 10.65.4.0/26 all');
    expect(detail).toMatch(/BGP\.as_path: 64512/);
    expect(detail).toMatch(new RegExp(`BGP\\.next_hop: ${lab.ip(4).replace(/\./g, '\\.')}`));
  });
});
