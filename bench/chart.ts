/**
 * An SVG bar chart of the torch/tinyemo ratios of a `npm run bench -- --json` report.
 *   node dist/bench/chart.js REPORT.json > docs/bench-ratios.svg
 */
import * as fs from 'fs';

import { CaseResult, Machine } from './stats';

export function ratioChart(report: { machine: Machine; cases: CaseResult[] }): string {
  const rowH = 22;
  // Room for the longest case name (under 8 px a character at 12 px).
  const left = Math.max(190, 20 + Math.ceil(7.8 * Math.max(0, ...report.cases.map((c) => c.name.length))));
  const width = left + 530;
  const plotW = width - left - 70;
  const top = 46;
  const cases = report.cases;
  const height = top + rowH * cases.length + 30;
  // Log scale: 1x in the middle of a 0.25x..32x axis.
  const lo = Math.log2(0.25);
  const hi = Math.log2(32);
  const x = (r: number) => left + ((Math.min(Math.max(Math.log2(r), lo), hi) - lo) / (hi - lo)) * plotW;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">PyTorch time / tinyemo time (right of 1x: tinyemo faster)</text>`,
    `<text x="${left}" y="34" fill="#555">${esc(`${report.machine.date}, ${report.machine.cpu}, ${report.machine.threads} threads, kernels ${report.machine.isa}`)}</text>`,
  ];
  for (const t of [0.25, 0.5, 1, 2, 4, 8, 16, 32]) {
    out.push(`<line x1="${x(t)}" y1="${top - 4}" x2="${x(t)}" y2="${height - 26}" stroke="${t === 1 ? '#000' : '#ddd'}"/>`);
    out.push(`<text x="${x(t)}" y="${height - 10}" text-anchor="middle" fill="#555">${t}x</text>`);
  }
  cases.forEach((c, i) => {
    const y = top + i * rowH;
    const x1 = x(1);
    const x2 = x(c.ratio);
    const fill = c.ratio >= 1 ? '#2b7bb9' : '#d9822b';
    out.push(`<text x="${left - 8}" y="${y + 14}" text-anchor="end">${esc(c.name)}</text>`);
    out.push(`<rect x="${Math.min(x1, x2)}" y="${y + 3}" width="${Math.max(1, Math.abs(x2 - x1))}" height="${rowH - 6}" fill="${fill}"/>`);
    out.push(`<text x="${Math.max(x1, x2) + 4}" y="${y + 14}">${c.ratio.toFixed(2)}x</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/chart.js REPORT.json > chart.svg\n');
    process.exit(2);
  }
  process.stdout.write(`${ratioChart(JSON.parse(fs.readFileSync(file, 'utf8')))}\n`);
}
