// A real etcd (Debian's etcd-server) for tests and the datastore bench: started inside a network
// namespace this helper creates, listening on the namespace's end of a veth pair (10.251.<pid>.2), so
// this process reaches it from the root namespace and nothing else can. Everything carries a pid-based
// prefix and is removed by destroy(); only the etcd process this helper started is ever signalled.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sh } from './lab.js';

export function haveEtcd(): boolean {
  return fs.existsSync('/usr/bin/etcd') && fs.existsSync('/usr/bin/etcdctl') && process.getuid?.() === 0;
}

export class NamespacedEtcd {
  readonly ns: string;
  readonly url: string;
  readonly dir: string;
  private proc: ChildProcess | null = null;
  private readonly ip: string;

  constructor(tag: string) {
    const n = process.pid % 250;
    this.ns = `${tag}${process.pid % 1000}e`;
    this.ip = `10.251.${n}.2`;
    this.url = `http://${this.ip}:2379`;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-etcd-'));
    const host = `${tag}${process.pid % 1000}v`;
    sh('ip', ['netns', 'add', this.ns]);
    sh('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns]);
    sh('ip', ['addr', 'add', `10.251.${n}.1/30`, 'dev', host]);
    sh('ip', ['link', 'set', host, 'up']);
    sh('ip', ['-n', this.ns, 'addr', 'add', `${this.ip}/30`, 'dev', 'eth0']);
    sh('ip', ['-n', this.ns, 'link', 'set', 'eth0', 'up']);
  }

  async start(timeoutMs = 20_000): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'etcd.log'), 'a');
    this.proc = spawn(
      'ip',
      [
        ...['netns', 'exec', this.ns, 'etcd', '--name', 't', '--data-dir', path.join(this.dir, 'data')],
        ...['--listen-client-urls', this.url, '--advertise-client-urls', this.url],
        ...[
          '--listen-peer-urls',
          'http://127.0.0.1:2380',
          '--initial-advertise-peer-urls',
          'http://127.0.0.1:2380',
        ],
        ...['--initial-cluster', 't=http://127.0.0.1:2380'],
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const deadline = Date.now() + timeoutMs;
    while (!this.ctl(['endpoint', 'status'], true).includes(this.url)) {
      if (this.proc.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `etcd did not start: ${fs.readFileSync(path.join(this.dir, 'etcd.log'), 'utf8').slice(-1500)}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
    this.proc = null;
  }

  ctl(args: string[], allowFail = false): string {
    return sh('ip', ['netns', 'exec', this.ns, 'etcdctl', '--endpoints', this.url, ...args], { allowFail });
  }

  /** Compacts history up to the current revision. */
  compact(): number {
    const j = JSON.parse(this.ctl(['endpoint', 'status', '-w', 'json'])) as {
      Status: { header: { revision: number } };
    }[];
    const rev = j[0].Status.header.revision;
    this.ctl(['compact', String(rev)]);
    return rev;
  }

  async destroy(): Promise<void> {
    if (this.proc !== null && this.proc.exitCode === null) this.proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    sh('ip', ['netns', 'del', this.ns], { allowFail: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
