export { Broker, type BrokerOptions, type BrokerStats } from './broker.js';
export { BrokerError, type BrokerErrorCode } from './errors.js';
export { checkBindAllowed, endpointHost, isLoopbackHost } from './bind-policy.js';
export { brokerCli } from './cli-options.js';
