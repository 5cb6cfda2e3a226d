// Replay with network policy: captures built with the frame helpers (one per port, timestamps giving
// the order), a configuration with two tiers, namespaced and global policies, a Pass rule, a Log
// rule, a named port and an explicit namespace profile; the outputs are decoded independently with
// scapy (test/replay/decode_pcap.py) and checked flow by flow: allowed, denied (by policy, end of
// tier, profile), Pass to the next tier, replies on the flow, INVALID mid-stream TCP. The same
// inputs replay byte-identically, and the per-endpoint deny counters name their causes.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { replay, type ReplayResult } from '../../src/dataplane/replay.js';
import { PcapWriter } from '../../src/dataplane/devices/pcap/writer.js';
import { ping, udp } from '../dataplane/frames.js';
import {
  API,
  baseYaml,
  POLICY_YAML,
  DB,
  GW_MAC,
  NODE_B_MAC,
  OUTSIDE,
  REMOTE,
  tcp,
  TCP_FLAGS,
  UPLINK_MAC,
  WEB,
} from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PY = '/usr/bin/python3';
const haveScapy = spawnSync(PY, ['-c', 'import scapy.all'], { stdio: 'ignore' }).status === 0;

interface Frame {
  port: string;
  bytes: Uint8Array;
}

/** The scenario, in capture order (10 ms apart). */
function scenario(): Frame[] {
  const fromUplink = { ethSrc: GW_MAC, ethDst: UPLINK_MAC };
  const fromNodeB = { ethSrc: NODE_B_MAC, ethDst: UPLINK_MAC };
  return [
    // 1. api -> db:5432 allowed (security tier passes, default tier allows); db answers on the flow
    {
      port: API.port,
      bytes: tcp({
        ethSrc: API.mac,
        src: API.ip,
        dst: DB.ip,
        sport: 41000,
        dport: 5432,
        flags: TCP_FLAGS.SYN,
      }),
    },
    {
      port: DB.port,
      bytes: tcp({
        ethSrc: DB.mac,
        src: DB.ip,
        dst: API.ip,
        sport: 5432,
        dport: 41000,
        flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
      }),
    },
    {
      port: API.port,
      bytes: tcp({
        ethSrc: API.mac,
        src: API.ip,
        dst: DB.ip,
        sport: 41000,
        dport: 5432,
        flags: TCP_FLAGS.ACK,
      }),
    },
    // 2. web -> db:5432: the default tier applies, nothing allows it: end of tier
    {
      port: WEB.port,
      bytes: tcp({
        ethSrc: WEB.mac,
        src: WEB.ip,
        dst: DB.ip,
        sport: 42000,
        dport: 5432,
        flags: TCP_FLAGS.SYN,
      }),
    },
    // 3. batch (namespace jobs, team data, on node-b) -> db: denied in the security tier
    {
      port: 'uplink',
      bytes: tcp({
        ...fromNodeB,
        src: REMOTE.ip,
        dst: DB.ip,
        sport: 43000,
        dport: 5432,
        flags: TCP_FLAGS.SYN,
      }),
    },
    // 4. web -> api:8080 (named port http): allowed, and logged
    {
      port: WEB.port,
      bytes: tcp({
        ethSrc: WEB.mac,
        src: WEB.ip,
        dst: API.ip,
        sport: 44000,
        dport: 8080,
        flags: TCP_FLAGS.SYN,
      }),
    },
    // 5. batch -> api:8080: not web
    {
      port: 'uplink',
      bytes: tcp({
        ...fromNodeB,
        src: REMOTE.ip,
        dst: API.ip,
        sport: 45000,
        dport: 8080,
        flags: TCP_FLAGS.SYN,
      }),
    },
    // 6. outside -> web:80 allowed by the namespace profile; 7. UDP denied by it
    {
      port: 'uplink',
      bytes: tcp({ ...fromUplink, src: OUTSIDE, dst: WEB.ip, sport: 46000, dport: 80, flags: TCP_FLAGS.SYN }),
    },
    { port: 'uplink', bytes: udp({ ...fromUplink, src: OUTSIDE, dst: WEB.ip, sport: 46001, dport: 53 }) },
    // 8. mid-stream TCP nobody opened: INVALID
    {
      port: WEB.port,
      bytes: tcp({
        ethSrc: WEB.mac,
        src: WEB.ip,
        dst: API.ip,
        sport: 47000,
        dport: 8080,
        flags: TCP_FLAGS.ACK,
      }),
    },
    // 9. api pings outside (profile egress allows); the reply comes back on the flow
    { port: API.port, bytes: ping({ ethSrc: API.mac, src: API.ip, dst: OUTSIDE }) },
    { port: 'uplink', bytes: ping({ ...fromUplink, src: OUTSIDE, dst: API.ip, type: 0 }) },
  ];
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-policy-replay-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeInputs(): { port: string; path: string }[] {
  const frames = scenario();
  const byPort = new Map<string, PcapWriter>();
  frames.forEach((f, k) => {
    let w = byPort.get(f.port);
    if (!w) {
      w = new PcapWriter(path.join(dir, `in-${f.port}.pcap`));
      byPort.set(f.port, w);
    }
    w.write(f.bytes, 0, f.bytes.length, 1000, k * 10_000_000);
  });
  for (const w of byPort.values()) w.close();
  return [...byPort.keys()].map((port) => ({ port, path: path.join(dir, `in-${port}.pcap`) }));
}

function run(out: string): { res: ReplayResult; prog: Programmer } {
  const prog = new Programmer(loadConfigText(baseYaml() + POLICY_YAML, 'policy.yaml'), 'node-a', {
    natSeed: 0,
  });
  const res = replay(prog.env, { inputs: writeInputs(), outDir: out });
  return { res, prog };
}

interface Decoded {
  ip?: {
    src: string;
    dst: string;
    proto: number;
    tcp?: { sport: number; dport: number; flags: string };
    icmp?: { type: number };
  };
}

function decode(files: string[]): Record<string, Decoded[]> {
  const r = spawnSync(PY, [path.join(ROOT, 'test', 'replay', 'decode_pcap.py'), ...files], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`decode_pcap.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, Decoded[]>;
}

describe('replay with network policy', () => {
  const outA = path.join(dir, 'a');
  const outB = path.join(dir, 'b');
  const { res, prog } = run(outA);

  it('counts verdicts per reason and per endpoint and cause', () => {
    const c = Object.fromEntries(res.counters.map((r) => [`${r.node}: ${r.reason}`, r.value]));
    expect(c['ip4-policy: new-flow']).toBe(4);
    expect(c['ip4-policy: denied']).toBe(4);
    expect(c['ip4-policy: invalid']).toBe(1);
    expect(c['ip4-policy: log']).toBe(2);
    expect(c['ip4-policy: shop/db ingress denied by end of tier default']).toBe(1);
    expect(c['ip4-policy: shop/db ingress denied by GlobalNetworkPolicy security/data-not-to-db']).toBe(1);
    expect(c['ip4-policy: shop/api ingress denied by end of tier default']).toBe(1);
    expect(c['ip4-policy: shop/web ingress denied by profile kns.shop']).toBe(1);
    const log = prog.policy!.drainLog().lines;
    expect(log.map((l) => `${l.endpoint} ${l.src}:${l.sport} -> ${l.dst}:${l.dport}`)).toEqual([
      `shop/api ingress ${WEB.ip}:44000 -> ${API.ip}:8080`,
      `shop/api ingress ${REMOTE.ip}:45000 -> ${API.ip}:8080`,
    ]);
  });

  it.skipIf(!haveScapy)('delivers exactly the allowed flows and their replies (decoded by scapy)', () => {
    const ports = [API.port, DB.port, WEB.port, 'uplink'];
    const d = decode(ports.map((p) => path.join(outA, `${p}.pcap`)));
    const show = (p: string) =>
      d[path.join(outA, `${p}.pcap`)].map((f) => {
        const ip = f.ip!;
        const l4 = ip.tcp
          ? `tcp ${ip.tcp.sport}->${ip.tcp.dport} ${ip.tcp.flags}`
          : ip.icmp
            ? `icmp ${ip.icmp.type}`
            : `proto ${ip.proto}`;
        return `${ip.src} -> ${ip.dst} ${l4}`;
      });
    expect(show(DB.port)).toEqual([
      `${API.ip} -> ${DB.ip} tcp 41000->5432 S`,
      `${API.ip} -> ${DB.ip} tcp 41000->5432 A`,
    ]);
    expect(show(API.port)).toEqual([
      `${DB.ip} -> ${API.ip} tcp 5432->41000 SA`,
      `${WEB.ip} -> ${API.ip} tcp 44000->8080 S`,
      `${OUTSIDE} -> ${API.ip} icmp 0`,
    ]);
    expect(show(WEB.port)).toEqual([`${OUTSIDE} -> ${WEB.ip} tcp 46000->80 S`]);
    expect(show('uplink')).toEqual([`${API.ip} -> ${OUTSIDE} icmp 8`]);
  });

  it('replays byte-identically', () => {
    run(outB);
    for (const p of [API.port, DB.port, WEB.port, 'uplink'])
      expect(
        fs.readFileSync(path.join(outB, `${p}.pcap`)).equals(fs.readFileSync(path.join(outA, `${p}.pcap`))),
      ).toBe(true);
  });
});
