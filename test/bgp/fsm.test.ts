import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyCaps } from '../../src/control/bgp/caps.js';
import { decodeMessage, encodeKeepalive, encodeOpen, encodeUpdate } from '../../src/control/bgp/codec.js';
import { type DownInfo, type FsmConfig, type Negotiated, PeerFsm } from '../../src/control/bgp/fsm.js';
import type { BgpMessage, UpdateMsg } from '../../src/control/bgp/types.js';
import { FakeClock, type FakeConn, FakeNet } from './fakes.js';

const A_IP = 0x0ac80001;
const B_IP = 0x0ac80002;

function cfg(over: Partial<FsmConfig>): FsmConfig {
  return {
    localAs: 64512,
    routerId: A_IP,
    peerAs: 64512,
    peerAddress: B_IP,
    passive: false,
    holdTime: 90,
    connectRetryMs: 5000,
    idleHoldMs: 1000,
    gracefulRestart: null,
    maxQueuedBytes: 1 << 26,
    ...over,
  };
}

class Rec {
  established: Negotiated[] = [];
  updates: UpdateMsg[] = [];
  downs: DownInfo[] = [];
  refreshes = 0;
  states: string[] = [];
  handlers = {
    onEstablished: (n: Negotiated) => this.established.push(n),
    onUpdate: (u: UpdateMsg) => this.updates.push(u),
    onRouteRefresh: () => this.refreshes++,
    onDown: (d: DownInfo) => this.downs.push(d),
    onStateChange: (s: string) => this.states.push(s),
  };
}

function decodeAll(conn: FakeConn): BgpMessage[] {
  return conn.sent.map((m) => {
    const d = decodeMessage(m, { as4: true, ibgp: true });
    if (!d.ok) throw new Error('bad message sent');
    return d.msg;
  });
}

/** Two FSMs wired through the fake network: a (10.200.0.1) and b (10.200.0.2). */
function pairSetup(aOver: Partial<FsmConfig> = {}, bOver: Partial<FsmConfig> = {}) {
  const clock = new FakeClock();
  const net = new FakeNet();
  clock.pump = () => net.run();
  const ra = new Rec();
  const rb = new Rec();
  const ta = net.transport('b');
  const tb = net.transport('a');
  const a = new PeerFsm(cfg({ routerId: A_IP, peerAddress: B_IP, ...aOver }), clock, ta, ra.handlers);
  const b = new PeerFsm(
    cfg({ routerId: B_IP, peerAddress: A_IP, passive: true, ...bOver }),
    clock,
    tb,
    rb.handlers,
  );
  net.listen('a', (c) => a.acceptInbound(c));
  net.listen('b', (c) => b.acceptInbound(c));
  return { clock, net, a, b, ra, rb, ta, tb };
}

