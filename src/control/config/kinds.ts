// Per-kind conversion of raw resources into the typed model (types.ts), with Calico's field names,
// defaults and validation rules (projectcalico/calico api/pkg/apis/projectcalico/v3 and libcalico-go's
// v3 validator). Each function checks one resource on its own; checks across resources are in
// cross-check.ts. Control thread, during a load; no state.
import { createHash } from 'node:crypto';
import { formatPrefix4, parseIp4, parsePrefix4, prefixesOverlap, type Prefix4 } from '../../common/addr.js';
import {
  BGP_DEFAULTS,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_UPLINK_MTU,
  type BgpConfig,
  type BgpPeer,
  type BlockAffinity,
  type BlockAffinityState,
  type CalicoNode,
  type FelixConfig,
  type IPPool,
  type Uplink,
  type UplinkNeighbor,
  type WorkloadEndpoint,
} from './types.js';
import type { RawResource } from './documents.js';
import {
  AFFINITY_STATES,
  asNumber,
  cidrValue,
  encapMode,
  fail,
  ifaceName,
  ip4,
  isIp6,
  isObj,
  LINK_LOCAL,
  MAX_PORT,
  mac,
  mapping,
  optBool,
  optInt,
  optString,
  own,
  reqString,
  typeName,
  type Obj,
  type Where,
} from './fields.js';

/** The IPv4 MTU bounds we accept: RFC 791's 576-byte minimum datagram up to the 16-bit total length. */
export const MIN_UPLINK_MTU = 576;
/** RFC 791: every IPv4 link must carry 68 bytes unfragmented; the smallest tunnel MTU we accept. */
export const MIN_TUNNEL_MTU = 68;
export const MAX_MTU = 65535;
/** Calico's IPPool blockSize bounds for IPv4 (validateIPPoolSpec). */
const MIN_BLOCK_SIZE = 20;
const MAX_BLOCK_SIZE = 32;
/** RFC 7348 §5: the VNI is 24 bits. */
const MAX_VNI = 0xffffff;

/**
 * Felix's default VXLAN tunnel MAC for a node without `spec.vxlanTunnelMACAddr`: the byte 'f' (0x66, a
 * locally administered unicast address) followed by the first 5 bytes of SHA-1 over the node name.
 * Source: projectcalico/calico felix/calc/vxlan_resolver.go, VXLANResolver.vtepMACForHost
 * (`append([]byte("f"), sha[0:5]...)`); Felix's own test vector: "remotehostname2" → 66:40:18:59:1f:16
 * (felix/calc/states_for_test.go).
 */
