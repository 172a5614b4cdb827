import { describe, it, expect } from 'vitest';
import { Channel, encode, RouterChannel, type ChannelOptions, type FrameSocket, type Message, type ProtocolError } from '@testcloud/protocol';

type FakeSocket = FrameSocket & { sent: Buffer[][]; closed: boolean };

/**
 * Something shaped like a zeromq.js socket: yields the given messages (then throws `fail`, if
 * given), records what is sent, and lets a test decide how each send goes.
 */
function fakeSocket(
  incoming: Buffer[][],
  { send, fail }: { send?: (frames: Buffer[], socket: FakeSocket) => Promise<void>; fail?: Error } = {},
): FakeSocket {
  const socket: FakeSocket = {
    sent: [],
    closed: false,
    close() {
      socket.closed = true;
    },
    async send(frames) {
      await send?.(frames, socket);
      socket.sent.push(frames);
    },
    async *[Symbol.asyncIterator]() {
      yield* incoming;
      if (fail) throw fail;
    },
  };
  return socket;
}

/** A promise and the function that settles it, for sends a test holds open. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const garbage = [Buffer.from('GET / HTTP/1.1\r\n')];
const badSignature = [Buffer.from('XCLD\x01', 'latin1'), Buffer.from('HELLO'), Buffer.from('{"client":"c"}')];
const peerA = Buffer.from('peer-a');

/**
 * Both sides, driven alike: `wire` is what a message looks like on that side's socket (a ROUTER
 * has the peer's routing id in front), `open` a channel that sends to and receives from peer-a.
 */
const sides = [
  {
    side: 'Channel',
    wire: (frames: Buffer[]) => frames,
    open(socket: FrameSocket, options?: ChannelOptions) {
      const channel = new Channel(socket, options);
      return { channel, send: (message: Message) => channel.send(message), messages: () => channel.messages() };
    },
  },
  {
    side: 'RouterChannel',
    wire: (frames: Buffer[]) => [peerA, ...frames],
    open(socket: FrameSocket, options?: ChannelOptions) {
      const channel = new RouterChannel(socket, options);
      async function* messages() {
        for await (const { message } of channel.messages()) yield message;
      }
      return { channel, send: (message: Message) => channel.send(peerA, message), messages };
    },
  },
];

async function receiveAll(messages: AsyncIterable<Message>): Promise<Message[]> {
  const received: Message[] = [];
  for await (const message of messages) received.push(message);
  return received;
}

