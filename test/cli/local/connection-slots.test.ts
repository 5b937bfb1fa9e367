/**
 * The key a client's connections are counted under. What the slots do with connections is tested over
 * real sockets, through the server, in server.test.ts; here, what a socket on loopback cannot show (its
 * kernel buffers there take megabytes at a time).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { addressGroup, ConnectionSlots, type TurnedAway } from '../../../cli/local/connection-slots.ts';

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
  readonly _handle = { writeQueueSize: 0 };

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
  }
}

const asSocket = (socket: FakeSocket) => socket as unknown as Socket;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('when every slot is answering and a new connection comes', () => {
  it('keeps the place of one whose client takes its answer a little at a time, though no write of it ended', async () => {
    const slots = new ConnectionSlots({ maxConnections: 1, maxPerAddress: 0, stalledMs: 200 });
    const reading = new FakeSocket('203.0.113.7');
    expect(slots.admit(asSocket(reading))).toBe(true);
    slots.requestStarted(asSocket(reading));
    // A file is written a MiB at a time: the socket drains once its client has taken the whole MiB, which a
    // client reading 64 KB a second takes 16 s to. It was taken for stalled, and its place given away.
    reading.writing(1024 * 1024);
    const taking = setInterval(() => {
      reading._handle.writeQueueSize -= 2048;
    }, 20);
    try {
      await sleep(700);
      const next = new FakeSocket('198.51.100.1');

      expect(slots.admit(asSocket(next))).toBe(false);
      expect(next.destroyed).toBe(true);
      expect(reading.destroyed).toBe(false);
    } finally {
      clearInterval(taking);
    }
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
