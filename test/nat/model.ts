// A naive reference model of the SNAT table: plain JS Maps keyed by strings, the same documented rules
// (expiry by class, lazy reclaim on collision, seeded random start + bounded linear probing over the
// allowed ports, nat ip by inside-address hash, the TCP flag rules). Tests only.
import {
  NAT_DEFAULT_TIMEOUTS,
  NAT_FULL,
  NAT_NO_PORT,
  natIpIndex,
  natPrngOutput,
  natPrngStep,
  type NatTimeouts,
} from '../../src/dataplane/tables/nat/table.js';

export interface ModelFlow {
  proto: number;
  insideIp: number;
  insidePort: number;
  remoteIp: number;
  remotePort: number;
  natIp: number;
  natPort: number;
  last: number;
  // TCP / reply tracking as plain booleans (independent of the table's bit encoding)
  synIn: boolean;
  synOut: boolean;
  established: boolean;
  finIn: boolean;
  finOut: boolean;
  rst: boolean;
  reply: boolean;
}

export interface ModelOptions {
  capacity: number;
  natIps: number[];
  portLo: number;
  portHi: number;
  reservedPorts?: number[];
  timeouts?: Partial<NatTimeouts>;
  seed?: number;
  maxPortProbes?: number;
}

const inKey = (p: number, s: number, sp: number, d: number, dp: number): string =>
  `${p}|${s}|${sp}|${d}|${dp}`;
const outKey = (p: number, r: number, rp: number, n: number, np: number): string =>
  `${p}|${r}|${rp}|${n}|${np}`;

export class NatModel {
  readonly byIn = new Map<string, ModelFlow>();
  readonly byOut = new Map<string, ModelFlow>();
  readonly ports: number[];
  readonly timeouts: NatTimeouts;
  prng: number;
  counters = { full: 0, noPort: 0, created: 0, expired: 0 };

  constructor(readonly opts: ModelOptions) {
    const reserved = opts.reservedPorts ?? [4789];
    this.ports = [];
    for (let p = opts.portLo; p <= opts.portHi; p++) if (!reserved.includes(p)) this.ports.push(p);
    this.timeouts = { ...NAT_DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.prng = (opts.seed ?? 0) | 0;
  }

  get size(): number {
    return this.byIn.size;
  }

  timeoutOf(f: ModelFlow): number {
    const t = this.timeouts;
    if (f.proto === 6) {
      if (f.rst) return t.tcpClose;
      if (f.finIn && f.finOut) return t.tcpTimeWait;
      if (f.finIn || f.finOut) return t.tcpTransitory;
      if (f.established) return t.tcpEstablished;
      return t.tcpSynSent;
    }
    if (f.proto === 17) return f.reply ? t.udpStream : t.udp;
    if (f.proto === 1) return t.icmp;
    return t.other;
  }

  expired(f: ModelFlow, now: number): boolean {
    return now - f.last > this.timeoutOf(f);
  }

  private drop(f: ModelFlow): void {
    this.byIn.delete(inKey(f.proto, f.insideIp, f.insidePort, f.remoteIp, f.remotePort));
    this.byOut.delete(outKey(f.proto, f.remoteIp, f.remotePort, f.natIp, f.natPort));
  }

  private touch(f: ModelFlow, now: number): void {
    if (now > f.last) f.last = now;
  }

  lookupOut(p: number, s: number, sp: number, d: number, dp: number, now: number): ModelFlow | null {
    const f = this.byIn.get(inKey(p, s, sp, d, dp));
    if (!f || this.expired(f, now)) return null;
    this.touch(f, now);
    return f;
  }

  lookupIn(p: number, r: number, rp: number, n: number, np: number, now: number): ModelFlow | null {
    const f = this.byOut.get(outKey(p, r, rp, n, np));
    if (!f || this.expired(f, now)) return null;
    this.touch(f, now);
    f.reply = true;
    return f;
  }

  createOut(p: number, s: number, sp: number, d: number, dp: number, now: number): ModelFlow | number {
    const old = this.byIn.get(inKey(p, s, sp, d, dp));
    if (old) {
      if (!this.expired(old, now)) {
        this.touch(old, now);
        return old;
      }
      this.drop(old);
      this.counters.expired++;
    }
    if (this.byIn.size >= this.opts.capacity) {
      this.counters.full++;
      return NAT_FULL;
    }
    const ips = this.opts.natIps;
    const first = natIpIndex(s, ips.length);
    const probes = Math.min(this.ports.length, this.opts.maxPortProbes ?? 128);
    for (let t = 0; t < ips.length; t++) {
      const natIp = ips[(first + t) % ips.length] >>> 0;
      this.prng = natPrngStep(this.prng);
      const start = natPrngOutput(this.prng) % this.ports.length;
      for (let k = 0; k < probes; k++) {
        const natPort = this.ports[(start + k) % this.ports.length];
        const occ = this.byOut.get(outKey(p, d, dp, natIp, natPort));
        if (occ) {
          if (!this.expired(occ, now)) continue;
          this.drop(occ);
          this.counters.expired++;
        }
        const f: ModelFlow = {
          proto: p,
          insideIp: s,
          insidePort: sp,
          remoteIp: d,
          remotePort: dp,
          natIp,
          natPort,
          last: now,
          synIn: false,
          synOut: false,
          established: false,
          finIn: false,
          finOut: false,
          rst: false,
          reply: false,
        };
        this.byIn.set(inKey(p, s, sp, d, dp), f);
        this.byOut.set(outKey(p, d, dp, natIp, natPort), f);
        this.counters.created++;
        return f;
      }
    }
    this.counters.noPort++;
    return NAT_NO_PORT;
  }

  tcpUpdate(f: ModelFlow, flags: number, fromInside: boolean, now: number): void {
    this.touch(f, now);
    const fin = (flags & 1) !== 0;
    const syn = (flags & 2) !== 0;
    const rst = (flags & 4) !== 0;
    const ack = (flags & 16) !== 0;
    if (rst) {
      f.rst = true;
      return;
    }
    if (syn && !ack && fromInside && (f.rst || f.finIn || f.finOut)) {
      f.synIn = f.synOut = f.established = f.finIn = f.finOut = f.rst = f.reply = false;
    }
    if (syn) {
      if (fromInside) f.synIn = true;
      else f.synOut = true;
    }
    if (fin) {
      if (fromInside) f.finIn = true;
      else f.finOut = true;
    }
    if (!fromInside) f.reply = true;
    if (!f.established && ack && !syn) {
      if ((f.synIn && f.synOut) || (!f.synIn && !f.synOut && f.reply)) f.established = true;
    }
  }

  expireAll(now: number): number {
    let n = 0;
    for (const f of [...this.byIn.values()]) {
      if (this.expired(f, now)) {
        this.drop(f);
        n++;
      }
    }
    this.counters.expired += n;
    return n;
  }
}
