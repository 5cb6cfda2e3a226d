// `npm run demo` (replay flavour): replays the sample captures in pcaps/ against the sample config
// with a trace, so a newcomer sees every routing decision. The live demo (TAP workloads in network
// namespaces) replaces this when run as root once the live dataplane exists.
import * as path from 'node:path';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runReplay } from './replay.js';
import { LAB_MODES, runLiveDemo } from './demo-live.js';
import type { LabMode } from '../lab/lab.js';
import { UsageError } from '../common/errors.js';

export function repoRoot(): string {
  // dist/src/cli/demo.js → repo root
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** `calitap demo`: the live cluster as root, else the replay demo (and say why). */
export async function runDemo(
  print: (s: string) => void,
  opts: { mode?: string; replay?: boolean } = {},
): Promise<void> {
  const mode = (opts.mode ?? 'ipip') as LabMode;
  if (!LAB_MODES.includes(mode))
    throw new UsageError(`--mode ${opts.mode}: expected one of ${LAB_MODES.join(', ')}`);
  if (!opts.replay) {
    if (process.getuid?.() === 0) {
      await runLiveDemo(mode, print);
      return;
    }
    print(
      'not root: the live demo needs network namespaces and TAP devices; running the replay demo instead\n',
    );
  }
  runReplayDemo(print);
}

export function runReplayDemo(print: (s: string) => void): void {
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
