import { describe, expect, it } from 'vitest';
import { Cancel } from '../../packages/worker/dist/cancel.js';

describe("a job's cancel switch (what the worker hands executors instead of an AbortSignal)", () => {
  it('runs each listener once, on the first abort, and never one added after it', () => {
    const cancel = new Cancel();
    const heard: string[] = [];
    cancel.addEventListener('abort', () => heard.push('a'));
    cancel.addEventListener('abort', () => heard.push('b'));
    cancel.abort();
    cancel.abort();
    cancel.addEventListener('abort', () => heard.push('late'));
    expect(cancel.aborted).toBe(true);
    expect(heard).toEqual(['a', 'b']);
  });

  it('skips a listener removed before the abort, or by an earlier listener during it', () => {
    const cancel = new Cancel();
    const heard: string[] = [];
    const gone = () => heard.push('gone');
    const removedOnTheWay = () => heard.push('removed on the way');
    cancel.addEventListener('abort', gone);
    cancel.removeEventListener('abort', gone);
    cancel.addEventListener('abort', () => {
      heard.push('first');
      cancel.removeEventListener('abort', removedOnTheWay);
    });
    cancel.addEventListener('abort', removedOnTheWay);
    cancel.addEventListener('abort', () => heard.push('last'));
    cancel.abort();
    expect(heard).toEqual(['first', 'last']);
  });

  it('still runs the other listeners when one throws, and lets the error surface uncaught', async () => {
    const cancel = new Cancel();
    const heard: string[] = [];
    cancel.addEventListener('abort', () => {
      throw new Error('listener failed');
    });
    cancel.addEventListener('abort', () => heard.push('after'));
    const uncaught = new Promise<unknown>((resolve) => {
      const listeners = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.once('uncaughtException', (error) => {
        for (const listener of listeners) process.on('uncaughtException', listener);
        resolve(error);
      });
    });
    cancel.abort();
    expect(heard).toEqual(['after']);
    expect(await uncaught).toMatchObject({ message: 'listener failed' });
  });
});
