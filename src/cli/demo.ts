// `npm run demo` (replay flavour): replays the sample captures in pcaps/ against the sample config
// with a trace, so a newcomer sees every routing decision. The live demo (TAP workloads in network
// namespaces) replaces this when run as root once the live dataplane exists.
import * as path from 'node:path';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runReplay } from './replay.js';

export function repoRoot(): string {
  // dist/src/cli/demo.js → repo root
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function runDemo(print: (s: string) => void): void {
  const root = repoRoot();
  const pcaps = path.join(root, 'pcaps');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-demo-'));
  print('calitap demo: replaying pcaps/demo-*.pcap against pcaps/sample-config.yaml as node-a\n');
  runReplay(
    {
      config: path.join(pcaps, 'sample-config.yaml'),
      node: 'node-a',
      in: [
        `cali1a2b3c4d5e6=${path.join(pcaps, 'demo-workload.pcap')}`,
        `uplink=${path.join(pcaps, 'demo-uplink.pcap')}`,
      ],
      out,
      trace: true,
    },
    print,
  );
  print(`\noutputs: ${out}/<port>.pcap (read them with tcpdump -r or tshark -r)`);
}
