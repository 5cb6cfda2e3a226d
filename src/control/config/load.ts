// Config loading: Calico v3 resources (plus our `calitap/v1 Uplink`) from multi-document YAML into the
// typed ClusterConfig model (types.ts). Runs once on the main (control) thread at start-up or reload; it
// owns nothing after it returns. Every problem stops loading with one ConfigError whose message is a
// single line: `<file>: <Kind> <name>: <field path> <value>: <reason>`. Field names and defaults follow
// Calico's API (projectcalico/calico api/pkg/apis/projectcalico/v3 and libcalico-go's v3 validator).
// Unknown fields are ignored; unknown kinds are recorded in `ignored` (the CLI lists them).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import {
  formatIp4,
  formatPrefix4,
  normalizeMac,
  parseIp4,
  parsePrefix4,
  prefixCovers,
  prefixesOverlap,
  type Prefix4,
} from '../../common/addr.js';
import { ConfigError } from '../../common/errors.js';
import {
  BGP_DEFAULTS,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_UPLINK_MTU,
  FELIX_DEFAULTS,
  type BgpConfig,
  type BgpPeer,
  type BlockAffinity,
  type BlockAffinityState,
  type CalicoNode,
  type ClusterConfig,
  type EncapMode,
  type FelixConfig,
  type IgnoredResource,
  type IPPool,
  type Uplink,
  type UplinkNeighbor,
  type WorkloadEndpoint,
} from './types.js';
import { endpointPolicyFields, isPolicyKind, policyKindNamespaced, PolicyLoader } from './policy-load.js';

export const CALICO_API_VERSION = 'projectcalico.org/v3';
export const CALITAP_API_VERSION = 'calitap/v1';

const CALICO_KINDS = new Set([
  'IPPool',
  'Node',
  'BlockAffinity',
  'WorkloadEndpoint',
  'FelixConfiguration',
  'BGPConfiguration',
  'BGPPeer',
]);

/** Kubernetes/Calico resource names: lower-case alphanumerics, '-' and '.', at most 253 characters. */
const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
/** Linux interface names as Felix accepts them (felix/config InterfaceRegex): 1..15 characters. */
const IFACE_RE = /^[a-zA-Z0-9_.-]{1,15}$/;
const ENCAP_MODES: readonly EncapMode[] = ['Always', 'CrossSubnet', 'Never'];
const AFFINITY_STATES: readonly BlockAffinityState[] = ['confirmed', 'pending', 'pendingDeletion'];
const LINK_LOCAL: Prefix4 = { addr: 0xa9fe0000, len: 16 }; // 169.254.0.0/16

/** The IPv4 MTU bounds we accept: RFC 791's 576-byte minimum datagram up to the 16-bit total length. */
export const MIN_UPLINK_MTU = 576;
/** RFC 791: every IPv4 link must carry 68 bytes unfragmented; the smallest tunnel MTU we accept. */
export const MIN_TUNNEL_MTU = 68;
export const MAX_MTU = 65535;

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

export function loadConfigFile(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`${path}: cannot read config file: ${e.code ?? e.message}`);
  }
  return loadConfigText(text, path);
}

// ---------------------------------------------------------------------------------------------------
// Error reporting

type Obj = Record<string, unknown>;

interface Where {
  file: string;
  /** "IPPool pool-a", or "IPPool at line 3" / "document 2 at line 7" before the name is known */
  what: string;
}

/** One-line rendering of a value for an error message. */
function fmtValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') {
    s = v !== '' && /^[\x21-\x7e]+$/.test(v) ? v : JSON.stringify(v);
  } else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
    s = String(v);
  } else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = Array.isArray(v) ? '[...]' : '{...}';
    }
  }
  s = s.replace(/[\r\n]+/g, ' ');
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

const NO_VALUE = Symbol('no value');

