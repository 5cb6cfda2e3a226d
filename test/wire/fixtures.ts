// Byte vectors generated ONCE with scapy 2.5.0 (/usr/bin/python3 -c 'from scapy.all import *; ...'),
// each preceded by the exact expression; bytes(pkt).hex() pasted here. Names used in the expressions:
// WL='66:73:2a:10:00:01' (workload), HOST='ee:ee:ee:ee:ee:ee' (Calico host side), BC=broadcast,
// A='10.65.0.24', B='10.65.1.7', R='192.168.0.10' (the router's own address for ICMP errors).
// The *_EXPECTED frames are what calitap must build in place from the matching *_ORIG frame:
// Linux-style TOS 0xc0 | (tos & 0x1e), id 0, TTL 64, DF clear, quote cut to a 576-byte datagram.

/** Ether(dst=BC, src=WL)/ARP(op=1, hwsrc=WL, psrc=A, hwdst='00:00:00:00:00:00', pdst='169.254.1.1') */
export const ARP_REQUEST =
  'ffffffffffff66732a1000010806000108000604000166732a1000010a410018000000000000a9fe0101';

/** Ether(dst=WL, src=HOST)/ARP(op=2, hwsrc=HOST, psrc='169.254.1.1', hwdst=WL, pdst=A) */
export const ARP_REPLY =
  '66732a100001eeeeeeeeeeee08060001080006040002eeeeeeeeeeeea9fe010166732a1000010a410018';

/** Ether(dst=BC, src=WL)/ARP(op=1, hwsrc=WL, psrc='0.0.0.0', hwdst='00:00:00:00:00:00', pdst=A) */
export const ARP_PROBE =
  'ffffffffffff66732a1000010806000108000604000166732a100001000000000000000000000a410018';

/** Ether(dst=WL, src=HOST)/ARP(op=2, hwsrc=HOST, psrc=A, hwdst=WL, pdst='0.0.0.0') */
export const ARP_PROBE_REPLY =
  '66732a100001eeeeeeeeeeee08060001080006040002eeeeeeeeeeee0a41001866732a10000100000000';

/** Ether(dst=BC, src=WL)/ARP(op=1, hwsrc=WL, psrc=A, hwdst='00:00:00:00:00:00', pdst='169.254.1.1')/Padding(load=bytes(18)) */
export const ARP_REQUEST_PADDED =
  'ffffffffffff66732a1000010806000108000604000166732a1000010a410018000000000000a9fe0101000000000000' +
  '000000000000000000000000';

/** Ether(dst=WL, src=HOST)/ARP(op=2, hwsrc=HOST, psrc='169.254.1.1', hwdst=WL, pdst=A)/Padding(load=bytes(18)) */
export const ARP_REPLY_PADDED =
  '66732a100001eeeeeeeeeeee08060001080006040002eeeeeeeeeeeea9fe010166732a1000010a410018000000000000' +
  '000000000000000000000000';

/** Ether(dst=BC, src=WL)/ARP(op=1, hwsrc=WL, psrc=A, hwdst='00:00:00:00:00:00', pdst=A) */
export const ARP_GRATUITOUS =
  'ffffffffffff66732a1000010806000108000604000166732a1000010a4100180000000000000a410018';

/** Ether(dst=BC, src=WL)/ARP(op=1, ptype=0x86dd, hwsrc=WL, psrc=A, pdst='169.254.1.1') */
export const ARP_IPV6_PTYPE =
  'ffffffffffff66732a1000010806000186dd060a000166732a10000131302e36352e302e32340000000000003136392e' +
  '3235342e312e31';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/Raw(b'hello calitap') */
export const UDP_FRAME =
  'eeeeeeeeeeee66732a10000108004500002912344000401112f00a4100180a4101079c4000350015558f68656c6c6f20' +
  '63616c69746170';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=17, id=7, options=[IPOption_RR(routers=['10.0.0.1', '10.0.0.2'])])/UDP(sport=1234, dport=4321)/Raw(b'x' * 10) */
