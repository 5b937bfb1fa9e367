/**
 * Who holds the local server's connection slots. A cap on the connections open at once bounds the process's
 * descriptors, but one client alone could then hold every slot (idle connections, reopened as soon as one
 * times out, or downloads it never reads) and the server answered no one else. So:
 *
 * - An address holds at most its share of the slots (`maxPerAddress`; an IPv6 client by its /64, the block
 *   one host is given, so a machine cannot take a share per address of its own). A new connection past the
 *   share takes the place of one of that address's own (chosen as below), or is closed. nginx's
 *   `limit_conn` does the same per address; behind a reverse proxy every connection is the proxy's, so the
 *   share can be turned off (0) and left to the proxy.
 * - When every slot is taken, a new connection takes the place of the connection idle longest (one with no
 *   request in hand: kept alive between requests, or one whose request head has not come yet, as a slowloris
 *   client's never does), as Apache's event MPM closes kept-alive connections first when it runs short.
 *   Closing one loses nothing: a client retries a request on a kept-alive connection the server closed
 *   (RFC 9112 §9.3.1), and a head still coming after the longest wait of all is most likely no client's.
 * - With no idle connection to close, one whose answer has stalled (its client has taken nothing of it for
 *   `stalledMs`: a download it stopped reading) gives its place, the one stalled longest first. The idle
 *   timeout cuts such a connection anyway, within a minute; while the slots are short, that is too long to
 *   leave them to clients that read nothing. A client that reads, however slowly, is never taken for
 *   stalled. What its client takes is seen as the kernel takes it, from libuv's write queue under the
 *   socket (`writeQueueSize`, sampled each second, four times within `stalledMs` at least, while a request
 *   is in hand, as Node's own idle timeout spares a socket whose queue moves): a socket drains only once a
 *   whole write has gone, and a file is written a MiB at a time, so a client reading 64 KB a second,
 *   drained every 16 s, was taken for stalled and its place given away.
 * - With none idle and none stalled, every slot answers a client that reads, yet a few addresses may hold
 *   them all: eight, each at its share, reading a byte now and then, and every other client was closed. So
 *   a new connection from an address that holds at least two fewer than the address holding the most takes
 *   the place of that address's slowest reader (the fewest bytes a second over the last few seconds, read
 *   from the same write queue each second; on a tie, the one that took any longest ago). Each such swap
 *   narrows the gap between the two and none reverses it, so the slots settle with each address holding
 *   about as many as any other (max-min fairness), and a slow reader keeps its place until a client of an
 *   address with fewer wants one. Only when the new connection's address holds as many as any other, less
 *   one, is it closed. With no share (behind a proxy, whose address is every client's) addresses are not
 *   told apart, and this never happens.
 *
 * Whom they refuse and whose place they give away is told to `onTurnedAway` (the server logs it, a line
 * per address per minute at most: turned-away-log.ts).
 *
 * Connections are judged as they are accepted; Node's own `server.maxConnections` is set one above the
 * cap, so the one being judged is accepted and no more.
 *
 * @example
 * const slots = new ConnectionSlots({ maxConnections: 256, maxPerAddress: 32, stalledMs: 10_000 });
 * server.on('connection', (socket) => slots.admit(socket));
 * // per request: slots.requestStarted(req.socket); res.once('close', () => slots.requestEnded(req.socket));
 */
import net, { type Socket } from 'node:net';

export interface ConnectionSlotsOptions {
  /** The most connections open at once. */
  readonly maxConnections: number;
  /**
   * The most one address (an IPv6 /64) holds; 0 for no share (behind a proxy that limits its clients), and
   * then no address takes the place of another's slowest reader either.
   */
  readonly maxPerAddress: number;
  /**
   * An answer its client has taken nothing of for this long (bytes waiting to go, and no 'drain' since)
   * is stalled: its connection gives its place when no idle one can.
   */
  readonly stalledMs: number;
  /**
   * What runs the samples of the busy connections' write queues, from which a stall and each reader's rate
   * are told: `sampleEvery` (a timer, never what keeps the process alive) unless a test takes the samples
   * itself, rather than wait seconds of real time for them.
   */
  readonly sampleTimer?: SampleTimer;
  /** Told of each connection refused, and of each closed to make room for another. */
  readonly onTurnedAway?: (event: TurnedAway) => void;
}

