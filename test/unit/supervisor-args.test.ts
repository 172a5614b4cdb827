import { describe, it, expect } from 'vitest';
// Internals of the worker, not part of its public entry point.
import { instanceArgs, instanceEnv } from '../../packages/worker/dist/supervisor.js';
import { niceCommand } from '../../packages/worker/dist/process-group.js';
import { workerCli } from '@testcloud/worker';
import { runHere } from '../helpers/report.js';

describe('the command line of a supervised instance', () => {
  const table = { broker: { type: 'string' }, concurrency: { type: 'string' }, name: { type: 'string' }, verbose: { type: 'boolean' }, instances: { type: 'number' }, 'max-restarts': { type: 'number' }, supervise: { type: 'boolean' }, 'max-jobs': { type: 'number' } };

  it('repeats every option as parsed, minus the supervisor own, and numbers --name per instance', () => {
    const argv = { broker: 'tcp://127.0.0.1:5', concurrency: 'auto', name: 'ci', verbose: false, instances: 3, 'max-restarts': 5, supervise: true, 'max-jobs': 10 };
    expect(instanceArgs(table, argv, 2)).toEqual(['--broker=tcp://127.0.0.1:5', '--concurrency=auto', '--name=ci-2', '--no-verbose', '--max-jobs=10']);
  });

  it('leaves out options that have no value', () => {
    expect(instanceArgs(table, { broker: 'tcp://127.0.0.1:5', verbose: true }, 1)).toEqual(['--broker=tcp://127.0.0.1:5', '--verbose']);
  });

  it('knows every supervisor option of the real table', () => {
    for (const name of ['instances', 'supervise', 'max-restarts']) expect(Object.keys(workerCli.options)).toContain(name);
  });

  it('drops the environment variables that would make an instance a supervisor too', () => {
    const env = instanceEnv('TESTWORKER', { TESTWORKER_INSTANCES: '4', TESTWORKER_SUPERVISE: '1', TESTWORKER_MAX_RESTARTS: '2', TESTWORKER_MAX_LOAD: '2', PATH: '/bin' });
    expect(env).toEqual({ TESTWORKER_MAX_LOAD: '2', PATH: '/bin' });
  });
});

describe('niceCommand', () => {
  it('runs the command unchanged, quotes and all', () => {
    const cmd = `printf '%s|' "it's" 'a "test"'; echo $((1 + 2))`;
    expect(runHere(niceCommand(cmd, 1)).stdout.toString()).toBe(runHere(cmd).stdout.toString());
  });
});
