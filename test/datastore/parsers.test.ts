// Property tests of everything that reads datastore values and keys: whatever the bytes, the parsers
// return a value or throw the one error family (CalitapError, code ds-bad-data / config-invalid),
// never anything else; and the cluster model never throws on bad values. Plus the pure pieces of
// node start-up: choosing the datastore and finding the node's address.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CalitapError } from '../../src/common/errors.js';
import {
  decodeAffinity,
  decodeBlock,
  decodeHandle,
  decodeIpamConfig,
  encodeBlock,
} from '../../src/control/datastore/ipam-records.js';
import { decodeResource } from '../../src/control/datastore/resources.js';
import { parseJson, stringifyGo } from '../../src/control/datastore/json.js';
import {
  parseAffinityKey,
  parseBlockKey,
  parseHandleKey,
  parseResourceKey,
} from '../../src/control/datastore/layout.js';
import { ClusterModel } from '../../src/control/datastore/model.js';
import { chooseDatastore } from '../../src/control/datastore/open.js';
import { detectNodeIp } from '../../src/control/daemon/node-ip.js';

const onlyOurs = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CalitapError);
  }
};

const blockish = fc.record(
  {
    cidr: fc.oneof(fc.constant('10.0.0.0/30'), fc.string(), fc.integer()),
    affinity: fc.oneof(fc.constant('host:a'), fc.constant(null), fc.integer()),
    allocations: fc.oneof(
      fc.array(fc.oneof(fc.constant(null), fc.integer({ min: -2, max: 3 }), fc.string()), { maxLength: 6 }),
      fc.string(),
    ),
    unallocated: fc.array(fc.integer({ min: -1, max: 5 }), { maxLength: 6 }),
    attributes: fc.array(
      fc.oneof(fc.record({ handle_id: fc.oneof(fc.string(), fc.constant(null), fc.integer()) }), fc.string()),
      {
        maxLength: 3,
      },
    ),
    sequenceNumber: fc.oneof(
      fc.bigInt({ min: -5n, max: 2n ** 64n }),
      fc.string(),
      fc.double({ noDefaultInfinity: true, noNaN: true }),
    ),
  },
  { requiredKeys: [] },
);

describe('datastore parsers only return or throw CalitapError', () => {
  it('blocks, affinities, handles, IPAM config from arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        onlyOurs(() => decodeBlock('/k', text));
        onlyOurs(() => decodeAffinity('/k', text));
        onlyOurs(() => decodeHandle('/k', text));
        onlyOurs(() => decodeIpamConfig('/k', text));
        onlyOurs(() =>
          decodeResource({
            key: '/calico/resources/v3/projectcalico.org/ippools/x',
            value: text,
            modRevision: 1,
            createRevision: 1,
            version: 1,
          }),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('block-shaped values: decoded blocks re-encode and decode to the same block', () => {
    fc.assert(
      fc.property(blockish, (o) => {
        const text = stringifyGo(o as never);
        let b;
        try {
          b = decodeBlock('/k', text);
        } catch (e) {
          expect(e).toBeInstanceOf(CalitapError);
          return;
        }
        const again = decodeBlock('/k', encodeBlock(b));
        expect(again.allocations).toEqual(b.allocations);
        expect(again.sequenceNumber).toBe(b.sequenceNumber);
      }),
      { numRuns: 2000 },
    );
  });

  it('keys of any shape', () => {
    fc.assert(
      fc.property(fc.string(), (k) => {
        for (const key of [
          k,
          `/calico/ipam/v2/assignment/ipv4/block/${k}`,
          `/calico/ipam/v2/host/${k}`,
          `/calico/resources/v3/projectcalico.org/${k}`,
        ]) {
          parseBlockKey(key);
          parseAffinityKey(key);
          parseHandleKey(key);
          parseResourceKey(key);
        }
      }),
    );
  });

  it('uint64 survives a parse/stringify round trip', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => {
        expect(stringifyGo(parseJson(`{"n":${n}}`))).toBe(`{"n":${n}}`);
      }),
    );
  });

  it('the cluster model never throws on arbitrary values', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom(
              'ippools/a',
              'nodes/n',
              'workloadendpoints/d/w',
              'bgppeers/p',
              'felixconfigurations/default',
            ),
            fc.oneof(fc.string(), fc.json()),
          ),
          {
            maxLength: 6,
          },
        ),
        (entries) => {
          const m = new ClusterModel('t');
          m.reset(
            entries.map(([k, v], i) => ({
              key: `/calico/resources/v3/projectcalico.org/${k}`,
              value: v,
              modRevision: i + 2,
              createRevision: 2,
              version: 1,
            })),
          );
          m.build();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('node start-up', () => {
  it('chooses the datastore like calicoctl: flags over environment', () => {
    expect(chooseDatastore({ config: 'c.yaml' }, {})).toEqual({ type: 'file', file: 'c.yaml' });
    expect(
      chooseDatastore({}, { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://a:2379,http://b:2379' }),
    ).toEqual({
      type: 'etcdv3',
      endpoints: ['http://a:2379', 'http://b:2379'],
    });
    expect(
      chooseDatastore(
        { datastore: 'etcdv3', etcdEndpoints: 'http://x:2379' },
        { ETCD_ENDPOINTS: 'http://y:2379' },
      ).endpoints,
    ).toEqual(['http://x:2379']);
    expect(() => chooseDatastore({}, {})).toThrow(/no datastore/);
    expect(() => chooseDatastore({ datastore: 'etcdv3' }, {})).toThrow(/no endpoints/);
    expect(() => chooseDatastore({ datastore: 'etcdv3', etcdEndpoints: 'a:2379' }, {})).toThrow(
      /--etcd-endpoints a:2379: expected a URL/,
    );
    expect(() => chooseDatastore({ datastore: 'kubernetes' }, {})).toThrow(
      /--datastore kubernetes: expected etcdv3 or file/,
    );
  });

  it('finds the node address like calico-node', () => {
    const addrs = [
      { ifname: 'docker0', ip: 0xac110001, len: 16 },
      { ifname: 'cali123', ip: 0x0a410001, len: 32 },
      { ifname: 'eth0', ip: 0x0a000001, len: 24 },
      { ifname: 'eth1', ip: 0xc0a80105, len: 24 },
    ];
    expect(detectNodeIp(undefined, undefined, addrs)).toBe('10.0.0.1/24');
    expect(detectNodeIp('autodetect', 'interface=eth1', addrs)).toBe('192.168.1.5/24');
    expect(detectNodeIp(undefined, 'skip-interface=eth0', addrs)).toBe('192.168.1.5/24');
    expect(detectNodeIp(undefined, 'cidr=192.168.0.0/16', addrs)).toBe('192.168.1.5/24');
    expect(detectNodeIp(undefined, 'can-reach=8.8.8.8', addrs, () => '192.168.1.5')).toBe('192.168.1.5/24');
    expect(detectNodeIp('10.0.0.1', undefined, addrs)).toBe('10.0.0.1/24');
    expect(detectNodeIp('10.9.9.9/16', undefined, addrs)).toBe('10.9.9.9/16');
    expect(() => detectNodeIp(undefined, 'cidr=172.31.0.0/16', addrs)).toThrow(
      /IP_AUTODETECTION_METHOD cidr=172.31.0.0\/16: no IPv4 address of this host matches/,
    );
    expect(() => detectNodeIp(undefined, 'magic', addrs)).toThrow(/unknown method/);
    expect(() => detectNodeIp('10.0.0.300', undefined, addrs)).toThrow(
      /--ip 10.0.0.300: not an IPv4 address/,
    );
  });
});
