// The reference the live benchmark compares calitap with: the same cluster shape, but the Linux kernel
// does Calico's data path, exactly the way Felix and the Calico CNI plugin program it:
//   - each host is a network namespace with net.ipv4.ip_forward=1, uplink `up0` on a bridge namespace
//     (<p>sw, br0) like the calitap lab (h1 10.0.0.1, h2 10.0.0.2);
//   - each workload is a namespace joined to its host by a veth: host side `cali<hex>` with MAC
//     ee:ee:ee:ee:ee:ee, proxy_arp=1, neigh proxy_delay=0 and a `/32 dev cali<hex>` route; workload side
//     `eth0` with the /32, `169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1`;
//   - cross-host traffic is routed directly (Calico ipipMode/vxlanMode `Never`): host k routes the other
//     host's /26 block via that host's IP on up0. This machine's kernel has no ipip/vxlan modules, so
//     the kernel reference cannot encapsulate.
// Setup-time only (spawns `ip`/`sysctl`); everything it creates carries its prefix and is removed by
// destroy(). Pool 10.65.0.0/16, host k owns 10.65.0.(k-1)*64/26 (the calitap lab's layout).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { nsExec, setFeature } from '../src/lab/lab.js';
import { Namespaces } from '../src/lab/netns.js';

export interface KernelWorkload {
  ns: string;
  ip: string;
  name: string;
  /** host-side veth */
  cali: string;
}

function sh(cmd: string, args: string[], allowFail = false): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (allowFail) return '';
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** `ip` with these arguments; its stdout (throws with its stderr). */
export const ip = (...args: string[]): string => sh('ip', args);
const sysctl = (ns: string, ...kv: string[]): string =>
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...kv]);

/**
 * The live labs' underlay: a switch namespace `<prefix>sw` with bridge br0, and hosts `<prefix>h1..`
 * each with uplink `up0` (10.0.0.k/24) on it. `each(h, sw, k)` runs for host k once its up0 is up.
 * Returns the host namespaces in order. The namespaces belong to `namespaces` (gone with destroy()).
 */
export function buildUnderlay(
  namespaces: Namespaces,
  prefix: string,
  hosts: number,
  each?: (h: string, sw: string, k: number) => void,
): string[] {
  const sw = namespaces.add('sw');
  ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', sw, 'link', 'set', 'br0', 'up');
  const out: string[] = [];
  for (let k = 1; k <= hosts; k++) {
    const h = namespaces.add(`h${k}`);
    out.push(h);
    ip('link', 'add', `${prefix}u${k}`, 'netns', h, 'type', 'veth', 'peer', 'name', `s${k}`, 'netns', sw);
    ip('-n', h, 'link', 'set', `${prefix}u${k}`, 'name', 'up0');
    ip('-n', sw, 'link', 'set', `s${k}`, 'master', 'br0', 'up');
    ip('-n', h, 'link', 'set', 'up0', 'up');
    ip('-n', h, 'addr', 'add', `10.0.0.${k}/24`, 'dev', 'up0');
    each?.(h, sw, k);
  }
  return out;
}

export class KernelLab {
  readonly hostNs: string[] = [];
  private readonly namespaces: Namespaces;
  private workloads = 0;
  private readonly perHost = new Map<number, number>();

  private constructor(
    readonly prefix: string,
    readonly hosts: number,
    /**
     * MTU-sized frames on the underlay: TSO off on every host's up0, so a forwarded 64 KiB TCP
     * super-frame is cut into MTU-sized segments by the kernel's software GSO on its way out (in the
     * sending thread, as calitap's tunnel segmentation is), and GRO on each receiving up0 (with the
     * switch side's TSO off and a 200 µs flush timeout, as Lab's uplinkGro), which coalesces them
     * again before the workload's veth. The kernel's own figure for an underlay that carries no
     * super-frames: what IPIP/VXLAN from userspace faces on this lab, where nothing can express an
     * IPIP super-frame to AF_PACKET.
     */
    readonly mtuUnderlay = false,
  ) {
    this.namespaces = new Namespaces(prefix);
  }

  /** Builds `hosts` (1..2) host namespaces on a bridge; cleans up what it made if it fails. */
  static create(prefix: string, hosts = 2, mtuUnderlay = false): KernelLab {
    const lab = new KernelLab(prefix, hosts, mtuUnderlay);
    try {
      lab.build();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  private ns(name: string): string {
    return this.namespaces.add(name);
  }

  private build(): void {
    buildUnderlay(this.namespaces, this.prefix, this.hosts, (h, sw, k) => {
      this.hostNs.push(h);
      if (this.mtuUnderlay) {
        setFeature(h, 'up0', 'tso', false);
        setFeature(h, 'up0', 'gro', true);
        nsExec(h, ['sh', '-c', 'echo 200000 > /sys/class/net/up0/gro_flush_timeout']);
        setFeature(sw, `s${k}`, 'tso', false);
      }
      // as in the calitap lab (no router here: nothing is sent there). Proxy ARP needs it too: the host
      // answers a workload's ARP for 169.254.1.1 only when it has a route to that address.
      ip('-n', h, 'route', 'add', 'default', 'via', '10.0.0.254', 'dev', 'up0');
      sysctl(
        h,
        'net.ipv4.ip_forward=1',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
      );
    });
    // Calico "Never": the remote block is routed straight to the remote node over the underlay
    for (let k = 1; k <= this.hosts; k++) {
      for (let j = 1; j <= this.hosts; j++) {
        if (j === k) continue;
        ip(
          '-n',
          this.hostNs[k - 1],
          'route',
          'add',
          `10.65.0.${(j - 1) * 64}/26`,
          'via',
          `10.0.0.${j}`,
          'dev',
          'up0',
        );
      }
    }
  }

  /** A workload on host k, attached the way the Calico CNI plugin does it (veth + proxy ARP). */
  addWorkload(k: number): KernelWorkload {
    const h = this.hostNs[k - 1];
    const name = `w${++this.workloads}`;
    const nth = (this.perHost.get(k) ?? 0) + 1;
    this.perHost.set(k, nth);
    const addr = `10.65.0.${(k - 1) * 64 + nth}`;
    const ns = this.ns(`h${k}${name}`);
    const cali = 'cali' + createHash('sha1').update(`${ns}.${name}`).digest('hex').slice(0, 11);
    const tmp = `${this.prefix}t${this.workloads}`;
    ip('link', 'add', cali, 'netns', h, 'type', 'veth', 'peer', 'name', tmp, 'netns', ns);
    ip('-n', ns, 'link', 'set', tmp, 'name', 'eth0');
    ip('-n', h, 'link', 'set', cali, 'address', 'ee:ee:ee:ee:ee:ee');
    sysctl(
      h,
      `net.ipv4.conf.${cali}.proxy_arp=1`,
      `net.ipv4.neigh.${cali}.proxy_delay=0`,
      `net.ipv4.conf.${cali}.forwarding=1`,
      `net.ipv4.conf.${cali}.rp_filter=0`,
    );
    ip('-n', h, 'link', 'set', cali, 'up');
    ip('-n', h, 'route', 'add', `${addr}/32`, 'dev', cali, 'scope', 'link');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'addr', 'add', `${addr}/32`, 'dev', 'eth0');
    ip('-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    ip('-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    return { ns, ip: addr, name, cali };
  }

  /** Removes every namespace it created (their veths go with them). Safe to call twice. */
  destroy(): void {
    this.namespaces.destroy();
  }
}
