import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, onTestFinished } from 'vitest';
// Internals of the worker, not part of its public entry point.
import { LoadController, parseMemLimit, workerStateOf, type JobView } from '../../packages/worker/dist/load-controller.js';
import { FileLoadSource, ProcLoadSource, parseReadings, parseCpuLine, parseMeminfo, type LoadReadings } from '../../packages/worker/dist/load-readings.js';

const TOTAL = 8192;
/** A host with nothing to do, with some readings overridden. */
function host(over: Partial<LoadReadings> = {}): LoadReadings {
  return { load: 0.1, cpu: 5, freeMem: 6000, totalMem: TOTAL, ...over };
}
const running = (...ids: number[]): JobView[] => ids.map((id) => ({ id, state: 'running', pausable: true }));

describe('LoadController: admission', () => {
  it('admits while every reading is within its limit', () => {
    const c = new LoadController({ maxLoad: 2, maxCpu: 90, minFreeMem: { mib: 500 } });
    const d = c.decide(host({ load: 1.99, cpu: 90, freeMem: 500 }), running(1));
    expect(d).toEqual({ admit: true, reasons: [], pause: [], resume: [], kill: [] });
  });

  it('withholds slots while the load per CPU is over --max-load, and says why', () => {
    const c = new LoadController({ maxLoad: 2 });
    const d = c.decide(host({ load: 3.5 }), []);
    expect(d.admit).toBe(false);
    expect(d.reasons).toEqual(['load 3.50 over --max-load 2 (until 1.80)']);
  });

  it('withholds slots while the CPUs are busier than --max-cpu', () => {
    expect(new LoadController({ maxCpu: 80 }).decide(host({ cpu: 95 }), []).admit).toBe(false);
  });

  it('withholds slots while free memory is under --min-free-mem, in MiB or as a percentage', () => {
    expect(new LoadController({ minFreeMem: { mib: 1000 } }).decide(host({ freeMem: 999 }), []).admit).toBe(false);
    expect(new LoadController({ minFreeMem: { percent: 10 } }).decide(host({ freeMem: 800 }), []).admit).toBe(false);
    expect(new LoadController({ minFreeMem: { percent: 10 } }).decide(host({ freeMem: 900 }), []).admit).toBe(true);
  });

  it('withholds slots on any one crossed limit, listing each', () => {
    const c = new LoadController({ maxLoad: 1, maxCpu: 50, minFreeMem: { mib: 100 } });
    const d = c.decide(host({ load: 2, cpu: 60, freeMem: 5000 }), []);
    expect(d.admit).toBe(false);
    expect(d.reasons).toHaveLength(2);
  });

  it('withholds slots below the pause and kill thresholds too, with no --min-free-mem', () => {
    expect(new LoadController({ pauseFreeMem: { mib: 500 } }).decide(host({ freeMem: 400 }), []).admit).toBe(false);
    expect(new LoadController({ killFreeMem: { mib: 100 } }).decide(host({ freeMem: 50 }), []).admit).toBe(false);
  });

  it('has nothing to do without limits', () => {
    const c = new LoadController({});
    expect(c.active).toBe(false);
    expect(c.decide(host({ load: 50, cpu: 100, freeMem: 1 }), running(1, 2)).admit).toBe(true);
  });
});

describe('LoadController: hysteresis', () => {
  it('keeps slots withheld until the load is back 10% under the limit, then offers them again', () => {
    const c = new LoadController({ maxLoad: 2 });
    const admits = [1.9, 2.1, 1.95, 1.85, 1.81, 1.8, 1.9, 2.0].map((load) => c.decide(host({ load }), []).admit);
    expect(admits).toEqual([true, false, false, false, false, true, true, true]);
  });

  it('keeps slots withheld until free memory is 10% over --min-free-mem', () => {
    const c = new LoadController({ minFreeMem: { mib: 1000 } });
    const admits = [1200, 990, 1050, 1099, 1100, 1000].map((freeMem) => c.decide(host({ freeMem }), []).admit);
    expect(admits).toEqual([true, false, false, false, true, true]);
  });

  it('takes the band from the options', () => {
    const c = new LoadController({ maxCpu: 80, hysteresis: 0.5 });
    const admits = [81, 60, 40].map((cpu) => c.decide(host({ cpu }), []).admit);
    expect(admits).toEqual([false, false, true]);
  });

  it('does not flap on readings that hover around the limit', () => {
    const c = new LoadController({ maxLoad: 1 });
    const hovering = [1.01, 0.99, 1.02, 0.98, 1.0, 0.97, 1.03];
    const admits = hovering.map((load) => c.decide(host({ load }), []).admit);
    expect(admits.slice(1).every((a) => a === false)).toBe(true);
  });
});

