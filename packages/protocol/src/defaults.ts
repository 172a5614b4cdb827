/** Where the broker listens unless told otherwise: loopback only, as the seed's ports. */
export const DEFAULT_CLIENT_ENDPOINT = 'tcp://127.0.0.1:2224';
export const DEFAULT_WORKER_ENDPOINT = 'tcp://127.0.0.1:2225';
