// Property tests: whatever the input, loading either succeeds or throws a one-line ConfigError, and a
// config that loads always compiles for each of its nodes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/common/errors.js';
import { compileRoutes, natOutgoingApplies } from '../../src/control/config/compile.js';
import { loadConfigText } from '../../src/control/config/load.js';

const SAMPLE_TEXT = readFileSync(
  fileURLToPath(new URL('../../pcaps/sample-config.yaml', import.meta.url)),
  'utf8',
);

/** Loads and, on success, compiles every node; any exception other than a one-line ConfigError fails. */
function check(text: string): void {
  let cfg;
  try {
    cfg = loadConfigText(text, 'fuzz.yaml');
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    expect(e.message).not.toContain('\n');
    expect(e.message.startsWith('fuzz.yaml: ')).toBe(true);
    return;
  }
  for (const name of cfg.nodes.keys()) {
    const { routes } = compileRoutes(cfg, name);
    for (const r of routes) {
      expect(r.prefix.len).toBeGreaterThanOrEqual(0);
      expect(r.prefix.len).toBeLessThanOrEqual(32);
    }
  }
  natOutgoingApplies(cfg, 0x0a410002, 0x08080808);
}

const octet = fc.integer({ min: 0, max: 300 });
const ipish = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const cidrish = fc.tuple(ipish, fc.integer({ min: 0, max: 40 })).map(([a, l]) => `${a}/${l}`);
const macish = fc
  .array(fc.integer({ min: 0, max: 270 }), { minLength: 5, maxLength: 7 })
  .map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
const nodeName = fc.constantFrom('node-a', 'node-b', 'node-c', 'Node_X', '');
const scalar = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  ipish,
  cidrish,
  macish,
  nodeName,
  fc.constantFrom('Always', 'CrossSubnet', 'Never', 'confirmed', 'pending', 'all()', '32768:65535', '1.10'),
);
const value = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('ip', 'mac', 'ipv4Address', 'x'), scalar) },
);
const specKey = fc.constantFrom(
  'cidr',
  'blockSize',
  'ipipMode',
  'vxlanMode',
  'natOutgoing',
  'disabled',
  'node',
  'state',
  'deleted',
  'interfaceName',
  'ipNetworks',
  'mac',
  'natOutgoingAddress',
  'natPortRange',
  'vxlanVNI',
  'vxlanPort',
  'ipipMTU',
  'vxlanMTU',
  'asNumber',
  'nodeToNodeMeshEnabled',
  'listenPort',
  'peerIP',
  'nodeSelector',
  'gateway',
  'mtu',
  'neighbors',
  'bgp',
  'ipv4VXLANTunnelAddr',
  'vxlanTunnelMACAddr',
);
const resource = fc.record(
  {
    apiVersion: fc.constantFrom('projectcalico.org/v3', 'calitap/v1', 'v1', 7),
    kind: fc.constantFrom(
      'IPPool',
      'Node',
      'BlockAffinity',
      'WorkloadEndpoint',
      'FelixConfiguration',
      'BGPConfiguration',
      'BGPPeer',
      'Uplink',
      'List',
      'Unknown',
    ),
    metadata: fc.record(
      {
        name: fc.oneof(nodeName, fc.constantFrom('default', 'node.node-a', 'p1', 'p2')),
        namespace: fc.string(),
      },
      { requiredKeys: [] },
    ),
    spec: fc.oneof(fc.dictionary(specKey, value), scalar),
    items: fc.array(scalar, { maxLength: 2 }),
  },
  { requiredKeys: ['kind'] },
);

describe('fuzz', () => {
  it('arbitrary text only ever throws ConfigError', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), check), { numRuns: 500 });
  });
  it('YAML-ish text only ever throws ConfigError', () => {
    const token = fc.constantFrom(
      '---\n',
      'apiVersion: projectcalico.org/v3\n',
      'kind: IPPool\n',
      'kind: List\n',
      'items:\n',
      '- ',
      'metadata: { name: a }\n',
      'spec:\n',
      '  cidr: 10.65.0.0/16\n',
      '  ',
      '&a ',
      '*a\n',
      '[',
      ']',
      '{',
      '}',
      ': ',
      '"',
      "'",
      '!!binary ',
      '!tag ',
      '? ',
      '#c\n',
      '\t',
      '\n',
      '%YAML 1.2\n',
      '<<: *a\n',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), (parts) => check(parts.join(''))),
      { numRuns: 500 },
    );
  });
  it('random resources only ever throw ConfigError, and loaded configs compile', () => {
    fc.assert(
      fc.property(fc.array(resource, { maxLength: 8 }), (docs) => {
        check(docs.map((d) => stringify(d)).join('---\n'));
      }),
      { numRuns: 400 },
    );
  });
  it('mutations of the sample only ever throw ConfigError', () => {
    const lines = SAMPLE_TEXT.split('\n');
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat({ max: lines.length - 1 }),
            fc.oneof(fc.constant(''), fc.string({ maxLength: 12 }), ipish, cidrish),
          ),
          { minLength: 1, maxLength: 3 },
        ),
        (edits) => {
          const copy = [...lines];
          for (const [i, text] of edits) {
            const l = copy[i];
            const colon = l.indexOf(': ');
            copy[i] = colon >= 0 && text !== '' ? l.slice(0, colon + 2) + text : text;
          }
          check(copy.join('\n'));
        },
      ),
      { numRuns: 400 },
    );
  });
  it('the sample itself loads', () => {
    expect(() => loadConfigText(SAMPLE_TEXT, 'fuzz.yaml')).not.toThrow();
  });
});
