// tapOpen({ netns }): re-attaching queues of a persistent multi-queue TAP that lives in a workload's
// network namespace (the daemon-restart path). The tun driver binds /dev/net/tun to the namespace it
// was opened in, so the addon setns()es the calling thread there for the open() and back right after.
// Live (root): a TAP made in the root namespace is moved into a test namespace and renamed eth0, every
// fd is closed (carrier drops), then queues are opened again by namespace path (/var/run/netns/NAME,
// /proc/PID/ns/net, and from a worker thread): carrier returns, the kernel there answers an ARP
// request we write, and the calling thread is back in its own namespace after every call, success or
// failure. Also: unprivileged callers get EPERM from setns, and a failing return setns aborts the
// process (an LD_PRELOAD shim makes it fail in a child). Argument checks run without root.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import {
  ADDON,
  ip,
  ipv4,
  linkStats,
  liveSkipReason,
  parseArp,
  pumpAsync,
  RxBatch,
  sleep,
  tryIp,
  writeArp,
} from './helpers.js';

const pid = process.pid;
const NS = `ctnns${pid}`;
const NS_PATH = `/var/run/netns/${NS}`;
const TAP = `ctn${pid}`;
const fds: number[] = [];

/** The calling thread's network namespace, e.g. 'net:[4026531840]'. */
const threadNs = (): string => readlinkSync('/proc/thread-self/ns/net');

function thrown(f: () => unknown): Error & { code?: string; errno?: number; syscall?: string } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

function closeAll(): void {
  while (fds.length) {
    try {
      io.close(fds.pop()!);
    } catch {
      /* already closed */
    }
  }
}

/** `ip -j link show` of dev in NS: flags and ifindex. */
function link(dev: string): { ifindex: number; flags: string[]; operstate: string } {
  return (JSON.parse(ip('-n', NS, '-j', 'link', 'show', 'dev', dev)) as never[])[0];
}

