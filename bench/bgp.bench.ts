// BGP benchmark: a BIRD "source" (static protocol with N generated routes) in a network namespace
// announces them at the same moment to calitap's speaker (this process, root namespace) and to a
// second BIRD ("sink") in the same namespace. Measures the time until each RIB holds all N routes
// (from the moment its session is Established and from the moment the source was enabled) and each
// learner's resident memory. Needs root (namespaces) and bird2.
//   npm run build && node dist/bench/bgp.bench.js [--routes 100000,1000000]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BgpSpeaker } from '../src/control/bgp/speaker.js';
import { BgpGlue } from '../src/control/daemon/bgp-glue.js';
import { Programmer } from '../src/control/daemon/program.js';
import { loadConfigText } from '../src/control/config/load.js';
import pino from 'pino';
import { Bird, birdConf, have, isRoot, Lab, waitUntil } from './bgp-lab.js';

interface Result {
  routes: number;
  calitapMs: number;
  calitapFromEnableMs: number;
  calitapRssMiB: number;
  calitapHeapMiB: number;
  birdMs: number;
  birdFromEnableMs: number;
  birdRssMiB: number;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** BIRD prints protocol "since" as local time of day with milliseconds: turn it into epoch ms. */
function birdSince(text: string): number {
  const m = /(\d\d):(\d\d):(\d\d)\.(\d{3})/.exec(text);
  if (!m) return NaN;
  const d = new Date();
  d.setHours(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
  return d.getTime();
}

function generatedStatics(n: number): string {
  // /24s counting up from 16.0.0.0 (16 M /24s available below 32.0.0.0... plenty)
  const lines: string[] = ['protocol static generated {', '  ipv4;'];
  for (let i = 0; i < n; i++) {
    const a = 0x10000000 + i * 256;
    lines.push(`  route ${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.0/24 blackhole;`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** One calitap node peering with the BIRD source (mesh off), its uplink gateway the source. */
function benchConfig(myIp: string, peerIp: string): string {
  return [
    'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false}',
    `apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: bench}\nspec: {bgp: {ipv4Address: ${myIp}/24}}`,
    `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: source}\nspec: {peerIP: ${peerIp}, asNumber: 64512}`,
    `apiVersion: calitap/v1\nkind: Uplink\nmetadata: {name: bench}\nspec: {interfaceName: up0, gateway: ${peerIp}}`,
  ].join('\n---\n');
}

async function runOnce(n: number): Promise<Result> {
  const lab = Lab.create('x');
  let speaker: BgpSpeaker | null = null;
  try {
    const sinkNs = lab.linkNamespace('s');
    const upIp = `10.201.${lab.n}.2`;
    const sinkIp = `10.201.${lab.n}.3`;
    const source = new Bird(
      lab,
      'source',
      birdConf({
        routerId: lab.ip(2),
        localAs: 64512,
        extra: generatedStatics(n),
        peers: [
          { name: 'calitap1', ip: lab.ip(1), asn: 64512, extra: '  disabled yes;' },
          { name: 'sink', ip: sinkIp, asn: 64512, source: upIp, extra: '  disabled yes;' },
        ],
      }),
    );
    const sink = new Bird(
      lab,
      'sink',
      birdConf({
        routerId: sinkIp,
        localAs: 64512,
        peers: [{ name: 'upstream', ip: upIp, asn: 64512 }],
      }),
      sinkNs,
    );
    source.start();
    await source.ready();
    await waitUntil(() => source.count('generated') === n, 600_000, 'source BIRD loads its static routes');
    sink.start();
    await sink.ready();

    // calitap as the daemon runs it: the speaker behind the BGP glue, learned routes programmed into
    // the FIB through the programmer (adjacency + DIR-24-8 insert per route)
    const cfg = loadConfigText(benchConfig(lab.ip(1), lab.ip(2)), 'bgp-bench.yaml');
    const prog = new Programmer(cfg, 'bench', { configEndpoints: false });
    const glue = new BgpGlue(prog, pino({ level: 'silent' }));
    speaker = glue.speaker;
    await glue.start();
    const s = speaker;
    const fibBase = prog.env.fib.size; // the default route

    const t0 = Date.now();
    source.cli('enable calitap1');
    source.cli('enable sink');

    let calitapDone = 0;
    let birdDone = 0;
    const calitapWait = waitUntil(
      () => {
        if (prog.env.fib.size - fibBase === n) calitapDone = Date.now();
        return calitapDone;
      },
      900_000,
      'calitap FIB complete',
    );
    const birdWait = (async () => {
      while (!birdDone) {
        const m = /(\d+) of \d+ routes/.exec(await sink.cliAsync('show route protocol upstream count'));
        if (m && Number(m[1]) === n) birdDone = Date.now();
        else await new Promise((r) => setTimeout(r, 100));
        if (Date.now() - t0 > 900_000) throw new Error('BIRD sink did not complete');
      }
    })();
    await Promise.all([calitapWait, birdWait]);
    const calitapEst = Date.parse(s.status()[0].since);
    const birdEst = birdSince(sink.cli('show protocols upstream'));
    const mem = process.memoryUsage();
    return {
      routes: n,
      calitapMs: calitapDone - calitapEst,
      calitapFromEnableMs: calitapDone - t0,
      calitapRssMiB: mem.rss / 2 ** 20,
      calitapHeapMiB: mem.heapUsed / 2 ** 20,
      birdMs: birdDone - birdEst,
      birdFromEnableMs: birdDone - t0,
      birdRssMiB: rssOf(sink.child!.pid!),
    };
  } catch (e) {
    for (const name of ['source', 'sink'])
      console.error(`--- ${name} log ---\n${lab.log(name).slice(-3000)}`);
    throw e;
  } finally {
    await speaker?.abort();
    await lab.destroy();
  }
}

async function main(): Promise<void> {
  // make sure namespaces and daemons are cleaned up on Ctrl-C (the lab cleans up at exit)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  if (!isRoot || !have('bird') || !have('birdc')) {
    console.error('bgp bench: skipped: needs root (network namespaces) and bird2 (bird, birdc)');
    return;
  }
  const one = process.argv.indexOf('--one');
  if (one > 0) {
    // child mode: one size, result as JSON on stdout (a fresh process, so RSS is this run's alone)
    console.log(JSON.stringify(await runOnce(Number(process.argv[one + 1]))));
    return;
  }
  const arg = process.argv.indexOf('--routes');
  const sizes = arg > 0 ? process.argv[arg + 1].split(',').map(Number) : [100_000, 1_000_000];
  const rows: Result[] = [];
  for (const n of sizes) {
    console.error(`bgp bench: ${n} routes...`);
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--one', String(n)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    });
    rows.push(JSON.parse(out.trim().split('\n').at(-1)!) as Result);
  }
  const fmt = (ms: number) => (ms / 1000).toFixed(2);
  const head = [
    'routes',
    'calitap s',
    'calitap s (from enable)',
    'calitap RSS MiB',
    'calitap heap MiB',
    'BIRD s',
    'BIRD s (from enable)',
    'BIRD RSS MiB',
  ];
  const table = rows.map((r) => [
    String(r.routes),
    fmt(r.calitapMs),
    fmt(r.calitapFromEnableMs),
    r.calitapRssMiB.toFixed(0),
    r.calitapHeapMiB.toFixed(0),
    fmt(r.birdMs),
    fmt(r.birdFromEnableMs),
    r.birdRssMiB.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padStart(widths[i])).join(' | ') + ' |';
  console.log(line(head));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const row of table) console.log(line(row));
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