/**
 * Why a connection was turned away. Refused: `full`, every slot answers a client that reads and the new
 * connection's address holds about as many as any other; `share`, its address holds its share and none of
 * its own is idle or stalled. Closed for a new connection: `idle` (idle longest), `stalled` (its client took
 * nothing for `stalledMs`), `slowest` (the slowest reader of the address holding the most, for an address
 * holding at least two fewer).
 */
export type TurnAwayReason = 'full' | 'share' | 'idle' | 'stalled' | 'slowest';

export interface TurnedAway {
  /** `refused`: the new connection, closed unread; `closed`: an admitted one, closed for a new one. */
  readonly action: 'refused' | 'closed';
  readonly reason: TurnAwayReason;
  /** The connection's address group (`addressGroup`): an IPv4 address, or an IPv6 `<prefix>::/64`. */
  readonly address: string;
  /** The connections its address held when it was turned away (the one closed counted). */
  readonly held: number;
  /**
   * For `full` with a share: the most any address held. Every slot answered a client that reads, and no
   * address held two more than this one, so none gave its slowest reader's place. Absent with no share.
   */
  readonly most?: number;
}

/** A connection chosen to give its place, and why. */
interface Victim {
  readonly socket: Socket;
  readonly slot: Slot;
  readonly reason: 'idle' | 'stalled' | 'slowest';
}

/** The longest between two samples of the busy connections' write queues. */
const MAX_SAMPLE_MS = 1_000;

/** Runs `sample` every `everyMs` until the function it returns is called. */
export type SampleTimer = (sample: () => void, everyMs: number) => () => void;

/** The slots' own `SampleTimer`: an interval timer, unref'd, so it never keeps the process alive. */
export const sampleEvery: SampleTimer = (sample, everyMs) => {
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return () => clearInterval(timer);
};

interface Slot {
  readonly address: string;
  /** Requests received and not yet answered (more than one when a client pipelines). */
  requests: number;
  /**
   * When its client last took what was written: the request's start, or the socket's last 'drain' (a
   * file or a search answer is written in pieces larger than the socket's buffer, so each write waits for
   * one, and a client that reads keeps them coming).
   */
  progressAt: number;
  /** libuv's write queue under the socket when last sampled: a change is its client taking bytes. */
  queued: number;
  /** The bytes the kernel had taken from the socket when last sampled (`takenBelow`). */
  taken: number;
  /** When it was last sampled (or its request began). */
  sampledAt: number;
  /** Samples since its request began (the first is only a baseline: see `rate`). */
  samples: number;
  /**
   * Bytes a second its client takes, each sample weighing a quarter (the last few seconds count most, and a
   * reader that takes in bursts is not taken for still between them). The first sample of a request is left
   * out: it holds what the kernel's buffers took at once, whoever the client, megabytes on loopback and more
   * on one connection than another. Infinite until then, so a download just begun is never the slowest.
   */
  rate: number;
}

/**
 * The bytes written to `socket` that the kernel has not yet taken (libuv's write queue, which Node's handle
 * keeps as `writeQueueSize` and its own idle timeout reads), or undefined where the handle does not say.
 */
function queuedBelow(socket: Socket): number | undefined {
  const size = (socket as unknown as { _handle?: { writeQueueSize?: unknown } | null })._handle
    ?.writeQueueSize;
  return typeof size === 'number' ? size : undefined;
}

/**
 * The bytes the kernel has taken from `socket` (those dispatched to libuv, less its write queue), or
 * undefined where the handle does not say.
 */
function takenBelow(socket: Socket): number | undefined {
  const written = (socket as unknown as { _handle?: { bytesWritten?: unknown } | null })._handle
    ?.bytesWritten;
  const queued = queuedBelow(socket);
  return typeof written === 'number' && queued !== undefined ? written - queued : undefined;
}

/**
 * The key a connection's address is counted under: an IPv4 address as it is (an IPv4-mapped IPv6 address
 * as its IPv4), an IPv6 address by its first 64 bits, `<prefix>::/64`.
 */