describe('LoadController: memory pressure', () => {
  const limits = { pauseFreeMem: { mib: 500 }, killFreeMem: { mib: 100 } };

  it('pauses the newest running job, one per sample, while memory is short', () => {
    const c = new LoadController(limits);
    expect(c.decide(host({ freeMem: 400 }), running(1, 2, 3)).pause).toEqual([3]);
    const jobs: JobView[] = [...running(1, 2), { id: 3, state: 'paused', pausable: true }];
    expect(c.decide(host({ freeMem: 400 }), jobs).pause).toEqual([2]);
  });

  it('pauses even the last running job, and never one without a process group yet', () => {
    const c = new LoadController(limits);
    expect(c.decide(host({ freeMem: 400 }), running(7)).pause).toEqual([7]);
    const unspawned: JobView[] = [...running(1), { id: 2, state: 'running', pausable: false }];
    expect(new LoadController(limits).decide(host({ freeMem: 400 }), unspawned).pause).toEqual([1]);
  });

  it('holds paused jobs inside the band and resumes the oldest first once memory is 10% over the limit', () => {
    const c = new LoadController(limits);
    c.decide(host({ freeMem: 400 }), running(1, 2));
    const paused: JobView[] = [
      { id: 1, state: 'paused', pausable: true },
      { id: 2, state: 'paused', pausable: true },
    ];
    const inBand = c.decide(host({ freeMem: 520 }), paused);
    expect(inBand).toMatchObject({ admit: false, pause: [], resume: [] });
    const recovered = c.decide(host({ freeMem: 560 }), paused);
    expect(recovered.resume).toEqual([1]);
    expect(recovered.admit).toBe(false); // job 2 is still paused
    const last = c.decide(host({ freeMem: 560 }), [{ id: 1, state: 'running', pausable: true }, paused[1]!]);
    expect(last).toMatchObject({ resume: [2], admit: true });
  });

  it('kills the newest job below --kill-free-mem, paused or not, and pauses the next newest', () => {
    const c = new LoadController(limits);
    const jobs: JobView[] = [...running(1, 2), { id: 3, state: 'paused', pausable: true }];
    const d = c.decide(host({ freeMem: 50 }), jobs);
    expect(d.kill).toEqual([3]);
    expect(d.pause).toEqual([2]);
    expect(d.admit).toBe(false);
  });

  it('kills one job at a time: none while another is still stopping', () => {
    const c = new LoadController({ killFreeMem: { mib: 100 } });
    const jobs: JobView[] = [...running(1), { id: 2, state: 'stopping', pausable: true }];
    expect(c.decide(host({ freeMem: 50 }), jobs).kill).toEqual([]);
    expect(c.decide(host({ freeMem: 50 }), running(1)).kill).toEqual([1]);
  });

  it('kills the only job, and with none running kills nothing', () => {
    const c = new LoadController({ killFreeMem: { percent: 1 } });
    expect(c.decide(host({ freeMem: 80 }), running(4)).kill).toEqual([4]);
    expect(c.decide(host({ freeMem: 80 }), []).kill).toEqual([]);
  });

  it('kills nothing and pauses nothing while memory is plentiful', () => {
    const d = new LoadController(limits).decide(host(), running(1, 2));
    expect(d).toEqual({ admit: true, reasons: [], pause: [], resume: [], kill: [] });
  });
});

