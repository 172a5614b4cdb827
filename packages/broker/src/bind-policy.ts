import { isIP } from 'node:net';
import { BrokerError } from './errors.js';

/** The host part of a ZeroMQ endpoint, or null for transports that never leave the machine. */
export function endpointHost(endpoint: string): string | null {
  const match = /^(tcp|ipc|inproc|ws|wss|udp):\/\/(.*)$/.exec(endpoint);
  if (!match) throw new BrokerError('TESTCLOUD_BAD_ENDPOINT', `"${endpoint}" is not a ZeroMQ endpoint (expected e.g. tcp://127.0.0.1:2224)`);
  const [, transport, rest] = match as unknown as [string, string, string];
  if (transport === 'ipc' || transport === 'inproc') return null;
  const bracketed = /^\[([^\]]+)\](?::.*)?$/.exec(rest);
  if (bracketed) return bracketed[1]!;
  const colon = rest.lastIndexOf(':');
  return colon === -1 ? rest : rest.slice(0, colon);
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * A worker runs any command the broker hands it, so an open broker port is remote code
 * execution: refuse to listen beyond loopback unless the operator says so explicitly.
 */
export function checkBindAllowed(endpoint: string, { insecure }: { insecure: boolean }): { public: boolean } {
  const host = endpointHost(endpoint);
  if (host === null || isLoopbackHost(host)) return { public: false };
  if (!insecure) {
    throw new BrokerError(
      'TESTCLOUD_INSECURE_BIND',
      `refusing to bind ${endpoint} without authentication: anyone who reaches it can run commands on every worker. ` +
        'Bind a loopback address, or pass --insecure on a network you trust.',
    );
  }
  return { public: true };
}

/** Binds a socket, turning ZeroMQ's error into one line that says what to do. */
export async function bindSocket(socket: { bind(endpoint: string): Promise<void>; readonly lastEndpoint: string | null }, endpoint: string): Promise<string> {
  try {
    await socket.bind(endpoint);
  } catch (cause) {
    const reason = (cause as { code?: string }).code === 'EADDRINUSE' ? 'the address is already in use (is another testbroker running?)' : (cause as Error).message;
    throw new BrokerError('TESTCLOUD_BIND_FAILED', `cannot listen on ${endpoint}: ${reason}`, { cause });
  }
  return socket.lastEndpoint ?? endpoint;
}