const rootLinks = (): string[] =>
  (JSON.parse(ip('-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname).sort();

describe('tapOpen netns option: argument checks', () => {
  it('rejects a non-string, empty or over-long netns before touching any namespace', () => {
    const before = threadNs();
    const n = io.loadNative();
    const t1 = thrown(() => n.tapOpen('eth0', { netns: 5 as unknown as string }));
    expect(t1).toBeInstanceOf(TypeError);
    expect(t1.message).toBe('tapOpen: options.netns must be a string');
    const t2 = thrown(() => io.tapOpen('eth0', { netns: '' }));
    expect(t2).toBeInstanceOf(TypeError);
    expect(t2.message).toMatch(/options\.netns must be a non-empty path/);
    const t3 = thrown(() => io.tapOpen('eth0', { netns: '/x'.repeat(200) }));
    expect(t3).toBeInstanceOf(RangeError);
    expect(t3.message).toMatch(/options\.netns is 400 bytes, longer than 255/);
    expect(thrown(() => io.tapOpen('eth0', { netns: 'a\0b' }))).toBeInstanceOf(TypeError);
    expect(threadNs()).toBe(before);
  });

  it('a missing namespace file: ENOENT naming the path, thread unchanged', () => {
    const before = threadNs();
    const bad = `/var/run/netns/ctn-missing-${pid}`;
    const e = thrown(() => io.tapOpen('eth0', { multiQueue: true, netns: bad }));
    expect(e.message).toBe(`tapOpen("eth0", netns=${bad}): open: No such file or directory (ENOENT)`);
    expect([e.code, e.syscall, e.errno]).toEqual(['ENOENT', 'open', 2]);
    expect(threadNs()).toBe(before);
  });
});

describe.skipIf(liveSkipReason !== '')(
  `tapOpen in another network namespace (live${liveSkipReason ? `: skipped, ${liveSkipReason}` : ''})`,
  () => {
    let rootNs = '';
    let holder: ChildProcess | undefined;

    beforeAll(() => {
      rootNs = threadNs();
      tryIp('netns', 'del', NS);
      tryIp('link', 'del', TAP);
      ip('netns', 'add', NS);
      ip('-n', NS, 'link', 'set', 'lo', 'up');
    });

    afterAll(() => {
      closeAll();
      holder?.kill('SIGKILL');
      tryIp('netns', 'del', NS); // takes the persistent eth0 with it
      tryIp('link', 'del', TAP);
    });

    it('re-opens both queues of a persistent multi-queue TAP moved into a namespace as eth0', async () => {
      // The workload's TAP as calitap made it: two queues, persistent, moved and renamed.
      for (let i = 0; i < 2; i++) fds.push(io.tapOpen(TAP, { multiQueue: true, persist: true }).fd);
      ip('link', 'set', TAP, 'netns', NS);
      ip('-n', NS, 'link', 'set', TAP, 'name', 'eth0', 'up');
      ip('-n', NS, 'addr', 'add', '10.252.0.1/24', 'dev', 'eth0');
      const { ifindex } = link('eth0');

      // Daemon restart: every queue fd closed; the interface stays (persist) with no carrier.
      closeAll();
      expect(link('eth0').ifindex).toBe(ifindex);
      expect(link('eth0').flags).toContain('NO-CARRIER');
      const rootBefore = rootLinks();

      // Queue 0 by bind-mount path; queue 1 by /proc/PID/ns/net of a process living in the namespace.
      const q0 = io.tapOpen('eth0', { multiQueue: true, persist: true, netns: NS_PATH });
      fds.push(q0.fd);
      expect(q0.name).toBe('eth0');
      expect(threadNs()).toBe(rootNs);
      holder = spawn('ip', ['netns', 'exec', NS, 'sleep', '60'], { stdio: 'ignore' });
      const procPath = `/proc/${holder.pid}/ns/net`;
      for (let i = 0; i < 100 && readlinkSync(procPath) === rootNs; i++) await sleep(20);
      expect(readlinkSync(procPath)).not.toBe(rootNs);
      const q1 = io.tapOpen('eth0', { multiQueue: true, persist: true, netns: procPath });
      fds.push(q1.fd);
      expect(q1.name).toBe('eth0');
      expect(q1.fd).not.toBe(q0.fd);
      expect(threadNs()).toBe(rootNs);

      // Same interface, not a new one; nothing appeared in the root namespace; carrier is back.
      expect(link('eth0').ifindex).toBe(ifindex);
      expect(rootLinks()).toEqual(rootBefore);
      const flags = link('eth0').flags;
      expect(flags).toContain('LOWER_UP');
      expect(flags).not.toContain('NO-CARRIER');

      // An ARP request for 10.252.0.1 written on each queue: the namespace's kernel counts both and
      // answers (on whichever queue its hash picks).
      const peerMac = '02:00:00:00:52:02';
      const rxBefore = linkStats('eth0', NS).rx;
      const tx = new RxBatch(1);
      for (const q of [q0.fd, q1.fd]) {
        tx.lens[0] = writeArp(
          tx.u8,
          tx.offsets[0],
          1,
          'ff:ff:ff:ff:ff:ff',
          peerMac,
          '10.252.0.2',
          '00:00:00:00:00:00',
          '10.252.0.1',
        );
        expect(io.writeBatch(q, tx.u8, tx.offsets, tx.lens, 1)).toBe(1);
      }
      const b = new RxBatch(32);
      let replies = 0;
      await pumpAsync(
        [q0.fd, q1.fd],
        b,
        5000,
        (_k, batch, i) => {
          const arp = parseArp(batch.u8, batch.offsets[i], batch.lens[i]);
          if (arp?.op === 2 && arp.spa === ipv4('10.252.0.1') && arp.tpa === ipv4('10.252.0.2')) replies++;
        },
        () => replies >= 1,
      );
      expect(replies).toBeGreaterThanOrEqual(1);
      expect(linkStats('eth0', NS).rx - rxBefore).toBeGreaterThanOrEqual(2);
      expect(ip('-n', NS, 'neigh', 'show', '10.252.0.2')).toContain(peerMac);
    });

    it('from a worker thread: only that thread switches, and it comes back', async () => {
      const src = `
        const { parentPort, workerData } = require('node:worker_threads');
        const { readlinkSync } = require('node:fs');
        const m = require(workerData.addon);
        const before = readlinkSync('/proc/thread-self/ns/net');
        let fd = -1, err = '';
        try { fd = m.tapOpen('eth0', { multiQueue: true, persist: true, netns: workerData.ns }).fd; }
        catch (e) { err = e.message; }
        let bad = '';
        try { m.tapOpen('eth0', { multiQueue: true, netns: '/proc/self/ns/uts' }); }
        catch (e) { bad = e.message; }
        parentPort.postMessage({ before, after: readlinkSync('/proc/thread-self/ns/net'), fd, err, bad });
      `;
      const w = new Worker(src, { eval: true, workerData: { addon: ADDON, ns: NS_PATH } });
      const r = await new Promise<{ before: string; after: string; fd: number; err: string; bad: string }>(
        (resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        },
      );
      await w.terminate();
      if (r.fd >= 0) fds.push(r.fd);
      expect(r.err).toBe('');
      expect(r.fd).toBeGreaterThanOrEqual(0);
      expect(r.before).toBe(rootNs);
      expect(r.after).toBe(rootNs);
      expect(r.bad).toBe('tapOpen("eth0", netns=/proc/self/ns/uts): setns: Invalid argument (EINVAL)');
      expect(threadNs()).toBe(rootNs);
      io.close(fds.pop()!); // the third queue: eth0 keeps its carrier with two left
      expect(link('eth0').flags).toContain('LOWER_UP');
    });

    it('bad namespace files: clear errors naming the path, thread stays in the root namespace', () => {
      const cases: [string, RegExp][] = [
        [`/var/run/netns/ctn-missing-${pid}`, /: open: No such file or directory \(ENOENT\)$/],
        ['/proc/self/ns/uts', /: setns: Invalid argument \(EINVAL\)$/], // a namespace, not a network one
        ['/etc/hostname', /: setns: Invalid argument \(EINVAL\)$/], // not a namespace at all
        ['/var/run/netns', /: setns: Invalid argument \(EINVAL\)$/], // a directory
      ];
      for (const [path, re] of cases) {
        const e = thrown(() => io.tapOpen('eth0', { multiQueue: true, netns: path }));
        expect(e.message.startsWith(`tapOpen("eth0", netns=${path}): `), e.message).toBe(true);
        expect(e.message).toMatch(re);
        expect(threadNs()).toBe(rootNs);
      }
      // Errors after the open name the namespace too: a single-queue open of the multi-queue eth0.
      const e = thrown(() => io.tapOpen('eth0', { netns: NS_PATH }));
      expect(e.message).toBe(`tapOpen("eth0", netns=${NS_PATH}): TUNSETIFF: Invalid argument (EINVAL)`);
      expect(threadNs()).toBe(rootNs);
    });

    it('an unprivileged caller gets EPERM from setns and stays in its namespace', () => {
      const probe = `
        const fs = require('node:fs');
        const m = require(${JSON.stringify(ADDON ?? '')});
        process.setgid(65534); process.setuid(65534);
        const before = fs.readlinkSync('/proc/thread-self/ns/net');
        let msg = '';
        try { m.tapOpen('eth0', { multiQueue: true, netns: ${JSON.stringify(NS_PATH)} }); msg = 'ok'; }
        catch (e) { msg = e.code + ' ' + e.message; }
        console.log(JSON.stringify({ msg, same: fs.readlinkSync('/proc/thread-self/ns/net') === before }));
      `;
      const p = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
      expect(p.status, p.stderr).toBe(0);
      const r = JSON.parse(p.stdout) as { msg: string; same: boolean };
      expect(r.msg).toBe(`EPERM tapOpen("eth0", netns=${NS_PATH}): setns: Operation not permitted (EPERM)`);
      expect(r.same).toBe(true);
    });

    const cc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
    it.skipIf(!cc)(
      `aborts the process when it cannot return to its namespace${cc ? '' : ' (skipped: needs cc)'}`,
      () => {
        // An LD_PRELOAD shim fails the second setns() (the way back) with EPERM.
        const dir = mkdtempSync(join(tmpdir(), 'calitap-setns-'));
        try {
          const c = join(dir, 'shim.c');
          const so = join(dir, 'shim.so');
          writeFileSync(
            c,
            `#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
static int calls;
int setns(int fd, int nstype) {
  int (*real)(int, int) = (int (*)(int, int))dlsym(RTLD_NEXT, "setns");
  if (++calls == 2) { errno = EPERM; return -1; }
  return real(fd, nstype);
}
`,
          );
          const b = spawnSync('cc', ['-shared', '-fPIC', '-o', so, c, '-ldl'], { encoding: 'utf8' });
          expect(b.status, b.stderr).toBe(0);
          const probe = `require(${JSON.stringify(ADDON ?? '')}).tapOpen('eth0', { multiQueue: true, netns: ${JSON.stringify(NS_PATH)} }); console.log('returned');`;
          const p = spawnSync(process.execPath, ['-e', probe], {
            encoding: 'utf8',
            env: { ...process.env, LD_PRELOAD: so },
          });
          expect(p.signal).toBe('SIGABRT');
          expect(p.stdout).not.toContain('returned');
          expect(p.stderr).toMatch(
            new RegExp(
              `calitap_io: FATAL: tapOpen\\("eth0", netns=${NS_PATH}\\): cannot return thread \\d+ to its network namespace \\(/proc/thread-self/ns/net\\): setns: Operation not permitted \\(EPERM\\); aborting`,
            ),
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  },
);