describe('the state a worker reports', () => {
  const base = { draining: false, paused: 0, admit: true, running: 0, slots: 2 };
  it('is the most telling of what is true', () => {
    expect(workerStateOf(base)).toBe('idle');
    expect(workerStateOf({ ...base, running: 1 })).toBe('busy');
    expect(workerStateOf({ ...base, running: 2 })).toBe('saturated');
    expect(workerStateOf({ ...base, running: 1, admit: false })).toBe('withheld');
    expect(workerStateOf({ ...base, running: 1, admit: false, paused: 1 })).toBe('paused');
    expect(workerStateOf({ ...base, running: 1, admit: false, paused: 1, draining: true })).toBe('draining');
  });
});

describe('parsing limits and readings', () => {
  it('reads memory limits as MiB by default, with units, or as a percentage', () => {
    expect(parseMemLimit('512', 'min-free-mem')).toEqual({ mib: 512 });
    expect(parseMemLimit('2GiB', 'min-free-mem')).toEqual({ mib: 2048 });
    expect(parseMemLimit('512k', 'min-free-mem')).toEqual({ mib: 0.5 });
    expect(parseMemLimit('10%', 'min-free-mem')).toEqual({ percent: 10 });
    expect(() => parseMemLimit('110%', 'min-free-mem')).toThrow(/--min-free-mem takes MiB/);
    expect(() => parseMemLimit('lots', 'kill-free-mem')).toThrow(/--kill-free-mem/);
  });

  it('fills the fields a readings file leaves out with an idle host', () => {
    const idle = { load: 0, cpu: 0, freeMem: 4096, totalMem: 4096 };
    expect(parseReadings('{"load": 3}', idle)).toEqual({ ...idle, load: 3 });
    expect(parseReadings('{"freeMem": 100, "totalMem": 1000}', idle)).toEqual({ load: 0, cpu: 0, freeMem: 100, totalMem: 1000 });
    expect(() => parseReadings('[1]', idle)).toThrow(/object/);
    expect(() => parseReadings('{"cpu": "high"}', idle)).toThrow(/cpu/);
  });

  it('reads busy time from /proc/stat and MemAvailable from /proc/meminfo', () => {
    const sample = parseCpuLine('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n');
    expect(sample).toMatchObject({ busy: 150, total: 1000 });
    expect(parseMeminfo('MemTotal:       8388608 kB\nMemFree:  100 kB\nMemAvailable:   2097152 kB\n')).toEqual({ freeMem: 2048, totalMem: 8192 });
  });
});

describe('load sources', () => {
  function dir(): string {
    const path = mkdtempSync(join(tmpdir(), 'testcloud-readings-'));
    onTestFinished(() => rmSync(path, { recursive: true, force: true }));
    return path;
  }

  it('measures CPU busy time between two /proc/stat samples, and memory from /proc/meminfo', async () => {
    const root = dir();
    writeFileSync(join(root, 'meminfo'), 'MemTotal: 4194304 kB\nMemAvailable: 1048576 kB\n');
    writeFileSync(join(root, 'stat'), 'cpu  1000 0 0 9000 0 0 0 0 0 0\n');
    const source = new ProcLoadSource(5000, root);
    expect(await source.read()).toMatchObject({ cpu: 10, freeMem: 1024, totalMem: 4096 });
    writeFileSync(join(root, 'stat'), 'cpu  1750 0 0 9250 0 0 0 0 0 0\n'); // 750 of the next 1000 ticks busy
    expect((await source.read()).cpu).toBe(75);
  });

  it('re-reads a readings file on every sample and keeps the last good readings when it turns bad', async () => {
    const file = join(dir(), 'readings.json');
    const errors: string[] = [];
    const source = new FileLoadSource(file, (message) => errors.push(message));
    writeFileSync(file, '{"load": 2, "freeMem": 100, "totalMem": 1000}');
    expect(await source.read()).toEqual({ load: 2, cpu: 0, freeMem: 100, totalMem: 1000 });
    writeFileSync(file, '{"load": 0.5}');
    expect((await source.read()).load).toBe(0.5);
    writeFileSync(file, '{"load": ');
    expect((await source.read()).load).toBe(0.5);
    expect(errors).toEqual([expect.stringMatching(/bad load readings in .*readings\.json/)]);
  });
});
