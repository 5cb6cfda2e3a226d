// Network namespaces a lab (calitap's, or the kernel-comparison one in bench/) creates and removes:
// every name carries the lab's prefix, and destroy() removes exactly the ones this set added.
import { execFileSync } from 'node:child_process';

export class Namespaces {
  private readonly names: string[] = [];

  constructor(readonly prefix: string) {}

  /** Creates `<prefix><name>` with its loopback up; returns the full name. */
  add(name: string): string {
    const n = `${this.prefix}${name}`;
    execFileSync('ip', ['netns', 'add', n], { stdio: 'pipe' });
    this.names.push(n);
    execFileSync('ip', ['-n', n, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
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