export function addressGroup(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  const bare = address.split('%', 1)[0] ?? address; // a zone (`fe80::1%eth0`) names no other host
  if (!net.isIPv6(bare)) return address;
  const groupsOf = (text: string): string[] => (text === '' ? [] : text.split(':'));
  // A trailing dotted IPv4 stands for two groups.
  const width = (groups: readonly string[]): number =>
    groups.reduce((sum, group) => sum + (group.includes('.') ? 2 : 1), 0);
  const gap = bare.indexOf('::');
  const head = groupsOf(gap === -1 ? bare : bare.slice(0, gap));
  const tail = gap === -1 ? [] : groupsOf(bare.slice(gap + 2));
  const zeros = gap === -1 ? [] : Array<string>(8 - width(head) - width(tail)).fill('0');
  const prefix = [...head, ...zeros, ...tail]
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16));
  return `${prefix.join(':')}::/64`;
}

export class ConnectionSlots {
  readonly #maxConnections: number;
  readonly #maxPerAddress: number;
  readonly #stalledMs: number;
  readonly #sampleTimer: SampleTimer;
  readonly #onTurnedAway: ((event: TurnedAway) => void) | undefined;
  readonly #slots = new Map<Socket, Slot>();
  /** The admitted connections with no request in hand, longest idle first (a Set keeps insertion order). */
  readonly #idle = new Set<Socket>();
  readonly #perAddress = new Map<string, number>();
  /** Samples the write queues of the connections with a request in hand; running only while there are any. */
  #stopSampling: (() => void) | undefined;

  constructor(options: ConnectionSlotsOptions) {
    this.#maxConnections = options.maxConnections;
    this.#maxPerAddress = options.maxPerAddress;
    this.#stalledMs = options.stalledMs;
    this.#sampleTimer = options.sampleTimer ?? sampleEvery;
    this.#onTurnedAway = options.onTurnedAway;
  }

