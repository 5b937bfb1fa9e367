/**
 * What the local server's connection slots turn away, told to the operator: each connection refused, and
 * each closed to make room for another (connection-slots.ts). Unlogged, an operator could not see that the
 * server was refusing clients. A flood turns away thousands of connections a minute, so the log is bounded:
 * an address's first line comes at once, what follows within `intervalMs` is counted and told in one line
 * when the interval ends, and so on while it lasts, so no address has more than one line an interval. Only
 * `maxAddresses` addresses have lines of their own at once; the rest share one (a host given a /48 has
 * 65,536 /64s, each an address here), so the whole log is at most `maxAddresses + 1` lines an interval.
 *
 * @example
 * const turnedAway = new TurnedAwayLog({ log: err });
 * const slots = new ConnectionSlots({ ...options, onTurnedAway: (event) => turnedAway.record(event) });
 * // [connections] refused a connection from 203.0.113.7: every slot is answering a client that reads (it holds 30)
 * // [connections] 203.0.113.7: 41 more refused in the last 60 s
 */
import type { TurnedAway } from './connection-slots.ts';

export interface TurnedAwayLogOptions {
  readonly log: (line: string) => void;
  /** At most one line per address this often: `TURNED_AWAY_INTERVAL_MS` unless a test shortens it. */
  readonly intervalMs?: number;
  /** The addresses with lines of their own at once; the others share one. `TURNED_AWAY_ADDRESSES` by default. */
  readonly maxAddresses?: number;
}

export const TURNED_AWAY_INTERVAL_MS = 60_000;
export const TURNED_AWAY_ADDRESSES = 10;
/** The other addresses told apart in the shared line's count; past it, the line says "or more". */
const MAX_OTHERS_COUNTED = 10_000;

interface Entry {
  /** The address its lines name; undefined for the line the addresses past `maxAddresses` share. */
  readonly address: string | undefined;
  /** Turned away since its last line, not yet told. */
  refused: number;
  closed: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The line that tells of one connection turned away as it happens. */
export function describeTurnedAway(event: TurnedAway): string {
  const from = event.address;
  switch (event.reason) {
    case 'full':
      // With a share, every slot reads too, but what kept a slowest reader from giving its place is that no
      // address holds two more than this one: said, or the operator looks for a server out of slots.
      return event.most === undefined
        ? `refused a connection from ${from}: every slot is answering a client that reads (it holds ${event.held})`
        : `refused a connection from ${from}: every slot is answering a client that reads, and it holds as many as any other address, less one at most (it holds ${event.held}, the most any holds ${event.most})`;
    case 'share':
      return `refused a connection from ${from}: it holds its share (${event.held}), each answering a client that reads`;
    case 'idle':
      return `closed an idle connection from ${from} to make room for a new one`;
    case 'stalled':
      return `closed a connection from ${from} whose client stopped reading, to make room for a new one`;
    case 'slowest':
      return `closed the slowest reader of ${from} (the address holding the most, ${event.held}) for another address's connection`;
  }
}

export class TurnedAwayLog {
  readonly #log: (line: string) => void;
  readonly #intervalMs: number;
  readonly #maxAddresses: number;
  /** The addresses with a line within the interval, each until an interval passes with nothing to tell. */
  readonly #entries = new Map<string, Entry>();
  /** The line the addresses past `maxAddresses` share, and those of them turned away since it. */
  #others: Entry | undefined;
  readonly #otherAddresses = new Set<string>();

  constructor(options: TurnedAwayLogOptions) {
    this.#log = options.log;
    this.#intervalMs = options.intervalMs ?? TURNED_AWAY_INTERVAL_MS;
    this.#maxAddresses = options.maxAddresses ?? TURNED_AWAY_ADDRESSES;
  }

  record(event: TurnedAway): void {
    const own = this.#entries.get(event.address);
    if (own !== undefined) this.#count(own, event);
    else if (this.#entries.size < this.#maxAddresses)
      this.#entries.set(event.address, this.#tell(event, event.address));
    else if (this.#others === undefined) this.#others = this.#tell(event, undefined);
    else {
      if (this.#otherAddresses.size < MAX_OTHERS_COUNTED) this.#otherAddresses.add(event.address);
      this.#count(this.#others, event);
    }
  }

  /** Stops the timers (the server closing); what was counted and not yet told is dropped. */
  close(): void {
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    clearTimeout(this.#others?.timer);
    this.#entries.clear();
    this.#others = undefined;
    this.#otherAddresses.clear();
  }

  /** Logs `event` at once, and opens the interval within which what follows is only counted. */
  #tell(event: TurnedAway, address: string | undefined): Entry {
    this.#log(`[connections] ${describeTurnedAway(event)}`);
    const entry: Entry = { address, refused: 0, closed: 0, timer: undefined };
    const endInterval = (): void => {
      if (entry.refused === 0 && entry.closed === 0) {
        // Quiet for an interval: its next connection turned away is told at once again.
        if (address === undefined) this.#others = undefined;
        else this.#entries.delete(address);
        return;
      }
      this.#log(`[connections] ${this.#describeCounts(entry)}`);
      entry.refused = 0;
      entry.closed = 0;
      entry.timer = setTimeout(endInterval, this.#intervalMs).unref();
    };
    entry.timer = setTimeout(endInterval, this.#intervalMs).unref(); // never what keeps the process alive
    return entry;
  }

  #count(entry: Entry, event: TurnedAway): void {
    if (event.action === 'refused') entry.refused++;
    else entry.closed++;
  }

  /** What an entry counted in the interval just ended, as its line tells it. */
  #describeCounts(entry: Entry): string {
    const more = entry.address === undefined ? '' : 'more ';
    const counts = [
      ...(entry.refused > 0 ? [`${entry.refused} ${more}refused`] : []),
      ...(entry.closed > 0 ? [`${entry.closed} ${more}closed`] : []),
    ].join(', ');
    const within = `in the last ${this.#intervalMs / 1000} s`;
    if (entry.address !== undefined) return `${entry.address}: ${counts} ${within}`;
    const addresses = this.#otherAddresses.size;
    this.#otherAddresses.clear();
    const many = addresses >= MAX_OTHERS_COUNTED ? ' or more' : '';
    return `${addresses}${many} other address${addresses === 1 ? '' : 'es'}: ${counts} ${within}`;
  }
}
