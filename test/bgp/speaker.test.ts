// Speaker over real TCP sockets on loopback addresses (127.0.0.0/8 is all loopback on Linux, so no
// root is needed): a three-node calitap full mesh, graceful restart, and negative tests from a
// scripted peer.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatIp4, formatPrefix4, parseIp4 } from '../../src/common/addr.js';
import type { BestRoute } from '../../src/control/bgp/rib.js';
import { BgpSpeaker, type BgpSpeakerOptions } from '../../src/control/bgp/speaker.js';
import { BASE_ATTRS4, msg, update } from './helpers.js';
import { RawPeer, waitUntil } from './rawpeer.js';

const NET = `127.${100 + (process.pid % 100)}.${(process.pid >> 7) % 250}`;
const ipOf = (n: number) => `${NET}.${n}`;
const PORT = 20000 + (process.pid % 20000);

const speakers: BgpSpeaker[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await Promise.all(speakers.splice(0).map((s) => s.abort()));
});
afterAll(async () => {
  await Promise.all(speakers.map((s) => s.abort()));
});

function speaker(n: number, peers: number[], extra: Partial<BgpSpeakerOptions> = {}) {
  const changes: [string, BestRoute | null][] = [];
  const s = new BgpSpeaker({
    routerId: ipOf(n),
    localAs: 64512,
    listenAddress: ipOf(n),
    listenPort: PORT,
    connectRetry: 1,
    idleHoldTime: 0.2,
    holdTime: 9,
    peers: peers.map((m) => ({
      peerAddress: ipOf(m),
      asNumber: 64512,
      peerType: 'node-to-node mesh' as const,
      passive: m > n, // Calico: the side whose peer has the greater IP waits
      port: PORT,
    })),
    onRouteChange: (p, b) => changes.push([formatPrefix4(p), b]),
    ...extra,
  });
  speakers.push(s);
  return { s, changes };
}

const routesOf = (s: BgpSpeaker) =>
  Object.fromEntries([...s.routes()].map((r) => [formatPrefix4(r.prefix), formatIp4(r.nextHop)]));

describe('bgp speaker: three-node calitap full mesh over loopback', () => {
  it('every node learns the others’ blocks with the originator as next hop; withdrawal and shutdown propagate', async () => {
    const nodes = [1, 2, 3].map((n) =>
      speaker(
        n,
        [1, 2, 3].filter((m) => m !== n),
      ),
    );
    nodes.forEach(({ s }, i) => s.originate(`10.65.${i}.0/26`));
    await Promise.all(nodes.map(({ s }) => s.start()));
    await waitUntil(() => nodes.every(({ s }) => s.routeCount === 2), 15_000, 'full mesh convergence');
    expect(routesOf(nodes[0].s)).toEqual({ '10.65.1.0/26': ipOf(2), '10.65.2.0/26': ipOf(3) });
    expect(routesOf(nodes[2].s)).toEqual({ '10.65.0.0/26': ipOf(1), '10.65.1.0/26': ipOf(2) });
    const st = nodes[0].s.status();
    expect(st.map((p) => [p.peerAddress, p.peerType, p.state, p.info])).toEqual([
      [ipOf(2), 'node-to-node mesh', 'up', 'Established'],
      [ipOf(3), 'node-to-node mesh', 'up', 'Established'],
    ]);
    expect(st[0].routesReceived).toBe(1);
    expect(st[0].routesAdvertised).toBe(1);
    expect(nodes[0].s.lookup('10.65.1.0/26')).toMatchObject({ reason: 'only route', ibgp: true });

    nodes[1].s.withdraw('10.65.1.0/26');
    await waitUntil(() => nodes[0].s.routeCount === 1 && nodes[2].s.routeCount === 1, 10_000, 'withdrawal');
    expect(nodes[0].changes.at(-1)).toEqual(['10.65.1.0/26', null]);

    await nodes[2].s.stop('maintenance');
    await waitUntil(() => nodes[0].s.routeCount === 0, 10_000, 'routes of the stopped node gone');
    const down = nodes[0].s.status().find((p) => p.peerAddress === ipOf(3))!;
    expect(down.state).toBe('start');
    expect(down.info).toMatch(/Received: Cease\/Administrative Shutdown \(6\/2\): maintenance/);
  });
});

