// GRO on the uplink vs off, IPIP Always (or another lab mode), cross host, one TCP stream: the same
// lab twice (uplinkGro off, then on), `iperf3 -t <s>` a few times in each, printing per run the
// throughput, the calitap daemons' CPU seconds (sender host 1, receiver host 2), what the receiver
// decapsulated and how many tunnel super-frames its uplink received, and the load average.
// Run (root): `npm run build && node dist/bench/uplink-gro.bench.js [mode] [runs] [seconds]`
// (defaults: ipip 3 5). Results: docs/live.md "GRO on the uplink".
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Lab, nsExec, type LabMode } from '../src/lab/lab.js';

const mode = (process.argv[2] ?? 'ipip') as LabMode;
const runs = Number(process.argv[3] ?? 3);
const seconds = Number(process.argv[4] ?? 5);

function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks (USER_HZ 100)
}

async function once(gro: boolean): Promise<void> {
  const lab = Lab.create({ prefix: `ug${process.pid % 1e4}`, mode, hosts: 2, workers: 2, uplinkGro: gro });
  const stat = async (k: number, key: string): Promise<number> => {
    const s = (await lab.api(k, 'stats')) as { counters: { node: string; reason: string; count: number }[] };
    return s.counters.filter((c) => `${c.node}: ${c.reason}` === key).reduce((a, c) => a + c.count, 0);
  };
  try {
    for (const k of [1, 2]) await lab.start(k);
    const w1 = await lab.addWorkload(1);
    const w2 = await lab.addWorkload(2);
    for (let t = 0; t < 40; t++) {
      if (nsExec(w1.ns, ['ping', '-c1', '-W1', w2.ip], { allowFail: true }) !== '') break;
    }
    const pid = (k: number): number => lab.hosts[k - 1].daemon!.pid!;
    for (let r = 0; r < runs; r++) {
      const srv = spawn('ip', ['netns', 'exec', w2.ns, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
      await new Promise((res) => setTimeout(res, 500));
      const c1 = cpuSeconds(pid(1));
      const c2 = cpuSeconds(pid(2));
      const d0 = await stat(2, 'ipip4-input: decapsulated');
      const g0 = await stat(2, 'port-input: gso-tunnel-received');
      const out = execFileSync(
        'ip',
        ['netns', 'exec', w1.ns, 'iperf3', '-c', w2.ip, '-t', String(seconds), '-J'],
        { encoding: 'utf8', timeout: (seconds + 20) * 1000 },
      );
      const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
      srv.kill();
      const line = [
        `${mode} gro ${gro ? 'on ' : 'off'}`,
        `${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`,
        `cpu sender ${(cpuSeconds(pid(1)) - c1).toFixed(2)} s receiver ${(cpuSeconds(pid(2)) - c2).toFixed(2)} s`,
        `decapsulated ${(await stat(2, 'ipip4-input: decapsulated')) - d0}`,
        `tunnel super-frames ${(await stat(2, 'port-input: gso-tunnel-received')) - g0}`,
        `load ${os
          .loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
        new Date().toISOString(),
      ];
      console.log(line.join(' | '));
    }
  } finally {
    await lab.destroyAsync();
  }
}

await once(false);
await once(true);
