// Replays the sample captures (pcaps/demo-*.pcap) against pcaps/sample-config.yaml as node-a and
// compares every port's output byte for byte with the committed pcaps/expected/demo/<port>.pcap.
// The committed files are then checked independently of calitap: decoded with scapy (checksums
// recomputed by scapy, MACs, TTLs, what each frame is) and with tshark's checksum validation.
// Regenerate the expected files after an intended behaviour change: see pcaps/expected/README.md.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { replay, type ReplayInput, type ReplayResult } from '../../src/dataplane/replay.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PCAPS = path.join(ROOT, 'pcaps');
const EXPECTED = path.join(PCAPS, 'expected', 'demo');
const CONFIG = path.join(PCAPS, 'sample-config.yaml');
const W1 = 'cali1a2b3c4d5e6';
const W2 = 'cali0123456789a';
const W3 = 'cali9f8e7d6c5b4';
const PORTS = ['uplink', W1, W2, W3];
const INPUTS: ReplayInput[] = [
  { port: W1, path: path.join(PCAPS, 'demo-workload.pcap') },
  { port: 'uplink', path: path.join(PCAPS, 'demo-uplink.pcap') },
];
const PY = '/usr/bin/python3';

function run(inputs: ReplayInput[] = INPUTS): ReplayResult {
  // a fresh Programmer per run, as the CLI does: the NAT and neighbour tables start empty
  const prog = new Programmer(loadConfigFile(CONFIG), 'node-a', { natSeed: 0 });
  return replay(prog.env, { inputs, outDir: null });
}

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

const haveScapy = has(PY, ['-c', 'import scapy.all']);
const haveTshark = has('tshark', ['-v']);
const haveEditcap = has('editcap', ['-h']);

/** Explains a skipped tool check in the test output (vitest prints skipped test names). */
const why = (ok: boolean, tool: string) => (ok ? '' : ` [SKIPPED: ${tool} not installed]`);

function toHex(u8: Uint8Array): string {
  return Buffer.from(u8).toString('hex');
}

