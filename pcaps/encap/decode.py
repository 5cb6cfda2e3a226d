#!/usr/bin/python3
"""Independent decoder for the encapsulation / NAT tests (scapy; run with /usr/bin/python3).

Usage: decode.py FILE.pcap [FILE.pcap ...]
Prints one JSON object: {path: {"frames": [...], "reassembled": [...]}}.

Each frame is a list of layers, outermost first: {"layer": scapy name, <fields>, "csum_ok": bool|None}.
`csum_ok` is scapy's verdict: the layer's checksum field compared with the value scapy computes when the
packet is rebuilt with that field unset. None where no verdict applies: UDP checksum 0 ("none", RFC 768),
the L4 header of an IP fragment, or an L4 header quoted incompletely in an ICMP error. Quoted headers
(IPerror, TCPerror, UDPerror, ICMPerror) are checked like the others when the quote holds the whole
datagram. "reassembled" holds every fragmented datagram of the file (innermost IP), put back together
by scapy's defragment(), decoded the same way.
"""
import json
import sys

from scapy.all import IP, Ether, Raw, rdpcap, raw
from scapy.layers.inet import ICMP, TCP, UDP, TCPerror, UDPerror, ICMPerror, defragment
from scapy.layers.vxlan import VXLAN  # noqa: F401  (binds UDP 4789 -> VXLAN)

def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    try:
        return int(v)  # FlagValue and friends
    except (TypeError, ValueError):
        return repr(v)


def l4_verdicts(ip_bytes):
    """Checksum verdicts for a complete IPv4 datagram given as bytes: {layer name: bool}."""
    p = IP(ip_bytes)
    out = {}
    frag = p.flags.MF or p.frag != 0
    # Only unset the checksums we judge (IP header; L4 when not a fragment and not UDP 0).
    q = IP(ip_bytes)
    q[IP].chksum = None
    targets = []
    if not frag:
        for cls in (TCP, UDP, ICMP):
            if cls in q and not isinstance(q[cls], (TCPerror, UDPerror, ICMPerror)):
                if cls is UDP and q[UDP].chksum == 0:
                    continue
                q[cls].chksum = None
                targets.append(cls)
                break
    r = IP(raw(q))
    out["IP"] = r[IP].chksum == p[IP].chksum
    for cls in targets:
        out[cls.__name__] = r[cls].chksum == p[cls].chksum
    return out


def decode_frame(pkt):
    layers = []
    verdict = {}
    # Checksums of every IPv4 header in the frame, outer and inner, each judged on its own bytes.
    lay = pkt
    depth = 0
    while lay is not None and lay.name != "NoPayload":
        d = {"layer": type(lay).__name__}
        for f in lay.fields_desc:
            try:
                d[f.name] = jsonable(lay.getfieldval(f.name))
            except Exception:  # noqa: BLE001
                d[f.name] = None
        if isinstance(lay, Raw):
            d = {"layer": "Raw", "load": lay.load.hex()}
        if isinstance(lay, IP):  # includes IPerror
            b = raw(lay)
            complete = len(b) >= lay.len
            if complete:
                v = l4_verdicts(b[: lay.len])
                d["csum_ok"] = v["IP"]
                verdict[depth] = v
            else:
                # incomplete quote: judge the header alone
                h = IP(b)
                h2 = IP(b)
                h2.chksum = None
                d["csum_ok"] = IP(raw(h2))[IP].chksum == h.chksum
                verdict[depth] = {"IP": d["csum_ok"]}
            d["is_fragment"] = bool(lay.flags.MF or lay.frag != 0)
            d["options_hex"] = raw(lay)[20 : (raw(lay)[0] & 15) * 4].hex()
            d["total_bytes"] = len(b)
        elif isinstance(lay, (TCP, UDP, ICMP)):
            # the enclosing IP's verdict (the nearest one above)
            up = max((k for k in verdict if k < depth), default=None)
            name = {TCPerror: "TCP", UDPerror: "UDP", ICMPerror: "ICMP"}.get(type(lay), type(lay).__name__)
            d["csum_ok"] = None if up is None else verdict[up].get(name)
            if isinstance(lay, UDP) and lay.chksum == 0:
                d["csum_zero"] = True
        layers.append(d)
        lay = lay.payload
        depth += 1
    return layers


def innermost_ip(pkt):
    cur = pkt
    last = None
    while cur is not None and cur.name != "NoPayload":
        if type(cur) is IP:
            last = cur
        cur = cur.payload
    return last


def main(paths):
    result = {}
    for path in paths:
        pkts = rdpcap(path)
        frames = [decode_frame(p) for p in pkts]
        frags = []
        for p in pkts:
            ip = innermost_ip(p)
            if ip is not None and (ip.flags.MF or ip.frag != 0):
                frags.append(IP(raw(ip)))
        reassembled = []
        if frags:
            for d in defragment(frags):
                if d.flags.MF or d.frag != 0:
                    continue  # still incomplete
                b = raw(d)
                reassembled.append({"bytes": b.hex(), "layers": decode_frame(IP(b))})
        result[path] = {"frames": frames, "reassembled": reassembled}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
