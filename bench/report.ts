/** A figure of the benchmark, beside its target when it has one. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** What the figure should be, e.g. "<= 0.5". */
  target?: string;
  ok?: boolean;
}

export type Report = (name: string, value: number, unit: string, target?: { max?: number; min?: number }) => void;

export const round = (n: number): number => Math.round(n * 1000) / 1000;

/** Figures reported so far, printed as each comes and as a table at the end. */
export class Figures {
  readonly all: Figure[] = [];

  readonly report: Report = (name, value, unit, target) => {
    const figure: Figure = { name, value: round(value), unit };
    if (target?.max !== undefined) Object.assign(figure, { target: `<= ${target.max}`, ok: value <= target.max });
    if (target?.min !== undefined) Object.assign(figure, { target: `>= ${target.min}`, ok: value >= target.min });
    this.all.push(figure);
    console.log(`  ${name}: ${figure.value} ${unit}${figure.target ? ` (target ${figure.target} ${unit}: ${figure.ok ? 'met' : 'MISSED'})` : ''}`);
  };

  printTable(): void {
    const rows = this.all.map((f) => [f.name, `${f.value} ${f.unit}`, f.target ? `${f.target} ${f.unit}` : '', f.ok === undefined ? '' : f.ok ? 'met' : 'MISSED']);
    const header = ['figure', 'value', 'target', ''];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    for (const row of rows) console.log(line(row));
  }
}
