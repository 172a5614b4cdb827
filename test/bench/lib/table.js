/** The benchmark table, as Markdown, so that docs/benchmarks.md can quote a run verbatim. */

/** A number in the unit of the figure; times in seconds from one second on (as the median says). */
function amount(value, unit, seconds = value >= 1000) {
  if (value === undefined) return '';
  switch (unit) {
    case 'ms':
      return seconds ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 0)} ms`;
    case 'jobs/s':
    case '/s':
      return `${Math.round(value).toLocaleString('en')}/s`;
    case 'B':
      return `${Math.round(value)} B`;
    case 'MiB':
      return `${value.toFixed(0)} MiB`;
    default:
      return `${value}`;
  }
}

/** "1.23 s (1.10–1.50)": the median, then the spread of the runs (in the median's unit) when there are several. */
export function figure({ value, min, max, unit }) {
  const seconds = value >= 1000;
  const main = amount(value, unit, seconds);
  if (min === undefined || max === undefined || min === max) return main;
  const strip = (text) => text.replace(/ ?(s|ms|B|MiB|\/s)$/, '');
  return `${main} (${strip(amount(min, unit, seconds))}–${strip(amount(max, unit, seconds))})`;
}

export function renderTable(rows, { judged }) {
  const lines = [
    '| figure | testcloud (median, min–max) | baseline | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of rows) {
    const baseline = row.baseline.value === undefined ? row.baseline.name : `${row.baseline.name}: ${figure(row.baseline)}`;
    const ratio = row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`;
    const met = !judged || row.met === undefined ? '' : row.met ? 'yes' : '**no**';
    lines.push(`| ${row.figure} | ${figure(row.measured)} | ${baseline} | ${ratio} | ${row.target ?? ''} | ${met} |`);
  }
  return lines.join('\n');
}
