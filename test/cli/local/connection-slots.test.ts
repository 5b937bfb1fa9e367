/**
 * The key a client's connections are counted under. What the slots do with connections is tested over
 * real sockets, through the server, in server.test.ts; here, what a socket on loopback cannot show (its
 * kernel buffers there take megabytes at a time), and each rule of whose place a new connection takes, set
 * against the others so that each test fails without its rule: which of two readers is slower, what each
 * took and when, is the test's to say here, where over sockets the connections' order or their last
 * progress chose the same one with the rates left out.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  addressGroup,
  ConnectionSlots,
  type ConnectionSlotsOptions,
  type TurnedAway,
} from '../../../cli/local/connection-slots.ts';

describe('when a connection is counted under its address', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
  ])('counts %s as %s', (address, group) => {
    expect(addressGroup(address)).toBe(group);
  });

  it('counts every address of one /64 as one client, and another /64 apart', () => {
    const group = addressGroup('2001:db8:1:2::1');

    expect(addressGroup('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(group);
    expect(addressGroup('2001:db8:1:3::1')).not.toBe(group);
  });
});

/**
 * A connection as the slots see it: its address, what it holds unwritten (`writableLength`, down only as
 * each write completes) and libuv's queue under it (`_handle.writeQueueSize`, down as the kernel takes bytes).
 */
class FakeSocket extends EventEmitter {
  writableLength = 0;
  destroyed = false;
  /** `bytesWritten`: what was handed to libuv, so what the kernel took is that less `writeQueueSize`. */
  readonly _handle = { writeQueueSize: 0, bytesWritten: 0 };

  constructor(readonly remoteAddress: string) {
    super();
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }

  /** One write of `bytes` waiting for its client: held until the kernel has taken all of it. */
  writing(bytes: number): void {
    this.writableLength = bytes;
    this._handle.writeQueueSize = bytes;
    this._handle.bytesWritten += bytes;
  }

  /** Its client takes the rest of the write waiting, so the socket drains, and the next write of `bytes` begins. */
  drained(bytes: number): void {
    this._handle.writeQueueSize = 0;
    this.writableLength = 0;
    this.emit('drain');
    this.writing(bytes);
  }

  /** Its client takes `bytes` of the write waiting (the kernel takes them from libuv's queue). */
  take(bytes: number): void {
    this._handle.writeQueueSize -= bytes;
  }
}

const asSocket = (socket: FakeSocket) => socket as unknown as Socket;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Slots whose samples of the write queues the test takes itself (`sample`), rather than a timer every
 * second: what each reader took between two samples is then the test's to say, whatever this machine's
 * load. A sample waits 2 ms first, as the slots skip one taken at the very instant of the last.
 */
function sampledSlots(options: Omit<ConnectionSlotsOptions, 'sampleTimer' | 'onTurnedAway'>): {
  slots: ConnectionSlots;
  sample: () => Promise<void>;
  turnedAway: TurnedAway[];
} {
  let run = () => {};
  const turnedAway: TurnedAway[] = [];
  const slots = new ConnectionSlots({
    ...options,
    sampleTimer: (sample) => {
      run = sample;
      return () => {
        run = () => {};
      };
    },
    onTurnedAway: (event) => turnedAway.push(event),
  });
  return {
    slots,
    sample: async () => {
      await sleep(2);
      run();
    },
    turnedAway,
  };
}

/** Admitted, asked something, and answering it: a write of `bytes` waiting for its client. */
function answering(slots: ConnectionSlots, address: string, bytes = 64 * 1024 * 1024): FakeSocket {
  const socket = new FakeSocket(address);
  expect(slots.admit(asSocket(socket))).toBe(true);
  slots.requestStarted(asSocket(socket));
  socket.writing(bytes);
  return socket;
}

