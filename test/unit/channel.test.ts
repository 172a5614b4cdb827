import { describe, it, expect } from 'vitest';
import { Channel, encode, RouterChannel, type FrameSocket, type Message, type ProtocolError } from '@testcloud/protocol';

/** Something shaped like a zeromq.js socket: yields the given messages, records what is sent. */
function fakeSocket(incoming: Buffer[][]): FrameSocket & { sent: Buffer[][] } {
  const sent: Buffer[][] = [];
  return {
    sent,
    closed: false,
    async send(frames) {
      sent.push(frames);
    },
    async *[Symbol.asyncIterator]() {
      yield* incoming;
    },
  };
}

const garbage = [Buffer.from('GET / HTTP/1.1\r\n')];
const badSignature = [Buffer.from('XCLD\x01', 'latin1'), Buffer.from('HELLO'), Buffer.from('{"client":"c"}')];

describe('Channel', () => {
  it('drops a message with a bad signature and keeps serving', async () => {
    const dropped: string[] = [];
    const channel = new Channel(fakeSocket([badSignature, encode({ type: 'hello', client: 'c1' }), garbage, encode({ type: 'heartbeat' })]), {
      onDropped: (error: ProtocolError) => dropped.push(error.code),
    });
    const received: Message[] = [];
    for await (const message of channel.messages()) received.push(message);
    expect(received).toEqual([{ type: 'hello', client: 'c1' }, { type: 'heartbeat' }]);
    expect(dropped).toEqual(['TESTCLOUD_PROTOCOL_SIGNATURE', 'TESTCLOUD_PROTOCOL_SIGNATURE']);
    expect(channel.dropped).toBe(2);
  });

  it('drops a message over its maxMessageSize and keeps serving', async () => {
    const dropped: string[] = [];
    const big = encode({ type: 'hello', client: 'x'.repeat(1000) });
    const channel = new Channel(fakeSocket([big, encode({ type: 'bye', reason: 'done' })]), {
      maxMessageSize: 500,
      onDropped: (error) => dropped.push(error.code),
    });
    const received: Message[] = [];
    for await (const message of channel.messages()) received.push(message);
    expect(received).toEqual([{ type: 'bye', reason: 'done' }]);
    expect(dropped).toEqual(['TESTCLOUD_PROTOCOL_TOO_LARGE']);
  });

  it('sends messages in the order they were queued', async () => {
    const socket = fakeSocket([]);
    const channel = new Channel(socket);
    channel.send({ type: 'hello', client: 'c1' });
    channel.send({ type: 'heartbeat' });
    channel.send({ type: 'bye', reason: 'done' });
    await channel.drained();
    expect(socket.sent).toEqual([encode({ type: 'hello', client: 'c1' }), encode({ type: 'heartbeat' }), encode({ type: 'bye', reason: 'done' })]);
  });
});

describe('RouterChannel', () => {
  it('names the peer of each message, and of each dropped one', async () => {
    const peerA = Buffer.from('peer-a');
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