export const UDP_OPTIONS_FRAME =
  'eeeeeeeeeeee66732a10000108004800003200070000111182f50a4100180a410107070b040a0000010a0000020004d2' +
  '10e100127a1c78787878787878787878';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=63, id=0xbeef, flags='DF')/TCP(sport=43210, dport=80, seq=0x01020304, ack=0, flags='S', window=64240, options=[('MSS', 1460), ('SAckOK', b''), ('Timestamp', (1, 0)), ('NOP', None), ('WScale', 7)]) */
export const TCP_SYN_FRAME =
  'eeeeeeeeeeee66732a10000108004500003cbeef40003f06672c0a4100180a410107a8ca00500102030400000000a002' +
  'faf08a4d0000020405b40402080a000000010000000001030307';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=2)/TCP(sport=43210, dport=80, seq=1000, ack=2000, flags='PA', window=502)/Raw(b'GET / HTTP/1.0') */
export const TCP_DATA_FRAME =
  'eeeeeeeeeeee66732a10000108004500003600020000400665200a4100180a410107a8ca0050000003e8000007d05018' +
  '01f61eca0000474554202f20485454502f312e30';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=3)/ICMP(type=8, id=0x77, seq=1)/Raw(b'ping' * 8) */
export const ICMP_ECHO_FRAME =
  'eeeeeeeeeeee66732a10000108004500003c000300004001651e0a4100180a410107080001010077000170696e677069' +
  '6e6770696e6770696e6770696e6770696e6770696e6770696e67';

/** Ether(dst=HOST, src=WL)/Dot1Q(vlan=100, prio=5)/IP(src=A, dst=B)/UDP(sport=1, dport=2) */
export const VLAN_FRAME =
  'eeeeeeeeeeee66732a1000018100a06408004500001c00010000401165300a4100180a410107000100020008ea3a';

/** Ether(dst=HOST, src=WL, type=0x88a8)/Dot1Q(vlan=10)/Dot1Q(vlan=100)/IP(src=A, dst=B)/UDP(sport=1, dport=2) */
export const QINQ_FRAME =
  'eeeeeeeeeeee66732a10000188a8000a8100006408004500001c00010000401165300a4100180a410107000100020008' + 'ea3a';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, id=9, flags='MF', frag=0, proto=17)/Raw(bytes(range(48))) */
export const FRAG_FIRST_FRAME =
  'eeeeeeeeeeee66732a10000108004500004400092000401145000a4100180a410107000102030405060708090a0b0c0d' +
  '0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, id=9, flags=0, frag=6, proto=17)/Raw(bytes(range(48))) */
export const FRAG_LATER_FRAME =
  'eeeeeeeeeeee66732a10000108004500004400090006401164fa0a4100180a410107000102030405060708090a0b0c0d' +
  '0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=1, tos=0x28, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/Raw(b'hello calitap') */
export const TTL_ORIG =
  'eeeeeeeeeeee66732a10000108004528002912344000011151c80a4100180a4101079c4000350015558f68656c6c6f20' +
  '63616c69746170';

/** Ether(dst=WL, src=HOST)/IP(src=R, dst=A, ttl=64, tos=0xc8, id=0, flags=0)/ICMP(type=11, code=0)/Raw(bytes((Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=1, tos=0x28, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/Raw(b'hello calitap'))[IP])) */
export const TTL_EXPECTED =
  '66732a100001eeeeeeeeeeee080045c80045000000004001aee5c0a8000a0a4100180b000ac700000000452800291234' +
  '4000011151c80a4100180a4101079c4000350015558f68656c6c6f2063616c69746170';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=0x4242, flags='DF')/TCP(sport=43210, dport=443, seq=7, ack=9, flags='A', window=502)/Raw(bytes(i & 0xff for i in range(1460))) */