describe('when every slot is answering and a new connection comes', () => {
  it('keeps the place of one whose client takes its answer a little at a time, though no write of it ended', async () => {
    const { slots, sample } = sampledSlots({ maxConnections: 1, maxPerAddress: 0, stalledMs: 200 });
    // A file is written a MiB at a time: the socket drains once its client has taken the whole MiB, which a
    // client reading 64 KB a second takes 16 s to. It was taken for stalled, and its place given away.
    const reading = answering(slots, '203.0.113.7', 1024 * 1024);
    await sample(); // the write under way
    await sleep(300); // past stalledMs: judged by its request's start and 'drain' alone, stalled

    reading.take(2048);
    await sample(); // what moves its write queue is its client reading, as the slots see it
    const next = new FakeSocket('198.51.100.1');

    expect(slots.admit(asSocket(next))).toBe(false);
    expect(next.destroyed).toBe(true);
    expect(reading.destroyed).toBe(false);
  });

  it('gives the place of one whose client takes nothing of its answer', async () => {
    const slots = new ConnectionSlots({ maxConnections: 1, maxPerAddress: 0, stalledMs: 200 });
    const stuck = new FakeSocket('203.0.113.7');
    expect(slots.admit(asSocket(stuck))).toBe(true);
    slots.requestStarted(asSocket(stuck));
    stuck.writing(1024 * 1024);
    stuck._handle.writeQueueSize = 700 * 1024; // what the kernel took at once, then nothing
    await sleep(700);
    const next = new FakeSocket('198.51.100.1');

    expect(slots.admit(asSocket(next))).toBe(true);
    expect(stuck.destroyed).toBe(true);
    expect(next.destroyed).toBe(false);
  });

  it('gives the place of the one stalled longest, whichever came first', async () => {
    const { slots, turnedAway } = sampledSlots({ maxConnections: 2, maxPerAddress: 0, stalledMs: 20 });
    const first = answering(slots, '203.0.113.7', 1024 * 1024);
    const second = answering(slots, '203.0.113.8', 1024 * 1024);
    await sleep(5);
    // The first's client took the rest of its write, after the second took its last bytes; then nothing.
    first.drained(1024 * 1024);
    await sleep(60); // both stalled: nothing taken for three times stalledMs at least

    expect(slots.admit(asSocket(new FakeSocket('198.51.100.1')))).toBe(true);
    expect([first.destroyed, second.destroyed]).toEqual([false, true]);
    expect(turnedAway).toEqual([{ action: 'closed', reason: 'stalled', address: '203.0.113.8', held: 1 }]);
  });

  it('gives the place of a connection idle, before one stalled longer', async () => {
    const { slots, turnedAway } = sampledSlots({ maxConnections: 2, maxPerAddress: 0, stalledMs: 20 });
    const stalled = answering(slots, '203.0.113.7', 1024 * 1024);
    await sleep(60); // stalled, and longer than the idle one below has been idle
    const idle = new FakeSocket('203.0.113.8');
    expect(slots.admit(asSocket(idle))).toBe(true);

    expect(slots.admit(asSocket(new FakeSocket('198.51.100.1')))).toBe(true);
    expect([stalled.destroyed, idle.destroyed]).toEqual([false, true]);
    expect(turnedAway).toEqual([{ action: 'closed', reason: 'idle', address: '203.0.113.8', held: 1 }]);
  });

  it('never takes for stalled one with nothing written yet, its answer still being read', async () => {
    const { slots, turnedAway } = sampledSlots({ maxConnections: 1, maxPerAddress: 0, stalledMs: 20 });
    const preparing = new FakeSocket('203.0.113.7');
    expect(slots.admit(asSocket(preparing))).toBe(true);
    slots.requestStarted(asSocket(preparing)); // nothing written: no client to wait for
    await sleep(60);

    expect(slots.admit(asSocket(new FakeSocket('198.51.100.1')))).toBe(false);
    expect(preparing.destroyed).toBe(false);
    expect(turnedAway).toEqual([{ action: 'refused', reason: 'full', address: '198.51.100.1', held: 0 }]);
  });
});

