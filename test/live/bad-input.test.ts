// Hostile and broken input, with 2 dataplane workers: malformed frames injected from inside a workload
// (scapy on its eth0, so they arrive on calitap's TAP) and from the switch onto host 1's uplink, and a
// workload flooding ARP. The daemon keeps routing everybody else (a ping between two other workloads
// runs through all of it), no worker dies, and each kind of junk shows up in its drop counter.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import {
  bg,
  counters,
  delta,
  isRoot,
  killAll,
  macOf,
  parsePing,
  ping,
  prefix,
  python,
  run,
  waitFor,
  waitPing,
  type Bg,
} from './helpers.js';

type W = { ns: string; ip: string; name: string };

const EE = 'ee:ee:ee:ee:ee:ee';

/** A scapy script that sends each named frame `n` times on `iface` and prints the names it sent. */
function injector(iface: string, frames: Record<string, string>, n: number): string {
  return [
    'import json',
    'from scapy.all import Ether, Dot1Q, IP, ICMP, UDP, TCP, ARP, Raw, sendp, conf',
    'conf.verb = 0',
    'frames = {}',
    ...Object.entries(frames).map(([k, v]) => `frames[${JSON.stringify(k)}] = ${v}`),
    'for name, f in frames.items():',
    `    sendp([f] * ${n}, iface=${JSON.stringify(iface)})`,
    'print(json.dumps(sorted(frames)))',
  ].join('\n');
}

/** Frames the workload's kernel could not hand to the TAP (calitap's queue full). */
async function tapTxDropped(ns: string): Promise<number> {
  const j = JSON.parse((await run(ns, ['ip', '-s', '-j', 'link', 'show', 'eth0'])).stdout) as {
    stats64: { tx: { dropped: number } };
  }[];
  return j[0].stats64.tx.dropped;
}

