// The node's IPv4 address and subnet for Node spec.bgp.ipv4Address, the way calico-node finds it:
// `--ip` / IP (with or without a prefix length; "autodetect" means detect), else
// IP_AUTODETECTION_METHOD: first-found (default; skips Calico's default interface exclusions),
// can-reach=DEST (the source address the kernel would use), interface=REGEX, skip-interface=REGEX,
// cidr=CIDR[,CIDR...]. Reads the kernel's addresses with `ip -j`; control thread, at start-up.
import { execFileSync } from 'node:child_process';
import { formatIp4, parseIp4, parsePrefix4, prefixContains } from '../../common/addr.js';
import { ConfigError } from '../../common/errors.js';

export interface HostAddr {
  ifname: string;
  ip: number;
  len: number;
}

/** calico-node's default exclusions for first-found (autodetection/filtered.go DEFAULT_INTERFACES_TO_EXCLUDE). */
const EXCLUDED = [
  /^docker.*/,
  /^cbr.*/,
  /^dummy.*/,
  /^virbr.*/,
  /^lxcbr.*/,
  /^veth.*/,
  /^lo$/,
  /^cali.*/,
  /^tunl.*/,
  /^flannel.*/,
  /^kube-ipvs.*/,
  /^cni.*/,
  /^vxlan.calico.*/,
  /^wireguard.cali.*/,
  /^br-.*/,
];

export function hostAddrs(): HostAddr[] {
  const j = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' })) as {
    ifname: string;
    addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
  }[];
  const out: HostAddr[] = [];
  for (const l of j)
    for (const a of l.addr_info ?? []) {
      const ip = parseIp4(a.local);
      if (a.family === 'inet' && ip !== null && (a.scope === undefined || a.scope === 'global'))
        out.push({ ifname: l.ifname, ip, len: a.prefixlen });
    }
  return out;
}

const fmt = (a: HostAddr) => `${formatIp4(a.ip)}/${a.len}`;

/** "a.b.c.d/len" for the node, or a one-line ConfigError naming the setting. */
export function detectNodeIp(
  ipSetting: string | undefined,
  method: string | undefined,
  addrsIn?: HostAddr[],
  routeSrc: (dest: string) => string | undefined = kernelRouteSrc,
): string {
  if (ipSetting !== undefined && ipSetting !== '' && ipSetting !== 'autodetect') {
    const p = parsePrefix4(ipSetting.includes('/') ? ipSetting : `${ipSetting}/32`, false);
    if (p === null) throw new ConfigError(`--ip ${ipSetting}: not an IPv4 address (or address/len)`);
    if (ipSetting.includes('/')) return `${formatIp4(p.host)}/${p.len}`;
    const addrs = addrsIn ?? hostAddrs();
    const own = addrs.find((a) => a.ip === p.host);
    return own ? fmt(own) : `${formatIp4(p.host)}/32`;
  }
  const addrs = addrsIn ?? hostAddrs();
  const m = (method ?? 'first-found').trim();
  const where = `IP_AUTODETECTION_METHOD ${m}`;
  let pick: HostAddr | undefined;
  if (m === 'first-found' || m === '') pick = addrs.find((a) => !EXCLUDED.some((r) => r.test(a.ifname)));
  else if (m.startsWith('can-reach=')) {
    const src = routeSrc(m.slice(10));
    const ip = src === undefined ? null : parseIp4(src);
    pick = ip === null ? undefined : addrs.find((a) => a.ip === ip);
  } else if (m.startsWith('interface=')) {
    const re = new RegExp(m.slice(10));
    pick = addrs.find((a) => re.test(a.ifname));
  } else if (m.startsWith('skip-interface=')) {
    const re = new RegExp(m.slice(15));
    pick = addrs.find((a) => !re.test(a.ifname) && !EXCLUDED.some((r) => r.test(a.ifname)));
  } else if (m.startsWith('cidr=')) {
    const nets = m
      .slice(5)
      .split(',')
      .map((c) => parsePrefix4(c.trim(), false));
    if (nets.some((n) => n === null)) throw new ConfigError(`${where}: not a list of IPv4 CIDRs`);
    pick = addrs.find((a) => nets.some((n) => prefixContains({ addr: n!.addr, len: n!.len }, a.ip)));
  } else
    throw new ConfigError(
      `${where}: unknown method (first-found, can-reach=DEST, interface=REGEX, skip-interface=REGEX, cidr=CIDR)`,
    );
  if (pick === undefined) throw new ConfigError(`${where}: no IPv4 address of this host matches`);
  return fmt(pick);
}

function kernelRouteSrc(dest: string): string | undefined {
  try {
    const j = JSON.parse(execFileSync('ip', ['-j', 'route', 'get', dest], { encoding: 'utf8' })) as {
      prefsrc?: string;
    }[];
    return j[0]?.prefsrc;
  } catch {
    return undefined;
  }
}
