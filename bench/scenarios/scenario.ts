/** What a benchmark scenario is and what it reports. */
import type { BenchPlatform } from '../lib/platform.ts';

export interface Target {
  /** `min`: the figure must be at least `value`; `max`: at most. */
  kind: 'min' | 'max';
  value: number;
}

export interface Metric {
  key: string;
  label: string;
  unit: string;
  value: number;
  /** The target figure, for the embedded platform. */
  target?: Target;
}

export interface Scenario {
  name: string;
  /** Other names accepted by `--scenario` (a, b, c, d for the pipeline scenarios). */
  aliases: string[];
  title: string;
  /** Pure scenarios need no platform and run once, whatever `--backend` says. */
  pure: boolean;
  run(p: BenchPlatform | undefined): Promise<Metric[]>;
}

export const metric = (key: string, label: string, unit: string, value: number, target?: Target): Metric =>
  target ? { key, label, unit, value, target } : { key, label, unit, value };

export const meets = (m: Metric): boolean | undefined =>
  m.target === undefined
    ? undefined
    : m.target.kind === 'min'
      ? m.value >= m.target.value
      : m.value <= m.target.value;