export function vtepMacForNode(nodeName: string): string {
  const sha = createHash('sha1').update(nodeName, 'utf8').digest();
  const bytes = [0x66, sha[0], sha[1], sha[2], sha[3], sha[4]];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export type Ignore = (r: RawResource, reason: string) => void;

export function toPool(r: RawResource, ignore: Ignore): IPPool | undefined {
  const { where: w, spec } = r;
  const cidrText = reqString(w, spec, 'cidr', 'spec.cidr');
  if (isIp6(cidrText)) {
    ignore(r, 'IPv6 pool (calitap routes IPv4 only)');
    return undefined;
  }
  const cidr = cidrValue(w, 'spec.cidr', cidrText);
  const disabled = optBool(w, spec, 'disabled', 'spec.disabled', false);
  const blockSize =
    optInt(w, spec, 'blockSize', 'spec.blockSize', MIN_BLOCK_SIZE, MAX_BLOCK_SIZE) ?? DEFAULT_BLOCK_SIZE;
  // Calico checks the minimum size only for enabled pools (validateIPPoolSpec: `if !pool.Disabled`).
  if (!disabled && cidr.len > blockSize)
    fail(
      w,
      'spec.blockSize',
      blockSize,
      `a /${blockSize} block is larger than the pool ${formatPrefix4(cidr)} (must be at least ${cidr.len})`,
    );
  if (prefixesOverlap(cidr, LINK_LOCAL))
    fail(w, 'spec.cidr', cidrText, 'overlaps the IPv4 link-local range 169.254.0.0/16');
  const ipipMode = encapMode(w, spec, 'ipipMode', 'spec.ipipMode');
  const vxlanMode = encapMode(w, spec, 'vxlanMode', 'spec.vxlanMode');
  if (ipipMode !== 'Never' && vxlanMode !== 'Never')
    fail(w, 'spec.vxlanMode', vxlanMode, `cannot be enabled together with ipipMode ${ipipMode}`);
  return {
    name: r.name,
    cidr,
    blockSize,
    ipipMode,
    vxlanMode,
    natOutgoing: optBool(w, spec, 'natOutgoing', 'spec.natOutgoing', false),
    disabled,
    disableBGPExport: optBool(w, spec, 'disableBGPExport', 'spec.disableBGPExport', false),
  };
}

export function toNode(r: RawResource): CalicoNode {
  const { where: w, spec } = r;
  const bgp = mapping(w, spec, 'bgp', 'spec.bgp');
  const node: CalicoNode = { name: r.name, vxlanTunnelMac: '' };
  const addr = optString(w, bgp, 'ipv4Address', 'spec.bgp.ipv4Address');
  if (addr !== undefined) {
    // Calico parses this with ParseCIDROrIP: "10.0.0.1/24" (address and subnet) or a bare address (/32).
    const p = addr.includes('/') ? parsePrefix4(addr, false) : null;
    const bare = addr.includes('/') ? null : parseIp4(addr);
    if (p) node.bgpAddress = { ip: p.host, len: p.len };
    else if (bare !== null) node.bgpAddress = { ip: bare, len: 32 };
    else fail(w, 'spec.bgp.ipv4Address', addr, 'must be an IPv4 address with prefix length like 10.0.0.1/24');
  }
  node.ipipTunnelAddr = ip4(w, bgp, 'ipv4IPIPTunnelAddr', 'spec.bgp.ipv4IPIPTunnelAddr', false);
  node.asNumber = asNumber(w, bgp, 'asNumber', 'spec.bgp.asNumber', false);
  node.routeReflectorClusterID = ip4(
    w,
    bgp,
    'routeReflectorClusterID',
    'spec.bgp.routeReflectorClusterID',
    false,
  );
  node.vxlanTunnelAddr = ip4(w, spec, 'ipv4VXLANTunnelAddr', 'spec.ipv4VXLANTunnelAddr', false);
  node.vxlanTunnelMac =
    mac(w, spec, 'vxlanTunnelMACAddr', 'spec.vxlanTunnelMACAddr', false) ?? vtepMacForNode(r.name);
  for (const k of Object.keys(node) as (keyof CalicoNode)[]) if (node[k] === undefined) delete node[k];
  return node;
}

export function toAffinity(r: RawResource, ignore: Ignore): BlockAffinity | undefined {
  const { where: w, spec } = r;
  const node = reqString(w, spec, 'node', 'spec.node');
  const cidrText = reqString(w, spec, 'cidr', 'spec.cidr');
  if (isIp6(cidrText)) {
    ignore(r, 'IPv6 block (calitap routes IPv4 only)');
    return undefined;
  }
  const cidr = cidrValue(w, 'spec.cidr', cidrText);
  const stateText = optString(w, spec, 'state', 'spec.state') ?? 'confirmed';
  if (!(AFFINITY_STATES as readonly string[]).includes(stateText))
    fail(w, 'spec.state', stateText, `must be one of ${AFFINITY_STATES.join(', ')}`);
  // Calico stores `deleted` as the string "true"/"false"; accept a boolean too.
  const del = own(spec, 'deleted');
  if (
    del !== undefined &&
    del !== null &&
    del !== '' &&
    ![true, false, 'true', 'false'].includes(del as string)
  )
    fail(w, 'spec.deleted', del, 'must be true or false');
  return {
    name: r.name,
    node,
    cidr,
    state: stateText as BlockAffinityState,
    deleted: del === true || del === 'true',
  };
}

export function toEndpoint(r: RawResource): WorkloadEndpoint {
  const { where: w, spec } = r;
  const node = reqString(w, spec, 'node', 'spec.node');
  const interfaceName = ifaceName(w, spec, 'interfaceName', 'spec.interfaceName');
  const nets = own(spec, 'ipNetworks');
  const ipNetworks: Prefix4[] = [];
  if (nets !== undefined && nets !== null) {
    if (!Array.isArray(nets)) fail(w, 'spec.ipNetworks', nets, `must be a list, got ${typeName(nets)}`);
    nets.forEach((n, i) => {
      const path = `spec.ipNetworks[${i}]`;
      if (typeof n !== 'string') fail(w, path, n, `must be a string, got ${typeName(n)}`);
      if (isIp6(n)) return; // dual-stack endpoints: the IPv6 side is not ours
      if (n.includes('/')) ipNetworks.push(cidrValue(w, path, n));
      else {
        const ip = parseIp4(n);
        if (ip === null) fail(w, path, n, 'must be an IPv4 address or CIDR like 10.65.0.24/32');
        ipNetworks.push({ addr: ip, len: 32 });
      }
    });
  }
  const m = mac(w, spec, 'mac', 'spec.mac', true) as string;
  return { name: r.name, namespace: r.namespace ?? 'default', node, interfaceName, ipNetworks, mac: m };
}

/** Calico's numorstring.Port for natPortRange: a single port (number or digits) or "lo:hi". */
function portRange(w: Where, spec: Obj): [number, number] | undefined {
  const path = 'spec.natPortRange';
  const v = own(spec, 'natPortRange');
  if (v === undefined || v === null || v === '') return undefined;
  let lo: number | undefined;
  let hi: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) lo = hi = v;
  else if (typeof v === 'string') {
    const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(v);
    if (m) {
      lo = Number(m[1]);
      hi = m[2] === undefined ? lo : Number(m[2]);
    }
  }
  if (lo === undefined || hi === undefined)
    fail(w, path, v, 'must be a port or a range "lo:hi" (Calico\'s form, e.g. 32768:65535)');
  if (lo < 1 || hi > MAX_PORT || hi < 1 || lo > MAX_PORT)
    fail(w, path, v, `ports must be between 1 and ${MAX_PORT}`);
  if (lo > hi) fail(w, path, v, `range start ${lo} is greater than its end ${hi}`);
  return [lo, hi];
}

