// Waiting over calitap_io (native/poll.c): poll(2), epoll and eventfds.
//
// What flows through it: fds and ready-fd lists (Int32Arrays the caller owns, written during the
// call). Which thread runs it: any, but poll()/epollWait() block the calling thread: use them in
// workers (or with timeout 0 on the main thread). Worker.terminate() cannot interrupt a thread
// blocked in a syscall: give every worker a wake eventfd in its epoll set (eventfdWrite it to stop or
// reload) or a finite timeout.
import { modes, nb } from './load.js';

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
/** Most fds one poll() takes (the result is a bitmap). */
export const POLL_MAX = 31;

/**
 * poll(2) on up to 31 fds for `events` (default POLLIN). Returns a bitmap: bit i is set when fds[i]
 * is ready, has an error or hung up; 0 on timeout or when a signal interrupted the wait.
 * timeoutMs -1 waits forever. A closed fd throws EBADF.
 */
export function poll(fds: Int32Array, timeoutMs: number, events: number = POLLIN): number {
  return nb().poll(fds, timeoutMs, events);
}

/** epoll_create1(EPOLL_CLOEXEC). */
export function epollCreate(): number {
  return nb().epollCreate();
}

/** Level-triggered interest in `events` (default EPOLLIN) on fd. */
export function epollAdd(epfd: number, fd: number, events: number = EPOLLIN): void {
  nb().epollAdd(epfd, fd, events);
}

export function epollMod(epfd: number, fd: number, events: number = EPOLLIN): void {
  nb().epollMod(epfd, fd, events);
}

export function epollDel(epfd: number, fd: number): void {
  nb().epollDel(epfd, fd);
}

/**
 * Waits up to timeoutMs (-1 forever) and writes the ready fds to readyFds (at most
 * min(readyFds.length, 256)). Returns their number; 0 on timeout or signal. yieldFirst: with
 * timeoutMs 0, sched_yield() first (a busy-polling thread lets whatever else is runnable on its CPU run).
 */
export function epollWait(epfd: number, readyFds: Int32Array, timeoutMs: number, yieldFirst = false): number {
  return nb().epollWait(epfd, readyFds, timeoutMs, yieldFirst);
}

/** A non-blocking eventfd: how the main thread wakes a worker blocked in epollWait/poll. */
export function eventfdCreate(initval = 0, semaphore = false): number {
  const fd = nb().eventfdCreate(initval, semaphore);
  modes.set(fd, 1);
  return fd;
}

/** Adds value (default 1) to the counter: pollers of fd become readable. */
export function eventfdWrite(fd: number, value = 1): void {
  nb().eventfdWrite(fd, value);
}

/** Reads and resets the counter (semaphore mode: takes 1); 0 when it was 0. */
export function eventfdRead(fd: number): number {
  return nb().eventfdRead(fd);
}
