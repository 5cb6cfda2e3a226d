// Regenerates test/bgp/fixtures/*.json: the exact bytes BIRD, GoBGP and FRR send on a session,
// captured by a raw TCP listener that answers with our OPEN and KEEPALIVE. The fixtures are committed
// and read by test/bgp/fixtures.test.ts; run this (as root, with bird2, gobgpd and frr installed) only
// to refresh them, then review the diff:
//   npm run capture:bgp-fixtures [-- --out DIR] [-- bird gobgp frr]
// (= npm run build && node dist/scripts/capture-bgp-fixtures.js). Each daemon runs in its own network
// namespace lab (bench/bgp-lab.ts), removed at the end; a daemon that is not installed is skipped.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { emptyCaps } from '../src/control/bgp/caps.js';
import { encodeKeepalive, encodeOpen } from '../src/control/bgp/codec.js';
import { BgpFramer } from '../src/control/bgp/framer.js';
import { Bird, birdConf, frrConf, gobgpConf, have, isRoot, Lab, waitUntil } from '../bench/bgp-lab.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** repo root (this file is scripts/x.ts or dist/scripts/x.js) */
const ROOT = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
let FIXTURES = path.join(ROOT, 'test', 'bgp', 'fixtures');

/** BGP message type octet (RFC 4271 §4.1), after the 16-octet marker and 2-octet length. */
const TYPE_OFFSET = 18;
const TYPE_OPEN = 1;
const TYPE_UPDATE = 2;
/** After the last expected UPDATE, how long to keep listening for trailing messages (End-of-RIB). */
const TRAILING_MS = 500;

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

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
        if (m[TYPE_OFFSET] === TYPE_OPEN) s.write(encodeKeepalive());
        if (m[TYPE_OFFSET] === TYPE_UPDATE) updates++;
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen({ host: lab.ip(1), port: 179 }, () => r()));
  start();
  try {
    await waitUntil(() => updates >= wantUpdates, 30_000, 'updates from the daemon');
    await new Promise((r) => setTimeout(r, TRAILING_MS));
  } finally {
    server.close();
  }
  return msgs;
}

function save(name: string, daemon: string, msgs: string[]): void {
  fs.mkdirSync(FIXTURES, { recursive: true });
  const file = path.join(FIXTURES, `${name}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ daemon, captured: new Date().toISOString(), messages: msgs }, null, 1) + '\n',
  );
  console.log(`${file}: ${msgs.length} messages from ${daemon}`);
}

const CAPTURES: { name: string; needs: string; run: (lab: Lab) => Promise<void> }[] = [
  {
    name: 'bird',
    needs: 'bird',
    run: async (lab) => {
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
    },
  },
  {
    name: 'gobgp',
    needs: 'gobgpd',
    run: async (lab) => {
      const sock = `${lab.dir}/gobgp.sock`;
      const conf = lab.writeFile(
        'gobgpd.toml',
        gobgpConf({ routerId: lab.ip(2), localAs: 64512, clients: [lab.ip(1)] }),
      );
      const msgs = await capture(
        lab,
        () => {
          lab.spawn('gobgpd', 'gobgpd', [
            '-f',
            conf,
            '--api-hosts',
            `unix://${sock}`,
            '--pprof-disable',
            '-p',
          ]);
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
    },
  },
  {
    name: 'frr',
    needs: '/usr/lib/frr/bgpd',
    run: async (lab) => {
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
    },
  },
];

async function main(argv: string[]): Promise<number> {
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') FIXTURES = path.resolve(argv[++i] ?? '.');
    else names.push(argv[i]);
  }
  const unknown = names.filter((n) => !CAPTURES.some((c) => c.name === n));
  if (unknown.length > 0) {
    console.error(
      `capture-bgp-fixtures: unknown ${unknown.join(' ')} (known: ${CAPTURES.map((c) => c.name).join(', ')})`,
    );
    return 2;
  }
  if (!isRoot) {
    console.error('capture-bgp-fixtures: needs root (network namespaces, port 179)');
    return 1;
  }
  let failed = 0;
  for (const c of CAPTURES) {
    if (names.length > 0 && !names.includes(c.name)) continue;
    if (!have(c.needs)) {
      console.log(`${c.name}: ${c.needs} not installed, skipped`);
      continue;
    }
    const lab = Lab.create(`c${c.name[0]}`);
    try {
      await c.run(lab);
    } catch (e) {
      failed++;
      console.error(`${c.name}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      await lab.destroy();
    }
  }
  return failed > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
