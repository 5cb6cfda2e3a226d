// calitap command-line entry point. Every failure prints one line `calitap: <why>` and exits non-zero
// (2 for bad usage or configuration, 1 otherwise; see report.ts); only bugs print a stack.
import { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import { reportError } from './report.js';
import { packageVersion } from './version.js';
import { runReplay } from './replay.js';
import { runDemo } from './demo.js';
import { runBench } from './bench.js';
import { cmdRoutes, cmdStats, cmdStatus, cmdWorkload } from './control.js';
import { DEFAULT_SOCKET } from '../control/daemon/api.js';
import { registerResourceCommands } from './resources.js';
import { chooseDatastore } from '../control/datastore/open.js';

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
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .exitOverride()
    .showHelpAfterError(false)
    // parse errors are printed by main() as one `calitap: ...` line, like every other error
    .configureOutput({ writeErr: (s) => (s.startsWith('error:') ? undefined : process.stderr.write(s)) });
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
    .option('--quiet', 'no progress line on stderr (it only shows on a terminal, for runs over 2 s)')
    .action((o) => {
      runReplay(o, out);
    });
  program
    .command('run')
    .description('run the daemon: dataplane workers + control plane (BGP, workloads, control API)')
    .option('--config <file>', 'the file datastore: Calico v3 resources + calitap Uplink (YAML)')
    .option('--datastore <type>', 'etcdv3 or file (default: DATASTORE_TYPE, or file with --config)')
    .option('--etcd-endpoints <urls>', 'etcd endpoints, comma-separated (default: ETCD_ENDPOINTS)')
    .option('--ip <addr>', "this node's IPv4 address[/len] for the datastore (default: IP, else autodetect)")
    .requiredOption('--node <name>', 'the node to act as')
    .option('--socket <path>', 'control API socket', DEFAULT_SOCKET)
    .option('--state <file>', 'workload state file', '/var/lib/calitap/workloads.json')
    .option('--workers <n>', 'dataplane worker threads (default: number of cores)')
    .option('--metrics <port>', 'serve Prometheus metrics on 127.0.0.1:<port>')
    .option('--no-bgp', 'do not start the BGP speaker')
    .option(
      '--no-offload',
      'plain workload TAPs: no IFF_VNET_HDR/TSO super-frames (old kernels; default: on)',
    )
    .option('--tap-offload', 'accepted for compatibility: offloads are on by default (no-op)')
    .option(
      '--host-interface <name>',
      "the host's TAP to its workloads (routes to the pools)",
      'calitap-host0',
    )
    .option('--no-host-interface', 'no host TAP: the host cannot reach its workloads, nor they it')
    .option(
      '--uplink <mode>',
      'uplink: packet (AF_PACKET) or udp (VXLAN over a kernel UDP socket, no CAP_NET_RAW)',
      'packet',
    )
    .action(async (o) => {
      if (o.uplink !== 'packet' && o.uplink !== 'udp')
        throw new UsageError(`--uplink ${o.uplink}: expected packet or udp`);
      const choice = chooseDatastore(o);
      const { runLiveDaemon } = await import('../control/daemon/live-config.js');
      await runLiveDaemon({
        choice,
        ip: o.ip,
        config: o.config ?? '',
        node: o.node,
        socket: o.socket,
        stateFile: o.state,
        workers: o.workers === undefined ? undefined : positiveInt('--workers', o.workers),
        metricsPort: o.metrics === undefined ? undefined : positiveInt('--metrics', o.metrics),
        bgp: o.bgp,
        uplink: o.uplink,
        offload: o.offload !== false,
        hostInterface: o.hostInterface === false ? false : String(o.hostInterface),
      });
      await new Promise(() => {}); // until a signal stops the daemon
    });
  for (const [name, desc, fn] of [
    ['status', 'BGP peers, as calicoctl node status', cmdStatus],
    ['routes', 'the FIB: prefix, next hop, via, port, source', cmdRoutes],
    ['stats', 'per-port and per-reason counters summed over workers', cmdStats],
  ] as const) {
    program
      .command(name)
      .description(desc)
      .option('--socket <path>', 'control API socket', DEFAULT_SOCKET)
      .option('--json', 'JSON output')
      .action((o) => fn(o.socket, o.json === true, out));
  }
  const wl = program.command('workload').description('attach or detach workloads (what the CNI plugin does)');
  wl.command('add')
    .requiredOption('--name <name>', 'workload name')
    .requiredOption('--netns <ns>', 'network namespace (name under /var/run/netns, or a path)')
    .option('--ip <ip>', 'address (default: next free in this node’s blocks)')
    .option('--mac <mac>', 'MAC of eth0 (default: the kernel’s)')
    .option('--namespace <ns>', 'the WorkloadEndpoint’s namespace (policy; datastore: written there)')
    .option(
      '--label <k=v>',
      'a WorkloadEndpoint label (repeatable; policy; datastore: written there)',
      collect,
      [],
    )
    .option('--socket <path>', 'control API socket', DEFAULT_SOCKET)
    .action((o) =>
      cmdWorkload(
        o.socket,
        'add',
        { name: o.name, netns: o.netns, ip: o.ip, mac: o.mac, namespace: o.namespace, labels: o.label },
        true,
        out,
      ),
    );
  wl.command('del')
    .requiredOption('--name <name>', 'workload name')
    .option('--socket <path>', 'control API socket', DEFAULT_SOCKET)
    .action((o) => cmdWorkload(o.socket, 'del', { name: o.name }, true, out));
  wl.command('list')
    .option('--socket <path>', 'control API socket', DEFAULT_SOCKET)
    .option('--json', 'JSON output')
    .action((o) => cmdWorkload(o.socket, 'list', {}, o.json === true, out));
  program
    .command('bench')
    .description(
      'throughput benchmarks (see bench/RESULTS.md): graph replay fib pcap nat encap snat policy, live, bgp',
    )
    .argument('[names...]', 'benches to run (default: every in-memory one; live and bgp need root)')
    .option('--quick', 'short runs')
    .action((names: string[], o: { quick?: boolean }) => runBench(names, { quick: o.quick === true }));
  registerResourceCommands(program, out);
  program
    .command('demo')
    .description('as root: a live 3-host cluster in network namespaces; otherwise the replay demo')
    .option('--mode <mode>', 'routing mode: ipip, vxlan, ipip-crosssubnet, vxlan-crosssubnet, never', 'ipip')
    .option('--replay', 'replay the sample captures with a trace instead')
    .action((o) => runDemo(out, { mode: o.mode, replay: o.replay === true }));
  return program;
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} ${v}: expected a positive integer`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    process.exitCode = reportError(e, (s) => process.stderr.write(s));
  }
}