describe.each(sides)('$side', ({ wire, open }) => {
  it('drops a message with a bad signature, counts it and keeps serving', async () => {
    const dropped: string[] = [];
    const incoming = [badSignature, encode({ type: 'hello', client: 'c1' }), garbage, encode({ type: 'heartbeat' })].map(wire);
    const { channel, messages } = open(fakeSocket(incoming), { onDropped: (error: ProtocolError) => dropped.push(error.code) });
    expect(await receiveAll(messages())).toEqual([{ type: 'hello', client: 'c1' }, { type: 'heartbeat' }]);
    expect(dropped).toEqual(['TESTCLOUD_PROTOCOL_SIGNATURE', 'TESTCLOUD_PROTOCOL_SIGNATURE']);
    expect(channel.dropped).toBe(2);
  });

  it('drops a message over its maxMessageSize and keeps serving', async () => {
    const dropped: string[] = [];
    const big = encode({ type: 'hello', client: 'x'.repeat(1000) });
    const { channel, messages } = open(fakeSocket([big, encode({ type: 'bye', reason: 'done' })].map(wire)), {
      maxMessageSize: 500,
      onDropped: (error) => dropped.push(error.code),
    });
    expect(await receiveAll(messages())).toEqual([{ type: 'bye', reason: 'done' }]);
    expect(dropped).toEqual(['TESTCLOUD_PROTOCOL_TOO_LARGE']);
    expect(channel.dropped).toBe(1);
  });

  it('ends its messages with the error of a socket that fails', async () => {
    const { messages } = open(fakeSocket([encode({ type: 'heartbeat' })].map(wire), { fail: new Error('socket broke') }));
    const received: Message[] = [];
    await expect(async () => {
      for await (const message of messages()) received.push(message);
    }).rejects.toThrow('socket broke');
    expect(received).toEqual([{ type: 'heartbeat' }]);
  });

  it('sends messages in the order they were queued', async () => {
    const socket = fakeSocket([]);
    const { channel, send } = open(socket);
    send({ type: 'hello', client: 'c1' });
    send({ type: 'heartbeat' });
    send({ type: 'bye', reason: 'done' });
    await channel.drained();
    expect(socket.sent).toEqual([encode({ type: 'hello', client: 'c1' }), encode({ type: 'heartbeat' }), encode({ type: 'bye', reason: 'done' })].map(wire));
  });

  it('hands the socket one send at a time, as zeromq.js allows no more', async () => {
    let pending = 0;
    let mostPending = 0;
    const socket = fakeSocket([], {
      async send() {
        mostPending = Math.max(mostPending, ++pending);
        await new Promise((resolve) => setImmediate(resolve));
        pending--;
      },
    });
    const { channel, send } = open(socket);
    for (let i = 0; i < 5; i++) send({ type: 'heartbeat' });
    await channel.drained();
    expect(socket.sent).toHaveLength(5);
    expect(mostPending).toBe(1);
  });

  it('is drained only once the send in flight is done', async () => {
    const held = gate();
    const { channel, send } = open(fakeSocket([], { send: () => held.opened }));
    await expect(channel.drained()).resolves.toBeUndefined();
    send({ type: 'heartbeat' });
    let drained = false;
    const done = channel.drained().then(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    held.open();
    await done;
    expect(drained).toBe(true);
  });

  it('reports a failed send and goes on with the next one', async () => {
    const errors: unknown[] = [];
    const refused = new Error('EAGAIN');
    const socket = fakeSocket([], {
      send: async (frames) => {
        if (frames.some((frame) => frame.toString() === 'HELLO')) throw refused;
      },
    });
    const { channel, send } = open(socket, { onSendError: (error) => errors.push(error) });
    send({ type: 'hello', client: 'c1' });
    send({ type: 'heartbeat' });
    await channel.drained();
    expect(errors).toEqual([refused]);
    expect(socket.sent).toEqual([wire(encode({ type: 'heartbeat' }))]);
  });

  it('drops what is still queued once the socket is closed, without reporting it', async () => {
    const errors: unknown[] = [];
    let attempts = 0;
    const socket = fakeSocket([], {
      // The first send is cut short by the socket closing, as zeromq.js does on close().
      send: async (_frames, self) => {
        if (++attempts > 1) return;
        self.closed = true;
        throw new Error('socket closed');
      },
    });
    const { channel, send } = open(socket, { onSendError: (error) => errors.push(error) });
    send({ type: 'hello', client: 'c1' });
    send({ type: 'heartbeat' });
    await channel.drained();
    expect(attempts).toBe(1);
    expect(socket.sent).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe('Channel', () => {
  it('names no peer for a dropped message', async () => {
    const droppedFrom: Array<Buffer | undefined> = [];
    const channel = new Channel(fakeSocket([garbage]), { onDropped: (_error, peer) => droppedFrom.push(peer) });
    expect(await receiveAll(channel.messages())).toEqual([]);
    expect(droppedFrom).toEqual([undefined]);
  });
});

describe('RouterChannel', () => {
  it('names the peer of each message, and of each dropped one', async () => {
    const peerB = Buffer.from('peer-b');
    const droppedFrom: string[] = [];
    const channel = new RouterChannel(fakeSocket([[peerA, ...badSignature], [peerB, ...encode({ type: 'heartbeat' })]]), {
      onDropped: (_error, peer) => droppedFrom.push(String(peer)),
    });
    const received: Array<{ peer: string; message: Message }> = [];
    for await (const { peer, message } of channel.messages()) received.push({ peer: String(peer), message });
    expect(received).toEqual([{ peer: 'peer-b', message: { type: 'heartbeat' } }]);
    expect(droppedFrom).toEqual(['peer-a']);
  });

  it('puts the peer in front of the frames it sends', async () => {
    const socket = fakeSocket([]);
    const channel = new RouterChannel(socket);
    channel.send(Buffer.from('peer-a'), { type: 'ok', broker: 'b1', heartbeat: 1000 });
    await channel.drained();
    expect(socket.sent).toEqual([[Buffer.from('peer-a'), ...encode({ type: 'ok', broker: 'b1', heartbeat: 1000 })]]);
  });
});
