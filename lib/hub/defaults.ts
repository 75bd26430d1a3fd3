/**
 * The repositories tinyemo uses by default, pinned in one place. Revisions
 * are branch names until a release pins commit hashes (the hub cannot be
 * reached from where this was written, so no hash could be checked).
 */
export interface PinnedRepo {
  repo: string;
  revision: string;
  /** What tinyemo uses it for. */
  role: string;
}

export const DEFAULT_REPOS: Readonly<Record<string, PinnedRepo>> = {
  'clip-vit-l14': { repo: 'openai/clip-vit-large-patch14', revision: 'main', role: 'vision tower (image embeddings)' },
  'clip-vit-b16': { repo: 'openai/clip-vit-base-patch16', revision: 'main', role: 'vision tower' },
  'clip-vit-l14-336': { repo: 'openai/clip-vit-large-patch14-336', revision: 'main', role: 'vision tower' },
  'siglip-so400m': { repo: 'google/siglip-so400m-patch14-384', revision: 'main', role: 'vision tower (TinyLLaVA)' },
  'tinyemo-openelm-270m': { repo: 'ggcristian/TinyEmo-CLIP-OpenELM-270M-Syn', revision: 'main', role: 'Metric Projector' },
  'tinyemo-openelm-450m': { repo: 'ggcristian/TinyEmo-CLIP-OpenELM-450M', revision: 'main', role: 'Metric Projector' },
  'tinyemo-tinyllama': { repo: 'ggcristian/TinyEmo-CLIP-TinyLlama-1_1-Syn', revision: 'main', role: 'Metric Projector' },
  'tinyemo-phi-2': { repo: 'ggcristian/TinyEmo-CLIP-Phi-2', revision: 'main', role: 'Metric Projector' },
  'openelm-270m': { repo: 'apple/OpenELM-270M-Instruct', revision: 'main', role: 'LLM (label space, reasoning)' },
  'openelm-450m': { repo: 'apple/OpenELM-450M-Instruct', revision: 'main', role: 'LLM' },
  tinyllama: { repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', revision: 'main', role: 'LLM; tokenizer for OpenELM' },
  'phi-2': { repo: 'microsoft/phi-2', revision: 'main', role: 'LLM' },
  'qwen2-0.5b': { repo: 'Qwen/Qwen2-0.5B', revision: 'main', role: 'LLM' },
};