describe('replay of the sample captures (node-a)', () => {
  const res = run();

  it('replays every input frame and writes one pcap per port', () => {
    expect(res.frames).toBe(17);
    expect([...res.outputs.keys()].sort()).toEqual([...PORTS].sort());
    expect(res.ports.map((p) => [p.port, p.rxPackets])).toEqual([
      ['uplink', 5],
      [W1, 12],
      [W2, 0],
      [W3, 0],
    ]);
  });

  for (const port of PORTS) {
    it(`${port}.pcap matches pcaps/expected/demo/${port}.pcap byte for byte`, () => {
      const want = fs.readFileSync(path.join(EXPECTED, `${port}.pcap`));
      const got = res.outputs.get(port)!;
      expect(got.length).toBe(want.length);
      expect(toHex(got)).toBe(toHex(want));
    });
  }

  it('tx counters agree with the frames written', () => {
    for (const p of res.ports) {
      const want = fs.readFileSync(path.join(EXPECTED, `${p.port}.pcap`));
      let frames = 0;
      let bytes = 0;
      for (let o = 24; o < want.length;) {
        const len = want.readUInt32LE(o + 8);
        frames++;
        bytes += len;
        o += 16 + len;
      }
      expect([p.port, p.txPackets, p.txBytes]).toEqual([p.port, frames, bytes]);
    }
  });

  it('is deterministic: a second run gives byte-identical outputs and the same counters', () => {
    const again = run();
    for (const port of PORTS) expect(toHex(again.outputs.get(port)!)).toBe(toHex(res.outputs.get(port)!));
    expect(again.counters).toEqual(res.counters);
    expect(again.ports).toEqual(res.ports);
  });

  it(`pcapng input gives the same outputs as pcap input${why(haveEditcap, 'editcap')}`, (ctx) => {
    if (!haveEditcap) ctx.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-ng-'));
    try {
      const ng = INPUTS.map((inp) => {
        const out = path.join(dir, path.basename(inp.path) + 'ng');
        const r = spawnSync('editcap', ['-F', 'pcapng', inp.path, out], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(fs.readFileSync(out).readUInt32LE(0)).toBe(0x0a0d0d0a);
        return { port: inp.port, path: out };
      });
      const fromNg = run(ng);
      expect(fromNg.frames).toBe(res.frames);
      for (const port of PORTS) expect(toHex(fromNg.outputs.get(port)!)).toBe(toHex(res.outputs.get(port)!));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ independent checks of the files

interface IpInfo {
  src: string;
  dst: string;
  ttl: number;
  proto: number;
  id: number;
  tos: number;
  flags: number;
  len: number;
  ipChecksumOk: boolean;
  icmp?: {
    type: number;
    code: number;
    mtu?: number;
    quote?: { src: string; dst: string; ttl: number; id: number };
  };
  icmpChecksumOk?: boolean;
  tcp?: { sport: number; dport: number; flags: string };
  tcpChecksumOk?: boolean;
  udp?: { sport: number; dport: number; chksum: number };
  udpChecksumOk?: boolean;
}
interface FrameInfo {
  len: number;
  src: string;
  dst: string;
  type: number;
  arp?: { op: number; hwsrc: string; psrc: string; hwdst: string; pdst: string };
  ip?: IpInfo;
  vxlan?: { vni: number; flags: number };
  inner?: { src?: string; dst?: string; ip?: IpInfo };
}

function decode(files: string[]): Record<string, FrameInfo[]> {
  const r = spawnSync(PY, [path.join(ROOT, 'test', 'replay', 'decode_pcap.py'), ...files], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`decode_pcap.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, FrameInfo[]>;
}

const EE = 'ee:ee:ee:ee:ee:ee';
const UPLINK_MAC = '52:54:00:00:00:0a';
const NODE_B_MAC = '52:54:00:00:00:0b';
const GW_MAC = '52:54:00:00:00:fe';
const WORKLOAD_MAC: Record<string, string> = {
  [W1]: '0a:58:0a:41:00:02',
  [W2]: '0a:58:0a:41:00:03',
  [W3]: '0a:58:0a:42:00:02',
};

/** Every checksum scapy could verify in an IP packet (and, for tunnels, in the inner packet). */
function expectChecksums(ip: IpInfo | undefined, what: string): void {
  expect(ip, what).toBeDefined();
  expect(ip!.ipChecksumOk, `${what}: IP checksum`).toBe(true);
  if (ip!.icmp) expect(ip!.icmpChecksumOk, `${what}: ICMP checksum`).toBe(true);
  if (ip!.tcp) expect(ip!.tcpChecksumOk, `${what}: TCP checksum`).toBe(true);
  if (ip!.udp) expect(ip!.udpChecksumOk, `${what}: UDP checksum`).toBe(true);
}

describe(`pcaps/expected/demo verified with scapy${why(haveScapy, 'python3-scapy')}`, () => {
  const files = PORTS.map((p) => path.join(EXPECTED, `${p}.pcap`));
  const dec = haveScapy ? decode(files) : {};
  const of = (port: string) => dec[path.join(EXPECTED, `${port}.pcap`)];

  it.skipIf(!haveScapy)('link layer: workload ports from ee to the workload MAC; uplink from our MAC', () => {
    for (const port of [W1, W2, W3]) {
      for (const fr of of(port)) {
        expect(fr.src).toBe(EE);
        expect(fr.dst).toBe(WORKLOAD_MAC[port]);
      }
    }
    for (const fr of of('uplink')) {
      expect(fr.src).toBe(UPLINK_MAC);
      expect([NODE_B_MAC, GW_MAC]).toContain(fr.dst);
    }
  });

  it.skipIf(!haveScapy)('every IP, ICMP, UDP and TCP checksum verifies (outer and inner)', () => {
    for (const port of PORTS) {
      of(port).forEach((fr, k) => {
        if (fr.ip) expectChecksums(fr.ip, `${port} frame ${k + 1}`);
        if (fr.inner?.ip) expectChecksums(fr.inner.ip, `${port} frame ${k + 1} inner`);
      });
    }
  });

  it.skipIf(!haveScapy)(`${W1}: ARP reply, the echo reply from node-b, time exceeded`, () => {
    const [a, echo, te] = of(W1);
    expect(of(W1)).toHaveLength(3);
    expect(a.arp).toEqual({
      op: 2,
      hwsrc: EE,
      psrc: '169.254.1.1',
      hwdst: WORKLOAD_MAC[W1],
      pdst: '10.65.0.2',
    });
    expect(a.len).toBe(42);
    expect(echo.ip).toMatchObject({
      src: '10.65.0.70',
      dst: '10.65.0.2',
      ttl: 62,
      id: 100,
      icmp: { type: 0 },
    });
    // make-samples.py: ttl=1 UDP 10.65.0.2 -> 10.65.0.70 id 6; the error comes from node-a's IP
    expect(te.ip).toMatchObject({
      src: '10.0.0.1',
      dst: '10.65.0.2',
      ttl: 64,
      id: 0,
      tos: 0xc0,
      icmp: { type: 11, code: 0, quote: { src: '10.65.0.2', dst: '10.65.0.70', ttl: 1, id: 6 } },
    });
  });

  it.skipIf(!haveScapy)(`${W2}: the ping from the local workload, TTL 63`, () => {
    expect(of(W2)).toHaveLength(1);
    expect(of(W2)[0].ip).toMatchObject({
      src: '10.65.0.2',
      dst: '10.65.0.3',
      ttl: 63,
      id: 1,
      icmp: { type: 8 },
    });
    expect(of(W3)).toEqual([]);
  });

  it.skipIf(!haveScapy)(
    'uplink: direct to node-b, VXLAN to node-c via the router, SNATed SYN to the gateway',
    () => {
      const up = of('uplink');
      expect(up).toHaveLength(3);
      const [direct, vx, syn] = up;
      expect(direct.dst).toBe(NODE_B_MAC);
      expect(direct.ip).toMatchObject({
        src: '10.65.0.2',
        dst: '10.65.0.70',
        ttl: 63,
        id: 2,
        icmp: { type: 8 },
      });
      // node-c (10.1.0.3) is in another subnet: the outer frame goes to the router's MAC
      expect(vx.dst).toBe(GW_MAC);
      expect(vx.ip).toMatchObject({
        src: '10.0.0.1',
        dst: '10.1.0.3',
        proto: 17,
        udp: { dport: 4789, chksum: 0 },
      });
      expect(vx.vxlan).toEqual({ vni: 4096, flags: 8 });
      // Felix's default VTEP MACs: 0x66 + sha1(node name)[0:5]
      expect(vx.inner).toMatchObject({ src: '66:07:02:c1:cc:60', dst: '66:1a:b9:f1:6e:af' });
      expect(vx.inner!.ip).toMatchObject({ src: '10.65.0.2', dst: '10.66.0.130', ttl: 63, id: 4 });
      expect(vx.ip!.len).toBe(50 + 50);
      // pool-ipip has natOutgoing and 192.0.2.10 is in no pool: SNAT to the node IP
      expect(syn.dst).toBe(GW_MAC);
      expect(syn.ip).toMatchObject({
        src: '10.0.0.1',
        dst: '192.0.2.10',
        ttl: 63,
        id: 9,
        tcp: { dport: 80, flags: 'S' },
      });
    },
  );

  it.skipIf(!haveScapy)('the checker itself catches a bad checksum', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-bad-'));
    try {
      const src = fs.readFileSync(path.join(EXPECTED, `${W2}.pcap`));
      const bad = Buffer.from(src);
      bad[24 + 16 + 14 + 10] ^= 0x01; // IP header checksum of the first frame
      bad[24 + 16 + 34 + 2] ^= 0x01; // ICMP checksum
      const f = path.join(dir, 'bad.pcap');
      fs.writeFileSync(f, bad);
      const ip = decode([f])[f][0].ip!;
      expect(ip.ipChecksumOk).toBe(false);
      expect(ip.icmpChecksumOk).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(`pcaps/expected/demo verified with tshark${why(haveTshark, 'tshark')}`, () => {
  it.skipIf(!haveTshark)('tshark validates every IP, UDP, TCP and ICMP checksum as good', () => {
    for (const port of PORTS) {
      const r = spawnSync(
        'tshark',
        [
          '-r',
          path.join(EXPECTED, `${port}.pcap`),
          '-o',
          'ip.check_checksum:TRUE',
          '-o',
          'udp.check_checksum:TRUE',
          '-o',
          'tcp.check_checksum:TRUE',
          '-T',
          'fields',
          '-e',
          'ip.checksum.status',
          '-e',
          'udp.checksum.status',
          '-e',
          'tcp.checksum.status',
          '-e',
          'icmp.checksum.status',
        ],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      // status: 0 bad, 1 good, 2 unverified, 3 not present (a zero UDP checksum, e.g. VXLAN's outer)
      for (const line of r.stdout.split('\n').filter((l) => l.length > 0)) {
        const [ipS, udpS, tcpS, icmpS] = line.split('\t');
        const all = (s: string, ok: string[]) =>
          s
            .split(',')
            .filter((v) => v !== '')
            .every((v) => ok.includes(v));
        expect(all(ipS, ['1']), `${port}: ip ${line}`).toBe(true);
        expect(all(udpS, ['1', '3']), `${port}: udp ${line}`).toBe(true);
        expect(all(tcpS, ['1']), `${port}: tcp ${line}`).toBe(true);
        expect(all(icmpS, ['1']), `${port}: icmp ${line}`).toBe(true);
      }
    }
  });
});
