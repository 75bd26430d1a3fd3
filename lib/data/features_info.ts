/** tinyemo-features.json: how `tinyemo features` made a data folder (kept apart so reading it needs no image code). */
import * as fs from 'fs';
import * as path from 'path';

import { readJsonFile } from '../io/model_folder';

export const FEATURES_INFO_FILE = 'tinyemo-features.json';

/** What a features folder records about how it was made (read by `train` into its bundle). */
export interface FeaturesInfo {
  /** The vision tower as given: a folder or a hub id. */
  vision: string;
  family: string;
  output: 'image_embeds';
  dim: number;
  dtype: 'f32' | 'f16';
  /** 'bf16' when the tower's products were computed in bf16 (absent: f32). */
  precision?: 'bf16';
}

/** The features info of a data folder, when `tinyemo features` made it. */
export function readFeaturesInfo(dir: string): FeaturesInfo | undefined {
  const f = path.join(dir, FEATURES_INFO_FILE);
  if (!fs.existsSync(f)) return undefined;
  const v = readJsonFile(f);
  return typeof v.vision === 'string' && typeof v.dim === 'number' ? (v as unknown as FeaturesInfo) : undefined;
}
