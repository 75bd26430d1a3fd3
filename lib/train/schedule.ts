/**
 * Learning-rate schedules as pure functions of the step, so a resumed run
 * needs only the step number. OneCycle follows torch.optim.lr_scheduler.
 * OneCycleLR (two phases, cosine annealing, momentum — Adam's beta1 —
 * cycled inversely between max and base), which the TinyEmo reference uses.
 */
export interface ScheduleValues {
  lr: number;
  /** Adam's beta1 for this step. */
  beta1: number;
}

export interface OneCycle {
  kind: 'onecycle';
  maxLr: number;
  totalSteps: number;
  pctStart?: number; // 0.3
  divFactor?: number; // 25
  finalDivFactor?: number; // 1e4
  baseMomentum?: number; // 0.85
  maxMomentum?: number; // 0.95
}

export interface Cosine {
  kind: 'cosine';
  maxLr: number;
  totalSteps: number;
  minLr?: number;
  beta1?: number;
  /** Steps of linear warm-up from 0 before the cosine decay (Hugging Face's cosine-with-warm-up; default 0). */
  warmupSteps?: number;
}

export type Schedule = OneCycle | Cosine;

function annealCos(start: number, end: number, pct: number): number {
  return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
}

/** The values for optimizer step `step` (0 for the first update). */
export function scheduleAt(s: Schedule, step: number): ScheduleValues {
  if (s.kind === 'cosine') {
    const min = s.minLr ?? 0;
    const warm = s.warmupSteps ?? 0;
    const beta1 = s.beta1 ?? 0.9;
    if (step < warm) return { lr: (s.maxLr * step) / warm, beta1 };
    const t = Math.min(step - warm, s.totalSteps - warm) / Math.max(1, s.totalSteps - warm);
    return { lr: min + ((s.maxLr - min) * (1 + Math.cos(Math.PI * t))) / 2, beta1 };
  }
  const pct = s.pctStart ?? 0.3;
  const initial = s.maxLr / (s.divFactor ?? 25);
  const min = initial / (s.finalDivFactor ?? 1e4);
  const base = s.baseMomentum ?? 0.85;
  const max = s.maxMomentum ?? 0.95;
  // PyTorch's phase ends: pct_start * total - 1, then total - 1.
  const end1 = pct * s.totalSteps - 1;
  const end2 = s.totalSteps - 1;
  const i = Math.min(step, end2);
  if (i <= end1) {
    const p = end1 > 0 ? i / end1 : 1;
    return { lr: annealCos(initial, s.maxLr, p), beta1: annealCos(max, base, p) };
  }
  const p = (i - end1) / (end2 - end1);
  return { lr: annealCos(s.maxLr, min, p), beta1: annealCos(base, max, p) };
}
