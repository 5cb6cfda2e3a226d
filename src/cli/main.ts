// calitap command-line entry point. Every failure prints one line `calitap: <why>` and exits non-zero
// (2 for bad usage or configuration, 1 otherwise); no stack traces for expected errors.
import { Command, CommanderError } from 'commander';
import { CalitapError } from '../common/errors.js';
import { runReplay } from './replay.js';
import { runDemo } from './demo.js';

function out(s: string): void {
  process.stdout.write(s + '\n');
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('calitap')
    .description("Userspace router for Project Calico's data path over TAP devices")
    .exitOverride()
    .showHelpAfterError(false);
  program
    .command('replay')
    .description('replay capture files through the forwarding graph; write what each port sends')
    .requiredOption('--config <file>', 'Calico v3 resources + calitap Uplink (YAML)')
    .requiredOption('--node <name>', 'the node to act as')
    .option('--in <port=file>', 'input capture for a port (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'directory for <port>.pcap outputs')
    .option('--trace', 'print what each node decided for each frame')
    .option('--json', 'print the counters as one JSON object')
    .option('--seed <n>', 'seed for random choices (NAT ports)', '0')
    .action((o) => {
      runReplay(o, out);
    });
  program
    .command('demo')
    .description('replay the sample captures against the sample config with a trace')
    .action(() => runDemo(out));
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof CalitapError) {
      process.stderr.write(`calitap: ${e.message}\n`);
      process.exitCode = e.code === 'usage' || e.code === 'config-invalid' ? 2 : 1;
      return;
    }
    throw e;
  }
}
