// Test lab for interop tests with real BGP daemons: one network namespace per lab, joined to the
// root namespace by a veth pair created for the test (root end 10.200.N.1/24, namespace end
// 10.200.N.2/24). calitap's speakers run in the vitest process in the root namespace on the root
// end (and extra addresses on it); the daemons run inside the namespace. Only processes started
// here are killed (by pid), and the namespace and veth are always deleted in `destroy()`.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const isRoot = process.getuid?.() === 0;

export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function sh(cmd: string, args: string[], timeout = 15_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

const labs = new Set<Lab>();
process.once('exit', () => {
  for (const l of labs) l.destroySync();
});

export class Lab {
  readonly ns: string;
  readonly vethRoot: string;
  readonly vethNs: string;
  readonly dir: string;
  private readonly procs: { name: string; child: ChildProcess; log: string }[] = [];
  private destroyed = false;

  private constructor(
    readonly tag: string,
    readonly n: number,
  ) {
    this.ns = `ctbgp-${process.pid}-${tag}`;
    this.vethRoot = `ctb${process.pid % 100000}${tag}`.slice(0, 15);
    this.vethNs = `ctn${process.pid % 100000}${tag}`.slice(0, 15);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `ctbgp-${tag}-`));
  }

  /** 10.200.N.i: .1 and extra addresses are in the root namespace, .2 in the lab namespace */
  ip(i: number): string {
    return `10.200.${this.n}.${i}`;
  }

  static create(tag: string): Lab {
    const used = sh('ip', ['-4', '-o', 'addr', 'show']);
    let n = 10 + ((process.pid * 7 + tag.charCodeAt(0)) % 240);
    for (let i = 0; i < 240 && used.includes(`10.200.${n}.`); i++) n = 10 + ((n - 10 + 1) % 240);
    const lab = new Lab(tag, n);
    labs.add(lab);
    try {
      sh('ip', ['netns', 'add', lab.ns]);
      sh('ip', ['link', 'add', lab.vethRoot, 'type', 'veth', 'peer', 'name', lab.vethNs]);
      sh('ip', ['link', 'set', lab.vethNs, 'netns', lab.ns]);
      sh('ip', ['addr', 'add', `${lab.ip(1)}/24`, 'dev', lab.vethRoot]);
      sh('ip', ['link', 'set', lab.vethRoot, 'up']);
      lab.exec('ip', ['addr', 'add', `${lab.ip(2)}/24`, 'dev', lab.vethNs]);
      lab.exec('ip', ['link', 'set', lab.vethNs, 'up']);
      lab.exec('ip', ['link', 'set', 'lo', 'up']);
    } catch (e) {
      lab.destroySync();
      throw e;
    }
    return lab;
  }

  /** Adds 10.200.N.i/24 to the root end of the veth (more calitap speakers). */
  addRootAddress(i: number): string {
    sh('ip', ['addr', 'add', `${this.ip(i)}/24`, 'dev', this.vethRoot]);
    return this.ip(i);
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string, args: string[], timeout = 15_000): string {
    return sh('ip', ['netns', 'exec', this.ns, cmd, ...args], timeout);
  }

  /** Starts a long-running command inside the namespace; stdout/stderr go to `<dir>/<name>.log`. */
  spawn(name: string, cmd: string, args: string[]): ChildProcess {
    const log = path.join(this.dir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    // `ip netns exec` execs the command, so the child's pid is the daemon's pid.
    const child = spawn('ip', ['netns', 'exec', this.ns, cmd, ...args], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.procs.push({ name, child, log });
    return child;
  }

  log(name: string): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  writeFile(name: string, text: string): string {
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, text);
    return p;
  }

  /** Sends a signal to one process this lab started. */
  signal(child: ChildProcess, sig: NodeJS.Signals): void {
    if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, sig);
  }

  /** Kills one process this lab started and waits for it to exit. */
  async kill(child: ChildProcess, sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, sig);
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    await exited;
    clearTimeout(t);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.kill(p.child, 'SIGTERM', 3000)));
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    labs.delete(this);
    for (const p of this.procs) {
      try {
        if (p.child.pid && p.child.exitCode === null && p.child.signalCode === null)
          process.kill(p.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const args of [
      ['link', 'del', this.vethRoot],
      ['netns', 'del', this.ns],
    ]) {
      try {
        execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
