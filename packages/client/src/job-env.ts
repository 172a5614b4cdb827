import type { JobEnv } from '@testcloud/protocol';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `--env NAME` (repeatable): the variables sent with every command. `NAME` forwards this
 * process's value and is an error when it is unset (a silently missing CI secret is worse
 * than a failed start); `NAME=VALUE` sends that value. Returns the variables, or throws a
 * message for the usage error.
 */
export function jobEnv(specs: readonly string[], env: NodeJS.ProcessEnv = process.env): JobEnv | undefined {
  if (specs.length === 0) return undefined;
  const out = Object.create(null) as JobEnv;
  for (const spec of specs) {
    const equals = spec.indexOf('=');
    const name = equals === -1 ? spec : spec.slice(0, equals);
    if (!NAME.test(name)) throw new Error(`--env takes a variable name (or NAME=VALUE), got ${JSON.stringify(spec)}`);
    const value = equals === -1 ? env[name] : spec.slice(equals + 1);
    if (value === undefined) throw new Error(`--env ${name}: ${name} is not set here; set it, or pass --env ${name}=VALUE`);
    if (value.includes('\0')) throw new Error(`--env ${name}: the value contains a NUL byte`);
    out[name] = value;
  }
  return out;
}
