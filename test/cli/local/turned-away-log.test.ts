/**
 * What the operator is told of the connections the server turns away, and how little a flood makes of it.
 * The lines themselves, as the server writes them for real sockets, are tested in server.test.ts; here the
 * clock is vitest's, so a minute's interval passes at once.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TurnedAway } from '../../../cli/local/connection-slots.ts';
import { TURNED_AWAY_INTERVAL_MS, TurnedAwayLog } from '../../../cli/local/turned-away-log.ts';

const refused = (address: string): TurnedAway => ({ action: 'refused', reason: 'full', address, held: 0 });
const closedIdle = (address: string): TurnedAway => ({ action: 'closed', reason: 'idle', address, held: 3 });

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

function logged(): { lines: string[]; log: TurnedAwayLog } {
  const lines: string[] = [];
  return { lines, log: new TurnedAwayLog({ log: (line) => lines.push(line) }) };
}

describe('when connections from one address are turned away', () => {
  it('tells the first at once and the rest in one line when the minute ends', () => {
    const { lines, log } = logged();

    log.record(refused('203.0.113.7'));
    for (let i = 0; i < 40; i++) log.record(refused('203.0.113.7'));
    log.record(closedIdle('203.0.113.7'));

    expect(lines).toEqual([
      '[connections] refused a connection from 203.0.113.7: every slot is answering a client that reads (it holds 0)',
    ]);
    vi.advanceTimersByTime(TURNED_AWAY_INTERVAL_MS);
    expect(lines.slice(1)).toEqual([
      '[connections] 203.0.113.7: 40 more refused, 1 more closed in the last 60 s',
    ]);
  });

  it('writes no more than a line a minute while a flood lasts, and tells the next at once after a quiet minute', () => {
    const { lines, log } = logged();

    // Ten minutes of a connection refused every 100 ms.
    for (let i = 0; i < 6_000; i++) {
      log.record(refused('2001:db8:1:2::/64'));
      vi.advanceTimersByTime(100);
    }

    // The first at once, then one a minute: 11 lines for 6,000 connections.
    expect(lines).toHaveLength(11);
    expect(lines[1]).toBe('[connections] 2001:db8:1:2::/64: 599 more refused in the last 60 s');
    expect(lines.slice(2).every((line) => line.endsWith(': 600 more refused in the last 60 s'))).toBe(true);
    vi.advanceTimersByTime(TURNED_AWAY_INTERVAL_MS); // a quiet minute
    log.record(closedIdle('2001:db8:1:2::/64'));
    expect(lines.slice(11)).toEqual([
      '[connections] closed an idle connection from 2001:db8:1:2::/64 to make room for a new one',
    ]);
  });

  it.each<[TurnedAway, string]>([
    [
      { action: 'refused', reason: 'share', address: '203.0.113.7', held: 32 },
      'refused a connection from 203.0.113.7: it holds its share (32), each answering a client that reads',
    ],
    [
      { action: 'closed', reason: 'stalled', address: '203.0.113.7', held: 5 },
      'closed a connection from 203.0.113.7 whose client stopped reading, to make room for a new one',
    ],
    [
      { action: 'closed', reason: 'slowest', address: '203.0.113.7', held: 32 },
      "closed the slowest reader of 203.0.113.7 (the address holding the most, 32) for another address's connection",
    ],
  ])('says why: %j', (event, line) => {
    const { lines, log } = logged();

    log.record(event);

    expect(lines).toEqual([`[connections] ${line}`]);
  });
});

describe('when every slot reads and the address holds about as many as any other', () => {
  it('says so, not only that every slot is answering', () => {
    const { lines, log } = logged();

    log.record({ action: 'refused', reason: 'full', address: '203.0.113.7', held: 1, most: 2 });

    // Before, the line was the one for no share, and left the operator looking for a server out of slots.
    expect(lines).toEqual([
      '[connections] refused a connection from 203.0.113.7: every slot is answering a client that reads, and it holds as many as any other address, less one at most (it holds 1, the most any holds 2)',
    ]);
  });
});

describe('when connections from many addresses are turned away', () => {
  it('gives ten addresses lines of their own and the rest one line between them', () => {
    const { lines, log } = logged();
    // A host with a /48 has 65,536 /64s, each an address to the slots.
    const addresses = Array.from({ length: 1_000 }, (_, i) => `2001:db8:0:${i.toString(16)}::/64`);

    for (let round = 0; round < 3; round++) for (const address of addresses) log.record(refused(address));
    vi.advanceTimersByTime(TURNED_AWAY_INTERVAL_MS);

    expect(lines).toHaveLength(10 + 1 + 10 + 1);
    expect(
      lines.slice(0, 11).every((line) => line.startsWith('[connections] refused a connection from')),
    ).toBe(true);
    expect(lines.slice(11)).toContain('[connections] 2001:db8:0:0::/64: 2 more refused in the last 60 s');
    expect(lines.at(-1)).toBe('[connections] 990 other addresses: 2969 refused in the last 60 s');
  });

  it('tells nothing more once the server has closed', () => {
    const { lines, log } = logged();
    log.record(refused('203.0.113.7'));
    log.record(refused('203.0.113.7'));

    log.close();
    vi.advanceTimersByTime(TURNED_AWAY_INTERVAL_MS);

    expect(lines).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