describe("when an address past its share comes and one of another address's is stalled longer", () => {
  it('gives the new connection the place of its own address stalled, never of the other address', async () => {
    const { slots, turnedAway } = sampledSlots({ maxConnections: 4, maxPerAddress: 2, stalledMs: 20 });
    const other = answering(slots, '198.51.100.1', 1024 * 1024);
    await sleep(5);
    const own = [answering(slots, '203.0.113.7', 1024 * 1024), answering(slots, '203.0.113.7', 1024 * 1024)];
    await sleep(60); // all three stalled, the other address's longest

    expect(slots.admit(asSocket(new FakeSocket('203.0.113.7')))).toBe(true);
    expect([other.destroyed, ...own.map((socket) => socket.destroyed)]).toEqual([false, true, false]);
    expect(turnedAway).toEqual([{ action: 'closed', reason: 'stalled', address: '203.0.113.7', held: 2 }]);
  });
});

const HOUR_MS = 3_600_000;

describe('when every slot answers a client that reads and a new address comes', () => {
  // Each test here would pass as well with the readers' rates left out, or told wrong, were its readers'
  // order (the slots' Map) or their last progress (the tie-break) to single out the same one: each sets
  // those against the answer it expects.

  it('gives it the place of the reader taking the fewest bytes a second, though the faster took any longer ago', async () => {
    const { slots, sample, turnedAway } = sampledSlots({
      maxConnections: 4,
      maxPerAddress: 2,
      stalledMs: HOUR_MS,
    });
    const fast = answering(slots, '203.0.113.7');
    const slow = answering(slots, '203.0.113.7', 4 * 1024);
    const others = [answering(slots, '198.51.100.1'), answering(slots, '198.51.100.2')];
    await sample(); // the baseline
    for (let i = 0; i < 2; i++) {
      fast.take(1024 * 1024);
      slow.take(1024);
      for (const socket of others) socket.take(1024 * 1024);
      await sample();
    }
    // The slow one's client takes the last of its small write after the last sample, so its write ended
    // later than any of the fast one's: by when each took bytes last, the fast one would go.
    slow.drained(4 * 1024);

    expect(slots.admit(asSocket(new FakeSocket('192.0.2.1')))).toBe(true);
    expect([fast, slow, ...others].map((socket) => socket.destroyed)).toEqual([false, true, false, false]);
    expect(turnedAway).toEqual([{ action: 'closed', reason: 'slowest', address: '203.0.113.7', held: 2 }]);
  });

  it("leaves out a request's first sample, what the kernel's buffers took at once", async () => {
    const { slots, sample } = sampledSlots({ maxConnections: 4, maxPerAddress: 2, stalledMs: HOUR_MS });
    const buffered = answering(slots, '203.0.113.7');
    const steady = answering(slots, '203.0.113.7');
    answering(slots, '198.51.100.1');
    answering(slots, '198.51.100.2');
    // Loopback's buffers take megabytes of an answer at once, whatever its client reads after.
    buffered.take(8 * 1024 * 1024);
    steady.take(4 * 1024);
    await sample();
    for (let i = 0; i < 2; i++) {
      steady.take(4 * 1024); // a few KB each time; the other, nothing
      await sample();
    }

    expect(slots.admit(asSocket(new FakeSocket('192.0.2.1')))).toBe(true);
    expect([buffered.destroyed, steady.destroyed]).toEqual([true, false]);
  });

  it('keeps the place of a reader that takes in bursts, between two of them, over a steady one slower', async () => {
    const { slots, sample } = sampledSlots({ maxConnections: 4, maxPerAddress: 2, stalledMs: HOUR_MS });
    const bursty = answering(slots, '203.0.113.7');
    const steady = answering(slots, '203.0.113.7');
    answering(slots, '198.51.100.1');
    answering(slots, '198.51.100.2');
    await sample(); // the baseline
    bursty.take(16 * 1024 * 1024);
    steady.take(4 * 1024);
    await sample();
    steady.take(4 * 1024); // and the bursty one, between bursts, nothing
    await sample();

    expect(slots.admit(asSocket(new FakeSocket('192.0.2.1')))).toBe(true);
    expect([bursty.destroyed, steady.destroyed]).toEqual([false, true]);
  });

  it('on a tie, gives the place of the reader that took any longest ago, whichever came first', async () => {
    const { slots } = sampledSlots({ maxConnections: 4, maxPerAddress: 2, stalledMs: HOUR_MS });
    // Downloads just begun, not yet sampled twice: no rate yet, so the same to the slots.
    const first = answering(slots, '203.0.113.7', 4 * 1024);
    const second = answering(slots, '203.0.113.7');
    answering(slots, '198.51.100.1');
    answering(slots, '198.51.100.2');
    await sleep(2);
    first.drained(4 * 1024); // its client took its whole first write, after the second began

    expect(slots.admit(asSocket(new FakeSocket('192.0.2.1')))).toBe(true);
    expect([first.destroyed, second.destroyed]).toEqual([false, true]);
  });

  it('never gives the place of a reader of an address holding fewer than the most, however slow', async () => {
    const { slots, sample, turnedAway } = sampledSlots({
      maxConnections: 4,
      maxPerAddress: 2,
      stalledMs: HOUR_MS,
    });
    const most = [answering(slots, '203.0.113.7'), answering(slots, '203.0.113.7')];
    const slowest = answering(slots, '198.51.100.1'); // takes nothing, but its address holds 1
    const other = answering(slots, '198.51.100.2');
    await sample();
    for (let i = 0; i < 2; i++) {
      most[0]?.take(1024 * 1024);
      most[1]?.take(512 * 1024);
      other.take(1024 * 1024);
      await sample();
    }

    expect(slots.admit(asSocket(new FakeSocket('192.0.2.1')))).toBe(true);
    expect([...most, slowest, other].map((socket) => socket.destroyed)).toEqual([false, true, false, false]);
    expect(turnedAway).toEqual([{ action: 'closed', reason: 'slowest', address: '203.0.113.7', held: 2 }]);
  });
});