function fail(w: Where, path: string, value: unknown, reason: string): never {
  const v = value === NO_VALUE || value === undefined ? '' : ' ' + fmtValue(value);
  throw new ConfigError(`${w.file}: ${w.what}: ${path}${v}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------------
// Typed field readers (all take the parent object, the key and the dotted path for messages)

function own(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : typeof v;
}

/** A sub-mapping; absent or null gives an empty object. */
function mapping(w: Where, o: Obj, key: string, path: string): Obj {
  const v = own(o, key);
  if (v === undefined || v === null) return {};
  if (!isObj(v)) fail(w, path, v, `must be a mapping, got ${typeName(v)}`);
  return v;
}

function optString(w: Where, o: Obj, key: string, path: string): string | undefined {
  const v = own(o, key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') fail(w, path, v, `must be a string, got ${typeName(v)}`);
  return v;
}

function reqString(w: Where, o: Obj, key: string, path: string): string {
  const s = optString(w, o, key, path);
  if (s === undefined) fail(w, path, NO_VALUE, 'required');
  return s;
}

function optBool(w: Where, o: Obj, key: string, path: string, dflt: boolean): boolean {
  const v = own(o, key);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') fail(w, path, v, 'must be true or false');
  return v;
}

function optInt(w: Where, o: Obj, key: string, path: string, lo: number, hi: number): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(w, path, v, 'must be an integer');
  if (v < lo || v > hi) fail(w, path, v, `must be between ${lo} and ${hi}`);
  return v;
}

function isIp6(text: string): boolean {
  return ipaddr.IPv6.isValid(text.split('/')[0]) && text.includes(':');
}

function ip4(w: Where, o: Obj, key: string, path: string, required: boolean): number | undefined {
  const s = required ? reqString(w, o, key, path) : optString(w, o, key, path);
  if (s === undefined) return undefined;
  const ip = parseIp4(s);
  if (ip === null) fail(w, path, s, 'must be an IPv4 address like 10.0.0.1');
  return ip;
}

function mac(w: Where, o: Obj, key: string, path: string, required: boolean): string | undefined {
  const s = required ? reqString(w, o, key, path) : optString(w, o, key, path);
  if (s === undefined) return undefined;
  const m = normalizeMac(s);
  if (m === null) fail(w, path, s, 'must be a MAC address like 52:54:00:12:34:56');
  return m;
}

/** A strict IPv4 CIDR (host bits clear). */
function cidrValue(w: Where, path: string, s: string): Prefix4 {
  const p = parsePrefix4(s, true);
  if (p) return { addr: p.addr, len: p.len };
  const loose = parsePrefix4(s, false);
  if (loose) fail(w, path, s, `host bits set (the network is ${formatPrefix4(loose)})`);
  fail(w, path, s, 'must be an IPv4 CIDR like 10.65.0.0/16');
}

function ifaceName(w: Where, o: Obj, key: string, path: string): string {
  const s = reqString(w, o, key, path);
  if (!IFACE_RE.test(s)) fail(w, path, s, 'must be 1-15 characters of letters, digits, "_", "." or "-"');
  return s;
}

/**
 * BGP AS number as Calico's numorstring.ASNumber accepts it: an integer, a decimal string, or the
 * "asdot" form "<high>.<low>". Valid 1..4294967295.
 */
function asNumber(w: Where, o: Obj, key: string, path: string, required: boolean): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null || v === '') {
    if (required) fail(w, path, NO_VALUE, 'required');
    return undefined;
  }
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const dot = /^(\d{1,5})\.(\d{1,5})$/.exec(v);
    if (/^\d{1,10}$/.test(v)) n = Number(v);
    else if (dot && Number(dot[1]) <= 65535 && Number(dot[2]) <= 65535)
      n = Number(dot[1]) * 65536 + Number(dot[2]);
  }
  if (n === undefined || !Number.isInteger(n) || n < 1 || n > 4294967295)
    fail(w, path, v, 'must be an AS number between 1 and 4294967295');
  return n;
}

function encapMode(w: Where, o: Obj, key: string, path: string): EncapMode {
  const s = optString(w, o, key, path);
  if (s === undefined) return 'Never';
  if (!(ENCAP_MODES as readonly string[]).includes(s))
    fail(w, path, s, `must be one of ${ENCAP_MODES.join(', ')}`);
  return s as EncapMode;
}

// ---------------------------------------------------------------------------------------------------
// Documents → raw resources

interface RawResource {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  meta: Obj;
  spec: Obj;
  where: Where;
}

function lineOf(lc: LineCounter, offset: number | undefined): number {
  return offset === undefined ? 1 : lc.linePos(offset).line;
}

function rawResource(
  file: string,
  value: unknown,
  label: string,
  line: number,
  defaults: { apiVersion?: string; kind?: string },
): RawResource {
  const at: Where = { file, what: `${label} at line ${line}` };
  if (!isObj(value)) fail(at, 'document', NO_VALUE, `must be a mapping (a resource), got ${typeName(value)}`);
  const apiVersion = optString(at, value, 'apiVersion', 'apiVersion') ?? defaults.apiVersion;
  if (apiVersion === undefined) fail(at, 'apiVersion', NO_VALUE, 'required');
  const kind = optString(at, value, 'kind', 'kind') ?? defaults.kind;
  if (kind === undefined) fail(at, 'kind', NO_VALUE, 'required');
  const kindAt: Where = { file, what: `${kind} at line ${line}` };
  const meta = mapping(kindAt, value, 'metadata', 'metadata');
  const name = reqString(kindAt, meta, 'name', 'metadata.name');
  const namespace = optString(kindAt, meta, 'namespace', 'metadata.namespace');
  const where: Where = { file, what: `${kind} ${namespace ? namespace + '/' : ''}${name}` };
  const spec = mapping(where, value, 'spec', 'spec');
  return { apiVersion, kind, name, namespace, meta, spec, where };
}

function parseDocuments(text: string, file: string): RawResource[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: true, logLevel: 'error' });
  const list: Document[] = Array.isArray(docs) ? docs : [];
  const out: RawResource[] = [];
  list.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const msg = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      const loc = pos ? `line ${pos.line}, column ${pos.col}` : `document ${i + 1}`;
      throw new ConfigError(`${file}: ${loc}: YAML syntax error: ${msg}`);
    }
    const line = lineOf(lc, doc.contents?.range?.[0]);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ConfigError(
        `${file}: document ${i + 1} at line ${line}: YAML error: ${(e as Error).message}`,
      );
    }
    if (value === null || value === undefined) return; // empty document (e.g. a trailing `---`)
    const label = `document ${i + 1}`;
    const kind = isObj(value) ? own(value, 'kind') : undefined;
    const items = isObj(value) ? own(value, 'items') : undefined;
    if (typeof kind === 'string' && /List$/.test(kind) && items !== undefined) {
      // `kind: List` (kubectl) or `kind: IPPoolList` (calicoctl get -o yaml): expand the items; items
      // without apiVersion/kind inherit the list's apiVersion and the kind named by the list.
      const at: Where = { file, what: `${kind} at line ${line}` };
      if (!Array.isArray(items)) fail(at, 'items', items, `must be a list, got ${typeName(items)}`);
      const apiVersion = own(value as Obj, 'apiVersion');
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
      items.forEach((item, j) => {
        const node = doc.getIn(['items', j], true) as { range?: [number, number, number] } | undefined;
        out.push(
          rawResource(file, item, `${label} items[${j}]`, lineOf(lc, node?.range?.[0] ?? undefined), {
            apiVersion: itemKind && typeof apiVersion === 'string' ? apiVersion : undefined,
            kind: itemKind,
          }),
        );
      });
      return;
    }
    out.push(rawResource(file, value, label, line, {}));
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Per-kind conversion

type Ignore = (r: RawResource, reason: string) => void;

function toPool(r: RawResource, ignore: Ignore): IPPool | undefined {
  const { where: w, spec } = r;
  const cidrText = reqString(w, spec, 'cidr', 'spec.cidr');
  if (isIp6(cidrText)) {
    ignore(r, 'IPv6 pool (calitap routes IPv4 only)');
    return undefined;
  }
  const cidr = cidrValue(w, 'spec.cidr', cidrText);
  const disabled = optBool(w, spec, 'disabled', 'spec.disabled', false);
  const blockSize = optInt(w, spec, 'blockSize', 'spec.blockSize', 20, 32) ?? DEFAULT_BLOCK_SIZE;
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

function toNode(r: RawResource): CalicoNode {
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

function toAffinity(r: RawResource, ignore: Ignore): BlockAffinity | undefined {
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

function toEndpoint(r: RawResource): WorkloadEndpoint {
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
  if (lo < 1 || hi > 65535 || hi < 1 || lo > 65535) fail(w, path, v, 'ports must be between 1 and 65535');
  if (lo > hi) fail(w, path, v, `range start ${lo} is greater than its end ${hi}`);
  return [lo, hi];
}

function toFelix(r: RawResource): Partial<FelixConfig> {
  const { where: w, spec } = r;
  const f: Partial<FelixConfig> = {};
  const nat = ip4(w, spec, 'natOutgoingAddress', 'spec.natOutgoingAddress', false);
  if (nat !== undefined) f.natOutgoingAddress = nat;
  const range = portRange(w, spec);
  if (range) f.natPortRange = range;
  // Felix itself does not range-check the VNI; VXLAN's VNI is 24 bits (RFC 7348 §5) and 0 is refused.
  const vni = optInt(w, spec, 'vxlanVNI', 'spec.vxlanVNI', 1, 16777215);
  if (vni !== undefined) f.vxlanVNI = vni;
  const port = optInt(w, spec, 'vxlanPort', 'spec.vxlanPort', 1, 65535);
  if (port !== undefined) f.vxlanPort = port;
  for (const key of ['ipipMTU', 'vxlanMTU'] as const) {
    // 0 is Felix's "auto-detect" (uplink MTU minus overhead), like leaving the field unset.
    const mtu = optInt(w, spec, key, `spec.${key}`, 0, MAX_MTU);
    if (mtu !== undefined && mtu !== 0 && mtu < MIN_TUNNEL_MTU)
      fail(w, `spec.${key}`, mtu, `must be 0 (auto) or between ${MIN_TUNNEL_MTU} and ${MAX_MTU}`);
    if (mtu) f[key] = mtu;
  }
  return f;
}

function toBgpConfig(r: RawResource): BgpConfig {
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
    listenPort: optInt(w, spec, 'listenPort', 'spec.listenPort', 1, 65535) ?? BGP_DEFAULTS.listenPort,
  };
}

function toPeer(r: RawResource, ignore: Ignore): BgpPeer | undefined {
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
    if (port < 1 || port > 65535) fail(w, 'spec.peerIP', text, 'port must be between 1 and 65535');
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

function toUplink(r: RawResource): Uplink {
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

// ---------------------------------------------------------------------------------------------------
// The whole file

export function loadConfigText(text: string, sourceName: string): ClusterConfig {
  const file = sourceName;
  if (typeof text !== 'string') throw new ConfigError(`${file}: config is not text`);
  const raws = parseDocuments(text, file);

  const cfg: ClusterConfig = {
    pools: [],
    nodes: new Map(),
    affinities: [],
    endpoints: [],
    felix: { ...FELIX_DEFAULTS },
    felixNodeOverrides: new Map(),
    bgp: { ...BGP_DEFAULTS },
    peers: [],
    uplinks: new Map(),
    ignored: [],
    source: sourceName,
  };
  const ignored: IgnoredResource[] = cfg.ignored;
  const ignore: Ignore = (r, reason) => ignored.push({ kind: r.kind, name: r.name, reason });

  // Per-resource validation, in document order.
  const policy = new PolicyLoader();
  const seenNames = new Map<string, Set<string>>();
  const whereOf = new Map<object, Where>();
  for (const r of raws) {
    const known =
      (r.apiVersion === CALICO_API_VERSION && CALICO_KINDS.has(r.kind)) ||
      (r.apiVersion === CALITAP_API_VERSION && r.kind === 'Uplink') ||
      isPolicyKind(r.apiVersion, r.kind);
    if (!known) {
      ignore(r, `unknown kind (${r.apiVersion} ${r.kind})`);
      continue;
    }
    if (!NAME_RE.test(r.name) || r.name.length > 253)
      fail(r.where, 'metadata.name', r.name, 'must be lower-case letters, digits, "-" or "." (at most 253)');
    // WorkloadEndpoints are namespaced in Calico; every other kind here is cluster-scoped.
    const key =
      r.kind === 'WorkloadEndpoint' || policyKindNamespaced(r.kind)
        ? `${r.namespace ?? 'default'}/${r.name}`
        : r.name;
    const names = seenNames.get(r.kind) ?? new Set<string>();
    seenNames.set(r.kind, names);
    if (names.has(key)) fail(r.where, 'metadata.name', r.name, `duplicate ${r.kind} name`);
    names.add(key);

    switch (r.kind) {
      case 'IPPool': {
        const p = toPool(r, ignore);
        if (p) {
          cfg.pools.push(p);
          whereOf.set(p, r.where);
        }
        break;
      }
      case 'Node': {
        const n = toNode(r);
        cfg.nodes.set(n.name, n);
        whereOf.set(n, r.where);
        break;
      }
      case 'BlockAffinity': {
        const a = toAffinity(r, ignore);
        if (a) {
          cfg.affinities.push(a);
          whereOf.set(a, r.where);
        }
        break;
      }
      case 'WorkloadEndpoint': {
        const e = { ...toEndpoint(r), ...endpointPolicyFields(r) };
        cfg.endpoints.push(e);
        whereOf.set(e, r.where);
        break;
      }
      case 'FelixConfiguration': {
        // Felix reads the global `default` and the per-node `node.<nodename>` resources; a node-specific
        // field overrides the global one (felix/config: DatastorePerHost > DatastoreGlobal).
        const f = toFelix(r);
        if (r.name === 'default') cfg.felix = { ...FELIX_DEFAULTS, ...f };
        else if (r.name.startsWith('node.') && r.name.length > 5)
          cfg.felixNodeOverrides.set(r.name.slice(5), f);
        else ignore(r, 'Felix only reads FelixConfiguration "default" and "node.<nodename>"');
        break;
      }
      case 'BGPConfiguration': {
        const b = toBgpConfig(r);
        if (r.name === 'default') cfg.bgp = b;
        else ignore(r, 'only BGPConfiguration "default" is used');
        break;
      }
      case 'BGPPeer': {
        const p = toPeer(r, ignore);
        if (p) {
          cfg.peers.push(p);
          whereOf.set(p, r.where);
        }
        break;
      }
      case 'Uplink': {
        const u = toUplink(r);
        cfg.uplinks.set(u.node, u);
        whereOf.set(u, r.where);
        break;
      }
      default:
        policy.add(r); // NetworkPolicy, GlobalNetworkPolicy, Profile, Tier, Namespace (policy-load.ts)
    }
  }

  crossCheck(cfg, (o) => whereOf.get(o) as Where);
  const pol = policy.finish();
  if (pol) cfg.policy = pol;
  return cfg;
}

/** Checks that relate resources to each other. */
function crossCheck(cfg: ClusterConfig, whereOf: (o: object) => Where): void {
  // Pools must not overlap (Calico refuses to create an overlapping pool).
  cfg.pools.forEach((p, i) => {
    for (const q of cfg.pools.slice(0, i))
      if (prefixesOverlap(p.cidr, q.cidr))
        fail(
          whereOf(p),
          'spec.cidr',
          formatPrefix4(p.cidr),
          `overlaps IPPool ${q.name} (${formatPrefix4(q.cidr)})`,
        );
  });
  const poolOf = (pfx: Prefix4) => cfg.pools.find((p) => prefixCovers(p.cidr, pfx));

  // Two nodes with the same address would make routing ambiguous.
  const byIp = new Map<number, CalicoNode>();
  for (const n of cfg.nodes.values()) {
    if (!n.bgpAddress) continue;
    const other = byIp.get(n.bgpAddress.ip);
    if (other)
      fail(whereOf(n), 'spec.bgp.ipv4Address', fmtHost(n.bgpAddress), `same address as Node ${other.name}`);
    byIp.set(n.bgpAddress.ip, n);
  }

  const needNode = (o: object, path: string, node: string) => {
    if (!cfg.nodes.has(node)) fail(whereOf(o), path, node, 'no Node with this name');
  };

  // Block affinities: known node, inside a pool, exactly one block of it, one owner per block.
  const owner = new Map<string, BlockAffinity>();
  for (const a of cfg.affinities) {
    const w = whereOf(a);
    needNode(a, 'spec.node', a.node);
    const pool = poolOf(a.cidr);
    const text = formatPrefix4(a.cidr);
    if (!pool) fail(w, 'spec.cidr', text, 'outside every IPPool');
    if (a.cidr.len !== pool.blockSize)
      fail(w, 'spec.cidr', text, `not a block of IPPool ${pool.name} (blockSize ${pool.blockSize})`);
    if (a.state !== 'confirmed' || a.deleted) continue;
    const prev = owner.get(text);
    if (prev && prev.node !== a.node)
      fail(w, 'spec.cidr', text, `block already affine to node ${prev.node} (BlockAffinity ${prev.name})`);
    owner.set(text, a);
  }

  // Interface names share one namespace per node: the uplink's and every endpoint's.
  const ifaces = new Map<string, string>(); // `${node}\0${iface}` → "Kind name"
  for (const u of cfg.uplinks.values()) {
    needNode(u, 'metadata.name', u.node);
    ifaces.set(`${u.node}\0${u.interfaceName}`, `Uplink ${u.node}`);
  }
  const ipOwner = new Map<number, WorkloadEndpoint>();
  for (const e of cfg.endpoints) {
    const w = whereOf(e);
    needNode(e, 'spec.node', e.node);
    const key = `${e.node}\0${e.interfaceName}`;
    const prev = ifaces.get(key);
    if (prev) fail(w, 'spec.interfaceName', e.interfaceName, `already used on node ${e.node} by ${prev}`);
    ifaces.set(key, `WorkloadEndpoint ${e.name}`);
    e.ipNetworks.forEach((n, i) => {
      const path = `spec.ipNetworks[${i}]`;
      if (!poolOf(n)) fail(w, path, formatPrefix4(n), 'outside every IPPool');
      // Two endpoints must not claim the same address (checked for /32s, the only form IPAM hands out).
      if (n.len === 32) {
        const other = ipOwner.get(n.addr);
        if (other && other !== e)
          fail(w, path, formatPrefix4(n), `address already used by WorkloadEndpoint ${other.name}`);
        ipOwner.set(n.addr, e);
      }
    });
  }

  for (const p of cfg.peers) if (p.node !== undefined) needNode(p, 'spec.node', p.node);
}

function fmtHost(a: { ip: number; len: number }): string {
  return `${formatIp4(a.ip)}/${a.len}`;
}
