import { describe, it, expect } from 'vitest';
import { parseDuration, parseSize, TestcloudError } from '@testcloud/protocol';

function optionError(parse: () => unknown): TestcloudError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(TestcloudError);
    return error as TestcloudError;
  }
  throw new Error('the value was accepted');
}

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    [' 3 s ', 3000],
    ['0', 0],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('takes a bare number in the default unit, seconds unless told', () => {
    expect(parseDuration('5')).toBe(5000);
    expect(parseDuration(5)).toBe(5000);
    expect(parseDuration('250', 'ms')).toBe(250);
  });

  it.each(['soon', '-1s', '5d', '', '1.s', 's'])('rejects %j with TESTCLOUD_BAD_OPTION and an example', (text) => {
    const error = optionError(() => parseDuration(text));
    expect(error.code).toBe('TESTCLOUD_BAD_OPTION');
    expect(error.message).toMatch(/not a duration \(try 500ms/);
  });
});

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['1KiB', 1024],
    ['512k', 512 * 1024],
    ['1.5k', 1536],
    ['16MiB', 16 * 1024 * 1024],
    ['2mb', 2 * 1024 * 1024],
    ['1G', 1024 ** 3],
    ['10b', 10],
  ])('reads %j as %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it('takes a number as bytes', () => {
    expect(parseSize(1000)).toBe(1000);
  });

  it.each(['lots', '1TB', '-1k', '', 'KiB'])('rejects %j with TESTCLOUD_BAD_OPTION', (text) => {
    const error = optionError(() => parseSize(text));
    expect(error.code).toBe('TESTCLOUD_BAD_OPTION');
    expect(error.message).toMatch(/not a size/);
  });
});
