import { describe, expect, it } from 'vitest';
import { formatPrefix4 } from '../../src/common/addr.js';
import { type BestRoute, Rib } from '../../src/control/bgp/rib.js';
import type { PathAttrs, UpdateMsg } from '../../src/control/bgp/types.js';
import { pfx } from './helpers.js';

const ME = 0x0ac80001; // 10.200.0.1
const P1 = 0x0ac80002;
const P2 = 0x0ac80003;
const P3 = 0x0ac80004;

function attrs(over: Partial<PathAttrs> = {}): PathAttrs {
  return { origin: 0, asPath: [], nextHop: 0x0a000001, localPref: 100, ...over };
}
function upd(
  a: PathAttrs | null,
  nlri: string[],
  withdrawn: string[] = [],
  extra: Partial<UpdateMsg> = {},
): UpdateMsg {
  return { type: 'update', attrs: a, nlri: nlri.map(pfx), withdrawn: withdrawn.map(pfx), ...extra };
}

function setup(exportLearnedToEbgp = true) {
  const changes: [string, BestRoute | null][] = [];
  const rib = new Rib({ localAs: 64512, routerId: ME, nextHop: ME, exportLearnedToEbgp }, (p, b) =>
    changes.push([formatPrefix4(p), b]),
  );
  return { rib, changes };
}

describe('bgp rib: best path selection', () => {
  const N = ['10.65.1.0/26'];
  const cases: [string, Partial<PathAttrs>, Partial<PathAttrs>, string][] = [
    [
      'higher local preference',
      { localPref: 200, asPath: [{ type: 2, asns: [1, 2, 3] }] },
      {},
      'local preference',
    ],
    ['shorter AS path', { asPath: [] }, { asPath: [{ type: 2, asns: [65001] }] }, 'AS path length'],
    [
      'AS_SET counts as one',
      { asPath: [{ type: 1, asns: [1, 2, 3] }] },
      { asPath: [{ type: 2, asns: [1, 2] }] },
      'AS path length',
    ],
    ['lower origin', { origin: 0 }, { origin: 2 }, 'origin'],
    ['lower MED from the same neighbour AS', { med: 5 }, { med: 10 }, 'MED'],
    ['lower originator ID', { originatorId: 1 }, { originatorId: 2 }, 'router ID'],
    [
      'shorter cluster list',
      { clusterList: [9], originatorId: 5 },
      { clusterList: [9, 8], originatorId: 5 },
      'cluster list length',
    ],
  ];
  for (const [name, win, lose, reason] of cases) {
    it(`${name} wins (reason: ${reason}), in either arrival order`, () => {
      for (const order of [0, 1]) {
        const { rib } = setup();
        const a = rib.addPeer(P1, 64512);
        const b = rib.addPeer(P2, 64512);
        rib.peerUp(a, P1);
        rib.peerUp(b, P2);
        // peer b has the lower router ID, so give the winner to b when testing router-ID-free rules
        const first = order === 0 ? [a, attrs(lose)] : [b, attrs({ ...win, nextHop: 0x0a000002 })];
        const second = order === 0 ? [b, attrs({ ...win, nextHop: 0x0a000002 })] : [a, attrs(lose)];
        rib.applyUpdate(first[0] as typeof a, upd(first[1] as PathAttrs, N));
        rib.applyUpdate(second[0] as typeof a, upd(second[1] as PathAttrs, N));
        const best = rib.lookup(pfx(N[0]))!;
        expect(best.peerAddress).toBe(P2);
        expect(best.nextHop).toBe(0x0a000002);
        expect(best.reason).toBe(reason);
      }
    });
  }

  it('MED is not compared between different neighbour ASes; eBGP beats iBGP', () => {
    const { rib } = setup();
    const e = rib.addPeer(P2, 65001);
    const i = rib.addPeer(P1, 64512);
    rib.peerUp(e, P2);
    rib.peerUp(i, P1);
    rib.applyUpdate(i, upd(attrs({ asPath: [{ type: 2, asns: [65002] }], med: 0 }), N));
    rib.applyUpdate(
      e,
      upd({ origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: 0x0a000009, med: 50 }, N),
    );
    expect(rib.lookup(pfx(N[0]))).toMatchObject({ peerAddress: P2, reason: 'eBGP over iBGP' });
  });

  it('lower router ID then lower peer address break ties', () => {
    const { rib } = setup();
    const a = rib.addPeer(P3, 64512);
    const b = rib.addPeer(P2, 64512);
    rib.peerUp(a, 5);
    rib.peerUp(b, 5);
    rib.applyUpdate(a, upd(attrs(), N));
    rib.applyUpdate(b, upd(attrs(), N));
    expect(rib.lookup(pfx(N[0]))).toMatchObject({ peerAddress: P2, reason: 'peer address' });
  });

  it('withdrawal falls back to the other path and then removes the prefix', () => {
    const { rib, changes } = setup();
    const a = rib.addPeer(P1, 64512);
    const b = rib.addPeer(P2, 64512);
    rib.peerUp(a, P1);
    rib.peerUp(b, P2);
    rib.applyUpdate(a, upd(attrs({ localPref: 200 }), N));
    rib.applyUpdate(b, upd(attrs(), N));
    rib.applyUpdate(a, upd(null, [], N));
    expect(rib.lookup(pfx(N[0]))).toMatchObject({ peerAddress: P2, reason: 'only route' });
    rib.applyUpdate(b, upd(null, [], N));
    expect(rib.lookup(pfx(N[0]))).toBeNull();
    expect(changes.map(([p, b]) => [p, b?.peerAddress ?? null])).toEqual([
      [N[0], P1],
      [N[0], P2],
      [N[0], null],
    ]);
  });
});

