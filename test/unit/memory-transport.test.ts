import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDealer, MemoryRouter, TestcloudError, type Message } from '@testcloud/protocol';

/** The next `count` items of an async iterator. */
async function take<T>(iterator: AsyncIterator<T>, count: number): Promise<T[]> {
  const items: T[] = [];
  while (items.length < count) {
    const next = await iterator.next();
    if (next.done) break;
    items.push(next.value);
  }
  return items;
}

const hello = (client: string): Message => ({ type: 'hello', client });
const bye = (reason: string): Message => ({ type: 'bye', reason });

let endpoints = 0;
const opened: Array<{ close(): void }> = [];
function bind(): MemoryRouter {
  const router = MemoryRouter.bind(`mem://test-${process.pid}-${++endpoints}`);
  opened.push(router);
  return router;
}
function connect(router: MemoryRouter, id: string): MemoryDealer {
  const dealer = new MemoryDealer(router.endpoint, id);
  opened.push(dealer);
  return dealer;
}

afterEach(() => {
  for (const port of opened.splice(0)) port.close();
});

describe('the in-process transport (mem://), a ROUTER and its DEALERs without ZeroMQ', () => {
  it('names each dealer by its routing id, and answers reach only the dealer they are for', async () => {
    const router = bind();
    const a = connect(router, 'w-a');
    const b = connect(router, 'w-b');
    a.send(hello('a'));
    b.send(hello('b'));
    const received = await take(router.messages(), 2);
    expect(received.map(({ peer, message }) => [peer.toString('latin1'), message])).toEqual([
      ['w-a', hello('a')],
      ['w-b', hello('b')],
    ]);
    router.send(received[1]!.peer, bye('to b'));
    router.send(received[0]!.peer, bye('to a'));
    expect(await take(a.messages(), 1)).toEqual([bye('to a')]);
    expect(await take(b.messages(), 1)).toEqual([bye('to b')]);
  });

  it('delivers after the sender has finished its turn, in the order sent', async () => {
    const router = bind();
    const dealer = connect(router, 'c-1');
    const inbox = router.messages();
    const arrived: string[] = [];
    const reading = (async () => {
      for (const { message } of await take(inbox, 3)) arrived.push((message as { client: string }).client);
    })();
    dealer.send(hello('1'));
    dealer.send(hello('2'));
    dealer.send(hello('3'));
    // Nothing has been handled yet: no handler ever runs inside a send.
    expect(arrived).toEqual([]);
    await reading;
    expect(arrived).toEqual(['1', '2', '3']);
  });

  it('drops what is sent to a peer it never heard from, and what a dealer sends with nobody bound', async () => {
    const endpoint = `mem://test-${process.pid}-unbound`;
    const early = new MemoryDealer(endpoint, 'w-early');
    opened.push(early);
    early.send(hello('lost'));
    const router = MemoryRouter.bind(endpoint);
    opened.push(router);
    router.send(Buffer.from('w-stranger'), bye('nobody'));
    early.send(hello('heard'));
    expect((await take(router.messages(), 1)).map(({ message }) => message)).toEqual([hello('heard')]);
  });

  it('lets a dealer that connects again with the same routing id take the old one’s place', async () => {
    const router = bind();
    const old = connect(router, 'w-same');
    old.send(hello('old'));
    const inbox = router.messages();
    const [first] = await take(inbox, 1);
    const fresh = connect(router, 'w-same');
    fresh.send(hello('fresh'));
    await take(inbox, 1);
    // The broker still holds the first peer buffer: it now reaches the fresh connection.
    router.send(first!.peer, bye('after reconnect'));
    expect(await take(fresh.messages(), 1)).toEqual([bye('after reconnect')]);
  });

  it('ends the readers of a closed side, and frees the name for the next bind', async () => {
    const router = bind();
    const dealer = connect(router, 'w-x');
    const routerDone = take(router.messages(), 1);
    const dealerDone = take(dealer.messages(), 1);
    router.close();
    dealer.close();
    expect(await routerDone).toEqual([]);
    expect(await dealerDone).toEqual([]);
    const again = MemoryRouter.bind(router.endpoint);
    opened.push(again);
    expect(again.endpoint).toBe(router.endpoint);
  });

  it('refuses a second bind of a bound name, and a name that is not mem://', () => {
    const router = bind();
    expect(() => MemoryRouter.bind(router.endpoint)).toThrow(TestcloudError);
    expect(() => MemoryRouter.bind(router.endpoint)).toThrow(/already bound/);
    expect(() => MemoryRouter.bind('inproc://x')).toThrow(/not an in-process endpoint/);
  });
});
