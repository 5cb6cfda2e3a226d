// Config builders and CLI helpers for the real daemons the interop tests and the bench run:
// BIRD 2 (bird/birdc), GoBGP 3 (gobgpd/gobgp) and FRR 8 (bgpd/vtysh). The configs are the ones
// documented in docs/bgp.md.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Lab } from './netns.js';
import { waitUntil as waitFor } from './rawpeer.js';

export interface BirdPeer {
  name: string;
  ip: string;
  asn: number;
  /** extra lines inside the protocol block */
  extra?: string;
}

export function birdConf(o: {
  routerId: string;
  localAs: number;
  peers: BirdPeer[];
  statics?: string[];
  /** raw extra top-level config (e.g. a generated static protocol) */
  extra?: string;
  holdTime?: number;
}): string {
  const statics = o.statics?.length
    ? `protocol static blocks {\n  ipv4;\n${o.statics.map((s) => `  route ${s} blackhole;`).join('\n')}\n}\n`
    : '';
  return `log stderr all;
router id ${o.routerId};
graceful restart wait 5;
protocol device { }
protocol direct { ipv4; }
${statics}${o.extra ?? ''}
template bgp calitap {
  local as ${o.localAs};
  direct;
  hold time ${o.holdTime ?? 9};
  keepalive time ${Math.max(1, Math.floor((o.holdTime ?? 9) / 3))};
  connect retry time 1;
  connect delay time 1;
  error wait time 1, 2;
  graceful restart on;
  graceful restart time 120;
  ipv4 {
    import all;
    export where source = RTS_STATIC;
    next hop self;
    gateway direct;
  };
}
${o.peers
  .map(
    (p) => `protocol bgp ${p.name} from calitap {
  neighbor ${p.ip} as ${p.asn};
  source address ${o.routerId};
${p.extra ?? ''}
}`,
  )
  .join('\n')}
`;
}

export class Bird {
  child: ChildProcess | null = null;
  readonly sock: string;
  readonly conf: string;
  constructor(
    private readonly lab: Lab,
    readonly name: string,
    config: string,
  ) {
    this.sock = path.join(lab.dir, `${name}.ctl`);
    this.conf = lab.writeFile(`${name}.conf`, config);
  }
  start(recovery = false): void {
    const args = ['-f', '-c', this.conf, '-s', this.sock, '-P', path.join(this.lab.dir, `${this.name}.pid`)];
    if (recovery) args.push('-R');
    this.child = this.lab.spawn(this.name, 'bird', args);
  }
  cli(cmd: string): string {
    return this.lab.exec('birdc', ['-s', this.sock, ...cmd.split(' ')]);
  }
  async ready(): Promise<void> {
    await waitFor(
      () => {
        try {
          return this.cli('show status').includes('Daemon is up');
        } catch {
          return false;
        }
      },
      10_000,
      `${this.name} control socket`,
    );
  }
  /** "up"/"start" and the info column of `show protocols` for one protocol */
  protocol(name: string): { state: string; info: string } {
    const line = this.cli(`show protocols ${name}`)
      .split('\n')
      .find((l) => l.startsWith(name + ' '));
    if (!line) return { state: '', info: '' };
    const cols = line.trim().split(/\s+/);
    return { state: cols[3] ?? '', info: cols.slice(5).join(' ') };
  }
  /** prefix → BGP.next_hop for routes learned from protocol `proto` */
  routesFrom(proto: string): Record<string, string> {
    const out: Record<string, string> = {};
    let cur = '';
    for (const line of this.cli(`show route protocol ${proto} all`).split('\n')) {
      const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)\s/.exec(line);
      if (m) cur = m[1];
      const nh = /BGP\.next_hop: (\S+)/.exec(line);
      if (nh && cur) out[cur] = nh[1];
    }
    return out;
  }
  /** number of routes from a protocol, via `show route count` */
  count(proto: string): number {
    const m = /(\d+) of \d+ routes/.exec(this.cli(`show route protocol ${proto} count`));
    return m ? Number(m[1]) : 0;
  }
}

export function gobgpConf(o: {
  routerId: string;
  localAs: number;
  clients: string[];
  clusterId?: string;
}): string {
  return `[global.config]
  as = ${o.localAs}
  router-id = "${o.routerId}"
  local-address-list = ["${o.routerId}"]
${o.clients
  .map(
    (ip) => `
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${ip}"
    peer-as = ${o.localAs}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.transport.config]
    local-address = "${o.routerId}"
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "${o.clusterId ?? o.routerId}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`,
  )
  .join('')}`;
}

export function frrConf(o: {
  routerId: string;
  localAs: number;
  peer: string;
  peerAs: number;
  networks: string[];
}): string {
  return `frr defaults traditional
hostname ctfrr
log stdout informational
!
router bgp ${o.localAs}
 bgp router-id ${o.routerId}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${o.peer} remote-as ${o.peerAs}
 neighbor ${o.peer} timers 3 9
 neighbor ${o.peer} timers connect 1
 !
 address-family ipv4 unicast
${o.networks.map((n) => `  network ${n}`).join('\n')}
  neighbor ${o.peer} activate
 exit-address-family
!
line vty
!
`;
}