export function toFelix(r: RawResource): Partial<FelixConfig> {
  const { where: w, spec } = r;
  const f: Partial<FelixConfig> = {};
  const nat = ip4(w, spec, 'natOutgoingAddress', 'spec.natOutgoingAddress', false);
  if (nat !== undefined) f.natOutgoingAddress = nat;
  const range = portRange(w, spec);
  if (range) f.natPortRange = range;
  // Felix itself does not range-check the VNI; VXLAN's VNI is 24 bits (RFC 7348 §5) and 0 is refused.
  const vni = optInt(w, spec, 'vxlanVNI', 'spec.vxlanVNI', 1, MAX_VNI);
  if (vni !== undefined) f.vxlanVNI = vni;
  const port = optInt(w, spec, 'vxlanPort', 'spec.vxlanPort', 1, MAX_PORT);
  if (port !== undefined) f.vxlanPort = port;
  for (const key of ['ipipMTU', 'vxlanMTU'] as const) {
    // 0 is Felix's "auto-detect" (uplink MTU minus overhead), like leaving the field unset.
    const mtu = optInt(w, spec, key, `spec.${key}`, 0, MAX_MTU);
    if (mtu !== undefined && mtu !== 0 && mtu < MIN_TUNNEL_MTU)
      fail(w, `spec.${key}`, mtu, `must be 0 (auto) or between ${MIN_TUNNEL_MTU} and ${MAX_MTU}`);
    if (mtu) f[key] = mtu;
  }
  // libcalico-go's validator: dropAcceptReturn, exactly these spellings
  const toHost = optString(w, spec, 'defaultEndpointToHostAction', 'spec.defaultEndpointToHostAction');
  if (toHost !== undefined) {
    if (toHost !== 'Drop' && toHost !== 'Accept' && toHost !== 'Return')
      fail(w, 'spec.defaultEndpointToHostAction', toHost, 'must be Drop, Accept or Return');
    f.defaultEndpointToHostAction = toHost;
  }
  return f;
}

