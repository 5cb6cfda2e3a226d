// Regenerates test/bgp/fixtures/*.json: the exact bytes BIRD, GoBGP and FRR send on a session,
// captured by a raw TCP listener that answers with our OPEN and KEEPALIVE. Skipped unless
// CALITAP_BGP_CAPTURE=1 (and root): the fixtures are committed and read by fixtures.test.ts.
//   CALITAP_BGP_CAPTURE=1 npx vitest run test/bgp/capture-fixtures.test.ts
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { emptyCaps } from '../../src/control/bgp/caps.js';
import { encodeKeepalive, encodeOpen } from '../../src/control/bgp/codec.js';
import { BgpFramer } from '../../src/control/bgp/framer.js';
import { Bird, birdConf, frrConf, gobgpConf } from '../../bench/bgp-lab.js';
import { toHex } from './helpers.js';
import { have, isRoot, Lab } from '../../bench/bgp-lab.js';
import { waitUntil } from './rawpeer.js';

const run = process.env.CALITAP_BGP_CAPTURE === '1' && isRoot;
const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');

async function capture(lab: Lab, start: () => ChildProcess | void, wantUpdates: number): Promise<string[]> {
  const msgs: string[] = [];
  let updates = 0;
  const server = net.createServer((s) => {
    const f = new BgpFramer();
    s.write(
      encodeOpen({
        asn: 64512,
        holdTime: 90,
        bgpId: 0x0ac80001,
        caps: {
          ...emptyCaps(),
          multiprotocol: [{ afi: 1, safi: 1 }],
          routeRefresh: true,
          as4: 64512,
          gracefulRestart: {
            restartTime: 120,
            restarting: false,
            notification: false,
            afis: [{ afi: 1, safi: 1, forwarding: false }],
          },
        },
      }),
    );
    s.on('data', (c: Buffer) => {
      for (const m of f.push(new Uint8Array(c))) {
        msgs.push(toHex(m));
        if (m[18] === 1) s.write(encodeKeepalive());
        if (m[18] === 2) updates++;
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen({ host: lab.ip(1), port: 179 }, () => r()));
  start();
  try {
    await waitUntil(() => updates >= wantUpdates, 30_000, 'updates from the daemon');
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    server.close();
  }
  return msgs;
}

function save(name: string, daemon: string, msgs: string[]): void {
  fs.mkdirSync(FIXTURES, { recursive: true });
  fs.writeFileSync(
    path.join(FIXTURES, `${name}.json`),
    JSON.stringify({ daemon, captured: new Date().toISOString(), messages: msgs }, null, 1) + '\n',
  );
}

describe.skipIf(!run)('bgp fixtures capture (requires root and CALITAP_BGP_CAPTURE=1)', () => {
  const labs: Lab[] = [];
  afterAll(async () => {
    for (const l of labs) await l.destroy();
  });

  it.skipIf(!have('bird'))('BIRD 2', async () => {
    const lab = Lab.create('cb');
    labs.push(lab);
    const bird = new Bird(
      lab,
      'bird',
      birdConf({
        routerId: lab.ip(2),
        localAs: 64512,
        statics: ['10.66.0.0/26', '10.66.0.64/26', '10.66.1.0/24'],
        peers: [{ name: 'calitap1', ip: lab.ip(1), asn: 64512 }],
        extra: '',
      }).replace(
        'export where source = RTS_STATIC;',
        'export filter { if source != RTS_STATIC then reject; bgp_community.add((64512,100)); bgp_large_community.add((64512,1,2)); bgp_ext_community.add((rt,64512,7)); bgp_med = 20; accept; };',
      ),
    );
    const msgs = await capture(lab, () => bird.start(), 2);
    save('bird-2.0.12', `BIRD ${lab.exec('bird', ['--version']).trim() || '2'}`, msgs);
  });

  it.skipIf(!have('gobgpd'))('GoBGP', async () => {
    const lab = Lab.create('cg');
    labs.push(lab);
    const sock = `${lab.dir}/gobgp.sock`;
    const conf = lab.writeFile(
      'gobgpd.toml',
      gobgpConf({ routerId: lab.ip(2), localAs: 64512, clients: [lab.ip(1)] }),
    );
    const msgs = await capture(
      lab,
      () => {
        lab.spawn('gobgpd', 'gobgpd', ['-f', conf, '--api-hosts', `unix://${sock}`, '--pprof-disable', '-p']);
        void (async () => {
          await waitUntil(
            () => {
              try {
                lab.exec('gobgp', ['--target', `unix://${sock}`, 'global']);
                return true;
              } catch {
                return false;
              }
            },
            10_000,
            'gobgp API',
          );
          lab.exec('gobgp', [
            '--target',
            `unix://${sock}`,
            'global',
            'rib',
            'add',
            '10.68.0.0/26',
            'nexthop',
            '10.200.0.9',
            'community',
            '64512:200',
            'med',
            '10',
            'aspath',
            '65001 4200000001',
          ]);
        })();
      },
      2,
    );
    save('gobgp-3.10', 'GoBGP 3.10', msgs);
  });

  it.skipIf(!have('/usr/lib/frr/bgpd'))('FRR', async () => {
    const lab = Lab.create('cf');
    labs.push(lab);
    const conf = lab.writeFile(
      'bgpd.conf',
      frrConf({
        routerId: lab.ip(2),
        localAs: 64512,
        peer: lab.ip(1),
        peerAs: 64512,
        networks: ['10.67.0.0/26', '10.67.1.0/24'],
      }),
    );
    const msgs = await capture(
      lab,
      () =>
        lab.spawn('bgpd', '/usr/lib/frr/bgpd', [
          '-Z',
          '-S',
          '-n',
          '-f',
          conf,
          '--vty_socket',
          lab.dir,
          '-i',
          `${lab.dir}/bgpd.pid`,
        ]),
      2,
    );
    save('frr-8.4', 'FRR 8.4', msgs);
  });
});
