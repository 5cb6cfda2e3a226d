// Helpers for the end-to-end tests over a namespace lab (src/lab/lab.ts): background processes
// tracked by pid (and only those are ever signalled), polling instead of sleeping, ping/nc/tcpdump
// wrappers that run inside one lab namespace, a classic-pcap reader to decode what tcpdump saw, and
// the daemon's counters as a map. All traffic stays inside the lab's namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { nsExec, sh, type Lab } from '../../src/lab/lab.js';

export { isRoot } from '../../src/lab/lab.js';

/** The system python, which has scapy (the pyenv python3 on PATH does not). */
export const PY = '/usr/bin/python3';

/** A short prefix unique to this file and process: `tag` (2 letters) + pid % 1000 (≤ 5 chars). */
export function prefix(tag: string): string {
  return `${tag}${process.pid % 1000}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value (returned) or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 5000,
  stepMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(stepMs);
  }
}

/** A process started in a namespace; signalled only through its own pid. */
export class Bg {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private done = false;

  constructor(
    readonly ns: string,
    readonly args: string[],
    input?: string | Buffer,
  ) {
    // `ip netns exec` execs the command: the pid is the command's own
    this.child = spawn('ip', ['netns', 'exec', ns, ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('latin1');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.on('data', (d: string) => (this.stderr += d));
    if (input !== undefined) {
      this.child.stdin!.on('error', () => {});
      this.child.stdin!.end(input);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.code = code;
        this.signal = signal;
        this.done = true;
        running.delete(this);
        resolve();
      });
    });
    running.add(this);
  }

  get running(): boolean {
    return !this.done;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.done || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** Waits for the process to exit; kills it (SIGKILL) and throws if it takes longer than `ms`. */
  async wait(ms: number): Promise<this> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
    const r = await Promise.race([this.exited.then(() => 'ok' as const), timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.kill('SIGKILL');
      await this.exited;
      throw new Error(
        `${this.args.join(' ')} (in ${this.ns}) did not finish within ${ms} ms\nstdout: ${this.stdout.slice(-500)}\nstderr: ${this.stderr.slice(-500)}`,
      );
    }
    return this;
  }

  /** Stops the process with `signal` and waits (bounded) for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 3000): Promise<this> {
    this.kill(signal);
    return this.wait(ms).catch(() => this);
  }
}

const running = new Set<Bg>();

export function bg(ns: string, args: string[], input?: string | Buffer): Bg {
  return new Bg(ns, args, input);
}

/** SIGKILLs every process these helpers started that is still running (afterAll). */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited));
}

/** Runs a command in a namespace to completion (bounded), capturing stdout/stderr/exit code. */
export async function run(ns: string, args: string[], ms = 10_000, input?: string | Buffer): Promise<Bg> {
  return bg(ns, args, input).wait(ms);
}

export interface PingResult {
  sent: number;
  received: number;
  out: string;
}

/** ping from inside `ns`; never throws on loss. */
export async function ping(
  ns: string,
  dst: string,
  o: {
    count?: number;
    interval?: number;
    wait?: number;
    size?: number;
    df?: boolean;
    /** ping -M: overrides `df` */
    pmtudisc?: 'do' | 'dont' | 'want';
    src?: string;
  } = {},
): Promise<PingResult> {
  const count = o.count ?? 3;
  const args = [
    'ping',
    '-n',
    '-c',
    String(count),
    '-i',
    String(o.interval ?? 0.2),
    '-W',
    String(o.wait ?? 1),
  ];
  if (o.size !== undefined) args.push('-s', String(o.size));
  if (o.pmtudisc !== undefined) args.push('-M', o.pmtudisc);
  else if (o.df) args.push('-M', 'do');
  if (o.src !== undefined) args.push('-I', o.src);
  args.push(dst);
  const p = await run(ns, args, count * ((o.interval ?? 0.2) * 1000) + (o.wait ?? 1) * 1000 + 5000);
  return parsePing(p.stdout + p.stderr);
}

export function parsePing(out: string): PingResult {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  return { sent: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, out };
}

/** Polls with single pings until one is answered (the path is up). */
export async function waitPing(ns: string, dst: string, timeoutMs = 5000): Promise<void> {
  await waitFor(
    `ping ${dst} from ${ns}`,
    async () => (await ping(ns, dst, { count: 1, wait: 0.3 })).received === 1,
    timeoutMs,
    0,
  );
}

/** Waits until something listens on `port` (tcp or udp) inside `ns`. */
export async function waitListening(ns: string, proto: 'tcp' | 'udp', port: number): Promise<void> {
  await waitFor(`${proto} port ${port} listening in ${ns}`, () =>
    nsExec(ns, ['ss', '-Hln', proto === 'tcp' ? '-t' : '-u'])
      .split('\n')
      .some((l) => l.includes(`:${port} `)),
  );
}

/** The daemon's per-node, per-reason counters as `node: reason` → count. */
export async function counters(lab: Lab, k: number): Promise<Map<string, number>> {
  const s = (await lab.api(k, 'stats')) as { counters: { node: string; reason: string; count: number }[] };
  return new Map(s.counters.map((c) => [`${c.node}: ${c.reason}`, c.count]));
}

/** Counter deltas between two snapshots (only the ones that changed). */
export function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) d[k] = v - (before.get(k) ?? 0);
  return d;
}

export interface RouteRow {
  prefix: string;
  nextHop: string | null;
  via: string;
  port: string | null;
  source: string;
}

export async function routes(lab: Lab, k: number): Promise<RouteRow[]> {
  return (await lab.api(k, 'routes')) as RouteRow[];
}

export function routeFor(rows: RouteRow[], prefix: string): RouteRow | undefined {
  return rows.find((r) => r.prefix === prefix);
}

/** The MAC of `ifname` in `ns`. */
export function macOf(ns: string, ifname: string): string {
  const j = JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', ifname])) as { address: string }[];
  return j[0].address;
}

/** Runs a python (scapy) script inside `ns`; the script's stdout is returned. */
export async function python(ns: string, script: string, ms = 30_000): Promise<string> {
  const p = await run(ns, [PY, '-c', script], ms);
  if (p.code !== 0) throw new Error(`python in ${ns} failed (${p.code}): ${p.stderr.slice(-1500)}`);
  return p.stdout;
}

// ---- tcpdump and pcap ----

/** Starts tcpdump on `iface` in `ns` writing `file`; resolves once it is capturing. */
export async function startCapture(
  ns: string,
  iface: string,
  file: string,
  filter: string[] = [],
): Promise<Bg> {
  const t = bg(ns, [
    'tcpdump',
    '-i',
    iface,
    '-n',
    '--immediate-mode',
    '-U',
    '-s',
    '256',
    '-w',
    file,
    ...filter,
  ]);
  await waitFor(`tcpdump on ${iface} in ${ns}`, () => {
    if (!t.running) throw new Error(`tcpdump exited: ${t.stderr}`);
    return t.stderr.includes('listening on');
  });
  return t;
}

export interface Ip4Packet {
  src: string;
  dst: string;
  proto: number;
  /** for IPIP (proto 4) and VXLAN (UDP 4789): the encapsulated IPv4 packet */
  inner?: Ip4Packet;
  udpDst?: number;
}

function ipStr(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** Decodes an IPv4 header at `o` (and one level of IPIP/VXLAN), or null. */
export function decodeIp4(b: Buffer, o: number, depth = 0): Ip4Packet | null {
  if (o + 20 > b.length || b[o] >> 4 !== 4) return null;
  const hl = (b[o] & 15) * 4;
  const p: Ip4Packet = { src: ipStr(b, o + 12), dst: ipStr(b, o + 16), proto: b[o + 9] };
  if (depth > 0) return p;
  if (p.proto === 4) p.inner = decodeIp4(b, o + hl, 1) ?? undefined;
  if (p.proto === 17 && o + hl + 8 <= b.length) {
    p.udpDst = b.readUInt16BE(o + hl + 2);
    // VXLAN: UDP 8 + VXLAN 8 + inner Ethernet 14
    const e = o + hl + 16;
    if (p.udpDst === 4789 && e + 14 <= b.length && b.readUInt16BE(e + 12) === 0x0800)
      p.inner = decodeIp4(b, e + 14, 1) ?? undefined;
  }
  return p;
}

/** Reads a classic pcap (Ethernet) file and decodes its IPv4 frames. */
export function readPcapIp4(file: string): Ip4Packet[] {
  const b = fs.readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const out: Ip4Packet[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const incl = u32(o + 8);
    const f = b.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    if (f.length >= 14 && f.readUInt16BE(12) === 0x0800) {
      const p = decodeIp4(f, 14);
      if (p) out.push(p);
    }
  }
  return out;
}

// ---- nc ----

/**
 * One TCP exchange with openbsd nc: a server in `serverNs` listening on `port` that sends `fromServer`,
 * a client in `clientNs` that sends `fromClient`. Returns what each side received and the server's
 * stderr (`nc -v` prints the peer's address there).
 */
export async function tcpExchange(
  serverNs: string,
  clientNs: string,
  serverIp: string,
  port: number,
  fromClient: string,
  fromServer: string,
): Promise<{ serverGot: string; clientGot: string; serverLog: string }> {
  const srv = bg(serverNs, ['nc', '-v', '-n', '-N', '-l', String(port)], fromServer);
  try {
    await waitListening(serverNs, 'tcp', port);
    const cli = await run(
      clientNs,
      ['nc', '-n', '-N', '-w', '5', serverIp, String(port)],
      10_000,
      fromClient,
    );
    await srv.wait(5000);
    return { serverGot: srv.stdout, clientGot: cli.stdout, serverLog: srv.stderr };
  } finally {
    await srv.stop('SIGKILL');
  }
}

/** One UDP datagram flow: returns what a server in `serverNs` on `port` received from a client. */
export async function udpSend(
  serverNs: string,
  clientNs: string,
  serverIp: string,
  port: number,
  msg: string,
): Promise<string> {
  const srv = bg(serverNs, ['nc', '-u', '-n', '-l', String(port)]);
  try {
    await waitListening(serverNs, 'udp', port);
    // a few sends (each its own datagram) in case one is lost; stop as soon as one arrived
    for (let i = 0; i < 5 && !srv.stdout.includes(msg); i++) {
      await run(clientNs, ['nc', '-u', '-n', '-w', '1', '-q', '0', serverIp, String(port)], 5000, msg + '\n');
      await waitFor('datagram', () => srv.stdout.includes(msg), 500).catch(() => undefined);
    }
    return srv.stdout;
  } finally {
    await srv.stop('SIGKILL');
  }
}

/**
 * Turns off TX checksum offload on `ifname` in `ns` (ethtool's legacy ETHTOOL_STXCSUM ioctl; ethtool
 * itself is not installed), so the kernel sends complete TCP/UDP checksums instead of
 * CHECKSUM_PARTIAL ones. Needed where a namespace's own TCP traffic reaches calitap's AF_PACKET
 * uplink through veths: calitap does not complete partial checksums (see the report in nat.test.ts).
 */
export async function disableTxChecksum(ns: string, ifname: string): Promise<void> {
  await python(
    ns,
    [
      'import socket, fcntl, struct, ctypes',
      'ev = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))',
      `ifr = struct.pack("16sP", b"${ifname}", ctypes.addressof(ev)) + bytes(16)`,
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      'fcntl.ioctl(s.fileno(), 0x8946, ifr)',
    ].join('\n'),
  );
}

/**
 * Polls a capture file (tcpdump -U writes each packet as it comes) until `enough` holds for what it
 * decoded, then returns it. tcpdump stopped right after the traffic may exit before it wrote the last
 * packets it had in its ring, so tests wait for what they expect before stopping the capture.
 */
export async function captured(
  file: string,
  enough: (pkts: Ip4Packet[]) => boolean,
  timeoutMs = 3000,
): Promise<Ip4Packet[]> {
  let pkts: Ip4Packet[] = [];
  await waitFor(
    `packets in ${file}`,
    () => {
      pkts = fs.existsSync(file) ? readPcapIp4(file) : [];
      return enough(pkts);
    },
    timeoutMs,
  ).catch(() => undefined);
  return pkts;
}

// Both ends of `tcpTransfer`: send stdin while receiving, half-close after sending, read to EOF,
// then print "<bytes received> <sha256 of them>". Unlike `nc -N`, neither side stops sending when the
// other's data ends, so both directions complete whatever their relative speed.
const TRANSFER_PY = `
import hashlib, socket, sys, threading
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = sys.stdin.buffer.read()
if mode == 'server':
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(1); print('ready', flush=True)
    c, peer = ls.accept(); print('peer', peer[0], flush=True)
else:
    c = socket.create_connection((host, port), timeout=10)
def send():
    c.sendall(data); c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
t.join(); print('got', n, h.hexdigest(), flush=True)
`;

export interface TransferResult {
  /** what the server received: byte count and sha256 */
  serverGot: { bytes: number; sha256: string };
  clientGot: { bytes: number; sha256: string };
  /** the client address the server saw */
  serverSawPeer: string;
}

function parseGot(out: string): { bytes: number; sha256: string } {
  const m = /got (\d+) ([0-9a-f]{64})/.exec(out);
  return m ? { bytes: Number(m[1]), sha256: m[2] } : { bytes: -1, sha256: '' };
}

/** A TCP connection that carries `up` to the server and `down` to the client at the same time. */
export async function tcpTransfer(
  serverNs: string,
  clientNs: string,
  serverIp: string,
  port: number,
  up: string | Buffer,
  down: string | Buffer,
): Promise<TransferResult> {
  const srv = bg(serverNs, [PY, '-c', TRANSFER_PY, 'server', '0.0.0.0', String(port)], down);
  try {
    await waitFor('transfer server ready', () => srv.stdout.includes('ready'), 5000);
    const cli = await run(clientNs, [PY, '-c', TRANSFER_PY, 'client', serverIp, String(port)], 30_000, up);
    await srv.wait(10_000);
    return {
      serverGot: parseGot(srv.stdout),
      clientGot: parseGot(cli.stdout),
      serverSawPeer: /peer (\S+)/.exec(srv.stdout)?.[1] ?? '',
    };
  } finally {
    await srv.stop('SIGKILL');
  }
}
