// Classic BPF programs for packetSocket({ bpf }): parse `tcpdump -dd` output into sock_filter structs.
//
// What flows through it: filter text in, a fresh Uint8Array (owned by the caller) out. Which thread
// runs it: any; set-up time only (bpfFromTcpdump spawns a process).
import { execFileSync } from 'node:child_process';
import { endianness } from 'node:os';

/** Parses `tcpdump -dd` output ("{ 0x28, 0, 0, 0x0000000c }," per line) into sock_filter structs. */
export function parseTcpdumpDd(text: string): Uint8Array {
  const re = /\{\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(0x[0-9a-fA-F]+|\d+)\s*\}/g;
  const insns: number[][] = [];
  for (const m of text.matchAll(re)) insns.push([Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])]);
  if (insns.length === 0) throw new Error(`no BPF instructions in tcpdump -dd output: ${text.slice(0, 200)}`);
  const out = new Uint8Array(insns.length * 8);
  const dv = new DataView(out.buffer);
  const le = endianness() === 'LE'; // struct sock_filter is in host byte order
  insns.forEach(([code, jt, jf, k], i) => {
    dv.setUint16(i * 8, code, le);
    dv.setUint8(i * 8 + 2, jt);
    dv.setUint8(i * 8 + 3, jf);
    dv.setUint32(i * 8 + 4, k >>> 0, le);
  });
  return out;
}

/**
 * Compiles a pcap filter expression for interface `ifname` (its link type decides the offsets) with
 * `tcpdump -dd`. Setup time only (spawns a process); needs tcpdump and the right to open ifname.
 */
export function bpfFromTcpdump(expr: string, ifname: string): Uint8Array {
  let text: string;
  try {
    text = execFileSync('tcpdump', ['-dd', '-i', ifname, expr], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(
      `bpfFromTcpdump(${JSON.stringify(expr)}, ${ifname}): ${(err.stderr || err.message).trim()}`,
    );
  }
  return parseTcpdumpDd(text);
}
