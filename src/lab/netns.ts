// Network namespaces a lab (calitap's, or the kernel-comparison one in bench/) creates and removes:
// every name carries the lab's prefix, and destroy() removes exactly the ones this set added.
import { execFileSync } from 'node:child_process';
import { DeviceError } from '../common/errors.js';

export class Namespaces {
  private readonly names: string[] = [];

  constructor(readonly prefix: string) {}

  /** Creates `<prefix><name>` with its loopback up; returns the full name. */
  add(name: string): string {
    const n = `${this.prefix}${name}`;
    ip(['netns', 'add', n]);
    this.names.push(n);
    ip(['-n', n, 'link', 'set', 'lo', 'up']);
    return n;
  }

  /** Removes every namespace this set created (newest first), ignoring ones already gone. */
  destroy(): void {
    for (const n of this.names.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'pipe' });
      } catch {
        /* already gone */
      }
    }
    this.names.length = 0;
  }
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer | string; message: string };
    const why = (String(err.stderr ?? '').trim() || err.message).split('\n')[0];
    throw new DeviceError('ip-command', `ip ${args.join(' ')}: ${why}`, { cause: e });
  }
}