export const BIG_ORIG =
  'eeeeeeeeeeee66732a1000010800450005dc424240004006dd390a4100180a410107a8ca01bb00000007000000095010' +
  '01f6bcf20000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829' +
  '2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859' +
  '5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889' +
  '8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9' +
  'babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9' +
  'eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819' +
  '1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414243444546474849' +
  '4a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879' +
  '7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9' +
  'aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9' +
  'dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203040506070809' +
  '0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839' +
  '3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869' +
  '6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899' +
  '9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9' +
  'cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9' +
  'fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829' +
  '2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859' +
  '5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889' +
  '8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9' +
  'babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9' +
  'eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819' +
  '1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414243444546474849' +
  '4a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879' +
  '7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9' +
  'aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9' +
  'dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203040506070809' +
  '0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839' +
  '3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869' +
  '6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899' +
  '9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3';

/** Ether(dst=WL, src=HOST)/IP(src=R, dst=A, ttl=64, tos=0xc0, id=0, flags=0)/ICMP(type=3, code=4, nexthopmtu=1450)/Raw(bytes((Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=0x4242, flags='DF')/TCP(sport=43210, dport=443, seq=7, ack=9, flags='A', window=502)/Raw(bytes(i & 0xff for i in range(1460))))[IP])[:548]) */
export const FRAG_NEEDED_EXPECTED =
  '66732a100001eeeeeeeeeeee080045c00240000000004001acf2c0a8000a0a4100180304b941000005aa450005dc4242' +
  '40004006dd390a4100180a410107a8ca01bb0000000700000009501001f6bcf20000000102030405060708090a0b0c0d' +
  '0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d' +
  '3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d' +
  '6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d' +
  '9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccd' +
  'cecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfd' +
  'feff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d' +
  '2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d' +
  '5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d' +
  '8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbd' +
  'bebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebeced' +
  'eeeff0f1f2f3f4f5f6f7f8f9fafb';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=5)/UDP(sport=5000, dport=9)/Raw(b'a')/Padding(load=bytes(17)) */
export const PADDED_ORIG =
  'eeeeeeeeeeee66732a10000108004500001d000500004011652b0a4100180a41010713880009000975aa610000000000' +
  '000000000000000000000000';

/** Ether(dst=WL, src=HOST)/IP(src=R, dst=A, ttl=64, tos=0xc0, id=0, flags=0)/ICMP(type=3, code=3)/Raw(bytes((Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=64, id=5)/UDP(sport=5000, dport=9)/Raw(b'a')/Padding(load=bytes(17)))[IP])[:29]) */
export const PORT_UNREACH_EXPECTED =
  '66732a100001eeeeeeeeeeee080045c00039000000004001aef9c0a8000a0a410018030312b8000000004500001d0005' +
  '00004011652b0a4100180a41010713880009000975aa61';

/** Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=1, id=7, options=[IPOption_RR(routers=['10.0.0.1', '10.0.0.2'])])/UDP(sport=1234, dport=4321)/Raw(b'x' * 10) */
export const OPTIONS_ORIG =
  'eeeeeeeeeeee66732a10000108004800003200070000011192f50a4100180a410107070b040a0000010a0000020004d2' +
  '10e100127a1c78787878787878787878';

/** Ether(dst=WL, src=HOST)/IP(src=R, dst=A, ttl=64, tos=0xc0, id=0, flags=0)/ICMP(type=11, code=0)/Raw(bytes((Ether(dst=HOST, src=WL)/IP(src=A, dst=B, ttl=1, id=7, options=[IPOption_RR(routers=['10.0.0.1', '10.0.0.2'])])/UDP(sport=1234, dport=4321)/Raw(b'x' * 10))[IP])) */
export const OPTIONS_TTL_EXPECTED =
  '66732a100001eeeeeeeeeeee080045c0004e000000004001aee4c0a8000a0a4100180b000ac400000000480000320007' +
  '0000011192f50a4100180a410107070b040a0000010a0000020004d210e100127a1c78787878787878787878';

/** Hex fixture to bytes. */
export function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