describe('bgp rib: import rules', () => {
  it('drops routes with our ORIGINATOR_ID, our cluster ID, our AS in the path or our address as next hop', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    rib.applyUpdate(p, upd(attrs({ originatorId: ME }), ['10.1.0.0/24']));
    rib.applyUpdate(p, upd(attrs({ clusterList: [7, ME] }), ['10.2.0.0/24']));
    rib.applyUpdate(p, upd(attrs({ asPath: [{ type: 2, asns: [65001, 64512] }] }), ['10.3.0.0/24']));
    rib.applyUpdate(p, upd(attrs({ nextHop: ME }), ['10.4.0.0/24']));
    expect(rib.size).toBe(0);
    expect(p.stats.rejected).toBe(4);
  });

  it('drops eBGP routes whose AS path does not start with the peer AS', () => {
    const { rib } = setup();
    const e = rib.addPeer(P3, 65001);
    rib.peerUp(e, P3);
    rib.applyUpdate(
      e,
      upd({ origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop: P3 }, ['10.1.0.0/24']),
    );
    rib.applyUpdate(e, upd({ origin: 0, asPath: [], nextHop: P3 }, ['10.2.0.0/24']));
    rib.applyUpdate(
      e,
      upd({ origin: 0, asPath: [{ type: 2, asns: [65001, 65002] }], nextHop: P3 }, ['10.3.0.0/24']),
    );
    expect([...rib.routes()].map((r) => formatPrefix4(r.prefix))).toEqual(['10.3.0.0/24']);
    expect(e.lastReject).toBe('AS path does not start with the peer AS');
  });

  it('accepts third-party next hops (route reflector clients keep the original next hop)', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    rib.applyUpdate(
      p,
      upd(attrs({ nextHop: 0x0ac80009, originatorId: 0x0ac80009, clusterList: [P1] }), ['10.1.0.0/24']),
    );
    expect(rib.lookup(pfx('10.1.0.0/24'))?.nextHop).toBe(0x0ac80009);
  });

  it('treat-as-withdraw removes what the UPDATE carried, including MP_REACH prefixes', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    rib.applyUpdate(p, upd(attrs(), ['10.1.0.0/24', '10.2.0.0/24']));
    rib.applyUpdate(
      p,
      upd(attrs(), ['10.1.0.0/24'], [], {
        treatAsWithdraw: true,
        mpReach: { nextHop: 1, nlri: [pfx('10.2.0.0/24')] },
      }),
    );
    expect(rib.size).toBe(0);
  });

  it('MP_REACH routes use the attribute next hop', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    rib.applyUpdate(
      p,
      upd(attrs({ nextHop: null }), [], [], { mpReach: { nextHop: 0x0a0a0a0a, nlri: [pfx('10.9.0.0/16')] } }),
    );
    expect(rib.lookup(pfx('10.9.0.0/16'))?.nextHop).toBe(0x0a0a0a0a);
  });
});