describe('bgp speaker: graceful restart (RFC 4724)', () => {
  it('a crashed peer’s routes stay (stale) until it is back and sends End-of-RIB', async () => {
    const a = speaker(1, [2]);
    const b = speaker(2, [1]);
    a.s.originate('10.65.0.0/26');
    a.s.originate('10.65.0.64/26');
    await Promise.all([a.s.start(), b.s.start()]);
    await waitUntil(() => b.s.routeCount === 2, 10_000, 'b learns a’s blocks');
    b.changes.length = 0;

    await a.s.abort(); // crash: no NOTIFICATION
    speakers.splice(speakers.indexOf(a.s), 1);
    await waitUntil(() => b.s.status()[0].state !== 'up', 10_000, 'b notices the loss');
    expect(b.s.routeCount).toBe(2);
    expect(b.s.lookup('10.65.0.0/26')?.stale).toBe(true);

    const a2 = speaker(1, [2], { restarting: true });
    a2.s.originate('10.65.0.0/26'); // the other block is gone after the restart
    await a2.s.start();
    await waitUntil(() => b.s.routeCount === 1, 15_000, 'End-of-RIB purges the block a2 no longer has');
    expect(b.s.lookup('10.65.0.0/26')).toMatchObject({ stale: false, nextHop: parseIp4(ipOf(1)) });
    // the surviving block never flapped: the only change b reported is the purge
    expect(b.changes.map(([p, r]) => [p, r === null])).toEqual([['10.65.0.64/26', true]]);
  });
});

