/** A figure of the benchmark, beside its target when it has one. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** What the figure should be, e.g. "<= 0.5". */
  target?: string;
  ok?: boolean;
  /** A difference of two measures no larger than their noise floor (given here): told as such, not as a figure. */
  noiseFloor?: number;
  /** The runs (or parts of one window) the figure was made of: how many, what they are, their least and greatest. */
  spread?: { runs: number; of: string; min: number; max: number };
}

/** How much each section measures: `--quick` runs a smaller version in about a minute. */
export function benchPlan(quick: boolean) {
  return quick
    ? {
        startupRuns: 3,
        sdkRuns: 3,
        audioRuns: 2,
        restartDownMs: [200, 800],
        cutRuns: 1,
        reconnectCycles: 20,
        pushSeconds: 8,
        capacitySteps: [2, 4],
        capacitySeconds: 6,
      }
    : {
        startupRuns: 10,
        sdkRuns: 10,
        audioRuns: 6,
        restartDownMs: [100, 300, 500, 700, 900],
        cutRuns: 3,
        reconnectCycles: 100,
        pushSeconds: 20,
        capacitySteps: [1, 8, 16, 24, 32, 40, 48, 56, 64],
        capacitySeconds: 15,
      };
}

/** What every section of the benchmark is given. */
export interface Bench {
  quick: boolean;
  plan: ReturnType<typeof benchPlan>;
  report: Report;
  /** Raw figures, written to the JSON results. */
  details: Record<string, unknown>;
  /** Where the benchmark keeps its files (.bench). */
  work: string;
}

export type Report = (
  name: string,
  value: number,
  unit: string,
  /** `runs`: each run's own figure (or each part's of one window: `runsAre`), printed as the figure's spread. */
  target?: { max?: number; min?: number; noiseFloor?: number; runs?: readonly number[]; runsAre?: string },
) => void;

/** A figure's spread as printed: "n runs a-b". */
const spreadSaid = (f: Figure): string =>
  f.spread ? `${f.spread.runs} ${f.spread.of} ${f.spread.min}-${f.spread.max} ${f.unit}` : '';

export const round = (n: number): number => Math.round(n * 1000) / 1000;

/** Figures reported so far, printed as each comes and as a table at the end. */
export class Figures {
  readonly all: Figure[] = [];

  readonly report: Report = (name, value, unit, target) => {
    const figure: Figure = { name, value: round(value), unit };
    if (target?.runs && target.runs.length > 1)
      figure.spread = {
        runs: target.runs.length,
        of: target.runsAre ?? 'runs',
        min: round(Math.min(...target.runs)),
        max: round(Math.max(...target.runs)),
      };
    // What one more output adds is the difference of two windows: no larger than the spread of two
    // windows of the same load, it is noise, and told as such (never as a negative cost).
    if (target?.noiseFloor !== undefined && Math.abs(value) <= target.noiseFloor) {
      figure.noiseFloor = round(target.noiseFloor);
      this.all.push(figure);
      console.log(`  ${name}: below the noise floor (±${figure.noiseFloor} ${unit}; measured ${figure.value})`);
      return;
    }
    if (target?.max !== undefined) Object.assign(figure, { target: `<= ${target.max}`, ok: value <= target.max });
    if (target?.min !== undefined) Object.assign(figure, { target: `>= ${target.min}`, ok: value >= target.min });
    this.all.push(figure);
    console.log(
      `  ${name}: ${figure.value} ${unit}${figure.spread ? ` [${spreadSaid(figure)}]` : ''}` +
        (figure.target ? ` (target ${figure.target} ${unit}: ${figure.ok ? 'met' : 'MISSED'})` : ''),
    );
  };

  printTable(): void {
    const shown = (f: Figure): string =>
      f.noiseFloor !== undefined ? `< noise (±${f.noiseFloor} ${f.unit})` : `${f.value} ${f.unit}`;
    const rows = this.all.map((f) => [
      f.name,
      shown(f),
      spreadSaid(f),
      f.target ? `${f.target} ${f.unit}` : '',
      f.ok === undefined ? '' : f.ok ? 'met' : 'MISSED',
    ]);
    const header = ['figure', 'value', 'spread', 'target', ''];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string =>
      cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd();
    console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    for (const row of rows) console.log(line(row));
  }
}