describe('bgp fsm (fake clock and transport)', () => {
  it('active and passive peers reach Established; hold = min, keepalive = hold/3', () => {
    const { clock, a, b, ra, rb } = pairSetup({ holdTime: 90 }, { holdTime: 30 });
    b.start();
    a.start();
    clock.advance(1);
    expect(a.state).toBe('Established');
    expect(b.state).toBe('Established');
    expect(ra.established[0].holdTime).toBe(30);
    expect(ra.established[0].keepaliveMs).toBe(10_000);
    expect(rb.established[0].codec).toEqual({ as4: true, ibgp: true });
    expect(ra.states).toEqual(['Connect', 'OpenSent', 'OpenConfirm', 'Established']);
  });

  it('keepalives keep the session up for an hour of fake time', () => {
    const { clock, a, b, ra } = pairSetup({ holdTime: 9 }, { holdTime: 9 });
    b.start();
    a.start();
    clock.advance(3600_000);
    expect(a.state).toBe('Established');
    expect(ra.downs).toEqual([]);
  });

  it('hold timer expiry sends NOTIFICATION 4/0 and reports the session down', () => {
    const { clock, net, a, b, ra, rb } = pairSetup({ holdTime: 9 }, { holdTime: 9 });
    b.start();
    a.start();
    clock.advance(1);
    // b stops sending anything (process stopped)
    const bEnd = net.conns.find((c) => c.inbound)!;
    bEnd.blocked = true;
    clock.advance(8_990);
    expect(a.state).toBe('Established');
    clock.advance(20);
    expect(ra.downs[0]).toMatchObject({ reason: 'Sent: Hold Timer Expired', graceful: false });
    const aEnd = net.conns.find((c) => !c.inbound)!;
    expect(decodeAll(aEnd).at(-1)).toMatchObject({ type: 'notification', code: 4, subcode: 0 });
    expect(rb.downs[0].reason).toMatch(/Hold Timer Expired/);
  });

  it('peer offering hold time 1 or 2 gets NOTIFICATION 2/6; 0 is accepted and disables keepalives', () => {
    for (const hold of [1, 2, 0]) {
      const clock = new FakeClock();
      const net = new FakeNet();
      clock.pump = () => net.run();
      const r = new Rec();
      const fsm = new PeerFsm(cfg({ passive: true }), clock, net.transport('x'), r.handlers);
      fsm.start();
      const [raw, theirs] = net.pair();
      fsm.acceptInbound(theirs);
      raw.onData = () => {};
      raw.send(encodeOpen({ asn: 64512, holdTime: hold, bgpId: B_IP, caps: { ...emptyCaps(), as4: 64512 } }));
      raw.send(encodeKeepalive());
      clock.advance(1);
      const got = decodeAll(theirs);
      if (hold === 0) {
        expect(fsm.state).toBe('Established');
        expect(r.established[0]).toMatchObject({ holdTime: 0, keepaliveMs: 0 });
        clock.advance(3600_000);
        expect(fsm.state).toBe('Established');
      } else {
        expect(got.at(-1)).toMatchObject({ type: 'notification', code: 2, subcode: 6 });
        expect(fsm.state).toBe('Idle');
      }
    }
  });

  it('wrong peer AS → 2/2, own router ID on iBGP → 2/3, version 3 → 2/1', () => {
    const cases: [Uint8Array, number][] = [
      [encodeOpen({ asn: 65000, holdTime: 90, bgpId: B_IP, caps: { ...emptyCaps(), as4: 65000 } }), 2],
      [encodeOpen({ asn: 64512, holdTime: 90, bgpId: A_IP, caps: { ...emptyCaps(), as4: 64512 } }), 3],
    ];
    const v3 = encodeOpen({ asn: 64512, holdTime: 90, bgpId: B_IP, caps: emptyCaps() });
    v3[19] = 3;
    cases.push([v3, 1]);
    for (const [open, sub] of cases) {
      const clock = new FakeClock();
      const net = new FakeNet();
      clock.pump = () => net.run();
      const fsm = new PeerFsm(cfg({ passive: true }), clock, net.transport('x'), new Rec().handlers);
      fsm.start();
      const [raw, theirs] = net.pair();
      fsm.acceptInbound(theirs);
      raw.send(open);
      clock.advance(1);
      expect(decodeAll(theirs).at(-1)).toMatchObject({ type: 'notification', code: 2, subcode: sub });
      expect(fsm.info).toMatch(/^Sent: OPEN Message Error/);
    }
  });

  it('unexpected UPDATE in OpenSent → FSM error 5/1', () => {
    const clock = new FakeClock();
    const net = new FakeNet();
    clock.pump = () => net.run();
    const fsm = new PeerFsm(cfg({ passive: true }), clock, net.transport('x'), new Rec().handlers);
    fsm.start();
    const [raw, theirs] = net.pair();
    fsm.acceptInbound(theirs);
    raw.send(encodeUpdate({ withdrawn: [{ addr: 0, len: 0 }] }, { as4: true, ibgp: true }));
    clock.advance(1);
    expect(decodeAll(theirs).at(-1)).toMatchObject({ type: 'notification', code: 5, subcode: 1 });
  });

  it('connect retry: Connect → Active on failure, back to Connect every ConnectRetry interval', () => {
    const { clock, net, a, ta } = pairSetup({ connectRetryMs: 5000 });
    net.listen('b', null);
    a.start();
    clock.advance(1);
    expect(a.state).toBe('Active');
    expect(a.info).toBe('Connect Socket: Connection refused');
    expect(ta.attempts).toBe(1);
    clock.advance(5000);
    expect(ta.attempts).toBe(2);
    clock.advance(20_000);
    expect(ta.attempts).toBe(6);
  });

  it('passive peer never dials', () => {
    const { clock, b, tb } = pairSetup();
    b.start();
    clock.advance(600_000);
    expect(tb.attempts).toBe(0);
    expect(b.state).toBe('Active');
  });

  for (const [name, aId, bId] of [
    ['lower local ID keeps the inbound connection', A_IP, B_IP],
    ['higher local ID keeps its outbound connection', B_IP, A_IP],
  ] as const) {
    it(`collision detection (§6.8): ${name}; one session survives, the other gets Cease/7`, () => {
      const { clock, net, a, b, ra, rb } = pairSetup({ routerId: aId }, { routerId: bId, passive: false });
      net.slowAccept = true;
      a.start();
      b.start();
      clock.advance(1);
      expect(a.state).toBe('Established');
      expect(b.state).toBe('Established');
      expect(ra.established.length).toBe(1);
      expect(rb.established.length).toBe(1);
      const ceased = net.conns.filter((c) =>
        decodeAll(c).some((m) => m.type === 'notification' && m.code === 6 && m.subcode === 7),
      );
      expect(ceased.length).toBe(2); // both sides close the same losing connection
      // The surviving connection was dialled by the side with the higher router ID.
      const alive = net.conns.filter((c) => !c.closed);
      expect(alive.length).toBe(2);
      const dialer = alive.find((c) => !c.inbound)!;
      const open = decodeMessage(dialer.sent[0], { as4: true, ibgp: true });
      expect(open.ok && open.msg.type === 'open' && open.msg.bgpId).toBe(Math.max(aId, bId));
      clock.advance(600_000);
      expect(ra.downs).toEqual([]);
    });
  }

  it('stop sends Cease/Administrative Shutdown with a shutdown communication', () => {
    const { clock, a, b, rb } = pairSetup();
    b.start();
    a.start();
    clock.advance(1);
    a.stop('maintenance');
    clock.advance(1);
    expect(rb.downs[0].reason).toBe('Received: Cease/Administrative Shutdown (6/2): maintenance');
    expect(rb.downs[0].graceful).toBe(false);
    expect(a.state).toBe('Idle');
    clock.advance(600_000);
    expect(a.state).toBe('Idle');
    // b stays ready for a to come back
    expect(b.state).toBe('Active');
  });

  it('TCP loss without NOTIFICATION from a GR-capable peer is graceful; the session comes back', () => {
    const gr = {
      restartTime: 120,
      restarting: false,
      notification: false,
      afis: [{ afi: 1, safi: 1, forwarding: true }],
    };
    const { clock, net, a, b, ra } = pairSetup({ gracefulRestart: gr }, { gracefulRestart: gr });
    b.start();
    a.start();
    clock.advance(1);
    net.conns[0].fail();
    clock.advance(1);
    expect(ra.downs[0]).toMatchObject({ graceful: true, restartTimeSec: 120 });
    clock.advance(5000);
    expect(a.state).toBe('Established');
    expect(b.state).toBe('Established');
  });

  it('delivers UPDATEs and ROUTE-REFRESH in Established', () => {
    const { clock, a, b, rb } = pairSetup();
    b.start();
    a.start();
    clock.advance(1);
    const u = encodeUpdate(
      {
        attrs: { origin: 0, asPath: [], nextHop: A_IP, localPref: 100 },
        nlri: [{ addr: 0x0a410000, len: 26 }],
      },
      { as4: true, ibgp: true },
    );
    expect(a.sendUpdates([u])).toBe(true);
    clock.advance(1);
    expect(rb.updates[0].nlri).toEqual([{ addr: 0x0a410000, len: 26 }]);
  });

  it('random garbage to an Established session only ever produces a NOTIFICATION', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 5 }), (chunks) => {
        const { clock, net, a, b, ra } = pairSetup();
        b.start();
        a.start();
        clock.advance(1);
        const bEnd = net.conns.find((c) => c.inbound)!;
        for (const c of chunks) bEnd.send(c);
        clock.advance(1);
        const aSent = decodeAll(net.conns.find((c) => !c.inbound)!);
        if (a.state !== 'Established') {
          expect(ra.downs.length).toBe(1);
          expect(aSent.at(-1)?.type).toBe('notification');
        }
      }),
      { numRuns: 300 },
    );
  });
});