describe('bgp rib: graceful restart helper', () => {
  it('keeps routes stale across a graceful loss; re-learned ones stay, End-of-RIB purges the rest', () => {
    const { rib, changes } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    rib.applyUpdate(p, upd(attrs(), ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24']));
    changes.length = 0;
    rib.peerDown(p, true);
    expect(rib.size).toBe(3);
    expect(rib.lookup(pfx('10.1.0.0/24'))?.stale).toBe(true);
    expect(changes).toEqual([]);
    rib.peerUp(p, P1);
    rib.applyUpdate(p, upd(attrs(), ['10.1.0.0/24']));
    rib.applyUpdate(p, upd(attrs({ med: 7 }), ['10.2.0.0/24']));
    expect(rib.lookup(pfx('10.1.0.0/24'))?.stale).toBe(false);
    expect(changes.map((c) => c[0])).toEqual(['10.2.0.0/24']);
    expect(rib.purgeStale(p)).toBe(1);
    expect(rib.size).toBe(2);
    expect(changes.at(-1)).toEqual(['10.3.0.0/24', null]);
  });

  it('a non-graceful loss withdraws everything, stale included', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    rib.applyUpdate(p, upd(attrs(), ['10.1.0.0/24']));
    rib.peerDown(p, true);
    rib.peerUp(p, P1);
    rib.applyUpdate(p, upd(attrs(), ['10.2.0.0/24']));
    rib.peerDown(p, false);
    expect(rib.size).toBe(0);
    expect(rib.attrSetCount).toBe(0); // nothing left referencing an attribute set
  });
});

describe('bgp rib: export', () => {
  function drain(rib: Rib, p: ReturnType<Rib['addPeer']>) {
    const u = rib.takeUpdates(p);
    return {
      withdrawn: u.withdrawn.map(formatPrefix4),
      groups: u.groups.map((g) => ({ attrs: g.attrs, prefixes: g.prefixes.map(formatPrefix4) })),
    };
  }

  it('originated blocks go to iBGP peers with ORIGIN IGP, empty path, LOCAL_PREF 100, our next hop', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.originate(pfx('10.65.0.0/26'));
    rib.peerUp(p, P1);
    expect(drain(rib, p)).toEqual({
      withdrawn: [],
      groups: [{ attrs: { origin: 0, asPath: [], nextHop: ME, localPref: 100 }, prefixes: ['10.65.0.0/26'] }],
    });
    rib.originate(pfx('10.65.0.64/26'));
    rib.withdraw(pfx('10.65.0.0/26'));
    expect(drain(rib, p)).toEqual({
      withdrawn: ['10.65.0.0/26'],
      groups: [
        { attrs: { origin: 0, asPath: [], nextHop: ME, localPref: 100 }, prefixes: ['10.65.0.64/26'] },
      ],
    });
    expect(drain(rib, p)).toEqual({ withdrawn: [], groups: [] });
  });

  it('iBGP-learned routes are never sent to iBGP peers; eBGP peers get them with our AS and next hop', () => {
    const { rib } = setup();
    const i1 = rib.addPeer(P1, 64512);
    const i2 = rib.addPeer(P2, 64512);
    const e = rib.addPeer(P3, 65001);
    for (const p of [i1, i2, e]) rib.peerUp(p, p.address);
    for (const p of [i1, i2, e]) drain(rib, p);
    rib.applyUpdate(i1, upd(attrs({ med: 3, communities: [1] }), ['10.1.0.0/24']));
    expect(drain(rib, i2).groups).toEqual([]);
    expect(drain(rib, i1).groups).toEqual([]);
    expect(drain(rib, e).groups).toEqual([
      {
        attrs: { origin: 0, asPath: [{ type: 2, asns: [64512] }], nextHop: ME, communities: [1] },
        prefixes: ['10.1.0.0/24'],
      },
    ]);
  });

  it('eBGP-learned routes go to iBGP peers with LOCAL_PREF and their next hop; not back to the sender', () => {
    const { rib } = setup();
    const i1 = rib.addPeer(P1, 64512);
    const e = rib.addPeer(P3, 65001);
    for (const p of [i1, e]) rib.peerUp(p, p.address);
    rib.applyUpdate(
      e,
      upd({ origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: P3 }, ['10.1.0.0/24']),
    );
    expect(drain(rib, i1).groups).toEqual([
      {
        attrs: { origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: P3, localPref: 100 },
        prefixes: ['10.1.0.0/24'],
      },
    ]);
    expect(drain(rib, e).groups).toEqual([]);
  });

  it('route refresh resends the whole Adj-RIB-Out', () => {
    const { rib } = setup();
    const p = rib.addPeer(P1, 64512);
    rib.originate(pfx('10.65.0.0/26'));
    rib.peerUp(p, P1);
    drain(rib, p);
    rib.refreshPeer(p);
    expect(drain(rib, p).groups[0].prefixes).toEqual(['10.65.0.0/26']);
  });
});

describe('bgp rib: scale', () => {
  // What keeps 1 M routes small is structural, so that is what this checks: one entry per prefix and
  // one interned attribute set per distinct attribute combination, shared by every route that carries
  // it (heap size and time are the benchmark's business: npm run bench:bgp, bench/RESULTS.md).
  it('holds 1 M routes from one peer, sharing one attribute set per distinct combination', () => {
    let changes = 0;
    const rib = new Rib({ localAs: 64512, routerId: ME, nextHop: ME }, () => changes++);
    const p = rib.addPeer(P1, 64512);
    rib.peerUp(p, P1);
    const batch = 500;
    const nextHops = 64;
    const paths = 7;
    const route = (j: number) => ({ addr: (0x0b000000 + j * 16) >>> 0, len: 28 });
    for (let i = 0; i < 1_000_000; i += batch) {
      const nlri = [];
      for (let j = i; j < i + batch; j++) nlri.push(route(j));
      rib.applyUpdate(p, {
        type: 'update',
        withdrawn: [],
        nlri,
        attrs: attrs({
          nextHop: 0x0a000000 + (i % nextHops) + 1,
          asPath: [{ type: 2, asns: [65000 + (i % paths)] }],
        }),
      });
    }
    expect(rib.size).toBe(1_000_000);
    expect(changes).toBe(1_000_000);
    expect(rib.attrSetCount).toBeLessThanOrEqual(nextHops * paths + 1);
    // routes of two UPDATEs with equal attributes (batches 0 and nextHops*paths apart) share one object
    const first = rib.lookup(route(0))!;
    const again = rib.lookup(route(nextHops * paths * batch + 1))!;
    expect(again.attrs).toEqual(first.attrs);
    expect(again.attrs).toBe(first.attrs);
    expect(rib.lookup(route(batch))!.attrs).not.toBe(first.attrs);
  });
});