export function toBgpConfig(r: RawResource): BgpConfig {
  const { where: w, spec } = r;
  return {
    asNumber: asNumber(w, spec, 'asNumber', 'spec.asNumber', false) ?? BGP_DEFAULTS.asNumber,
    nodeToNodeMeshEnabled: optBool(
      w,
      spec,
      'nodeToNodeMeshEnabled',
      'spec.nodeToNodeMeshEnabled',
      BGP_DEFAULTS.nodeToNodeMeshEnabled,
    ),
    listenPort: optInt(w, spec, 'listenPort', 'spec.listenPort', 1, MAX_PORT) ?? BGP_DEFAULTS.listenPort,
  };
}

export function toPeer(r: RawResource, ignore: Ignore): BgpPeer | undefined {
  const { where: w, spec } = r;
  const text = reqString(w, spec, 'peerIP', 'spec.peerIP');
  if (isIp6(text) || /^\[.*\]:\d+$/.test(text)) {
    ignore(r, 'IPv6 peer (calitap speaks BGP over IPv4 only)');
    return undefined;
  }
  // Calico allows "ip" or "ip:port".
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  const ip = m ? parseIp4(m[1]) : null;
  if (!m || ip === null) fail(w, 'spec.peerIP', text, 'must be an IPv4 address, optionally with ":port"');
  const peer: BgpPeer = {
    name: r.name,
    peerIP: ip,
    asNumber: asNumber(w, spec, 'asNumber', 'spec.asNumber', true) as number,
  };
  if (m[2] !== undefined) {
    const port = Number(m[2]);
    if (port < 1 || port > MAX_PORT) fail(w, 'spec.peerIP', text, `port must be between 1 and ${MAX_PORT}`);
    peer.peerPort = port;
  }
  const node = optString(w, spec, 'node', 'spec.node');
  const sel = optString(w, spec, 'nodeSelector', 'spec.nodeSelector');
  if (node !== undefined && sel !== undefined)
    fail(w, 'spec.nodeSelector', sel, 'cannot be set together with spec.node');
  if (sel !== undefined && sel.trim() !== 'all()')
    fail(
      w,
      'spec.nodeSelector',
      sel,
      'unsupported selector: calitap only understands all() (or no selector)',
    );
  if (node !== undefined) peer.node = node;
  if (sel !== undefined) peer.nodeSelector = sel;
  return peer;
}

export function toUplink(r: RawResource): Uplink {
  const { where: w, spec } = r;
  const up: Uplink = {
    node: r.name,
    interfaceName: ifaceName(w, spec, 'interfaceName', 'spec.interfaceName'),
    mtu: optInt(w, spec, 'mtu', 'spec.mtu', MIN_UPLINK_MTU, MAX_MTU) ?? DEFAULT_UPLINK_MTU,
    neighbors: [],
  };
  const m = mac(w, spec, 'mac', 'spec.mac', false);
  if (m !== undefined) up.mac = m;
  const gw = ip4(w, spec, 'gateway', 'spec.gateway', false);
  if (gw !== undefined) up.gateway = gw;
  const nbrs = own(spec, 'neighbors');
  if (nbrs !== undefined && nbrs !== null) {
    if (!Array.isArray(nbrs)) fail(w, 'spec.neighbors', nbrs, `must be a list, got ${typeName(nbrs)}`);
    const seen = new Set<number>();
    nbrs.forEach((n, i) => {
      const path = `spec.neighbors[${i}]`;
      if (!isObj(n)) fail(w, path, n, `must be a mapping with ip and mac, got ${typeName(n)}`);
      const nb: UplinkNeighbor = {
        ip: ip4(w, n, 'ip', `${path}.ip`, true) as number,
        mac: mac(w, n, 'mac', `${path}.mac`, true) as string,
      };
      if (seen.has(nb.ip)) fail(w, `${path}.ip`, own(n, 'ip'), 'listed twice');
      seen.add(nb.ip);
      up.neighbors.push(nb);
    });
  }
  return up;
}
