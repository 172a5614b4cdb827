import { z85Encode, type Logger, zeromq } from '@testcloud/protocol';

/** The ZAP domains the broker's two sockets announce, so a key is only good for its own side. */
export type Domain = 'clients' | 'workers';
export type AllowLists = Record<Domain, Map<string, string>>;

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/**
 * Decides every CURVE handshake on the broker's sockets (ZeroMQ RFC 27, ZAP): a client key is
 * accepted on the client socket only if it is in --authorized-clients, a worker key on the worker
 * socket only if it is in --authorized-workers. It must be bound before the sockets accept
 * anything; the sockets enforce the domain, so with no handler nobody gets in.
 */
export class ZapHandler {
  private readonly socket = new (zeromq().Router)({ linger: 0 });
  private loop: Promise<void> | undefined;

  constructor(
    private lists: AllowLists,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.socket.bind(ZAP_ENDPOINT);
    this.loop = this.serve();
  }

  /** New allow-lists apply to the next handshake; established connections stay up. */
  reload(lists: AllowLists): void {
    this.lists = lists;
  }

  async stop(): Promise<void> {
    this.socket.close();
    await this.loop;
  }

  private async serve(): Promise<void> {
    try {
      for await (const request of this.socket) await this.socket.send(this.decide(request));
    } catch {
      // closed
    }
  }

  private decide(request: Buffer[]): Array<Buffer | string> {
    const [path = Buffer.alloc(0), delimiter = Buffer.alloc(0), version, id = Buffer.alloc(0), domainFrame, addressFrame, , mechanism, credential] = request;
    const reply = (status: '200' | '400' | '500', text: string, user = '') => [path, delimiter, '1.0', id, status, text, user, ''];
    if (version?.toString() !== '1.0') return reply('500', 'unsupported ZAP version');
    const domain = domainFrame?.toString();
    const address = addressFrame?.toString() || 'an unknown address';
    if (domain !== 'clients' && domain !== 'workers') return reply('400', 'unknown domain');
    const role = domain === 'clients' ? 'client' : 'worker';
    if (mechanism?.toString() !== 'CURVE' || credential?.length !== 32) {
      this.log.limited(`zap-${address}`, `rejected a ${role} from ${address}: it did not offer a CURVE key`);
      return reply('400', 'CURVE key required');
    }
    const key = z85Encode(credential);
    const owner = this.lists[domain].get(key);
    if (owner === undefined) {
      this.log.limited(`zap-${address}`, `rejected a ${role} key ${key} from ${address}: not in --authorized-${domain} (logged once a minute per address)`);
      return reply('400', `key not authorized for ${domain}`);
    }
    this.log.info(`authenticated ${role} "${owner}" from ${address}`);
    return reply('200', 'OK', owner);
  }
}
