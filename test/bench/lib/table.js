/** The benchmark table, as Markdown, so that docs/benchmarks.md can quote a run verbatim. */

function amount(value, unit) {
  if (value === undefined) return '';
  switch (unit) {
    case 'ms':
      return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 0)} ms`;
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

/** "1.23 s (1.10–1.50)": the median, then the spread of the runs when there are several. */
export function figure({ value, min, max, unit }) {
  const main = amount(value, unit);
  if (min === undefined || max === undefined || min === max) return main;
  const strip = (text) => text.replace(/ ?(s|ms|B|MiB|\/s)$/, '');
  return `${main} (${strip(amount(min, unit))}–${strip(amount(max, unit))})`;
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