describe('when every slot answers a client that reads and a new /64 comes', () => {
  it('gives it the place of a reader of the /64 holding the most, whichever of its addresses each came from', () => {
    const turnedAway: TurnedAway[] = [];
    const slots = new ConnectionSlots({
      maxConnections: 4,
      maxPerAddress: 2,
      stalledMs: 3_600_000,
      onTurnedAway: (event) => turnedAway.push(event),
    });
    const held = ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:3:4::1', '2001:db8:5:6::1'].map(
      (address) => new FakeSocket(address),
    );
    for (const socket of held) {
      expect(slots.admit(asSocket(socket))).toBe(true);
      slots.requestStarted(asSocket(socket));
      socket.writing(1024 * 1024);
    }

    const next = new FakeSocket('2001:db8:7:8::1');
    const admitted = slots.admit(asSocket(next));

    expect(admitted).toBe(true);
    expect(held.map((socket) => socket.destroyed)).toEqual([true, false, false, false]);
    expect(turnedAway).toEqual([
      { action: 'closed', reason: 'slowest', address: '2001:db8:1:2::/64', held: 2 },
    ]);
    slots.requestStarted(asSocket(next));
    next.writing(1024 * 1024);
    // Another address of the /64 that now holds one: as many as any other, less one.
    const again = new FakeSocket('2001:db8:7:8::2');
    expect(slots.admit(asSocket(again))).toBe(false);
    expect(turnedAway.at(-1)).toEqual({
      action: 'refused',
      reason: 'full',
      address: '2001:db8:7:8::/64',
      held: 1,
      most: 1,
    });
  });
});