describe.skipIf(!isRoot())('malformed frames and floods (requires root: network namespaces)', () => {
  let lab: Lab;
  let bad: W;
  let w2: W;
  let w3: W;
  let w4: W;
  let watch: Bg | null = null;

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('bi'), mode: 'ipip', hosts: 2, workers: 2 });
    await lab.start(1);
    await lab.start(2);
    bad = await lab.addWorkload(1);
    w2 = await lab.addWorkload(1);
    w3 = await lab.addWorkload(1);
    w4 = await lab.addWorkload(2);
    await waitPing(w2.ns, w3.ip);
    await waitPing(w2.ns, w4.ip, 8000);
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  /** Starts a ping between two good workloads that runs while the junk flows. */
  function startWatch(from: W, to: W): void {
    watch = bg(from.ns, ['ping', '-n', '-i', '0.05', '-W', '1', to.ip]);
  }

  async function stopWatch(): Promise<{ sent: number; received: number; out: string }> {
    const w = watch!;
    watch = null;
    await w.stop('SIGINT');
    return parsePing(w.stdout);
  }

  function workerTrouble(): string[] {
    const log = fs.readFileSync(lab.hosts[0].log, 'utf8');
    return log.split('\n').filter((l) => /worker (exited|failed|error)/.test(l));
  }

  it('drops malformed frames from a workload’s TAP and counts each kind', async () => {
    const src = macOf(bad.ns, 'eth0');
    const eth = `Ether(dst='${EE}', src='${src}')`;
    const ip = `IP(src='${bad.ip}', dst='${w2.ip}')`;
    const n = 5;
    const frames: Record<string, string> = {
      // Ethernet
      'ethernet-input: unsupported-ethertype': `${eth.replace(')', ', type=0x88b5)')}/Raw(b'\\x00' * 46)`,
      'ethernet-input: vlan-tagged': `${eth}/Dot1Q(vlan=7)/${ip}/ICMP()`,
      // IPv4 header checks
      'ip4-input: short': `${eth.replace(')', ', type=0x0800)')}/Raw(bytes(${ip})[:12])`,
      'ip4-input: bad-version': `${eth.replace(')', ', type=0x0800)')}/Raw(b'\\x65' + bytes(${ip}/ICMP())[1:])`,
      // IHL 3 with a valid-looking rest: built from bytes so scapy does not "fix" the header
      'ip4-input: bad-ihl': `${eth.replace(')', ', type=0x0800)')}/Raw(b'\\x43' + bytes(${ip}/ICMP())[1:])`,
      'ip4-input: header-beyond-frame': `${eth.replace(')', ', type=0x0800)')}/Raw(b'\\x4f' + bytes(${ip})[1:])`,
      'ip4-input: total-length-short': `${eth}/IP(src='${bad.ip}', dst='${w2.ip}', len=12)/ICMP()`,
      'ip4-input: truncated': `${eth}/IP(src='${bad.ip}', dst='${w2.ip}', len=65000)/ICMP()`,
      'ip4-input: bad-checksum': `${eth}/IP(src='${bad.ip}', dst='${w2.ip}', chksum=0x1234)/ICMP()`,
      'ip4-input: martian-source': `${eth}/IP(src='127.0.0.1', dst='${w2.ip}')/ICMP()`,
      // a workload may not send tunnel packets
      'ip4-spoof-check: ipip-from-workload': `${eth}/${ip.replace(')', ', proto=4)')}/IP(src='10.65.0.1', dst='${w4.ip}')/ICMP()`,
      'ip4-spoof-check: vxlan-from-workload': `${eth}/${ip}/UDP(sport=1234, dport=4789)/Raw(b'\\x08' + bytes(7))`,
      // ARP
      'arp-reply: malformed': `Ether(dst='ff:ff:ff:ff:ff:ff', src='${src}')/ARP(hwlen=200, psrc='${bad.ip}', pdst='169.254.1.1')`,
    };
    // valid IPv4 headers with lying upper-layer lengths: calitap forwards them (w2's kernel drops them);
    // they must not upset anything
    const passThrough = {
      huge_udp_len: `${eth}/${ip}/UDP(sport=9, dport=9, len=60000)/Raw(b'x' * 20)`,
      huge_tcp_offset: `${eth}/${ip}/TCP(sport=9, dport=9, dataofs=15)/Raw(b'x' * 4)`,
    };
    startWatch(w2, w3);
    await waitFor('watch ping running', () => /bytes from/.test(watch!.stdout), 3000);
    const before = await counters(lab, 1);
    await python(bad.ns, injector('eth0', { ...frames, ...passThrough }, n));
    // a fuzz round: random bytes after a valid Ethernet header, as IPv4 and as ARP (seeded)
    await python(
      bad.ns,
      [
        'import random',
        'from scapy.all import Ether, Raw, sendp, conf',
        'conf.verb = 0',
        'r = random.Random(7)',
        'fs = []',
        'for i in range(400):',
        `    t = 0x0800 if i % 2 == 0 else 0x0806`,
        '    body = bytes(r.getrandbits(8) for _ in range(r.randint(0, 120)))',
        '    if t == 0x0800 and body: body = bytes([0x45]) + body[1:]',
        `    fs.append(Ether(dst='${EE}', src='${src}', type=t)/Raw(body))`,
        "sendp(fs, iface='eth0')",
      ].join('\n'),
    );
    // the good workloads still talk, before and after the junk
    expect((await ping(w2.ns, w3.ip, { count: 2, interval: 0.1 })).received).toBe(2);
    const d = delta(before, await counters(lab, 1));
    const during = await stopWatch();
    for (const k of Object.keys(frames))
      expect(d[k] ?? 0, `${k}: ${JSON.stringify(d)}`).toBeGreaterThanOrEqual(n);
    // exactly n where nothing else can produce the reason
    for (const k of [
      'ip4-input: bad-checksum',
      'ip4-spoof-check: ipip-from-workload',
      'ip4-input: martian-source',
    ])
      expect(d[k], k).toBe(n);
    expect(during.received, during.out).toBeGreaterThanOrEqual(during.sent - 2);
    expect(workerTrouble().join('\n')).toBe('');
  });

  it('drops malformed frames arriving on the uplink and counts them', async () => {
    const sw = `${lab.o.prefix}sw`;
    const upMac = macOf(lab.hosts[0].ns, 'up0');
    const eth = `Ether(dst='${upMac}', src='02:00:00:00:be:ef')`;
    const n = 5;
    const frames: Record<string, string> = {
      'ip4-input: bad-checksum': `${eth}/IP(src='10.0.0.77', dst='${w2.ip}', chksum=0x1234)/ICMP()`,
      'ip4-input: bad-ihl': `${eth.replace(')', ', type=0x0800)')}/Raw(b'\\x43' + bytes(IP(src='10.0.0.77', dst='${w2.ip}')/ICMP())[1:])`,
      'ip4-input: truncated': `${eth}/IP(src='10.0.0.77', dst='${w2.ip}', len=1400)/ICMP()`,
      'ip4-input: total-length-short': `${eth}/IP(src='10.0.0.77', dst='${w2.ip}', len=8)/ICMP()`,
      'ip4-input: martian-source': `${eth}/IP(src='127.0.0.1', dst='${w2.ip}')/ICMP()`,
      // IPIP from a host that is not a cluster node, and from node-2 with a broken inner packet
      'ipip4-input: unknown-peer': `${eth}/IP(src='10.0.0.77', dst='10.0.0.1', proto=4)/IP(src='10.65.0.64', dst='${w2.ip}')/ICMP()`,
      'ipip4-input: short': `${eth}/IP(src='10.0.0.2', dst='10.0.0.1', proto=4)/Raw(b'\\x45\\x00')`,
      // a reply for a NAT mapping that does not exist
      'snat4-out2in: no-translation': `${eth}/IP(src='203.0.113.10', dst='10.0.0.101')/UDP(sport=53, dport=40000)/Raw(b'x')`,
      'arp-reply: malformed': `Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:be:ef')/ARP(plen=99, psrc='10.0.0.77', pdst='10.0.0.101')`,
    };
    // never reach calitap (its BPF filter) but must not disturb anything either
    const filtered = {
      garbage_type: `${eth.replace(')', ', type=0x88b5)')}/Raw(b'\\xff' * 60)`,
      ipv6_junk: `${eth.replace(')', ', type=0x86dd)')}/Raw(b'\\x60' + bytes(59))`,
    };
    startWatch(w2, w4);
    await waitFor('watch ping running', () => /bytes from/.test(watch!.stdout), 3000);
    const before = await counters(lab, 1);
    await python(sw, injector('s1', { ...frames, ...filtered }, n));
    expect((await ping(w2.ns, w4.ip, { count: 2, interval: 0.1 })).received).toBe(2);
    const d = delta(before, await counters(lab, 1));
    const during = await stopWatch();
    for (const k of Object.keys(frames)) expect(d[k] ?? 0, `${k}: ${JSON.stringify(d)}`).toBe(n);
    expect(during.received, during.out).toBeGreaterThanOrEqual(during.sent - 2);
    expect(workerTrouble().join('\n')).toBe('');
  });

  it('keeps routing while a workload floods 20k ARP requests', async () => {
    const src = macOf(bad.ns, 'eth0');
    const before = await counters(lab, 1);
    const dropsBefore = await tapTxDropped(bad.ns);
    startWatch(w2, w3);
    await waitFor('watch ping running', () => /bytes from/.test(watch!.stdout), 3000);
    // a raw socket: scapy's sendp is too slow to flood; the frames are built once with scapy.
    // 90% requests for random addresses (answered), 5% duplicate-address probes for the workload's own
    // address (ignored, RFC 5227), 5% unsolicited replies (ignored)
    const arp = (op: number, dst: string, psrc: string, pdst: string): string =>
      `bytes(Ether(dst="${dst}", src="${src}")/ARP(op=${op}, hwsrc="${src}", psrc="${psrc}", pdst=${pdst}))`;
    const out = await python(
      bad.ns,
      [
        'import socket, json',
        'from scapy.all import Ether, ARP',
        `reqs = [${arp(1, 'ff:ff:ff:ff:ff:ff', bad.ip, '"10.%d.%d.%d" % (66 + i % 100, (i >> 8) & 255, i & 255)')} for i in range(256)]`,
        `own = ${arp(1, 'ff:ff:ff:ff:ff:ff', '0.0.0.0', `"${bad.ip}"`)}`,
        `rep = ${arp(2, EE, bad.ip, '"169.254.1.1"')}`,
        's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
        's.bind(("eth0", 0))',
        'sent = {"req": 0, "own": 0, "rep": 0}',
        'for i in range(20000):',
        '    k, f = ("own", own) if i % 20 == 0 else ("rep", rep) if i % 20 == 1 else ("req", reqs[i % 256])',
        '    try:',
        '        s.send(f)',
        '        sent[k] += 1',
        '    except OSError:',
        '        pass',
        'print(json.dumps(sent))',
      ].join('\n'),
      60_000,
    );
    const sent = JSON.parse(out) as { req: number; own: number; rep: number };
    const total = sent.req + sent.own + sent.rep;
    expect(total, out).toBeGreaterThanOrEqual(19_000);
    // every frame the workload got into the TAP is accounted for: handled by arp-reply, or dropped by
    // the TAP when calitap fell behind (its queue is txqueuelen 10000 frames)
    let d: Record<string, number> = {};
    let handled = 0;
    let tapDrops = 0;
    await waitFor(
      'the flood to be accounted for',
      async () => {
        d = delta(before, await counters(lab, 1));
        handled =
          (d['arp-reply: replied'] ?? 0) +
          (d['arp-reply: probe-ignored'] ?? 0) +
          (d['arp-reply: ignored'] ?? 0);
        tapDrops = (await tapTxDropped(bad.ns)) - dropsBefore;
        return handled + tapDrops >= total;
      },
      10_000,
      100,
    ).catch(() => undefined);
    const why = `${out} ${JSON.stringify(d)} tap drops ${tapDrops}`;
    expect(handled + tapDrops, why).toBeGreaterThanOrEqual(total);
    expect(handled, why).toBeLessThanOrEqual(total + 10);
    expect(handled, why).toBeGreaterThanOrEqual(total * 0.1);
    expect(d['arp-reply: replied'], why).toBeGreaterThan(0);
    expect(d['arp-reply: probe-ignored'], why).toBeGreaterThan(0);
    expect(d['arp-reply: ignored'], why).toBeGreaterThan(0);
    // the flood is over: the others still talk, locally and over the uplink
    expect((await ping(w2.ns, w3.ip, { count: 3, interval: 0.1 })).received).toBe(3);
    expect((await ping(w2.ns, w4.ip, { count: 3, interval: 0.1 })).received).toBe(3);
    const during = await stopWatch();
    // a lost ping or two is tolerable while a core is busy flooding; more is not
    expect(during.received, during.out).toBeGreaterThanOrEqual(Math.floor(during.sent * 0.9));
    expect(workerTrouble().join('\n')).toBe('');
  });
});
