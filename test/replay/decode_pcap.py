#!/usr/bin/python3
"""Decodes pcap files with scapy (Debian's python3-scapy: run with /usr/bin/python3) for the replay
tests, independently of calitap's own parsers. Prints one JSON object {path: [frame, ...]}; each frame
reports its addresses and whether every checksum verifies, recomputed by scapy (the checksum field is
deleted and the packet rebuilt, then compared with what was on the wire).

Usage: /usr/bin/python3 test/replay/decode_pcap.py FILE.pcap [FILE.pcap ...]
"""
import json
import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, rdpcap
from scapy.layers.vxlan import VXLAN


def recomputed(pkt, layer):
    """The checksum scapy computes for `layer` of `pkt` (field deleted, packet rebuilt)."""
    p = pkt.copy()
    del p[layer].chksum
    return Ether(bytes(p))[layer].chksum


def ip_info(ip):
    out = {
        "src": ip.src,
        "dst": ip.dst,
        "ttl": ip.ttl,
        "proto": ip.proto,
        "id": ip.id,
        "tos": ip.tos,
        "flags": int(ip.flags),
        "len": ip.len,
    }
    eth = Ether(bytes(ip.underlayer)) if isinstance(ip.underlayer, Ether) else None
    if eth is not None:
        out["ipChecksumOk"] = eth[IP].chksum == recomputed(eth, IP)
        if eth.haslayer(ICMP):
            icmp = eth[ICMP]
            out["icmp"] = {"type": icmp.type, "code": icmp.code}
            out["icmpChecksumOk"] = icmp.chksum == recomputed(eth, ICMP)
            if icmp.type in (3, 11):
                q = bytes(icmp.payload)
                qip = IP(q)
                out["icmp"]["quote"] = {"src": qip.src, "dst": qip.dst, "ttl": qip.ttl, "id": qip.id, "len": len(q)}
                if icmp.type == 3 and icmp.code == 4:
                    out["icmp"]["mtu"] = icmp.nexthopmtu
        elif eth.haslayer(TCP):
            tcp = eth[TCP]
            out["tcp"] = {"sport": tcp.sport, "dport": tcp.dport, "flags": str(tcp.flags)}
            out["tcpChecksumOk"] = tcp.chksum == recomputed(eth, TCP)
        elif eth.haslayer(UDP):
            udp = eth[UDP]
            out["udp"] = {"sport": udp.sport, "dport": udp.dport, "chksum": udp.chksum}
            out["udpChecksumOk"] = udp.chksum == 0 or udp.chksum == recomputed(eth, UDP)
    return out


def frame_info(raw):
    pkt = Ether(raw)
    info = {"len": len(raw), "src": pkt.src, "dst": pkt.dst, "type": pkt.type}
    if pkt.haslayer(ARP):
        a = pkt[ARP]
        info["arp"] = {"op": a.op, "hwsrc": a.hwsrc, "psrc": a.psrc, "hwdst": a.hwdst, "pdst": a.pdst}
    elif pkt.haslayer(IP):
        info["ip"] = ip_info(pkt[IP])
        if pkt.haslayer(VXLAN):
            vx = pkt[VXLAN]
            info["vxlan"] = {"vni": vx.vni, "flags": int(vx.flags)}
            inner = Ether(bytes(vx.payload))
            info["inner"] = {"src": inner.src, "dst": inner.dst}
            if inner.haslayer(IP):
                info["inner"]["ip"] = ip_info(inner[IP])
        elif pkt[IP].proto == 4:
            inner = Ether(b"\x00" * 12 + b"\x08\x00" + bytes(pkt[IP].payload))
            info["inner"] = {"ip": ip_info(inner[IP])}
    return info


def main():
    out = {}
    for path in sys.argv[1:]:
        out[path] = [frame_info(bytes(p)) for p in rdpcap(path)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