  /**
   * Judges a connection just accepted: it takes a slot (an idle or a stalled connection closed to make room,
   * if need be, else the slowest reader of the address holding the most) and true is returned, or it is
   * closed and false is returned.
   */
  admit(socket: Socket): boolean {
    const remote = socket.remoteAddress;
    if (remote === undefined) {
      socket.destroy(); // gone before it was judged
      return false;
    }
    const address = addressGroup(remote);
    const held = this.#perAddress.get(address) ?? 0;
    if (this.#maxPerAddress > 0 && held >= this.#maxPerAddress) {
      const own = this.#victim((slot) => slot.address === address);
      if (own === undefined) return this.#refuse(socket, address, 'share');
      this.#evict(own);
    } else if (this.#slots.size >= this.#maxConnections) {
      const any = this.#victim(() => true) ?? this.#slowestOfLargest(held);
      if (any === undefined)
        return this.#refuse(
          socket,
          address,
          'full',
          this.#maxPerAddress > 0 ? Math.max(0, ...this.#perAddress.values()) : undefined,
        );
      this.#evict(any);
    }
    const now = performance.now();
    const slot: Slot = {
      address,
      requests: 0,
      progressAt: now,
      queued: 0,
      taken: 0,
      sampledAt: now,
      samples: 0,
      rate: Number.POSITIVE_INFINITY,
    };
    this.#slots.set(socket, slot);
    this.#idle.add(socket);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    socket.on('drain', () => {
      slot.progressAt = performance.now();
    });
    socket.once('close', () => this.#release(socket));
    return true;
  }

  /** A request arrived on `socket`: it is no longer idle. */
  requestStarted(socket: Socket): void {
    const slot = this.#slots.get(socket);
    if (slot === undefined) return;
    if (slot.requests === 0) {
      slot.progressAt = performance.now();
      slot.queued = queuedBelow(socket) ?? 0;
      slot.taken = takenBelow(socket) ?? 0;
      slot.sampledAt = slot.progressAt;
      slot.samples = 0;
      slot.rate = Number.POSITIVE_INFINITY;
    }
    slot.requests++;
    this.#idle.delete(socket);
    this.#stopSampling ??= this.#sampleTimer(
      () => this.#sample(),
      Math.max(10, Math.min(MAX_SAMPLE_MS, Math.floor(this.#stalledMs / 4))),
    );
  }

  /** Progress seen in each busy connection's write queue since the last sample; stops when none is busy. */
  #sample(): void {
    const now = performance.now();
    let busy = false;
    for (const [socket, slot] of this.#slots) {
      if (slot.requests === 0) continue;
      busy = true;
      const queued = queuedBelow(socket);
      // Down: the kernel took bytes. Up: a write began, which it does once the one before has gone.
      if (queued !== undefined && queued !== slot.queued) {
        slot.queued = queued;
        slot.progressAt = now;
      }
      const taken = takenBelow(socket);
      if (taken !== undefined && now > slot.sampledAt) {
        const recent = ((taken - slot.taken) * 1000) / (now - slot.sampledAt);
        slot.samples++;
        if (slot.samples === 2) slot.rate = recent;
        else if (slot.samples > 2) slot.rate += (recent - slot.rate) / 4;
        slot.taken = taken;
        slot.sampledAt = now;
      }
    }
    if (!busy) {
      this.#stopSampling?.();
      this.#stopSampling = undefined;
    }
  }

  /** A response on `socket` ended (sent, or cut): idle again, from now, once it has none in hand. */
  requestEnded(socket: Socket): void {
    const slot = this.#slots.get(socket);
    if (slot === undefined || slot.requests === 0) return;
    slot.requests--;
    if (slot.requests === 0) this.#idle.add(socket);
  }

  /** The connection to close for a new one, among those `matches` keeps: idle longest, else stalled longest. */
  #victim(matches: (slot: Slot) => boolean): Victim | undefined {
    for (const socket of this.#idle) {
      const slot = this.#slots.get(socket);
      if (slot !== undefined && matches(slot)) return { socket, slot, reason: 'idle' };
    }
    const stalledSince = performance.now() - this.#stalledMs;
    let victim: Victim | undefined;
    for (const [socket, slot] of this.#slots) {
      // Bytes waiting to go: the kernel's buffers are full, so the client is not reading.
      const stalled = slot.requests > 0 && socket.writableLength > 0 && slot.progressAt <= stalledSince;
      if (stalled && matches(slot) && (victim === undefined || slot.progressAt < victim.slot.progressAt))
        victim = { socket, slot, reason: 'stalled' };
    }
    return victim;
  }

  /**
   * With every slot answering a client that reads, the slowest reader of the address holding the most, when
   * it holds at least two more than the new connection's address (`held`): after the swap it still holds
   * no fewer than that address, so no swap undoes another. Undefined with no share (addresses not told apart).
   */
  #slowestOfLargest(held: number): Victim | undefined {
    if (this.#maxPerAddress === 0) return undefined;
    const most = Math.max(0, ...this.#perAddress.values());
    if (most < held + 2) return undefined;
    let victim: Victim | undefined;
    for (const [socket, slot] of this.#slots) {
      if (this.#perAddress.get(slot.address) !== most) continue;
      const slower =
        victim === undefined ||
        slot.rate < victim.slot.rate ||
        (slot.rate === victim.slot.rate && slot.progressAt < victim.slot.progressAt);
      if (slower) victim = { socket, slot, reason: 'slowest' };
    }
    return victim;
  }

  #refuse(socket: Socket, address: string, reason: 'full' | 'share', most?: number): false {
    socket.destroy();
    const held = this.#perAddress.get(address) ?? 0;
    this.#onTurnedAway?.({
      action: 'refused',
      reason,
      address,
      held,
      ...(most === undefined ? {} : { most }),
    });
    return false;
  }

  #evict({ socket, slot, reason }: Victim): void {
    const held = this.#perAddress.get(slot.address) ?? 0;
    this.#release(socket);
    socket.destroy();
    this.#onTurnedAway?.({ action: 'closed', reason, address: slot.address, held });
  }

  /** Frees the slot at once (an evicted socket's 'close' comes later, and finds it freed). */
  #release(socket: Socket): void {
    const slot = this.#slots.get(socket);
    if (slot === undefined) return;
    this.#slots.delete(socket);
    this.#idle.delete(socket);
    const held = (this.#perAddress.get(slot.address) ?? 1) - 1;
    if (held > 0) this.#perAddress.set(slot.address, held);
    else this.#perAddress.delete(slot.address);
  }
}