describe('bgp speaker: negative tests from a scripted peer', () => {
  const S = 10;
  const R = 11;
  async function target() {
    const t = speaker(S, [], {});
    t.s.addPeer({ peerAddress: ipOf(R), asNumber: 64512, passive: true, port: PORT });
    await t.s.start();
    const r = await RawPeer.connect(ipOf(S), PORT, ipOf(R));
    raws.push(r);
    return { ...t, r };
  }
  const note = (r: RawPeer) => waitUntil(() => r.notification(), 5000, 'NOTIFICATION');

  it('wrong peer AS → OPEN Message Error / Bad Peer AS (2/2)', async () => {
    const { r, s } = await target();
    r.sendOpen({ asn: 65000, bgpId: 0x01010101 });
    expect(await note(r)).toMatchObject({ code: 2, subcode: 2 });
    await waitUntil(() => s.status()[0].info.includes('Bad Peer AS'), 5000, 'status info');
  });

  it('hold time 1 → Unacceptable Hold Time (2/6)', async () => {
    const { r } = await target();
    r.sendOpen({ asn: 64512, bgpId: 0x01010101, holdTime: 1 });
    expect(await note(r)).toMatchObject({ code: 2, subcode: 6 });
  });

  it('bad marker → Connection Not Synchronized (1/1)', async () => {
    const { r } = await target();
    r.send(new Uint8Array(19).fill(0x41));
    expect(await note(r)).toMatchObject({ code: 1, subcode: 1 });
  });

  it('unknown capability is ignored and the session comes up', async () => {
    const { r, s } = await target();
    await r.establish(64512, 0x01010101, { unknown: [{ code: 0xaa, value: Uint8Array.of(1, 2, 3) }] });
    await waitUntil(() => s.status()[0].state === 'up', 5000, 'Established');
  });

  it('truncated UPDATE (length below the minimum) → Bad Message Length (1/2)', async () => {
    const { r } = await target();
    await r.establish(64512, 0x01010101);
    r.send(msg(2, '0000'));
    expect(await note(r)).toMatchObject({ code: 1, subcode: 2 });
  });

  it('UPDATE whose withdrawn length overruns → Malformed Attribute List (3/1)', async () => {
    const { r } = await target();
    await r.establish(64512, 0x01010101);
    r.send(msg(2, '00ff0000'));
    expect(await note(r)).toMatchObject({ code: 3, subcode: 1 });
  });

  it('malformed attribute → treat-as-withdraw: route removed, session stays up', async () => {
    const { r, s } = await target();
    await r.establish(64512, 0x01010101);
    r.send(update('', BASE_ATTRS4 + '40050400000064', '1a0a410040'));
    await waitUntil(() => s.lookup('10.65.0.64/26'), 5000, 'route learned');
    r.send(update('', '4001020000' + '40020602010000fde9' + '4003040a000001', '1a0a410040')); // ORIGIN length 2
    await waitUntil(() => s.lookup('10.65.0.64/26') === null, 5000, 'route withdrawn');
    // The speaker handles a session's messages in order and sends a NOTIFICATION only when it closes
    // the session: once it has learned a route sent after the malformed one, it cannot have sent one.
    r.send(update('', BASE_ATTRS4 + '40050400000064', '1a0a410080'));
    await waitUntil(() => s.lookup('10.65.0.128/26'), 5000, 'route sent after the malformed one learned');
    expect(r.notification()).toBeUndefined();
    expect(s.status()[0].state).toBe('up');
  });

  it('a garbage-sending peer loses only its own session', async () => {
    const { r, s } = await target();
    s.addPeer({ peerAddress: ipOf(12), asNumber: 64512, port: PORT });
    const other = speaker(12, [S]);
    other.s.originate('10.65.9.0/26');
    await other.s.start();
    await waitUntil(() => s.lookup('10.65.9.0/26'), 10_000, 'route from the good peer');
    await r.establish(64512, 0x01010101);
    for (let i = 0; i < 200; i++)
      r.send(update('', BASE_ATTRS4, '18' + (i % 250).toString(16).padStart(2, '0') + '0000'));
    r.send(Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 255));
    expect((await note(r)).code).toBe(1);
    await waitUntil(
      () => s.status().find((p) => p.peerAddress === ipOf(R))!.state !== 'up',
      5000,
      'bad peer down',
    );
    expect(s.status().find((p) => p.peerAddress === ipOf(12))!.state).toBe('up');
    expect(s.lookup('10.65.9.0/26')).not.toBeNull();
    // the flood's routes went away with the session (no graceful restart offered by the raw peer)
    await waitUntil(() => s.routeCount === 1, 5000, 'flooded routes withdrawn');
  });

  it('a peer that stops reading and talking loses only its own session (hold timer), others get everything', async () => {
    const t = speaker(S, [], { holdTime: 3 });
    t.s.addPeer({ peerAddress: ipOf(R), asNumber: 64512, passive: true, port: PORT });
    t.s.addPeer({ peerAddress: ipOf(13), asNumber: 64512, passive: true, port: PORT });
    for (let i = 0; i < 20_000; i++) t.s.originate({ addr: (0x0b000000 + i * 256) >>> 0, len: 24 });
    await t.s.start();
    const r = await RawPeer.connect(ipOf(S), PORT, ipOf(R));
    raws.push(r);
    await r.establish(64512, 0x01010101);
    r.socket.pause(); // stalls: reads nothing, sends nothing
    const good = speaker(13, [S]);
    await good.s.start();
    await waitUntil(() => good.s.routeCount === 20_000, 20_000, 'the good peer gets every route');
    await waitUntil(
      () => /Hold Timer Expired/.test(t.s.status().find((p) => p.peerAddress === ipOf(R))!.info),
      10_000,
      'the stalled peer’s session times out',
    );
    expect(t.s.status().find((p) => p.peerAddress === ipOf(13))!.state).toBe('up');
  });

  it('unconfigured addresses are refused', async () => {
    const t = speaker(S, []);
    await t.s.start();
    const r = await RawPeer.connect(ipOf(S), PORT, ipOf(99));
    raws.push(r);
    await waitUntil(() => r.closed, 5000, 'connection closed');
  });

  it('sends our blocks to a scripted peer with LOCAL_PREF and End-of-RIB; ROUTE-REFRESH resends them', async () => {
    const { r, s } = await target();
    s.originate('10.65.3.0/26');
    await r.establish(64512, 0x01010101);
    const updates = () => r.received.filter((m) => m.type === 'update');
    await waitUntil(() => updates().length >= 2, 5000, 'UPDATE + End-of-RIB');
    expect(updates()[0]).toMatchObject({
      nlri: [{ addr: 0x0a410300, len: 26 }],
      attrs: { origin: 0, asPath: [], nextHop: parseIp4(ipOf(S)), localPref: 100 },
    });
    expect(updates()[1]).toMatchObject({ withdrawn: [], nlri: [], attrs: null });
    r.send(msg(5, '00010001'));
    await waitUntil(() => updates().length >= 4, 5000, 'refreshed UPDATE + End-of-RIB');
  });
});
