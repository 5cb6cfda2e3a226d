// The daemon's view of the BGP speaker: what `calitap status` shows and how to stop it. The speaker
// itself lives in control/bgp/; bgp-glue.ts connects it to the programmer (learned routes → FIB).
export interface PeerStatusRow {
  peerAddress: string;
  peerType: string;
  state: string;
  since: string;
  info: string;
}

export interface BgpHost {
  status(): PeerStatusRow[];
  stop(): Promise<void>;
}
