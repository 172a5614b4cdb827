import { describe, expect, it } from 'vitest';
import { jobEnv } from '../../packages/client/dist/job-env.js';

describe('jobEnv (--env)', () => {
  it('forwards NAME from here and takes NAME=VALUE as given', () => {
    expect({ ...jobEnv(['CI_TOKEN', 'MODE=fast', 'EMPTY=', 'EQ=a=b'], { CI_TOKEN: 's3cret' }) }).toEqual({ CI_TOKEN: 's3cret', MODE: 'fast', EMPTY: '', EQ: 'a=b' });
  });

  it('sends nothing without --env', () => {
    expect(jobEnv([], {})).toBeUndefined();
  });

  it('refuses an unset variable and a name that is not one', () => {
    expect(() => jobEnv(['MISSING'], {})).toThrow(/MISSING is not set here/);
    expect(() => jobEnv(['1BAD=x'], {})).toThrow(/variable name/);
    expect(() => jobEnv(['=x'], {})).toThrow(/variable name/);
  });
});
